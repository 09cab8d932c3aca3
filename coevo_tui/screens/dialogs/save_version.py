"""`ctrl+s` on Prompt: the note of the next version and the labelled cases that motivated it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Input, SelectionList, Static
from textual.widgets._toggle_button import ToggleButton  # the glyphs SelectionList draws

from coevo_tui.screens.base import CoevoModal


@dataclass(frozen=True)
class SaveRequest:
    """What the save modal returns: the note and the motivating (case id, label id)."""

    note: str
    motivating: tuple[tuple[int, int | None], ...] = ()


@dataclass(frozen=True)
class MotivatingChoice:
    """A labelled case the user may record as a reason for the new version."""

    case_id: int
    label_id: int | None
    text: str
    selected: bool = True


class MotivatingList(SelectionList[int]):
    """The list of motivating cases, whose box is empty when a case is not ticked:
    Textual draws an X in both states and tells them apart by colour only, so without
    colour (NO_COLOR) every case looked ticked."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        index = self.scroll_offset.y + y
        if not 0 <= index < self.option_count:
            return strip
        if self.get_option_at_index(index).value in self.selected:
            return strip
        segments = list(strip)
        if len(segments) > 1 and segments[1].text == ToggleButton.BUTTON_INNER:
            segments[1] = Segment(" " * len(ToggleButton.BUTTON_INNER), segments[1].style)
            return Strip(segments, strip.cell_length)
        return strip


class SaveVersionScreen(CoevoModal[SaveRequest | None]):
    """Ask for the note of version `number` and which labelled cases motivated it.

    `choices` may be still loading (an awaitable): the dialog opens at once, so the note
    can be typed straight after ctrl+s, and the list fills in when they arrive."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="save_version.save", priority=True),
        Binding("escape", "cancel", "Cancel", id="save_version.cancel", priority=True),
    ]

    def __init__(self, number: int,
                 choices: Sequence[MotivatingChoice] | Awaitable[list[MotivatingChoice]], *,
                 note: str = "") -> None:
        super().__init__()
        self.number = number
        self._pending = choices if inspect.isawaitable(choices) else None
        self.choices: list[MotivatingChoice] = [] if self._pending else list(
            cast(Sequence[MotivatingChoice], choices))
        self._loaded = asyncio.Event()
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(id="save-version-box"):
            yield Static(f"Save as version {self.number}", id="save-version-title")
            yield Static("Note: what changed and why", classes="save-version-label")
            yield Input(self.note, id="save-version-note",
                        placeholder="e.g. threats need a target to be removed")
            if self.choices or self._pending is not None:
                loading = " (loading…)" if self._pending is not None else ""
                yield Static("Motivated by (space toggles): bad and unsure cases of the base"
                             + loading, classes="save-version-label",
                             id="save-version-cases-label")
                yield MotivatingList(
                    *[(c.text, i, c.selected) for i, c in enumerate(self.choices)],
                    id="save-version-cases")
            yield Static("enter or ctrl+s save   esc cancel   tab next field",
                         id="save-version-keys")

    def on_mount(self) -> None:
        self.query_one("#save-version-note", Input).focus()
        if self._pending is not None:
            self._load_choices()
        else:
            self._loaded.set()

    @work(group="save-version-load", exit_on_error=False)
    async def _load_choices(self) -> None:
        assert self._pending is not None
        try:
            self.choices = list(await self._pending)
        finally:
            self._loaded.set()
        label = self.query_one("#save-version-cases-label", Static)
        cases = self.query_one("#save-version-cases", SelectionList)
        if not self.choices:
            label.display = cases.display = False
            return
        label.update("Motivated by (space toggles): bad and unsure cases of the base")
        cases.add_options([(c.text, i, c.selected) for i, c in enumerate(self.choices)])

    def action_save(self) -> None:
        self._save()

    @work(group="save-version-save", exclusive=True, exit_on_error=False)
    async def _save(self) -> None:
        await self._loaded.wait()  # saved before the list arrived: its defaults count
        note = self.query_one("#save-version-note", Input).value.strip()
        motivating: tuple[tuple[int, int | None], ...] = ()
        if self.choices:
            picked = self.query_one("#save-version-cases", SelectionList).selected
            motivating = tuple((self.choices[i].case_id, self.choices[i].label_id)
                               for i in sorted(picked))
        self.dismiss(SaveRequest(note, motivating))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()
