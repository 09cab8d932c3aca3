"""Structured output: answers as JSON matching a schema, or as one of a fixed set of choices.

Three calls on top of `ModelClient` (so its bounded concurrency, per-attempt timeouts,
retries and error classification hold: a structured call is a model call plus a schema):

* `complete_json(client, call, schema)`: the parsed answer, validated against the schema;
* `choose(client, call, choices)`: one of a fixed set of strings;
* `stream_json_items(client, call, schema)`: the items of a top-level array (or of the array
  in a wrapper object such as ``{"cases": [...]}``), each delivered as soon as it is
  complete, so a screen shows the first generated case before the batch ends.

None of them raises for what a model does. Each ends in a `StructuredResult`: the value
with whatever did not match the schema left out and listed in `problems`, or, when nothing
is usable (the call failed, the answer is not JSON, the top level does not match), `error`:
one line. `result.report()` says what went wrong in one line.

**Asking for JSON** (`response_format_for`). The schema goes to the model as
``response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
for coevo's own providers (the offline model decodes under it; the fake records it), for
models litellm says support response schemas, and for any OpenAI-compatible server behind
an api_base (vLLM, llama.cpp's server, Ollama and LM Studio all take it and constrain
decoding by it; litellm cannot know what such a server runs). ``strict`` is true when the
schema meets OpenAI's strict rules (every object closed with ``additionalProperties:
false`` and every property required); otherwise a strict request would be refused. For
the same reason the counts and lengths (``minItems``, ``maxItems``, ``minLength``,
``maxLength``) are left out of the schema sent to any provider but coevo's own: they are
checked here afterwards, and the prompt still shows them. Where
litellm says the provider takes a response_format but no schema, ``{"type":
"json_object"}``; elsewhere nothing. A server that refuses the format (HTTP 400 or 422) is
asked again with the next weaker one (schema, object, nothing); if that works, the refusal
is remembered for that model and server for the rest of the process. The schema is also
written into the prompt (`schema_instructions`, appended to the system message): a model
that sees the shape fills it better, and ``json_object`` needs the word JSON in the prompt.

**Reading the answer** (`parse_json`). Whatever the provider promised, the answer is
parsed tolerantly: code fences and prose before or after the JSON are skipped (the first
bracket that starts a value matching the schema wins), trailing commas, single-quoted
strings, bare keys, Python's True/False/None and comments are accepted, and an answer cut
off mid-way keeps its complete items (the incomplete last one is dropped and reported). An
array where the schema wants a wrapper object with one array property (or the reverse) is
accepted too.

**Validating it** (`validate`). A subset of JSON Schema: ``type`` (object, array, string,
integer, number, boolean, null, or a list of them), ``enum``, ``properties``,
``required``, ``additionalProperties: false`` (extra keys are dropped), ``items``,
``minItems``, ``maxItems``, ``minLength``. What does not match is left out rather than
failing the whole answer: an array item that does not match is dropped and reported; an
optional property that does not match is dropped and reported; an object missing a
required property (or with one that does not match) does not match. Cheap coercions are
made silently: ``"3"`` for an integer, ``3.0`` for an integer, ``12`` for a string,
``"true"`` for a boolean, ``" Bad "`` for the enum value ``"bad"``. ``maxItems`` keeps the
first items; ``minItems`` is a problem, not a failure, unless no item is left.

**Retries.** Faults of the call itself (rate limits, server errors, timeouts, cut streams)
are retried by the client. An answer with nothing usable (prose instead of JSON, the wrong
shape, empty) is asked again, with the bad answer and a one-line correction appended to the
conversation, at most `parse_retries` times (2 by default: a model that ignored the
instruction usually complies when told why; a third refusal rarely turns), without backoff
(the model answered promptly; nothing is overloaded), and never beyond the client's
`RetryPolicy.max_attempts` counted over every attempt the structured call made. An answer
with something usable is never asked again: its problems are reported instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from coevo_tui.llm.client import (
    CallResult,
    ModelCall,
    ModelClient,
    StreamDone,
    StreamRetry,
    TextDelta,
)
from coevo_tui.llm.config import FAKE_PROVIDER, LOCAL_PROVIDER
from coevo_tui.llm.litellm_import import load_litellm, load_litellm_async

__all__ = [
    "ArrayItemScanner", "ItemEvent", "JsonItem", "JsonItemRejected", "JsonItemsDone",
    "ScanEnd", "StructuredResult", "choose", "complete_json", "parse_choice", "parse_json",
    "response_format_for", "schema_instructions", "stream_json_items", "validate",
]

Schema = Mapping[str, Any]

JSON_SCHEMA = "json_schema"
JSON_OBJECT = "json_object"
# From the strongest constraint to none: a server that refuses one is asked with the next.
_FORMATS: tuple[str | None, ...] = (JSON_SCHEMA, JSON_OBJECT, None)
DEFAULT_PARSE_RETRIES = 2
_PREVIOUS_ANSWER_CHARS = 2000  # of a bad answer, sent back with the correction
_REPORT_CHARS = 300


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class StructuredResult:
    """The outcome of a structured call (or of parsing one answer).

    `value`: the answer as Python data, with what did not match the schema left out
    (None when `error` is set). `problems`: one short phrase per thing left out or wrong.
    `error`: one line when nothing is usable. `text`: the model's last answer. `calls`:
    every model call made, in order (tokens, cost and attempts add up over them)."""

    value: Any = None
    problems: tuple[str, ...] = ()
    error: str | None = None
    text: str = ""
    calls: tuple[CallResult, ...] = ()

    @property
    def ok(self) -> bool:
        """Something usable came back (`value` is set; `problems` may still list losses)."""
        return self.error is None

    @property
    def complete(self) -> bool:
        """Usable and nothing was left out."""
        return self.error is None and not self.problems

    @property
    def attempts(self) -> int:
        """Requests sent, retries included."""
        return sum(c.attempts for c in self.calls)

    @property
    def tokens_in(self) -> int | None:
        return _total(c.tokens_in for c in self.calls)

    @property
    def tokens_out(self) -> int | None:
        return _total(c.tokens_out for c in self.calls)

    @property
    def cost(self) -> float | None:
        return _total(c.cost for c in self.calls)

    def report(self) -> str | None:
        """One line saying what went wrong (the error, else the problems), or None."""
        if self.error is not None:
            return self.error
        if not self.problems:
            return None
        line = "; ".join(self.problems)
        if len(line) > _REPORT_CHARS:
            line = line[:_REPORT_CHARS - 1].rstrip() + "…"
        return line


def _total(values: Iterator[Any]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


@dataclass(frozen=True)
class JsonItem:
    """One complete, valid item of the streamed array; `index` counts from 1 in the answer."""

    index: int
    value: Any


@dataclass(frozen=True)
class JsonItemRejected:
    """An item that is complete but not usable (not JSON, or not matching the schema)."""

    index: int
    problem: str


@dataclass(frozen=True)
class JsonItemsDone:
    """The end of `stream_json_items`: `result.value` is the list of items delivered."""

    result: StructuredResult


# What `stream_json_items` yields. TextDelta: a piece of the answer as it arrives (for a
# progress display). StreamRetry: the answer starts again (a failed stream, a refused
# format, or an unusable answer asked again): text shown so far is void, items delivered
# stay delivered.
ItemEvent = JsonItem | JsonItemRejected | TextDelta | StreamRetry | JsonItemsDone


# ---------------------------------------------------------------------- asking for JSON
# (model, api_base) -> index in _FORMATS of the strongest format it accepted after a refusal.
_refused: dict[tuple[str, str | None], int] = {}


def response_format_for(model: str, api_base: str | None, schema: Schema,
                        name: str = "answer") -> dict[str, Any] | None:
    """The ``response_format`` to send with `schema` to `model` (see the module docstring
    for the rule), or None to rely on the prompt alone. Loads litellm if needed."""
    return _format(_FORMATS[_format_level(model, api_base)], _sent_schema(model, schema),
                   name)


# Checked here after the answer, and refused by some providers' strict modes (OpenAI's
# among them): left out of the schema sent to any provider but coevo's own.
_LOCAL_ONLY_KEYWORDS = frozenset({"minLength", "maxLength", "minItems", "maxItems"})


def _sent_schema(model: str, schema: Schema) -> Schema:
    """`schema` as sent in the response_format (the prompt shows it whole)."""
    if _coevo_provider(model):
        return schema

    def strip(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: strip(v) for k, v in node.items() if k not in _LOCAL_ONLY_KEYWORDS
                    or not isinstance(v, int)}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return strip(schema)


def _coevo_provider(model: str) -> str | None:
    """LOCAL_PROVIDER or FAKE_PROVIDER for a model served by coevo itself, else None."""
    provider, sep, _ = model.partition("/")
    return provider if sep and provider in (LOCAL_PROVIDER, FAKE_PROVIDER) else None


def _format_level(model: str, api_base: str | None) -> int:
    return max(_first_level(model, api_base), _refused.get((model, api_base), 0))


@functools.lru_cache(maxsize=128)  # litellm's model list does not change in a process
def _first_level(model: str, api_base: str | None) -> int:
    if _coevo_provider(model) or api_base:
        return 0
    sep = "/" in model
    litellm = load_litellm()
    try:
        if litellm.supports_response_schema(model=model):
            return 0
        _, found_provider, _, _ = litellm.get_llm_provider(model=model)
        supported = litellm.get_supported_openai_params(
            model=model.split("/", 1)[1] if sep else model, custom_llm_provider=found_provider)
    except Exception:  # noqa: BLE001 - a model litellm does not know: the prompt alone
        return 2
    return 1 if supported and "response_format" in supported else 2


def _format(kind: str | None, schema: Schema, name: str) -> dict[str, Any] | None:
    if kind == JSON_SCHEMA:
        return {"type": JSON_SCHEMA, "json_schema": {
            "name": re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "answer",
            "schema": dict(schema), "strict": _strict_compatible(schema)}}
    if kind == JSON_OBJECT:
        return {"type": JSON_OBJECT}
    return None


def _strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode takes `schema`: every object closed, all required."""
    if isinstance(schema, Mapping):
        types = schema.get("type")
        if types == "object" or (isinstance(types, list) and "object" in types):
            props = schema.get("properties") or {}
            if schema.get("additionalProperties") is not False:
                return False
            if set(props) - set(schema.get("required") or ()):
                return False
        return all(_strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(_strict_compatible(v) for v in schema)
    return True


def _refused_format(result: CallResult) -> bool:
    # The client reports a non-retryable HTTP error as "HTTP <status>: <message>".
    return not result.ok and bool(re.match(r"HTTP (400|422)\b", result.error or ""))


def schema_instructions(schema: Schema) -> str:
    """The sentence added to the system message: answer with JSON matching `schema`."""
    return ("Answer with JSON only: no other text, no code fences. The JSON must match this"
            " JSON schema:\n" + json.dumps(schema, ensure_ascii=False))


def _with_instructions(messages: Sequence[Mapping[str, Any]], text: str
                       ) -> list[dict[str, Any]]:
    result = [dict(m) for m in messages]
    if result and result[0].get("role") == "system" and isinstance(result[0].get("content"),
                                                                    str):
        result[0]["content"] = f"{result[0]['content'].rstrip()}\n\n{text}"
    else:
        result.insert(0, {"role": "system", "content": text})
    return result


def _correction(answer: str, reason: str) -> list[dict[str, str]]:
    """The bad answer and why it was refused, to append before asking again."""
    if not answer.strip():
        return [{"role": "user", "content": "Your answer was empty. Answer again with only"
                 " the JSON, matching the schema."}]
    return [{"role": "assistant", "content": answer[:_PREVIOUS_ANSWER_CHARS]},
            {"role": "user", "content": f"That answer could not be used: {reason}. Answer"
             " again with only the JSON, matching the schema, and nothing else."}]


def _call_with(call: ModelCall, messages: list[dict[str, Any]],
               response_format: dict[str, Any] | None) -> ModelCall:
    params = {k: v for k, v in call.params.items() if k != "response_format"}
    if response_format is not None:
        params["response_format"] = response_format
    return replace(call, messages=messages, params=params)


# ---------------------------------------------------------------------- the calls
async def complete_json(client: ModelClient, call: ModelCall, schema: Schema, *,
                        name: str = "answer", urgent: bool = False, instruct: bool = True,
                        parse_retries: int = DEFAULT_PARSE_RETRIES,
                        on_text: Callable[[str], object] | None = None) -> StructuredResult:
    """Ask `call` for JSON matching `schema`; the parsed, validated answer (never raises
    for the model's doing). `name` names the schema for the provider; `instruct=False`
    leaves the messages as they are (the caller wrote the JSON instructions). With
    `on_text`, the answer is streamed and each piece handed to it as it comes (a slow
    model's progress to show); the result is the same."""
    return await _ask(client, call, schema, name, lambda text: parse_json(text, schema),
                      urgent=urgent, instruct=instruct, parse_retries=parse_retries,
                      on_text=on_text)


async def choose(client: ModelClient, call: ModelCall, choices: Sequence[str], *,
                 name: str = "choice", urgent: bool = False, instruct: bool = True,
                 parse_retries: int = DEFAULT_PARSE_RETRIES) -> StructuredResult:
    """Ask `call` for one of `choices`; `value` is that string exactly as given in
    `choices`. The model is asked for ``{"choice": ...}``; a bare word, any case, quotes,
    markdown or a sentence naming exactly one choice is accepted too."""
    options = _choice_options(choices)
    listed = ", ".join(map(json.dumps, options))
    return await _ask(client, call, _choice_schema(options), name,
                      lambda text: parse_choice(text, options), urgent=urgent,
                      instruct=instruct, parse_retries=parse_retries,
                      extra_instruction=f'Put exactly one of {listed} in "choice".')


async def _ask(client: ModelClient, call: ModelCall, schema: Schema, name: str,
               interpret: Callable[[str], StructuredResult], *, urgent: bool, instruct: bool,
               parse_retries: int, extra_instruction: str = "",
               on_text: Callable[[str], object] | None = None) -> StructuredResult:
    await load_litellm_async()  # before _format_level, which reads litellm's model list
    messages = [dict(m) for m in call.messages]
    if instruct:
        text = schema_instructions(schema)
        messages = _with_instructions(messages, f"{text}\n{extra_instruction}".rstrip())
    level = _format_level(call.model, call.api_base)
    sent = _sent_schema(call.model, schema)
    calls: list[CallResult] = []
    correction: list[dict[str, str]] = []
    refusal: CallResult | None = None
    parses_left = parse_retries
    while True:
        asked = _call_with(call, messages + correction, _format(_FORMATS[level], sent, name))
        if on_text is None and _coevo_provider(call.model) != LOCAL_PROVIDER:
            answer = await client.complete(asked, urgent=urgent)
        else:
            # The offline model writes a long answer for minutes on a loaded machine: a
            # stream's time limit is per piece, a completion's for the whole answer (which
            # then failed and started again from nothing, six times).
            answer = await _streamed(client, asked, urgent, on_text or _ignore)
        calls.append(answer)
        if not answer.ok:
            if _FORMATS[level] is not None and _refused_format(answer):
                refusal = refusal or answer
                level += 1
                continue
            # A weaker format refused too: the format was not the problem; say the first.
            first = refusal if refusal is not None and _refused_format(answer) else answer
            return StructuredResult(error=first.error, calls=tuple(calls))
        if refusal is not None:
            _refused[(call.model, call.api_base)] = level
            refusal = None
        result = interpret(answer.text)
        spent = sum(c.attempts for c in calls)
        if result.ok or parses_left <= 0 or spent >= client.retry.max_attempts:
            error = result.error
            if error is not None and len(calls) > 1:
                error = f"{error} (after {len(calls)} answers)"
            return replace(result, error=error, text=answer.text, calls=tuple(calls))
        parses_left -= 1
        correction = _correction(answer.text, result.error or "")


def _ignore(text: str) -> None:
    """Text nobody shows."""


async def _streamed(client: ModelClient, call: ModelCall, urgent: bool,
                    on_text: Callable[[str], object]) -> CallResult:
    """`client.complete(call)` by streaming, each piece of text handed to `on_text`."""
    events = client.stream(call, urgent=urgent)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                on_text(event.text)
            elif isinstance(event, StreamDone):
                return event.result
    raise RuntimeError("the stream ended without its result")  # client.stream always ends so


def stream_json_items(client: ModelClient, call: ModelCall, schema: Schema, *,
                      array_key: str | None = None, name: str = "answer",
                      urgent: bool = False, instruct: bool = True,
                      parse_retries: int = DEFAULT_PARSE_RETRIES
                      ) -> AsyncIterator[ItemEvent]:
    """Stream `call`, asking for JSON matching `schema`, and yield each item of its array
    as soon as the item is complete: `JsonItem` if it matches the array's ``items``
    schema, `JsonItemRejected` (with the reason) if not, then one `JsonItemsDone`.
    `TextDelta` and `StreamRetry` pass through (see `ItemEvent`).

    The array is `schema` itself if it is an array schema, else its property `array_key`
    (by default its only array-typed property). Use with `contextlib.aclosing` (or cancel
    the task): closing stops the model's stream at once. If the stream fails and starts
    again, items already delivered stay delivered and the new answer's first as many
    items are skipped (a greedy model writes the same ones again; a sampling model's
    replacements would grow the batch past what was asked). A schema without one array
    to stream raises ValueError here, at the call."""
    shape = _array_shape(schema, array_key)
    return _stream_items(client, call, schema, shape, name=name, urgent=urgent,
                         instruct=instruct, parse_retries=parse_retries)


async def _stream_items(client: ModelClient, call: ModelCall, schema: Schema,
                        shape: tuple[Schema, str | None, int | None], *, name: str,
                        urgent: bool, instruct: bool, parse_retries: int
                        ) -> AsyncIterator[ItemEvent]:
    items_schema, key, max_items = shape
    await load_litellm_async()
    messages = [dict(m) for m in call.messages]
    if instruct:
        messages = _with_instructions(messages, schema_instructions(schema))
    level = _format_level(call.model, call.api_base)
    sent = _sent_schema(call.model, schema)
    calls: list[CallResult] = []
    correction: list[dict[str, str]] = []
    refusal: CallResult | None = None
    parses_left = parse_retries
    delivered: list[Any] = []
    problems: list[str] = []
    seen = 0  # positions of the answer already yielded (as items or rejections)
    label = key or "item"

    def judge(item_text: str, position: int) -> JsonItem | JsonItemRejected:
        where = f"{label} #{position}"
        if max_items is not None and len(delivered) >= max_items:
            problem = f"{where}: beyond the {max_items} asked for: dropped"
            problems.append(problem)
            return JsonItemRejected(position, problem)
        try:
            value = _parse_fragment(item_text)
        except _NotJson as exc:
            problem = f"{where}: not JSON ({exc}): dropped"
            problems.append(problem)
            return JsonItemRejected(position, problem)
        found: list[str] = []
        try:
            value = _check(value, items_schema, where, found)
        except _Invalid as exc:
            problem = f"{exc}: dropped"
            problems.append(problem)
            return JsonItemRejected(position, problem)
        problems.extend(found)
        delivered.append(value)
        return JsonItem(position, value)

    while True:
        scanner = ArrayItemScanner(key)
        position = 0
        done: CallResult | None = None
        request = _call_with(call, messages + correction,
                             _format(_FORMATS[level], sent, name))
        async with contextlib.aclosing(client.stream(request, urgent=urgent)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    yield event
                    for item_text in scanner.feed(event.text):
                        position += 1
                        if position > seen:
                            seen = position
                            yield judge(item_text, position)
                elif isinstance(event, StreamRetry):
                    scanner = ArrayItemScanner(key)
                    position = 0
                    yield event
                elif isinstance(event, StreamDone):
                    done = event.result
        assert done is not None  # the client always ends with StreamDone
        calls.append(done)
        if not done.ok:
            if not delivered and _FORMATS[level] is not None and _refused_format(done):
                refusal = refusal or done
                level += 1
                yield StreamRetry(len(calls), "the server refused the response format;"
                                  " asking without it", 0.0)
                continue
            first = refusal if refusal is not None and _refused_format(done) else done
            if delivered:
                problems.append(f"the answer stopped early: {done.error}")
                break
            yield JsonItemsDone(StructuredResult(error=first.error, text="",
                                                 calls=tuple(calls)))
            return
        if refusal is not None:
            _refused[(call.model, call.api_base)] = level
            refusal = None
        end = scanner.finish()
        whole: StructuredResult | None = None
        if position == 0 and not delivered:
            # The scanner found no item (prose with brackets before the JSON, a lone
            # object...): the whole-answer parser may still find them.
            whole = parse_json(done.text, schema)
            if whole.ok:
                values = whole.value if isinstance(whole.value, list) else (
                    whole.value.get(key, []) if key else [])
                for value in values:
                    position += 1
                    seen = position
                    delivered.append(value)
                    yield JsonItem(position, value)
                problems.extend(whole.problems)
        elif end.cut:
            problems.append(_CUT_ITEM if end.partial else _CUT)
        if delivered or (whole is not None and whole.ok):
            break  # items, or an empty array the schema allows (minItems says otherwise)
        if seen:
            unusable = f"none of the {seen} items matches the schema ({problems[0]})"
        else:
            whole = whole or parse_json(done.text, schema)
            unusable = whole.error or "the answer has no items"
        spent = sum(c.attempts for c in calls)
        if parses_left <= 0 or spent >= client.retry.max_attempts:
            if len(calls) > 1:
                unusable = f"{unusable} (after {len(calls)} answers)"
            yield JsonItemsDone(StructuredResult(error=unusable, text=done.text,
                                                 calls=tuple(calls)))
            return
        parses_left -= 1
        correction = _correction(done.text, unusable)
        seen, problems = 0, []
        yield StreamRetry(len(calls), f"the answer was not usable ({unusable}); asking again",
                          0.0)
    min_items = _array_schema(schema, key).get("minItems")
    if min_items and len(delivered) < min_items:
        problems.append(f"{len(delivered)} usable items, fewer than the {min_items} asked for")
    text = calls[-1].text
    yield JsonItemsDone(StructuredResult(value=list(delivered), problems=tuple(problems),
                                         text=text, calls=tuple(calls)))


def _array_schema(schema: Schema, key: str | None) -> Schema:
    if key is None:
        return schema
    found = (schema.get("properties") or {}).get(key)
    if not isinstance(found, Mapping):
        raise ValueError(f"stream_json_items: the schema has no property {key!r}")
    return found


def _array_shape(schema: Schema, array_key: str | None
                 ) -> tuple[Schema, str | None, int | None]:
    """(the items' schema, the wrapper's key or None, maxItems) of the streamed array."""
    key = array_key if schema.get("type") != "array" else None
    if schema.get("type") == "object" and key is None:
        key = _only_array_key(schema)
        if key is None:
            raise ValueError("stream_json_items: the schema has no single array property;"
                             " name it with array_key")
    elif schema.get("type") not in ("array", "object"):
        raise ValueError("stream_json_items needs an array schema or an object wrapping one")
    array = _array_schema(schema, key)
    if array.get("type") != "array":
        raise ValueError(f"stream_json_items: property {key!r} is not an array")
    return array.get("items") or {}, key, array.get("maxItems")


def _only_array_key(schema: Schema) -> str | None:
    keys = [k for k, v in (schema.get("properties") or {}).items()
            if isinstance(v, Mapping) and v.get("type") == "array"]
    return keys[0] if len(keys) == 1 else None


# ---------------------------------------------------------------------- choices
def _choice_options(choices: Sequence[str]) -> tuple[str, ...]:
    options = tuple(choices)
    if not options:
        raise ValueError("choose needs at least one choice")
    if len({_normal(o) for o in options}) != len(options):
        raise ValueError(f"choices differ only in case or punctuation: {options}")
    return options


def _choice_schema(options: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {"choice": {"type": "string",
                                                        "enum": list(options)}},
            "required": ["choice"], "additionalProperties": False}


def _normal(text: str) -> str:
    """A choice as compared: no surrounding space, quotes, markdown or end punctuation,
    inner whitespace single, case folded."""
    text = text.strip().strip("\"'`*_ \t\r\n").rstrip(".!,;:").strip()
    return " ".join(text.split()).casefold()


def parse_choice(text: str, choices: Sequence[str]) -> StructuredResult:
    """Which of `choices` the answer `text` names: ``{"choice": "bad"}``, ``"Bad"``,
    ``bad.``, ``**BAD**``, or a sentence naming exactly one choice. Error when it names
    none or several."""
    options = _choice_options(choices)
    by_normal = {_normal(o): o for o in options}
    structured = parse_json(text, _choice_schema(options))
    if structured.ok:
        return StructuredResult(value=structured.value["choice"])
    direct = by_normal.get(_normal(text))
    if direct is not None:
        return StructuredResult(value=direct)
    # JSON of another shape: a string, or an object whose string values name one choice.
    named = set()
    for candidate in _candidates(text):
        values = (candidate.value.values() if isinstance(candidate.value, dict)
                  else [candidate.value])
        named |= {by_normal[_normal(v)] for v in values
                  if isinstance(v, str) and _normal(v) in by_normal}
    if not named:
        named = _choices_in_prose(text, options)
    if len(named) == 1:
        return StructuredResult(value=named.pop())
    shown = _snippet(text)
    if named:
        listed = ", ".join(o for o in options if o in named)
        return StructuredResult(error=f"the answer names more than one choice ({listed}):"
                                      f" {shown}")
    if not text.strip():
        return StructuredResult(error="the answer is empty")
    return StructuredResult(error=f"the answer is not one of {', '.join(options)}: {shown}")


def _choices_in_prose(text: str, options: Sequence[str]) -> set[str]:
    """Choices named as whole words in `text`, longest first (so "not bad" hides "bad")."""
    found: set[str] = set()
    rest = text
    for option in sorted(options, key=len, reverse=True):
        words = r"\s+".join(re.escape(w) for w in option.split())
        pattern = re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
        if pattern.search(rest):
            found.add(option)
            rest = pattern.sub(" ", rest)
    return found


def _snippet(text: str, size: int = 60) -> str:
    line = " ".join(text.split())
    return repr(line if len(line) <= size else line[:size - 1] + "…")


# ---------------------------------------------------------------------- parsing
_CUT = "the answer was cut off"
_CUT_ITEM = "the answer was cut off (its last, incomplete item was dropped)"
_MAX_STARTS = 64  # brackets tried as the start of the JSON in one answer
_MAX_DEPTH = 100


class _NotJson(Exception):
    """The text at hand is not (lenient) JSON; the message says where it went wrong."""


class _Cut(Exception):
    """The text ended inside a value; `partial` is what of it is complete (or _NOTHING)."""

    def __init__(self, partial: Any) -> None:
        super().__init__("cut off")
        self.partial = partial


_NOTHING = object()
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False,
             "None": None}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\",
            '"': '"', "'": "'"}


class _LenientParser:
    """JSON, plus what models write around it: trailing or missing commas, single-quoted
    strings, bare keys, Python literals, comments. A text that ends inside a value yields
    its complete part (`cut`); an array drops its incomplete last element
    (`dropped_item`)."""

    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self.pos = start
        self.cut = False
        self.dropped_item = False

    def parse(self) -> Any:
        try:
            return self._value(0)
        except _Cut as cut:
            if cut.partial is _NOTHING:
                raise _NotJson("it ends before any complete value") from None
            self.cut = True
            return cut.partial
        except RecursionError:
            raise _NotJson("nested too deeply") from None

    def _skip(self) -> None:
        text, size = self.text, len(self.text)
        while self.pos < size:
            ch = text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = size if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = size if end < 0 else end + 2
            else:
                return

    def _value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _NotJson("nested too deeply")
        self._skip()
        text = self.text
        if self.pos >= len(text):
            raise _Cut(_NOTHING)
        ch = text[self.pos]
        if ch == "{":
            return self._object(depth)
        if ch == "[":
            return self._array(depth)
        if ch in "\"'":
            return self._string()
        number = _NUMBER.match(text, self.pos)
        if number:
            self.pos = number.end()
            if self.pos >= len(text):
                raise _Cut(_NOTHING)  # "12" at the very end may be the start of "123"
            literal = number.group()
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        word = _WORD.match(text, self.pos)
        if word and word.group() in _LITERALS:
            self.pos = word.end()
            return _LITERALS[word.group()]
        if word and word.end() == len(text) and any(
                lit.startswith(word.group()) for lit in _LITERALS):
            raise _Cut(_NOTHING)
        raise _NotJson(f"unexpected {_snippet(text[self.pos:], 20)} at character {self.pos}")

    def _object(self, depth: int) -> dict[str, Any]:
        self.pos += 1
        result: dict[str, Any] = {}
        text = self.text
        while True:
            self._skip()
            if self.pos >= len(text):
                raise _Cut(result)
            ch = text[self.pos]
            if ch == "}":
                self.pos += 1
                return result
            if ch == ",":
                self.pos += 1
                continue
            try:
                key = self._key()
            except _Cut:
                raise _Cut(result) from None
            self._skip()
            if self.pos >= len(text):
                raise _Cut(result)
            if text[self.pos] != ":":
                raise _NotJson(f"expected ':' after key {key!r}")
            self.pos += 1
            try:
                result[key] = self._value(depth + 1)
            except _Cut as cut:
                if cut.partial is not _NOTHING:
                    result[key] = cut.partial
                raise _Cut(result) from None

    def _key(self) -> str:
        ch = self.text[self.pos]
        if ch in "\"'":
            return self._string()
        word = _WORD.match(self.text, self.pos)
        if word is None:
            raise _NotJson(f"unexpected {_snippet(self.text[self.pos:], 20)} where a key"
                           " should be")
        if word.end() == len(self.text):
            raise _Cut(_NOTHING)
        self.pos = word.end()
        return word.group()

    def _array(self, depth: int) -> list[Any]:
        self.pos += 1
        result: list[Any] = []
        text = self.text
        while True:
            self._skip()
            if self.pos >= len(text):
                raise _Cut(result)
            ch = text[self.pos]
            if ch == "]":
                self.pos += 1
                return result
            if ch == ",":
                self.pos += 1
                continue
            try:
                result.append(self._value(depth + 1))
            except _Cut:
                self.dropped_item = True
                raise _Cut(result) from None

    def _string(self) -> str:
        text = self.text
        quote = text[self.pos]
        index = self.pos + 1
        size = len(text)
        while index < size:
            ch = text[index]
            if ch == "\\":
                index += 2
                continue
            if ch == quote:
                break
            index += 1
        else:
            raise _Cut(_NOTHING)
        raw = text[self.pos + 1:index]
        self.pos = index + 1
        if quote == '"':
            try:
                return json.loads(f'"{raw}"', strict=False)
            except ValueError:
                pass
        return _unescape(raw)


def _unescape(raw: str) -> str:
    """Backslash escapes of a string the json module refused (an unknown escape such as
    ``\\d`` keeps its backslash: the model most likely meant one)."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    index = 0
    while index < len(raw):
        ch = raw[index]
        if ch != "\\" or index + 1 == len(raw):
            out.append(ch)
            index += 1
            continue
        following = raw[index + 1]
        digits = raw[index + 2:index + 6]
        if following == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", digits):
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(following, "\\" + following))
        index += 2
    return "".join(out)


@dataclass(frozen=True)
class _Candidate:
    value: Any
    cut: bool = False
    dropped_item: bool = False


def _candidates(text: str) -> Iterator[_Candidate]:
    """The JSON values in `text`: the whole text if it is JSON, else each value that
    starts at a bracket (outside values already found), in order."""
    try:
        yield _Candidate(json.loads(text))
        return
    except (ValueError, RecursionError):
        pass
    tried = 0
    index = 0
    while tried < _MAX_STARTS:
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        tried += 1
        parser = _LenientParser(text, start)
        try:
            value = parser.parse()
        except _NotJson:
            index = start + 1
            continue
        yield _Candidate(value, parser.cut, parser.dropped_item)
        index = max(parser.pos, start + 1)


def _parse_fragment(text: str) -> Any:
    """One complete JSON value (a streamed item), leniently; _NotJson if it is not."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    parser = _LenientParser(text)
    value = parser.parse()
    parser._skip()
    if parser.cut or parser.pos < len(text):
        raise _NotJson("it is not one complete value")
    return value


def parse_json(text: str, schema: Schema) -> StructuredResult:
    """Read the JSON in a model's answer `text` tolerantly and validate it against
    `schema` (see the module docstring); no model call."""
    if not text.strip():
        return StructuredResult(error="the answer is empty", text=text)
    first_failure: str | None = None
    for candidate in _candidates(text.strip()):
        failure = None
        for value in _shapes(candidate.value, schema):
            result = validate(value, schema)
            if result.ok:
                notes = ()
                if candidate.cut:
                    notes = (_CUT_ITEM if candidate.dropped_item else _CUT,)
                return replace(result, problems=result.problems + notes, text=text)
            failure = result.error  # the reshaped value's says more than "got an array"
        first_failure = first_failure or failure
    if first_failure is not None:
        return StructuredResult(error=f"the answer does not match the schema: {first_failure}",
                                text=text)
    return StructuredResult(error=f"the answer is not JSON: {_snippet(text)}", text=text)


def _shapes(value: Any, schema: Schema) -> Iterator[Any]:
    """`value`, then, if it is an array where `schema` wants an object wrapping one array
    (or the reverse), `value` in the shape the schema wants."""
    yield value
    kind = schema.get("type")
    if kind == "object" and isinstance(value, list):
        key = _only_array_key(schema)
        if key is not None:
            yield {key: value}
    elif kind == "array" and isinstance(value, dict):
        arrays = [v for v in value.values() if isinstance(v, list)]
        if len(arrays) == 1:
            yield arrays[0]


# ---------------------------------------------------------------------- validation
class _Invalid(Exception):
    """A value does not match its schema; the message says where and why."""


def validate(value: Any, schema: Schema) -> StructuredResult:
    """`value` checked against `schema` (the subset in the module docstring): what matches,
    with what did not left out and listed in `problems`; `error` if nothing is usable."""
    problems: list[str] = []
    try:
        kept = _check(value, schema, "", problems)
    except _Invalid as exc:
        return StructuredResult(error=str(exc))
    return StructuredResult(value=kept, problems=tuple(problems))


def _check(value: Any, schema: Schema, where: str, problems: list[str]) -> Any:
    kinds = schema.get("type")
    if isinstance(kinds, list):
        for kind in kinds:
            try:
                return _check(value, {**schema, "type": kind}, where, problems)
            except _Invalid:
                continue
        raise _Invalid(f"{_at(where)}expected {' or '.join(map(_name, kinds))}, got"
                       f" {_describe(value)}")
    if kinds is not None:
        value = _coerce(value, kinds, where)
    if "enum" in schema:
        value = _enum(value, schema["enum"], where)
    if kinds == "object":
        return _check_object(value, schema, where, problems)
    if kinds == "array":
        return _check_array(value, schema, where, problems)
    if kinds == "string" and len(value) < schema.get("minLength", 0):
        raise _Invalid(f"{_at(where)}shorter than {schema['minLength']} characters")
    return value


def _at(where: str) -> str:
    return f"{where}: " if where else ""


_NAMES = {"object": "an object", "array": "an array", "string": "a string",
          "integer": "an integer", "number": "a number", "boolean": "true or false",
          "null": "null"}


def _name(kind: str) -> str:
    return _NAMES.get(kind, kind)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {_snippet(value, 30)}"
    return "an object" if isinstance(value, dict) else "an array"


def _coerce(value: Any, kind: str, where: str) -> Any:
    """`value` as `kind`, allowing the cheap conversions in the module docstring."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        if isinstance(value, str):
            return value
        if is_number:
            return json.dumps(value)
    elif kind == "integer":
        if is_number and float(value).is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
    elif kind == "number":
        if is_number:
            return value
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return json.loads(value.strip())
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind == "null":
        if value is None:
            return None
    elif kind == "object":
        if isinstance(value, dict):
            return value
    elif kind == "array":
        if isinstance(value, list):
            return value
    else:
        raise ValueError(f"unsupported schema type {kind!r}")
    raise _Invalid(f"{_at(where)}expected {_name(kind)}, got {_describe(value)}")


def _enum(value: Any, options: Sequence[Any], where: str) -> Any:
    if value in options and any(type(value) is type(o) for o in options if o == value):
        return value
    if isinstance(value, str):
        wanted = _normal(value)
        for option in options:
            if isinstance(option, str) and _normal(option) == wanted:
                return option
    listed = ", ".join(o if isinstance(o, str) else json.dumps(o) for o in options)
    raise _Invalid(f"{_at(where)}{_snippet(str(value), 30)} is not one of {listed}")


def _check_object(value: dict[str, Any], schema: Schema, where: str,
                  problems: list[str]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or ())
    closed = schema.get("additionalProperties") is False
    folded = {k.casefold(): k for k in properties}
    local: list[str] = []
    kept: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in properties else folded.get(str(key).casefold())
        if name is None or (name != key and name in value):
            if not closed:
                kept[key] = item
            continue
        place = f"{where}.{name}" if where else name
        try:
            kept[name] = _check(item, properties[name], place, local)
        except _Invalid as exc:
            if name in required:
                raise
            local.append(f"{exc}: left out")
    missing = [k for k in required if k not in kept]
    if missing:
        names = ", ".join(repr(k) for k in missing)
        raise _Invalid(f"{_at(where)}{names} {'is' if len(missing) == 1 else 'are'} missing")
    problems.extend(local)
    return kept


def _check_array(value: list[Any], schema: Schema, where: str,
                 problems: list[str]) -> list[Any]:
    items: Mapping[str, Any] | None = schema.get("items")
    local: list[str] = []
    kept: list[Any] = []
    label = where or "item"
    for index, item in enumerate(value, start=1):
        if items is None:
            kept.append(item)
            continue
        try:
            kept.append(_check(item, items, f"{label} #{index}", local))
        except _Invalid as exc:
            local.append(f"{exc}: dropped")
    if value and not kept:
        first = local[0].removesuffix(": dropped")
        raise _Invalid(f"{_at(where)}none of its {len(value)} items is usable ({first})")
    most, least = schema.get("maxItems"), schema.get("minItems")
    if most is not None and len(kept) > most:
        local.append(f"{label}: {len(kept)} items, kept the first {most}")
        kept = kept[:most]
    if least and len(kept) < least:
        if not kept:
            raise _Invalid(f"{_at(where)}no items, needs at least {least}")
        local.append(f"{label}: {len(kept)} usable items, fewer than the {least} asked for")
    problems.extend(local)
    return kept


# ---------------------------------------------------------------------- streaming
_ARRAY_STARTS = frozenset("{[\"'-0123456789tfn]")
_SEEK, _SCAN, _DONE = range(3)


@dataclass(frozen=True)
class ScanEnd:
    """Where an `ArrayItemScanner` stopped: whether it `found` the array, whether the
    array was `closed`, and the text of an item left incomplete (`partial`), if any."""

    found: bool
    closed: bool
    partial: str | None

    @property
    def cut(self) -> bool:
        """The answer ended inside the array."""
        return self.found and not self.closed


@dataclass
class ArrayItemScanner:
    """Finds the items of a JSON array in text that arrives in pieces, in one pass.

    The array is the first top-level one, or the value of `key` in a top-level object (of
    its first array-valued member when `key` is None). Prose or a code fence before the
    JSON is skipped: a bracket starts the JSON only if what follows it can start JSON.
    `feed(piece)` returns the texts of the items that `piece` completed, in order: an
    object or array item when it closes, a string when its quote closes, a number or
    literal at the comma or bracket after it. `finish()` says where it stopped."""

    key: str | None = None
    _state: int = _SEEK
    _pending: str | None = None
    _stack: list[str] = field(default_factory=list)
    _depth: int | None = None  # stack size directly inside the array of items
    _quote: str | None = None
    _escape: bool = False
    _item: list[str] | None = None
    _string: list[str] | None = None  # a string at the wrapper's level (maybe a key)
    _last_string: str | None = None
    _member: str | None = None  # the wrapper's key whose value is being read
    _found: bool = False
    _closed: bool = False

    def feed(self, piece: str) -> list[str]:
        """The items completed by `piece` (their JSON text)."""
        out: list[str] = []
        for ch in piece:
            if self._state == _SCAN:
                self._scan(ch, out)
            elif self._state == _SEEK:
                self._seek(ch, out)
            else:
                break
        return out

    def finish(self) -> ScanEnd:
        """Where the text ended (call once it has all been fed)."""
        partial = "".join(self._item).strip() if self._item else None
        return ScanEnd(self._found, self._closed, partial or None)

    def _seek(self, ch: str, out: list[str]) -> None:
        if self._pending is not None:
            if ch in " \t\r\n":
                return
            opener, self._pending = self._pending, None
            if ch in (_ARRAY_STARTS if opener == "[" else "\"'}"):
                self._state = _SCAN
                self._stack.append(opener)
                if opener == "[":
                    self._depth, self._found = 1, True
                self._scan(ch, out)
                return
        if ch in "{[":
            self._pending = ch

    def _scan(self, ch: str, out: list[str]) -> None:
        if self._quote is not None:
            self._in_string(ch, out)
            return
        if ch in " \t\r\n":
            if self._item is not None:
                self._item.append(ch)
            return
        stack = self._stack
        if self._depth is not None and len(stack) == self._depth:  # between items
            if ch in ",]":
                if self._item is not None:
                    self._complete(out)
                if ch == "]":
                    stack.pop()
                    self._closed = True
                    self._state = _DONE
                return
            if self._item is None:
                self._item = []
        if self._item is not None:
            self._item.append(ch)
        at_wrapper = self._depth is None and stack == ["{"]
        if ch in "\"'":
            self._quote = ch
            if at_wrapper:
                self._string = []
        elif ch in "{[":
            if at_wrapper and ch == "[" and (self.key is None or (
                    self._member or "").casefold() == self.key.casefold()):
                self._depth, self._found = 2, True
            stack.append(ch)
        elif ch in "}]":
            if stack:
                stack.pop()
            if self._item is not None and len(stack) == self._depth:
                self._complete(out)
            elif not stack:
                self._state = _DONE  # the top-level value ended without the array
        elif at_wrapper and ch == ":":
            self._member = self._last_string
        elif at_wrapper and ch == ",":
            self._member = None

    def _in_string(self, ch: str, out: list[str]) -> None:
        if self._item is not None:
            self._item.append(ch)
        if self._escape:
            self._escape = False
        elif ch == "\\":
            self._escape = True
        elif ch == self._quote:
            self._quote = None
            if self._string is not None:
                self._last_string, self._string = "".join(self._string), None
            if self._item is not None and len(self._stack) == self._depth:
                self._complete(out)
            return
        if self._string is not None:
            self._string.append(ch)

    def _complete(self, out: list[str]) -> None:
        assert self._item is not None
        text = "".join(self._item).strip()
        self._item = None
        if text:
            out.append(text)
