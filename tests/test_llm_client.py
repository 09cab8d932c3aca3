"""ModelClient against the fake OpenAI-compatible server (through litellm's real client)
and the fake litellm provider: streaming, retries, give-up, timeouts, cancel, keys."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest
from fake_model_server import FakeModelServer, _split
from llm_fixtures import FAST_RETRY, FAST_TIMEOUT

from coevo_tui.domain.model import OutputStatus, PromptVersion
from coevo_tui.llm.client import (
    MissingApiKey,
    ModelCall,
    ModelClient,
    RetryPolicy,
    StreamDone,
    StreamRetry,
    TextDelta,
    build_messages,
    redact_secrets,
)
from coevo_tui.llm.config import ModelChoice
from coevo_tui.llm.fake_provider import FakeModel

# litellm queues a logging coroutine per call on a worker bound to the event loop; each
# test's loop ends with some still queued, which Python reports when they are dropped.
pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")


def _version(instructions: str = "", template: str | None = None) -> PromptVersion:
    return PromptVersion(1, 1, instructions, template, None, "", "")


def _call(server: FakeModelServer, text: str = "hello there") -> ModelCall:
    return ModelCall("openai/gpt-4o-mini", [{"role": "user", "content": text}], {},
                     server.url)


async def _stream(client: ModelClient, call: ModelCall) -> list[object]:
    return [event async for event in client.stream(call)]


# ---------------------------------------------------------------------- messages and keys
def test_messages_omit_an_empty_system_message_and_fill_the_template() -> None:
    assert build_messages(_version(), "hi") == [{"role": "user", "content": "hi"}]
    assert build_messages(_version("Be kind.", "Q: {input} {x}"), "hi") == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Q: hi {x}"},
    ]


def test_cache_key_changes_with_model_params_and_messages_only() -> None:
    base = ModelCall("m", [{"role": "user", "content": "a"}], {"temperature": 0})
    same = ModelCall("m", ({"content": "a", "role": "user"},), {"temperature": 0})
    assert base.cache_key() == same.cache_key()
    others = [
        ModelCall("n", [{"role": "user", "content": "a"}], {"temperature": 0}),
        ModelCall("m", [{"role": "user", "content": "b"}], {"temperature": 0}),
        ModelCall("m", [{"role": "user", "content": "a"}], {"temperature": 1}),
        ModelCall("m", [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}],
                  {"temperature": 0}),
    ]
    assert len({base.cache_key(), *(o.cache_key() for o in others)}) == 5


# ---------------------------------------------------------------------- ok paths
async def test_complete_returns_text_tokens_and_price(fake_server, fast_client) -> None:
    result = await fast_client.complete(_call(fake_server, "three word input"))
    assert "x-stainless-lang" in fake_server.request_headers[0]  # the OpenAI SDK path
    assert result.status == OutputStatus.OK
    assert result.text == "Reply to: three word input"
    assert (result.tokens_in, result.tokens_out) == (3, 5)
    assert result.cost is not None and result.cost > 0  # litellm knows gpt-4o-mini's price
    assert result.latency_ms is not None and result.latency_ms > 0
    assert fake_server.requests[0]["messages"] == [
        {"role": "user", "content": "three word input"}]
    assert not fake_server.requests[0].get("stream")


async def test_streaming_deltas_arrive_in_order(fake_server, fast_client) -> None:
    fake_server.chunks = 12
    text = "a fairly long input so that every chunk carries some text"
    events = await _stream(fast_client, _call(fake_server, text))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    expected = [p for p in _split(f"Reply to: {text}", 12) if p]
    assert deltas == expected
    assert isinstance(events[-1], StreamDone)
    assert events[-1].result.text == f"Reply to: {text}"
    assert events[-1].result.tokens_out == len(f"Reply to: {text}".split())
    assert fake_server.requests[0]["stream"] is True


async def test_fake_provider_streams_through_litellm(fake_provider: FakeModel,
                                                     fast_client) -> None:
    fake_provider.configure(chunks=3)
    call = ModelCall("coevo-fake/echo", [{"role": "user", "content": "abc def"}])
    events = await _stream(fast_client, call)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Reply ", "to: a",
                                                                    "bc def"]
    assert events[-1].result.text == "Reply to: abc def"
    other = await fast_client.complete(ModelCall("coevo-fake/judge", call.messages))
    assert other.text == "judge says: abc def"
    assert (fake_provider.calls, fake_provider.streams_started,
            fake_provider.streams_finished) == (2, 1, 1)


# ---------------------------------------------------------------------- faults
FAULTS = ["429", "500", "drop", "malformed", "slow"]


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_each_fault_is_retried_then_ok(fake_server, kind: str, streaming: bool) -> None:
    await _retried_then_ok(fake_server, kind, streaming)


@pytest.mark.parametrize("kind", FAULTS)
async def test_each_fault_is_retried_then_ok_by_litellms_http_handler(
        fake_server, monkeypatch, kind: str) -> None:
    # The batch path of `coevo run` (use_litellm_http_handler_for_openai).
    monkeypatch.setenv("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER", "true")
    await _retried_then_ok(fake_server, kind, streaming=False)
    # The OpenAI SDK would have sent its x-stainless-* headers.
    assert not any(name.startswith("x-stainless") for name in fake_server.request_headers[0])


async def _retried_then_ok(fake_server: FakeModelServer, kind: str, streaming: bool) -> None:
    client = ModelClient(concurrency=2, timeout=1.5 if kind == "slow" else FAST_TIMEOUT,
                         retry=FAST_RETRY, rng=random.Random(1))
    fake_server.set_fault(kind, count=1, retry_after=0.01)
    if streaming:
        events = await _stream(client, _call(fake_server))
        retries = [e for e in events if isinstance(e, StreamRetry)]
        assert len(retries) == 1
        result = events[-1].result
    else:
        result = await client.complete(_call(fake_server))
    assert result.status == OutputStatus.OK, result.error
    assert result.text == "Reply to: hello there"
    assert result.attempts == 2
    assert fake_server.request_count == 2


@pytest.mark.parametrize("kind", FAULTS)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_each_fault_gives_up_as_an_error_after_the_bound(fake_server, kind: str,
                                                               streaming: bool) -> None:
    client = ModelClient(concurrency=2, timeout=1.5 if kind == "slow" else FAST_TIMEOUT,
                         retry=FAST_RETRY, rng=random.Random(1))
    fake_server.set_fault(kind, count=FAST_RETRY.max_attempts, retry_after=0.01)
    if streaming:
        result = (await _stream(client, _call(fake_server)))[-1].result
    else:
        result = await client.complete(_call(fake_server))
    assert result.status == OutputStatus.ERROR
    assert result.text == ""
    assert f"gave up after {FAST_RETRY.max_attempts} attempts" in result.error
    assert fake_server.request_count == FAST_RETRY.max_attempts
    # The client still works afterwards.
    assert (await client.complete(_call(fake_server))).status == OutputStatus.OK


@pytest.mark.parametrize("kind", ["error", "rate_limit", "drop"])
async def test_fake_provider_faults_are_retried(fake_provider: FakeModel, fast_client,
                                                kind: str) -> None:
    fake_provider.fail_next(kind, count=1)
    call = ModelCall("coevo-fake/echo", [{"role": "user", "content": "x"}])
    events = await _stream(fast_client, call)
    assert sum(isinstance(e, StreamRetry) for e in events) == 1
    assert events[-1].result.text == "Reply to: x"


async def test_error_messages_say_what_failed(fake_server, fast_client) -> None:
    fake_server.set_fault("429", count=3)
    result = await fast_client.complete(_call(fake_server))
    assert result.error == "rate limited (HTTP 429): rate limited (gave up after 3 attempts)"


async def test_client_errors_are_not_retried(fake_server, fast_client) -> None:
    fake_server.set_fault("401", count=1)
    result = await fast_client.complete(_call(fake_server))
    assert result.status == OutputStatus.ERROR
    assert result.error.startswith("HTTP 401: ")
    assert fake_server.request_count == 1


async def test_retry_after_is_honoured(fake_server) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_retry_after=60)
    client = ModelClient(timeout=FAST_TIMEOUT, retry=policy, sleep=record)
    fake_server.set_fault("429", count=1, retry_after=7.5)
    fake_server.set_fault("500", count=1)
    result = await client.complete(_call(fake_server))
    assert result.status == OutputStatus.OK
    assert 7.5 <= waits[0] <= 7.5 + policy.base_delay / 10  # the server's Retry-After
    assert waits[1] <= policy.base_delay * 2  # then ordinary backoff


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=30)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)]:
        delays = {policy.delay(attempt, None, rng) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert 30 <= policy.delay(1, 500.0, rng) <= 30.1  # Retry-After capped


# ---------------------------------------------------------------------- cancel
async def test_cancel_closes_the_stream_at_the_server(fake_server, fast_client) -> None:
    fake_server.chunks, fake_server.chunk_gap = 200, 0.05  # a 10 s answer
    first_delta = asyncio.Event()

    async def watch() -> None:
        async for event in fast_client.stream(_call(fake_server)):
            if isinstance(event, TextDelta):
                first_delta.set()

    task = asyncio.create_task(watch())
    await first_delta.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(200):  # wait for the server's side (no timing is asserted)
        if fake_server.streams_closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert fake_server.streams_closed_by_client == [1]
    assert fake_server.stats.streams_finished == []


async def test_closing_the_iterator_closes_the_fake_provider_stream(
        fake_provider: FakeModel, fast_client) -> None:
    fake_provider.configure(chunks=50, chunk_delay=0.05)
    call = ModelCall("coevo-fake/echo", [{"role": "user", "content": "x " * 50}])
    async with contextlib.aclosing(fast_client.stream(call)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    assert (fake_provider.streams_cancelled, fake_provider.streams_finished) == (1, 0)


# ---------------------------------------------------------------------- keys
async def test_missing_key_names_the_variable(monkeypatch, fast_client) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingApiKey) as info:
        await fast_client.check_ready(ModelChoice("gpt-4o-mini"))
    assert str(info.value) == (
        "OPENAI_API_KEY is not set; export it or choose another model with --model")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingApiKey, match="^ANTHROPIC_API_KEY is not set"):
        await fast_client.check_ready(ModelChoice("anthropic/claude-3-5-haiku-20241022"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    await fast_client.check_ready(ModelChoice("gpt-4o-mini"))  # no error once set
    # Servers behind --api-base and coevo's own providers need no key.
    monkeypatch.delenv("OPENAI_API_KEY")
    await fast_client.check_ready(ModelChoice("openai/x", "http://127.0.0.1:9/v1"))
    await fast_client.check_ready(ModelChoice("coevo-fake/echo"))


async def test_api_base_without_a_key_still_calls(monkeypatch, fake_server, fast_client) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert (await fast_client.complete(_call(fake_server))).status == OutputStatus.OK


async def test_a_key_echoed_in_an_error_is_redacted(monkeypatch, fake_server,
                                                    fast_client) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-0123456789")
    fake_server.set_fault("401", count=1)
    result = await fast_client.complete(_call(fake_server))
    assert fake_server.request_headers[0]["authorization"] == "Bearer sk-canary-0123456789"
    assert "sk-canary" not in result.error
    assert "[redacted]" in result.error


def test_redact_secrets_only_touches_secret_variables(monkeypatch) -> None:
    monkeypatch.setenv("SOME_TOKEN", "tok-abcdefgh")
    monkeypatch.setenv("COEVO_MODEL", "gpt-4o-mini")
    assert redact_secrets("tok-abcdefgh and gpt-4o-mini") == "[redacted] and gpt-4o-mini"



def test_redact_secrets_also_hides_url_credentials() -> None:
    assert redact_secrets("failed: http://bob:PASSWORD-1@h/v1?api_key=KEY-2 (HTTP 500)") == (
        "failed: http://[redacted]@h/v1?api_key=[redacted] (HTTP 500)")


def test_six_attempts_by_default() -> None:
    # RetryPolicy's docstring says why: at 30% faults, 4 attempts leave 1.6 errors in 200.
    assert RetryPolicy().max_attempts == 6
