"""Importing litellm: lazily, once, configured so it never phones home nor logs prompts.

`import litellm` costs seconds, so nothing imports it at module level: the first model call
does, through `load_litellm()`. Commands that will certainly call a model start the import
in a background thread at their very beginning (`preload_litellm()`), so that it overlaps
opening the project and reading the cases.

Loading litellm also silences the warnings its dependencies raise while answers are read
(`silence_library_warnings`), so that nothing but coevo's own lines reaches the terminal.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import warnings
from types import ModuleType

_lock = threading.Lock()
_module: ModuleType | None = None
_preload: threading.Thread | None = None
_preload_error: BaseException | None = None

# litellm's loggers; they would print request bodies (prompts) at debug level.
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router", "litellm")


# Warnings that are noise to coevo's users, as warnings.filterwarnings arguments:
# - pydantic's serializer warnings: litellm dumps its response objects, and an answer whose
#   fields differ from OpenAI's types (a float "created", a list where an object is
#   expected) makes pydantic print four lines per call, interleaved with the progress bar;
# - anything litellm's own modules warn about (deprecations, unawaited logging coroutines
#   dropped at exit), which is about litellm, not about the user's run.
_QUIET_WARNINGS: tuple[dict[str, object], ...] = (
    {"message": r"Pydantic serializer warnings", "category": Warning},
    {"message": r"coroutine '(Logging|LiteLLM\w*)\.\w+' was never awaited",
     "category": RuntimeWarning},
    {"module": r"litellm(\.|$)"},
)
_quiet_filters: list[tuple[object, ...]] = []


def silence_library_warnings() -> None:
    """Put the filters for `_QUIET_WARNINGS` at the head of the process-wide filter list,
    if they are not there already (cheap enough to call before every model call).

    The filters are process-wide, so they hold for warnings raised later, at call time, and
    in any thread (the import's, the event loop's, litellm's workers). Being first, they win
    over filters added since (``-W error`` included); a filter list replaced since (a
    ``catch_warnings`` block in another thread that began before this ran and ended after)
    gets them back on the next call.
    """
    if _quiet_filters and warnings.filters[:len(_quiet_filters)] == _quiet_filters:
        return
    for spec in reversed(_QUIET_WARNINGS):
        warnings.filterwarnings("ignore", **spec)  # type: ignore[arg-type]
    _quiet_filters[:] = warnings.filters[:len(_QUIET_WARNINGS)]


def _configure(litellm: ModuleType) -> None:
    litellm.telemetry = False
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout
    litellm.set_verbose = False
    litellm.turn_off_message_logging = True
    litellm.redact_messages_in_exceptions = True
    litellm.log_raw_request_response = False
    litellm.drop_params = True  # a parameter one provider lacks is dropped, not an error
    # No callbacks: they are where litellm would ship prompts to logging services, and each
    # costs CPU per call. coevo retries itself (llm/client.py), so litellm must not.
    for name in ("callbacks", "success_callback", "failure_callback", "input_callback",
                 "service_callback", "_async_success_callback", "_async_failure_callback",
                 "_async_input_callback"):
        if isinstance(getattr(litellm, name, None), list):
            getattr(litellm, name).clear()
    litellm.num_retries = 0
    for name in _LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = False
        logger.disabled = True
    from coevo_tui.llm.providers import register_providers

    register_providers(litellm)


def _import() -> ModuleType:
    global _module
    with _lock:
        if _module is None:
            # All must be set before the import: the first stops the download of the price
            # list (litellm then uses the copy it ships), the second its debug log handler,
            # the third its loading of a .env file found near litellm's own files (keys
            # come from the environment only).
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            os.environ["LITELLM_LOG"] = "ERROR"
            os.environ["LITELLM_MODE"] = "PRODUCTION"
            import litellm

            silence_library_warnings()
            _configure(litellm)
            # The import leaves about a million long-lived objects that every full garbage
            # collection would walk again; freezing them cuts the collector's share of each
            # model call (about 0.4 ms of CPU per call, measured).
            gc.freeze()
            _module = litellm
        return _module


def load_litellm() -> ModuleType:
    """The configured litellm module (imports it on first use; waits for a preload)."""
    if _module is not None:
        silence_library_warnings()
        return _module
    thread = _preload
    if thread is not None and thread is not threading.current_thread():
        thread.join()
        if _module is not None:
            return _module
    return _import()


async def load_litellm_async() -> ModuleType:
    """`load_litellm` for the event loop: the import (seconds) runs in a thread, so a UI
    keeps drawing meanwhile."""
    if _module is not None:
        silence_library_warnings()
        return _module
    import asyncio

    return await asyncio.to_thread(load_litellm)


def join_preload() -> None:
    """Wait for a preload started by `preload_litellm` to end.

    Call before the process exits: an interpreter that shuts down while a daemon thread is
    still inside `import litellm` can abort (SIGABRT) instead of exiting with its status.
    """
    thread = _preload
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def preload_litellm() -> None:
    """Start importing litellm in a daemon thread (idempotent). `load_litellm` waits for it."""
    global _preload
    with _lock:
        if _module is not None or _preload is not None:
            return

        def run() -> None:
            global _preload_error
            try:
                _import()
            except BaseException as exc:  # noqa: BLE001 - load_litellm() retries and raises
                _preload_error = exc

        _preload = threading.Thread(target=run, name="import-litellm", daemon=True)
        _preload.start()


def use_litellm_http_handler_for_openai() -> None:
    """Route ``openai/...`` calls through litellm's own HTTP handler instead of the OpenAI SDK
    (litellm's EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER setting), for processes that never
    stream, such as `coevo run`. It costs about 40% less CPU per call (measured by
    benchmarks/bench_run.py), which is what bounds a headless run's throughput. It is not
    used where outputs stream: that handler skips a malformed stream chunk silently, while
    the SDK path raises, so coevo can retry. An explicit setting in the environment wins.
    """
    os.environ.setdefault("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", "true")


def litellm_loaded() -> bool:
    return _module is not None
