"""What the machine's refusals mean for the user: SQLite and OS errors as one clear line.

The store, the command line's error boundary and the app's error path all ask
`storage_error` so that a full disk, a read-only project or an I/O error is described the
same way everywhere (and gets exit status 3), instead of reaching the user as a traceback.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from coevo_tui.domain.errors import DiskFull, ReadOnlyProject, StorageError, shown_name

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(exc: BaseException, path: Path | str | None = None,
                  kept: str = "") -> StorageError | None:
    """A `StorageError` describing `exc` if it is the machine refusing (disk full, read-only,
    I/O error), else None. `path` names the file in the message; `kept` says what survived
    ("the answers shown as done are saved"), defaulting to "nothing was changed"."""
    where = f"{shown_name(path)}: " if path is not None else ""
    after = kept or "nothing was changed"
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, MemoryError):
        return StorageError(f"{where}out of memory; {after}")
    if isinstance(exc, sqlite3.Error):
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        text = str(exc)
        if code == _SQLITE_FULL or "disk is full" in text:
            return DiskFull(f"{where}the disk is full; {after}. Free some space and try again")
        if code == _SQLITE_READONLY or "readonly database" in text:
            return ReadOnlyProject(f"{where}the project is read-only; {after}")
        if code == _SQLITE_IOERR or "disk I/O error" in text:
            return StorageError(f"{where}the disk reported an I/O error; {after}")
        if code == _SQLITE_CANTOPEN:
            return StorageError(f"{where}cannot open the project file ({text}); {after}")
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        name = exc.filename if exc.filename is not None else path
        where = f"{shown_name(name)}: " if name is not None else ""
        if exc.errno in _FULL_ERRNOS:
            return DiskFull(f"{where}the disk is full; {after}. Free some space and try again")
        if exc.errno == errno.EROFS:
            return ReadOnlyProject(f"{where}the file system is read-only; {after}")
        if exc.errno in _READ_ONLY_ERRNOS:
            return ReadOnlyProject(f"{where}permission denied; {after}")
        if exc.errno == errno.EIO:
            return StorageError(f"{where}the disk reported an I/O error; {after}")
    return None


def storage_error_in(exc: BaseException, path: Path | str | None = None,
                     kept: str = "") -> StorageError | None:
    """Like `storage_error`, but also looks at the exceptions `exc` was raised while
    handling (its cause and context): a clean-up that failed after a full disk (SQLite's
    "cannot rollback - no transaction is active") is still the full disk."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        refusal = storage_error(current, path, kept)
        if refusal is not None:
            return refusal
        current = current.__cause__ or current.__context__
    return None
