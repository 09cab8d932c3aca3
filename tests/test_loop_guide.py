"""The guided loop on the Cases screen, driven with Pilot: the loop line names the next step
and its key, follows the facts (a label), `L` opens the whole loop and esc closes it, and a
hidden line stays hidden when the app is started again."""

from __future__ import annotations

from pathlib import Path

import pytest

from coevo_tui.domain.model import OutputStatus
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.dialogs.loop_panel import LoopPanel
from coevo_tui.screens.dialogs.rationale import RationaleScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.services.workflow import LOOP_LINE_PREFERENCE
from coevo_tui.store import NewCase, Store
from coevo_tui.widgets.loop_line import LoopLine

from pilot_support import notifications, screen_text, settle, wait_for, wait_for_screen


@pytest.fixture
async def project(project_path: Path) -> Path:
    """Two active cases, each answered by the fake model under v1, none labelled."""
    async with await Store.open(project_path, instructions="Allow banter.") as store:
        version = await store.versions.latest()
        for text in ("gg ez", "uninstall the game"):
            case = await store.cases.add(NewCase(text))
            await store.outputs.add(case_id=case.id, version_id=version.id, model=FAKE_MODEL,
                                    params={}, text=f"allowed: {text}", status=OutputStatus.OK)
    return project_path


def line_of(app) -> str:
    line = app.screen.query_one(LoopLine)
    return " ".join(str(widget.render()) for widget in line.children)


async def test_the_line_names_the_next_step_and_follows_a_label(project: Path,
                                                                make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        assert app.screen.query_one(LoopLine).display
        text = screen_text(app)
        assert "Label: 2 answers wait for a label — l labels them" in text
        assert "L the loop" in text

        await pilot.press("l")  # as the line says
        label = await wait_for_screen(app, pilot, LabelScreen)
        await settle(app, pilot)
        await pilot.press("g")
        await settle(app, pilot)
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await settle(app, pilot)
        assert label is not app.screen
        assert "Label: 1 answer waits for a label" in screen_text(app)

        await pilot.press("l")
        await wait_for_screen(app, pilot, LabelScreen)
        await settle(app, pilot)
        await pilot.press("j")  # the second case
        await settle(app, pilot)
        await pilot.press("b")  # bad: a rationale is asked for
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press("escape")  # skip it
        await wait_for_screen(app, pilot, LabelScreen)
        await settle(app, pilot)
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await settle(app, pilot)
        assert "Label: 1 bad/unsure label lacks a rationale — l, then r writes one" in screen_text(app)


async def test_L_opens_the_whole_loop_and_esc_closes_it(project: Path, make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("L")
        panel = await wait_for_screen(app, pilot, LoopPanel)
        await settle(app, pilot)
        text = screen_text(app)
        assert "The loop, under v1 · stage: Label · 1 of 9 steps to do" in text
        assert "✓ Run v1 over the test set: every active case has an answer under v1" in text
        assert "▶ Label the answers: 2 answers wait for a label" in text
        assert "l labels them, then n finds the next unlabelled" in text
        assert "– Look at the regressions: v1 has no earlier version" in text
        assert "The line on the Cases screen is shown: h hides it · esc closes" in text
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        assert panel not in app.screen_stack
        assert app.screen.query_one(LoopLine).display  # closing changed nothing


async def test_a_hidden_line_stays_hidden_after_a_restart(project: Path,
                                                          make_test_app) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("L")
        await wait_for_screen(app, pilot, LoopPanel)
        await pilot.press("h")  # hide it from the panel
        await wait_for_screen(app, pilot, CasesScreen)
        await settle(app, pilot)
        assert not app.screen.query_one(LoopLine).display
        assert "answers wait" not in screen_text(app)
        assert any("Loop line hidden: L still shows the loop, ^l brings the line back" in n
                   for n in notifications(app))

    async with await Store.open(project) as store:
        assert (await store.settings.preferences())[LOOP_LINE_PREFERENCE] is False

    again = make_test_app(project)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(again, pilot)
        assert not again.screen.query_one(LoopLine).display
        assert "answers wait" not in screen_text(again)
        await pilot.press("L")  # the panel still tells where the loop stands
        await wait_for_screen(again, pilot, LoopPanel)
        await settle(again, pilot)
        assert "The line on the Cases screen is hidden: h shows it" in screen_text(again)
        await pilot.press("escape")
        await wait_for_screen(again, pilot, CasesScreen)
        await pilot.press("ctrl+l")  # and the Cases screen's own key brings it back
        await settle(again, pilot)
        assert again.screen.query_one(LoopLine).display
        await wait_for(pilot, lambda: "Label: 2 answers wait" in screen_text(again),
                       "the line filled in")

    async with await Store.open(project) as store:
        assert (await store.settings.preferences())[LOOP_LINE_PREFERENCE] is True


async def test_the_line_shows_remapped_keys(project: Path, make_test_app) -> None:
    app = make_test_app(project, keymap={"cases.label": "f2", "cases.loop": "f3"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "2 answers wait for a label — f2 labels them" in text
        assert "f3 the loop" in text


def test_while_the_newest_version_runs_the_line_says_so_instead_of_R() -> None:
    from coevo_tui.services.workflow import KeyHint, LoopState, Step
    from coevo_tui.widgets.loop_line import line_text

    class KeymapOnly:  # what line_text reads of the app: the keymap Textual applies
        _keymap = {"app.stop_job": ""}

    run = Step("run", "run", "Run v1 over the test set", False, 3,
               "3 cases have no answer under v1", (KeyHint("app.run", "R", "runs them"),))
    state = LoopState(1, (run,))
    app = KeymapOnly()
    assert line_text(app, state) == "Run: 3 cases have no answer under v1 — R runs them"
    assert line_text(app, state, running=True) == "Run: v1 is running — X stops it"
