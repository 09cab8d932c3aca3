"""The rationale modal: why an output is bad or unsure, as a policy stated on this example.

Returns the text (`enter` or `ctrl+s`), or None (`esc`: skip when labelling, cancel when
editing). A rationale is one paragraph, so `enter` saves instead of breaking the line.

With a `suggest` callable (the assistant's `assist.rationale.suggest`, bound to the
answer and verdict), `ctrl+g` asks the assistant and puts its suggestion in the field for
the user to edit (`ctrl+z` brings back what was there); saving stays the user's key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from coevo_tui.domain.model import Label, Verdict, first_line
from coevo_tui.screens.base import CoevoModal

if TYPE_CHECKING:
    from coevo_tui.assist.rationale import SuggestionResult

Suggester = Callable[[], Awaitable["SuggestionResult"]]


class RationaleScreen(CoevoModal[str | None]):
    """Ask for a rationale for `verdict` on the case `case_input` (pre-filled `text`)."""

    BINDINGS = [
        Binding("enter,ctrl+s", "save", "Save", id="rationale.save", priority=True),
        Binding("escape", "skip", "Skip", id="rationale.skip", priority=True),
        Binding("ctrl+g", "suggest", "Suggest", id="rationale.suggest", priority=True,
                tooltip="Ask the assistant for a rationale to edit"),
    ]

    def __init__(self, verdict: Verdict, case_input: str, *, text: str = "",
                 editing: bool = False, suggest: Suggester | None = None) -> None:
        super().__init__()
        self.verdict = verdict
        self.case_input = case_input
        self.initial = text
        self.editing = editing
        self.suggest = suggest
        self.asking = False

    @classmethod
    def for_verdict(cls, verdict: Verdict, case_input: str, current: Label | None, *,
                    suggest: Suggester | None = None) -> RationaleScreen:
        """Ask why when labelling `verdict`; labelling the same verdict again keeps the
        `current` label's rationale to edit."""
        keep = current.rationale if current is not None and current.verdict == verdict else ""
        return cls(verdict, case_input, text=keep, suggest=suggest)

    @classmethod
    def for_label(cls, label: Label, case_input: str, *,
                  suggest: Suggester | None = None) -> RationaleScreen:
        """Edit the rationale of `label` (esc cancels)."""
        return cls(label.verdict, case_input, text=label.rationale, editing=True,
                   suggest=suggest)

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
            yield Static("", id="rationale-status")
            leave = "esc cancel" if self.editing else "esc skip (label without a rationale)"
            suggest = "   ctrl+g suggest" if self.suggest is not None else ""
            yield Static(f"enter save{suggest}   {leave}", id="rationale-keys")

    def on_mount(self) -> None:
        area = self.query_one("#rationale-text", TextArea)
        area.focus()
        area.move_cursor(area.document.end)
        self.query_one("#rationale-status", Static).display = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "suggest":
            if self.suggest is None:
                return False
            return None if self.asking else True
        return True

    def action_suggest(self) -> None:
        if self.suggest is not None and not self.asking:
            self._ask_assistant(self.suggest)

    def _status(self, text: str, *, problem: bool = False) -> None:
        status = self.query_one("#rationale-status", Static)
        status.update(text)
        status.display = bool(text)
        status.set_class(problem, "-problem")

    @work(group="rationale-suggest", exclusive=True, exit_on_error=False)
    async def _ask_assistant(self, suggest: Suggester) -> None:
        """Put the assistant's suggestion in the field (undoable), or say why not."""
        self.asking = True
        self.refresh_bindings()
        self._status("asking the assistant…")
        try:
            result = await suggest()
        except Exception:
            self._status("the assistant could not suggest a rationale", problem=True)
            raise  # the app's error path says why
        finally:
            self.asking = False
            self.refresh_bindings()
        if result.error or not result.text:
            self._status(f"no suggestion: {result.error or 'the answer was empty'}",
                         problem=True)
            return
        area = self.query_one("#rationale-text", TextArea)
        # replace() rather than load_text(): ctrl+z brings back what the user had typed.
        area.replace(result.text, area.document.start, area.document.end)
        area.move_cursor(area.document.end)
        area.focus()
        self._status("the assistant's suggestion: edit it, then enter saves it")

    def action_save(self) -> None:
        self.dismiss(self.query_one("#rationale-text", TextArea).text.strip())

    def action_skip(self) -> None:
        self.dismiss(None)


def carried_notice(ext_id: str, verdict: Verdict, carried: Sequence[Label]) -> str:
    """What to say when a person's label was carried to identical answers."""
    count = len(carried)
    return (f"{ext_id}: {verdict.value}; also carried to {count} identical "
            f"answer{'s' if count > 1 else ''}")
