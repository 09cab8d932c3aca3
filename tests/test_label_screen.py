"""The Label screen, driven with Pilot against the fake litellm provider (no network):
streaming, every labelling key, rationales, history, carry-over, errors, the status bar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coevo_tui.app import CoevoApp
from coevo_tui.domain.model import CaseState, LabelSource, OutputStatus, Verdict
from coevo_tui.llm.client import ModelClient, RetryPolicy
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.screens.dialogs.rationale import RationaleScreen
from coevo_tui.store import NewCase, Store
from coevo_tui.widgets.verdict_bar import verdict_text

from pilot_support import (burst, notifications, open_screen, screen_text, settle, wait_for,
                           wait_for_screen)

CASES = [
    NewCase(input="gg ez", ext_id="c1"),
    NewCase(input="uninstall the game lol", ext_id="c2"),
    NewCase(input="I'm gonna kill you next round", ext_id="c3"),
    NewCase(input="nice shot!", ext_id="c4"),
    NewCase(input="an archived message", ext_id="old", state=CaseState.ARCHIVED),
]


@pytest.fixture
async def project(project_path: Path) -> Path:
    store = await Store.open(project_path, instructions="Moderate gaming chat.")
    try:
        await store.cases.add_many(CASES, source_name="test")
    finally:
        await store.close()
    return project_path


async def answered(pilot, screen: LabelScreen, ext_id: str) -> None:
    """Case `ext_id` is on show with its stored answer and its verdict, and the app is idle
    (the answer's stream, the label's write, the move to the case have all finished)."""
    await settle(pilot.app, pilot)
    await wait_for(pilot, lambda: screen.case is not None and screen.case.ext_id == ext_id
                   and screen.pane.output is not None
                   and screen.pane.output.case_id == screen.case.id
                   and screen.verdict_bar.label is screen.pane.label,
                   f"{ext_id} answered and shown")


async def labels_of(project: Path, ext_id: str) -> list[tuple[str, str, str]]:
    """Every label of the case's outputs, oldest first: (verdict, rationale, source)."""
    store = await Store.open(project)
    try:
        case = await store.cases.by_ext_id(ext_id)
        result = []
        for output in await store.outputs.of_case(case.id):
            result += [(lb.verdict.value, lb.rationale, lb.source.value)
                       for lb in await store.labels.history(output.id)]
        return result
    finally:
        await store.close()


# ---------------------------------------------------------------------- streaming
async def test_the_answer_streams_in_then_is_stored(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    full = "This message is friendly banter between players and is allowed. " * 3
    fake_provider.responder = lambda messages: full
    fake_provider.configure(chunks=16, chunk_delay=0.15)
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label", idle=False)  # a slow stream
        await wait_for(pilot, lambda: screen.pane.is_streaming and len(screen.pane.text) > 10,
                       "partial text received")
        await wait_for(pilot, lambda: "This message is" in screen_text(app),
                       "partial text on screen", limit=50)
        partial = screen.pane.text
        assert full.startswith(partial) and len(partial) < len(full)
        assert screen.pane.output is None
        assert "streaming" in screen_text(app)
        assert app.session.store is not None
        assert await app.session.store.outputs.of_case(screen.case.id) == []  # nothing stored yet
        await answered(pilot, screen, "c1")
        output = screen.pane.output
        assert output is not None and output.text == full and output.status == OutputStatus.OK
        stored = await app.session.store.outputs.of_case(screen.case.id)
        assert [o.text for o in stored] == [full]
        assert "streaming" not in screen_text(app)
        # Redraws were coalesced: fewer repaints than tokens would give is not asserted
        # (timing); the count is printed by benchmarks/stream_redraws.py.


async def test_opening_label_on_an_unrun_project_streams_the_case(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        assert "Reply to: gg ez" in screen_text(app)
        assert "Case c1" in screen_text(app) and "1 of 4" in screen_text(app)
        assert fake_provider.calls == 1


# ---------------------------------------------------------------------- labelling keys
async def test_every_labelling_key(project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")

        await pilot.press("g")  # good, then on to the next case
        await answered(pilot, screen, "c2")

        await pilot.press("b")  # bad asks for a rationale
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press(*"threat")
        await pilot.press("enter")
        await answered(pilot, screen, "c3")

        await pilot.press("u")  # unsure; esc skips the rationale but keeps the verdict
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press("escape")
        await answered(pilot, screen, "c4")
        assert app.screen is screen

        await pilot.press("k")  # back to c3; r writes the rationale afterwards
        await answered(pilot, screen, "c3")
        assert verdict_text(screen.verdict_bar.label) == "[UNSURE]"
        await pilot.press("r")
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press(*"never ok")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.pane.label is not None
                       and screen.pane.label.rationale == "never ok",
                       "edited rationale shown")
        assert screen.case is not None and screen.case.ext_id == "c3"  # r does not advance
        assert "never ok" in screen_text(app)

        await pilot.press("k", "k")  # c1; n jumps to the next unlabelled case, c4
        await answered(pilot, screen, "c1")
        await pilot.press("n")
        await answered(pilot, screen, "c4")
        await pilot.press("j")  # the last case: j stays
        await pilot.pause()
        assert screen.case.ext_id == "c4"
        assert "Labelled" in screen_text(app) and "3/4" in screen_text(app)

    assert await labels_of(project, "c1") == [("good", "", "human")]
    assert await labels_of(project, "c2") == [("bad", "threat", "human")]
    assert await labels_of(project, "c3") == [("unsure", "", "human"),
                                              ("unsure", "never ok", "human")]
    assert await labels_of(project, "c4") == []


async def test_changing_a_label_keeps_the_old_one_in_history(project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        await pilot.press("g")
        await answered(pilot, screen, "c2")
        await pilot.press("k")
        await answered(pilot, screen, "c1")
        assert verdict_text(screen.verdict_bar.label) == "[GOOD]"
        await pilot.press("b")
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press(*"taunt")
        await pilot.press("enter")
        await answered(pilot, screen, "c2")
        await pilot.press("k")
        await answered(pilot, screen, "c1")
        assert verdict_text(screen.verdict_bar.label) == "[BAD]"
        assert "1 earlier label kept in history" in screen_text(app)
    assert await labels_of(project, "c1") == [("good", "", "human"),
                                              ("bad", "taunt", "human")]


async def test_labelling_waits_for_an_answer(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    fake_provider.hold()
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label", idle=False)  # its stream is held
        await wait_for(pilot, lambda: screen.pane.is_streaming, "streaming")
        assert screen.check_action("verdict", ("good",)) is None  # dimmed: nothing to label
        await pilot.press("g")
        await pilot.pause()
        assert screen.case.ext_id == "c1"
        fake_provider.release()
        await answered(pilot, screen, "c1")
        assert screen.check_action("verdict", ("good",)) is True


# ---------------------------------------------------------------------- re-run and cache
async def test_space_reruns_with_a_fresh_call(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        first = screen.pane.output
        await pilot.press("g")
        await answered(pilot, screen, "c2")
        await pilot.press("k")
        await answered(pilot, screen, "c1")
        assert fake_provider.calls == 2
        await pilot.press("space")
        await wait_for(pilot, lambda: screen.pane.output is not None
                       and screen.pane.output.id != first.id, "a new output")
        await answered(pilot, screen, "c1")
        assert fake_provider.calls == 3  # the model was called, not the cache
        second = screen.pane.output
        assert not second.cached and second.text == first.text
        # Identical text: the new output inherits the person's label, visibly carried.
        assert screen.pane.label is not None and screen.pane.label.source == LabelSource.CARRIED
        assert "~ good (carried)" in screen_text(app)
        assert app.session.store is not None
        assert len(await app.session.store.outputs.of_case(first.case_id)) == 2


async def test_a_cached_answer_is_shown_as_cached_and_carries_its_label(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        await pilot.press("b")
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press(*"taunting")
        await pilot.press("enter")
        await answered(pilot, screen, "c2")
        assert app.session.store is not None
        # v2 with the same instructions: the same call, so the answer comes from the cache.
        await app.session.store.versions.create("Moderate gaming chat.", note="same words")
        await pilot.press("escape")
        calls = fake_provider.calls
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        assert screen.version is not None and screen.version.number == 2
        assert screen.pane.output.cached and fake_provider.calls == calls
        text = screen_text(app)
        assert "cached" in text
        assert "~ bad (carried)" in text and "taunting" in text


async def test_a_human_label_propagates_to_identical_answers(project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")  # v1 answered, unlabelled
        v1_output = screen.pane.output
        assert app.session.store is not None
        await app.session.store.versions.create("Moderate gaming chat.", note="same words")
        await pilot.press("escape")
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")  # v2: the same answer (cache), unlabelled
        await pilot.press("g")
        await answered(pilot, screen, "c2")
        inherited = await app.session.store.labels.current(v1_output.id)
        assert inherited is not None and inherited.verdict == Verdict.GOOD
        assert inherited.source == LabelSource.CARRIED


# ---------------------------------------------------------------------- errors, model
async def test_a_provider_error_is_shown_on_the_case(
        project: Path, fake_provider: FakeModel, make_test_app) -> None:
    client = ModelClient(retry=RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.002))
    fake_provider.fail_next("error", count=2)
    app = make_test_app(project, client=client)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await wait_for(pilot, lambda: screen.pane.state == "error", "error shown")
        assert screen.pane.output.status == OutputStatus.ERROR
        text = screen_text(app)
        assert "ERROR" in text and "fake server error" in text
        assert screen.check_action("verdict", ("bad",)) is None  # an error is not labelled
        await pilot.press("space")  # calling again works: the app kept running
        await answered(pilot, screen, "c1")
        assert screen.pane.output.status == OutputStatus.OK


async def test_the_status_bar_names_the_model(project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(app, pilot, "label")
        assert "model: coevo-fake/echo (from option)" in screen_text(app)


async def test_the_status_bar_says_when_it_is_the_tiny_demo_model(make_test_app) -> None:
    # A project without cases: nothing is streamed, so the local model is never loaded.
    app = make_test_app(model="coevo-local/smollm2")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "label")
        await wait_for(pilot, lambda: "No cases to label" in screen_text(app), "empty list")
        assert "tiny offline demo model" in screen_text(app)


async def test_without_a_model_the_screen_says_how_to_configure_one(
        project: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.delenv("COEVO_MODEL", raising=False)
    monkeypatch.delenv("COEVO_API_BASE", raising=False)
    monkeypatch.setattr("coevo_tui.llm.config.local_model_installed", lambda: False)
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await wait_for(pilot, lambda: screen.pane.state == "no-model", "no-model state")
        text = screen_text(app)
        assert "no model configured" in text and "--model" in text
        await pilot.press("R")  # a run cannot start either: one notification, no crash
        await settle(app, pilot)
        assert any("no model configured" in message for message in notifications(app))
        assert app.is_running


# ---------------------------------------------------------------------- layout
async def test_the_label_screen_fits_80x24_and_reads_without_colour(
        project: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        await pilot.press("g")
        await answered(pilot, screen, "c2")
        await pilot.press("k")
        await answered(pilot, screen, "c1")
        # The progress line redraws on its own timer (10 a second): wait for its tick.
        await wait_for(pilot, lambda: "1/4" in screen_text(app), "the progress line")
        lines = screen_text(app).splitlines()
        assert len(lines) == 24
        text = "\n".join(lines)
        for needed in ("Case c1", "gg ez", "Reply to: gg ez", "Verdict [GOOD]", "Labelled",
                       "1/4", "model: coevo-fake/echo", "Good", "Bad", "Unsure"):
            assert needed in text, needed
        assert "█" in text and "░" in text  # the progress bar is drawn in characters


def test_opening_the_label_screen_does_not_import_litellm() -> None:
    code = ("import sys, coevo_tui.screens.label, coevo_tui.screens.prompt;"
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"



# ---------------------------------------------------------------------- from the Cases screen
def table_rows(app: CoevoApp) -> list[str]:
    from coevo_tui.widgets.case_table import CaseTable

    table = app.screen.query_one(CaseTable)
    return [row[1] for row in table.rows]


async def test_enter_and_l_open_label_on_the_shown_cases_from_the_cursor(
        project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"-nice", "enter")  # filter: c1, c2, c3
        await wait_for(pilot, lambda: table_rows(app) == ["c1", "c2", "c3"], "filtered")
        await pilot.press("down", "enter")
        screen = await wait_for_screen(app, pilot, LabelScreen)
        await answered(pilot, screen, "c2")
        assert screen.case_ids and len(screen.case_ids) == 3
        assert "2 of 3" in screen_text(app)
        await pilot.press("j")
        await answered(pilot, screen, "c3")
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await pilot.press("l")
        await answered(pilot, await wait_for_screen(app, pilot, LabelScreen), "c2")


async def test_the_cases_table_shows_and_filters_the_latest_verdict(
        project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        await pilot.press("g")
        await answered(pilot, screen, "c2")
        await pilot.press("b")
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press("escape")
        await answered(pilot, screen, "c3")
        await pilot.press("k", "k", "space")  # c1 again: its new answer is carried good
        await wait_for(pilot, lambda: screen.pane.label is not None
                       and screen.pane.label.source == LabelSource.CARRIED, "carried")
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await wait_for(pilot, lambda: "~good" in screen_text(app), "verdicts refreshed")
        text = screen_text(app)
        assert "Verdict" in text
        rows = {line.split()[0]: line for line in text.splitlines() if line.split()
                and line.split()[0] in ("c1", "c2", "c3", "c4")}
        assert "~good" in rows["c1"] and " bad " in rows["c2"] + " "
        assert "good" not in rows["c3"] and "bad" not in rows["c4"]

        await pilot.press("slash", *"verdict:bad", "enter")
        await wait_for(pilot, lambda: table_rows(app) == ["c2"], "verdict:bad")
        await pilot.press("escape")  # leave the filter field... and clear it
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(table_rows(app)) == 4, "filter cleared")
        await pilot.press("V")  # cycles: good, bad, unsure, unlabelled, all
        await wait_for(pilot, lambda: table_rows(app) == ["c1"], "verdict:good")
        await pilot.press("V", "V", "V")
        await wait_for(pilot, lambda: table_rows(app) == ["c3", "c4"], "unlabelled")
        assert "verdict:unlabelled" in screen_text(app)
        await pilot.press("V")
        await wait_for(pilot, lambda: len(table_rows(app)) == 4, "all again")
        await pilot.press("slash", *"verdict:great", "enter")
        await wait_for(pilot, lambda: "no verdict 'great'" in screen_text(app), "problem")


def test_split_verdict_filter() -> None:
    from coevo_tui.domain.case_query import split_verdict_filter

    assert split_verdict_filter("refund #edge") == ("refund #edge", None, None)
    assert split_verdict_filter("verdict:bad refund") == ("refund", frozenset({"bad"}), None)
    assert split_verdict_filter("verdict:un verdict:g")[1] == {"unsure", "unlabelled", "good"}
    rest, verdicts, problem = split_verdict_filter("verdict:nope x")
    assert rest == "x" and verdicts is None and problem and "nope" in problem


# ---------------------------------------------------------------------- typing fast
async def test_a_rationale_typed_straight_after_b_loses_no_key(
        project: Path, make_test_app) -> None:
    # "b" and the rationale arrive in one burst (a fast typist, an SSH connection): every
    # key after "b" belongs to the rationale. Before the dialog opened in b's own handler,
    # the "q" of "quite" reached the Label screen underneath and quit the app.
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        await answered(pilot, screen, "c1")
        burst(app, ["b", *"quite rude, go", "enter"])
        await answered(pilot, screen, "c2")
        assert app.is_running and app.screen is screen
    assert await labels_of(project, "c1") == [("bad", "quite rude, go", "human")]
    assert await labels_of(project, "c2") == []
