"""A deterministic fake model behind litellm's custom-provider API, for fast UI tests.

Model strings ``coevo-fake/<name>`` go through the real ``litellm.acompletion`` (so the
whole coevo call path, retries and all, is exercised) but never touch the network:

* ``coevo-fake/echo`` answers ``"Reply to: <last user message>"`` (the same answer as the
  fake OpenAI server in tests/fake_model_server.py);
* any other ``coevo-fake/<name>`` answers ``"<name> says: <last user message>"``, so two
  fake models give different answers (for comparing models).

Control it through the module-level `fake_model` (reset it in each test)::

    from coevo_tui.llm.fake_provider import FAKE_MODEL, fake_model

    fake_model.reset()                       # default: no delays, 4 chunks, echo answers
    fake_model.configure(first_token_delay=0.0, chunk_delay=0.01, chunks=8)
    fake_model.responder = lambda messages: "always this"   # messages: list of dicts
    fake_model.fail_next("error", count=2)   # "error" (HTTP 500), "rate_limit" (429 with
                                             # Retry-After 0), "drop" (stream cut mid-way)
    fake_model.hold()                        # streams (and completions) wait before the
    ...                                      # first token until release(): lets a test
    fake_model.release()                     # see the "streaming" state without timing
    fake_model.hold(after_chunks=2)          # streams send 2 chunks, then wait for release()
    fake_model.held                          # how many calls are waiting at the gate now
    fake_model.script('{"a": 1}', ['[1,', ' 2]'])   # the next two answers, in order: a
                                             # string is cut into `chunks` pieces, a list
                                             # is streamed as exactly those chunks

    fake_model.embeddings["some text"] = [1.0, 0.0]   # litellm.aembedding's vector for a
                                             # text (others: a hashed bag of its words)
    fake_model.embedding_requests            # the texts of each embedding request

    fake_model.calls                         # requests made (streaming or not)
    fake_model.requests                      # their messages, in order
    fake_model.response_formats              # the response_format each carried (or None)
    fake_model.streams_started / streams_finished / streams_cancelled   # counters

Make the app or a command use it with ``model="coevo-fake/echo"`` (``--model
coevo-fake/echo``). Cancelling a stream (leaving a screen) increments `streams_cancelled`.
This module does not import litellm; `providers.register_providers` builds the handler
when litellm is first loaded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coevo_tui.llm.config import FAKE_MODEL, FAKE_PROVIDER

__all__ = ["FAKE_MODEL", "FakeModel", "fake_model"]

FAULTS = ("error", "rate_limit", "drop")


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _words(text: str) -> int:
    return max(1, len(text.split()))


@dataclass
class FakeModel:
    """Settings and counters of the fake provider (see the module docstring)."""

    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    chunks: int = 4
    responder: Callable[[list[dict[str, Any]]], str] | None = None
    calls: int = 0
    requests: list[list[dict[str, Any]]] = field(default_factory=list)
    streams_started: int = 0
    streams_finished: int = 0
    streams_cancelled: int = 0
    response_formats: list[Any] = field(default_factory=list)
    embeddings: dict[str, list[float]] = field(default_factory=dict)
    embedding_requests: list[list[str]] = field(default_factory=list)
    held: int = 0
    _faults: list[list[Any]] = field(default_factory=list)
    _scripts: list[str | list[str]] = field(default_factory=list)
    _gate: asyncio.Event | None = None
    _hold_after: int = 0

    def reset(self) -> None:
        """Back to defaults: no delays, 4 chunks, echo answers, no faults, counters at 0
        (calls held by `hold()` are released first)."""
        self.release()
        self.__init__()  # type: ignore[misc]

    def configure(self, *, first_token_delay: float | None = None,
                  chunk_delay: float | None = None, chunks: int | None = None) -> None:
        if first_token_delay is not None:
            self.first_token_delay = first_token_delay
        if chunk_delay is not None:
            self.chunk_delay = chunk_delay
        if chunks is not None:
            self.chunks = max(1, chunks)

    def fail_next(self, kind: str, count: int = 1) -> None:
        """The next `count` requests fail with `kind` ("error", "rate_limit" or "drop")."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        self._faults.append([kind, count])

    def hold(self, after_chunks: int = 0) -> None:
        """Make calls wait until `release()`: streams after sending `after_chunks` chunks
        (0: before the first token), completions before answering."""
        self._gate = asyncio.Event()
        self._hold_after = max(0, after_chunks)

    def script(self, *answers: str | Sequence[str]) -> None:
        """Queue the answers of the next calls, one each, before `responder` and the echo:
        a string is streamed in `chunks` pieces, a sequence of strings as exactly those
        chunks (a completion gets them joined). A call failed by "error" or "rate_limit"
        takes none; one cut by "drop" takes its answer."""
        self._scripts.extend(a if isinstance(a, str) else list(a) for a in answers)

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    # ------------------------------------------------------------------ behaviour
    def answer(self, model: str, messages: list[dict[str, Any]]) -> str:
        if self.responder is not None:
            return self.responder(messages)
        name = model.split("/", 1)[-1]
        user = _last_user(messages)
        return f"Reply to: {user}" if name == "echo" else f"{name} says: {user}"

    def _take_answer(self, model: str, messages: list[dict[str, Any]]) -> list[str] | str:
        """The next scripted answer (chunks or text), else `answer`'s text."""
        if self._scripts:
            return self._scripts.pop(0)
        return self.answer(model, messages)

    def _take_fault(self) -> str | None:
        while self._faults:
            kind, count = self._faults[0]
            if count <= 0:
                self._faults.pop(0)
                continue
            self._faults[0][1] -= 1
            return kind
        return None

    async def _wait_gate(self) -> None:
        gate = self._gate
        if gate is None:
            return
        self.held += 1
        try:
            await gate.wait()
        finally:
            self.held -= 1

    async def _wait_first_token(self, streaming: bool = False) -> None:
        if not streaming or self._hold_after == 0:
            await self._wait_gate()
        if self.first_token_delay > 0:
            await asyncio.sleep(self.first_token_delay)

    def embedding(self, text: str) -> list[float]:
        """The vector for `text`: the one set in `embeddings`, else its words hashed into
        16 dimensions (equal word sets give equal vectors)."""
        if text in self.embeddings:
            return list(self.embeddings[text])
        vector = [0.0] * 16
        for word in text.lower().split():
            vector[sum(word.encode()) % 16] += 1.0
        return vector

    def _pieces(self, text: str) -> list[str]:
        size = len(text) / self.chunks
        return [text[round(i * size): round((i + 1) * size)] for i in range(self.chunks)]


fake_model = FakeModel()


def make_handler(litellm: Any) -> Any:
    """The litellm CustomLLM instance serving ``coevo-fake/...`` (needs litellm loaded)."""

    def raise_fault(kind: str, model: str) -> None:
        if kind == "rate_limit":
            raise litellm.RateLimitError(message="fake rate limit", llm_provider=FAKE_PROVIDER,
                                         model=model)
        raise litellm.InternalServerError(message="fake server error",
                                          llm_provider=FAKE_PROVIDER, model=model)

    def begin_call(kwargs: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str | None]:
        """Count and record the call; raise a fault that fails it before any answer.
        Returns the model, the messages and the fault still to play ("drop" or None)."""
        model, messages = kwargs["model"], kwargs["messages"]
        fake_model.calls += 1
        fake_model.requests.append([dict(m) for m in messages])
        fake_model.response_formats.append(
            (kwargs.get("optional_params") or {}).get("response_format"))
        fault = fake_model._take_fault()
        if fault in ("rate_limit", "error"):
            raise_fault(fault, model)
        return model, messages, fault

    class FakeHandler(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
            model, messages, fault = begin_call(kwargs)
            await fake_model._wait_first_token()
            await asyncio.sleep(fake_model.chunk_delay * (fake_model.chunks - 1))
            answer = fake_model._take_answer(model, messages)  # a dropped call uses one up
            if fault == "drop":
                raise_fault("error", model)
            text = answer if isinstance(answer, str) else "".join(answer)
            tokens_in = sum(_words(str(m.get("content", ""))) for m in messages)
            return litellm.ModelResponse(
                model=model,
                created=int(time.time()),
                choices=[{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": text}}],
                usage={"prompt_tokens": tokens_in, "completion_tokens": _words(text),
                       "total_tokens": tokens_in + _words(text)},
            )

        async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
            model, messages, fault = begin_call(kwargs)
            fake_model.streams_started += 1
            answer = fake_model._take_answer(model, messages)
            text = answer if isinstance(answer, str) else "".join(answer)
            pieces = fake_model._pieces(text) if isinstance(answer, str) else answer
            tokens_in = sum(_words(str(m.get("content", ""))) for m in messages)
            finished = False
            try:
                await fake_model._wait_first_token(streaming=True)
                for index, piece in enumerate(pieces):
                    if index and fake_model.chunk_delay > 0:
                        await asyncio.sleep(fake_model.chunk_delay)
                    if index and index == fake_model._hold_after:
                        await fake_model._wait_gate()
                    if fault == "drop" and index == len(pieces) // 2:
                        finished = True  # ends without is_finished: a cut-off stream
                        return
                    last = index == len(pieces) - 1
                    yield {
                        "text": piece,
                        "is_finished": last,
                        "finish_reason": "stop" if last else "",
                        "index": 0,
                        "tool_use": None,
                        "usage": {"prompt_tokens": tokens_in, "completion_tokens": _words(text),
                                  "total_tokens": tokens_in + _words(text)} if last else None,
                    }
                finished = True
                fake_model.streams_finished += 1
            finally:
                if not finished:
                    fake_model.streams_cancelled += 1

        async def aembedding(self, model: str, input: list, model_response: Any,
                             *args: Any, **kwargs: Any) -> Any:
            texts = [str(t) for t in input]
            fake_model.embedding_requests.append(texts)
            model_response.data = [{"object": "embedding", "index": i,
                                    "embedding": fake_model.embedding(t)}
                                   for i, t in enumerate(texts)]
            model_response.model = model
            return model_response

    return FakeHandler()
