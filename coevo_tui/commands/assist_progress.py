"""What the assistant's headless commands (`coevo generate`, `coevo judge`) share: the
model client's settings from the environment, as `coevo run` reads them (defined there),
and driving a task's events with a progress bar on stderr when it is a terminal (plain
lines and no bar otherwise), the summary line printed last even when stopped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

from coevo_tui.assist.events import (
    AssistFinished,
    AssistStarted,
    AssistSummary,
    CandidateAdded,
    CandidateDropped,
    ItemRejected,
    Judged,
)
from coevo_tui.commands.run import use_client_from_environment
from coevo_tui.domain.errors import UserError

async def drive(events: AsyncIterator[Any], describe: str,
                on_event: Callable[[Any], None], *, out: TextIO | None = None
                ) -> AssistSummary | None:
    """Run a task's `events` to the end: a bar on stderr (a terminal only) advancing per
    item, `on_event` for every event (the command prints its lines there), and the
    summary's line on `out` (default stdout) last, also when the task is stopped (Ctrl-C)
    or fails. Returns the summary (None if the task ended before it began)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
        TimeElapsedColumn

    err = Console(stderr=True)
    # Lines printed while the bar shows go above it when both are on the terminal; a
    # piped stdout gets them as they are.
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                        console=err, disable=not err.is_terminal, transient=True,
                        redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
    summary: AssistSummary | None = None
    bar = None
    refused = False
    try:
        with progress:
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, AssistStarted):
                        summary = event.summary
                        bar = progress.add_task(describe, total=event.total, note="")
                    elif isinstance(event, AssistFinished):
                        summary = event.summary
                    if bar is not None and isinstance(
                            event, (CandidateAdded, CandidateDropped, ItemRejected, Judged)):
                        note = "" if summary is None else _note(summary)
                        progress.update(bar, advance=1, note=note)
                    on_event(event)
    except UserError:
        refused = True  # bad input: its one line says it all
        raise
    finally:
        if summary is not None and not refused:
            summary.finish()
            print(summary.line(), file=out or sys.stdout, flush=True)
    return summary


def _note(summary: AssistSummary) -> str:
    if summary.task == "judge":
        return f"{summary.errors} failed" if summary.errors else ""
    return f"{summary.kept} kept, {summary.dropped} dropped"


__all__ = ["drive", "use_client_from_environment"]
