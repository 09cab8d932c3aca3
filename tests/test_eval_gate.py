"""`coevo eval --check` as a CI gate: it answers the revision's missing cases first (as
`coevo run`), and grows --min-pass-rate, --json, --junit and --judge (README "Gate CI
with coevo eval --check").

The model under test is the fake provider (`coevo-fake/echo`, in-process, through
litellm's custom-provider API); its answers depend on the version: under instructions
containing STRICT, the inputs starting with "flip" get another answer, so those cases
change between v1 and v2 while the others keep their text (and carry their labels)."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from assistant_support import AssistantAnswers, task_of

from coevo_tui.__main__ import main
from coevo_tui.domain.model import CaseState, OutputStatus, Verdict
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.store import NewCase, Store

G, B, U = Verdict.GOOD, Verdict.BAD, Verdict.UNSURE
PLAIN = [f"plain-{i}" for i in range(1, 9)]
FLIPS = ["flip-a", "flip-b"]


def _system_and_input(messages: list[dict[str, Any]]) -> tuple[str, str]:
    system = next((str(m["content"]) for m in messages if m["role"] == "system"), "")
    user = next((str(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    return system, user


def versioned_answer(messages: list[dict[str, Any]]) -> str:
    """The model under test: "ok: INPUT", or "changed: INPUT" for a flip-case under STRICT."""
    system, user = _system_and_input(messages)
    if "STRICT" in system and user.startswith("flip"):
        return f"changed: {user}"
    return f"ok: {user}"


@pytest.fixture(autouse=True)
def _quiet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model, assistant or server from the developer's environment; short retries."""
    for name in ("COEVO_MODEL", "COEVO_API_BASE", "COEVO_ASSISTANT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COEVO_RETRY_DELAY", "0.01")
    monkeypatch.setenv("COEVO_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("COEVO_TIMEOUT", "30")


@pytest.fixture
def model(fake_provider: FakeModel) -> FakeModel:
    fake_provider.responder = versioned_answer
    return fake_provider


async def _with_store(path: Path, action):
    async with await Store.open(path) as store:
        return await action(store)


def _make_project(path: Path) -> None:
    """v1 "Be kind." and v2 "Be kind. STRICT" (saved after v1), ten active cases."""

    async def make(store: Store) -> None:
        await store.cases.add_many([NewCase(input=ext_id, ext_id=ext_id)
                                    for ext_id in PLAIN + FLIPS])
        await store.versions.create("Be kind. STRICT", note="stricter")

    asyncio.run(_with_store_new(path, make))


async def _with_store_new(path: Path, action):
    async with await Store.open(path, instructions="Be kind.") as store:
        return await action(store)


def label(path: Path, version: int, verdicts: dict[str, Verdict], rationale: str = "") -> None:
    """Label the newest answer of each case under `version` (as the user does)."""

    async def write(store: Store) -> None:
        v = await store.versions.by_number(version)
        answers = await store.answers.per_case(v.id)
        for ext_id, verdict in verdicts.items():
            case = await store.cases.by_ext_id(ext_id)
            await store.labels.write(answers[case.id].output.id, verdict,
                                     rationale or f"{ext_id} is {verdict.value}")

    asyncio.run(_with_store(path, write))


def query(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def v1_labelled(path: Path) -> None:
    """v1 answered and labelled: every plain case good but plain-8 bad; flip-a good,
    flip-b bad."""
    assert main(["run", str(path), "--version", "1", "--model", FAKE_MODEL]) == 0
    label(path, 1, {**{p: G for p in PLAIN[:-1]}, "plain-8": B, "flip-a": G, "flip-b": B})


def gate(path: Path, *extra: str, model_option: bool = True) -> int:
    argv = ["eval", str(path), "--check", *extra]
    if model_option:
        argv += ["--model", FAKE_MODEL]
    return main(argv)


# ---------------------------------------------------------------------------- running
def test_check_runs_the_missing_answers_once_then_resumes(project_path: Path, model: FakeModel,
                                                          capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    calls_before = model.calls
    assert gate(project_path) == 0  # no regression: the v2 answers are not labelled yet
    captured = capsys.readouterr()
    assert model.calls - calls_before == 10  # every active case, once
    assert query(project_path, "SELECT count(*) FROM output o JOIN prompt_version v ON "
                 "v.id = o.version_id WHERE v.number = 2 AND o.status = 'ok'") == [(10,)]
    # The run's lines go to stderr (as coevo run prints them); the report to stdout.
    assert "v2 with coevo-fake/echo: running 10 cases" in captured.err
    assert "10 ok (0 cached), 0 errors" in captured.err
    out = captured.out.splitlines()
    assert out[0] == f"v1 -> v2 on 10 active cases, model {FAKE_MODEL}"
    # The plain answers did not change: they carry their v1 labels; the flips are new text.
    assert out[2] == "v2: pass rate 87.5% (7 good of 8 labelled); 2 unlabelled, 0 errors"

    assert gate(project_path) == 0  # again: resume, nothing is called
    assert model.calls - calls_before == 10
    assert "all 10 active cases already have an answer" in capsys.readouterr().err


def test_identical_calls_of_a_new_version_come_from_the_cache(project_path: Path,
                                                              model: FakeModel, capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    asyncio.run(_with_store(project_path, lambda s: s.versions.create("Be kind.", note="same")))
    calls = model.calls
    # v3 has v1's instructions: every call is cached.
    assert gate(project_path, "--baseline", "1") == 0
    assert model.calls == calls
    assert "10 ok (10 cached)" in capsys.readouterr().err


def test_without_a_model_under_test_nothing_is_run(project_path: Path, model: FakeModel,
                                                   capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    calls = model.calls
    assert gate(project_path, model_option=False) == 0
    captured = capsys.readouterr()
    assert model.calls == calls
    assert ("coevo: 10 cases not run under v2: no model under test is configured"
            in captured.err)
    assert "v2: pass rate n/a (nothing labelled); 0 unlabelled, 0 errors, 10 not run" \
        in captured.out


def test_errors_from_the_model_are_stored_and_fail_the_gate(project_path: Path,
                                                            model: FakeModel, capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    model.fail_next("error", count=1000)  # the server answers 500 to everything
    assert gate(project_path, "--json") == 1
    captured = capsys.readouterr()
    assert query(project_path, "SELECT count(*) FROM output WHERE status = 'error'") == [(10,)]
    document = json.loads(captured.out)
    assert document["counts"]["revision"]["errors"] == 10
    assert document["ran"]["errors"] == 10
    assert document["gate"]["passed"] is False
    assert any("10 cases got an error from the model under v2" in r
               for r in document["gate"]["reasons"])
    assert "coevo: 10 cases got an error" in captured.err


def test_the_model_asked_for_must_have_answers(project_path: Path, model: FakeModel,
                                               capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    assert main(["eval", str(project_path), "--check", "--model", "coevo-fake/typo"]) == 2
    captured = capsys.readouterr()
    assert "no outputs from model coevo-fake/typo" in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""
    assert query(project_path, "SELECT count(*) FROM output") == [(10,)]


# ---------------------------------------------------------------------------- --min-pass-rate
def _answered_and_labelled(path: Path, capsys) -> None:
    """v2 run by the gate, then its flip answers labelled: flip-a bad (it was good under
    v1: a regression), flip-b good (fixed)."""
    _make_project(path)
    v1_labelled(path)
    assert gate(path) == 0
    label(path, 2, {"flip-a": B, "flip-b": G})
    capsys.readouterr()


def test_min_pass_rate(project_path: Path, model: FakeModel, capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    assert gate(project_path) == 0
    label(project_path, 2, {"flip-a": G, "flip-b": G})  # v2: 9 good of 10
    capsys.readouterr()
    assert gate(project_path, "--min-pass-rate", "0.9") == 0  # at the bar passes
    assert gate(project_path, "--min-pass-rate", "0.95") == 1
    err = capsys.readouterr().err
    assert ("coevo: the pass rate under v2 is 90.0% (9 good of 10 labelled), below "
            "--min-pass-rate 0.95") in err


def test_min_pass_rate_with_nothing_labelled_fails(project_path: Path, model: FakeModel,
                                                   capsys) -> None:
    _make_project(project_path)
    assert main(["run", str(project_path), "--version", "1", "--model", FAKE_MODEL]) == 0
    capsys.readouterr()
    assert gate(project_path, "--min-pass-rate", "0.5") == 1
    captured = capsys.readouterr()
    assert ("coevo: no answer under v2 is labelled, so its pass rate is undefined and "
            "cannot meet --min-pass-rate 0.5") in captured.err
    assert gate(project_path) == 0  # without the bar, nothing labelled is no regression


@pytest.mark.parametrize(("argv", "message"), [
    (["--min-pass-rate", "1.5"], "--min-pass-rate must be between 0 and 1"),
    (["--min-pass-rate", "-0.1"], "--min-pass-rate must be between 0 and 1"),
    (["--min-pass-rate", "nan"], "--min-pass-rate must be between 0 and 1"),
    (["--min-kappa", "0.5"], "--min-kappa is the bar for --judge"),
    (["--judge", "--min-kappa", "2"], "--min-kappa must be between -1 and 1"),
    (["--concurrency", "0"], "--concurrency must be between 1 and 512"),
    (["--junit", "no/such/folder/report.xml"], "no such folder"),
])
def test_bad_options_exit_2_in_one_line_and_change_nothing(
        project_path: Path, model: FakeModel, capsys, argv: list[str], message: str) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    calls = model.calls
    assert gate(project_path, *argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""
    assert model.calls == calls
    assert query(project_path, "SELECT count(*) FROM output") == [(10,)]


def test_a_min_pass_rate_that_is_not_a_number_is_a_usage_error(project_path: Path,
                                                                capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", str(project_path), "--check", "--min-pass-rate", "most"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--min-pass-rate: invalid float value: 'most'" in err
    assert len(err.strip().splitlines()) == 1 and not project_path.exists()


def test_min_pass_rate_needs_check(project_path: Path, model: FakeModel, capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    assert main(["eval", str(project_path), "--min-pass-rate", "0.5"]) == 2
    assert "use it with --check" in capsys.readouterr().err


# ---------------------------------------------------------------------------- --json
def test_json_is_one_document_with_the_fields(project_path: Path, model: FakeModel,
                                              capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    assert gate(project_path, "--json") == 0  # runs v2 first: its lines go to stderr
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout holds the document and nothing else
    assert "running 10 cases" in captured.err
    assert document["versions"] == {"baseline": 1, "revision": 2}
    assert document["model"] == FAKE_MODEL
    assert document["ran"] == {"ran": 10, "ok": 10, "errors": 0, "cached": 0,
                               "already_done": 0}
    label(project_path, 2, {"flip-a": B, "flip-b": G}, rationale="flip rationale")
    assert gate(project_path, "--json") == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert set(document) >= {"versions", "model", "pass_rates", "counts", "fixed",
                             "regressed", "cost", "gate"}
    assert document["pass_rates"] == {"baseline": 0.8, "revision": 0.8}
    assert document["counts"]["revision"] == {
        "good": 8, "bad": 2, "unsure": 0, "unlabelled": 0, "errors": 0, "not_run": 0,
        "carried": 8}
    assert document["counts"]["statuses"] == {"regressed": 1, "fixed": 1, "still_bad": 1,
                                              "still_good": 7}
    (regressed,) = document["regressed"]
    assert regressed["id"] == "flip-a" and regressed["input"] == "flip-a"
    assert regressed["baseline"]["verdict"] == "good"
    assert regressed["revision"]["verdict"] == "bad"
    assert regressed["revision"]["rationale"] == "flip rationale"
    assert regressed["revision"]["output"] == "changed: flip-a"
    assert regressed["revision"]["from_judge"] is False
    assert [c["id"] for c in document["fixed"]] == ["flip-b"]
    assert document["cost"] == 0.0 and document["unpriced_outputs"] == 0  # the fake is free
    assert document["gate"] == {
        "checked": True, "passed": False, "min_pass_rate": None,
        "reasons": ["1 case regressed (good under v1, bad under v2)"]}
    assert "coevo: 1 case regressed (good under v1, bad under v2)" in captured.err


def test_json_cost_sums_the_stored_costs(project_path: Path, model: FakeModel, capsys) -> None:
    _answered_and_labelled(project_path, capsys)
    db = sqlite3.connect(project_path)
    with db:
        db.execute("UPDATE output SET cost = 0.25 WHERE version_id = "
                   "(SELECT id FROM prompt_version WHERE number = 2)")
    db.close()
    assert gate(project_path, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert math.isclose(document["cost"], 2.5) and document["unpriced_outputs"] == 0
    with sqlite3.connect(project_path) as db:  # a price nobody knows is not a zero
        db.execute("UPDATE output SET cost = NULL")
    db.close()
    assert gate(project_path, "--json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["cost"] is None and document["unpriced_outputs"] == 10


# ---------------------------------------------------------------------------- --junit
def test_junit_report_parses_and_counts_match(project_path: Path, model: FakeModel, capsys,
                                              tmp_path: Path) -> None:
    _answered_and_labelled(project_path, capsys)
    # One answer unsure, one case unlabelled (a new case, answered by the gate).
    label(project_path, 2, {"plain-1": U})
    asyncio.run(_with_store(project_path,
                            lambda s: s.cases.add(NewCase(input="fresh", ext_id="new-1"))))
    report = tmp_path / "report.xml"
    assert gate(project_path, "--junit", str(report)) == 1
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [*PLAIN, *FLIPS, "new-1"]
    assert {c.get("classname") for c in cases} == {"coevo.v2"}
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    skipped = {c.get("name"): c.find("skipped") for c in cases if c.find("skipped") is not None}
    assert sorted(failures) == ["flip-a", "plain-8"]  # regressed, and still bad
    assert failures["flip-a"].get("type") == "regressed"
    assert "good under v1, bad under v2: flip-a is bad" in failures["flip-a"].get("message")
    assert failures["plain-8"].get("type") == "still bad"
    assert sorted(skipped) == ["new-1", "plain-1"]
    assert skipped["new-1"].get("message") == "unlabelled under v2"
    assert skipped["plain-1"].get("message").startswith("unsure under v2")
    for element in (suite, root):
        assert (element.get("tests"), element.get("failures"), element.get("errors"),
                element.get("skipped")) == ("11", "2", "0", "2")


def test_junit_error_outputs_are_errors(project_path: Path, model: FakeModel, capsys,
                                        tmp_path: Path) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    model.fail_next("error", count=1000)
    report = tmp_path / "report.xml"
    assert gate(project_path, "--junit", str(report)) == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("errors") == "10" and suite.get("tests") == "10"
    error = suite.find("testcase/error")
    assert error is not None and error.get("type") == "model error" and error.get("message")


# ---------------------------------------------------------------------------- --judge
def _judge_history(path: Path, agree: int, disagree: int) -> None:
    """`agree` + `disagree` answers under a third version, each labelled by the user and
    judged: the judge agrees on the first `agree` and says the opposite on the rest."""

    async def write(store: Store) -> None:
        v = await store.versions.create("history", note="judged answers")
        for i in range(agree + disagree):
            case = await store.cases.add(NewCase(input=f"history {i}", ext_id=f"hist-{i}"))
            out = await store.outputs.add(case_id=case.id, version_id=v.id, model=FAKE_MODEL,
                                         params={}, text=f"answer {i}",
                                         status=OutputStatus.OK)
            human = G if i % 2 else B
            judge = human if i < agree else (B if human == G else G)
            await store.labels.write(out.id, human, "history")
            await store.judgements.add(out.id, judge, "history", "coevo-fake/judge")
        # Out of the test set: only their agreement counts.
        for i in range(agree + disagree):
            case = await store.cases.by_ext_id(f"hist-{i}")
            await store.cases.set_state(case.id, CaseState.ARCHIVED)

    asyncio.run(_with_store(path, write))


def _judge_verdicts(path: Path, version: int, verdicts: dict[str, Verdict]) -> None:
    async def write(store: Store) -> None:
        v = await store.versions.by_number(version)
        answers = await store.answers.per_case(v.id)
        for ext_id, verdict in verdicts.items():
            case = await store.cases.by_ext_id(ext_id)
            await store.judgements.add(answers[case.id].output.id, verdict,
                                       f"judge says {verdict.value}", "coevo-fake/judge")

    asyncio.run(_with_store(path, write))


def _judged_project(path: Path, capsys, *, agree: int, disagree: int) -> None:
    """v1 labelled, v2 answered (flips unlabelled) and the flips judged: flip-a bad (a
    regression by the judge's verdict), flip-b good; a judge history under v3."""
    _make_project(path)
    v1_labelled(path)
    assert gate(path) == 0
    _judge_verdicts(path, 2, {"flip-a": B, "flip-b": G})
    _judge_history(path, agree, disagree)
    capsys.readouterr()


def test_judge_refused_with_fewer_than_20_checked_answers(project_path: Path, model: FakeModel,
                                                          capsys) -> None:
    _judged_project(project_path, capsys, agree=19, disagree=0)
    argv = ["--baseline", "1", "--revision", "2", "--judge"]
    assert gate(project_path, *argv) == 2
    captured = capsys.readouterr()
    assert ("--judge: the judge has been checked against your labels on only 19 answers"
            in captured.err)
    assert len(captured.err.strip().splitlines()) == 1 and captured.out == ""


def test_judge_refused_below_min_kappa(project_path: Path, model: FakeModel, capsys) -> None:
    _judged_project(project_path, capsys, agree=14, disagree=6)  # kappa 0.4
    argv = ["--baseline", "1", "--revision", "2", "--judge"]
    assert gate(project_path, *argv) == 2
    err = capsys.readouterr().err
    assert "kappa 0.40 over 20 answers, below --min-kappa 0.6" in err
    # A lower bar, chosen on purpose, lets it decide.
    assert gate(project_path, *argv, "--min-kappa", "0.4") == 1


def test_judge_verdicts_decide_when_the_judge_is_trusted(project_path: Path, model: FakeModel,
                                                         capsys, tmp_path: Path) -> None:
    _judged_project(project_path, capsys, agree=20, disagree=0)
    argv = ["--baseline", "1", "--revision", "2"]
    assert gate(project_path, *argv) == 0  # without --judge the flips are unlabelled
    capsys.readouterr()
    report = tmp_path / "report.xml"
    assert gate(project_path, *argv, "--judge", "--junit", str(report)) == 1
    captured = capsys.readouterr()
    assert "coevo: 1 case regressed (good under v1, bad under v2, 1 by the judge's verdict)" \
        in captured.err
    assert "  flip-a  flip-a  (judge)" in captured.out
    assert "judge: 2 verdicts under v2 from the judge, marked (judge)" in captured.out
    failure = ET.parse(report).getroot().find("testsuite/testcase[@name='flip-a']")
    assert failure.find("failure").get("message").startswith("judge: regressed")
    assert failure.find("properties/property").get("value") == "judge"

    assert gate(project_path, *argv, "--judge", "--json") == 1
    document = json.loads(capsys.readouterr().out)
    (regressed,) = document["regressed"]
    assert regressed["revision"]["from_judge"] is True
    assert regressed["revision"]["verdict"] == "bad"
    assert regressed["revision"]["rationale"] == "judge says bad"
    assert document["judge"]["verdicts_used"] == 2
    assert document["judge"]["agreement_outputs"] == 20 and document["judge"]["kappa"] == 1.0
    # The user's own label wins over the judge's verdict.
    label(project_path, 2, {"flip-a": G})
    assert gate(project_path, *argv, "--judge") == 0


def test_judge_runs_on_unjudged_answers_when_an_assistant_is_configured(
        project_path: Path, model: FakeModel, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    _judge_history(project_path, 20, 0)
    answers = AssistantAnswers(verdict=("bad", "It changed its answer."))
    model.responder = lambda messages: (answers(messages) if task_of(messages)
                                        else versioned_answer(messages))
    monkeypatch.setenv("COEVO_ASSISTANT_MODEL", "coevo-fake/judge")
    capsys.readouterr()
    assert gate(project_path, "--baseline", "1", "--revision", "2", "--judge") == 1
    captured = capsys.readouterr()
    assert answers.asked.get("judge") == 2  # the two flips, the others carry labels
    assert "regressed: 1\n  flip-a  flip-a  (judge)" in captured.out
    # Judged once: a second gate reuses the stored verdicts.
    assert gate(project_path, "--baseline", "1", "--revision", "2", "--judge") == 1
    assert answers.asked.get("judge") == 2


def test_without_check_the_report_runs_nothing(project_path: Path, model: FakeModel,
                                               capsys) -> None:
    _make_project(project_path)
    v1_labelled(project_path)
    capsys.readouterr()
    calls = model.calls
    assert main(["eval", str(project_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert model.calls == calls
    assert document["gate"]["checked"] is False
    assert document["counts"]["revision"]["not_run"] == 10


def test_as_a_ci_step_the_process_prints_plain_lines_only(tmp_path: Path, fake_server) -> None:
    """The gate as CI runs it: a process without a terminal, the model behind an
    OpenAI-compatible server. stderr holds coevo's plain lines and nothing else (no bar,
    no warning); stdout the JSON document."""
    import os
    import subprocess
    import sys

    project = tmp_path / "project.coevo"
    _make_project(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COEVO_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", COEVO_RETRY_DELAY="0.01",
               COEVO_MAX_ATTEMPTS="2", COEVO_MODEL="gpt-4o-mini",
               COEVO_API_BASE=fake_server.url, NO_COLOR="1")
    report = tmp_path / "report.xml"
    done = subprocess.run([sys.executable, "-m", "coevo_tui", "eval", str(project), "--check",
                           "--baseline", "1", "--json", "--junit", str(report)],
                          capture_output=True, text=True, env=env, timeout=120)
    # v1 was never run: every case is new under v2, nothing is labelled, nothing regressed.
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"project v2 with openai/gpt-4o-mini at {fake_server.url}: running 10 cases")
    assert done.stderr.splitlines()[1].startswith("10 ok (0 cached), 0 errors")
    assert len(done.stderr.splitlines()) == 2
    document = json.loads(done.stdout)
    assert document["model"] == "openai/gpt-4o-mini"
    assert document["counts"]["statuses"] == {"new": 10}
    assert ET.parse(report).getroot().get("skipped") == "10"
    assert fake_server.request_count == 10


def test_ctrl_c_while_the_gate_answers_keeps_what_arrived(tmp_path: Path, fake_server) -> None:
    """Interrupted while answering the missing cases, the gate says what it leaves behind
    (the answers that arrived), and the next gate runs only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    project = tmp_path / "project.coevo"
    _make_project(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COEVO_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", COEVO_RETRY_DELAY="0.01",
               COEVO_MODEL="gpt-4o-mini", COEVO_API_BASE=fake_server.url, NO_COLOR="1")
    fake_server.ttft = 0.3  # slow enough to be stopped halfway
    argv = [sys.executable, "-m", "coevo_tui", "eval", str(project), "--check",
            "--baseline", "1", "--concurrency", "1"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (project.with_name("project.coevo-wal").exists()
                   and query(project, "SELECT count(*) FROM output")[0][0] >= 2):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no answer arrived"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert err.decode().splitlines()[-1] == (
        "coevo: interrupted; the answers that arrived are saved; coevo eval --check again "
        "runs the rest")
    kept = query(project, "SELECT count(*) FROM output WHERE status = 'ok'")[0][0]
    assert 2 <= kept < 10
    fake_server.reset()
    fake_server.ttft = 0.0
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"({kept} already done)" in done.stderr
    assert fake_server.request_count == 10 - kept
