"""Model calls through ``litellm.acompletion``: bounded concurrency, timeouts, retries.

Two paths:

* `ModelClient.stream(call)` for what the user is watching: an async iterator of
  `TextDelta` (in order), `StreamRetry` (the stream failed and starts again: clear the
  text shown) and finally one `StreamDone` carrying the `CallResult`.
* `ModelClient.complete(call)` for batch work nobody watches: one non-streaming request,
  the cheapest path per call.

Both retry rate limits (429, honouring Retry-After), server errors (5xx), timeouts, dropped
connections and streams, and malformed answers or chunks (a status-200 body or chunk that
is cut, not UTF-8, not JSON or not a completion), with exponential backoff and jitter, up
to `RetryPolicy.max_attempts`. After that, or at once for errors that a retry cannot fix
(bad request, authentication, unknown model, a request the HTTP client refuses to send),
the result has status ``error`` and a one-line message, with secrets redacted; nothing is
raised. Cancelling the caller's task stops a stream promptly: the HTTP response is
closed, so the server sees the connection end.

The timeout is per attempt: for `complete` it bounds the whole request; for `stream` it
bounds the wait for the first chunk and for each next one (a long answer that keeps
streaming is not cut off).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import inspect
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import OutputStatus, PromptVersion
from coevo_tui.llm.config import (
    FAKE_PROVIDER,
    LOCAL_PROVIDER,
    ModelChoice,
    check_api_base,
    redact_urls,
)
from coevo_tui.llm.litellm_import import load_litellm_async

# Keys a project's parameters may not override: they are the call itself.
RESERVED_PARAMS = frozenset({
    "model", "messages", "stream", "stream_options", "api_base", "base_url", "api_key",
    "timeout", "num_retries", "max_retries", "custom_llm_provider",
})
# OpenAI-compatible servers behind --api-base usually need no key, but litellm's OpenAI
# client refuses to send a request without one. This placeholder is not a secret.
_NO_KEY = "no-key-needed"


class MissingApiKey(UserError):
    """The provider's API key is not in the environment (names the variable)."""


class DroppedStream(Exception):
    """The stream ended without the provider saying it had finished (connection cut)."""


class MalformedAnswer(Exception):
    """The provider answered with something that is not a chat completion."""


def build_messages(version: PromptVersion, case_input: str) -> list[dict[str, str]]:
    """The chat messages for one case: the version's instructions as the system message
    (omitted when empty) and its user template with ``{input}`` replaced (or the raw input
    when there is no template)."""
    messages: list[dict[str, str]] = []
    if version.instructions.strip():
        messages.append({"role": "system", "content": version.instructions})
    template = version.user_template
    user = template.replace("{input}", case_input) if template else case_input
    messages.append({"role": "user", "content": user})
    return messages


@dataclass(frozen=True)
class ModelCall:
    """One call: model, full messages, parameters (temperature, max_tokens, ...), api_base.

    `params` go to litellm as they are, apart from `RESERVED_PARAMS`; a structured call
    (`structured.py`) puts its ``response_format`` here, so the format is part of the
    cache key like any other parameter."""

    model: str
    messages: Sequence[Mapping[str, str]]
    params: Mapping[str, Any] = field(default_factory=dict)
    api_base: str | None = None

    def cache_key(self) -> str:
        """Identical calls (model, parameters, full messages, server) share this key."""
        payload = json.dumps(
            {"model": self.model, "params": dict(self.params), "api_base": self.api_base,
             "messages": [dict(m) for m in self.messages]},
            sort_keys=True, ensure_ascii=False, separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class CallResult:
    """The outcome of one call after retries: ok with text, or error with a message."""

    text: str
    status: OutputStatus
    error: str | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.status == OutputStatus.OK


@dataclass(frozen=True)
class TextDelta:
    """A piece of streamed text, in order."""

    text: str


@dataclass(frozen=True)
class StreamRetry:
    """The stream failed (`reason`) and is being retried after `delay` seconds: text shown
    so far is void; the deltas start again from the beginning."""

    attempt: int
    reason: str
    delay: float


@dataclass(frozen=True)
class StreamDone:
    """The stream's final result (ok or error)."""

    result: CallResult


StreamEvent = TextDelta | StreamRetry | StreamDone


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Delays grow as base * 2**(attempt-1), capped at
    `max_delay`, with "equal jitter" (a random half); a Retry-After header is honoured
    (capped at `max_retry_after`) instead.

    Why 6 attempts: faults that a retry can fix come at random, so with a share `p` of
    requests failing a case still fails after n attempts with probability p**n. At p = 0.3
    (a provider throttling hard: 10% 429s, 10% 5xx, 10% cut or malformed answers), 4
    attempts leave 0.81% of cases as errors, 1.6 in a run of 200 and an 8% chance of more
    than 3; 6 attempts leave 0.07%, 0.15 in 200 and a chance of more than 3 of about 2 in
    100,000. The price is paid only while faults last and only by calls that keep failing:
    at most five waits of 0.5-1, 1-2, 2-4, 4-8 and 8-16 s (about 23 s on average), and
    errors a retry cannot fix still end at the first attempt.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after) + rng.uniform(
                0, self.base_delay / 10)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return rng.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class _Failure:
    retryable: bool
    reason: str
    retry_after: float | None = None


class _Attempt:
    """Usage and cost gathered during one attempt."""

    __slots__ = ("tokens_in", "tokens_out", "cost")

    def __init__(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost: float | None = None


class _Slots:
    """At most `size` calls at once, shared by every caller of a client; a waiting urgent
    call (what the user is watching: a pane's stream) gets the next free slot before any
    waiting batch call (a run), so a run of 1,000 cases never keeps a pane waiting for
    more than one call to finish."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._batch: collections.deque[asyncio.Future[None]] = collections.deque()

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not self._urgent and not self._batch:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._batch
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot just as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def _release(self) -> None:
        for queue in (self._urgent, self._batch):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to the waiter
                    return
        self._free += 1


class ModelClient:
    """Calls models with at most `concurrency` requests in flight (shared by every caller
    of this client), a per-attempt `timeout` in seconds, and retries per `retry`.
    `sleep` waits between attempts (tests pass a recorder instead of real waiting)."""

    def __init__(self, *, concurrency: int = 8, timeout: float = 120.0,
                 retry: RetryPolicy | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if concurrency < 1:
            raise UserError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._slots = _Slots(concurrency)
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._ready: set[tuple[str, str | None]] = set()

    # ------------------------------------------------------------------ set-up
    async def check_ready(self, choice: ModelChoice) -> None:
        """Raise MissingApiKey (one clear line) if the provider's key is not set.

        Loads litellm (seconds, the first time). Servers behind --api-base and coevo's own
        providers need no key.
        """
        key = (choice.model, choice.api_base)
        if key in self._ready:
            return
        check_api_base(choice.api_base, "the api_base")  # never send (nor show) URL secrets
        if choice.api_base is None and choice.provider not in (LOCAL_PROVIDER, FAKE_PROVIDER):
            litellm = await load_litellm_async()
            try:
                missing = litellm.validate_environment(model=choice.model)["missing_keys"]
            except Exception:  # noqa: BLE001 - an unknown provider fails later, on the call
                missing = []
            missing = [name for name in missing if not os.environ.get(name)]
            if missing:
                names = " and ".join(missing)
                verb, it = ("is", "it") if len(missing) == 1 else ("are", "them")
                raise MissingApiKey(
                    f"{names} {verb} not set; export {it} or choose another model with --model"
                )
        else:
            await load_litellm_async()
        self._ready.add(key)

    def _kwargs(self, call: ModelCall) -> dict[str, Any]:
        kwargs: dict[str, Any] = {k: v for k, v in call.params.items()
                                  if k not in RESERVED_PARAMS}
        kwargs.update(
            model=call.model,
            # litellm may add keys to message dicts; the caller's stay untouched.
            messages=[dict(m) for m in call.messages],
            timeout=self.timeout,
            num_retries=0,
            max_retries=0,
        )
        if call.api_base:
            kwargs["api_base"] = call.api_base
            if call.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = _NO_KEY
        return kwargs

    # ------------------------------------------------------------------ batch path
    async def complete(self, call: ModelCall, *, urgent: bool = False) -> CallResult:
        """One non-streaming call with retries. Never raises for model errors. `urgent`:
        someone is waiting for this one answer; it takes the next free slot first."""
        litellm = await load_litellm_async()
        kwargs = self._kwargs(call)
        attempt = 0
        while True:
            attempt += 1
            info = _Attempt()
            try:
                async with self._slots.slot(urgent):
                    started = time.perf_counter()
                    async with asyncio.timeout(self.timeout):
                        response = await litellm.acompletion(**kwargs)
                    latency_ms = (time.perf_counter() - started) * 1000
                text = _response_text(response)
                _read_usage(response, info)
                info.cost = _response_cost(litellm, response, call.model, info)
                return CallResult(text, OutputStatus.OK, None, latency_ms, info.tokens_in,
                                  info.tokens_out, info.cost, attempt)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - every model failure becomes a result
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failure = _classify(exc, self.timeout)
                if not failure.retryable or attempt >= self.retry.max_attempts:
                    return _error_result(failure, attempt)
                await self._sleep(self.retry.delay(attempt, failure.retry_after, self._rng))

    # ------------------------------------------------------------------ streaming path
    async def stream(self, call: ModelCall, *, urgent: bool = False
                     ) -> AsyncIterator[StreamEvent]:
        """Stream one call: `TextDelta`s in order, `StreamRetry` when starting over, then
        one `StreamDone`. Use with `contextlib.aclosing` (or let the task be cancelled):
        closing or cancelling stops the stream at once and closes the connection."""
        litellm = await load_litellm_async()
        kwargs = self._kwargs(call)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        attempt = 0
        while True:
            attempt += 1
            info = _Attempt()
            parts: list[str] = []
            response: Any = None
            try:
                async with self._slots.slot(urgent):
                    started = time.perf_counter()
                    async with asyncio.timeout(self.timeout):
                        response = await litellm.acompletion(**kwargs)
                    _check_raw_chunks(response)
                    chunks = response.__aiter__()
                    while True:
                        try:
                            async with asyncio.timeout(self.timeout):
                                chunk = await chunks.__anext__()
                        except StopAsyncIteration:
                            break
                        text = _chunk_text(chunk, info)
                        if text:
                            parts.append(text)
                            yield TextDelta(text)
                    if getattr(response, "received_finish_reason", "stop") is None:
                        raise DroppedStream("the stream ended before the answer was complete")
                    latency_ms = (time.perf_counter() - started) * 1000
                text = "".join(parts)
                info.cost = _stream_cost(litellm, call.model, info)
                await _close_stream(response)
                yield StreamDone(CallResult(text, OutputStatus.OK, None, latency_ms,
                                            info.tokens_in, info.tokens_out, info.cost, attempt))
                return
            except (asyncio.CancelledError, GeneratorExit):
                await _close_stream(response)
                raise
            except BaseException as exc:  # noqa: BLE001 - every model failure becomes a result
                await _close_stream(response)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failure = _classify(exc, self.timeout)
                if not failure.retryable or attempt >= self.retry.max_attempts:
                    yield StreamDone(_error_result(failure, attempt))
                    return
                delay = self.retry.delay(attempt, failure.retry_after, self._rng)
                yield StreamRetry(attempt, failure.reason, delay)
                await self._sleep(delay)


# ---------------------------------------------------------------------- responses
def _response_text(response: Any) -> str:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        raise MalformedAnswer("the answer has no message") from None
    return message.content or ""


def _read_usage(obj: Any, info: _Attempt) -> None:
    usage = getattr(obj, "usage", None)
    if usage is None:
        return
    tokens_in = getattr(usage, "prompt_tokens", None)
    tokens_out = getattr(usage, "completion_tokens", None)
    if tokens_in is not None:
        info.tokens_in = int(tokens_in)
    if tokens_out is not None:
        info.tokens_out = int(tokens_out)


def _chunk_text(chunk: Any, info: _Attempt) -> str:
    _read_usage(chunk, info)
    choices = getattr(chunk, "choices", None)
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return (getattr(delta, "content", None) or "") if delta is not None else ""


def _response_cost(litellm: Any, response: Any, model: str, info: _Attempt) -> float | None:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is not None:
        return float(cost)
    return _stream_cost(litellm, model, info)


def _stream_cost(litellm: Any, model: str, info: _Attempt) -> float | None:
    """The price from litellm's bundled price list, or None where it does not know it."""
    if info.tokens_in is None or info.tokens_out is None:
        return None
    if model.startswith((LOCAL_PROVIDER + "/", FAKE_PROVIDER + "/")):
        return 0.0
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=info.tokens_in, completion_tokens=info.tokens_out)
    except Exception:  # noqa: BLE001 - unknown price
        return None
    return float(prompt_cost + completion_cost)


class _CheckedChunks:
    """The OpenAI SDK's chunk stream, refusing an event that is not a completion chunk.

    The SDK builds a chunk from any JSON object without validating it, and litellm turns
    one without ``choices`` into an empty delta, so such an event would silently drop a
    piece of the answer; raising MalformedAnswer makes the stream start again instead.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._chunks = inner.__aiter__()
        self.response = getattr(inner, "response", None)  # for _close_stream

    def __aiter__(self) -> _CheckedChunks:
        return self

    async def __anext__(self) -> Any:
        chunk = await self._chunks.__anext__()
        given = getattr(chunk, "model_fields_set", None)
        if given is not None and not given & {"choices", "usage"}:
            raise MalformedAnswer("a stream chunk is not a completion chunk")
        return chunk

    async def aclose(self) -> None:
        closer = getattr(self._inner, "close", None) or getattr(self._inner, "aclose", None)
        if closer is not None:
            result = closer()
            if inspect.isawaitable(result):
                await result


def _check_raw_chunks(response: Any) -> None:
    """Put `_CheckedChunks` between litellm and the OpenAI SDK's stream, if that is what
    `response` reads (other providers' streams are left as they are)."""
    inner = getattr(response, "completion_stream", None)
    if inner is not None and type(inner).__module__.split(".")[0] == "openai":
        response.completion_stream = _CheckedChunks(inner)


async def _close_stream(response: Any) -> None:
    """Close a litellm stream's underlying HTTP response (or provider generator) now."""
    if response is None:
        return
    inner = getattr(response, "completion_stream", None)
    for obj in (inner, getattr(inner, "response", None)):
        if obj is None:
            continue
        closer = getattr(obj, "aclose", None) or getattr(obj, "close", None)
        if closer is None:
            continue
        try:
            result = closer()
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001, S110 - already broken; closing is best effort
            pass


# ---------------------------------------------------------------------- failures
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_TRANSPORT_MODULES = ("aiohttp", "httpx", "httpcore", "h11", "ssl")
# Where the HTTP client checks a request before sending it (a URL, headers, auth).
_REQUEST_BUILDERS = ("aiohttp", "httpx", "httpcore", "yarl")
# Exceptions those clients raise for a request that cannot be sent as given.
_UNSENDABLE = frozenset({"InvalidURL", "InvalidUrlClientError", "NonHttpUrlClientError",
                         "UnsupportedProtocol"})


def _classify(exc: BaseException, timeout: float) -> _Failure:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return _Failure(True, f"no answer within {timeout:g} s")
    if isinstance(exc, DroppedStream):
        return _Failure(True, "the stream was cut off")
    if isinstance(exc, MalformedAnswer):
        return _Failure(True, f"malformed answer ({exc})")
    if isinstance(exc, json.JSONDecodeError):
        return _Failure(True, "malformed answer (not JSON)")
    if isinstance(exc, UnicodeDecodeError):
        return _Failure(True, "malformed answer (not UTF-8)")
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    message = _one_line(exc)
    if name == "MidStreamFallbackError":  # litellm's wrapper for a failure mid-stream
        inner = getattr(exc, "original_exception", None)
        if isinstance(inner, BaseException) and inner is not exc:
            return _classify(inner, timeout)
    unsendable = _unsendable(exc)
    if unsendable is not None:
        # The client refused to build the request (litellm reports it as a 500): the same
        # request would be refused again, so it is not retried.
        return _Failure(False, f"the request could not be sent: {_one_line(unsendable)}")
    malformed = _malformed_reason(message)
    if malformed is not None:
        return _Failure(True, f"malformed answer ({malformed})")
    if isinstance(status, int) and 200 <= status < 300:
        # The server said OK but what it sent could not be read as an answer (litellm
        # raises with the response's own status): a transient fault like a cut stream.
        return _Failure(True, f"malformed answer ({message})")
    if name in ("Timeout", "APITimeoutError"):
        return _Failure(True, f"timed out ({message})")
    if name == "APIConnectionError" or type(exc).__module__.split(".")[0] in _TRANSPORT_MODULES:
        return _Failure(True, f"connection failed ({message})")
    if isinstance(status, int):
        if status == 429:
            return _Failure(True, f"rate limited (HTTP 429): {message}", _retry_after(exc))
        if status in _RETRYABLE_STATUS or status >= 500:
            return _Failure(True, f"server error (HTTP {status}): {message}", _retry_after(exc))
        return _Failure(False, f"HTTP {status}: {message}")
    return _Failure(False, f"{name}: {message}")


def _error_result(failure: _Failure, attempts: int) -> CallResult:
    if failure.retryable:
        times = "attempt" if attempts == 1 else "attempts"
        error = f"{failure.reason} (gave up after {attempts} {times})"
    else:
        error = failure.reason
    return CallResult("", OutputStatus.ERROR, redact_secrets(error), attempts=attempts)


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps (__cause__, __context__, litellm's original_exception)."""
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(chain) < 20:
        item = todo.pop()
        if any(item is seen for seen in chain):
            continue
        chain.append(item)
        for inner in (getattr(item, "original_exception", None), item.__context__,
                      item.__cause__):
            if isinstance(inner, BaseException):
                todo.append(inner)
    return chain


def _unsendable(exc: BaseException) -> BaseException | None:
    """The error by which the HTTP client refused to send the request, if that is what
    `exc` comes from: a plain ValueError or TypeError raised inside aiohttp, httpx or yarl
    (credentials both in the URL and in a header, a port out of range) or their
    invalid-URL errors. Malformed answers raise subclasses (JSONDecodeError,
    UnicodeDecodeError), which are not matched."""
    for item in _causes(exc):
        if type(item).__name__ in _UNSENDABLE and type(item).__module__.split(".")[0] in (
                _REQUEST_BUILDERS):
            return item
        if type(item) in (ValueError, TypeError) and _raised_in(item, _REQUEST_BUILDERS):
            return item
    return None


def _raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(name, str) and name.split(".")[0] in modules


# litellm stacks prefixes like "litellm.APIConnectionError: APIConnectionError: OpenAIException
# - "; the provider's own words come after them.
_LITELLM_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Error:\s*|\w+Exception\s*-\s*)+")
# What litellm and the SDK say when an answer cannot be read, checked in this order.
_MALFORMED = (
    ("not UTF-8", re.compile(r"codec can't decode")),
    ("not JSON", re.compile(r"Expecting (value|property name|',' delimiter)|Unterminated "
                            r"string|Extra data|Invalid control character|JSONDecodeError|"
                            r"Unable to get json response")),
    ("not a chat completion", re.compile(r"Invalid response object|Empty or invalid response")),
)


def _malformed_reason(message: str) -> str | None:
    """Why an answer could not be read ("not JSON", ...), or None if `message` is not that."""
    for reason, pattern in _MALFORMED:
        if pattern.search(message):
            return reason
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    text = text.split(" Original exception:", 1)[0]
    text = _LITELLM_PREFIX.sub("", text, count=1) or text
    return _error_body_message(text)[:300]


def _error_body_message(text: str) -> str:
    """The message inside an OpenAI-style error body ({"error": {"message": ...}}), which
    some litellm handlers pass on verbatim; other text unchanged."""
    if not text.startswith("{"):
        return text
    try:
        body = json.loads(text)
    except ValueError:
        return text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    return text


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) response header, if any."""
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


# Names of environment variables that hold secrets (OPENAI_API_KEY, HF_TOKEN, ...).
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$")


def redact_secrets(text: str) -> str:
    """`text` with the value of every secret-looking environment variable replaced by
    ``[redacted]`` (provider error messages may echo the key that was sent), and the
    credentials of every URL in it (`config.redact_url`)."""
    text = redact_urls(text)
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name.upper()) and value in text:
            text = text.replace(value, "[redacted]")
    return text
