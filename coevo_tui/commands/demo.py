"""`coevo demo [PATH]`: write the bundled demo project, a gaming community's chat moderation.

The demo's version 1 is a reasonable but imperfect policy (coevo_tui/demo/instructions_v1.txt)
and its test set is ~50 hand-written chat messages (coevo_tui/demo/cases.jsonl): banter,
slang, insults, identity attacks, threats, doxxing, scams and genuinely borderline ones.

An existing demo project at PATH is kept as it is, so running `coevo demo` again reopens
your work instead of wiping it; any other existing file is refused and left untouched.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from coevo_tui.demo import (
    CASES_FILE,
    DEMO_NAME,
    INSTRUCTIONS_FILE,
    TASK_FILE,
    demo_stylesheet,
    is_demo,
)
from coevo_tui.domain.errors import ProjectFileError, UserError
from coevo_tui.domain.model import CaseSource
from coevo_tui.store import NewCase, Store, check_project_file
from coevo_tui.store.project_file import ProjectAppeared

# The App asks this module whether a project is the demo and where its stylesheet is.
__all__ = ["demo_cases", "demo_stylesheet", "is_demo", "write_demo"]

V1_NOTE = "first policy, written by hand: trash talk stays; slurs, threats, doxxing, scams go"

DEMO_PARAMS = {"temperature": 0, "max_tokens": 60}


def write_demo(path: Path) -> Path:
    """Write the demo project to `path` (unless it already is the demo) and return `path`.

    Raises UserError, changing nothing, if `path` exists and is not a demo project.
    """
    return asyncio.run(_write_demo(Path(path)))


def demo_cases() -> list[NewCase]:
    """The bundled cases, in file order, as hand-written (source manual) active cases."""
    cases = []
    with CASES_FILE.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            cases.append(
                NewCase(
                    input=row["input"],
                    tags=tuple(row.get("tags", ())),
                    note=row.get("note", ""),
                    ext_id=row["id"],
                    source=CaseSource.MANUAL,
                    line=number,
                )
            )
    return cases


async def _write_demo(path: Path) -> Path:
    if path.exists() or path.is_symlink():
        await _check_is_demo(path)
        return path
    check_project_file(path)  # a missing or read-only folder is one clear line
    cases = demo_cases()

    async def fill(store: Store) -> None:
        # A moderation answer is one short line; temperature 0 makes re-runs comparable
        # and keeps the tiny offline model from rambling.
        await store.settings.update(task=TASK_FILE.read_text(encoding="utf-8").strip(),
                                   params=DEMO_PARAMS)
        await store.cases.add_many(cases, kind="create", source_name=CASES_FILE.name)

    # Built whole under a hidden name and linked into place only when complete, so an
    # interrupted `coevo demo` never leaves a half-written demo that a rerun would mistake
    # for a finished one.
    try:
        store = await Store.create(
            path,
            name=DEMO_NAME,
            instructions=INSTRUCTIONS_FILE.read_text(encoding="utf-8").strip() + "\n",
            note=V1_NOTE,
            fill=fill,
        )
    except ProjectAppeared:  # another `coevo demo` was quicker: keep its demo
        await _check_is_demo(path)
        return path
    await store.close()
    return path


async def _check_is_demo(path: Path) -> None:
    """Return if `path` is a demo project; otherwise refuse without writing to it."""
    refusal = UserError(f"{path} exists and is not the demo project; "
                        "choose another path or delete it")
    try:
        check_project_file(path)  # reads the header only: refuses non-projects untouched
    except ProjectFileError:
        raise refusal from None
    store = await Store.open_to_read(path)
    try:
        project = await store.settings.get()
    finally:
        await store.close()
    if not is_demo(project):
        raise refusal
