"""The offline models, in-process, as litellm provider ``coevo-local`` (llama.cpp through
xllamacpp's prebuilt wheels: nothing is compiled at install).

``coevo-local/qwen2.5-coder-1.5b`` and ``coevo-local/smollm2`` (llm/local_models.py says
where their files come from). A model is loaded once per process, on its first call, and
generates in a worker thread, one answer at a time; the engine applies the model's own chat
template. Every answer is generated as a stream internally, so a caller that goes away
(a cancelled task, a closed stream) stops the generation at the next token, non-streaming
calls included. At exit the models are freed while the interpreter is whole, after any
generation still running has been told to stop, so nothing is printed.

Structured output: a call's ``response_format`` (litellm's standard shapes,
``{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": true}}``
or ``{"type": "json_object"}``) constrains decoding by that schema (llama.cpp's
LLGuidance sampler), streaming or not. Any other shape is refused with one clear error.

xllamacpp always starts llama.cpp's HTTP server next to the Python API. It is bound to a
Unix socket in a private temporary folder and needs a random key, so that no other user
of the machine, and no web page in a browser, can reach the model through it.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from coevo_tui.domain.errors import UserError
from coevo_tui.llm.config import LOCAL_PROVIDER
from coevo_tui.llm.local_models import (
    INSTALL_HINT,
    LocalModel,
    ModelUnavailable,
    check_cpu,
    model_file,
    model_for,
    runtime_installed,
)

__all__ = ["LOCAL_PROVIDER", "close_models", "engine_request", "generations_running",
           "make_handler"]

_SAMPLING = ("temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty")


class RequestRefused(ValueError):
    """A call the offline provider cannot serve as asked (e.g. an unknown response_format);
    it becomes litellm's BadRequestError, which coevo does not retry."""


@dataclass
class _Loaded:
    """One loaded model: the engine, its generation lock, the socket folder to remove."""

    model: LocalModel
    server: Any
    socket_dir: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)


_load_lock = threading.Lock()
_loaded: dict[str, _Loaded] = {}
_closing = threading.Event()  # set at exit: every generation stops at its next token
_running_lock = threading.Lock()
_running = 0
last_generation_tokens = 0  # chunks of text the last generation produced (for tests)


def generations_running() -> int:
    """How many generations are inside the engine right now (0 when all have stopped)."""
    return _running


# ---------------------------------------------------------------------- loading
def _load(model: LocalModel) -> _Loaded:
    """The loaded engine for `model` (loads it on first use; ModelUnavailable if not)."""
    with _load_lock:
        loaded = _loaded.get(model.key)
        if loaded is not None:
            return loaded
        check_cpu()  # before the engine's library is even imported: no AVX2, no crash
        if not runtime_installed():
            raise ModelUnavailable(f"the offline models need xllamacpp: {INSTALL_HINT}")
        path = model_file(model)
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = model.context_tokens
        params.n_parallel = 1
        params.n_predict = model.max_tokens
        params.verbosity = 0  # llama.cpp logs every load and request on stderr otherwise
        params.api_keys = [secrets.token_hex(16)]
        socket_dir = tempfile.mkdtemp(prefix="coevo-model-")
        socket = os.path.join(socket_dir, "engine.sock")
        if len(socket) < 100:  # AF_UNIX paths are limited to 108 bytes
            params.hostnames = [socket]
        else:
            params.port = 0  # any free loopback port; the key still guards it
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - one line, whatever the engine says
            shutil.rmtree(socket_dir, ignore_errors=True)
            raise ModelUnavailable(f"the offline model {model.model_string} could not be"
                                   f" loaded from {path} ({exc})") from None
        # One token through the engine's task queue: its loop must have started before the
        # engine may be freed (a stop request sent earlier is lost, and freeing then hangs
        # the process at exit).
        server.handle_completions({"prompt": " ", "max_tokens": 1, "temperature": 0})
        if not _loaded:
            atexit.register(close_models)
        loaded = _Loaded(model, server, socket_dir)
        _loaded[model.key] = loaded
        return loaded


def close_models(wait: float = 10.0) -> None:
    """Stop every generation and free every loaded model (registered with atexit).

    Generations are asked to stop and waited for (up to `wait` seconds each) before their
    engine is freed: freeing it under a running generation would crash the process."""
    _closing.set()
    with _load_lock:
        items = list(_loaded.values())
        _loaded.clear()
    for loaded in items:
        got = loaded.lock.acquire(timeout=wait)
        server, loaded.server = loaded.server, None
        if got:
            del server  # the engine's destructor stops its loop and frees the model
            loaded.lock.release()
        if loaded.socket_dir:
            shutil.rmtree(loaded.socket_dir, ignore_errors=True)
    _closing.clear()


# ---------------------------------------------------------------------- requests
def _response_format(value: Any) -> dict[str, Any] | None:
    """The engine's form of a litellm response_format, or None for plain text."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return {"type": "json_schema", "json_schema": {"schema": schema}}
    raise RequestRefused(
        "the offline models take response_format {\"type\": \"json_schema\","
        " \"json_schema\": {\"name\": ..., \"schema\": {...}}} or {\"type\": \"json_object\"};"
        f" this call gave {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def engine_request(model: LocalModel, messages: list[dict[str, Any]],
                   optional_params: dict[str, Any]) -> dict[str, Any]:
    """The engine's chat request for a litellm call (always streamed internally)."""
    cap = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    request: dict[str, Any] = {
        "messages": messages,
        "max_tokens": min(int(cap or model.max_tokens), model.context_tokens),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for name in _SAMPLING:
        if optional_params.get(name) is not None:
            request[name] = optional_params[name]
    response_format = _response_format(optional_params.get("response_format"))
    if response_format is not None:
        request["response_format"] = response_format
    return request


def _engine_error(body: dict[str, Any]) -> Exception:
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    message = str(error.get("message") or error)
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 500:
        return RequestRefused(f"the offline model refused the request: {message}")
    return RuntimeError(f"the offline model failed: {message}")


def _generate(loaded: _Loaded, request: dict[str, Any],
              on_chunk: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
    """Run one generation in the calling (worker) thread, handing each chunk to
    `on_chunk`; returns at the end of the answer or at the first token after `stop` (or
    exit) is set. Raises RequestRefused or RuntimeError for the engine's errors."""
    global _running, last_generation_tokens
    while not loaded.lock.acquire(timeout=0.05):  # one generation at a time per model
        if stop.is_set() or _closing.is_set():
            return
    errors: list[dict[str, Any]] = []
    tokens = 0

    def callback(chunk: dict[str, Any]) -> bool:
        nonlocal tokens
        if "choices" not in chunk and ("error" in chunk or "code" in chunk):
            errors.append(chunk)
            return True
        if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
            tokens += 1
        try:
            on_chunk(chunk)
        except Exception:  # noqa: BLE001 - the receiver is gone (its loop closed)
            return True
        return stop.is_set() or _closing.is_set()  # True makes the engine stop

    with _running_lock:
        _running += 1
    try:
        if stop.is_set() or _closing.is_set() or loaded.server is None:
            return
        try:
            loaded.server.handle_chat_completions(request, callback)
        except ValueError as exc:  # the engine rejected a parameter before generating
            raise RequestRefused(f"the offline model refused the request: {exc}") from None
        if errors:
            raise _engine_error(errors[0])
    finally:
        last_generation_tokens = tokens
        with _running_lock:
            _running -= 1
        loaded.lock.release()


async def _chunks(model_key: str, messages: list[dict[str, Any]],
                  optional_params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The engine's chunks for one call, generated in a worker thread; closing this
    iterator (or cancelling its consumer) stops the generation at the next token."""
    model = model_for(model_key)
    request = engine_request(model, messages, optional_params)
    loaded = await asyncio.to_thread(_load, model)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, item))

    def produce() -> None:
        try:
            _generate(loaded, request, lambda chunk: put("chunk", chunk), stop)
            put("end", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the event loop
            try:
                put("error", exc)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting

    threading.Thread(target=produce, name=f"coevo-local-{model.key}", daemon=True).start()
    try:
        while True:
            kind, item = await queue.get()
            if kind == "error":
                raise item
            if kind == "end":
                return
            yield item
    finally:
        stop.set()


def _usage(chunk: dict[str, Any]) -> dict[str, int] | None:
    usage = chunk.get("usage")
    if not isinstance(usage, dict):
        return None
    return {name: int(usage.get(name) or 0)
            for name in ("prompt_tokens", "completion_tokens", "total_tokens")}


def make_handler(litellm: Any) -> Any:
    """The litellm CustomLLM instance serving ``coevo-local/...`` (needs litellm loaded)."""

    def refusal(exc: Exception, model: str) -> Exception:
        # A refusal is not retried; litellm turns any other exception into a connection
        # error, which coevo would retry.
        return litellm.BadRequestError(str(exc), model=model, llm_provider=LOCAL_PROVIDER)

    class LocalHandler(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
            model = kwargs["model"]
            parts: list[str] = []
            finish = "stop"
            usage: dict[str, int] | None = None
            try:
                # aclosing: a cancelled call stops the generation now, not at garbage
                # collection.
                async with aclosing(_chunks(model, [dict(m) for m in kwargs["messages"]],
                                            kwargs.get("optional_params") or {})) as chunks:
                    async for chunk in chunks:
                        usage = _usage(chunk) or usage
                        for choice in chunk.get("choices") or ():
                            parts.append((choice.get("delta") or {}).get("content") or "")
                            finish = choice.get("finish_reason") or finish
            except (RequestRefused, UserError) as exc:
                raise refusal(exc, model) from None
            usage = usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            return litellm.ModelResponse(
                model=model,
                created=int(time.time()),
                choices=[{"index": 0, "finish_reason": finish,
                          "message": {"role": "assistant", "content": "".join(parts)}}],
                usage=usage,
            )

        async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
            model = kwargs["model"]
            finish = "stop"
            usage: dict[str, int] | None = None
            chunks = _chunks(model, [dict(m) for m in kwargs["messages"]],
                             kwargs.get("optional_params") or {})
            try:
                async for chunk in chunks:
                    usage = _usage(chunk) or usage
                    for choice in chunk.get("choices") or ():
                        finish = choice.get("finish_reason") or finish
                        text = (choice.get("delta") or {}).get("content") or ""
                        if text:
                            yield {"text": text, "is_finished": False, "finish_reason": "",
                                   "index": 0, "tool_use": None, "usage": None}
            except (RequestRefused, UserError) as exc:
                raise refusal(exc, model) from None
            finally:
                await chunks.aclose()  # a closed stream stops the generation
            yield {"text": "", "is_finished": True, "finish_reason": finish, "index": 0,
                   "tool_use": None,
                   "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0,
                                      "total_tokens": 0}}

    return LocalHandler()
