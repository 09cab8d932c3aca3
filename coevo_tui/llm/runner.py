"""Running cases through the model and storing every output the moment it completes.

One engine for `coevo run` and the TUI (``R``, re-run, Compare): `Runner.run_version`
runs a version's active cases, `Runner.run_case` one case. Both are async iterators of
typed events, so a Textual worker can consume them and post messages::

    runner = Runner(store, ModelClient(concurrency=8), resolve_model(...), project.params)
    async with contextlib.aclosing(runner.run_version(version)) as events:
        async for event in events:
            ...  # RunStarted, CaseStarted, CaseDelta, CaseRestarted, CaseFinished, RunFinished

Rules:

* **Resume.** A case that already has an ok output for this version, model and parameters
  is skipped (``skip_finished``), so a run killed halfway and started again calls the
  model only for the unfinished cases.
* **Cache.** A call identical to one already answered ok (model, parameters, full
  messages, server) is served from the project without calling the model and stored as a
  new output with ``cached=True``; ``use_cache=False`` forces a fresh call.
* **Cancellation stores nothing.** Cancelling (leaving a screen, Ctrl-C) stops the calls
  at once and stores no output for them, so they are not counted as finished and a
  resumed run calls them again. Answers that had already arrived are still stored, and the
  run is recorded as halted.
* Errors after retries are stored as outputs with status ``error`` and the message.
* After each ok output, carry-over gives it the label of an identical labelled answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coevo_tui.domain.model import Case, CaseState, Label, Output, OutputStatus, PromptVersion
from coevo_tui.llm.client import (
    RESERVED_PARAMS,
    CallResult,
    ModelCall,
    ModelClient,
    StreamDone,
    StreamRetry,
    TextDelta,
    build_messages,
)
from coevo_tui.llm.config import ModelChoice
from coevo_tui.store import Store


@dataclass
class RunSummary:
    """Counts of a run, updated live while it runs (the same object throughout)."""

    total: int = 0  # cases considered
    skipped: int = 0  # already had an ok output (resume)
    to_run: int = 0
    ok: int = 0
    errors: int = 0
    cached: int = 0
    cost: float = 0.0
    priced: int = 0  # ok outputs whose price litellm knew
    tokens_in: int = 0
    tokens_out: int = 0
    elapsed_s: float = 0.0
    halted: bool = False
    _started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def done(self) -> int:
        return self.ok + self.errors

    def add(self, output: Output) -> None:
        if output.status == OutputStatus.OK:
            self.ok += 1
            self.cached += int(output.cached)
            if output.cost is not None:
                self.cost += output.cost
                self.priced += 1
        else:
            self.errors += 1
        self.tokens_in += output.tokens_in or 0
        self.tokens_out += output.tokens_out or 0

    def cost_text(self) -> str:
        unknown = self.ok - self.priced
        if self.priced == 0 and unknown:
            return "cost unknown"
        text = f"${self.cost:.4f}"
        return text + f" (+{unknown} unpriced)" if unknown else text

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        head = "halted: " if self.halted else ""
        errors = f"{self.errors} error" + ("" if self.errors == 1 else "s")
        return (f"{head}{self.ok} ok ({self.cached} cached), {errors}, "
                f"{self.skipped} already done; {self.cost_text()}; {self.elapsed_s:.1f} s")

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "skipped": self.skipped, "ok": self.ok,
                "errors": self.errors, "cached": self.cached, "cost": round(self.cost, 8),
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "elapsed_s": round(self.elapsed_s, 3)}


@dataclass(frozen=True)
class RunStarted:
    """A run began. `run_id` is None when there was nothing to call (no run recorded)."""

    run_id: int | None
    version: PromptVersion
    model: str
    summary: RunSummary


@dataclass(frozen=True)
class CaseStarted:
    case_id: int


@dataclass(frozen=True)
class CaseDelta:
    """Streamed text for a case (only when streaming; a cache hit sends its whole text)."""

    case_id: int
    text: str


@dataclass(frozen=True)
class CaseRestarted:
    """The case's stream failed and starts over: discard the text shown so far."""

    case_id: int
    reason: str


@dataclass(frozen=True)
class CaseFinished:
    """The case's output is stored. `label` is the label carry-over gave it, if any."""

    case_id: int
    output: Output
    label: Label | None = None


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


CaseEvent = CaseStarted | CaseDelta | CaseRestarted | CaseFinished
RunEvent = RunStarted | CaseEvent | RunFinished


@dataclass(frozen=True)
class _Answer:
    """A finished call (or cache hit) waiting to be stored."""

    case: Case
    call: ModelCall
    key: str
    result: CallResult | None
    cached: Output | None
    lookup_ms: float = 0.0


class _Crash:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


class Runner:
    """Runs cases of a project through one model choice and stores the outputs.

    `params` are the model parameters (the project's ``params``: temperature, ...).
    Share one `ModelClient` between runners to share its concurrency bound.
    """

    def __init__(self, store: Store, client: ModelClient, choice: ModelChoice,
                 params: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.client = client
        self.choice = choice
        # Parameters that name the call itself (model, api_key, ...) are neither sent nor
        # stored with outputs: a key put there by mistake must not land in every output row.
        self.params = {k: v for k, v in (params or {}).items() if k not in RESERVED_PARAMS}

    def call_for(self, version: PromptVersion, case_input: str) -> ModelCall:
        """The exact call made for a case under a version."""
        return ModelCall(self.choice.model, build_messages(version, case_input), self.params,
                         self.choice.api_base)

    # ------------------------------------------------------------------ one case
    async def run_case(self, case: Case, version: PromptVersion, *, use_cache: bool = True,
                       stream: bool = True, run_id: int | None = None
                       ) -> AsyncIterator[CaseEvent]:
        """Run one case (streaming by default): CaseStarted, CaseDelta/CaseRestarted...,
        CaseFinished. Raises MissingApiKey before anything is stored if the key is unset."""
        await self.client.check_ready(self.choice)
        yield CaseStarted(case.id)
        call = self.call_for(version, case.input)
        key = call.cache_key()
        answer: _Answer | None = None
        if use_cache:
            answer = await self._lookup(case, call, key)
        if answer is not None and answer.cached is not None:
            yield CaseDelta(case.id, answer.cached.text)
        elif stream:
            result: CallResult | None = None
            # One case is what the user is watching: it goes before a run's waiting calls.
            async with contextlib.aclosing(self.client.stream(call, urgent=True)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        yield CaseDelta(case.id, event.text)
                    elif isinstance(event, StreamRetry):
                        yield CaseRestarted(case.id, event.reason)
                    elif isinstance(event, StreamDone):
                        result = event.result
            assert result is not None
            answer = _Answer(case, call, key, result, None)
        else:
            answer = _Answer(case, call, key, await self.client.complete(call, urgent=True),
                             None)
        output, label = await self._store_answer(answer, version, run_id)
        yield CaseFinished(case.id, output, label)

    async def _lookup(self, case: Case, call: ModelCall, key: str) -> _Answer | None:
        started = time.perf_counter()
        cached = await self.store.outputs.cached(key)
        if cached is None:
            return None
        return _Answer(case, call, key, None, cached, (time.perf_counter() - started) * 1000)

    async def _store_answer(self, answer: _Answer, version: PromptVersion,
                            run_id: int | None) -> tuple[Output, Label | None]:
        common = dict(case_id=answer.case.id, version_id=version.id, model=answer.call.model,
                      params=self.params, cache_key=answer.key, run_id=run_id)
        if answer.cached is not None:
            hit = answer.cached
            # No money was spent on a cache hit; tokens say what the answer is worth.
            output = await self.store.outputs.add(
                **common, text=hit.text, status=OutputStatus.OK, latency_ms=answer.lookup_ms,
                tokens_in=hit.tokens_in, tokens_out=hit.tokens_out, cost=0.0, cached=True)
        else:
            r = answer.result
            assert r is not None
            output = await self.store.outputs.add(
                **common, text=r.text, status=r.status, error=r.error,
                latency_ms=r.latency_ms, tokens_in=r.tokens_in, tokens_out=r.tokens_out,
                cost=r.cost)
        return output, await self._carry_over(output)

    async def _carry_over(self, output: Output) -> Label | None:
        # The one call site of carry-over (coevo_tui.domain.carryover, applied by the store).
        if output.status != OutputStatus.OK:
            return None
        apply = getattr(self.store.labels, "inherit", None)
        if apply is None:
            return None
        return await apply(output.id)

    # ------------------------------------------------------------------ a whole version
    async def run_version(self, version: PromptVersion, *, use_cache: bool = True,
                          stream: bool = False, cases: Iterable[Case] | None = None,
                          skip_finished: bool = True) -> AsyncIterator[RunEvent]:
        """Run every active case (or `cases`) under `version`, at most the client's
        concurrency at once, storing each output as it completes.

        Yields RunStarted (with the live RunSummary), then per case CaseStarted, CaseDelta
        (streaming only), CaseFinished, and finally RunFinished. Headless runs should keep
        ``stream=False``: one plain request per case is the cheapest path.
        """
        summary = RunSummary()
        chosen = list(cases) if cases is not None else await self.store.cases.all([CaseState.ACTIVE])
        done_ids: set[int] = set()
        if skip_finished:
            done_ids = await self.store.outputs.finished_case_ids(version.id, self.choice.model,
                                                          self.params)
        pending = deque(c for c in chosen if c.id not in done_ids)
        summary.total, summary.to_run = len(chosen), len(pending)
        summary.skipped = summary.total - summary.to_run
        if not pending:
            yield RunStarted(None, version, self.choice.model, summary)
            summary.elapsed_s = time.perf_counter() - summary._started
            yield RunFinished(summary)
            return
        await self.client.check_ready(self.choice)  # a missing key changes nothing
        run_id = await self.store.runs.start(version.id, self.choice.model, self.params,
                                            len(pending))
        yield RunStarted(run_id, version, self.choice.model, summary)

        events: asyncio.Queue[Any] = asyncio.Queue()
        answers: asyncio.Queue[_Answer] = asyncio.Queue()
        expected = len(pending)

        async def call_cases() -> None:
            while pending:
                case = pending.popleft()
                events.put_nowait(CaseStarted(case.id))
                call = self.call_for(version, case.input)
                key = call.cache_key()
                answer = await self._lookup(case, call, key) if use_cache else None
                if answer is None:
                    if stream:
                        answer = await self._stream_case(case, call, key, events)
                    else:
                        answer = _Answer(case, call, key, await self.client.complete(call), None)
                answers.put_nowait(answer)

        async def store_answers() -> None:
            # One writer: calls never wait for the database, and writes queue here rather
            # than on the store's lock.
            for _ in range(expected):
                answer = await answers.get()
                output, label = await self._store_answer(answer, version, run_id)
                summary.add(output)
                events.put_nowait(CaseFinished(answer.case.id, output, label))
            events.put_nowait(_DONE)

        def report_crash(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                events.put_nowait(_Crash(task.exception()))  # type: ignore[arg-type]

        # The offline model generates one answer at a time in-process; more callers would
        # only queue on its lock while their timeouts run.
        width = 1 if self.choice.is_local_demo else self.client.concurrency
        callers = [asyncio.create_task(call_cases()) for _ in range(min(width, expected))]
        writer = asyncio.create_task(store_answers())
        for task in (*callers, writer):
            task.add_done_callback(report_crash)
        status = "halted"
        try:
            while True:
                event = await events.get()
                if event is _DONE:
                    break
                if isinstance(event, _Crash):
                    raise event.exc
                yield event
            status = "done"
        finally:
            summary.halted = status != "done"
            await self._wind_down(callers, writer, answers, version, run_id, summary, status)
        yield RunFinished(summary)

    async def _stream_case(self, case: Case, call: ModelCall, key: str,
                           events: asyncio.Queue[Any]) -> _Answer:
        result: CallResult | None = None
        async with contextlib.aclosing(self.client.stream(call)) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    events.put_nowait(CaseDelta(case.id, event.text))
                elif isinstance(event, StreamRetry):
                    events.put_nowait(CaseRestarted(case.id, event.reason))
                elif isinstance(event, StreamDone):
                    result = event.result
        assert result is not None
        return _Answer(case, call, key, result, None)

    async def _wind_down(self, callers: list[asyncio.Task[None]], writer: asyncio.Task[None],
                         answers: asyncio.Queue[_Answer], version: PromptVersion, run_id: int,
                         summary: RunSummary, status: str) -> None:
        """Stop the tasks; on a halt keep the answers that had already arrived (they were
        paid for), then record how the run ended."""
        for task in callers:
            task.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        if status != "done":
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

            async def keep_arrived() -> None:
                while not answers.empty():
                    output, _ = await self._store_answer(answers.get_nowait(), version, run_id)
                    summary.add(output)

            with contextlib.suppress(Exception):
                await asyncio.shield(keep_arrived())
        summary.elapsed_s = time.perf_counter() - summary._started
        with contextlib.suppress(Exception):
            await asyncio.shield(self.store.runs.finish(run_id, status, summary.as_dict()))
