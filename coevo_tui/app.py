"""The Textual App: opens the store, pushes the Cases screen, routes errors to notifications.

How the app is put together (read this before adding a screen):

- **Screens** live in `coevo_tui/screens/<name>.py`, subclass `screens.base.CoevoScreen`
  (gives `self.store` and reports worker failures), and compose their own `Header` and
  `Footer`. Top-level screens are opened by name with `app.open_screen(name, **kwargs)`;
  the names, modules and factories are listed in `screens/registry.py`. The App's `p`, `c`,
  `o`, `v`, `R` keys open them, and stay hidden until the module exists. A screen opens
  another one the same way (drill-down entries such as `case_detail` stack above it).
- **Dialogs** (modal screens returning a typed result) live in
  `coevo_tui/screens/dialogs/<name>.py` and subclass `screens.base.CoevoModal`. A screen
  imports the dialogs it opens; it never imports another screen (pyproject.toml's import
  contracts, checked by tests/test_import_contracts.py).
- **Bindings** carry an `id` (`<screen>.<action>`, or `app.<action>` here) and a
  description; the footer, the help screen (`?`) and the command palette (ctrl+p) all read
  the live bindings, and the keymap (`COEVO_KEYMAP`, see `keymap.py`) remaps any id. An
  action that does not apply returns False (hidden) or None (dimmed) from `check_action`.
- **I/O** runs in workers, `@work(group=..., exit_on_error=False)`, on the widget or screen
  that owns it (leaving the screen cancels them). A failure reaches `report_error`, the one
  error path, and becomes a notification: a `UserError` shows its message, anything else its
  type and message. Results travel back as return values or typed messages.
- **Model calls** (litellm) are never imported at start-up (`import litellm` costs ~3.5 s).
  Get the litellm-backed modules inside a worker with `await app.load_llm("coevo_tui.llm.x")`,
  which imports them in a thread the first time so the screen keeps drawing.
- **Styles** are in the top-level `styles/` folder (installed as `coevo_tui.styles`;
  theme variables only): `app.tcss` holds what is app-wide (the header and the shared
  widgets), each screen loads its own `<screen>.tcss` through its `CSS_PATH`
  (`stylesheet(name)` in screens/base.py), the dialogs `dialogs.tcss`; no widget carries
  DEFAULT_CSS. The demo project also loads `demo.tcss` on top (`_apply_project_stylesheet`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sqlite3
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from coevo_tui.domain.errors import (
    ProjectFileError,
    ReadOnlyProject,
    StorageError,
    UserError,
    shown_name,
)
from coevo_tui.domain.model import Project
from coevo_tui.keymap import keymap_from_environment
from coevo_tui.palette import ScreenActionsProvider
from coevo_tui.screens.base import CoevoModal, stylesheet
from coevo_tui.screens.registry import SCREENS
from coevo_tui.screens.run import TestSetRun
from coevo_tui.store import Store
from coevo_tui.store.faults import storage_error_in
from coevo_tui.widgets.status_bar import READ_ONLY

if TYPE_CHECKING:
    from coevo_tui.llm.client import ModelClient
    from coevo_tui.llm.config import ModelChoice


def opens_read_only(path: Path) -> bool:
    """Whether the TUI must open the project at `path` for reading only: it exists but
    coevo cannot write it, because its file system is mounted read-only, or the file, its
    folder (where SQLite keeps the -wal and -shm files beside it) or one of those files is
    not writable. Such a project is shown instead of refused; a missing one is created."""
    if not path.exists():
        return False
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
    except OSError:
        pass
    folder = path.parent if str(path.parent) else Path(".")
    companions = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    writable = [path, folder, *(c for c in companions if c.exists())]
    return not all(os.access(p, os.W_OK) for p in writable)


class CoevoApp(App[int]):
    """coevo's TUI. Build it with `make_app` (the command line and the tests share it)."""

    TITLE = "coevo"
    CSS_PATH = stylesheet("app.tcss")
    COMMANDS = App.COMMANDS | {ScreenActionsProvider}
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help", key_display="?"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("p", "open_screen('prompt')", "Prompt", id="app.prompt"),
        Binding("R", "open_screen('run')", "Run", id="app.run",
                tooltip="Run every active case through the model"),
        Binding("c", "open_screen('compare')", "Compare", id="app.compare"),
        Binding("v", "open_screen('candidates')", "Candidates", id="app.candidates"),
        Binding("o", "open_screen('overview')", "Overview", id="app.overview"),
    ]

    def __init__(self, project_path: Path, *, model: str | None = None,
                 api_base: str | None = None, keymap: dict[str, str] | None = None) -> None:
        super().__init__()
        self.project_path = project_path
        self.model_override = model
        self.api_base_override = api_base
        self.store: Store | None = None
        self.project: Project | None = None
        self.startup_error: str | None = None
        self.user_keymap = dict(keymap or {})
        # The one ModelClient of the TUI (made on first use by `model_client()`), so every
        # stream and run shares one concurrency bound. Tests may set their own first.
        self.llm_client: ModelClient | None = None
        # Decided once: find_spec is cheap but check_action runs on every footer refresh.
        self.available_screens = {name for name, e in SCREENS.items() if e.is_available()}
        # The run of the test set (R), if one was started: it outlives the screens.
        self.test_set_run: TestSetRun | None = None
        # An exception no handler took, which ended the app (see `_fatal_error`).
        self.crash: BaseException | None = None

    # ------------------------------------------------------------------ life cycle
    async def on_mount(self) -> None:
        try:
            self.store = await Store.open(self.project_path,
                                          read_only=opens_read_only(self.project_path))
            self.project = await self.store.project()
        except (UserError, sqlite3.Error, OSError, MemoryError) as exc:
            refusal = exc if isinstance(exc, UserError) else storage_error_in(
                exc, self.project_path)
            if refusal is None:  # a SQLite error that is no refusal: the file is bad
                refusal = ProjectFileError(f"{shown_name(self.project_path)}: cannot open "
                                           f"({exc})")
            self.startup_error = str(refusal)
            self.exit(refusal.exit_status, return_code=refusal.exit_status)
            return
        self.title = self.project.name
        if self.store.read_only:
            self.sub_title = READ_ONLY
            self.notify("The project is read-only (its file, folder or disk cannot be "
                        "written): you can look, but changes cannot be saved.",
                        title=READ_ONLY, severity="warning", timeout=10)
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self._apply_project_stylesheet(self.project)
        from coevo_tui.screens.cases import CasesScreen

        await self.push_screen(CasesScreen())
        self._warn_unknown_keymap_ids()

    async def on_event(self, event: events.Event) -> None:
        """Keys typed right behind the one that opens a dialog go to the dialog.

        Textual routes each key to the screen focused when the key *arrives*; a burst (a
        fast typist, an SSH connection) is routed before the first key's binding has run.
        So in "b" + "quite rude", the rationale's letters were routed to the Label screen
        underneath, where `q` quits and `g` labels. A key routed to a screen that a coevo
        dialog has covered since is handed to the dialog instead, in order."""
        if isinstance(event, events.Key):
            if not event.is_forwarded:
                event._coevo_routed_to = self.screen  # type: ignore[attr-defined]
            else:
                routed = getattr(event, "_coevo_routed_to", None)
                active = self.screen
                if (routed is not None and routed is not active and routed in self.screen_stack
                        and isinstance(active, CoevoModal)):
                    # As Textual routes a new key: the dialog's priority keys (enter
                    # saves), then its field; typed text goes in at once, so that it
                    # stays in order with the enter behind it.
                    if (not await self._check_bindings(event.key, priority=True)
                            and not active.take_key(event)):
                        again = events.Key(event.key, event.character)
                        again.set_sender(self)
                        (self.focused or active)._forward_event(again)
                    return
        await super().on_event(event)

    async def on_unmount(self) -> None:
        if self.store is not None:
            await self.store.close()

    def _apply_project_stylesheet(self, project: Project) -> None:
        """Load the demo stylesheet on top of app.tcss when the project is the demo.

        `coevo_tui.demo` (no Textual, no litellm) says whether a project is the demo and
        where demo.tcss is; its rules come after app.tcss, so at equal specificity they win.
        """
        from coevo_tui.demo import demo_stylesheet, is_demo

        if not is_demo(project):
            return
        sheet = demo_stylesheet()
        if sheet is None:  # an installation without the file: keep the plain look
            return
        try:
            self.stylesheet.read(sheet)
            self.refresh_css(animate=False)
        except Exception as exc:  # a broken demo stylesheet must not stop the app
            self.report_error(UserError(f"demo stylesheet not loaded: {exc}"))

    # ------------------------------------------------------------------ errors
    def report_error(self, error: BaseException) -> None:
        """The one error path: every failure becomes a one-line error notification.

        A `UserError` is expected (bad input, a busy file) and shows its own message. The
        machine refusing (a full disk, a read-only project, an I/O error, memory running
        out; SQLite's and the OS's errors) is said plainly through `storage_error_in`, as
        the command line does: the refused change was not made, everything before it is
        kept. Anything else is a bug and shows its type too (the traceback goes to
        Textual's log, not the screen).
        """
        refusal = error if isinstance(error, UserError) else storage_error_in(
            error, self.project_path)
        if refusal is not None:
            title = (READ_ONLY if isinstance(refusal, ReadOnlyProject) else
                     "Not saved" if isinstance(refusal, StorageError) else "Error")
            self.notify(shown_name(str(refusal)), title=title, severity="error",
                        timeout=12 if isinstance(refusal, StorageError) else 8)
            return
        if isinstance(error, sqlite3.Error):
            message = f"the project file could not be read or written: {error}"
        else:
            message = f"{type(error).__name__}: {error}"
        self.log.error("".join(traceback.format_exception(error)))
        self.notify(shown_name(message), title="Unexpected error", severity="error",
                    timeout=12)

    def _fatal_error(self) -> None:
        """An exception no handler took ends the app (Textual's rule). Textual would print
        its traceback, local variables included (they may hold secrets), once the terminal
        is restored; instead `crash` keeps the exception and the command line's error
        boundary prints one line for it. COEVO_DEBUG=1 keeps Textual's traceback."""
        if os.environ.get("COEVO_DEBUG", "") not in ("", "0"):
            super()._fatal_error()
            return
        self.crash = sys.exc_info()[1] or self._exception
        self.log.error(traceback.format_exc())
        self.bell()
        self._close_messages_no_wait()

    # ------------------------------------------------------------------ screens
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_screen":
            name = parameters[0] if parameters else None
            return name in self.available_screens
        return True

    async def action_open_screen(self, name: str) -> None:
        await self.open_screen(name)

    async def open_screen(self, name: str, **kwargs: Any) -> None:
        """Open the screen `name` (see screens/registry.py), made with `kwargs`.

        Top-level screens open above the Cases screen and replace each other (the stack
        stays Cases + one), so `esc` on any of them returns to the Cases screen. A
        drill-down entry (e.g. the case detail) is pushed above the current screen, so `esc`
        returns to where it came from.
        """
        entry = SCREENS.get(name)
        if entry is None or name not in self.available_screens:
            self.notify(f"the {name} screen is not available yet", severity="warning")
            return
        try:
            factory = entry.load()
            screen = factory(**kwargs)
        except UserError as exc:
            self.report_error(exc)
            return
        if entry.drill_down:
            await self.push_screen(screen)
            return
        from coevo_tui.screens.cases import CasesScreen

        if len(self.screen_stack) > 2 and isinstance(self.screen_stack[1], CasesScreen):
            self.screen_stack[1].passing_through()
        while len(self.screen_stack) > 1 and not isinstance(self.screen, CasesScreen):
            await self.pop_screen()
        await self.push_screen(screen)

    def action_help(self) -> None:
        from coevo_tui.screens.dialogs.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        self.exit(0)

    # ------------------------------------------------------------------ model services
    async def load_llm(self, module: str) -> ModuleType:
        """Import a litellm-backed module (e.g. "coevo_tui.llm.runner") off the event loop.

        The first import pulls in litellm (~3.5 s of CPU); doing it in a thread keeps the
        screen drawing meanwhile. Later calls return the already imported module at once.
        """
        loaded = sys.modules.get(module)
        if loaded is not None:
            return loaded
        return await asyncio.to_thread(importlib.import_module, module)

    def model_choice(self) -> ModelChoice:
        """The model the TUI calls: --model, the project's model, COEVO_MODEL, then the
        offline demo model (llm/config.py). Raises ModelNotConfigured (a UserError)."""
        from coevo_tui.llm.config import resolve_model

        project_model = self.project.model if self.project is not None else None
        return resolve_model(self.model_override, project_model, self.api_base_override)

    def model_client(self) -> ModelClient:
        """The app's shared ModelClient (bounded concurrency, retries); cheap to import,
        litellm itself loads on the first call."""
        if self.llm_client is None:
            from coevo_tui.llm.client import ModelClient

            self.llm_client = ModelClient()
        return self.llm_client

    # ------------------------------------------------------------------ the test set's run
    def start_test_set_run(self, run: TestSetRun, events: AsyncIterator[object]) -> None:
        """Drive `events` (a runner's run) into `run` in an app worker, so that the run
        goes on whichever screen is shown. A run already going is stopped first (it is
        resumable: its answers are stored)."""
        previous = self.test_set_run
        if previous is not None and previous.running:
            self.notify(f"Stopped the {previous.progress()} to start this one "
                        "(R over that version resumes it).", timeout=6)
        self.test_set_run = run
        run.worker = self.run_worker(self._drive_test_set_run(run, events),
                                     group="test-set-run", exclusive=True,
                                     exit_on_error=False)

    def stop_test_set_run(self) -> None:
        run = self.test_set_run
        if run is not None and run.running and run.worker is not None:
            run.worker.cancel()

    async def _drive_test_set_run(self, run: TestSetRun, events: AsyncIterator[object]) -> None:
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    run.handle(event)
        finally:
            unseen = not run.listeners
            run.end()
            summary = run.summary
            if unseen and summary is not None and summary.to_run and self.is_running:
                # Nobody is watching its panel: say how it ended.
                if summary.halted:
                    self.notify(f"Run of v{run.version.number} stopped: {summary.done} of "
                                f"{summary.to_run} done. R resumes the unfinished cases.",
                                timeout=6)
                else:
                    self.notify(f"Run of v{run.version.number} done: {summary.line()}",
                                timeout=6,
                                severity="warning" if summary.errors else "information")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if (event.worker.group == "test-set-run" and event.state is WorkerState.ERROR
                and event.worker.error is not None):
            self.report_error(event.worker.error)

    # ------------------------------------------------------------------ keymap
    def _warn_unknown_keymap_ids(self) -> None:
        """A keymap id that names no binding is most likely a typo: say so once."""
        declared = _declared_binding_ids()
        known_prefixes = {i.split(".", 1)[0] for i in declared}
        unknown = sorted(
            i for i in self.user_keymap
            if i not in declared and i.split(".", 1)[0] in known_prefixes
        )
        if unknown:
            self.notify(f"COEVO_KEYMAP: no binding has the id {', '.join(unknown)}",
                        severity="warning", timeout=8)


def _declared_binding_ids() -> set[str]:
    """The ids of every binding declared by an imported widget, screen or the app."""
    ids: set[str] = set()
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        for binding in cls.__dict__.get("BINDINGS", []):
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def make_app(project_path: Path | str, *, model: str | None = None,
             api_base: str | None = None, keymap: dict[str, str] | None = None) -> CoevoApp:
    """The one factory for the command line and the tests.

    `keymap` defaults to the user's `COEVO_KEYMAP`; a malformed one raises UserError
    (one line on stderr, exit status 2, before the screen is taken over).
    """
    if keymap is None:
        keymap = keymap_from_environment()
    return CoevoApp(Path(project_path), model=model, api_base=api_base, keymap=keymap)

