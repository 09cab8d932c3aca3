"""`m` on Compare: ask for a second model, to compare one version under two models."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from coevo_tui.screens.base import CoevoModal


class ModelPrompt(CoevoModal[str | None]):
    """Ask for a second model (a litellm model string); "" goes back to versions."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="compare_model.cancel"),
    ]

    def __init__(self, version_number: int, current: str) -> None:
        super().__init__()
        self.version_number = version_number
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="model-prompt"):
            yield Static(f"Compare v{self.version_number} under two models",
                         id="model-prompt-title")
            yield Static("Second model: a litellm model string (gpt-4o-mini, "
                         "ollama/llama3.2, ...). Empty compares versions again.",
                         id="model-prompt-hint")
            yield Input(self.current, placeholder="provider/model", id="model-prompt-input")
            yield Static("enter compares · esc cancels", id="model-prompt-keys")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
