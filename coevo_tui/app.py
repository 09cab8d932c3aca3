"""The Textual App: opens the store, pushes the Cases screen, routes errors to notifications."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from coevo_tui.domain.errors import UserError
from coevo_tui.store import Store

STYLES = Path(__file__).parent / "styles"


class CoevoApp(App[int]):
    """coevo's TUI. Build it with `make_app` (the command line and the tests share it)."""

    TITLE = "coevo"
    CSS_PATH = [STYLES / "app.tcss"]

    def __init__(self, project_path: Path, *, model: str | None = None,
                 api_base: str | None = None) -> None:
        super().__init__()
        self.project_path = project_path
        self.model_override = model
        self.api_base_override = api_base
        self.store: Store | None = None
        self.startup_error: str | None = None

    async def on_mount(self) -> None:
        try:
            self.store = await Store.open(self.project_path)
        except UserError as exc:
            self.startup_error = str(exc)
            self.exit(2)
            return
        from coevo_tui.screens.cases import CasesScreen

        await self.push_screen(CasesScreen())

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()


def make_app(project_path: Path | str, *, model: str | None = None,
             api_base: str | None = None) -> CoevoApp:
    """The one factory for the command line and the tests."""
    return CoevoApp(Path(project_path), model=model, api_base=api_base)
