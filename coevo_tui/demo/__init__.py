"""The bundled demo project: its data files, its name, and its stylesheet.

The demo is a moderation policy for an online gaming community (see task.txt,
instructions_v1.txt and cases.jsonl beside this file). A project is "the demo" when its name
is `DEMO_NAME`, so the marker lives in the project row and needs no schema change.

No Textual import here: `coevo demo --no-open` reads the data files without starting a UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from coevo_tui.domain.model import Project

if TYPE_CHECKING:
    from textual.app import App

DEMO_NAME = "Gaming community moderation (demo)"
DATA_DIR = Path(__file__).resolve().parent
TASK_FILE = DATA_DIR / "task.txt"
INSTRUCTIONS_FILE = DATA_DIR / "instructions_v1.txt"
CASES_FILE = DATA_DIR / "cases.jsonl"
STYLESHEET_FILE = DATA_DIR / "demo.tcss"


def is_demo(project: Project) -> bool:
    """True when `project` is (a copy of) the bundled demo."""
    return project.name.startswith(DEMO_NAME)


def demo_stylesheet() -> Path | None:
    """The demo's stylesheet, or None if this installation lacks it (then style nothing)."""
    return STYLESHEET_FILE if STYLESHEET_FILE.is_file() else None


def load_demo_stylesheet(app: App) -> bool:
    """Add demo.tcss on top of `app`'s stylesheet and restyle the screens. True if loaded.

    Call it from the App once the store is open and `is_demo(await store.project())`.
    Its rules come after styles/app.tcss, so at equal specificity the demo's win.
    """
    sheet = demo_stylesheet()
    if sheet is None:
        return False
    app.stylesheet.read(sheet)
    app.refresh_css(animate=False)
    return True
