"""`coevo import PATH FILE` and `coevo export PATH FILE`: test sets in and out of a project.

Import checks the whole file before the project is opened, so a bad file never touches
(or creates) the project; the rows then go in as one transaction with one `import` event.
Export refuses a project that does not exist (it would be created empty) and writes FILE
through a temporary file beside it, so a failed export leaves no half-written FILE (a
device or a FIFO, such as /dev/null, is written to directly instead). The promptfoo export
to a folder (an existing one, or a new name without a .yaml/.yml extension) writes two
files there, promptfooconfig.yaml and the tests.yaml it reads; to a .yaml file or '-', one
config with the tests inside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import select
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from coevo_tui.domain.errors import ProjectFileError, UserError, shown_name
from coevo_tui.domain.model import PromptVersion
from coevo_tui.store import formats
from coevo_tui.store.faults import storage_error
from coevo_tui.store.project_file import ProjectAppeared, check_project_file
from coevo_tui.session import Session
from coevo_tui.store.store import NewCase, Store


def main(args: argparse.Namespace) -> int:
    """Entry point for both commands (chosen by `args.command`)."""
    if args.command == "import":
        # The file is read before the event loop starts: inside asyncio.run, Ctrl-C only
        # cancels the main task, which a blocking read (a big file, a FIFO with no writer)
        # does not notice, so the first Ctrl-C would not stop the import.
        path = Path(args.path)
        created, new_cases = read_import(path, args.file, args.format)
        return asyncio.run(import_cases(path, args.file, new_cases, created=created))
    if args.command == "export":
        return asyncio.run(export_cases(Path(args.path), args.file, args.format,
                                        versions=args.versions))
    raise AssertionError(args.command)


def read_import(path: Path, file: str, fmt: str | None = None) -> tuple[bool, list[NewCase]]:
    """Check the project at `path` and read FILE: (whether the project must be created,
    the cases). Raises a UserError, changing nothing, for a bad project or file."""
    fmt = formats.import_format(file, fmt)
    created = check_project_file(path)  # refuse a bad project before reading a big file
    return created, formats.read_cases(Path(file), fmt, source=file)


async def import_cases(path: Path, file: str, new_cases: list[NewCase], *,
                       created: bool) -> int:
    """Add `new_cases` (read from FILE by `read_import`) to the project at `path`,
    created if missing: all of them, or none."""

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
    where = f"{shown_name(path)} (a new project)" if created else shown_name(path)
    print(f"imported {_count(len(new_cases), 'case')} into {where}")
    return 0


async def export_cases(path: Path, file: str, fmt: str | None = None, *,
                       versions: str | None = None) -> int:
    """Write every case of the project at `path` to FILE ('-' for standard output). The
    promptfoo export holds the prompt versions numbered in `versions` ("1,3"; default:
    the newest), and to a folder FILE writes its config and tests files there."""
    target = None if file == "-" else Path(file)
    fmt = formats.export_format(file, fmt)
    numbers = None
    if versions is not None:
        if fmt != "promptfoo":
            raise UserError("--versions: only the promptfoo export holds prompt versions; "
                            "nothing exported")
        numbers = parse_version_numbers(versions)
    if not path.exists():
        raise ProjectFileError(f"{shown_name(path)}: no such project file; nothing exported")
    check_project_file(path)
    folder = target if fmt == "promptfoo" and target is not None and \
        _is_folder_target(target) else None
    if folder is not None:
        _check_folder_target(path, folder)
    elif target is not None:
        _check_target(path, target)
    async with await Session.open_existing(path, reading=True,
                                           missing="nothing exported") as session:
        store = session.store
        if fmt == "promptfoo":
            chosen = await _chosen_versions(store, numbers)
            rules = await _case_rules(store, chosen[-1])
            project = await store.settings.get()
            if folder is not None:
                created = _make_folder(folder)
                try:
                    with _output(folder / formats.PROMPTFOO_TESTS_FILE) as tests_out, \
                            _output(folder / formats.PROMPTFOO_CONFIG_FILE) as out:
                        count = await formats.write_promptfoo(
                            store.answers.export_records(), out, project=project,
                            versions=chosen, rules=rules, tests_out=tests_out)
                except BaseException:
                    if created:
                        with contextlib.suppress(OSError):
                            folder.rmdir()  # only if the failed export left it empty
                    raise
                print(f"exported {_count(count, 'test')} to {shown_name(folder)} (promptfoo: "
                      f"{formats.PROMPTFOO_CONFIG_FILE} and {formats.PROMPTFOO_TESTS_FILE})")
                return 0
            with _output(target) as out:
                count = await formats.write_promptfoo(
                    store.answers.export_records(), out, project=project, versions=chosen,
                    rules=rules)
        else:
            with _output(target) as out:
                count = await _write(store, fmt, out)
    if target is not None:
        what = "test" if fmt == "promptfoo" else "case"
        print(f"exported {_count(count, what)} to {shown_name(target)} ({fmt})")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def parse_version_numbers(text: str) -> list[int]:
    """The version numbers of `--versions N,M` (each at least 1, duplicates dropped, in
    ascending order); a UserError naming the first bad item otherwise."""
    numbers: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        if not item.isascii() or not item.isdigit() or int(item) < 1:
            shown = repr(item) if len(item) <= 20 else repr(item[:19] + "…")
            raise UserError(f"--versions: {shown} is not a version number (give them as "
                            "1,3); nothing exported")
        numbers.add(int(item))
    return sorted(numbers)


async def _chosen_versions(store: Store, numbers: list[int] | None
                           ) -> list[PromptVersion]:
    """The versions numbered `numbers` (None: the newest), oldest first."""
    if numbers is None:
        return [await store.versions.latest()]
    existing = {v.number: v for v in await store.versions.all()}
    missing = [n for n in numbers if n not in existing]
    if missing:
        have = sorted(existing)
        has = (f"it has version {have[0]}" if len(have) == 1 else
               f"it has versions {have[0]} to {have[-1]}") if have else "it has no version"
        raise UserError(f"--versions: no version {missing[0]} in "
                        f"{shown_name(store.path)} ({has}); nothing exported")
    return [existing[n] for n in numbers]


async def _case_rules(store: Store, version: PromptVersion
                      ) -> dict[str, tuple[int, str | None]]:
    """Case id -> (number, title) of the rule it probes; the title is that of `version`'s
    rule of that number, None when `version` has no such rule."""
    titles = {r.number: r.title for r in await store.rules.for_version(version.id)}
    return {c.ext_id: (c.rule_number, titles.get(c.rule_number))
            for c in await store.cases.all() if c.rule_number is not None}


async def _write(store: Store, fmt: str, out: TextIO) -> int:
    records = store.answers.export_records()
    if fmt == "jsonl":
        return await formats.write_jsonl(records, out)
    return await formats.write_csv(records, out)


def _is_folder_target(target: Path) -> bool:
    """Whether the promptfoo export to `target` writes a folder: an existing folder, or a
    path that does not exist yet and has no .yaml/.yml extension."""
    if target.is_dir():
        return True
    return not target.exists() and target.suffix.lower() not in (".yaml", ".yml") and \
        not target.is_symlink()


def _check_folder_target(project: Path, folder: Path) -> None:
    name = shown_name(folder)
    if not folder.is_dir() and not folder.parent.is_dir():
        raise UserError(f"{name}: folder {shown_name(folder.parent)} does not exist; "
                        "nothing exported")
    own = project.resolve()
    for file_name in (formats.PROMPTFOO_CONFIG_FILE, formats.PROMPTFOO_TESTS_FILE):
        file = folder / file_name
        if file.is_dir():
            raise UserError(f"{shown_name(file)}: is a folder; nothing exported")
        if file.resolve() in {Path(str(own) + s) for s in ("", "-wal", "-shm", "-journal")}:
            raise UserError(f"{shown_name(file)}: that is the project file itself; nothing "
                            "exported")


def _make_folder(folder: Path) -> bool:
    """Create `folder` if it does not exist; whether it was created."""
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    except OSError as exc:
        raise _refusal(exc, folder) from None
    return True


def _check_target(project: Path, target: Path) -> None:
    name = shown_name(target)
    if target.is_dir():
        raise UserError(f"{name}: is a folder; nothing exported")
    if not target.parent.is_dir():
        raise UserError(f"{name}: folder {shown_name(target.parent)} does not exist; "
                        "nothing exported")
    resolved = target.resolve()
    own = project.resolve()
    if resolved in {Path(str(own) + s) for s in ("", "-wal", "-shm", "-journal")}:
        raise UserError(f"{name}: that is the project file itself; nothing exported")


@contextlib.contextmanager
def _output(target: Path | None) -> Iterator[TextIO]:
    """A UTF-8 text stream to `target` (atomically replaced on success) or to stdout."""
    if target is None:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # stdout replaced by a text-only stream (embedding, tests)
            yield sys.stdout
            return
        sys.stdout.flush()
        pipe = _pipe_fd(sys.stdout)
        stream: TextIO = (io.TextIOWrapper(buffer, encoding="utf-8", newline="")
                          if pipe is None else _PipeWriter(pipe))
        try:
            yield stream
            stream.flush()
        except BrokenPipeError:
            # `coevo export p.db - | head`: the reader has all it wanted.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            if isinstance(stream, io.TextIOWrapper):
                stream.detach()  # leave sys.stdout's buffer open
        return
    if _is_special(target):
        # A device or a FIFO (/dev/null, /dev/stdout, a named pipe) is written to, never
        # replaced: as root, replacing /dev/null would turn it into a plain file.
        try:
            with open(target, "w", encoding="utf-8", newline="") as stream:
                yield stream
        except OSError as exc:
            raise _refusal(exc, target) from None
        return
    # An OS error here is about FILE (its disk is full, its folder read-only), not the
    # project: say so, naming FILE.
    try:
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    except OSError as exc:
        raise _refusal(exc, target) from None
    temp = Path(temp_name)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as stream:
            yield stream
        os.chmod(temp, _mode_for(target))
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise _refusal(exc, target) from None
        raise


def _is_special(target: Path) -> bool:
    """Whether `target` exists and is something other than a regular file or a folder."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _refusal(exc: OSError, target: Path) -> BaseException:
    """The one-line error for an OS error writing the export FILE `target`."""
    exc.filename = None  # the temporary file's name would only confuse
    refusal = storage_error(exc, target, kept="nothing was exported")
    if refusal is not None:
        return refusal
    return UserError(f"{shown_name(target)}: cannot write ({exc.strerror or exc}); "
                     "nothing was exported")


def _pipe_fd(stream: TextIO) -> int | None:
    """The file descriptor of `stream` if it is a pipe or a socket, else None."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


class _PipeWriter(io.TextIOBase):
    """Standard output to a pipe, written without ever blocking the event loop.

    A reader that stops reading (a pager, a stalled consumer) fills the pipe, and a plain
    write then blocks the loop's thread, where Ctrl-C only asks the main task to stop: the
    command would hang. Here text is kept until `drain()`, which writes it a pipe's atomic
    unit at a time (never blocking once select() says there is room) and otherwise waits
    on the event loop, where Ctrl-C reaches it."""

    _HOLD = 64 * 1024  # bytes kept before drain() starts writing

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text.encode("utf-8")
        return len(text)

    async def drain(self, *, everything: bool = False) -> None:
        """Write what is held (all of it with `everything`, else once it is 64 KiB)."""
        if not everything and len(self._pending) < self._HOLD:
            return
        while self._pending:
            _, room, _ = select.select([], [self._fd], [], 0)
            if not room:
                await asyncio.sleep(0.02)
                continue
            written = os.write(self._fd, self._pending[:select.PIPE_BUF])
            del self._pending[:written]

    def flush(self) -> None:
        """Only `drain()` writes; what is left unwritten here was never promised."""


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new one gets the usual 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
