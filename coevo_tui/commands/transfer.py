"""`coevo import PATH FILE` and `coevo export PATH FILE`: test sets in and out of a project.

Import checks the whole file before the project is opened, so a bad file never touches
(or creates) the project; the rows then go in as one transaction with one `import` event.
Export refuses a project that does not exist (it would be created empty) and writes FILE
through a temporary file beside it, so a failed export leaves no half-written FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from coevo_tui.domain.errors import ProjectFileError, UserError
from coevo_tui.store import formats
from coevo_tui.store.project_file import ProjectAppeared, check_project_file
from coevo_tui.store.store import Store


def main(args: argparse.Namespace) -> int:
    """Entry point for both commands (chosen by `args.command`)."""
    if args.command == "import":
        return asyncio.run(import_cases(Path(args.path), args.file, args.format))
    if args.command == "export":
        return asyncio.run(export_cases(Path(args.path), args.file, args.format))
    raise AssertionError(args.command)


async def import_cases(path: Path, file: str, fmt: str | None = None) -> int:
    """Add every case of FILE to the project at `path` (created if missing), or none."""
    fmt = formats.import_format(file, fmt)
    created = check_project_file(path)  # refuse a bad project before reading a big file
    new_cases = formats.read_cases(Path(file), fmt, source=file)

    async def add(store: Store) -> None:
        await store.cases.add_many(new_cases, kind="import", source_name=file)

    store = None
    if created:  # the rows go into the new project before it gets its name: all or none
        with contextlib.suppress(ProjectAppeared):  # made meanwhile: import into that one
            store = await Store.create(path, fill=add)
    if store is None:
        created = False
        store = await Store.open(path)
        try:
            await add(store)
        except BaseException:
            await store.close()
            raise
    await store.close()
    count = len(new_cases)
    where = f"{path} (a new project)" if created else str(path)
    print(f"imported {count} case{'' if count == 1 else 's'} into {where}")
    return 0


async def export_cases(path: Path, file: str, fmt: str | None = None) -> int:
    """Write every case of the project at `path` to FILE ('-' for standard output)."""
    fmt = formats.export_format(file, fmt)
    if not path.exists():
        raise ProjectFileError(f"{path}: no such project file; nothing exported")
    check_project_file(path)
    target = None if file == "-" else Path(file)
    if target is not None:
        _check_target(path, target)
    store = await Store.open_to_read(path)
    try:
        with _output(target) as out:
            count = await _write(store, fmt, out)
    finally:
        await store.close()
    if target is not None:
        what = "tests" if fmt == "promptfoo" else "cases"
        print(f"exported {count} {what} to {target} ({fmt})")
    return 0


async def _write(store: Store, fmt: str, out: TextIO) -> int:
    records = store.answers.export_records()
    if fmt == "jsonl":
        return await formats.write_jsonl(records, out)
    if fmt == "csv":
        return await formats.write_csv(records, out)
    return await formats.write_promptfoo(records, out, project=await store.settings.get(),
                                         version=await store.versions.latest())


def _check_target(project: Path, target: Path) -> None:
    if target.is_dir():
        raise UserError(f"{target}: is a folder; nothing exported")
    if not target.parent.is_dir():
        raise UserError(f"{target}: folder {target.parent} does not exist; nothing exported")
    resolved = target.resolve()
    own = project.resolve()
    if resolved in {Path(str(own) + s) for s in ("", "-wal", "-shm", "-journal")}:
        raise UserError(f"{target}: that is the project file itself; nothing exported")


@contextlib.contextmanager
def _output(target: Path | None) -> Iterator[TextIO]:
    """A UTF-8 text stream to `target` (atomically replaced on success) or to stdout."""
    if target is None:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # stdout replaced by a text-only stream (embedding, tests)
            yield sys.stdout
            return
        sys.stdout.flush()
        stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
        try:
            yield stream
            stream.flush()
        except BrokenPipeError:
            # `coevo export p.db - | head`: the reader has all it wanted.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            stream.detach()  # leave sys.stdout's buffer open
        return
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                     suffix=".tmp")
    temp = Path(temp_name)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.chmod(temp, _mode_for(target))
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new one gets the usual 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
