"""The add/edit modal: a multi-line input, tags and a note; ctrl+s saves, esc cancels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, Static, TextArea

from coevo_tui.screens.base import CoevoModal


@dataclass(frozen=True)
class CaseDraft:
    """What the user typed: the modal's result (None means cancelled)."""

    input: str
    tags: tuple[str, ...]
    note: str


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags from the tags field: separated by commas or spaces, a leading # dropped,
    duplicates removed, order kept."""
    tags: list[str] = []
    for raw in re.split(r"[,\s]+", text):
        tag = raw.strip().lstrip("#")
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


class CaseEditorScreen(CoevoModal[CaseDraft | None]):
    """Add a case (empty) or edit one (pre-filled). Returns a CaseDraft, or None on esc."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="case_editor.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="case_editor.cancel", priority=True),
    ]

    def __init__(self, *, title: str, input: str = "", tags: tuple[str, ...] = (),
                 note: str = "") -> None:
        super().__init__()
        self._title = title
        self._input = input
        self._tags = tags
        self._note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="case-editor"):
            yield Static(self._title, id="case-editor-title")
            yield Label("Input (the text the model will see)")
            yield TextArea(self._input, id="case-input", soft_wrap=True, tab_behavior="focus",
                           show_line_numbers=False)
            yield Label("Tags (separated by spaces or commas)")
            yield Input(" ".join(self._tags), id="case-tags", placeholder="e.g. refund edge")
            yield Label("Note")
            yield Input(self._note, id="case-note", placeholder="why this case matters")
            yield Static("", id="case-editor-error")
            yield Static("ctrl+s save   esc cancel   tab next field", id="case-editor-keys")

    def on_mount(self) -> None:
        area = self.query_one("#case-input", TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def draft(self) -> CaseDraft:
        """The current contents of the form."""
        return CaseDraft(
            input=self.query_one("#case-input", TextArea).text,
            tags=parse_tags(self.query_one("#case-tags", Input).value),
            note=self.query_one("#case-note", Input).value.strip(),
        )

    def action_save(self) -> None:
        draft = self.draft()
        if not draft.input.strip():
            self.query_one("#case-editor-error", Static).update("The input cannot be empty.")
            self.query_one("#case-input", TextArea).focus()
            return
        self.dismiss(draft)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter in a one-line field saves, as in most forms; the input area keeps newlines.
        event.stop()
        self.action_save()
