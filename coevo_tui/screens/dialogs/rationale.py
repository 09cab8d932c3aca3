"""The rationale modal: why an output is bad or unsure, as a policy stated on this example.

Returns the text (`enter` or `ctrl+s`), or None (`esc`: skip when labelling, cancel when
editing). A rationale is one paragraph, so `enter` saves instead of breaking the line.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from coevo_tui.domain.model import Label, Verdict, first_line
from coevo_tui.screens.base import CoevoModal


class RationaleScreen(CoevoModal[str | None]):
    """Ask for a rationale for `verdict` on the case `case_input` (pre-filled `text`)."""

    BINDINGS = [
        Binding("enter,ctrl+s", "save", "Save", id="rationale.save", priority=True),
        Binding("escape", "skip", "Skip", id="rationale.skip", priority=True),
    ]

    def __init__(self, verdict: Verdict, case_input: str, *, text: str = "",
                 editing: bool = False) -> None:
        super().__init__()
        self.verdict = verdict
        self.case_input = case_input
        self.initial = text
        self.editing = editing

    @classmethod
    def for_verdict(cls, verdict: Verdict, case_input: str,
                    current: Label | None) -> RationaleScreen:
        """Ask why when labelling `verdict`; labelling the same verdict again keeps the
        `current` label's rationale to edit."""
        keep = current.rationale if current is not None and current.verdict == verdict else ""
        return cls(verdict, case_input, text=keep)

    @classmethod
    def for_label(cls, label: Label, case_input: str) -> RationaleScreen:
        """Edit the rationale of `label` (esc cancels)."""
        return cls(label.verdict, case_input, text=label.rationale, editing=True)

    def compose(self) -> ComposeResult:
        with Vertical(id="rationale-box"):
            title = Text()
            title.append(f"Why is this {self.verdict.value.upper()}?", style="bold")
            yield Static(title, id="rationale-title")
            yield Static(Text(f"Case: {first_line(self.case_input, 66)}", no_wrap=True,
                              overflow="ellipsis"), id="rationale-case")
            yield Static("State the policy this example shows, e.g. \"Trash talk about skill "
                         "is allowed; slurs never are.\"", id="rationale-hint")
            yield TextArea(self.initial, id="rationale-text", soft_wrap=True,
                           show_line_numbers=False, tab_behavior="focus")
            leave = "esc cancel" if self.editing else "esc skip (label without a rationale)"
            yield Static(f"enter save   {leave}", id="rationale-keys")

    def on_mount(self) -> None:
        area = self.query_one("#rationale-text", TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def action_save(self) -> None:
        self.dismiss(self.query_one("#rationale-text", TextArea).text.strip())

    def action_skip(self) -> None:
        self.dismiss(None)


def carried_notice(ext_id: str, verdict: Verdict, carried: Sequence[Label]) -> str:
    """What to say when a person's label was carried to identical answers."""
    count = len(carried)
    return (f"{ext_id}: {verdict.value}; also carried to {count} identical "
            f"answer{'s' if count > 1 else ''}")
