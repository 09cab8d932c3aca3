"""Task "candidates": hard or ambiguous inputs that probe the boundaries of the rules
(SPEC section 1, step 2).

From the task, the newest version's instructions and rules (extracted first if missing)
and the existing cases (labelled failures first), the assistant writes N inputs, each
with the rule it probes and a one-line reason. They are spread across the rules, most to
the rules with the fewest cases (`plan`). The paper behind coevo found its generated
examples lacked diversity; here the prompt asks for variety outright (register, length,
language, indirection), and every item is checked as it arrives against the existing
cases, the rejected inputs and the earlier items: a near duplicate is dropped and counted
(domain/diversity.py). Each kept item is stored as a candidate at once, so the review
queue fills while the model is still writing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, one_line, quoted
from coevo_tui.assist.context import LabelledCase, labelled_cases, newest_each
from coevo_tui.assist.events import (
    AssistEvent,
    AssistFinished,
    AssistSummary,
    AssistStarted,
    AssistText,
    CandidateAdded,
    CandidateDropped,
    ItemRejected,
    RulesExtracted,
)
from coevo_tui.assist.rules import RulesResult, ensure_rules_shown, example_json, rules_text
from coevo_tui.assist.duplicates import DuplicateFilter
from coevo_tui.domain.errors import UserError
from coevo_tui.llm.embeddings import embedding_choice
from coevo_tui.domain.model import (
    CaseSource,
    CaseState,
    LabelSource,
    PolicyRule,
    PromptVersion,
)
from coevo_tui.llm.client import ModelCall, TextDelta
from coevo_tui.llm.structured import (
    JsonItem,
    JsonItemRejected,
    ItemEvent,
    JsonItemsDone,
    stream_json_items,
)
from coevo_tui.store import NewCase

if TYPE_CHECKING:
    from coevo_tui.session import Session

TASK = "candidates"
MAX_N = 50
INPUT_CHARS = 2000
REASON_CHARS = 240

SYSTEM = """\
You write test inputs for an LLM application, to find where its instructions fail.

Write inputs a real user could send. Each input must be hard or ambiguous for one rule: \
a borderline case where careful people could disagree, not an obvious one.
Make every input different from the others and from the existing inputs. Vary:
- register: slang, formal, terse, rambling;
- length: from a few words to three sentences;
- language: write some in another language than English;
- indirection: sarcasm, quoting someone, a hypothetical, a coded or misspelled word.

For each input give:
- "input": the exact text the user sends;
- "rule": the number of the rule it probes;
- "reason": one short sentence on why it is hard for that rule.

Example item, for a support bot whose rule 2 is "Never promise a refund":
{example}"""

EXAMPLE = {"input": "if the parcel never shows up you'll give me my money back, yeah??",
           "rule": 2,
           "reason": "Asks for a refund promise casually and hypothetically."}
EXAMPLE_NO_RULE = {"input": "if the parcel never shows up you'll give me my money back, yeah??",
                   "reason": "Asks for a refund promise casually and hypothetically."}


def schema(rule_numbers: Sequence[int], n: int) -> dict[str, Any]:
    """The answer's shape: {"cases": [{"input", "rule", "reason"}]}, the rule one of
    `rule_numbers` (no "rule" when there are none), at most `n` items."""
    properties: dict[str, Any] = {"input": {"type": "string", "minLength": 1}}
    if rule_numbers:
        properties["rule"] = {"type": "integer", "enum": list(rule_numbers)}
    properties["reason"] = {"type": "string"}
    item = {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}
    return {"type": "object",
            "properties": {"cases": {"type": "array", "items": item, "minItems": 1,
                                     "maxItems": n}},
            "required": ["cases"], "additionalProperties": False}


def plan(rules: Sequence[PolicyRule], counts: Mapping[int | None, int], n: int,
         rule: int | None = None) -> dict[int, int]:
    """How many inputs to ask for per rule number: all `n` for `rule`; otherwise each
    next input goes to the rule with the fewest cases so far (`counts`, plus those
    already planned), ties to the lower number. Empty without rules."""
    if rule is not None:
        return {rule: n}
    if not rules:
        return {}
    planned = {r.number: 0 for r in rules}
    for _ in range(n):
        number = min(planned, key=lambda k: (counts.get(k, 0) + planned[k], k))
        planned[number] += 1
    return {k: v for k, v in planned.items() if v}


@dataclass(frozen=True)
class CandidatesPrompt:
    """What the candidates prompt is built from (pure data)."""

    task: str
    version: PromptVersion
    rules: Sequence[PolicyRule]
    planned: Mapping[int, int]
    examples: Sequence[LabelledCase]
    unlabelled: Sequence[str]
    n: int


def build_messages(prompt: CandidatesPrompt) -> list[dict[str, str]]:
    """The messages of the candidates call."""
    example = EXAMPLE if prompt.rules else EXAMPLE_NO_RULE
    system = SYSTEM.format(example=example_json(example))
    if not prompt.rules:
        system = system.replace('- "rule": the number of the rule it probes;\n', "")
    parts = []
    if prompt.task.strip():
        parts.append(f"The application: {quoted(prompt.task, 800)}")
    if prompt.version.instructions.strip():
        parts.append(f"Its instructions:\n<<<\n{prompt.version.instructions.strip()}\n>>>")
    if prompt.rules:
        parts.append(f"Its rules:\n{rules_text(list(prompt.rules))}")
        titles = {r.number: r.title for r in prompt.rules}
        asks = [f"- rule {k} ({titles.get(k, '')}): {v} input{'' if v == 1 else 's'}"
                for k, v in prompt.planned.items()]
        parts.append("Write this many inputs per rule:\n" + "\n".join(asks))
    existing = []
    for case in prompt.examples:
        why = f" Why: {quoted(case.rationale, 160)}" if case.rationale else ""
        existing.append(f"- {example_json(quoted(case.input, 160))}: the answer to it was"
                        f" {case.verdict.value}.{why}")
    existing += [f"- {example_json(quoted(text, 160))}" for text in prompt.unlabelled]
    if existing:
        parts.append("Existing inputs (labelled failures first). Do not repeat them; find"
                     " new boundaries:\n" + "\n".join(existing))
    parts.append(f"Write {prompt.n} new input{'' if prompt.n == 1 else 's'} now, as"
                 ' {"cases": [...]}.')
    return [{"role": "system", "content": system},
            {"role": "user", "content": "\n\n".join(parts)}]


def build_call(assistant: Assistant, prompt: CandidatesPrompt) -> ModelCall:
    """The candidates call on the assistant model."""
    return assistant.call(TASK, build_messages(prompt), max_tokens=150 * prompt.n + 200)


def parse_item(value: Mapping[str, Any], rule_numbers: Sequence[int]
               ) -> tuple[str, int | None, str] | str:
    """(input, rule number, reason) of a schema-valid item, or the problem with it."""
    text = str(value.get("input", "")).strip()
    if not text:
        return "an empty input: dropped"
    if len(text) > INPUT_CHARS:
        return f"an input of {len(text)} characters (at most {INPUT_CHARS}): dropped"
    number = value.get("rule")
    if rule_numbers and number not in rule_numbers:
        return f"rule {number} does not exist: dropped"
    return text, (number if rule_numbers else None), one_line(str(value.get("reason", "")),
                                                             REASON_CHARS)


async def generate(session: Session, n: int = 10, rule: int | None = None
                   ) -> AsyncIterator[AssistEvent]:
    """Ask for `n` candidates under the newest version (all probing `rule`, if given) and
    store each kept one as it arrives. See the module docstring; events in
    assist/events.py. UserError (nothing done) for an `n` out of range or an unknown
    rule (after extracting the rules, if the version had none)."""
    if not 1 <= n <= MAX_N:
        raise UserError(f"the number of cases must be between 1 and {MAX_N}")
    store = session.store
    embeddings = embedding_choice()  # a bad setting is refused before anything is done
    assistant = Assistant(session)
    version = await store.versions.latest()
    await assistant.ready()
    stored = await store.rules.for_version(version.id)
    if stored:
        _check_rule(version, stored, rule)  # refused before anything is done
    summary = assistant.summary(TASK, f"v{version.number}", total=n)
    yield AssistStarted(TASK, n, summary)
    found: list[tuple[list[PolicyRule], RulesResult | None]] = []
    extracting = ensure_rules_shown(session, version, assistant, found)
    async with contextlib.aclosing(extracting):  # a stop here cancels the extraction
        async for piece in extracting:
            yield piece
    rules, extraction = found[0]
    if extraction is not None:
        if rules:
            yield RulesExtracted(version.id, tuple(rules))
        else:
            summary.problems.append(f"no rules: {extraction.error}")
    numbers = [r.number for r in rules]
    _check_rule(version, rules, rule)
    case_rows = await store.cases.rule_states()
    counts: dict[int | None, int] = {}
    for _, number, state, _ in case_rows:
        if state in (CaseState.ACTIVE.value, CaseState.CANDIDATE.value):
            counts[number] = counts.get(number, 0) + 1
    planned = plan(rules, counts, n, rule)
    labelled = newest_each(await labelled_cases(
        store, (LabelSource.HUMAN, LabelSource.CARRIED, LabelSource.JUDGE)))
    shown = 6 if assistant.small else 20
    examples = labelled[:shown]
    seen_ids = {c.case_id for c in examples}
    unlabelled = [text for case_id, _, state, text in reversed(case_rows)
                  if state == CaseState.ACTIVE.value and case_id not in seen_ids
                  ][:max(0, shown - len(examples)) // 2]
    prompt = CandidatesPrompt(session.project.task, version, rules, planned, examples,
                              unlabelled, n)
    # Every state counts, rejected ones too: nothing turned down comes back.
    # The worked example too: a small model copies it.
    near = await DuplicateFilter.build([EXAMPLE["input"], *(text for *_, text in case_rows)],
                                       embeddings)
    events = stream_json_items(assistant.client, build_call(assistant, prompt),
                               schema(numbers, n), name="cases", urgent=True)
    async with assistant.recorded(summary, version.id):
        queued = queue_items(assistant, summary, events, near,
                             lambda value: parse_item(value, numbers),
                             lambda text, number, reason: NewCase(
                                 text, source=CaseSource.GENERATED, rule_number=number,
                                 reason=reason, origin_version_id=version.id))
        async with contextlib.aclosing(queued):
            async for event in queued:
                yield event
        summary.problems.extend(near.problems)
    yield AssistFinished(summary)



async def queue_items(assistant: Assistant, summary: AssistSummary,
                      events: AsyncIterator[ItemEvent], near: DuplicateFilter,
                      parse: Callable[[Any], tuple[str, int | None, str] | str],
                      new_case: Callable[[str, int | None, str], NewCase]
                      ) -> AsyncIterator[AssistEvent]:
    """The review queue's side of a streamed batch, for generated and similar cases
    alike: the model's text passed on as it comes; each item `parse`d into (input, rule
    number, reason) or a problem, checked against `near` (counted per rule in `summary`)
    and, when kept, stored at once as the candidate `new_case` makes. Closing this stream
    closes `events`, which stops the model."""
    store = assistant.session.store
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                yield AssistText(event.text)
            elif isinstance(event, JsonItem):
                parsed = parse(event.value)
                if isinstance(parsed, str):
                    summary.unusable += 1
                    summary.problems.append(f"item #{event.index}: {parsed}")
                    yield ItemRejected(f"item #{event.index}: {parsed}")
                    continue
                text, number, reason = parsed
                duplicate = await near.check(text)
                summary.count_item(number, kept=duplicate is None)
                if duplicate is not None:
                    yield CandidateDropped(text, duplicate, number)
                    continue
                near.add(text)
                (case,) = await store.cases.add_candidates([new_case(text, number, reason)])
                yield CandidateAdded(case)
            elif isinstance(event, JsonItemRejected):
                summary.unusable += 1
                yield ItemRejected(event.problem)
            elif isinstance(event, JsonItemsDone):
                assistant.count_stream_end(summary, event)


def _check_rule(version: PromptVersion, rules: Sequence[PolicyRule], rule: int | None
                ) -> None:
    """UserError unless `rule` is None or one of the version's rules."""
    numbers = [r.number for r in rules]
    if rule is not None and rule not in numbers:
        have = f"rules {numbers[0]} to {numbers[-1]}" if numbers else "no rules"
        raise UserError(f"v{version.number} has no rule {rule} ({have})")
