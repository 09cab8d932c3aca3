"""The assistant in the TUI, driven with Pilot; the assistant's answers are scripted per task
through the fake provider (tests/assistant_support.py): the review queue (accept, edit,
reject, accept all, a batch arriving row by row, the batch outliving its screen), `G` on
Cases and the `rule:` filter, similar cases from Label, the suggested rationale, the
drafted revision, the judge's suggestions on Label and Compare (accepted with one key,
overridden by a direct label, run after a run), the Overview's agreement and coverage,
and the status bar naming the assistant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from assistant_support import AssistantAnswers, item_chunks

from coevo_tui.app import CoevoApp
from coevo_tui.domain.model import (
    CaseSource,
    CaseState,
    LabelSource,
    NewRule,
    OutputStatus,
    Verdict,
)
from coevo_tui.jobs import AssistJob
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.screens.candidates import CandidatesScreen
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.screens.dialogs.case_editor import CaseEditorScreen
from coevo_tui.screens.dialogs.rationale import RationaleScreen
from coevo_tui.screens.dialogs.save_version import SaveVersionScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.screens.overview import OverviewScreen
from coevo_tui.screens.prompt import PromptScreen
from coevo_tui.store import NewCase, Store
from pilot_support import open_screen, screen_text, settle, wait_for

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")

ASSISTANT = "coevo-fake/assistant"
INSTRUCTIONS = ("You moderate game chat.\n1. No slurs.\n2. No threats of real violence.\n"
                "3. Trash talk is fine.")
RULES = [NewRule(1, "No slurs"), NewRule(2, "No real threats"),
         NewRule(3, "Trash talk is fine")]


def _notes(app: CoevoApp) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture
def answers(fake_provider: FakeModel) -> AssistantAnswers:
    """The assistant's answers per task (and the echo for the model under test)."""
    found = AssistantAnswers()
    fake_provider.responder = found
    return found


async def _project(path: Path, *, candidates: bool = True) -> None:
    """v1 with three rules; active cases c1-c4 (c1, c2 probe rule 3, c3 rule 1); and
    unless `candidates` is False, four candidates waiting (three generated, one similar
    to c1)."""
    async with await Store.open(path, instructions=INSTRUCTIONS) as store:
        await store.settings.update(task="Moderate the chat of an online game.")
        version = await store.versions.latest()
        await store.rules.replace(version.id, RULES)
        await store.cases.add_many([
            NewCase("gg ez", ext_id="c1", rule_number=3),
            NewCase("uninstall the game lol", ext_id="c2", rule_number=3),
            NewCase("you people are [slur]", ext_id="c3", rule_number=1),
            NewCase("nice shot!", ext_id="c4"),
        ], source_name="test")
        if not candidates:
            return
        c1 = await store.cases.by_ext_id("c1")
        await store.cases.add_candidates([
            NewCase("i know where u live lol", source=CaseSource.GENERATED, rule_number=2,
                    reason="A threat that names no place.", origin_version_id=version.id),
            NewCase("ur mom plays better", source=CaseSource.GENERATED, rule_number=3,
                    reason="An insult about skill.", origin_version_id=version.id),
            NewCase("go back to bronze, trash", source=CaseSource.GENERATED, rule_number=3,
                    reason="Rank shaming.", origin_version_id=version.id),
            NewCase("ez game ez life", source=CaseSource.SIMILAR, origin_case_id=c1.id,
                    rule_number=3, reason="The same gloat, other words.",
                    origin_version_id=version.id),
        ])


@pytest.fixture
async def project(project_path: Path) -> Path:
    await _project(project_path)
    return project_path


async def _states(path: Path) -> dict[str, tuple[str, str]]:
    """Every case by input: (state, ext id)."""
    async with await Store.open(path) as store:
        return {c.input: (c.state.value, c.ext_id) for c in await store.cases.all()}


async def _open_candidates(app: CoevoApp, pilot) -> CandidatesScreen:
    screen = await open_screen(app, pilot, "candidates")
    assert isinstance(screen, CandidatesScreen)
    await wait_for(pilot, lambda: screen._loaded, "the queue loaded")
    return screen


# ---------------------------------------------------------------------- the review queue
async def test_accept_edit_reject_and_accept_all_on_the_candidates_screen(
        project: Path, make_test_app, answers: AssistantAnswers) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        text = screen_text(app)
        # Each row says where it came from, the rule it probes; the panel the reason.
        assert "4 waiting" in text
        assert "v1 r2" in text and "2 No real threats" in text and "≈ c1" in text
        assert "generated under v1 for rule 2: No real threats" in text
        assert "A threat that names no place." in text

        await pilot.press("a")  # the first row joins the test set
        await wait_for(pilot, lambda: len(screen.shown) == 3 and not screen.workers,
                       "accepted")
        assert (await _states(project))["i know where u live lol"][0] == "active"

        await pilot.press("e")  # edit, then accept
        await wait_for(pilot, lambda: isinstance(app.screen, CaseEditorScreen), "the editor")
        await pilot.press("end", *" fr", "ctrl+s")
        await wait_for(pilot, lambda: len(screen.shown) == 2 and not screen.workers,
                       "edited and accepted")
        states = await _states(project)
        assert states["ur mom plays better fr"][0] == "active"
        assert "ur mom plays better" not in states  # the edit replaced the input

        await pilot.press("d")  # reject: kept, hidden
        await wait_for(pilot, lambda: len(screen.shown) == 1 and not screen.workers,
                       "rejected")
        assert (await _states(project))["go back to bronze, trash"][0] == "rejected"
        assert "1 rejected hidden" in screen_text(app)
        await pilot.press("r")  # shown again on request, marked
        await wait_for(pilot, lambda: len(screen.shown) == 2, "rejected shown")
        assert "rejected" in screen_text(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: len(screen.shown) == 1, "rejected hidden")

        await pilot.press("A")  # once: asks to press again; nothing accepted yet
        await settle(app, pilot)
        assert any("again to accept all 1" in n for n in _notes(app))
        assert (await _states(project))["ez game ez life"][0] == "candidate"
        await pilot.press("A")
        await wait_for(pilot, lambda: not screen.shown and not screen.workers, "all accepted")
        assert (await _states(project))["ez game ez life"][0] == "active"
        assert "The queue is empty. G asks the assistant" in screen_text(app)
        assert screen.check_action("accept", ()) is None  # dimmed: nothing to accept


async def test_accept_all_takes_only_the_rows_the_filter_shows(
        project: Path, make_test_app, answers: AssistantAnswers) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        await pilot.press("slash", *"rule:3", "enter")
        await wait_for(pilot, lambda: len(screen.shown) == 3, "rule 3 only")
        await pilot.press("A", "A")
        await wait_for(pilot, lambda: len(screen.shown) == 0 and not screen.workers,
                       "accepted")
    states = await _states(project)
    assert states["i know where u live lol"][0] == "candidate"  # rule 2: not shown
    assert {states[t][0] for t in ("ur mom plays better", "go back to bronze, trash",
                                   "ez game ez life")} == {"active"}


async def test_a_batch_appears_row_by_row_while_the_assistant_writes(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    await _project(project_path, candidates=False)
    items = [("first new case", 1, "r1"), ("second new case", 2, "r2"),
             ("third new case", 3, "r3")]
    fake_provider.script(item_chunks(*items))
    fake_provider.hold(after_chunks=1)  # the first item, then the model waits
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        assert "The queue is empty. G asks the assistant" in screen_text(app)
        await pilot.press("G")
        await wait_for(pilot, lambda: len(screen.shown) == 1, "the first row")
        await wait_for(pilot, lambda: fake_provider.held == 1, "the rest held")
        assert [c.input for c in screen.shown] == ["first new case"]
        await wait_for(pilot, lambda: "generate v1 1/10 · 1 kept, 0 dropped" in
                       screen_text(app), "the batch's line")
        (job,) = app.jobs.running_assist("candidates")
        assert job.running
        fake_provider.release()
        await wait_for(pilot, lambda: not job.running, "the batch ended")
        await wait_for(pilot, lambda: len(screen.shown) == 3, "every row")
        await settle(app, pilot)
        assert [c.input for c in screen.shown] == [text for text, _, _ in items]
        text = screen_text(app)
        assert "Last batch: 3 cases under v1: 3 kept, 0 dropped" in text
        # The screen says how the batch ended itself, once; the app stays quiet.
        assert sum("3 new cases in the queue" in n for n in _notes(app)) == 1
        assert not any("v opens it" in n for n in _notes(app))


async def test_a_quiet_assistant_says_what_it_does_first(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    # A version without rules: the assistant extracts them first, which on the offline
    # model takes minutes: the line says so, then counts the rules' answer as it comes.
    async with await Store.open(project_path, instructions=INSTRUCTIONS) as store:
        await store.cases.add_many([NewCase("gg ez", ext_id="c1")], source_name="test")
    fake_provider.hold(after_chunks=2)  # the rules' answer: its first pieces only
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        await pilot.press("G")
        await wait_for(pilot, lambda: fake_provider.held == 1, "the rules asked for")
        await wait_for(pilot, lambda: re.search(r"generate v1 0/10 \(extracting v1's rules, "
                                                r"[1-9]\d* chars\)", screen_text(app)),
                       "the rules' answer counted as it streams, in 80 columns")
        fake_provider.release()
        await wait_for(pilot, lambda: len(screen.shown) == 3, "the batch")
        await settle(app, pilot)
        assert answers.asked.get("rules") == 1
        assert "1 No slurs" in screen_text(app)  # the rule titles it found, in the rows


async def test_the_batch_goes_on_when_its_screen_is_left(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    await _project(project_path, candidates=False)
    fake_provider.script(item_chunks(("one", 1, "a"), ("two", 2, "b")))
    fake_provider.hold(after_chunks=1)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        await pilot.press("G")
        await wait_for(pilot, lambda: len(screen.shown) == 1, "the first row")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CasesScreen), "back on Cases")
        (job,) = app.jobs.running_assist("candidates")
        await wait_for(pilot, lambda: "generate v1 1/10" in screen_text(app),
                       "its progress on Cases")
        fake_provider.release()
        await wait_for(pilot, lambda: not job.running, "the batch ended")
        await wait_for(pilot, lambda: any("2 new cases in the queue: v opens it" in n
                                          for n in _notes(app)), "the app says where")
        await wait_for(pilot, lambda: "2 candidates" in str(app.screen.sub_title),
                       "the counts on Cases")
        screen = await _open_candidates(app, pilot)
        assert [c.input for c in screen.shown] == ["one", "two"]
        # The queue, opened after the batch ended elsewhere, says how it ended.
        await wait_for(pilot, lambda: "Last batch: 2 cases under v1: 2 kept, 0 dropped"
                       in screen_text(app), "the last batch's summary on the queue")


async def test_x_stops_the_batch_and_keeps_what_arrived(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    await _project(project_path, candidates=False)
    fake_provider.script(item_chunks(("kept one", 1, "a"), ("never sent", 2, "b")))
    fake_provider.hold(after_chunks=1)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_candidates(app, pilot)
        await pilot.press("G")
        await wait_for(pilot, lambda: len(screen.shown) == 1, "the first row")
        (job,) = app.jobs.running_assist("candidates")
        await pilot.press("x")
        await wait_for(pilot, lambda: not job.running, "stopped")
        fake_provider.release()
        await settle(app, pilot)
        assert job.stopped and "stopped" in screen_text(app)
    assert (await _states(project_path))["kept one"][0] == "candidate"
    assert "never sent" not in await _states(project_path)


# ---------------------------------------------------------------------- Cases: G and rule:
async def test_the_rule_filter_on_cases(project: Path, make_test_app,
                                        answers: AssistantAnswers) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CasesScreen)

        def shown() -> list[str]:
            return [line[1] for line in screen.table.rows]

        await pilot.press("slash", *"rule:3", "enter")
        await wait_for(pilot, lambda: shown() == ["c1", "c2"], "rule 3's cases")
        await pilot.press("escape")  # clears the filter
        await pilot.press("slash", *"rule:none", "enter")
        await wait_for(pilot, lambda: shown() == ["c4"], "the case probing no rule")
        await pilot.press("escape")
        await pilot.press("slash", *"rule:x", "enter")
        await wait_for(pilot, lambda: "no rule 'x'" in screen_text(app), "a bad rule word")


async def test_G_on_cases_asks_for_a_batch_probing_the_filtered_rule(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    await _project(project_path, candidates=False)
    answers.cases = [("a brand new threat", 2, "probes threats")]
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        await pilot.press("slash", *"rule:2", "enter")
        await pilot.press("G")  # from the table, not typed into the filter
        await wait_for(pilot, lambda: answers.asked.get("candidates") == 1, "asked")
        await settle(app, pilot)
        assert any("review queue (v opens it)" in n for n in _notes(app))
        assert "1 candidates" in str(app.screen.sub_title)
        request = fake_provider.requests[-1]
        assert "rule 2 (No real threats): 10 inputs" in request[-1]["content"]
        # A capital G typed in the filter is text, not a batch.
        await pilot.press("slash", "G")
        await settle(app, pilot)
        assert app.screen.filter_input.value.endswith("G")
        assert answers.asked.get("candidates") == 1
    states = await _states(project_path)
    assert states["a brand new threat"][0] == "candidate"


# ---------------------------------------------------------------------- Label
async def _answered_project(path: Path, *, labels: dict[str, tuple[Verdict, str]]
                            | None = None) -> dict[str, int]:
    """The project with an answer of the model under test for c1-c4 under v1 (labelled
    per `labels`); returns the output id per case."""
    await _project(path, candidates=False)
    outputs = {}
    async with await Store.open(path) as store:
        version = await store.versions.latest()
        for case in await store.cases.all([CaseState.ACTIVE]):
            output = await store.outputs.add(
                case_id=case.id, version_id=version.id, model=FAKE_MODEL, params={},
                text=f"Reply to: {case.input}", status=OutputStatus.OK)
            outputs[case.ext_id] = output.id
            if labels and case.ext_id in labels:
                verdict, rationale = labels[case.ext_id]
                await store.labels.write(output.id, verdict, rationale)
    return outputs


async def _open_label(app: CoevoApp, pilot) -> LabelScreen:
    screen = await open_screen(app, pilot, "label")
    assert isinstance(screen, LabelScreen)
    await wait_for(pilot, lambda: screen.case is not None and screen.pane.output is not None,
                   "a case with its answer")
    return screen


async def test_s_on_label_asks_for_similar_cases_and_says_where_they_went(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    await _answered_project(project_path)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_label(app, pilot)
        assert screen.case.ext_id == "c1"
        await pilot.press("s")
        await wait_for(pilot, lambda: any("2 similar cases in the queue: v opens it" in n
                                          for n in _notes(app)), "where they went")
        await settle(app, pilot)
    async with await Store.open(project_path) as store:
        c1 = await store.cases.by_ext_id("c1")
        found = await store.cases.candidates()
    assert [(c.source, c.origin_case_id) for c in found] == [(CaseSource.SIMILAR, c1.id)] * 2
    assert [c.input for c in found] == [text for text, _, _ in answers.similar]


async def test_the_suggested_rationale_is_filled_and_edited_before_saving(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    await _answered_project(project_path)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_label(app, pilot)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, RationaleScreen), "the dialog")
        dialog = app.screen
        assert "ctrl+g suggest" in screen_text(app)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: dialog.query_one("#rationale-text").text
                       == answers.rationale, "the suggestion in the field")
        assert "the assistant's suggestion: edit it" in screen_text(app)
        assert answers.asked.get("rationale") == 1
        await pilot.press(*" Here: a joke.", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, RationaleScreen), "saved")
        await settle(app, pilot)
    async with await Store.open(project_path) as store:
        c1 = await store.cases.by_ext_id("c1")
        (output,) = await store.outputs.of_case(c1.id)
        label = await store.labels.current(output.id)
    assert label is not None and label.verdict == Verdict.BAD
    assert label.rationale == answers.rationale + " Here: a joke."
    assert label.source == LabelSource.HUMAN


async def test_a_judge_suggestion_is_accepted_with_one_key_and_overridden_by_a_label(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    outputs = await _answered_project(project_path)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_label(app, pilot)
        assert screen.check_action("accept_judge", ()) is None  # nothing to accept yet
        await pilot.press("J")
        await wait_for(pilot, lambda: "judge: bad: It lets a threat against a player"
                       in screen_text(app), "the suggestion under the answer")
        assert "y accepts" in screen_text(app)
        await wait_for(pilot, lambda: screen.check_action("accept_judge", ()) is True,
                       "y applies")
        await pilot.press("y")  # c1: the judge's verdict becomes the label
        await wait_for(pilot, lambda: screen.case.ext_id == "c2", "moved on")
        await wait_for(pilot, lambda: "judge: bad" in screen_text(app), "c2's suggestion")
        await pilot.press("g")  # c2: the user's own verdict overrides the suggestion
        await wait_for(pilot, lambda: screen.case.ext_id == "c3", "moved on again")
        await settle(app, pilot)
    async with await Store.open(project_path) as store:
        accepted = await store.labels.current(outputs["c1"])
        overridden = await store.labels.current(outputs["c2"])
        judged = await store.judgements.newest_for_outputs(outputs.values())
        version = await store.versions.latest()
        pairs = await store.judgements.pairs(version.id)
    assert accepted is not None and accepted.source == LabelSource.JUDGE
    assert accepted.verdict == Verdict.BAD
    assert judged[outputs["c1"]].label_id == accepted.id
    assert overridden is not None and overridden.source == LabelSource.HUMAN
    assert overridden.verdict == Verdict.GOOD
    assert judged[outputs["c2"]].label_id is None  # the suggestion was not taken
    assert sorted(pairs) == sorted([(Verdict.BAD, Verdict.BAD), (Verdict.GOOD, Verdict.BAD)])


async def test_the_judge_runs_after_a_run_when_an_assistant_model_is_configured(
        project: Path, make_test_app, answers: AssistantAnswers) -> None:
    app = make_test_app(project, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await app.open_screen("run")
        await wait_for(pilot, lambda: any(isinstance(j, AssistJob) and j.task == "judge"
                                          for j in app.jobs._jobs.values()), "the judge job")
        await wait_for(pilot, lambda: not app.jobs.running(), "every job ended")
        await wait_for(pilot, lambda: any(n.startswith("Judge done: judged 4 of 4")
                                          for n in _notes(app)), "its ending")
    assert answers.asked.get("judge") == 4


async def test_no_judge_after_a_run_without_an_assistant_model(
        project: Path, make_test_app, answers: AssistantAnswers,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COEVO_ASSISTANT_MODEL", raising=False)
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await app.open_screen("run")
        await wait_for(pilot, lambda: app.jobs.latest("run") is not None
                       and not app.jobs.latest("run").running, "the run ended")
        await settle(app, pilot)
        assert app.jobs.latest("judge") is None
    assert answers.asked.get("judge") is None and answers.asked.get("model") == 4


# ---------------------------------------------------------------------- Compare
async def test_compare_shows_the_judge_suggestion_and_y_accepts_it(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    outputs = await _answered_project(project_path)
    async with await Store.open(project_path) as store:
        v2 = await store.versions.create(INSTRUCTIONS + "\n4. Be kind.", note="kind")
        c1 = await store.cases.by_ext_id("c1")
        # The revision answered c1 as v1 did: a label on one is carried to the other.
        revised = await store.outputs.add(case_id=c1.id, version_id=v2.id, model=FAKE_MODEL,
                                          params={}, text="Reply to: gg ez",
                                          status=OutputStatus.OK)
        await store.judgements.add(revised.id, Verdict.UNSURE, "The rules do not say.",
                                   ASSISTANT)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: screen.list_ready and screen.case is not None,
                       "the list")
        for _ in range(4):  # to c1, wherever the status order put it
            if screen.case.id == c1.id:
                break
            await pilot.press("j")
            await settle(app, pilot)
        assert screen.case.id == c1.id
        await wait_for(pilot, lambda: "judge: unsure: The rules do not say." in
                       screen_text(app), "the suggestion in the revision's pane")
        assert screen.check_action("accept_judge", ()) is None  # the baseline has none
        await pilot.press("l")
        await wait_for(pilot, lambda: screen.focused_pane() is screen.right_pane, "right")
        assert screen.check_action("accept_judge", ()) is True
        await pilot.press("y")
        await wait_for(pilot, lambda: "[UNSURE] (judge)" in screen_text(app), "accepted")
        await wait_for(pilot, lambda: "~ unsure (carried)" in screen_text(app),
                       "carried to the baseline's identical answer, shown")
        await settle(app, pilot)
    async with await Store.open(project_path) as store:
        label = await store.labels.current(revised.id)
        carried = await store.labels.current(outputs["c1"])
    assert label is not None and label.source == LabelSource.JUDGE
    assert label.verdict == Verdict.UNSURE
    assert carried is not None and carried.source == LabelSource.CARRIED


# ---------------------------------------------------------------------- Prompt
async def test_the_revision_draft_is_saved_with_its_motivating_cases(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    await _answered_project(project_path, labels={
        "c1": (Verdict.BAD, "Gloating is fine."), "c2": (Verdict.UNSURE, "Not sure."),
        "c4": (Verdict.GOOD, "")})
    drafted = INSTRUCTIONS + "\n4. Gloating after a win is trash talk, not abuse."
    answers.revision = {"instructions": drafted, "summary": "Gloating is allowed (c1).",
                        "case_ids": ["c1"]}
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        assert isinstance(screen, PromptScreen)
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: screen.mode == "diff", "the draft's diff")
        await settle(app, pilot)
        text = screen_text(app)
        assert "Draft of v2 (the assistant's) against v1" in text
        assert "+4. Gloating after a win is trash talk, not abuse." in text
        assert screen.instructions_area.text == drafted
        await pilot.press("escape")  # back to the editor, where it is changed freely
        assert screen.mode == "edit"
        await pilot.press(*" Always.")  # the cursor waits at the draft's end
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SaveVersionScreen), "save")
        dialog = app.screen
        await wait_for(pilot, lambda: dialog._loaded.is_set() and dialog.choices, "choices")
        # The draft's summary is the note; its case (c1) is ticked, c2 is offered unticked.
        assert dialog.query_one("#save-version-note").value == "Gloating is allowed (c1)."
        ticked = {dialog.choices[i].text.split()[0]
                  for i in dialog.query_one("#save-version-cases").selected}
        assert ticked == {"c1"}
        assert {c.text.split()[0] for c in dialog.choices} == {"c1", "c2"}
        # Ticked or not reads without colour: an X, or an empty box.
        lines = screen_text(app).splitlines()
        assert "▐X▌ c1 bad" in next(line for line in lines if "c1 bad" in line)
        assert "▐ ▌ c2 unsure" in next(line for line in lines if "c2 unsure" in line)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SaveVersionScreen), "saved")
        await settle(app, pilot)
    async with await Store.open(project_path) as store:
        v2 = await store.versions.by_number(2)
        c1 = await store.cases.by_ext_id("c1")
        motivating = await store.versions.motivating_cases(v2.id)
        (output,) = await store.outputs.of_case(c1.id)
        label = await store.labels.current(output.id)
    assert v2.instructions == drafted + " Always."
    assert v2.note == "Gloating is allowed (c1)."
    assert motivating == [(c1.id, label.id)]


async def test_the_draft_is_an_app_job_that_outlives_the_prompt_screen(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    # On the offline model a draft takes minutes: its progress shows, leaving the screen
    # does not lose it, and the draft is in the editor when the screen is opened again.
    await _answered_project(project_path, labels={"c1": (Verdict.BAD, "Gloating is fine.")})
    drafted = INSTRUCTIONS + "\n4. Gloating after a win is trash talk, not abuse."
    answers.revision = {"instructions": drafted, "summary": "Gloating is allowed (c1).",
                        "case_ids": ["c1"]}
    fake_provider.hold(after_chunks=1)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: fake_provider.held == 1, "the draft asked for")
        await wait_for(pilot, lambda: re.search(r"draft from v1 \(writing, [1-9]\d* chars\)",
                                                screen_text(app)), "its progress")
        (job,) = app.jobs.running_assist("revision")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CasesScreen), "back on Cases")
        assert job.running
        fake_provider.release()
        await wait_for(pilot, lambda: not job.running, "the draft written")
        await wait_for(pilot, lambda: any("draft of a revision of v1 is ready: p shows it" in n
                                          for n in _notes(app)), "the app says where")
        screen = await open_screen(app, pilot, "prompt")
        assert isinstance(screen, PromptScreen)
        await wait_for(pilot, lambda: screen.mode == "diff", "the draft's diff")
        assert screen.instructions_area.text == drafted
        assert "Draft of v2 (the assistant's) against v1" in screen_text(app)
    assert answers.asked.get("revision") == 1


async def test_X_stops_a_draft_and_nothing_changes(
        project_path: Path, make_test_app, fake_provider: FakeModel,
        answers: AssistantAnswers) -> None:
    await _answered_project(project_path, labels={"c1": (Verdict.BAD, "Gloating is fine.")})
    answers.revision = {"instructions": INSTRUCTIONS + "\n4. More.", "summary": "More.",
                        "case_ids": ["c1"]}
    fake_provider.hold(after_chunks=1)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: fake_provider.held == 1, "the draft asked for")
        (job,) = app.jobs.running_assist("revision")
        # The editor is read-only meanwhile (the draft would replace what is typed) and
        # has given the focus away, so X reaches the app.
        assert screen.instructions_area.read_only
        assert not screen.instructions_area.has_focus
        await pilot.press("X")
        await wait_for(pilot, lambda: not job.running, "the draft stopped")
        await wait_for(pilot, lambda: any("Draft stopped" in n for n in _notes(app)), "said")
        assert screen.mode == "edit" and screen.instructions_area.text == INSTRUCTIONS
        assert not screen.instructions_area.read_only
    fake_provider.release()
    assert fake_provider.streams_cancelled == 1


async def test_no_draft_without_bad_or_unsure_cases_says_why(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    await _answered_project(project_path)
    app = make_test_app(project_path, assistant_model=ASSISTANT)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press("ctrl+d")
        await wait_for(pilot, lambda: any(n.startswith("No draft: no bad or unsure")
                                          for n in _notes(app)), "why not")
        assert screen.mode == "edit" and screen.instructions_area.text == INSTRUCTIONS
    assert answers.asked.get("revision") is None


# ---------------------------------------------------------------------- Overview
async def test_overview_shows_agreement_and_policy_coverage(
        project_path: Path, make_test_app, answers: AssistantAnswers) -> None:
    outputs = await _answered_project(project_path, labels={
        "c1": (Verdict.GOOD, ""), "c2": (Verdict.BAD, "no"), "c3": (Verdict.BAD, "slur")})
    async with await Store.open(project_path) as store:
        # The judge says bad to all three: it disagrees on c1 (the user said good).
        for ext, verdict in (("c1", Verdict.BAD), ("c2", Verdict.BAD), ("c3", Verdict.BAD)):
            await store.judgements.add(outputs[ext], verdict, "why", ASSISTANT)
        version = await store.versions.latest()
        await store.cases.add_candidates([NewCase(
            "waiting for rule 2", source=CaseSource.GENERATED, rule_number=2,
            origin_version_id=version.id)])
    app = make_test_app(project_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        assert isinstance(screen, OverviewScreen)
        await wait_for(pilot, lambda: screen.rows and not screen.workers, "loaded")
        await pilot.press("J")
        await settle(app, pilot)
        text = screen_text(app)
        # 3 answers with both verdicts, 2 agree; every judge verdict is bad, so chance
        # agreement is p_e = (1/3*0 + 2/3*1) = 2/3 and kappa = (2/3 - 2/3) / (1/3) = 0.
        assert "v1 3 answers: 67% agree, kappa 0.00" in text
        assert "Confusion under v1" in text
        lines = text.splitlines()
        good_row = next(line for line in lines if "you good" in line)
        bad_row = next(line for line in lines if "you bad" in line)
        assert good_row.split()[2:] == ["0", "1", "0"]
        assert bad_row.split()[2:] == ["0", "2", "0"]
        await pilot.press("P")
        await settle(app, pilot)
        text = screen_text(app)
        assert "Policy coverage of v1 (! marks a rule no case probes)" in text
        rule2 = next(line for line in text.splitlines() if "2 No real threats" in line)
        assert rule2.split()[0] == "!" and rule2.rstrip().endswith("no cases")
        assert rule2.split()[-5:-2] == ["0", "1", "n/a"]  # 0 cases, 1 waiting
        rule3 = next(line for line in text.splitlines() if "3 Trash talk is fine" in line)
        assert "!" not in rule3 and rule3.split()[-3:] == ["2", "0", "50%"]


async def test_overview_says_why_kappa_is_undefined(project_path: Path, make_test_app,
                                                    answers: AssistantAnswers) -> None:
    outputs = await _answered_project(project_path, labels={
        "c1": (Verdict.BAD, "x"), "c2": (Verdict.BAD, "y")})
    async with await Store.open(project_path) as store:
        for ext in ("c1", "c2"):
            await store.judgements.add(outputs[ext], Verdict.BAD, "why", ASSISTANT)
    app = make_test_app(project_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "overview")
        await wait_for(pilot, lambda: screen.rows and not screen.workers, "loaded")
        await pilot.press("J")
        await settle(app, pilot)
        assert "2 answers: 100% agree, kappa undefined: every verdict is bad" in \
            " ".join(screen_text(app).split())


# ---------------------------------------------------------------------- the status bar
async def test_the_status_bar_names_the_assistant_model(project: Path, make_test_app,
                                                        answers: AssistantAnswers) -> None:
    app = make_test_app(project, assistant_model="coevo-local/smollm2")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "prompt")
        assert "assistant: small local model" in screen_text(app)
    app = make_test_app(project, assistant_model=ASSISTANT)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "prompt")
        assert f"assistant: {ASSISTANT}" in screen_text(app)
