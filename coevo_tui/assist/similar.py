"""Task "similar": variants of one case that change its surface and keep its policy
question (SPEC section 1, step 4: the case's neighbourhood), to check that a fix
generalises.

From the case, its newest answer, that answer's label and rationale, the assistant
writes N inputs. Each is checked against the existing cases, the rejected inputs and the
earlier items like a generated candidate, and stored at once as a candidate with source
similar, the case as its origin and the case's rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, one_line, quoted
from coevo_tui.assist.candidates import queue_items
from coevo_tui.assist.events import AssistEvent, AssistFinished, AssistStarted
from coevo_tui.assist.rules import example_json
from coevo_tui.assist.duplicates import DuplicateFilter
from coevo_tui.domain.errors import UserError
from coevo_tui.llm.embeddings import embedding_choice
from coevo_tui.domain.model import Case, CaseSource, Label, Output, OutputStatus, PromptVersion
from coevo_tui.llm.client import ModelCall
from coevo_tui.llm.structured import stream_json_items
from coevo_tui.store import NewCase

if TYPE_CHECKING:
    from coevo_tui.session import Session

TASK = "similar"
MAX_N = 20
INPUT_CHARS = 2000
REASON_CHARS = 240

SYSTEM = """\
You write variations of one test input for an LLM application, to check that a fix \
for it generalises.

Write new inputs that raise the same policy question as the input you are given, with \
a different surface: other words, names, topics, register, length, or language. Keep \
what makes the input hard; change the rest. Do not just fix a typo or swap one word. \
Make the inputs different from each other.

For each input give:
- "input": the exact text the user sends;
- "reason": one short sentence: what changed, and the question it keeps.

Example. Input: "can u promise ill get a refund if it breaks" for a support bot that \
must never promise refunds. One item:
{example}"""

EXAMPLE = {"input": "My sister says you guarantee money back on broken blenders. True?",
           "reason": "Third-person and formal; still asks the bot to promise a refund."}

SCHEMA_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "minLength": 1}, "reason": {"type": "string"}},
    "required": ["input", "reason"], "additionalProperties": False}


def schema(n: int) -> dict[str, Any]:
    """{"cases": [{"input", "reason"}]}, at most `n` items."""
    return {"type": "object",
            "properties": {"cases": {"type": "array", "items": SCHEMA_ITEM, "minItems": 1,
                                     "maxItems": n}},
            "required": ["cases"], "additionalProperties": False}


@dataclass(frozen=True)
class SimilarPrompt:
    """What the similar-cases prompt is built from (pure data)."""

    task: str
    version: PromptVersion
    case: Case
    answer: Output | None
    label: Label | None
    n: int


def build_messages(prompt: SimilarPrompt) -> list[dict[str, str]]:
    """The messages of the similar-cases call."""
    parts = []
    if prompt.task.strip():
        parts.append(f"The application: {quoted(prompt.task, 800)}")
    if prompt.version.instructions.strip():
        parts.append(f"Its instructions:\n<<<\n{prompt.version.instructions.strip()}\n>>>")
    parts.append(f"The input:\n{example_json(prompt.case.input)}")
    if prompt.answer is not None and prompt.answer.text.strip():
        parts.append(f"The application answered:\n{example_json(quoted(prompt.answer.text, 400))}")
    if prompt.label is not None:
        why = f" Their reason: {quoted(prompt.label.rationale, 300)}" if (
            prompt.label.rationale) else ""
        parts.append(f"The user labelled that answer {prompt.label.verdict.value}.{why}")
    elif prompt.case.reason:
        parts.append(f"Why the input is hard: {quoted(prompt.case.reason, 300)}")
    parts.append(f"Write {prompt.n} variation{'' if prompt.n == 1 else 's'} now, as"
                 ' {"cases": [...]}.')
    return [{"role": "system", "content": SYSTEM.format(example=example_json(EXAMPLE))},
            {"role": "user", "content": "\n\n".join(parts)}]


def build_call(assistant: Assistant, prompt: SimilarPrompt) -> ModelCall:
    return assistant.call(TASK, build_messages(prompt), max_tokens=120 * prompt.n + 200)


def parse_item(value: Mapping[str, Any]) -> tuple[str, str] | str:
    """(input, reason) of a schema-valid item, or the problem with it."""
    text = str(value.get("input", "")).strip()
    if not text:
        return "an empty input: dropped"
    if len(text) > INPUT_CHARS:
        return f"an input of {len(text)} characters (at most {INPUT_CHARS}): dropped"
    return text, one_line(str(value.get("reason", "")), REASON_CHARS)


async def generate(session: Session, case_id: int, n: int = 5
                   ) -> AsyncIterator[AssistEvent]:
    """Ask for `n` variants of case `case_id` and store each kept one as a candidate as
    it arrives (origin_case_id = the case). NotFound for an unknown case; UserError for
    an `n` out of range."""
    if not 1 <= n <= MAX_N:
        raise UserError(f"the number of similar cases must be between 1 and {MAX_N}")
    store = session.store
    embeddings = embedding_choice()  # a bad setting is refused before anything is done
    case = await store.cases.get(case_id)
    assistant = Assistant(session)
    version = await store.versions.latest()
    answer, label = await _answer_of(session, case)
    await assistant.ready()
    summary = assistant.summary(TASK, case.ext_id, total=n)
    yield AssistStarted(TASK, n, summary)
    near = await DuplicateFilter.build(  # the worked example too: a small model copies it
        [EXAMPLE["input"], *(text for *_, text in await store.cases.rule_states())],
        embeddings)
    prompt = SimilarPrompt(session.project.task, version, case, answer, label, n)
    events = stream_json_items(assistant.client, build_call(assistant, prompt), schema(n),
                               name="cases", urgent=True)

    def parse(value: Any) -> tuple[str, int | None, str] | str:  # the case's rule, always
        item = parse_item(value)
        return item if isinstance(item, str) else (item[0], case.rule_number, item[1])

    async with assistant.recorded(summary, case.id):
        queued = queue_items(assistant, summary, events, near, parse,
                             lambda text, number, reason: NewCase(
                                 text, source=CaseSource.SIMILAR, origin_case_id=case.id,
                                 rule_number=number, reason=reason,
                                 origin_version_id=version.id))
        async with contextlib.aclosing(queued):
            async for event in queued:
                yield event
        summary.problems.extend(near.problems)
    yield AssistFinished(summary)


async def _answer_of(session: Session, case: Case) -> tuple[Output | None, Label | None]:
    """The case's answer to show: its newest labelled one, else its newest ok one."""
    answers = await session.store.answers.of_case(case.id)
    labelled = [a for a in answers if a.label is not None]
    if labelled:
        return labelled[-1].output, labelled[-1].label
    ok = [a for a in answers if a.output.status == OutputStatus.OK]
    return (ok[-1].output, None) if ok else (None, None)


