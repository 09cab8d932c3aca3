"""SVG snapshots of the Compare and Overview screens at 80x24 and 120x40.

The project is fixed (tests/comparison_project.py: answers, labels, costs and latencies
stored directly, nothing streams), so the screens are the same on every run. Regenerate
after a deliberate change with ``pytest tests/test_snapshots.py --snapshot-update`` and look
at the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from comparison_project import build
from pilot_support import open_screen, settle, wait_for, wait_for_screen

from coevo_tui.app import CoevoApp
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.screens.overview import OverviewScreen


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "moderation.db"
    asyncio.run(build(path))
    return path


def _shows_its_data(screen: object) -> bool:
    """Compare: the list is sorted (j/k wait for it) and both panes show their answers;
    Overview: its rows are counted."""
    if isinstance(screen, CompareScreen):
        return screen.list_ready and all(p.state in ("stored", "error")
                                         for p in (screen.left_pane, screen.right_pane))
    return isinstance(screen, OverviewScreen) and bool(screen.rows)


def _opened(name: str, *keys: str):
    """A run_before that opens screen `name`, waits until it shows its data, then presses
    `keys` and waits for the workers again (the case's verdict history, a key's effect)."""

    async def run_before(pilot) -> None:
        app: CoevoApp = pilot.app
        screen = await open_screen(app, pilot, name)
        await wait_for(pilot, lambda: _shows_its_data(screen), f"the {name} screen loaded")
        if keys:
            await pilot.press(*keys)
        await settle(app, pilot)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_compare_screen(snap_compare, project: Path, size: tuple[int, int], make_test_app) -> None:
    assert snap_compare(make_test_app(project, model=None), terminal_size=size,
                        run_before=_opened("compare"))


def test_compare_screen_instruction_diff(snap_compare, project: Path, make_test_app) -> None:
    assert snap_compare(make_test_app(project, model=None), terminal_size=(80, 24),
                        run_before=_opened("compare", "d"))


def test_compare_screen_without_colour(snap_compare, project: Path,
                                       monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_test_app(project, model=None), terminal_size=(80, 24),
                        run_before=_opened("compare", "j", "l"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_overview_screen(
        snap_compare, project: Path, size: tuple[int, int], make_test_app) -> None:
    assert snap_compare(make_test_app(project, model=None), terminal_size=size,
                        run_before=_opened("overview"))


def test_overview_screen_without_colour(snap_compare, project: Path,
                                        monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_test_app(project, model=None), terminal_size=(80, 24),
                        run_before=_opened("overview"))


# ---------------------------------------------------------------------- Label and Prompt
def _fixed_times(path: Path) -> Path:
    """Give every row the same creation time, so screens that show dates stay the same."""
    import sqlite3

    with sqlite3.connect(path) as db:
        for table in ("prompt_version", "cases", "output", "label"):
            db.execute(f"UPDATE {table} SET created_at = '2026-11-30T09:15:00.000+00:00'")
    return path


def _label_opened(*keys: str):
    """A run_before that opens the Label screen from Cases (`enter` on the first case),
    waits until its stored answer and verdict show, then presses `keys`."""

    async def run_before(pilot) -> None:
        from coevo_tui.screens.label import LabelScreen

        app: CoevoApp = pilot.app
        await settle(app, pilot)
        await pilot.press("enter")
        screen = await wait_for_screen(app, pilot, LabelScreen)
        await wait_for(pilot, lambda: screen.case is not None and screen.pane.state == "stored"
                       and screen.verdict_bar.label is screen.pane.label, "an answer shown")
        if keys:
            await pilot.press(*keys)
        await settle(app, pilot)

    return run_before


def _prompt_opened(*keys: str):
    """A run_before that opens the Prompt screen (`p`) and presses `keys`."""

    async def run_before(pilot) -> None:
        app: CoevoApp = pilot.app
        await open_screen(app, pilot, "prompt")
        if keys:
            await pilot.press(*keys)
        await settle(app, pilot)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_label_screen(snap_compare, project: Path, size: tuple[int, int], make_test_app) -> None:
    assert snap_compare(make_test_app(project, model=None), terminal_size=size,
                        run_before=_label_opened())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_prompt_screen(snap_compare, project: Path, size: tuple[int, int], make_test_app) -> None:
    assert snap_compare(make_test_app(_fixed_times(project), model=None), terminal_size=size,
                        run_before=_prompt_opened())
