"""Task "judge": a suggested verdict (good, bad, unsure) and a one-line reason for every
unlabelled answer of a version (SPEC section 2, Judge).

The judge learns the policy from the user: the prompt shows the instructions and, as
worked examples, the project's human labels with their rationales, the user's
corrections of the judge first (answers where the user's own label differs from the
judge's verdict), then labels taken in turn per verdict; and, per answer, the labels of
the same case under other versions and of similar cases (its origin, its variants, their
siblings). Verdicts are stored as judgements, suggestions the user accepts with one key
(`store.judgements.accept`) or overrides by labelling.

Answers are judged at the client's concurrency (one at a time on the offline model),
each a non-streaming structured call, and each verdict is stored the moment it arrives
by one writer, so a stopped judge keeps what it paid for.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, one_line, quoted
from coevo_tui.assist.context import LabelledCase, balanced, labelled_cases, newest_each
from coevo_tui.assist.events import (
    AssistEvent,
    AssistFinished,
    AssistStarted,
    ItemRejected,
    Judged,
)
from coevo_tui.assist.rules import example_json
from coevo_tui.domain.model import Case, Judgement, Output, PromptVersion, Verdict
from coevo_tui.llm.client import ModelCall
from coevo_tui.llm.structured import StructuredResult, complete_json

if TYPE_CHECKING:
    from coevo_tui.session import Session
    from coevo_tui.store import Store

TASK = "judge"
REASON_CHARS = 240

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": [v.value for v in Verdict]},
                   "reason": {"type": "string"}},
    "required": ["verdict", "reason"], "additionalProperties": False}

SYSTEM = """\
You check the answers of an LLM application against its policy, as its user would.

The user labels each answer:
- "good": the answer does what the instructions ask for this input;
- "bad": it does not;
- "unsure": the instructions do not settle this input.
Give "verdict" and "reason": one short sentence on why.
Example answer: {example}"""

EXAMPLE = {"verdict": "bad", "reason": "It allows a threat against a real person."}


@dataclass(frozen=True)
class Correction:
    """An answer where the user's label differs from the judge's earlier verdict."""

    example: LabelledCase
    judge_said: Verdict


@dataclass
class JudgeKnowledge:
    """What the judge is shown besides the answer: the general worked examples and, per
    case, the labels of the case itself and of similar cases."""

    corrections: list[Correction] = field(default_factory=list)
    examples: list[LabelledCase] = field(default_factory=list)
    by_case: dict[int, list[LabelledCase]] = field(default_factory=dict)
    variants: dict[int, list[int]] = field(default_factory=dict)  # origin -> variants

    @classmethod
    async def load(cls, store: Store, *, small: bool = False) -> JudgeKnowledge:
        """Read the project's human labels and the judge's corrections."""
        by_case = await labelled_cases(store)
        by_output = {e.output_id: e for items in by_case.values() for e in items}
        corrections = []
        for output_id, judgement in await store.judgements.corrections(4 if small else 8):
            example = by_output.get(output_id)
            if example is not None:
                corrections.append(Correction(example, judgement.verdict))
        corrected = {c.example.case_id for c in corrections}
        limit = (4 if small else 9) - len(corrections)
        examples = balanced([e for e in newest_each(by_case) if e.case_id not in corrected],
                            max(limit, 3))
        variants: dict[int, list[int]] = collections.defaultdict(list)
        for items in by_case.values():
            if items and items[0].origin_case_id is not None:
                variants[items[0].origin_case_id].append(items[0].case_id)
        return cls(corrections, examples, by_case, dict(variants))

    def related(self, case: Case, limit: int) -> list[LabelledCase]:
        """Labels of this case (other answers) and of similar cases, newest first."""
        found: list[LabelledCase] = list(self.by_case.get(case.id, ()))
        near: list[int] = list(self.variants.get(case.id, ()))
        if case.origin_case_id is not None:
            near.append(case.origin_case_id)
            near += [c for c in self.variants.get(case.origin_case_id, ()) if c != case.id]
        for case_id in near:
            found += self.by_case.get(case_id, ())[:1]
        return found[:limit]


def _example_line(example: LabelledCase) -> str:
    why = f" Reason: {quoted(example.rationale, 200)}" if example.rationale else ""
    return (f"- input: {example_json(quoted(example.input, 200))}; answer:"
            f" {example_json(quoted(example.answer, 200))} -> {example.verdict.value}.{why}")


def build_system(task: str, version: PromptVersion, knowledge: JudgeKnowledge) -> str:
    """The system message, the same for every answer of a version (providers that cache
    prompts reuse it)."""
    parts = [SYSTEM.format(example=example_json(EXAMPLE))]
    if task.strip():
        parts.append(f"The application: {quoted(task, 600)}")
    instructions = version.instructions.strip() or "(none: the model's own behaviour)"
    parts.append(f"Its instructions:\n<<<\n{instructions}\n>>>")
    if knowledge.corrections:
        lines = [f"{_example_line(c.example)} (The judge had said {c.judge_said.value}:"
                 " wrong.)" for c in knowledge.corrections]
        parts.append("Where the user corrected the judge (learn from these first):\n"
                     + "\n".join(lines))
    if knowledge.examples:
        parts.append("How the user labelled other answers:\n"
                     + "\n".join(_example_line(e) for e in knowledge.examples))
    return "\n\n".join(parts)


def build_call(assistant: Assistant, system: str, case: Case, output: Output,
               related: Sequence[LabelledCase]) -> ModelCall:
    """The call judging one answer."""
    parts = []
    if related:
        parts.append("Earlier labels of this case or similar ones:\n"
                     + "\n".join(_example_line(e) for e in related))
    parts.append(f"Input: {example_json(case.input)}")
    parts.append(f"Answer: {example_json(quoted(output.text, 1500))}")
    parts.append('Label this answer, as {"verdict": "...", "reason": "..."}.')
    return assistant.call(TASK, [{"role": "system", "content": system},
                                 {"role": "user", "content": "\n\n".join(parts)}],
                          max_tokens=160)


def parse(value: Any) -> tuple[Verdict, str]:
    """(verdict, reason) of a validated answer."""
    return Verdict(value["verdict"]), one_line(str(value.get("reason", "")), REASON_CHARS)


_DONE = object()


class _Crash:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def judge(session: Session, version: PromptVersion, model: str | None = None
                ) -> AsyncIterator[AssistEvent]:
    """Judge every answer under `version` (of `model`, None: of any model) that has no
    label and no judgement yet; store each verdict as it arrives. Events: AssistStarted,
    Judged or ItemRejected per answer, AssistFinished."""
    store = session.store
    assistant = Assistant(session)
    outputs = await store.judgements.unlabelled_outputs(version.id, model)
    await assistant.ready()
    summary = assistant.summary(TASK, f"v{version.number}", total=len(outputs))
    yield AssistStarted(TASK, len(outputs), summary)
    if not outputs:
        summary.finish()
        yield AssistFinished(summary)
        return
    knowledge = await JudgeKnowledge.load(store, small=assistant.small)
    cases = await store.cases.by_ids(o.case_id for o in outputs)
    system = build_system(session.project.task, version, knowledge)
    related_limit = 2 if assistant.small else 4
    pending = collections.deque(outputs)
    events: asyncio.Queue[Any] = asyncio.Queue()
    answers: asyncio.Queue[tuple[Output, StructuredResult]] = asyncio.Queue()

    async def ask() -> None:
        while pending:
            output = pending.popleft()
            case = cases[output.case_id]
            call = build_call(assistant, system, case, output,
                              knowledge.related(case, related_limit))
            answers.put_nowait((output, await complete_json(assistant.client, call, SCHEMA,
                                                            name="verdict")))

    async def keep(arrived: list[tuple[Output, StructuredResult]]) -> list[AssistEvent]:
        """Store the verdicts that arrived together in one transaction; the events say
        what became of each answer, in order."""
        kept: list[AssistEvent] = []
        verdicts: list[tuple[int, Verdict, str]] = []
        for output, result in arrived:
            assistant.count(summary, result)
            if result.ok:
                verdicts.append((output.id, *parse(result.value)))
                continue
            summary.errors += 1
            summary.error = result.error
            kept.append(ItemRejected(f"{cases[output.case_id].ext_id}: {result.error}",
                                     output.id))
        stored: list[Judgement] = await store.judgements.add_many(verdicts, assistant.model) \
            if verdicts else []
        summary.done += len(stored)
        return kept + [Judged(j.output_id, j) for j in stored]

    async def write() -> None:
        # One writer, so calls never wait for the database; what arrived while it wrote
        # is written together (a transaction per batch, not per verdict).
        left = len(outputs)
        while left:
            arrived = [await answers.get()]
            while not answers.empty() and len(arrived) < 64:
                arrived.append(answers.get_nowait())
            left -= len(arrived)
            for event in await keep(arrived):
                events.put_nowait(event)
        events.put_nowait(_DONE)

    def report_crash(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            events.put_nowait(_Crash(task.exception()))  # type: ignore[arg-type]

    callers = [asyncio.create_task(ask()) for _ in range(min(assistant.width, len(outputs)))]
    writer = asyncio.create_task(write())
    for task in (*callers, writer):
        task.add_done_callback(report_crash)
    async with assistant.recorded(summary, version.id):
        try:
            while True:
                event = await events.get()
                if event is _DONE:
                    break
                if isinstance(event, _Crash):
                    raise event.exc
                yield event
        finally:
            await _wind_down(callers, writer, answers, keep)
    yield AssistFinished(summary)


async def _wind_down(callers: list[asyncio.Task[None]], writer: asyncio.Task[None],
                     answers: asyncio.Queue[tuple[Output, StructuredResult]],
                     keep: Any) -> None:
    """Stop the calls; if the writer is still going (a stop), keep the verdicts that had
    already arrived (they were paid for)."""
    for task in callers:
        task.cancel()
    await asyncio.gather(*callers, return_exceptions=True)
    if writer.done():
        return
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)

    async def keep_arrived() -> None:
        arrived = []
        while not answers.empty():
            arrived.append(answers.get_nowait())
        if arrived:
            await keep(arrived)

    try:
        await asyncio.shield(keep_arrived())
    except Exception:  # noqa: BLE001, S110 - stopping: what could be kept was kept
        pass


