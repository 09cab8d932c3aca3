"""Errors that reach the user as one clear line (exit status 2 on the command line)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a file, a row, an argument. Shown as one line; nothing changed."""

    exit_status = 2


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
