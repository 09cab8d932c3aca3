"""The bundled demo project: its data files, its name, and its stylesheet.

The demo is a moderation policy for an online gaming community (see task.txt,
instructions_v1.txt and cases.jsonl beside this file). A project is "the demo" when its name
starts with `DEMO_NAME`, so the marker lives in the project row and needs no schema change.

No Textual import here: `coevo demo --no-open` reads the data files without starting a UI.
"""

from __future__ import annotations

from pathlib import Path

from coevo_tui.domain.model import Project

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
    """The demo's stylesheet, or None if this installation lacks it (then style nothing).

    The App reads it on top of styles/app.tcss once the store is open and the project
    `is_demo`: `app.stylesheet.read(path)` then `app.refresh_css()`.
    """
    return STYLESHEET_FILE if STYLESHEET_FILE.is_file() else None

