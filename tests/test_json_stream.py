"""Streaming structured output: the incremental scanner of a JSON array's items
(ArrayItemScanner) and stream_json_items against the fake provider and the fake server:
each item delivered as soon as it is complete, while the model still holds the rest."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.llm import structured
from coevo_tui.llm.client import ModelCall, ModelClient, StreamRetry, TextDelta
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.llm.structured import (
    ArrayItemScanner,
    ItemEvent,
    JsonItem,
    JsonItemRejected,
    JsonItemsDone,
    ScanEnd,
    StructuredResult,
    stream_json_items,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")

WAIT = 60.0  # generous: only a hang would reach it

CASE = {"type": "object",
        "properties": {"input": {"type": "string"}, "rule": {"type": "integer"}},
        "required": ["input", "rule"], "additionalProperties": False}
CASES = {"type": "object",
         "properties": {"cases": {"type": "array", "items": CASE, "maxItems": 3}},
         "required": ["cases"], "additionalProperties": False}


@pytest.fixture(autouse=True)
def _forget_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(structured, "_refused", {})


def _case(n: int) -> dict[str, Any]:
    return {"input": f"input {n}", "rule": n}


def _c(n: int) -> str:
    return json.dumps(_case(n))


# ---------------------------------------------------------------------- the scanner
def _scan(text: str, pieces: list[int] | None = None, key: str | None = None
          ) -> tuple[list[str], ScanEnd]:
    """Feed `text` cut at `pieces` (every character if None)."""
    scanner = ArrayItemScanner(key)
    cuts = [0, *(pieces if pieces is not None else range(1, len(text))), len(text)]
    found: list[str] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        found += scanner.feed(text[start:end])
    return found, scanner.finish()


TRICKY = ('Here they are, as asked [in the format above]:\n```json\n'
          '{"note": "a [bracket] and a \\"quote\\"", "rules": [1, 2],\n'
          ' "cases": [\n  {"input": "she said \\"go]\\" {x}", "rule": 1},\n'
          "  'single', 12, -3.5e2, true, null, [1, [2]],\n"
          '  {"input": "c", "rule": 3,}\n ]}\n```\nAnything else?')
TRICKY_ITEMS = ['{"input": "she said \\"go]\\" {x}", "rule": 1}', "'single'", "12",
                "-3.5e2", "true", "null", "[1, [2]]", '{"input": "c", "rule": 3,}']


def test_the_scanner_finds_the_same_items_however_the_text_is_cut() -> None:
    every_char, end = _scan(TRICKY, key="cases")
    assert every_char == TRICKY_ITEMS
    assert end == ScanEnd(found=True, closed=True, partial=None)
    for cut in range(1, len(TRICKY)):
        assert _scan(TRICKY, [cut], key="cases")[0] == TRICKY_ITEMS, cut


def test_an_item_is_complete_at_its_closing_bracket_not_at_the_next_comma() -> None:
    scanner = ArrayItemScanner()
    assert scanner.feed('[{"a": [1, 2]') == []
    assert scanner.feed("}") == ['{"a": [1, 2]}']
    assert scanner.feed(' , "x') == []
    assert scanner.feed('"') == ['"x"']
    assert scanner.feed(", 4") == []  # 4 may go on as 42
    assert scanner.feed("2]") == ["42"]
    assert scanner.finish() == ScanEnd(found=True, closed=True, partial=None)


def test_without_a_key_the_first_array_of_the_wrapper_is_read() -> None:
    assert _scan('{"cases": [1, 2], "other": [3]}')[0] == ["1", "2"]
    assert _scan('{"count": 2, "cases": [1, 2]}', key="CASES")[0] == ["1", "2"]
    assert _scan('[{"a": 1}]', key="cases")[0] == ['{"a": 1}']  # a bare array will do


def test_a_cut_off_answer_leaves_its_partial_item() -> None:
    items, end = _scan('{"cases": [{"a": 1}, {"a": "tw')
    assert items == ['{"a": 1}']
    assert end == ScanEnd(found=True, closed=False, partial='{"a": "tw')
    assert end.cut
    items, end = _scan("no json in this answer")
    assert (items, end.found, end.cut) == ([], False, False)


# ---------------------------------------------------------------------- stream_json_items
def _call(model: str = "coevo-fake/assistant") -> ModelCall:
    return ModelCall(model, [{"role": "user", "content": "Write three cases."}])


async def _next_item(events: AsyncIterator[ItemEvent], seen: list[ItemEvent]) -> ItemEvent:
    """The next item event (JsonItem or JsonItemRejected), the others kept in `seen`."""
    async def step() -> ItemEvent:
        async for event in events:
            seen.append(event)
            if isinstance(event, (JsonItem, JsonItemRejected, JsonItemsDone)):
                return event
        raise AssertionError("the stream ended without an item")
    return await asyncio.wait_for(step(), WAIT)


async def _all(events: AsyncIterator[ItemEvent]) -> list[ItemEvent]:
    async def run() -> list[ItemEvent]:
        return [event async for event in events]
    return await asyncio.wait_for(run(), WAIT)


def _done(events: list[ItemEvent]) -> StructuredResult:
    assert isinstance(events[-1], JsonItemsDone)
    assert sum(isinstance(e, JsonItemsDone) for e in events) == 1
    return events[-1].result


def _items(events: list[ItemEvent]) -> list[tuple[int, Any]]:
    return [(e.index, e.value) for e in events if isinstance(e, JsonItem)]


async def test_the_first_item_arrives_while_the_model_still_holds_the_rest(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(['{"cases": [', _c(1), ", " + _c(2)[:10], _c(2)[10:] + ", ",
                          _c(3) + "]}"])
    fake_provider.hold(after_chunks=2)
    seen: list[ItemEvent] = []
    async with contextlib.aclosing(
            stream_json_items(fast_client, _call(), CASES)) as events:
        first = await _next_item(events, seen)
        assert first == JsonItem(1, _case(1))
        # The provider cannot send the rest before release(): it is still to come.
        assert fake_provider.streams_finished == 0
        assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == (
            '{"cases": [' + _c(1))
        fake_provider.release()
        rest = await _all(events)
    assert _items(rest) == [(2, _case(2)), (3, _case(3))]
    result = _done(rest)
    assert result.complete and result.value == [_case(1), _case(2), _case(3)]
    assert fake_provider.streams_finished == 1 and fake_provider.calls == 1
    assert fake_provider.response_formats[0]["json_schema"]["schema"] == CASES


async def test_items_arrive_one_by_one_from_an_openai_compatible_server(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.responder = lambda body: ["[", _c(1) + ",", _c(2), "]"]
    fake_server.hold_streams(after_chunks=2)
    schema = {"type": "array", "items": CASE}
    call = ModelCall("openai/served-model", [{"role": "user", "content": "cases"}], {},
                     fake_server.url)
    seen: list[ItemEvent] = []
    try:
        async with contextlib.aclosing(
                stream_json_items(fast_client, call, schema)) as events:
            assert await _next_item(events, seen) == JsonItem(1, _case(1))
            assert fake_server.stats.streams_finished == []  # held until released
            fake_server.release_streams()
            rest = await _all(events)
    finally:
        fake_server.release_streams()
    assert _items(rest) == [(2, _case(2))]
    assert _done(rest).value == [_case(1), _case(2)]
    assert fake_server.requests[0]["response_format"]["type"] == "json_schema"
    assert fake_server.requests[0]["stream"] is True


async def test_an_invalid_item_is_reported_and_the_rest_still_arrive(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(['Sure!\n```json\n{"cases": [', _c(1), ', {"input": "no rule"}',
                          ", {oops}, ", _c(3), "]}\n```"])
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    item_events = [e for e in events if isinstance(e, (JsonItem, JsonItemRejected))]
    assert item_events == [
        JsonItem(1, _case(1)),
        JsonItemRejected(2, "cases #2: 'rule' is missing: dropped"),
        JsonItemRejected(3, "cases #3: not JSON (expected ':' after key 'oops'): dropped"),
        JsonItem(4, _case(3)),
    ]
    result = _done(events)
    assert result.ok and result.value == [_case(1), _case(3)]
    assert len(result.problems) == 2 and "\n" not in (result.report() or "")
    assert fake_provider.calls == 1


async def test_items_beyond_max_items_are_dropped(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(json.dumps({"cases": [_case(n) for n in range(1, 6)]}))
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    assert [i for i, _ in _items(events)] == [1, 2, 3]
    assert _done(events).problems == (
        "cases #4: beyond the 3 asked for: dropped", "cases #5: beyond the 3 asked for:"
        " dropped")


async def test_a_cut_off_answer_keeps_its_items_and_reports_the_incomplete_one(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(['{"cases": [', _c(1), ", ", _c(2)[:12]])
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    result = _done(events)
    assert result.value == [_case(1)]
    assert result.problems == ("the answer was cut off (its last, incomplete item was"
                               " dropped)",)
    assert fake_provider.calls == 1


async def test_a_restarted_stream_does_not_deliver_an_item_twice(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    first = ['{"cases": [', _c(1) + ",", _c(2), "]}"]
    # A sampling model's second answer differs: its first item is skipped all the same.
    second = ['{"cases": [', _c(7) + ",", _c(2), "]}"]
    fake_provider.script(first, second)
    fake_provider.fail_next("drop")  # the first stream is cut after two of its chunks
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    retries = [e for e in events if isinstance(e, StreamRetry)]
    assert len(retries) == 1 and "cut off" in retries[0].reason
    assert _items(events) == [(1, _case(1)), (2, _case(2))]
    assert _done(events).value == [_case(1), _case(2)]
    assert fake_provider.calls == 2 and _done(events).attempts == 2


async def test_a_prose_answer_is_asked_again_and_its_items_stream(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script("I'd rather explain the policy in words.",
                         ["[", _c(1), "]"])
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    retries = [e for e in events if isinstance(e, StreamRetry)]
    assert len(retries) == 1 and "not JSON" in retries[0].reason
    assert _items(events) == [(1, _case(1))]
    assert fake_provider.calls == 2
    assert fake_provider.requests[1][-1]["content"].startswith(
        "That answer could not be used: the answer is not JSON:")


async def test_an_answer_that_is_never_usable_ends_in_one_error(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.responder = lambda messages: '{"cases": [{"input": "x"}]}'
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    result = _done(events)
    assert result.error == ("none of the 1 items matches the schema (cases #1: 'rule' is"
                            " missing: dropped) (after 3 answers)")
    assert result.value is None and fake_provider.calls == 3
    assert sum(isinstance(e, JsonItemRejected) for e in events) == 3


async def test_items_the_scanner_cannot_see_are_found_in_the_whole_answer(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    # The "cases" key is spelt differently: no array for the scanner; the whole-answer
    # parser takes the bare array the prose ends with.
    fake_provider.script('Format: {"Cases": "below"}. Answer: ' + json.dumps([_case(1)]))
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    assert _items(events) == [(1, _case(1))]
    assert _done(events).complete and fake_provider.calls == 1


async def test_an_empty_array_is_an_answer_unless_min_items_says_otherwise(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script('{"cases": []}')
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    assert _done(events).complete and _done(events).value == []
    assert fake_provider.calls == 1
    fake_provider.script('{"cases": []}', '{"cases": []}', json.dumps([_case(1)]))
    at_least_one = {"type": "array", "items": CASE, "minItems": 1}
    events = await _all(stream_json_items(fast_client, _call(), at_least_one))
    assert _done(events).value == [_case(1)]
    assert fake_provider.calls == 4
    assert fake_provider.requests[2][-1]["content"] == (
        "That answer could not be used: the answer does not match the schema: no items,"
        " needs at least 1. Answer again with only the JSON, matching the schema, and"
        " nothing else.")


async def test_a_failing_model_ends_in_one_error_event(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.fail_next("error", count=3)
    events = await _all(stream_json_items(fast_client, _call(), CASES))
    result = _done(events)
    assert result.error is not None and "gave up after 3 attempts" in result.error
    assert not _items(events)


async def test_closing_the_iterator_stops_the_models_stream(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(["[", _c(1), ",", _c(2), "]"])
    fake_provider.hold(after_chunks=2)
    seen: list[ItemEvent] = []
    events = stream_json_items(fast_client, _call(), CASES)
    assert await _next_item(events, seen) == JsonItem(1, _case(1))
    await asyncio.wait_for(events.aclose(), WAIT)
    fake_provider.release()
    assert fake_provider.streams_cancelled == 1
    assert fake_provider.streams_finished == 0


async def test_a_refused_format_is_asked_again_without_it_while_streaming(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.refused_formats = {"json_schema", "json_object"}
    fake_server.responder = lambda body: json.dumps({"cases": [_case(1)]})
    call = ModelCall("openai/served-model", [{"role": "user", "content": "cases"}], {},
                     fake_server.url)
    events = await _all(stream_json_items(fast_client, call, CASES))
    assert _items(events) == [(1, _case(1))]
    assert [r.get("response_format", {}).get("type") for r in fake_server.requests] == [
        "json_schema", "json_object", None]
    assert sum(isinstance(e, StreamRetry) for e in events) == 2


def test_a_schema_without_one_array_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="array_key"):
        stream_json_items(ModelClient(), _call(), {
            "type": "object", "properties": {"a": {"type": "array"},
                                             "b": {"type": "array"}}})
    with pytest.raises(ValueError, match="no property 'input'"):
        stream_json_items(ModelClient(), _call(), CASES, array_key="input")
