"""Task "rules": split a version's instructions into numbered policy rules (short titles),
so that cases and candidates can point at the rule they probe and coverage can be
counted per rule.

The caller stores the rules (`store.rules.replace`), or `ensure_rules` does: it extracts
them only for a version that has none. Generated cases come with their rule; `assign`
(task "assign") points the hand-written and imported cases at theirs, so that coverage
counts the whole test set.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, quoted, text_while
from coevo_tui.assist.events import (
    AssistEvent,
    AssistFinished,
    AssistStarted,
    ItemRejected,
    RulesAssigned,
    RulesExtracted,
    RulesText,
)
from coevo_tui.domain.model import CaseState, NewRule, PolicyRule, PromptVersion
from coevo_tui.llm.client import ModelCall
from coevo_tui.llm.structured import StructuredResult, complete_json

if TYPE_CHECKING:
    from coevo_tui.session import Session

TASK = "rules"
MAX_RULES = 20
TITLE_CHARS = 60
TITLE_WORDS = 8

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rules": {
        "type": "array", "minItems": 1, "maxItems": MAX_RULES,
        "items": {"type": "object",
                  "properties": {"number": {"type": "integer"},
                                 "title": {"type": "string", "minLength": 1},
                                 "text": {"type": "string"}},
                  "required": ["number", "title", "text"],
                  "additionalProperties": False}}},
    "required": ["rules"], "additionalProperties": False,
}

SYSTEM = """\
You split the instructions of an LLM application into its policy rules.

A rule is one thing the application must allow, refuse, or decide in a certain way.
- Number the rules 1, 2, 3, ... in the order they appear.
- "title": a short name for the rule, at most 8 words.
- "text": the rule as the instructions say it, in one or two sentences.
- One rule per separate thing: split lists into one rule per item.
- Leave out the role ("You are ...") and how the answer must be formatted.

Example. Instructions: "You answer customer questions for Acme. Be polite. Never promise \
a refund, but you may explain the refund policy. Do not give legal advice. Answer in two \
sentences."
Answer: {"rules": [{"number": 1, "title": "Be polite", "text": "Be polite."}, \
{"number": 2, "title": "No refund promises", "text": "Never promise a refund; explaining \
the refund policy is fine."}, {"number": 3, "title": "No legal advice", "text": "Do not \
give legal advice."}]}"""

# A small model may answer with the example's rules: those are not the instructions'.
EXAMPLE_TITLES = frozenset({"Be polite", "No refund promises", "No legal advice"})


@dataclass(frozen=True)
class RulesResult:
    """The rules found (`rules`, numbered 1..n), what was left out (`problems`), or
    `error` (one line) when nothing was usable."""

    rules: list[NewRule] = field(default_factory=list)
    problems: tuple[str, ...] = ()
    error: str | None = None


def build_call(assistant: Assistant, task: str, instructions: str) -> ModelCall:
    """The call that asks for the rules of `instructions` (the application's `task` as
    context)."""
    user = ""
    if task.strip():
        user += f"The application: {quoted(task, 600)}\n\n"
    user += f"Instructions:\n<<<\n{instructions.strip()}\n>>>\n\nList its rules."
    return assistant.call(TASK, [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": user}], max_tokens=800)


def parse(value: Any) -> tuple[list[NewRule], list[str]]:
    """The rules of a validated answer, numbered 1..n in the model's order (its own
    numbers when they are already that), with titles trimmed; problems for what was
    left out."""
    problems: list[str] = []
    items = value.get("rules", []) if isinstance(value, dict) else []
    kept: list[tuple[int, str, str]] = []
    titles: set[str] = set()
    for item in items:
        title = " ".join(str(item.get("title", "")).split())
        text = " ".join(str(item.get("text", "")).split())
        if not title:
            problems.append("a rule without a title: left out")
            continue
        if title.endswith(":") and (not text or text.endswith(":")):
            # "Any message that contains:" is the heading of a list, not a rule.
            problems.append(f"{title!r} is a heading, not a rule: left out")
            continue
        words = title.split()
        if len(words) > TITLE_WORDS:  # small models copy the whole rule as its title
            title = " ".join(words[:TITLE_WORDS]).rstrip(",;:.") + "…"
        if len(title) > TITLE_CHARS:
            title = title[:TITLE_CHARS - 1].rstrip() + "…"
        if title.casefold() in titles:
            problems.append(f"rule {title!r} twice: kept once")
            continue
        titles.add(title.casefold())
        kept.append((int(item.get("number", 0)), title, text))
    numbers = [n for n, _, _ in kept]
    if numbers != list(range(1, len(kept) + 1)):
        if kept:
            problems.append("rules renumbered 1 to {}".format(len(kept)))
        kept = [(i, title, text) for i, (_, title, text) in enumerate(kept, start=1)]
    return [NewRule(n, title, text) for n, title, text in kept], problems


async def extract(session: Session, version: PromptVersion, *,
                  assistant: Assistant | None = None,
                  on_text: Callable[[str], object] | None = None) -> RulesResult:
    """Ask the assistant for the rules of `version` (not stored; see `ensure_rules`).
    Leaves one "assist" event. A version with empty instructions has no rules. With
    `on_text`, the answer is streamed to it as it comes."""
    assistant = assistant or Assistant(session)
    summary = assistant.summary(TASK, f"v{version.number}")
    if not version.instructions.strip():
        return RulesResult(error=f"v{version.number} has no instructions to take rules from")
    await assistant.ready()
    result: StructuredResult | None = None
    try:
        result = await complete_json(assistant.client, build_call(
            assistant, session.project.task, version.instructions), SCHEMA, name="rules",
            urgent=True, on_text=on_text)
        assistant.count(summary, result)
        if not result.ok:
            summary.errors += 1
            summary.error = result.error
            return RulesResult(error=result.error)
        rules, problems = parse(result.value)
        if rules and {r.title for r in rules} <= EXAMPLE_TITLES:
            rules, problems = [], [*problems, "the rules were the prompt's example's"]
        summary.problems.extend(problems)
        summary.generated = summary.kept = len(rules)
        if not rules:
            summary.error = ("the assistant repeated the prompt's example instead of"
                             " answering") if problems and problems[-1].startswith(
                "the rules were") else "the answer holds no rules"
            return RulesResult(problems=tuple(problems), error=summary.error)
        return RulesResult(rules, tuple([*result.problems, *problems]))
    finally:
        summary.halted = result is None
        await assistant.record(summary, version.id)


async def ensure_rules(session: Session, version: PromptVersion, *,
                       assistant: Assistant | None = None,
                       on_text: Callable[[str], object] | None = None
                       ) -> tuple[list[PolicyRule], RulesResult | None]:
    """The version's rules, extracted and stored first if it has none. Returns (the
    rules, the extraction's result when one was made); the rules are empty when the
    extraction failed (its result says why)."""
    rules = await session.store.rules.for_version(version.id)
    if rules or not version.instructions.strip():
        return rules, None
    result = await extract(session, version, assistant=assistant, on_text=on_text)
    if result.rules:
        rules = await session.store.rules.replace(version.id, result.rules)
    return rules, result


async def ensure_rules_shown(session: Session, version: PromptVersion, assistant: Assistant,
                             found: list[tuple[list[PolicyRule], RulesResult | None]]
                             ) -> AsyncIterator[RulesText]:
    """`ensure_rules` for a task's event stream: yields the extraction's answer as it
    comes (a slow model takes minutes over it, and the user should see it write), then
    puts (rules, extraction) in `found`. Closing the stream cancels the extraction."""
    pieces = text_while(lambda on_text: ensure_rules(session, version, assistant=assistant,
                                                     on_text=on_text), found)
    async with contextlib.aclosing(pieces):
        async for piece in pieces:
            yield RulesText(piece)


def rules_text(rules: list[PolicyRule]) -> str:
    """The rules as a prompt lists them: "1. Title: text" a line."""
    lines = []
    for rule in rules:
        text = f": {quoted(rule.text, 200)}" if rule.text and rule.text != rule.title else ""
        lines.append(f"{rule.number}. {rule.title}{text}")
    return "\n".join(lines)


def example_json(value: Any) -> str:
    """A worked example's JSON as a prompt shows it."""
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------- assigning cases
ASSIGN_TASK = "assign"
ASSIGN_BATCH = 20
ASSIGN_BATCH_SMALL = 6

ASSIGN_SYSTEM = """\
You sort the test inputs of an LLM application by the policy rule each one tests.

For each input, give "id" (as given) and "rule": the number of the rule the input tests \
most, or 0 if it tests none of them.

Example, with rules "1. Be polite", "2. No refund promises", "3. No legal advice", and \
the input q7: "can I sue them if the parcel is lost?":
{"cases": [{"id": "q7", "rule": 3}]}"""


def assign_schema(ext_ids: list[str], numbers: list[int]) -> dict[str, Any]:
    """{"cases": [{"id", "rule"}]}: ids among those asked, rules among the rules or 0."""
    item = {"type": "object",
            "properties": {"id": {"type": "string", "enum": list(ext_ids)},
                           "rule": {"type": "integer", "enum": [*numbers, 0]}},
            "required": ["id", "rule"], "additionalProperties": False}
    return {"type": "object",
            "properties": {"cases": {"type": "array", "items": item,
                                     "maxItems": len(ext_ids)}},
            "required": ["cases"], "additionalProperties": False}


def build_assign_call(assistant: Assistant, rules: list[PolicyRule],
                      cases: list[tuple[str, str]]) -> ModelCall:
    """The call sorting `cases` ((ext id, input) pairs) by `rules`."""
    inputs = "\n".join(f"{ext_id}: {example_json(quoted(text, 240))}" for ext_id, text in cases)
    user = (f"Rules:\n{rules_text(rules)}\n\nInputs:\n{inputs}\n\nGive the rule of each"
            ' input, as {"cases": [...]}.')
    return assistant.call(ASSIGN_TASK, [{"role": "system", "content": ASSIGN_SYSTEM},
                                        {"role": "user", "content": user}],
                          max_tokens=20 * len(cases) + 50, temperature=0.0)


async def assign(session: Session, version: PromptVersion) -> AsyncIterator[AssistEvent]:
    """Point every active case that probes no rule yet at the rule of `version` it tests
    (extracting the rules first if the version has none), a batch of cases per call; each
    batch is stored as it comes back (`store.cases.assign_rules`). Coverage per rule
    counts hand-written and imported cases only once this has been done. Events:
    AssistStarted, RulesExtracted (if extracted), RulesAssigned per batch, ItemRejected,
    AssistFinished."""
    store = session.store
    assistant = Assistant(session)
    await assistant.ready()
    waiting = [(case_id, text) for case_id, rule, state, text in await store.cases.rule_states()
               if state == CaseState.ACTIVE.value and rule is None]
    summary = assistant.summary(ASSIGN_TASK, f"v{version.number}", total=len(waiting))
    yield AssistStarted(ASSIGN_TASK, len(waiting), summary)
    found: list[tuple[list[PolicyRule], RulesResult | None]] = []
    shown = ensure_rules_shown(session, version, assistant, found)
    async with contextlib.aclosing(shown):  # a stop here cancels the extraction at once
        async for piece in shown:
            yield piece
    rules, extraction = found[0]
    if extraction is not None and rules:
        yield RulesExtracted(version.id, tuple(rules))
    if not rules or not waiting:
        if not rules:
            summary.error = (extraction.error if extraction is not None and extraction.error
                             else f"v{version.number} has no rules")
        summary.finish()
        yield AssistFinished(summary)
        return
    numbers = [r.number for r in rules]
    cases = await store.cases.by_ids(case_id for case_id, _ in waiting)
    size = ASSIGN_BATCH_SMALL if assistant.small else ASSIGN_BATCH
    async with assistant.recorded(summary, version.id):
        for start in range(0, len(waiting), size):
            batch = [cases[case_id] for case_id, _ in waiting[start:start + size]]
            by_ext = {c.ext_id: c.id for c in batch}
            call = build_assign_call(assistant, rules, [(c.ext_id, c.input) for c in batch])
            result = await complete_json(assistant.client, call,
                                         assign_schema(list(by_ext), numbers), name="cases")
            assistant.count(summary, result)
            if not result.ok:
                summary.errors += 1
                summary.error = result.error
                yield ItemRejected(f"cases {batch[0].ext_id} to {batch[-1].ext_id}:"
                                   f" {result.error}")
                continue
            found = {by_ext[item["id"]]: (item["rule"] or None)
                     for item in result.value["cases"] if item["id"] in by_ext}
            if found:
                await store.cases.assign_rules(found)
                summary.done += len(found)
                for number in found.values():
                    summary.count_item(number, kept=True)
                yield RulesAssigned(found)
    yield AssistFinished(summary)
