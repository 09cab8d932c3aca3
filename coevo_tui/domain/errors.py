"""Errors that reach the user as one clear line, and the exit statuses they map to.

Exit statuses of every command (README "Exit status"):

    0    done
    1    done, but some answers are errors (run) or the gate failed (eval)
    2    bad input: a file, a row, an argument, a project file coevo must not open;
         nothing was changed
    3    the machine refused: the disk is full, the project is read-only, an I/O error;
         what was shown as done is kept, the rest was not written
    70   an internal error (a bug in coevo): one line asking for a report; what was
         shown as done is kept (set COEVO_DEBUG=1 to see the traceback)
    130  interrupted (Ctrl-C); what was shown as done is kept
"""

from __future__ import annotations

import os
import unicodedata

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2
EXIT_STORAGE = 3
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # a bug in coevo (BSD's EX_SOFTWARE); the message asks for a report


def shown_name(name: object) -> str:
    """A file name (or any text) as it may appear inside a one-line message.

    Control characters (a newline in a file name would split the message), line
    separators, bidirectional overrides and other invisible formatting characters become
    escapes such as `\\n` or `\\u202e`; bytes that are not valid in the file system's
    encoding (which Python keeps as lone surrogates) become `\\xNN`. Printable text,
    spaces included, is unchanged. Every message that names a file goes through this."""
    if isinstance(name, str):
        text = name
    elif isinstance(name, (bytes, os.PathLike)):
        text = os.fsdecode(name)
    else:
        text = str(name)
    if text.isprintable():
        return text
    return "".join(_shown_char(ch) for ch in text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _shown_char(ch: str) -> str:
    if ch.isprintable() or unicodedata.category(ch) == "Zs":
        return ch
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class UserError(Exception):
    """Bad input from the user: a file, a row, an argument. Shown as one line; nothing changed."""

    exit_status = EXIT_BAD_INPUT


class ProjectFileError(UserError):
    """The project file cannot be opened as a coevo project (and was left untouched)."""


class ImportRejected(UserError):
    """An import file has a bad row; the whole file is rejected."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        name = shown_name(source)
        where = f"{name}, line {line}" if line is not None else name
        super().__init__(f"{where}: {reason}; nothing was imported")


class NotFound(UserError):
    """A case, version or output named by the user does not exist."""


class StorageError(UserError):
    """The machine refused to read or write the project (disk full, read-only, I/O error).

    Not the user's input, so its own exit status; the message says what was kept."""

    exit_status = EXIT_STORAGE


class DiskFull(StorageError):
    """The disk (or the user's quota) is full."""


class ReadOnlyProject(StorageError):
    """The project file, its folder or its file system cannot be written."""
