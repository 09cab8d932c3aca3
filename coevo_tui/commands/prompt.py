"""`coevo prompt`, `coevo versions` and `coevo diff`: prompt versions from the command line.

`prompt` reads and checks its files before the project is opened, so a missing,
unreadable or non-UTF-8 file (or a template without {input}) changes nothing.
`versions` and `diff` only read, and refuse a project file that does not exist rather
than create an empty one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import TextIO

from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import PromptVersion, first_line
from coevo_tui.domain.versiondiff import DiffKind, DiffLine, version_diff
from coevo_tui.store.project_file import check_project_file
from coevo_tui.session import Session


def main(args: argparse.Namespace) -> int:
    """Entry point for the three commands (chosen by `args.command`)."""
    if args.command == "prompt":
        return asyncio.run(
            save_version(Path(args.path), Path(args.file),
                         None if args.template is None else Path(args.template), args.note)
        )
    if args.command == "versions":
        return asyncio.run(list_versions(Path(args.path)))
    if args.command == "diff":
        return asyncio.run(print_diff(Path(args.path), args.a, args.b))
    raise AssertionError(args.command)


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of `path` without its final line break, or a UserError saying why not."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what} file; nothing saved") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a {what} file; nothing saved") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror}); nothing saved") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: not valid UTF-8 text; nothing saved") from None
    text = text.removeprefix("\ufeff")  # a BOM from Windows editors is not instructions
    # The final newline ends the last line of a text file; it is not part of the prompt.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


async def _open_existing(path: Path) -> Session:
    return await Session.open_existing(path, reading=True, missing="nothing to show")


async def save_version(path: Path, instructions_file: Path, template_file: Path | None,
                       note: str) -> int:
    """Save the next prompt version of the project at `path` (created if missing)."""
    instructions = read_text_file(instructions_file, "instructions")
    if not instructions.strip():
        raise UserError(f"{instructions_file}: the instructions are empty; nothing saved")
    template = None
    if template_file is not None:
        template = read_text_file(template_file, "template")
        if "{input}" not in template:
            raise UserError(
                f"{template_file}: the template must contain {{input}}; nothing saved"
            )
    check_project_file(path)  # refuse a bad project file before anything else
    async with await Session.open(path) as session:
        store = session.store
        previous = await store.versions.latest()
        version = await store.versions.create(instructions, template, note)
    same = (previous.instructions == version.instructions
            and (previous.user_template or None) == version.user_template)
    suffix = f" (identical to version {previous.number})" if same else ""
    print(f"saved version {version.number}{suffix}")
    return 0


def _created(version: PromptVersion) -> str:
    # Stored as ISO 8601 UTC; minutes are enough to tell versions apart in a list.
    return version.created_at[:16].replace("T", " ") + " UTC"


async def list_versions(path: Path, out: TextIO | None = None) -> int:
    """Print every version: number, created, motivating cases, note, instructions."""
    out = out or sys.stdout
    async with await _open_existing(path) as session:
        store = session.store
        versions = await store.versions.all()
        motivation = await store.versions.motivation_counts()
    width = max(shutil.get_terminal_size((80, 24)).columns, 40)
    for version in versions:
        count = motivation.get(version.id, 0)
        cases = f"motivated by {count} case{'' if count == 1 else 's'}"
        template = "  +template" if version.user_template else ""
        print(f"v{version.number}  {_created(version)}  {cases}{template}", file=out)
        print("    note: " + first_line(version.note or "(none)", width - 10), file=out)
        print("    instructions: "
              + first_line(version.instructions or "(empty)", width - 18), file=out)
    return 0


_ANSI = {
    DiffKind.HEADER: "\x1b[1m",
    DiffKind.HUNK: "\x1b[36m",
    DiffKind.ADDED: "\x1b[32m",
    DiffKind.REMOVED: "\x1b[31m",
}


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render_diff(lines: list[DiffLine], colour: bool) -> str:
    """The diff as text, one line each, coloured with ANSI codes only if `colour`."""
    if not colour:
        return "".join(line.text + "\n" for line in lines)
    return "".join(
        (f"{_ANSI[line.kind]}{line.text}\x1b[0m" if line.kind in _ANSI else line.text) + "\n"
        for line in lines
    )


async def print_diff(path: Path, a: int, b: int, out: TextIO | None = None) -> int:
    """Print the unified diff from version `a` to version `b`."""
    out = out or sys.stdout
    async with await _open_existing(path) as session:
        store = session.store
        before = await store.versions.by_number(a)
        after = await store.versions.by_number(b)
    lines = version_diff(before, after)
    if not lines:
        print(f"v{a} and v{b} have the same instructions and template", file=out)
        return 0
    out.write(render_diff(lines, use_colour(out)))
    return 0
