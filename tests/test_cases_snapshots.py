"""SVG snapshots of the Cases screen, its editor and the help screen (80x24, 120x40, NO_COLOR).

The project is fixed (no dates or ids that vary are shown), so the screens are the same on
every run. Regenerate after a deliberate change with
``pytest tests/test_cases_snapshots.py --snapshot-update`` and look at the SVGs under
tests/__snapshots__/test_cases_snapshots/ before committing them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pilot_support import settle, wait_for_screen
from textual.screen import Screen

from coevo_tui.app import CoevoApp
from coevo_tui.screens.dialogs.case_editor import CaseEditorScreen
from coevo_tui.screens.dialogs.help import HelpScreen
from coevo_tui.screens.registry import SCREENS
from coevo_tui.domain.model import CaseState
from coevo_tui.store import NewCase, Store

CASES = [
    NewCase(input="gg ez, you all played like bots", tags=("trash-talk",), ext_id="m1"),
    NewCase(input="uninstall the game, you're garbage", tags=("trash-talk", "edge"),
            ext_id="m2"),
    NewCase(input="I know where you live, 14 Elm Street", tags=("doxxing",), ext_id="m3",
            note="address: always remove"),
    NewCase(input="free skins at this link, just log in with your password",
            tags=("scam",), ext_id="m4"),
    NewCase(input="that play was sick\nseriously", ext_id="m5"),
    NewCase(input="an old case nobody needs", ext_id="m6", state=CaseState.ARCHIVED),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "moderation.db"

    async def build() -> None:
        store = await Store.open(path)
        try:
            await store.cases.add_many(CASES, source_name="snapshot")
        finally:
            await store.close()

    asyncio.run(build())
    return path


def _app(make_test_app, project: Path) -> CoevoApp:
    """The app on `project` (from make_test_app) with every registered screen's key shown,
    as when all screens exist, so these snapshots do not change as other screens land."""
    app = make_test_app(project, model=None)
    app.available_screens = set(SCREENS)
    return app


def _then(*keys: str, shows: type[Screen] | None = None):
    """A run_before that waits for the table to load, presses `keys`, waits for the
    screen they open (`shows`), and settles (but for a write waiting for its editor)."""

    async def run_before(pilot) -> None:
        app: CoevoApp = pilot.app
        await settle(app, pilot)
        if keys:
            await pilot.press(*keys)
        if shows is not None:
            await wait_for_screen(app, pilot, shows)
        await settle(app, pilot, leave=["cases-write"])

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_cases_screen(snap_compare, project: Path, size: tuple[int, int], make_test_app) -> None:
    assert snap_compare(_app(make_test_app, project), terminal_size=size,
                        run_before=_then("down", "down"))


def test_cases_screen_filtered_without_colour(snap_compare, project: Path, make_test_app,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(_app(make_test_app, project), terminal_size=(80, 24),
                        run_before=_then("slash", *"#trash-talk", "enter", "down"))


def test_case_editor(snap_compare, project: Path, make_test_app) -> None:
    assert snap_compare(_app(make_test_app, project), terminal_size=(80, 24),
                        run_before=_then("e", shows=CaseEditorScreen))


def test_help_screen(snap_compare, project: Path, make_test_app) -> None:
    assert snap_compare(_app(make_test_app, project), terminal_size=(80, 24),
                        run_before=_then("question_mark", shows=HelpScreen))
