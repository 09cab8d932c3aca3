"""What every coevo screen and dialog shares: the session, the error path, the stylesheets.

Screens and dialogs report their workers' failures through `ReportsWorkerErrors`
(`widgets/worker_errors.py`, where widgets that own workers find it too, as widgets never
import screens); every failure then reaches `CoevoApp.report_error`, the app's single error
path, and becomes a notification (never a traceback on screen).
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from textual import events
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Input, TextArea

from coevo_tui.widgets.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from coevo_tui.app import CoevoApp
    from coevo_tui.jobs import Jobs
    from coevo_tui.session import Session
    from coevo_tui.store import Store

ResultT = TypeVar("ResultT")


def stylesheet(name: str) -> Path:
    """The path of `styles/<name>` as installed: pyproject.toml maps the package
    `coevo_tui.styles` to the top-level styles/ folder, so this finds it in a wheel and in
    an editable install alike. For `CSS_PATH` (the app's, each screen's, the dialogs')."""
    return Path(str(files("coevo_tui.styles") / name))


class CoevoScreen(ReportsWorkerErrors, Screen[Any]):
    """Base of coevo's full screens."""

    def ask(self, modal: ModalScreen[ResultT]) -> asyncio.Future[ResultT]:
        """Push `modal` now and return a future of its result, for a worker to await.

        Push from the key's own handler, never from inside a worker: a worker starts a
        loop turn later, and keys typed right behind the one that opened the dialog (a
        fast typist, a burst over SSH) would reach the screen underneath, where `g`
        labels and `q` quits.
        """
        result: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()

        def done(value: ResultT | None) -> None:
            if not result.done():
                result.set_result(cast(ResultT, value))

        self.app.push_screen(modal, callback=done)
        return result

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
    def session(self) -> Session:
        """The open project and its models (the App opens it before pushing any screen)."""
        return cast("CoevoApp", self.app).session

    @property
    def store(self) -> Store:
        """The open project's store (`self.session.store`)."""
        return self.session.store

    @property
    def jobs(self) -> Jobs:
        """The app's long work: runs that outlive this screen (coevo_tui/jobs.py)."""
        return cast("CoevoApp", self.app).jobs

    async def open_screen(self, name: str, **kwargs: Any) -> None:
        """Open the screen registered as `name` (screens/registry.py): screens never
        import each other."""
        await cast("CoevoApp", self.app).open_screen(name, **kwargs)


class CoevoModal(ReportsWorkerErrors, ModalScreen[ResultT], Generic[ResultT]):
    """Base of coevo's modal dialogs; they return a typed result through `dismiss`.

    Keys that arrive before the dialog has focused its field (typed right behind the key
    that opened it) go into that field instead of being lost."""

    CSS_PATH = stylesheet("dialogs.tcss")

    def on_key(self, event: events.Key) -> None:
        if self.focused is None and self.take_key(event):
            event.stop()
            event.prevent_default()

    def take_key(self, event: events.Key) -> bool:
        """Type a printable key into the focused field, or the first one (which then takes
        focus); False when the key is not text or the dialog has no field."""
        if not event.is_printable or not event.character:
            return False
        focused = self.focused
        field = focused if isinstance(focused, (TextArea, Input)) else self._first_field()
        if field is None:
            return False
        if isinstance(field, TextArea):
            if field is not focused:
                field.move_cursor(field.document.end)
            field.insert(event.character)
        elif isinstance(field, Input):
            field.insert_text_at_cursor(event.character)
        if field is not focused:
            field.focus()
        return True

    def _first_field(self) -> Widget | None:
        for widget in self.query("TextArea, Input"):
            if widget.focusable:
                return widget
        return None

    @property
    def store(self) -> Store:
        return cast("CoevoApp", self.app).session.store
