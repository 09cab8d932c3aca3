"""The App's structure: start-up, the error path, keymap, help, palette, screen registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Footer, Header

from coevo_tui.app import make_app
from coevo_tui.domain.errors import UserError
from coevo_tui.keymap import parse_keymap
from coevo_tui.palette import ScreenActionsProvider, bound_actions
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.dialogs.help import HelpScreen
from coevo_tui.screens.registry import SCREENS, ScreenEntry
from coevo_tui.store import Store

from pilot_support import notifications, raised_notifications, settle


async def test_app_opens_the_project_and_shows_the_cases_screen(project_path: Path,
                                                                 make_test_app) -> None:
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        assert app.session.store is not None
        assert app.title == "project"  # the project's name, from the file name
        assert app.screen.query(Header) and app.screen.query(Footer)
    assert project_path.exists()


async def test_a_file_that_is_not_a_project_stops_the_app_with_status_2(
        tmp_path: Path, make_test_app) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a database\n")
    app = make_test_app(bad, model=None)
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.return_code == 2
    assert app.startup_error and "notes.txt" in app.startup_error
    assert bad.read_text() == "not a database\n"


def test_coevo_path_with_a_bad_file_exits_2_without_starting_the_tui(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)  # a header, then garbage
    out = subprocess.run([sys.executable, "-m", "coevo_tui", str(bad)], capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("coevo: ")
    assert "\x1b[" not in out.stdout + out.stderr  # the screen was never taken over


def test_importing_the_app_does_not_import_litellm() -> None:
    code = ("import sys, coevo_tui.app, coevo_tui.screens.cases, coevo_tui.screens.dialogs.help\n"
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


async def test_a_worker_error_becomes_a_notification_not_a_crash(make_test_app) -> None:
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)

        async def fails() -> None:
            raise UserError("the disk is full")

        async def breaks() -> None:
            raise RuntimeError("boom")

        screen = app.screen
        screen.run_worker(fails(), exit_on_error=False)
        screen.run_worker(breaks(), exit_on_error=False)
        await settle(app, pilot)
        messages = notifications(app)
        severities = {n.severity for n in raised_notifications(app)}
        assert "the disk is full" in messages
        assert "RuntimeError: boom" in messages
        assert severities == {"error"}
        assert app.is_running and isinstance(app.screen, CasesScreen)


def test_keymap_parsing() -> None:
    assert parse_keymap("cases.add=n; app.quit = ctrl+q, q ;") == {
        "cases.add": "n", "app.quit": "ctrl+q,q"}
    assert parse_keymap("") == {}
    for bad in ("cases.add", "add=n", "cases.add=", "cases.add=two words"):
        with pytest.raises(UserError):
            parse_keymap(bad)


def test_a_malformed_keymap_in_the_environment_is_a_user_error(
        project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COEVO_KEYMAP", "cases.add")
    with pytest.raises(UserError, match="COEVO_KEYMAP"):
        make_app(project_path)


async def test_a_remapped_key_works_and_shows_everywhere(make_test_app) -> None:
    app = make_test_app(model=None, keymap={"cases.add": "n", "app.help": "f1"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        actions = {a.description: a.key_display for a in bound_actions(app.screen)}
        assert actions["Add"] == "n"
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "press n to add one" in text  # hints name the remapped key too
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("a")  # no longer bound: nothing opens
        await pilot.pause()
        assert isinstance(app.screen, CasesScreen)
        await pilot.press("n")
        await pilot.pause()
        assert type(app.screen).__name__ == "CaseEditorScreen"


async def test_an_unknown_keymap_id_is_reported(make_test_app) -> None:
    app = make_test_app(model=None, keymap={"cases.nope": "n"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert any("cases.nope" in message for message in notifications(app))


async def test_screens_that_do_not_exist_yet_are_hidden(make_test_app,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCREENS, "prompt",
                        ScreenEntry("prompt", "Prompt", "coevo_tui.no_such_module", "X"))
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        descriptions = {a.description for a in bound_actions(app.screen)}
        assert "Prompt" not in descriptions
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, CasesScreen)


async def test_a_registered_screen_opens_from_its_key_and_esc_returns(
        make_test_app, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A stand-in screen module, registered the way the next engineers will register theirs.
    package = tmp_path / "standin_screens"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "overview.py").write_text(
        "from textual.binding import Binding\n"
        "from coevo_tui.screens.base import CoevoScreen\n"
        "class OverviewScreen(CoevoScreen):\n"
        "    BINDINGS = [Binding('escape', 'app.pop_screen', 'Back', id='overview.back')]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(SCREENS, "overview", ScreenEntry(
        "overview", "Overview", "standin_screens.overview", "OverviewScreen"))
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "Overview" in {a.description for a in bound_actions(app.screen)}
        await pilot.press("o")
        await pilot.pause()
        assert type(app.screen).__name__ == "OverviewScreen"
        await pilot.press("o")  # opening it again replaces it: the stack stays shallow
        await pilot.pause()
        assert len(app.screen_stack) == 3  # default screen, Cases, Overview
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CasesScreen)


async def test_the_palette_offers_every_action_of_the_current_screen(
        project_path: Path, make_test_app) -> None:
    async with await Store.open(project_path) as store:
        from coevo_tui.store import NewCase

        await store.cases.add(NewCase(input="hello"))
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        provider = ScreenActionsProvider(app.screen)
        found = [hit.text async for hit in provider.discover()]
        for description in ("Filter", "Add", "Edit", "Archive", "Label", "Details",
                            "Show archived", "Help", "Quit"):
            assert description in found
        hits = [hit.text async for hit in provider.search("archi")]
        assert "Archive" in hits and "Add" not in hits


async def test_the_demo_project_loads_the_demo_stylesheet(tmp_path: Path, make_test_app) -> None:
    from coevo_tui.demo import DEMO_NAME

    demo_path = tmp_path / "demo.db"
    await (await Store.open(demo_path, name=DEMO_NAME)).close()
    plain_path = tmp_path / "plain.db"
    for path, expected in ((demo_path, True), (plain_path, False)):
        app = make_test_app(path, model=None)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            sources = {Path(p).name for p, _ in app.stylesheet.source}
            assert "app.tcss" in sources
            assert ("demo.tcss" in sources) is expected
