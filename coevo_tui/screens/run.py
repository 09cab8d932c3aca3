"""`R`: run the whole test set. The run belongs to the app (`TestSetRun`), so it goes on
when the screen that started it is left; the Label screen shows it (its run panel) so the
answers can be labelled while they stream in, and the Cases screen shows its progress.
This module is the registry's entry point, the run's state, and the run panel's wording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text

if TYPE_CHECKING:
    from textual.worker import Worker

    from coevo_tui.domain.model import PromptVersion
    from coevo_tui.llm.runner import RunSummary
    from coevo_tui.screens.label import LabelScreen


class RunEnded:
    """Sent to a run's listeners last, once it finished or was stopped (while `pending`
    still holds the cases it did not answer)."""


RUN_ENDED = RunEnded()


class TestSetRun:
    """The state of one run of the test set under `version` with `model`, kept up to date
    from the runner's events (llm/runner.py), which it passes on to its listeners."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, version: PromptVersion, model: str, pending: set[int]) -> None:
        self.version = version
        self.model = model
        self.running = True
        self.summary: RunSummary | None = None
        self.pending = pending  # cases still to answer
        self.streams: dict[int, list[str]] = {}  # text so far of the cases being answered
        self.listeners: list[Callable[[object], None]] = []
        self.worker: Worker[None] | None = None

    def handle(self, event: object) -> None:
        """Apply one runner event, then pass it on."""
        from coevo_tui.llm.runner import (
            CaseDelta,
            CaseFinished,
            CaseRestarted,
            CaseStarted,
            RunFinished,
            RunStarted,
        )

        if isinstance(event, CaseDelta):
            self.streams.setdefault(event.case_id, []).append(event.text)
        elif isinstance(event, (CaseStarted, CaseRestarted)):
            self.streams[event.case_id] = []
        elif isinstance(event, CaseFinished):
            self.pending.discard(event.case_id)
            self.streams.pop(event.case_id, None)
        elif isinstance(event, (RunStarted, RunFinished)):
            self.summary = event.summary
        for listener in list(self.listeners):
            listener(event)

    def end(self) -> None:
        """The run is over (done, stopped or failed): tell the listeners, then forget the
        cases it left unanswered."""
        self.running = False
        for listener in list(self.listeners):
            listener(RUN_ENDED)
        self.pending = set()
        self.streams = {}

    def progress(self) -> str:
        """A few words for places other than the run panel: "run v2 12/54"."""
        summary = self.summary
        if summary is None:
            return f"run v{self.version.number} starting"
        state = "" if self.running else (" stopped" if summary.halted else " done")
        return f"run v{self.version.number}{state} {summary.done}/{summary.to_run}"


def run_screen(version: int | None = None, **kwargs: Any) -> LabelScreen:
    """The screen `R` opens: the Label screen over every active case with the run of the
    test set started under `version` (default the newest). Keyword arguments go to
    LabelScreen (e.g. `case_ids`, `start_case_id`)."""
    from coevo_tui.screens.registry import SCREENS  # screens never import screens

    label_screen = SCREENS["label"].load()
    return cast("LabelScreen", label_screen(version=version, start_run=True, **kwargs))


def text_bar(done: int, total: int, width: int = 20) -> str:
    """A progress bar readable without colour: "█████░░░░░"."""
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def run_line(summary: RunSummary, version: PromptVersion, *, running: bool) -> Text:
    """The run panel's line: bar, done/total, errors, cost, and what the keys do."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if running:
        head = f"Run v{version.number} "
    elif summary.halted:
        head = f"Run stopped v{version.number} "
    else:
        head = f"Run done v{version.number} "
    text.append(head, style="bold")
    text.append(text_bar(summary.done, summary.to_run, 16))
    text.append(f" {summary.done}/{summary.to_run}")
    errors = f" · {summary.errors} error{'' if summary.errors == 1 else 's'}"
    text.append(errors, style="bold" if summary.errors else "")
    if summary.cached:
        text.append(f" · {summary.cached} cached")
    text.append(f" · {summary.cost_text()}")
    if summary.skipped:
        text.append(f" · {summary.skipped} already done")
    if running:
        text.append(" · x stop", style="dim")
    elif summary.halted:
        text.append(" · R resumes", style="dim")
    return text
