"""The assistant model as the tasks use it: which model (the Session's rule), the call
each task makes, and the event-log entry each task leaves.

Every assistant task (assist/rules.py, candidates.py, similar.py, rationale.py,
revision.py, judge.py) builds its messages purely and goes through `Assistant.call`, so
the model, the server and the sampling settings are chosen in one place; and every task
ends with `Assistant.record`, one event of kind ``assist`` whose entity is the task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from coevo_tui.assist.events import AssistSummary
from coevo_tui.domain.errors import StorageError
from coevo_tui.llm.client import ModelCall

if TYPE_CHECKING:
    from coevo_tui.llm.client import ModelClient
    from coevo_tui.llm.config import ModelChoice
    from coevo_tui.llm.structured import JsonItemsDone, StructuredResult
    from coevo_tui.session import Session
    from coevo_tui.store import Store

T = TypeVar("T")

# Sampling per task: generating wants variety, judging and extracting want the same
# answer every time. `drop_params` lets litellm leave out what a model does not take
# (some reasoning models refuse a temperature) instead of failing the call.
TEMPERATURE = {"rules": 0.0, "candidates": 0.9, "similar": 0.8, "rationale": 0.3,
               "revision": 0.2, "judge": 0.0, "assign": 0.0}


class Assistant:
    """The assistant model of a `Session` (``session.assistant_choice()``, or `choice`)."""

    def __init__(self, session: Session, choice: ModelChoice | None = None) -> None:
        self.session = session
        self.choice = choice or session.assistant_choice()

    @property
    def store(self) -> Store:
        return self.session.store

    @property
    def client(self) -> ModelClient:
        return self.session.client

    @property
    def model(self) -> str:
        return self.choice.model

    @property
    def small(self) -> bool:
        """The offline model: a small context and slow generation, so prompts show fewer
        examples."""
        return self.choice.is_local_demo

    @property
    def width(self) -> int:
        """Calls at once: the client's bound, one for the offline model (it generates one
        answer at a time in-process; more would only queue while their timeouts run)."""
        return 1 if self.small else self.client.concurrency

    async def ready(self) -> None:
        """Raise MissingApiKey (one line naming the variable) before anything is done."""
        await self.client.check_ready(self.choice)

    def call(self, task: str, messages: Sequence[Mapping[str, str]], *, max_tokens: int,
             temperature: float | None = None) -> ModelCall:
        """The call of `task` with `messages` on the assistant model."""
        params: dict[str, Any] = {
            "temperature": TEMPERATURE.get(task, 0.2) if temperature is None else temperature,
            "max_tokens": max_tokens,
        }
        if not (self.choice.is_local_demo or self.choice.is_fake):
            params["drop_params"] = True
        return ModelCall(self.choice.model, [dict(m) for m in messages], params,
                         self.choice.api_base)

    def summary(self, task: str, subject: str = "", total: int | None = None
                ) -> AssistSummary:
        return AssistSummary(task=task, model=self.choice.model, subject=subject, total=total)

    @staticmethod
    def count(summary: AssistSummary, result: StructuredResult) -> None:
        """Add a structured call's usage and problems to `summary`."""
        summary.add_call(result.tokens_in, result.tokens_out, result.cost)
        summary.problems.extend(result.problems)

    @staticmethod
    def count_stream_end(summary: AssistSummary, done: JsonItemsDone) -> None:
        """Count a streamed answer's end into `summary`: its usage, its problems (items
        already reported are not repeated), or its error."""
        result = done.result
        summary.add_call(result.tokens_in, result.tokens_out, result.cost)
        summary.problems.extend(p for p in result.problems if p not in summary.problems)
        if not result.ok:
            summary.errors += 1
            summary.error = result.error

    @contextlib.asynccontextmanager
    async def recorded(self, summary: AssistSummary, entity_id: int | None
                       ) -> AsyncIterator[None]:
        """Record the task's event when the block ends; as halted if it ended by a stop
        (a closed iterator, a cancelled task) or a failure, which then propagates."""
        try:
            yield
        except BaseException:
            summary.halted = True
            with contextlib.suppress(Exception):
                await self.record(summary, entity_id)
            raise
        await self.record(summary, entity_id)

    async def record(self, summary: AssistSummary, entity_id: int | None) -> None:
        """The task's event-log entry (kind "assist", entity the task). Written even when
        the task was stopped (shielded from the cancellation). A project open read-only
        (looked at, not changed) gets no entry; a refused write elsewhere propagates."""
        summary.finish()
        if self.store.read_only:
            return
        write = asyncio.ensure_future(self.store.events.record(
            "assist", summary.task, entity_id, summary.payload()))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            # Stopped while writing: let the write finish, then stop.
            with contextlib.suppress(StorageError, asyncio.CancelledError):
                await write
            raise


def quoted(text: str, limit: int) -> str:
    """`text` on one line within `limit` characters, for a prompt's list of examples
    (the model sees the gist; the JSON string escapes keep quotes unambiguous)."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[:limit - 1].rstrip() + "…"
    return line


def one_line(text: str, limit: int = 240) -> str:
    """The first non-blank line of a model's free text, within `limit` characters."""
    for line in text.splitlines():
        if line.strip():
            return quoted(line.strip(), limit)
    return ""


async def text_while(work: Callable[[Callable[[str], object]], Awaitable[T]], found: list[T]
                     ) -> AsyncIterator[str]:
    """Run `work(on_text)` and yield each piece of text it hands `on_text` as it comes
    (a task's event stream showing a slow model write), then put its result in `found`.
    Closing the stream cancels the work. Use with `contextlib.aclosing`."""
    pieces: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.ensure_future(work(pieces.put_nowait))
    try:
        while not task.done():
            piece = asyncio.ensure_future(pieces.get())
            await asyncio.wait({task, piece}, return_when=asyncio.FIRST_COMPLETED)
            if piece.done():
                yield piece.result()
            else:
                piece.cancel()
        while not pieces.empty():
            yield pieces.get_nowait()
        found.append(task.result())
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
