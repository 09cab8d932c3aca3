"""`coevo demo`: the bundled gaming-moderation project, its refusal rules, and demo.tcss."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widgets import Header

from coevo_tui.commands import demo as demo_command
from coevo_tui.commands.demo import V1_NOTE, write_demo
from coevo_tui.demo import (
    CASES_FILE,
    DEMO_NAME,
    INSTRUCTIONS_FILE,
    TASK_FILE,
    demo_stylesheet,
    is_demo,
)
from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import CaseSource, CaseState, Project
from coevo_tui.store import Store
from coevo_tui.store.cases import Cases

REQUIRED_TAGS = {"banter", "slang", "insult", "identity", "threat", "spam", "borderline"}
APP_TCSS = Path(__file__).resolve().parents[1] / "styles" / "app.tcss"


async def _snapshot(path: Path) -> dict:
    """What a demo project holds, read back through the Store API."""
    async with await Store.open(path) as store:
        return {
            "project": await store.settings.get(),
            "versions": await store.versions.all(),
            "cases": await store.cases.all(),
            "events": await store.events.recent(limit=1000),
        }


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_demo_project_holds_task_policy_and_hand_written_cases(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    assert write_demo(path) == path
    held = asyncio.run(_snapshot(path))

    project = held["project"]
    assert project.name == DEMO_NAME and is_demo(project)
    assert project.task == TASK_FILE.read_text(encoding="utf-8").strip()
    assert "ALLOW" in project.task and "REMOVE" in project.task

    # Version 1 is the written policy itself, not an empty prompt with the policy as v2.
    [v1] = held["versions"]
    assert v1.number == 1
    assert v1.instructions.strip() == INSTRUCTIONS_FILE.read_text(encoding="utf-8").strip()
    assert "trash talk" in v1.instructions and "REMOVE" in v1.instructions
    assert v1.note == V1_NOTE

    cases = held["cases"]
    assert len(cases) >= 40
    assert all(c.state is CaseState.ACTIVE and c.source is CaseSource.MANUAL for c in cases)
    assert all(re.fullmatch(r"gg-\d{3}", c.ext_id) for c in cases)
    assert REQUIRED_TAGS <= {t for c in cases for t in c.tags}
    assert all(c.note for c in cases), "every demo case explains what it probes"

    events = held["events"]
    kinds = {(e.kind, e.entity) for e in events}
    assert {("create", "project"), ("create", "prompt_version"), ("edit", "project")} <= kinds
    case_events = [e for e in events if (e.kind, e.entity) == ("create", "case")]
    assert len(case_events) == len(cases)
    # Nothing but the finished project is left in the folder (no partial file, no WAL).
    assert _files(tmp_path) == ["demo.db"]


def test_cases_file_is_valid_jsonl_in_the_import_format() -> None:
    ids = []
    for line in CASES_FILE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) <= {"id", "input", "tags", "note"}
        assert isinstance(row["input"], str) and row["input"].strip()
        assert isinstance(row["tags"], list) and row["tags"]
        assert all(isinstance(t, str) and t == t.strip().lower() for t in row["tags"])
        ids.append(row["id"])
    assert len(ids) == len(set(ids)) >= 40


def test_rerun_on_an_existing_demo_keeps_the_users_work(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    write_demo(path)

    async def revise() -> None:
        async with await Store.open(path) as store:
            await store.versions.create("revised policy", note="user's own v2")
            case = await store.cases.by_ext_id("gg-001")
            await store.cases.edit(case.id, note="edited by the user")

    asyncio.run(revise())
    assert write_demo(path) == path
    held = asyncio.run(_snapshot(path))
    assert [v.number for v in held["versions"]] == [1, 2]
    assert held["versions"][1].instructions == "revised policy"
    assert next(c for c in held["cases"] if c.ext_id == "gg-001").note == "edited by the user"


async def _other_project(path: Path) -> None:
    async with await Store.open(path, name="my real project"):
        pass


@pytest.mark.parametrize("kind", ["text file", "empty file", "other coevo project", "folder"])
def test_refuses_an_existing_path_that_is_not_the_demo(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "taken.db"
    if kind == "text file":
        path.write_text("my notes\n")
    elif kind == "empty file":
        path.touch()
    elif kind == "other coevo project":
        asyncio.run(_other_project(path))
    else:
        path.mkdir()
    before = None if path.is_dir() else path.read_bytes()
    listing = _files(tmp_path)

    with pytest.raises(UserError, match="exists and is not the demo project; choose another"):
        write_demo(path)

    assert (None if path.is_dir() else path.read_bytes()) == before
    assert _files(tmp_path) == listing


def test_an_interrupted_write_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    async def fail(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Cases, "add_many", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_demo(tmp_path / "demo.db")
    assert _files(tmp_path) == []


def test_demo_cases_are_read_in_file_order() -> None:
    cases = demo_command.demo_cases()
    assert [c.ext_id for c in cases][:3] == ["gg-001", "gg-002", "gg-003"]
    assert cases[0].input == "gg ez" and cases[0].line == 1


def test_is_demo_goes_by_the_project_name() -> None:
    assert is_demo(Project(name=DEMO_NAME))
    assert is_demo(Project(name=DEMO_NAME + " copy"))
    assert not is_demo(Project(name="support bot"))


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coevo_tui", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_cli_demo_no_open_writes_the_project(tmp_path: Path) -> None:
    done = _run_cli("demo", "d.db", "--no-open", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "d.db" in done.stdout
    held = asyncio.run(_snapshot(tmp_path / "d.db"))
    assert is_demo(held["project"]) and len(held["cases"]) >= 40


def test_cli_demo_refuses_a_taken_path_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me\n")
    done = _run_cli("demo", "notes.txt", "--no-open", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "choose another path" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me\n"


# ---------------------------------------------------------------------------- demo.tcss
class _StyledApp(App[None]):
    """The app's own stylesheet plus, optionally, the demo's, around a Header."""

    CSS_PATH = [APP_TCSS]

    def __init__(self, *, demo: bool) -> None:
        super().__init__()
        self.demo = demo

    def compose(self) -> ComposeResult:
        yield Header()

    def on_mount(self) -> None:
        # What CoevoApp does for a demo project, after the app's own stylesheet.
        if self.demo:
            sheet = demo_stylesheet()
            assert sheet is not None
            self.stylesheet.read(sheet)
            self.refresh_css(animate=False)


async def _header_background(demo: bool) -> tuple[Color, Color, _StyledApp]:
    app = _StyledApp(demo=demo)
    async with app.run_test() as pilot:
        await pilot.pause()
        background = app.query_one(Header).styles.background
        accent = Color.parse(app.theme_variables["accent"])
    return background, accent, app


def test_demo_stylesheet_ships_beside_the_data() -> None:
    sheet = demo_stylesheet()
    assert sheet is not None and sheet.name == "demo.tcss"
    # demo.tcss at the repository top is the same file (coevo_tui/demo/demo.tcss links to it).
    top = Path(__file__).resolve().parents[1] / "demo.tcss"
    assert sheet.read_text() == top.read_text()


async def test_demo_stylesheet_parses_and_restyles_the_header() -> None:
    plain, accent, _ = await _header_background(demo=False)
    styled, accent, app = await _header_background(demo=True)
    sources = {Path(p).name for p, _ in app.stylesheet.source}
    assert {"app.tcss", "demo.tcss"} <= sources
    # demo.tcss tints the header with the theme's accent; without it the header is not.
    assert (styled.r, styled.g, styled.b) == (accent.r, accent.g, accent.b)
    assert 0 < styled.a < 1
    assert (plain.r, plain.g, plain.b) != (accent.r, accent.g, accent.b)


async def _coevo_app_sources(make_test_app, path: Path) -> set[str]:
    """Open `path` in the real app and return the names of its stylesheet's files."""
    from pilot_support import settle

    app = make_test_app(path, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.startup_error is None
        return {Path(p).name for p, _ in app.stylesheet.source if p}


async def test_the_app_loads_demo_tcss_for_the_demo_only(tmp_path: Path,
                                                         make_test_app) -> None:
    if importlib.util.find_spec("coevo_tui.screens.cases") is None:
        pytest.skip("the Cases screen (the app's first screen) is not in the tree yet")
    demo_path = tmp_path / "demo.db"
    await asyncio.to_thread(write_demo, demo_path)
    other_path = tmp_path / "other.db"
    await _other_project(other_path)

    assert {"app.tcss", "demo.tcss"} <= await _coevo_app_sources(make_test_app, demo_path)
    other = await _coevo_app_sources(make_test_app, other_path)
    assert "app.tcss" in other and "demo.tcss" not in other
