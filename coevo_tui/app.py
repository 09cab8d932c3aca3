"""The Textual App: opens the session, pushes the Cases screen, hosts the long jobs, routes
errors to notifications.

How the app is put together (read this before adding a screen):

- **Screens** live in `coevo_tui/screens/<name>.py`, subclass `screens.base.CoevoScreen`
  (gives `self.session`, `self.store` and `self.jobs`, and reports worker failures), and
  compose their own `Header` and `Footer`. Top-level screens are opened by name with `app.open_screen(name, **kwargs)`;
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
- **The session** (`coevo_tui/session.py`, no Textual) is the open project and its models:
  `session.store`, `session.model_choice()`, `session.assistant_choice()`, the one model
  client and `session.runner()`. The headless commands stand on the same object.
- **Long work** (a run of the test set, Compare's run, the assistant's batches of cases and
  the judge) is an app-owned job (`coevo_tui/jobs.py`, `app.jobs`): it goes on when its
  screen is left, shows its progress on every screen, stops with `X` (or the screen's own
  key), and never runs twice. Screens follow a job through the `app.jobs.changed` and
  `.events` signals. When a run of the test set ends and an assistant model is configured
  (`Session.assistant_configured`), the judge looks at its unlabelled answers (a job too).
- **Model calls** (litellm) are never imported at start-up (`import litellm` costs ~3.5 s):
  the model client imports it in a thread on the first call, so the screen keeps drawing.
- **Styles** are in the top-level `styles/` folder (installed as `coevo_tui.styles`;
  theme variables only): `app.tcss` holds what is app-wide (the header and the shared
  widgets), each screen loads its own `<screen>.tcss` through its `CSS_PATH`
  (`stylesheet(name)` in screens/base.py), the dialogs `dialogs.tcss`; no widget carries
  DEFAULT_CSS. The demo project also loads `demo.tcss` on top (`_apply_project_stylesheet`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode

from coevo_tui.domain.errors import (
    ProjectFileError,
    ReadOnlyProject,
    StorageError,
    UserError,
    shown_name,
)
from coevo_tui.domain.model import Project
from coevo_tui.jobs import JOB_ENDED, JobEvent, Jobs, TestSetRun, start_judge
from coevo_tui.keymap import keymap_from_environment
from coevo_tui.palette import ScreenActionsProvider
from coevo_tui.screens.base import CoevoModal, stylesheet
from coevo_tui.screens.registry import SCREENS
from coevo_tui.session import Session
from coevo_tui.store.faults import storage_error_in
from coevo_tui.widgets.status_bar import READ_ONLY

if TYPE_CHECKING:
    from coevo_tui.llm.client import ModelClient


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
        # `o` before `v`: at 80 columns the footer has room for one of them; `v` is in `?`,
        # the palette and every message about the queue ("v opens it").
        Binding("o", "open_screen('overview')", "Overview", id="app.overview"),
        Binding("v", "open_screen('candidates')", "Candidates", id="app.candidates"),
        # Not in the footer (80 columns are full): every progress line says "X stops".
        Binding("X", "stop_job", "Stop job", id="app.stop_job", show=False,
                tooltip="Stop the newest long job (a run; its answers so far are kept)"),
    ]

    def __init__(self, project_path: Path, *, model: str | None = None,
                 api_base: str | None = None, assistant_model: str | None = None,
                 keymap: dict[str, str] | None = None,
                 client: ModelClient | None = None) -> None:
        super().__init__()
        self.project_path = project_path
        self._session_options: dict[str, Any] = {
            "model": model, "api_base": api_base, "assistant_model": assistant_model,
            "client": client}
        # The open project and its models (set in on_mount, before any screen is pushed).
        self._session: Session | None = None
        # The app's long work; made in on_mount (its signals need a running app).
        self._jobs: Jobs | None = None
        self.startup_error: str | None = None
        self.user_keymap = dict(keymap or {})
        # Decided once: find_spec is cheap but check_action runs on every footer refresh.
        self.available_screens = {name for name, e in SCREENS.items() if e.is_available()}
        # An exception no handler took, which ended the app (see `_fatal_error`).
        self.crash: BaseException | None = None

    @property
    def session(self) -> Session:
        """The open project and its models (screens are pushed only once it is open)."""
        assert self._session is not None, "the session opens before any screen is pushed"
        return self._session

    @property
    def jobs(self) -> Jobs:
        """The app's long work (runs, and later generating and judging)."""
        assert self._jobs is not None, "jobs exist from on_mount on"
        return self._jobs

    # ------------------------------------------------------------------ life cycle
    async def on_mount(self) -> None:
        self._jobs = Jobs(self)
        self._jobs.events.subscribe(self, self._judge_after_run)
        try:
            self._session = await Session.open(self.project_path, **self._session_options)
        except (UserError, sqlite3.Error, OSError, MemoryError) as exc:
            refusal = exc if isinstance(exc, UserError) else storage_error_in(
                exc, self.project_path)
            if refusal is None:  # a SQLite error that is no refusal: the file is bad
                refusal = ProjectFileError(f"{shown_name(self.project_path)}: cannot open "
                                           f"({exc})")
            self.startup_error = str(refusal)
            self.exit(refusal.exit_status, return_code=refusal.exit_status)
            return
        project = self.session.project
        self.title = project.name
        if self.session.read_only:
            self.sub_title = READ_ONLY
            self.notify("The project is read-only (its file, folder or disk cannot be "
                        "written): you can look, but changes cannot be saved.",
                        title=READ_ONLY, severity="warning", timeout=10)
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self._apply_project_stylesheet(project)
        from coevo_tui.screens.cases import CasesScreen

        await self.push_screen(CasesScreen())
        self._warn_unknown_keymap_ids()

    def _judge_after_run(self, job_event: JobEvent) -> None:
        """A run of the test set finished with new answers: with an assistant model
        configured, the judge suggests a verdict for each unlabelled one (an app job; the
        Label and Compare screens show the suggestions as they come)."""
        run = job_event.job
        if (job_event.event is not JOB_ENDED or not isinstance(run, TestSetRun)
                or run.stopped or run.failed is not None or run.summary is None
                or not run.summary.done or self._session is None
                or not self._session.assistant_configured()):
            return
        start_judge(self.jobs, self._session, run.version, run.model)

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
        if self._session is not None:
            await self._session.close()

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

    def action_stop_job(self) -> None:
        job = self.jobs.stop()
        if job is None:
            self.notify("No long job is running.", timeout=3)
            return
        self.notify(f"Stopping the {job.progress_text()}; what it finished is kept.",
                    timeout=4)

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
             api_base: str | None = None, assistant_model: str | None = None,
             keymap: dict[str, str] | None = None,
             client: ModelClient | None = None) -> CoevoApp:
    """The one factory for the command line and the tests.

    `keymap` defaults to the user's `COEVO_KEYMAP`; a malformed one raises UserError
    (one line on stderr, exit status 2, before the screen is taken over). `client`
    replaces the session's model client (tests pass one with short timeouts).
    """
    if keymap is None:
        keymap = keymap_from_environment()
    return CoevoApp(Path(project_path), model=model, api_base=api_base,
                    assistant_model=assistant_model, keymap=keymap, client=client)

