"""`?`: every key of the current screen, read from its live bindings so it cannot go stale."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from coevo_tui.palette import BoundAction, bound_actions
from coevo_tui.screens.base import stylesheet


def screen_label(screen: Screen[object]) -> str:
    """A screen's name for people: `CasesScreen` -> "Cases"."""
    name = type(screen).__name__
    return name.removesuffix("Screen") or name


def help_entries(screen: Screen[object]) -> list[BoundAction]:
    """What the help screen lists for `screen`: the same actions as the footer and palette,
    the screen's own first, then the app's, then those of the focused widget (navigation)."""
    def rank(entry: BoundAction) -> int:
        return 0 if entry.namespace is screen else 1 if entry.namespace is screen.app else 2

    return sorted(bound_actions(screen), key=rank)  # stable: declaration order within


def help_table(title: str, entries: list[BoundAction]) -> Group:
    """The help body, NO_COLOR-safe (bold and dim only): a `key  description` grid whose
    descriptions wrap under themselves, then how to remap keys."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for entry in entries:
        description = Text(entry.description)
        if entry.tooltip:
            description.append(f": {entry.tooltip}", style="dim")
        grid.add_row(entry.key_display, description)
    ids = ", ".join(e.binding_id for e in entries if e.binding_id)
    footer = Text("\nKeys are remappable, by binding id: "
                  "COEVO_KEYMAP=\"cases.add=n; app.quit=ctrl+q\"\n", style="dim")
    if ids:
        footer.append(f"Ids here: {ids}", style="dim")
    return Group(Text(f"Keys: {title}\n", style="bold"), grid, footer)


class HelpScreen(ModalScreen[None]):
    """A modal listing the keys of the screen it was opened on. Any of esc, ?, q closes it."""

    CSS_PATH = stylesheet("dialogs.tcss")

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
            yield Static(help_table(self._title, self._entries), id="help-text")

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        if direction == "up":
            body.scroll_up()
        else:
            body.scroll_down()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
