"""`V` on Compare: choose the two versions to compare (the baseline and the revision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Label as TextLabel
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from coevo_tui.domain.model import PromptVersion, first_line
from coevo_tui.screens.base import CoevoModal


class VersionPicker(CoevoModal[tuple[int, int] | None]):
    """Choose the baseline and the revision (returns their version numbers)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="compare_versions.cancel"),
        Binding("ctrl+s", "choose", "Compare", id="compare_versions.choose"),
    ]

    def __init__(self, versions: Sequence[PromptVersion], baseline: int, revision: int
                 ) -> None:
        super().__init__()
        self.versions = list(versions)
        self.baseline = baseline
        self.revision = revision

    def compose(self) -> ComposeResult:
        with Vertical(id="version-picker"):
            yield Static("Compare two versions", id="version-picker-title")
            with Horizontal(id="version-picker-lists"):
                with Vertical():
                    yield TextLabel("Baseline (left)")
                    yield OptionList(*self._options(), id="version-picker-baseline")
                with Vertical():
                    yield TextLabel("Revision (right)")
                    yield OptionList(*self._options(), id="version-picker-revision")
            yield Static("enter picks · tab switches list · ctrl+s compares · esc cancels",
                         id="version-picker-keys")

    def _options(self) -> list[Option]:
        return [Option(f"v{v.number}  {first_line(v.note or '-', 26)}", id=str(v.number))
                for v in self.versions]

    def on_mount(self) -> None:
        numbers = [v.number for v in self.versions]
        base = self.query_one("#version-picker-baseline", OptionList)
        rev = self.query_one("#version-picker-revision", OptionList)
        base.highlighted = numbers.index(self.baseline) if self.baseline in numbers else 0
        rev.highlighted = numbers.index(self.revision) if self.revision in numbers else 0
        base.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "version-picker-baseline":
            self.query_one("#version-picker-revision", OptionList).focus()
        else:
            self.action_choose()

    def _highlighted(self, list_id: str) -> int:
        options = self.query_one(list_id, OptionList)
        index = options.highlighted or 0
        return self.versions[index].number

    def action_choose(self) -> None:
        self.dismiss((self._highlighted("#version-picker-baseline"),
                      self._highlighted("#version-picker-revision")))

    def action_cancel(self) -> None:
        self.dismiss(None)
