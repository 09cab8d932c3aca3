"""`?`: every key of the current screen, read from its live bindings so it cannot go stale."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from coevo_tui.palette import BoundAction, bound_actions


def screen_label(screen: Screen[object]) -> str:
    """A screen's name for people: `CasesScreen` -> "Cases"."""
    name = type(screen).__name__
    return name.removesuffix("Screen") or name


def help_entries(screen: Screen[object]) -> list[BoundAction]:
    """What the help screen lists for `screen`: the same actions as the footer and palette."""
    return bound_actions(screen)


def help_text(title: str, entries: list[BoundAction]) -> Text:
    """The help body as plain, NO_COLOR-safe text: one `key  description` line a binding."""
    width = max((len(e.key_display) for e in entries), default=3)
    text = Text()
    text.append(f"Keys: {title}\n\n", style="bold")
    for entry in entries:
        text.append(f"  {entry.key_display:<{width}}  ", style="bold")
        text.append(entry.description)
        if entry.tooltip:
            text.append(f" - {entry.tooltip}", style="dim")
        text.append("\n")
    text.append("\n  Keys are remappable: COEVO_KEYMAP=\"cases.add=n; app.quit=ctrl+q\"\n",
                style="dim")
    if any(e.binding_id for e in entries):
        text.append("  Binding ids: ", style="dim")
        text.append(", ".join(e.binding_id for e in entries if e.binding_id), style="dim")
        text.append("\n")
    return text


class HelpScreen(ModalScreen[None]):
    """A modal listing the keys of the screen it was opened on. Any of esc, ?, q closes it."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
        Binding("up,k", "scroll('up')", "Up", show=False),
        Binding("down,j", "scroll('down')", "Down", show=False),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self._entries = help_entries(screen)
        self._title = screen_label(screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_text(self._title, self._entries), id="help-text")

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        if direction == "up":
            body.scroll_up()
        else:
            body.scroll_down()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
