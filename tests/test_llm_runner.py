"""The run engine with a real store: every output stored, cache, resume, errors, cancel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from fake_model_server import FakeModelServer
from llm_fixtures import FAST_RETRY, FAST_TIMEOUT

from coevo_tui.domain.model import LabelSource, OutputStatus, Verdict
from coevo_tui.llm.client import ModelClient
from coevo_tui.llm.config import ModelChoice
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.llm.runner import (
    CaseDelta,
    CaseFinished,
    CaseStarted,
    Runner,
    RunFinished,
    RunStarted,
)
from coevo_tui.store import NewCase, Store

# litellm queues a logging coroutine per call on a worker bound to the event loop; each
# test's loop ends with some still queued, which Python reports when they are dropped.
pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")


async def _setup(store: Store, n: int = 5, instructions: str = "Be brief."):
    version = await store.versions.create(instructions, None, "test")
    await store.cases.add_many([NewCase(input=f"case {i}") for i in range(n)])
    return version


def _runner(store: Store, server: FakeModelServer, client: ModelClient,
            params: dict | None = None) -> Runner:
    return Runner(store, client, ModelChoice("openai/gpt-4o-mini", server.url), params)


async def _run(runner: Runner, version, **kwargs) -> list[object]:
    return [event async for event in runner.run_version(version, **kwargs)]


async def test_a_run_stores_every_output_and_records_the_run(store, fake_server,
                                                             fast_client) -> None:
    version = await _setup(store)
    params = {"temperature": 0, "api_key": "sk-not-here-123456"}  # a key is never stored
    events = await _run(_runner(store, fake_server, fast_client, params), version)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    finished = [e for e in events if isinstance(e, CaseFinished)]
    assert sorted(e.output.text for e in finished) == [f"Reply to: case {i}" for i in range(5)]
    assert sum(isinstance(e, CaseStarted) for e in events) == 5
    summary = events[-1].summary
    assert (summary.ok, summary.errors, summary.cached, summary.skipped) == (5, 0, 0, 0)
    assert summary.cost > 0
    outputs = await store.outputs.newest_per_case(version.id)
    assert len(outputs) == 5
    for out in outputs.values():
        assert out.status == OutputStatus.OK and out.run_id == events[0].run_id
        assert out.params == {"temperature": 0} and out.tokens_in and out.cost
    assert fake_server.requests[0]["temperature"] == 0
    assert fake_server.request_headers[0]["authorization"] != "Bearer sk-not-here-123456"
    assert fake_server.requests[0]["messages"][0] == {"role": "system", "content": "Be brief."}
    finish = (await store.events.recent(kind="finish"))[0]
    assert finish.entity_id == events[0].run_id and finish.payload["status"] == "done"


async def test_a_cache_hit_makes_no_request(store, fake_server, fast_client) -> None:
    v1 = await _setup(store, 3)
    runner = _runner(store, fake_server, fast_client)
    await _run(runner, v1)
    assert fake_server.request_count == 3
    v2 = await store.versions.create("Be brief.", None, "same instructions again")
    events = await _run(runner, v2)
    assert fake_server.request_count == 3  # nothing new reached the server
    outputs = [e.output for e in events if isinstance(e, CaseFinished)]
    assert len(outputs) == 3 and all(o.cached and o.cost == 0.0 for o in outputs)
    assert events[-1].summary.cached == 3
    # use_cache=False forces fresh calls
    v3 = await store.versions.create("Be brief.", None, "and again")
    events = await _run(runner, v3, use_cache=False)
    assert fake_server.request_count == 6
    assert not any(e.output.cached for e in events if isinstance(e, CaseFinished))


def _one_at_a_time() -> ModelClient:
    # One call at a time, so that consecutive faults hit the same case.
    return ModelClient(concurrency=1, timeout=FAST_TIMEOUT, retry=FAST_RETRY)


async def test_a_second_run_calls_only_unfinished_cases(store, fake_server) -> None:
    version = await _setup(store, 6)
    runner = _runner(store, fake_server, _one_at_a_time())
    cases = await store.cases.all()
    await _run(runner, version, cases=cases[:2])
    fake_server.set_fault("500", count=FAST_RETRY.max_attempts)  # one case ends in error
    events = await _run(runner, version, cases=cases[2:4])
    assert events[-1].summary.errors == 1
    fake_server.reset()
    events = await _run(runner, version, use_cache=False)
    # 2 never run + 1 error = 3 calls; the 3 ok ones are skipped (resume).
    assert fake_server.request_count == 3
    assert events[-1].summary.skipped == 3 and events[-1].summary.ok == 3
    events = await _run(runner, version)
    assert fake_server.request_count == 3
    assert events[0].run_id is None and events[-1].summary.skipped == 6


async def test_errors_are_stored_with_the_message_and_the_run_goes_on(
        store, fake_server) -> None:
    version = await _setup(store, 4)
    fake_server.set_fault("500", count=FAST_RETRY.max_attempts)
    events = await _run(_runner(store, fake_server, _one_at_a_time()), version)
    outputs = [e.output for e in events if isinstance(e, CaseFinished)]
    errors = [o for o in outputs if o.status == OutputStatus.ERROR]
    assert len(errors) == 1 and len(outputs) == 4
    assert errors[0].error.startswith("server error (HTTP 500)")
    assert "gave up after 3 attempts" in errors[0].error
    assert events[-1].summary.line().startswith("3 ok (0 cached), 1 error, 0 already done")


async def test_run_case_streams_then_stores(store, fake_server, fast_client) -> None:
    version = await _setup(store, 1)
    case = (await store.cases.all())[0]
    fake_server.chunks = 5
    events = [e async for e in _runner(store, fake_server, fast_client).run_case(case, version)]
    assert isinstance(events[0], CaseStarted) and isinstance(events[-1], CaseFinished)
    deltas = [e.text for e in events if isinstance(e, CaseDelta)]
    assert len(deltas) == 5 and "".join(deltas) == "Reply to: case 0"
    stored = await store.outputs.newest(case.id, version.id)
    assert stored == events[-1].output and stored.text == "Reply to: case 0"
    assert fake_server.requests[0]["stream"] is True


async def test_a_streaming_run_reports_deltas(store, fake_provider: FakeModel,
                                              fast_client) -> None:
    version = await _setup(store, 3)
    runner = Runner(store, fast_client, ModelChoice("coevo-fake/echo"))
    events = await _run(runner, version, stream=True)
    for case in await store.cases.all():
        text = "".join(e.text for e in events if isinstance(e, CaseDelta)
                       and e.case_id == case.id)
        assert text == f"Reply to: {case.input}"
    assert fake_provider.streams_finished == 3


async def test_cancelling_a_case_stores_nothing_and_closes_the_stream(
        store, fake_server, fast_client) -> None:
    version = await _setup(store, 1)
    case = (await store.cases.all())[0]
    fake_server.chunks, fake_server.chunk_gap = 200, 0.05
    seen = asyncio.Event()

    async def watch() -> None:
        async for event in _runner(store, fake_server, fast_client).run_case(case, version):
            if isinstance(event, CaseDelta):
                seen.set()

    task = asyncio.create_task(watch())
    await seen.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(200):
        if fake_server.streams_closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert fake_server.streams_closed_by_client == [1]
    assert await store.outputs.newest(case.id, version.id) is None


async def test_cancelling_a_run_keeps_what_arrived_and_marks_it_halted(
        store, fake_provider: FakeModel) -> None:
    version = await _setup(store, 6)
    fake_provider.configure(first_token_delay=0.05)
    client = ModelClient(concurrency=1, timeout=5, retry=FAST_RETRY)
    runner = Runner(store, client, ModelChoice("coevo-fake/echo"))
    finished = 0

    async def consume() -> None:
        nonlocal finished
        async for event in runner.run_version(version):
            if isinstance(event, CaseFinished):
                finished += 1
                if finished == 2:
                    fake_provider.hold()  # the next call waits until cancelled

    task = asyncio.create_task(consume())
    for _ in range(500):
        if finished >= 2 and fake_provider.calls >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    outputs = await store.outputs.newest_per_case(version.id)
    assert len(outputs) == 2 and all(o.status == OutputStatus.OK for o in outputs.values())
    finish = (await store.events.recent(kind="finish"))[0]
    assert finish.payload["status"] == "halted" and finish.payload["ok"] == 2
    fake_provider.release()
    # Resuming calls the model for the 4 cases without an answer, not the cancelled one twice.
    calls_before = fake_provider.calls
    await _run(runner, version)
    assert fake_provider.calls - calls_before == 4


async def test_carry_over_labels_an_identical_new_answer(store, fake_server,
                                                         fast_client) -> None:
    if not hasattr(store.labels, "inherit"):
        pytest.skip("Store.labels.inherit is not in this tree yet")
    v1 = await _setup(store, 1)
    runner = _runner(store, fake_server, fast_client)
    first = [e for e in await _run(runner, v1) if isinstance(e, CaseFinished)][0]
    await store.labels.write(first.output.id, Verdict.GOOD)
    v2 = await store.versions.create("Be brief, please.", None, "reworded")
    second = [e for e in await _run(runner, v2) if isinstance(e, CaseFinished)][0]
    assert second.output.text == first.output.text
    assert second.label is not None and second.label.source == LabelSource.CARRIED
    assert (await store.labels.current(second.output.id)).verdict == Verdict.GOOD
