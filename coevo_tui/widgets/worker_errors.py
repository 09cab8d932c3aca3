"""Worker failures become notifications: for any widget or screen that starts workers.

Textual's `Worker.StateChanged` does not bubble, so a node that starts workers must forward
their failures itself. `ReportsWorkerErrors` does that; every failure then reaches
`CoevoApp.report_error`, the app's single error path, and becomes a notification (never a
traceback on screen). It lives with the widgets because widgets never import screens, and
screens (`screens/base.py`) use it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from coevo_tui.app import CoevoApp


class ReportsWorkerErrors:
    """Mixin for a Widget or Screen: a worker that fails is reported as a notification.

    Start workers with `@work(group=..., exit_on_error=False)`; without `exit_on_error=False`
    Textual would exit the app on the first exception instead.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            app = cast("CoevoApp", self.app)  # type: ignore[attr-defined]
            app.report_error(event.worker.error)
