"""Model calls through litellm: model choice, streaming and batch calls with retries, the
call cache, the run engine, and coevo's own providers (offline demo model, fake model).

Nothing here imports litellm at import time (it costs seconds): the first call does, or
`preload_litellm()` starts it in a thread. No Textual either: the TUI and the headless
commands share this code.
"""

from coevo_tui.llm.client import (
    CallResult,
    MissingApiKey,
    ModelCall,
    ModelClient,
    RetryPolicy,
    StreamDone,
    StreamEvent,
    StreamRetry,
    TextDelta,
    build_messages,
)
from coevo_tui.llm.config import (
    FAKE_MODEL,
    LOCAL_MODEL,
    ModelChoice,
    ModelNotConfigured,
    model_status,
    resolve_model,
)
from coevo_tui.llm.litellm_import import load_litellm_async, preload_litellm
from coevo_tui.llm.runner import (
    CaseDelta,
    CaseEvent,
    CaseFinished,
    CaseRestarted,
    CaseStarted,
    Runner,
    RunEvent,
    RunFinished,
    RunStarted,
    RunSummary,
)

__all__ = [
    "FAKE_MODEL", "LOCAL_MODEL", "CallResult", "CaseDelta", "CaseEvent", "CaseFinished",
    "CaseRestarted", "CaseStarted", "MissingApiKey", "ModelCall", "ModelChoice", "ModelClient",
    "ModelNotConfigured", "RetryPolicy", "RunEvent", "RunFinished", "RunStarted", "RunSummary",
    "Runner", "StreamDone", "StreamEvent", "StreamRetry", "TextDelta", "build_messages",
    "load_litellm_async", "model_status", "preload_litellm", "resolve_model",
]
