"""`coevo run PATH`: run every active case under a version, headless, storing each output.

Uses the same engine as the TUI (coevo_tui.llm.runner). Each output is committed the
moment it completes; a run killed halfway and started again calls the model only for the
cases without an ok output. Progress goes to stderr (a bar when stderr is a terminal), the
one-line summary to stdout.

Exit status: 0 every case has an ok output, 1 some outputs are errors (they are stored,
with the message), 2 bad input (nothing changed), 130 interrupted (answers that arrived
are kept; the run is recorded as halted).

Tuning through the environment: COEVO_TIMEOUT (seconds per attempt, default 120),
COEVO_MAX_ATTEMPTS (default 6, see RetryPolicy), COEVO_RETRY_DELAY (first backoff in
seconds, default 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from coevo_tui.llm.litellm_import import (
    join_preload,
    preload_litellm,
    use_litellm_http_handler_for_openai,
)

if TYPE_CHECKING:
    from coevo_tui.domain.model import PromptVersion
    from coevo_tui.llm.runner import Runner, RunStarted, RunSummary
    from coevo_tui.session import Session

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 512


def main(args: argparse.Namespace) -> int:
    # litellm takes seconds to import: start now so it overlaps opening the project.
    preload_litellm()
    use_litellm_http_handler_for_openai()  # headless runs never stream
    import asyncio

    try:
        return asyncio.run(run_command(args))
    finally:
        join_preload()


def _env_number(name: str, default: float, *, integer: bool = False, minimum: float = 0
                ) -> float:
    from coevo_tui.domain.errors import UserError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise UserError(f"{name} must be at least {minimum:g}")
    return value


def use_client_from_environment(session: Session, concurrency: int | None = None) -> None:
    """The session's client with COEVO_TIMEOUT, COEVO_MAX_ATTEMPTS and COEVO_RETRY_DELAY
    (README "Running headless"), and `concurrency` if given."""
    from coevo_tui.llm.client import RetryPolicy

    timeout = _env_number("COEVO_TIMEOUT", 120.0, minimum=0.001)
    retry = RetryPolicy(
        max_attempts=int(_env_number("COEVO_MAX_ATTEMPTS", RetryPolicy.max_attempts,
                                     integer=True, minimum=1)),
        base_delay=_env_number("COEVO_RETRY_DELAY", 1.0))
    session.use_client(concurrency=concurrency, timeout=timeout, retry=retry)


async def run_command(args: argparse.Namespace) -> int:
    from coevo_tui.domain.errors import UserError
    from coevo_tui.session import Session

    concurrency = DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UserError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    async with await Session.open_existing(Path(args.path), missing="nothing was run",
                                           model=args.model, api_base=args.api_base) as session:
        use_client_from_environment(session, concurrency)
        version = (await session.store.versions.by_number(args.version) if args.version is not None
                   else await session.store.versions.latest())
        summary = await run_missing(session, version, use_cache=not args.no_cache)
    return 1 if summary.errors else 0


async def run_missing(session: Session, version: PromptVersion, *, use_cache: bool = True,
                      out: TextIO | None = None) -> RunSummary:
    """Run every active case of `version` that has no ok answer yet of the session's
    model under test (resume), on the session's client (its concurrency, timeout and
    retries) and through the cache: what `coevo run` does, and what `coevo eval --check`
    does before it compares. A bar on stderr when it is a terminal; the header line and
    the summary line (also when stopped) on `out` (default stdout)."""
    choice = session.model_choice()
    return await _run_with_progress(session.runner(choice), version, use_cache=use_cache,
                                    project_name=session.project.name,
                                    out=out or sys.stdout)


async def _run_with_progress(runner: Runner, version: PromptVersion, *, use_cache: bool,
                             project_name: str, out: TextIO) -> RunSummary:
    import contextlib

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from coevo_tui.llm.runner import CaseFinished, RunFinished, RunStarted, RunSummary

    err = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]} errors"),
        TextColumn("{task.fields[cost]}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=False,
    )
    summary: RunSummary | None = None
    task = None
    try:
        with progress:
            events = runner.run_version(version, use_cache=use_cache)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, CaseFinished) and task is not None:
                        assert summary is not None
                        progress.update(task, advance=1, errors=summary.errors,
                                        cost=summary.cost_text())
                    elif isinstance(event, RunStarted):
                        summary = event.summary
                        print(_header(project_name, event, runner.choice.describe()),
                              file=out, flush=True)
                        task = progress.add_task(f"v{event.version.number}",
                                                 total=summary.to_run, errors=0, cost="$0")
                    elif isinstance(event, RunFinished):
                        summary = event.summary
    finally:
        if summary is not None:
            print(summary.line(), file=out, flush=True)
    assert summary is not None
    return summary


def _header(project_name: str, event: RunStarted, model: str) -> str:
    s = event.summary
    head = f"{project_name} v{event.version.number} with {model}: "
    if s.to_run == 0:
        return head + (f"all {s.total} active cases already have an answer"
                       if s.total else "no active cases")
    done = f" ({s.skipped} already done)" if s.skipped else ""
    return head + f"running {s.to_run} case{'' if s.to_run == 1 else 's'}{done}"

