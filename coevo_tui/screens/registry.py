"""The top-level screens the App can open by name, imported only when first opened.

To add a screen: write `coevo_tui/screens/<name>.py` with the class (or factory) named here.
Until that module exists the App hides its key from the footer, the help screen and the
command palette (`CoevoApp.check_action`), so nothing here needs editing when you land it,
unless you choose another module or class name, or add a new entry (then also add an App
binding `Binding(key, "open_screen('<name>')", ..., id="app.<name>")`).

A factory is called with the keyword arguments given to `CoevoApp.open_screen(name, **kw)`
and returns the Screen to push (a Screen class is such a factory).

Screens open each other only through this registry (or by importing a dialog from
`screens/dialogs/`), never by importing another screen's module; the import contracts in
pyproject.toml check it. A `drill_down` entry (the case detail) is pushed above the screen
that opened it, so `esc` returns there; the others replace each other above Cases.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    """Where a named screen lives: `module` and the `factory` attribute in it; `drill_down`
    screens open above the current screen instead of replacing the top-level one."""

    name: str
    title: str
    module: str
    factory: str
    drill_down: bool = False

    def is_available(self) -> bool:
        """True when the module exists (found without importing it: start-up stays fast)."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False

    def load(self) -> Callable[..., Screen[Any]]:
        """Import the module (the first time) and return the factory."""
        module = importlib.import_module(self.module)
        return getattr(module, self.factory)


SCREENS: dict[str, ScreenEntry] = {
    entry.name: entry
    for entry in (
        ScreenEntry("prompt", "Prompt", "coevo_tui.screens.prompt", "PromptScreen"),
        ScreenEntry("compare", "Compare", "coevo_tui.screens.compare", "CompareScreen"),
        ScreenEntry("overview", "Overview", "coevo_tui.screens.overview", "OverviewScreen"),
        ScreenEntry("candidates", "Candidates", "coevo_tui.screens.candidates",
                    "CandidatesScreen"),
        # `R`: the Label screen over every active case, with the run of the test set
        # started (or, when it already runs, shown).
        ScreenEntry("run", "Run", "coevo_tui.screens.label", "run_screen"),
        ScreenEntry("label", "Label", "coevo_tui.screens.label", "LabelScreen"),
        # `i` on Cases, `enter` on Compare: one case in full; esc returns to where it was.
        ScreenEntry("case_detail", "Case", "coevo_tui.screens.case_detail",
                    "CaseDetailScreen", drill_down=True),
    )
}
