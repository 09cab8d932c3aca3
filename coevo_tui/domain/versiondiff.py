"""The difference between two prompt versions as classified unified-diff lines.

The TUI colours lines by `DiffKind` (through CSS classes); the command line prints
`line.text` as a plain unified diff, adding colour only on a terminal.
"""

from __future__ import annotations

import difflib
import enum
from dataclasses import dataclass

from coevo_tui.domain.model import PromptVersion


class DiffKind(str, enum.Enum):
    HEADER = "header"  # the ---/+++ lines naming what is compared
    HUNK = "hunk"  # @@ -a,b +c,d @@
    ADDED = "added"
    REMOVED = "removed"
    CONTEXT = "context"


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff; `text` includes its leading marker (+, -, space)."""

    kind: DiffKind
    text: str


def _lines(text: str | None) -> list[str]:
    return [] if not text else text.splitlines()


def text_diff(before: str | None, after: str | None, before_name: str, after_name: str,
              *, context: int = 3) -> list[DiffLine]:
    """A unified diff of two texts (line by line); empty when they are equal."""
    result: list[DiffLine] = []
    for raw in difflib.unified_diff(
        _lines(before), _lines(after), before_name, after_name, n=context, lineterm=""
    ):
        if raw.startswith(("--- ", "+++ ")) and len(result) < 2:
            kind = DiffKind.HEADER
        elif raw.startswith("@@"):
            kind = DiffKind.HUNK
        elif raw.startswith("+"):
            kind = DiffKind.ADDED
        elif raw.startswith("-"):
            kind = DiffKind.REMOVED
        else:
            kind = DiffKind.CONTEXT
        result.append(DiffLine(kind, raw))
    return result


def version_diff(a: PromptVersion, b: PromptVersion, *, context: int = 3) -> list[DiffLine]:
    """The diff from version `a` to version `b`: instructions first, then the user template
    (only when it differs). Empty when both are identical."""
    lines = text_diff(
        a.instructions,
        b.instructions,
        f"v{a.number} instructions",
        f"v{b.number} instructions",
        context=context,
    )
    if (a.user_template or "") != (b.user_template or ""):
        lines += text_diff(
            a.user_template,
            b.user_template,
            f"v{a.number} template" + ("" if a.user_template else " (none)"),
            f"v{b.number} template" + ("" if b.user_template else " (none)"),
            context=context,
        )
    return lines
