"""Which model's answers to compare, when several models answered and none is the model
under test (services/comparison.py, rule 4): the models with how many cases each answered."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from coevo_tui.screens.base import CoevoModal


class ModelPicker(CoevoModal[str | None]):
    """Choose one of `counts`' models (model -> answered cases); None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="model_picker.cancel"),
    ]

    def __init__(self, where: str, counts: Mapping[str, int]) -> None:
        super().__init__()
        self.where = where
        self.counts = dict(counts)

    def compose(self) -> ComposeResult:
        with Vertical(id="model-picker"):
            yield Static(f"Several models answered {self.where}: which one's answers?",
                         id="model-picker-title")
            most_first = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
            yield OptionList(*(Option(f"{model}  ({count} case{'' if count == 1 else 's'})",
                                      id=model) for model, count in most_first),
                             id="model-picker-list")
            yield Static("enter compares · esc cancels", id="model-picker-keys")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
