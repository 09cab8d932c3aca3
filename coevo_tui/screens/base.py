"""What every coevo screen and worker-owning widget shares: the store, and the error path.

Textual's `Worker.StateChanged` does not bubble, so a node that starts workers must forward
their failures itself. `ReportsWorkerErrors` does that for any widget or screen; every
failure then reaches `CoevoApp.report_error`, the app's single error path, and becomes a
notification (never a traceback on screen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from coevo_tui.app import CoevoApp
    from coevo_tui.store import Store

ResultT = TypeVar("ResultT")


class ReportsWorkerErrors:
    """Mixin for a Widget or Screen: a worker that fails is reported as a notification.

    Start workers with `@work(group=..., exit_on_error=False)`; without `exit_on_error=False`
    Textual would exit the app on the first exception instead.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            app = cast("CoevoApp", self.app)  # type: ignore[attr-defined]
            app.report_error(event.worker.error)


class CoevoScreen(ReportsWorkerErrors, Screen[Any]):
    """Base of coevo's full screens."""

    def key_for(self, binding_id: str, default: str = "") -> str:
        """The key shown for binding `binding_id` on this screen, after the user's keymap,
        for hints in messages ("press A to show archived cases"), so they stay true."""
        for active in self.active_bindings.values():
            if active.binding.id == binding_id:
                return self.app.get_key_display(active.binding)
        for binding in type(self).BINDINGS:  # not active now (e.g. a field has focus)
            if isinstance(binding, Binding) and binding.id == binding_id:
                keys = self.app._keymap.get(binding_id, binding.key)
                return keys.split(",")[0]
        return default

    @property
    def store(self) -> Store:
        """The open project (the App opens it before pushing any screen)."""
        store = cast("CoevoApp", self.app).store
        assert store is not None, "screens are pushed after the store is open"
        return store


class CoevoModal(ReportsWorkerErrors, ModalScreen[ResultT], Generic[ResultT]):
    """Base of coevo's modal dialogs; they return a typed result through `dismiss`."""

    @property
    def store(self) -> Store:
        store = cast("CoevoApp", self.app).store
        assert store is not None
        return store
