"""The whole loop of the paper, end to end, on the demo project (issue 11, point 4).

`coevo demo` writes the project; the model under test and the assistant are the fake
provider, answering per task (tests/assistant_support.py). The steps:

1. run v1 (`coevo run`);
2. label its answers in the Label screen (Pilot): good ones with `g`, two bad ones with
   `b` and a rationale each;
3. ask for candidates in the Candidates screen (Pilot, `G`), accept two, reject one;
4. draft a revision from the rationales (the assistant's revision task) and save it as
   v2 with the cases that motivated it;
5. run v2; label what changed: the two bad cases are now good (fixed) and a case that
   was good is now bad (the seeded regression);
6. compare: `coevo eval` lists the fixed and the regressed cases;
7. `coevo eval --check --json --junit` exits 1 on the regression;
8. v3 repairs it (`coevo prompt`), and `coevo eval --check` (which answers v3 first)
   exits 0, with --json and --junit saying so.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from assistant_support import AssistantAnswers, task_of

from coevo_tui.__main__ import main
from coevo_tui.assist import revision
from coevo_tui.commands.demo import write_demo
from coevo_tui.domain.model import CaseState, LabelSource, Verdict
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.screens.candidates import CandidatesScreen
from coevo_tui.screens.dialogs.rationale import RationaleScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.session import Session
from coevo_tui.store import Store
from pilot_support import open_screen, settle, wait_for

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")

ASSISTANT = "coevo-fake/assistant"
# What each revision adds to the instructions, and what the model under test makes of it.
SKILL_RULE = "Insults about skill ('scrub', 'noob') are trash talk: ALLOW them."
GLOAT_RULE = "Gloating after a win ('gg ez') is trash talk too: ALLOW it."
SKILL_CASES = ("get rekt scrub", "camping noob, come out of the bush")  # gg-007, gg-010
GLOAT_CASE = "gg ez"  # gg-001
SKILL_RATIONALE = "Calling someone a scrub or a noob is about their play: trash talk."


def moderator(system: str, message: str) -> str:
    """The model under test: v1 warns on skill insults (wrong), v2 allows them but, over
    eager, warns on a gloat (the regression), v3 allows the gloat again."""
    if message in SKILL_CASES and SKILL_RULE not in system:
        return "WARN - a personal insult"
    if message == GLOAT_CASE and SKILL_RULE in system and GLOAT_RULE not in system:
        return "WARN - mocking the losing team"
    return "ALLOW - no rule broken"


@pytest.fixture
def answers(fake_provider: FakeModel, monkeypatch: pytest.MonkeyPatch) -> AssistantAnswers:
    """The assistant's scripted answers per task, and the moderator for everything else."""
    for name in ("COEVO_MODEL", "COEVO_API_BASE", "COEVO_ASSISTANT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COEVO_RETRY_DELAY", "0.01")
    found = AssistantAnswers()

    def respond(messages: list[dict[str, Any]]) -> str:
        if task_of(messages):
            return found(messages)
        system = next((str(m["content"]) for m in messages if m["role"] == "system"), "")
        user = next(str(m["content"]) for m in reversed(messages) if m["role"] == "user")
        return moderator(system, user)

    fake_provider.responder = respond
    return found


async def _label_and_review(app) -> None:
    """Steps 2 and 3, from the keyboard."""
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_screen(app, pilot, "label")
        assert isinstance(screen, LabelScreen)
        await wait_for(pilot, lambda: screen.case is not None and screen.pane.output is not None,
                       "a case with its answer")
        for number in range(1, 11):  # gg-001 .. gg-010
            ext_id = f"gg-{number:03d}"
            await wait_for(pilot, lambda ext_id=ext_id: screen.case.ext_id == ext_id
                           and screen.pane.output is not None, f"{ext_id} shown")
            if number in (7, 10):
                await pilot.press("b")
                await wait_for(pilot, lambda: isinstance(app.screen, RationaleScreen),
                               "the rationale dialog")
                await pilot.press(*SKILL_RATIONALE, "enter")
                await wait_for(pilot, lambda: not isinstance(app.screen, RationaleScreen),
                               "the rationale saved")
            else:
                await pilot.press("g")
        await wait_for(pilot, lambda: screen.case.ext_id == "gg-011", "moved past gg-010")
        await settle(app, pilot)

        queue = await open_screen(app, pilot, "candidates")
        assert isinstance(queue, CandidatesScreen)
        await wait_for(pilot, lambda: queue._loaded, "the queue loaded")
        await pilot.press("G")
        await wait_for(pilot, lambda: len(queue.shown) == 3, "the batch", limit=1500)
        await settle(app, pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: len(queue.shown) == 2 and not queue.workers, "accepted")
        await pilot.press("a")
        await wait_for(pilot, lambda: len(queue.shown) == 1 and not queue.workers, "accepted")
        await pilot.press("d")
        await wait_for(pilot, lambda: not queue.shown and not queue.workers, "rejected")
        await settle(app, pilot)


async def _draft_and_save(path: Path, answers: AssistantAnswers,
                          fake_provider: FakeModel) -> None:
    """Step 4: the assistant drafts v2 from the bad cases' rationales; it is saved with
    the cases (and labels) that motivated it."""
    async with await Session.open(path, assistant_model=ASSISTANT) as session:
        v1 = await session.store.versions.latest()
        failing = await revision.failing_cases(session, v1)
        assert sorted(c.ext_id for c in failing) == ["gg-007", "gg-010"]
        assert {c.rationale for c in failing} == {SKILL_RATIONALE}
        answers.revision = {"instructions": v1.instructions.strip() + "\n" + SKILL_RULE,
                            "summary": "Skill insults are trash talk (gg-007, gg-010).",
                            "case_ids": ["gg-007", "gg-010"]}
        drafted = await revision.draft(session)
        assert drafted.error is None, drafted.error
        assert answers.asked.get("revision") == 1
        # The assistant was shown the user's rationales.
        asked = fake_provider.requests[-1]
        assert task_of(asked) == "revision" and SKILL_RATIONALE in asked[-1]["content"]
        v2 = await session.store.versions.create(drafted.instructions, note=drafted.summary,
                                                 motivating=drafted.motivating)
        assert v2.number == 2 and v2.parent_id == v1.id
        motivating = await session.store.versions.motivating_cases(v2.id)
        assert sorted(lid for _, lid in motivating) == sorted(c.label_id for c in failing)


def _label(path: Path, ext_id: str, version: int, verdict: str, rationale: str = "") -> None:
    argv = ["label", str(path), ext_id, str(version), verdict]
    assert main([*argv, "--rationale", rationale] if rationale else argv) == 0


def _active_ids(path: Path) -> list[str]:
    async def read() -> list[str]:
        async with await Store.open(path) as store:
            return [c.ext_id for c in await store.cases.all([CaseState.ACTIVE])]

    return asyncio.run(read())


def test_the_loop_on_the_demo_end_to_end(tmp_path: Path, make_test_app,
                                         answers: AssistantAnswers,
                                         fake_provider: FakeModel, capsys) -> None:
    project = write_demo(tmp_path / "demo.coevo")
    demo_cases = _active_ids(project)

    async def use_fake_model() -> None:
        async with await Store.open(project) as store:
            await store.settings.update(model=FAKE_MODEL)  # the model under test, saved

    asyncio.run(use_fake_model())

    # 1. Run v1.
    assert main(["run", str(project)]) == 0
    assert f"running {len(demo_cases)} cases" in capsys.readouterr().out

    # 2-3. Label (two bad, with rationales) and review the candidates, in the TUI.
    asyncio.run(_label_and_review(make_test_app(project, assistant_model=ASSISTANT)))
    assert answers.asked.get("candidates") == 1
    active = _active_ids(project)
    accepted = [text for text, _, _ in answers.cases[:2]]
    assert len(active) == len(demo_cases) + 2

    # 4. Draft v2 from the rationales and save it.
    asyncio.run(_draft_and_save(project, answers, fake_provider))

    # 5. Run v2 (the new cases too), then label what changed.
    capsys.readouterr()
    assert main(["run", str(project)]) == 0
    assert f"running {len(active)} cases" in capsys.readouterr().out
    _label(project, "gg-007", 2, "good")
    _label(project, "gg-010", 2, "good")
    _label(project, "gg-001", 2, "bad", "Gloating after a win is trash talk, not abuse.")
    capsys.readouterr()

    # 6. Compare: fixed and regressed cases, by name.
    assert main(["eval", str(project)]) == 0  # a report, not a gate
    report = capsys.readouterr().out
    assert "v1: pass rate 80.0% (8 good of 10 labelled)" in report  # the labels of step 2
    assert "fixed: 2\n  gg-007  get rekt scrub\n  gg-010  camping noob" in report
    assert "regressed: 1\n  gg-001  gg ez" in report

    # 7. The gate fails on the seeded regression.
    junit = tmp_path / "report.xml"
    assert main(["eval", str(project), "--check", "--json", "--junit", str(junit)]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["versions"] == {"baseline": 1, "revision": 2}
    assert document["model"] == FAKE_MODEL
    assert [c["id"] for c in document["fixed"]] == ["gg-007", "gg-010"]
    (regressed,) = document["regressed"]
    assert (regressed["id"], regressed["input"]) == ("gg-001", GLOAT_CASE)
    assert (regressed["baseline"]["verdict"], regressed["revision"]["verdict"]) == ("good", "bad")
    assert regressed["revision"]["rationale"] == "Gloating after a win is trash talk, not abuse."
    assert document["gate"]["passed"] is False
    assert document["gate"]["reasons"] == ["1 case regressed (good under v1, bad under v2)"]
    assert "coevo: 1 case regressed" in captured.err
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(len(active)) and suite.get("failures") == "1"
    (failing,) = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failing.get("name") == "gg-001" and failing.get("classname") == "coevo.v2"
    assert failing.find("failure").get("type") == "regressed"
    new_cases = [c for c in suite.findall("testcase") if c.get("name") not in demo_cases]
    assert len(new_cases) == 2 and all(c.find("skipped") is not None for c in new_cases)

    # 8. v3 repairs the gloat; the gate answers v3 first, then passes.
    instructions = tmp_path / "v3.txt"
    instructions.write_text(f"{_instructions(project, 2)}\n{GLOAT_RULE}\n", encoding="utf-8")
    assert main(["prompt", str(project), "--file", str(instructions),
                 "--note", "gloating is trash talk (gg-001)"]) == 0
    capsys.readouterr()
    assert main(["eval", str(project), "--check", "--json", "--junit", str(junit)]) == 0
    captured = capsys.readouterr()
    assert f"v3 with {FAKE_MODEL}: running {len(active)} cases" in captured.err
    document = json.loads(captured.out)
    assert document["versions"] == {"baseline": 2, "revision": 3}
    assert document["ran"]["ok"] == len(active) and document["ran"]["errors"] == 0
    (fixed,) = document["fixed"]
    assert fixed["id"] == "gg-001"
    # v3 answers the gloat as v1 did: the user's good label is carried over.
    assert (fixed["baseline"]["verdict"], fixed["revision"]["verdict"]) == ("bad", "good")
    assert fixed["revision"]["source"] == LabelSource.CARRIED.value
    assert document["regressed"] == []
    assert document["gate"] == {"checked": True, "passed": True, "min_pass_rate": None,
                                "reasons": []}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(len(active)), "0", "0")
    assert {c.get("classname") for c in suite.findall("testcase")} == {"coevo.v3"}
    # The accepted candidates are still there, unlabelled: skipped, not passed.
    skipped = {c.get("name") for c in suite.findall("testcase") if c.find("skipped") is not None}
    new_ids = set(active) - set(demo_cases)
    assert new_ids <= skipped
    assert {c["id"] for c in document["fixed"] + document["regressed"]}.isdisjoint(new_ids)
    # Every label under v3 is good (ten, carried over), so even a bar of 100% holds.
    assert document["counts"]["revision"]["good"] == 10
    assert document["counts"]["revision"]["bad"] == 0
    assert document["pass_rates"]["revision"] == 1.0
    assert main(["eval", str(project), "--check", "--min-pass-rate", "1"]) == 0
    assert _inputs(project, new_ids) == set(accepted)


def _inputs(path: Path, ext_ids: set[str]) -> set[str]:
    async def read() -> set[str]:
        async with await Store.open(path) as store:
            return {c.input for c in await store.cases.by_ext_ids(sorted(ext_ids))}

    return asyncio.run(read())


def _instructions(path: Path, number: int) -> str:
    async def read() -> str:
        async with await Store.open(path) as store:
            return (await store.versions.by_number(number)).instructions.strip()

    return asyncio.run(read())
