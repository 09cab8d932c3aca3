"""Recognising a project file from its header, before SQLite touches it.

Reading the 100-byte header lets us refuse a file that is not SQLite, a SQLite file that
is not a coevo project, or a project from a newer schema, without opening it: opening
would create -wal/-shm files and could rewrite the header.
"""

from __future__ import annotations

import os
from pathlib import Path

from coevo_tui.domain.errors import ProjectFileError
from coevo_tui.store.schema import APPLICATION_ID, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_project_file(path: Path) -> bool:
    """Return True if `path` must be created, False if it is an existing, openable project.

    Raises ProjectFileError (one clear line) for anything we must not open.
    """
    if not path.exists():
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise ProjectFileError(f"{path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise ProjectFileError(f"{path}: cannot create a project here (folder not writable)")
        return True
    if path.is_dir():
        raise ProjectFileError(f"{path}: is a folder, not a coevo project file")
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise ProjectFileError(f"{path}: cannot read ({exc.strerror})") from None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        what = "an empty file" if not header else "not a SQLite database"
        raise ProjectFileError(f"{path}: {what}, so not a coevo project; left unchanged")
    user_version = int.from_bytes(header[60:64], "big")
    application_id = int.from_bytes(header[68:72], "big")
    if application_id != APPLICATION_ID:
        raise ProjectFileError(
            f"{path}: a SQLite database but not a coevo project; left unchanged"
        )
    if _shorter_than_header_says(path, header):
        raise ProjectFileError(f"{path}: damaged project file (cut short); left unchanged")
    if user_version > SCHEMA_VERSION:
        raise ProjectFileError(
            f"{path}: written by a newer coevo (schema {user_version}, this coevo reads up to "
            f"{SCHEMA_VERSION}); upgrade coevo to open it. Left unchanged"
        )
    return False


def _shorter_than_header_says(path: Path, header: bytes) -> bool:
    """True when the file is smaller than the page count in its header (a truncated copy).

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
