"""Structured output (coevo_tui/llm/structured.py): tolerant parsing and validation of
answers, choices, the response_format each provider gets, and complete_json/choose against
the fake provider and the fake OpenAI-compatible server, retries of unusable answers
counted at the fake."""

from __future__ import annotations

import json
import random

import pytest
from fake_model_server import FakeModelServer
from llm_fixtures import FAST_RETRY, FAST_TIMEOUT

from coevo_tui.llm import structured
from coevo_tui.llm.client import ModelCall, ModelClient, RetryPolicy
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.llm.structured import (
    choose,
    complete_json,
    parse_choice,
    parse_json,
    response_format_for,
    schema_instructions,
    validate,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'Logging.async_success_handler' was never awaited:RuntimeWarning")

CASE = {"type": "object",
        "properties": {"input": {"type": "string", "minLength": 1},
                       "rule": {"type": "integer"},
                       "reason": {"type": "string"}},
        "required": ["input", "rule", "reason"], "additionalProperties": False}
CASES = {"type": "object",
         "properties": {"cases": {"type": "array", "items": CASE, "minItems": 1,
                                  "maxItems": 5}},
         "required": ["cases"], "additionalProperties": False}
VERDICT = {"type": "object",
           "properties": {"verdict": {"type": "string", "enum": ["good", "bad", "unsure"]},
                          "reason": {"type": "string"},
                          "confidence": {"type": "number"}},
           "required": ["verdict"]}
VERDICTS = ["good", "bad", "unsure"]


def _case(n: int) -> dict[str, object]:
    return {"input": f"input {n}", "rule": n, "reason": f"probes rule {n}"}


def _cases_json(*numbers: int) -> str:
    return json.dumps({"cases": [_case(n) for n in numbers]})


@pytest.fixture(autouse=True)
def _forget_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no remembered format refusals."""
    monkeypatch.setattr(structured, "_refused", {})


# ---------------------------------------------------------------------- parsing
@pytest.mark.parametrize("text", [
    _cases_json(1, 2),
    f"```json\n{_cases_json(1, 2)}\n```",
    f"Sure! Here are the cases you asked for:\n\n```\n{_cases_json(1, 2)}\n```\nGood luck.",
    f"Following the format [see above] and {{this}}: {_cases_json(1, 2)} -- done",
    _cases_json(1, 2).replace("}]", "},]").replace('2"}', '2",}'),
    "{'cases': [{'input': 'input 1', rule: 1, 'reason': 'probes rule 1'},"
    " {input: 'input 2', 'rule': 2, 'reason': 'probes rule 2',}],}",
    '{"cases": [ // the cases\n/* first */ {"input": "input 1", "rule": 1, "reason":'
    ' "probes rule 1"}, {"input": "input 2", "rule": 2, "reason": "probes rule 2"}]}',
], ids=["plain", "fence", "prose-and-fence", "brackets-in-prose", "trailing-commas",
        "single-quotes-and-bare-keys", "comments"])
def test_the_json_is_found_and_read_whatever_surrounds_it(text: str) -> None:
    result = parse_json(text, CASES)
    assert result.complete, result.report()
    assert result.value == {"cases": [_case(1), _case(2)]}


def test_a_cut_off_answer_keeps_its_complete_items_and_says_the_last_was_dropped() -> None:
    text = _cases_json(1, 2, 3)
    cut = text[:text.index('"input 3"') + 5]
    result = parse_json(cut, CASES)
    assert result.ok
    assert result.value == {"cases": [_case(1), _case(2)]}
    assert result.problems == ("the answer was cut off (its last, incomplete item was"
                               " dropped)",)


def test_an_answer_cut_inside_its_first_item_has_nothing_usable() -> None:
    result = parse_json('{"cases": [{"input": "input 1", "ru', CASES)
    assert not result.ok
    assert result.value is None
    assert result.error is not None and "\n" not in result.error


def test_items_of_the_wrong_type_or_missing_fields_are_dropped_and_reported() -> None:
    answer = {"cases": [_case(1),
                        {"input": "x", "rule": "three", "reason": "r"},
                        {"input": "y", "reason": "no rule"},
                        "just a string",
                        _case(5)]}
    result = parse_json(json.dumps(answer), CASES)
    assert result.ok and not result.complete
    assert result.value == {"cases": [_case(1), _case(5)]}
    assert result.problems == (
        "cases #2.rule: expected an integer, got the string 'three': dropped",
        "cases #3: 'rule' is missing: dropped",
        "cases #4: expected an object, got the string 'just a string': dropped",
    )
    line = result.report()
    assert line is not None and "\n" not in line and "cases #3" in line


def test_a_top_level_answer_missing_a_required_field_is_an_error_naming_it() -> None:
    result = parse_json('{"reason": "fine"}', VERDICT)
    assert result.error == "the answer does not match the schema: 'verdict' is missing"
    assert result.value is None


def test_extra_fields_are_dropped_from_closed_objects_and_kept_in_open_ones() -> None:
    closed = parse_json(json.dumps({"cases": [{**_case(1), "note": "extra"}],
                                    "comment": "x"}), CASES)
    assert closed.complete and closed.value == {"cases": [_case(1)]}
    opened = parse_json('{"verdict": "bad", "extra": [1, 2]}', VERDICT)
    assert opened.complete and opened.value == {"verdict": "bad", "extra": [1, 2]}


def test_cheap_coercions_are_made_silently() -> None:
    schema = {"type": "object", "properties": {
        "n": {"type": "integer"}, "m": {"type": "integer"}, "s": {"type": "string"},
        "b": {"type": "boolean"}, "x": {"type": "number"},
        "v": {"type": "string", "enum": VERDICTS}}}
    result = validate({"n": "3", "m": 4.0, "s": 12, "b": "True", "x": "2.5", "V": " Bad "},
                      schema)
    assert result.complete
    assert result.value == {"n": 3, "m": 4, "s": "12", "b": True, "x": 2.5, "v": "bad"}
    assert validate(True, {"type": "integer"}).error == "expected an integer, got true"
    assert validate(2.5, {"type": "integer"}).error == (
        "expected an integer, got the number 2.5")


def test_an_optional_field_that_does_not_match_is_left_out_and_reported() -> None:
    result = parse_json('{"verdict": "BAD", "confidence": "high"}', VERDICT)
    assert result.ok
    assert result.value == {"verdict": "bad"}
    assert result.problems == (
        "confidence: expected a number, got the string 'high': left out",)


def test_a_value_outside_the_enum_fails_the_object() -> None:
    result = parse_json('{"verdict": "maybe"}', VERDICT)
    assert result.error == ("the answer does not match the schema: verdict: 'maybe' is not"
                            " one of good, bad, unsure")


def test_max_items_keeps_the_first_and_min_items_is_a_problem_unless_none_is_left() -> None:
    many = parse_json(_cases_json(1, 2, 3, 4, 5, 6, 7), CASES)
    assert [c["rule"] for c in many.value["cases"]] == [1, 2, 3, 4, 5]
    assert many.problems == ("cases: 7 items, kept the first 5",)
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 3}
    few = parse_json("[1, 2]", schema)
    assert few.ok and few.value == [1, 2]
    assert few.problems == ("item: 2 usable items, fewer than the 3 asked for",)
    assert parse_json("[]", schema).error == (
        "the answer does not match the schema: no items, needs at least 3")
    assert parse_json('["a", "b"]', schema).error == (
        "the answer does not match the schema: none of its 2 items is usable (item #1:"
        " expected an integer, got the string 'a')")


def test_a_bare_array_fills_a_wrapper_and_a_wrapper_gives_its_array() -> None:
    bare = parse_json(json.dumps([_case(1)]), CASES)
    assert bare.complete and bare.value == {"cases": [_case(1)]}
    wrapped = parse_json(json.dumps({"items": [_case(1)]}),
                         {"type": "array", "items": CASE})
    assert wrapped.complete and wrapped.value == [_case(1)]


@pytest.mark.parametrize(("text", "error"), [
    ("", "the answer is empty"),
    ("   \n ", "the answer is empty"),
    ("I am sorry, I cannot produce cases for this policy.",
     "the answer is not JSON: 'I am sorry, I cannot produce cases for this policy.'"),
    ("{not json at all", "the answer is not JSON: '{not json at all'"),
    ('["a list", "of strings"]', "the answer does not match the schema: expected an object,"
                                 " got an array"),
])
def test_an_unusable_answer_is_one_clear_line(text: str, error: str) -> None:
    result = parse_json(text, VERDICT)
    assert result.error == error
    assert result.value is None and not result.ok


def test_the_parser_never_raises_on_garbage() -> None:
    rng = random.Random(11)
    alphabet = '{}[]":,\'\\ abc123-.eEtrufalsn\n`/*'
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        result = parse_json(text, CASES)
        assert result.ok or (result.error and "\n" not in result.error)
    deep = "[" * 5000 + "]" * 5000
    assert parse_json(deep, CASES).error is not None
    assert parse_json("[" * 5000, CASES).error is not None


def test_a_long_report_stays_one_short_line() -> None:
    bad = [{"input": "x", "rule": f"r{i}", "reason": "y"} for i in range(40)]
    result = parse_json(json.dumps({"cases": [_case(1), *bad]}), {
        "type": "object", "properties": {"cases": {"type": "array", "items": CASE}}})
    line = result.report()
    assert line is not None and "\n" not in line and len(line) <= 300
    assert line.startswith("cases #2.rule: expected an integer")


# ---------------------------------------------------------------------- choices
@pytest.mark.parametrize("text", [
    '{"choice": "bad"}', "bad", "  BAD \n", '"Bad"', "'bad'", "**Bad**.", "`bad`",
    '{"verdict": "Bad", "reason": "insults a player"}', "The output is bad.",
    "```json\n{\"choice\": \"BAD\"}\n```",
])
def test_a_choice_is_read_from_exact_and_sloppy_answers(text: str) -> None:
    assert parse_choice(text, VERDICTS).value == "bad"


@pytest.mark.parametrize(("text", "error"), [
    ("maybe", "the answer is not one of good, bad, unsure: 'maybe'"),
    ("", "the answer is empty"),
    ("It is good, but also bad.",
     "the answer names more than one choice (good, bad): 'It is good, but also bad.'"),
    ('{"choice": "excellent"}', "the answer is not one of good, bad, unsure:"
                                " '{\"choice\": \"excellent\"}'"),
])
def test_an_impossible_choice_is_one_clear_error(text: str, error: str) -> None:
    result = parse_choice(text, VERDICTS)
    assert result.error == error and result.value is None


def test_a_longer_choice_hides_the_shorter_one_inside_it() -> None:
    assert parse_choice("I'd say: not bad", ["bad", "not bad"]).value == "not bad"
    with pytest.raises(ValueError):
        parse_choice("x", ["Bad", "bad"])


# ---------------------------------------------------------------------- response_format
def test_coevo_providers_get_the_schema_strict_when_the_schema_allows_it() -> None:
    for model in ("coevo-fake/echo", "coevo-local/qwen2.5-coder-1.5b"):
        assert response_format_for(model, None, CASES, "cases") == {
            "type": "json_schema",
            "json_schema": {"name": "cases", "schema": CASES, "strict": True}}
    # VERDICT is open and has optional properties: OpenAI's strict mode would refuse it.
    loose = response_format_for("coevo-fake/echo", None, VERDICT, "judge verdict!")
    assert loose["json_schema"]["strict"] is False
    assert loose["json_schema"]["name"] == "judge_verdict_"


@pytest.mark.parametrize(("model", "api_base", "kind"), [
    ("gpt-4o-mini", None, "json_schema"),                   # litellm: supports schemas
    ("anthropic/claude-3-5-sonnet-20241022", None, "json_schema"),
    ("openai/served-model", "http://127.0.0.1:9/v1", "json_schema"),  # any api_base
    ("groq/llama3-8b-8192", None, "json_object"),           # response_format, no schema
    ("cohere/command-r", None, None),                       # no response_format at all
    ("nonsense-provider/whatever", None, None),             # unknown to litellm
])
def test_hosted_providers_get_what_litellm_says_they_support(model: str, api_base: str | None,
                                                             kind: str | None) -> None:
    found = response_format_for(model, api_base, CASES)
    assert (found or {}).get("type") == kind


# ---------------------------------------------------------------------- through the fake provider
def _call(text: str = "Write cases.", system: str | None = "You write test cases.",
          model: str = "coevo-fake/assistant", **params: object) -> ModelCall:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}]
    return ModelCall(model, messages, params)


async def test_complete_json_sends_the_schema_and_returns_the_validated_answer(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(f"Here you go:\n```json\n{_cases_json(1, 2)}\n```")
    result = await complete_json(fast_client, _call(temperature=0.2), CASES, name="cases")
    assert result.complete and result.value == {"cases": [_case(1), _case(2)]}
    assert fake_provider.response_formats == [
        {"type": "json_schema", "json_schema": {"name": "cases", "schema": CASES,
                                                "strict": True}}]
    system = fake_provider.requests[0][0]
    assert system["role"] == "system"
    assert system["content"] == "You write test cases.\n\n" + schema_instructions(CASES)
    assert result.attempts == 1 and result.tokens_out is not None and result.cost == 0.0


async def test_instructions_go_in_a_new_system_message_or_not_at_all(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script('{"verdict": "good"}', '{"verdict": "good"}')
    await complete_json(fast_client, _call(system=None), VERDICT)
    assert fake_provider.requests[0][0] == {"role": "system",
                                            "content": schema_instructions(VERDICT)}
    await complete_json(fast_client, _call(system=None), VERDICT, instruct=False)
    assert fake_provider.requests[1] == [{"role": "user", "content": "Write cases."}]


async def test_a_prose_answer_is_asked_again_with_a_correction(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script("I think this output is fine.", '{"verdict": "good"}')
    result = await complete_json(fast_client, _call(), VERDICT)
    assert result.complete and result.value == {"verdict": "good"}
    assert fake_provider.calls == 2 and result.attempts == 2
    assert fake_provider.requests[1][-2:] == [
        {"role": "assistant", "content": "I think this output is fine."},
        {"role": "user", "content": "That answer could not be used: the answer is not JSON:"
         " 'I think this output is fine.'. Answer again with only the JSON, matching the"
         " schema, and nothing else."}]


async def test_an_answer_that_stays_unusable_ends_in_one_error_after_three_answers(
        fake_provider: FakeModel) -> None:
    fake_provider.responder = lambda messages: "Sorry, I can't do JSON."
    client = ModelClient(concurrency=2, timeout=FAST_TIMEOUT,
                         retry=RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05))
    result = await complete_json(client, _call(), VERDICT)
    assert fake_provider.calls == 3  # the answer and two more, no further
    assert result.error == ("the answer is not JSON: \"Sorry, I can't do JSON.\""
                            " (after 3 answers)")
    assert result.value is None and result.attempts == 3
    assert result.text == "Sorry, I can't do JSON."


async def test_asking_again_stays_within_the_clients_attempts(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    # FAST_RETRY allows 3 attempts: a server error and its retry use two of them, so an
    # unusable answer is asked again only once.
    fake_provider.responder = lambda messages: "no JSON here"
    fake_provider.fail_next("error")
    result = await complete_json(fast_client, _call(), VERDICT)
    assert fake_provider.calls == FAST_RETRY.max_attempts == 3
    assert result.attempts == 3 and result.error is not None
    assert "(after 2 answers)" in result.error


async def test_a_partly_usable_answer_is_not_asked_again(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script(json.dumps({"cases": [_case(1), {"input": "", "rule": 2,
                                                          "reason": "empty input"}]}))
    result = await complete_json(fast_client, _call(), CASES)
    assert fake_provider.calls == 1
    assert result.ok and result.value == {"cases": [_case(1)]}
    assert result.report() == "cases #2.input: shorter than 1 characters: dropped"


async def test_no_retry_of_unusable_answers_when_told_not_to(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.responder = lambda messages: "prose"
    result = await complete_json(fast_client, _call(), VERDICT, parse_retries=0)
    assert fake_provider.calls == 1 and result.error == "the answer is not JSON: 'prose'"


async def test_a_failing_model_is_an_error_result_not_an_exception(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.fail_next("error", count=5)
    result = await complete_json(fast_client, _call(), VERDICT)
    assert result.error is not None and result.error.startswith("server error (HTTP 500)")
    assert "gave up after 3 attempts" in result.error
    assert fake_provider.calls == 3 and result.value is None


async def test_choose_asks_for_an_enum_and_reads_exact_and_sloppy_answers(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script('{"choice": "unsure"}', " BAD.\n", "'Good'")
    found = [(await choose(fast_client, _call(), VERDICTS)).value for _ in range(3)]
    assert found == ["unsure", "bad", "good"]
    assert fake_provider.calls == 3
    sent = fake_provider.response_formats[0]["json_schema"]
    assert sent["schema"]["properties"]["choice"]["enum"] == VERDICTS
    assert sent["strict"] is True
    assert 'Put exactly one of "good", "bad", "unsure" in "choice".' in (
        fake_provider.requests[0][0]["content"])


async def test_choose_reports_an_impossible_answer_after_asking_again(
        fake_provider: FakeModel, fast_client: ModelClient) -> None:
    fake_provider.script("perhaps", "both good and bad", "excellent")
    result = await choose(fast_client, _call(), VERDICTS)
    assert fake_provider.calls == 3
    assert result.error == ("the answer is not one of good, bad, unsure: 'excellent'"
                            " (after 3 answers)")


# ---------------------------------------------------------------------- through the fake server
def _server_call(server: FakeModelServer) -> ModelCall:
    return ModelCall("openai/served-model", [{"role": "user", "content": "judge this"}], {},
                     server.url)


async def test_litellm_sends_the_schema_to_an_openai_compatible_server(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.responder = lambda body: '{"verdict": "unsure", "reason": "ambiguous"}'
    result = await complete_json(fast_client, _server_call(fake_server), VERDICT,
                                 name="verdict")
    assert result.complete
    assert result.value == {"verdict": "unsure", "reason": "ambiguous"}
    assert fake_server.requests[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": VERDICT, "strict": False}}


async def test_counts_and_lengths_are_checked_here_not_sent_to_a_hosted_provider(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.responder = lambda body: _cases_json(1)
    result = await complete_json(fast_client, _server_call(fake_server), CASES, name="cases")
    assert result.complete
    sent = fake_server.requests[0]["response_format"]["json_schema"]
    assert sent["strict"] is True
    assert "maxItems" not in sent["schema"]["properties"]["cases"]
    assert "minLength" not in json.dumps(sent["schema"])
    assert sent["schema"]["properties"]["cases"]["items"]["required"] == CASE["required"]
    prompt = fake_server.requests[0]["messages"][0]["content"]
    assert '"maxItems": 5' in prompt and '"minLength": 1' in prompt


async def test_a_refused_format_falls_back_and_is_remembered(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.refused_formats = {"json_schema"}
    fake_server.responder = lambda body: '{"verdict": "bad"}'
    first = await complete_json(fast_client, _server_call(fake_server), VERDICT)
    assert first.complete and first.value == {"verdict": "bad"}
    sent = [(r.get("response_format") or {}).get("type") for r in fake_server.requests]
    assert sent == ["json_schema", "json_object"]
    second = await choose(fast_client, _server_call(fake_server), VERDICTS)
    assert second.value == "bad"
    assert fake_server.requests[2]["response_format"] == {"type": "json_object"}
    assert fake_server.request_count == 3


async def test_a_request_refused_in_every_format_reports_the_first_refusal(
        fake_server: FakeModelServer, fast_client: ModelClient) -> None:
    fake_server.refused_formats = {"json_schema", "json_object", None}
    result = await complete_json(fast_client, _server_call(fake_server), VERDICT)
    assert result.error is not None and result.error.startswith("HTTP 400")
    assert "'json_schema' is not supported" in result.error
    assert [("response_format" in r) for r in fake_server.requests] == [True, True, False]
    # Nothing was learnt: the next call starts with the schema again.
    fake_server.refused_formats = set()
    fake_server.responder = lambda body: '{"verdict": "good"}'
    await complete_json(fast_client, _server_call(fake_server), VERDICT)
    assert fake_server.requests[-1]["response_format"]["type"] == "json_schema"
