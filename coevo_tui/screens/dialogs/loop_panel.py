"""`L` on Cases: the whole loop, every step done or not with its count and keys.

The steps and their facts come from coevo_tui/services/workflow.py (the Cases screen's
loop line shows only the next one). The panel reads them afresh when it opens; `h` hides or
shows the loop line, and the dialog returns the wish for the Cases screen to keep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from coevo_tui.screens.base import CoevoModal
from coevo_tui.services.workflow import KeyHint, LoopState
from coevo_tui.widgets.loop_line import how, key_display

# Marks readable without colour (NO_COLOR): done, the next step, to do, nothing to do yet.
DONE, NEXT, TODO, IDLE = "✓", "▶", "•", "–"


class LoopPanel(CoevoModal[bool | None]):
    """Every step of the loop. Returns the loop line's new visibility when `h` toggled it,
    None when closed with esc."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="loop.close"),
        Binding("h", "toggle_line", "Hide the line", id="loop.toggle_line",
                tooltip="Hide or show the loop line on the Cases screen (kept in the project)"),
        Binding("up,k", "scroll('up')", "Up", show=False),
        Binding("down,j", "scroll('down')", "Down", show=False),
    ]

    def __init__(self, state: LoopState | None, read: Callable[[], Awaitable[LoopState]], *,
                 line_shown: bool) -> None:
        super().__init__()
        self._state = state
        self._read = read
        self._line_shown = line_shown

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="loop-panel"):
            yield Static(self._body(), id="loop-panel-text")

    def on_mount(self) -> None:
        self.refresh_state()

    @work(group="loop-panel", exclusive=True, exit_on_error=False)
    async def refresh_state(self) -> None:
        """Read the facts afresh (the Cases screen's copy may be a moment old)."""
        self._state = await self._read()
        self.query_one("#loop-panel-text", Static).update(self._body())

    def _body(self) -> Group:
        state = self._state
        toggle = key_display(self.app, KeyHint("loop.toggle_line", "h", ""))
        close = key_display(self.app, KeyHint("loop.close", "esc", ""))
        if state is None:
            return Group(Text("The loop", style="bold"), Text("reading the project…"))
        following = state.next
        title = Text(f"The loop, under v{state.version_number}", style="bold")
        title.append(f" · stage: {following.stage_title} · {len(state.pending)} of "
                     f"{len(state.steps)} steps to do" if following is not None
                     else " · up to date", style="dim")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        for step in state.steps:
            mark = (NEXT if step is following else TODO if not step.done
                    else DONE if step.applies else IDLE)
            text = Text(step.title, style="bold" if step is following else
                        "dim" if step.done else "")
            text.append(f": {step.hint}", style="dim" if step.done else "")
            if not step.done:
                text.append(f"\n{how(self.app, step.keys)}", style="italic")
            grid.add_row(Text(mark, style="dim" if step.done else "bold"), text)
        shown = "shown" if self._line_shown else "hidden"
        keys = Text(f"\nThe line on the Cases screen is {shown}: {toggle} "
                    f"{'hides' if self._line_shown else 'shows'} it · {close} closes",
                    style="dim")
        return Group(title, Text(""), grid, keys)

    def action_toggle_line(self) -> None:
        self.dismiss(not self._line_shown)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#loop-panel", VerticalScroll)
        if direction == "up":
            body.scroll_up()
        else:
            body.scroll_down()
