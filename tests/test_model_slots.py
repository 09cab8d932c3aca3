"""One concurrency bound per process, shared by every caller, with the case the user is
watching served first: a pane's call takes the next free slot before a run's waiting ones."""

from __future__ import annotations

import asyncio
import contextlib

from coevo_tui.llm.client import ModelCall, ModelClient, StreamDone
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel


def _call(text: str) -> ModelCall:
    return ModelCall(FAKE_MODEL, [{"role": "user", "content": text}])


async def _stream_text(client: ModelClient, call: ModelCall, *, urgent: bool) -> str:
    async with contextlib.aclosing(client.stream(call, urgent=urgent)) as events:
        async for event in events:
            if isinstance(event, StreamDone):
                return event.result.text
    raise AssertionError("no result")


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_a_watched_call_goes_before_the_runs_waiting_calls(
        fake_provider: FakeModel) -> None:
    client = ModelClient(concurrency=1, timeout=5.0)
    await client.check_ready(_choice())
    fake_provider.hold()
    batch = [asyncio.create_task(client.complete(_call(f"run {i}"))) for i in range(3)]
    await _until(lambda: fake_provider.calls == 1, "the first run call holds the slot")
    watched = asyncio.create_task(_stream_text(client, _call("watched"), urgent=True))
    await asyncio.sleep(0.05)  # the watched call queues behind the held one
    fake_provider.release()
    results = await asyncio.gather(*batch, watched)
    order = [m[-1]["content"] for m in fake_provider.requests]
    assert order == ["run 0", "watched", "run 1", "run 2"]
    assert all(r for r in results)


async def test_cancelled_waiters_give_their_turn_away(fake_provider: FakeModel) -> None:
    client = ModelClient(concurrency=1, timeout=5.0)
    await client.check_ready(_choice())
    fake_provider.hold()
    first = asyncio.create_task(client.complete(_call("first")))
    await _until(lambda: fake_provider.calls == 1, "the first call holds the slot")
    gone = asyncio.create_task(client.complete(_call("gone")))
    later = asyncio.create_task(client.complete(_call("later")))
    await asyncio.sleep(0.05)
    gone.cancel()
    fake_provider.release()
    await asyncio.gather(first, later)
    assert [m[-1]["content"] for m in fake_provider.requests] == ["first", "later"]
    # and the slot is free again: a new call does not wait
    assert (await asyncio.wait_for(client.complete(_call("again")), 5)).ok


def _choice():
    from coevo_tui.llm.config import ModelChoice

    return ModelChoice(FAKE_MODEL)
