"""One line naming the model the TUI calls (plainly a tiny demo model, or none at all), the
assistant model, and the app's long jobs while they run ("run v2 12/54 · model: ... ·
assistant: ...")."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

from coevo_tui.domain.errors import UserError

if TYPE_CHECKING:
    from coevo_tui.app import CoevoApp
    from coevo_tui.jobs import Job
    from coevo_tui.session import Session

READ_ONLY = "read-only"  # also the app's sub-title for a project opened read-only
NO_MODEL = ("no model configured: start with --model M (and its API key in the environment),"
            " set COEVO_MODEL, or install the offline demo model")


def model_line(session: Session) -> tuple[str, str]:
    """(text, state) for the model under test: state is "ok", "demo" (the tiny offline
    model) or "missing" (nothing configured, or a configuration error such as --api-base
    alone)."""
    from coevo_tui.llm.config import ModelNotConfigured

    try:
        choice = session.model_choice()
    except ModelNotConfigured:
        return NO_MODEL, "missing"
    except UserError as exc:
        return str(exc), "missing"
    if choice.is_local_demo:
        return f"model: {choice.describe()}", "demo"
    return f"model: {choice.describe()} (from {choice.source})", "ok"


def assistant_line(session: Session) -> str:
    """The assistant model in a few words: "assistant: M", "assistant: small local model"
    for the offline one, "assistant: the same model" when it is the model under test, or
    why there is none."""
    try:
        choice = session.assistant_choice()
    except UserError:
        return ("assistant: none configured (start with --assistant-model M or --model M, "
                "or set COEVO_ASSISTANT_MODEL)")
    if choice.is_local_demo:
        return "assistant: small local model"
    try:
        under_test = session.model_choice()
        same = (under_test.model, under_test.api_base) == (choice.model, choice.api_base)
    except UserError:
        same = False
    return "assistant: the same model" if same else f"assistant: {choice.describe()}"


class StatusBar(Static):
    """The model in use and the assistant model, on one line above the footer. `refresh_model()` re-reads it
    (after the project's model changed). The state is a CSS class (-demo, -missing) and,
    for NO_COLOR, a leading marker: "!" when no model, "~" for the demo model. A project
    opened read-only says so first ("read-only · model: ..."; class -read-only)."""

    def on_mount(self) -> None:
        app = cast("CoevoApp", self.app)
        app.jobs.changed.subscribe(self, self._job_changed)
        self.refresh_model()

    def _job_changed(self, job: Job) -> None:
        self.refresh_model()

    def refresh_model(self) -> None:
        app = cast("CoevoApp", self.app)
        text, state = model_line(app.session)
        if state != "missing":
            text += f" · {assistant_line(app.session)}"
        marker = {"missing": "! ", "demo": "~ "}.get(state, "")
        read_only = app.session.read_only
        if read_only:  # first, so it survives the ellipsis of a narrow screen
            marker = f"{READ_ONLY} · {marker}"
        jobs = app.jobs.summary_text()
        if jobs:  # what is going on matters more than the model's name
            marker = f"{jobs} · {marker}"
        self.update(Text(marker + text, no_wrap=True, overflow="ellipsis"))
        self.set_class(state == "demo", "-demo")
        self.set_class(state == "missing", "-missing")
        self.set_class(read_only, "-read-only")
        self.tooltip = f"{READ_ONLY} · {text}" if read_only else text
