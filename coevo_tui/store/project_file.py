"""The project file on disk: recognising it before opening it, how SQLite may open it
(read-only places), and creating a new one whole or not at all.

Reading the 100-byte header lets us refuse a file that is not SQLite, a SQLite file that
is not a coevo project, or a project from a newer schema, without opening it: opening
would create -wal/-shm files and could rewrite the header. Only when a -wal file beside the
project still holds changes that the file itself lacks (a project open in another process,
or one whose process was killed or ran out of disk while copying the WAL into the file)
does the header not tell the whole story; then SQLite, reading both read-only, decides.

A new project is built under a hidden name beside the target and given its name only when
complete (see `Store.create`), so an interrupted creation leaves no project, never half of
one; the helpers for that are here.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import re
import secrets
import sqlite3
from pathlib import Path

from coevo_tui.domain.errors import ProjectFileError, ReadOnlyProject, StorageError
from coevo_tui.store.faults import storage_error
from coevo_tui.store.processes import ProcessIdentity, this_host
from coevo_tui.store.schema import APPLICATION_ID, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"

# SQLite's companions of a database file.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

# A WAL file is a 32-byte header followed by frames; with no frame it holds nothing.
_WAL_HEADER_BYTES = 32

# As long as the store waits for another process's write (store.BUSY_TIMEOUT_S).
_BUSY_TIMEOUT_S = 60.0


class FileState(enum.Enum):
    """What `inspect_project_file` found at a path."""

    MISSING = "missing"  # nothing there: a project may be created
    READY = "ready"  # a coevo project SQLite can open
    RECOVERABLE = "recoverable"  # cut short, but its -wal holds the rest (SQLite checked)


class ProjectAppeared(ProjectFileError):
    """Another program created the target while coevo was building a new project there."""


def check_project_file(path: Path) -> bool:
    """Return True if `path` must be created, False if it is an existing, openable project.

    Raises ProjectFileError (one clear line) for anything we must not open, and
    ReadOnlyProject when a project cannot be created in a read-only folder.
    """
    return inspect_project_file(path) is FileState.MISSING


def inspect_project_file(path: Path) -> FileState:
    """Decide from the header (and, only when a -wal holds pending changes the header does
    not account for, from SQLite reading read-only) whether `path` can be opened."""
    if not path.exists():
        if path.is_symlink():
            raise ProjectFileError(f"{path}: a link to {os.readlink(path)}, which does not "
                                   "exist; nothing was created")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ProjectFileError(f"{path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ReadOnlyProject(f"{path}: cannot create a project here (the folder is "
                                  "read-only); nothing was created")
        return FileState.MISSING
    if path.is_dir():
        raise ProjectFileError(f"{path}: is a folder, not a coevo project file")
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not wal_pending(path):
        _judge_header(path, header)
        return FileState.READY
    if _whole_coevo_header(path, header):
        _judge_header(path, header)  # a newer schema is still refused from the header
        return FileState.READY
    return _judge_through_sqlite(path, header)


def _judge_header(path: Path, header: bytes) -> None:
    """Raise ProjectFileError unless the header is a whole coevo project this coevo reads."""
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        if not header:
            raise ProjectFileError(
                f"{path}: an empty file, so not a coevo project; left unchanged (if an "
                "interrupted coevo left it, delete it and try again)")
        raise ProjectFileError(f"{path}: not a SQLite database, so not a coevo project; "
                               "left unchanged")
    user_version = int.from_bytes(header[60:64], "big")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise ProjectFileError(
            f"{path}: a SQLite database but not a coevo project; left unchanged"
        )
    if _shorter_than_header_says(path, header):
        raise ProjectFileError(f"{path}: damaged project file (cut short); left unchanged")
    _judge_schema(path, user_version)


def _judge_schema(path: Path, user_version: int) -> None:
    if user_version > SCHEMA_VERSION:
        raise ProjectFileError(
            f"{path}: written by a newer coevo (schema {user_version}, this coevo reads up to "
            f"{SCHEMA_VERSION}); upgrade coevo to open it. Left unchanged"
        )


def _whole_coevo_header(path: Path, header: bytes) -> bool:
    return (len(header) == 100 and header.startswith(SQLITE_MAGIC)
            and int.from_bytes(header[68:72], "big") == APPLICATION_ID
            and not _shorter_than_header_says(path, header))


def _shorter_than_header_says(path: Path, header: bytes) -> bool:
    """True when the file is smaller than the page count in its header (a truncated copy,
    or a checkpoint that stopped half-way).

    The count is only trusted when SQLite marks it valid (offset 92 equals the change
    counter at offset 24); reading 100 bytes is far cheaper than `PRAGMA quick_check`,
    which reads the whole file.
    """
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[92:96] == header[24:28]
    if not counter_valid or pages == 0:
        return False
    return path.stat().st_size < pages * page_size


def wal_pending(path: Path) -> bool:
    """True when a -wal file beside `path` holds at least one frame."""
    try:
        return Path(f"{path}-wal").stat().st_size > _WAL_HEADER_BYTES
    except OSError:
        return False


# The verdicts of the whole-file check below, by the files' sizes and times: a command
# checks the file and then opens it, and must not read a large project twice to do so.
_sqlite_verdicts: dict[tuple[str, int, int, int, int], FileState] = {}


def _judge_through_sqlite(path: Path, header: bytes) -> FileState:
    """Let SQLite read the file with its -wal (read-only, so nothing is copied or written
    into the file) and say whether together they are a whole coevo project.

    This is the one place that reads the whole file (`quick_check`): a file whose header
    promises pages it lacks is only healthy if the WAL holds every one of them. It runs
    only after a crash or a full disk interrupted a checkpoint (or while another process
    is in the middle of one), never on an ordinary open.
    """
    try:
        main, wal = path.stat(), Path(f"{path}-wal").stat()
    except OSError:
        return inspect_project_file(path)  # the WAL was folded in meanwhile: look again
    key = (str(path.absolute()), main.st_size, main.st_mtime_ns, wal.st_size, wal.st_mtime_ns)
    if key in _sqlite_verdicts:
        return _sqlite_verdicts[key]
    try:
        db = sqlite3.connect(sqlite_uri(path, read_only=True), uri=True,
                             timeout=_BUSY_TIMEOUT_S)
    except sqlite3.Error:
        _judge_header(path, header)  # no better answer than the header's
        raise ProjectFileError(f"{path}: cannot open ({path.name}-wal cannot be read)"
                               ) from None
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        user_version = db.execute("PRAGMA user_version").fetchone()[0]
        if application_id != APPLICATION_ID:
            raise ProjectFileError(
                f"{path}: a SQLite database but not a coevo project; left unchanged")
        _judge_schema(path, user_version)
        problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
    except sqlite3.DatabaseError as exc:
        refusal = storage_error(exc, path)
        if refusal is not None:
            raise refusal from None
        if "locked" in str(exc) or "busy" in str(exc):
            raise StorageError(f"{path}: another program has held the project for over "
                               f"{_BUSY_TIMEOUT_S:.0f} s; try again") from None
        raise ProjectFileError(f"{path}: damaged project file ({exc}); left unchanged"
                               ) from None
    finally:
        db.close()
    if problems != ["ok"]:
        raise ProjectFileError(f"{path}: damaged project file (cut short, and "
                               f"{path.name}-wal does not hold what is missing); left unchanged")
    _sqlite_verdicts.clear()  # one entry is all a command needs
    _sqlite_verdicts[key] = FileState.RECOVERABLE
    return FileState.RECOVERABLE


# ---------------------------------------------------------------------- read-only places
def read_only_reason(path: Path) -> str | None:
    """Why the existing project at `path` cannot be written, or None if it can.

    SQLite writes a WAL-mode project through its -wal and -shm files, so the folder must
    let them be created unless both are already there and writable.
    """
    folder = path.parent if str(path.parent) else Path(".")
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    if not os.access(path, os.W_OK):
        return "the file cannot be written"
    sides = [Path(f"{path}{s}") for s in ("-wal", "-shm")]
    for side in sides:
        if side.exists() and not os.access(side, os.W_OK):
            return f"{side.name} cannot be written"
    if not all(side.exists() for side in sides) and not os.access(folder, os.W_OK | os.X_OK):
        return "its folder cannot be written"
    return None


def sqlite_uri(path: Path, *, read_only: bool) -> str:
    """The URI SQLite opens `path` with. Read-only, SQLite still needs the -shm file (and
    the -wal) to exist or be creatable; where neither is possible (a read-only folder or
    mount without them) `immutable=1` reads the file alone, which is safe because nobody
    can write it there. Raises ReadOnlyProject if the -wal holds changes it cannot read."""
    uri = path.absolute().as_uri()
    if not read_only:
        return uri
    folder = path.parent if str(path.parent) else Path(".")
    if os.access(folder, os.W_OK | os.X_OK) and not _read_only_mount(path):
        return f"{uri}?mode=ro"
    if all(Path(f"{path}{s}").exists() for s in ("-wal", "-shm")):
        return f"{uri}?mode=ro"
    if wal_pending(path):
        raise ReadOnlyProject(
            f"{path}: its newest changes are still in {path.name}-wal, which cannot be read "
            "in this read-only place; open the project once where it can be written")
    return f"{uri}?mode=ro&immutable=1"


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


# ---------------------------------------------------------------------- creating whole
_PARTIAL_MARK = ".creating-"
_PARTIAL_RE = re.compile(r"\.creating-(?P<pid>\d+)@(?P<host>.*)-[0-9a-f]{8}$")


def partial_path(path: Path) -> Path:
    """A fresh hidden name beside `path` to build a new project under: it names this
    process and host, so that one left by a killed process can be recognised as stale."""
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}{_PARTIAL_MARK}{os.getpid()}@{this_host()}-{token}")


def remove_stale_partials(path: Path) -> None:
    """Delete what killed creations of `path` left beside it (their hidden partial files),
    but only those whose process is certainly gone: one may be in progress right now."""
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}{_PARTIAL_MARK}"
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        base = name
        for suffix in SIDE_SUFFIXES:
            base = base.removesuffix(suffix)
        match = _PARTIAL_RE.search(base[len(f".{path.name}"):])
        if match is None:
            continue
        owner = ProcessIdentity(match["host"], int(match["pid"]), None)
        if owner.is_gone():
            with contextlib.suppress(OSError):
                (folder / name).unlink()


def remove_with_side_files(path: Path) -> None:
    """Delete `path` and its -wal/-shm/-journal, whichever exist."""
    for suffix in ("", *SIDE_SUFFIXES):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def publish(partial: Path, path: Path) -> None:
    """Give the finished project at `partial` the name `path`, never replacing a file that
    appeared there meanwhile (ProjectAppeared). `partial` is gone afterwards."""
    try:
        os.link(partial, path)
    except FileExistsError:
        raise ProjectAppeared(f"{path}: another program created this file meanwhile"
                              ) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                             errno.ENOSYS):
            raise
        # A file system without hard links (FAT, some network shares): rename, after a
        # check that leaves only a tiny window instead of none.
        if path.exists() or path.is_symlink():
            raise ProjectAppeared(f"{path}: another program created this file meanwhile"
                                  ) from None
        os.rename(partial, path)
    else:
        partial.unlink()
    _sync_folder(path)


def _sync_folder(path: Path) -> None:
    """Make the new name durable (a power cut right after must not lose it)."""
    folder = path.parent if str(path.parent) else Path(".")
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
