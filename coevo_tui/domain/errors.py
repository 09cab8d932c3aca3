"""Errors that reach the user as one clear line, and the exit statuses they map to.

Exit statuses of every command (README "Exit status"):

    0    done
    1    done, but some answers are errors (run) or the gate failed (eval)
    2    bad input: a file, a row, an argument, a project file coevo must not open;
         nothing was changed
    3    the machine refused: the disk is full, the project is read-only, an I/O error;
         what was shown as done is kept, the rest was not written
    130  interrupted (Ctrl-C); what was shown as done is kept
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2
EXIT_STORAGE = 3
EXIT_INTERRUPTED = 130


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
        where = f"{source}, line {line}" if line is not None else source
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
