"""Task "revision": a draft of the next instructions from the current bad and unsure
cases with their rationales (SPEC section 1, step 5), with a short summary citing the
cases it addresses.

The draft is a suggestion: the Prompt screen opens it in the editor with a diff against
the current version; saving it records `case_ids` (with `label_ids`, the labels whose
rationales motivated it) as the version's motivation (`RevisionDraft.motivating`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, quoted, text_while
from coevo_tui.assist.events import AssistEvent, AssistText, RevisionDrafted
from coevo_tui.assist.rules import example_json
from coevo_tui.domain.model import CaseState, PromptVersion, Verdict
from coevo_tui.llm.client import ModelCall
from coevo_tui.llm.structured import complete_json

if TYPE_CHECKING:
    from coevo_tui.session import Session

TASK = "revision"
MAX_CASES = 30



def schema(ext_ids: list[str]) -> dict[str, Any]:
    """The answer's shape; the case ids one of those shown (constrained decoding then
    cannot cite a case that was not shown, which small models otherwise copy from the
    example)."""
    ids: dict[str, Any] = {"type": "string"}
    if ext_ids:
        ids["enum"] = list(ext_ids)
    return {"type": "object",
            "properties": {"instructions": {"type": "string", "minLength": 1},
                           "summary": {"type": "string"},
                           "case_ids": {"type": "array", "items": ids}},
            "required": ["instructions", "summary", "case_ids"],
            "additionalProperties": False}

SYSTEM = """\
You revise the instructions of an LLM application so that it handles the failing cases \
correctly without breaking what already works.

- Keep everything in the current instructions that the cases do not contradict.
- Change or add only what the user's reasons call for. Say the new rule plainly.
- Write the complete new instructions, not a list of changes; keep their style and \
their answer format.
- "summary": at most three sentences on what changed, naming the case ids in brackets.
- "case_ids": the ids of the cases your changes address, exactly as given below.

Example answer:
{example}"""

EXAMPLE = {"instructions": "You answer customer questions for Acme. Be polite. Never promise"
                           " a refund, even when asked hypothetically; you may explain the"
                           " refund policy. ...",
           "summary": "Hypothetical refund questions are now covered (q7, q9).",
           "case_ids": ["q7", "q9"]}


@dataclass(frozen=True)
class FailingCase:
    """A bad or unsure case under the current version, as the prompt shows it."""

    case_id: int
    ext_id: str
    input: str
    answer: str
    verdict: Verdict
    rationale: str
    label_id: int


@dataclass(frozen=True)
class RevisionDraft:
    """The drafted `instructions` and `summary`; the cases it addresses (`case_ids`, row
    ids) and the labels of their rationales (`label_ids`, in the same order); what was
    left out (`problems`); or `error` (one line) when there is no usable draft."""

    instructions: str = ""
    summary: str = ""
    case_ids: list[int] = field(default_factory=list)
    label_ids: list[int | None] = field(default_factory=list)
    problems: tuple[str, ...] = ()
    error: str | None = None

    @property
    def motivating(self) -> list[tuple[int, int | None]]:
        """(case id, label id) pairs for `store.versions.create(..., motivating=...)`."""
        return list(zip(self.case_ids, self.label_ids))


def build_messages(version: PromptVersion, task: str, cases: list[FailingCase]
                   ) -> list[dict[str, str]]:
    """The messages of the revision call."""
    parts = []
    if task.strip():
        parts.append(f"The application: {quoted(task, 600)}")
    parts.append(f"Current instructions (v{version.number}):\n<<<\n"
                 f"{version.instructions.strip()}\n>>>")
    lines = []
    for case in cases:
        why = quoted(case.rationale, 300) if case.rationale else "(no reason given)"
        lines.append(f"- {case.ext_id} [{case.verdict.value}] input:"
                     f" {example_json(quoted(case.input, 240))}; answer:"
                     f" {example_json(quoted(case.answer, 200))}; the user's reason: {why}")
    parts.append("Cases where the answer was bad or unsure:\n" + "\n".join(lines))
    parts.append('Write the revised instructions now, as {"instructions": "...", "summary":'
                 ' "...", "case_ids": [...]}.')
    return [{"role": "system", "content": SYSTEM.format(example=example_json(EXAMPLE))},
            {"role": "user", "content": "\n\n".join(parts)}]


def build_call(assistant: Assistant, version: PromptVersion, task: str,
               cases: list[FailingCase]) -> ModelCall:
    tokens = max(600, len(version.instructions) // 2 + 600)
    return assistant.call(TASK, build_messages(version, task, cases), max_tokens=tokens)


_EXT_ID = re.compile(r"[A-Za-z0-9_.:-]+")


def parse(value: Any, cases: list[FailingCase]) -> RevisionDraft:
    """The draft of a validated answer: case ids mapped to the cases shown (unknown ids
    left out and reported; ids named only in the summary count too)."""
    by_ext = {c.ext_id: c for c in cases}
    by_folded = {c.ext_id.casefold(): c for c in cases}
    instructions = str(value.get("instructions", "")).strip()
    summary = " ".join(str(value.get("summary", "")).split())
    problems: list[str] = []
    named: list[FailingCase] = []
    for raw in value.get("case_ids", []):
        key = str(raw).strip().strip("[]()#")
        case = by_ext.get(key) or by_folded.get(key.casefold())
        if case is None:
            problems.append(f"case {key!r} was not among the cases shown: left out")
        elif case not in named:
            named.append(case)
    for token in _EXT_ID.findall(summary):
        case = by_ext.get(token)
        if case is not None and case not in named:
            named.append(case)
    return RevisionDraft(instructions, summary, [c.case_id for c in named],
                         [c.label_id for c in named], tuple(problems))


async def failing_cases(session: Session, version: PromptVersion) -> list[FailingCase]:
    """The active cases whose answer under `version` is labelled bad or unsure (newest
    labels first, at most MAX_CASES)."""
    store = session.store
    answers = await store.answers.per_case(version.id)
    failing = [a for a in answers.values() if a.label is not None
               and a.label.verdict in (Verdict.BAD, Verdict.UNSURE)]
    failing.sort(key=lambda a: -(a.label.id if a.label else 0))
    cases = await store.cases.by_ids(a.output.case_id for a in failing)
    result = []
    for answer in failing:
        case = cases.get(answer.output.case_id)
        if case is None or case.state != CaseState.ACTIVE or answer.label is None:
            continue
        result.append(FailingCase(case.id, case.ext_id, case.input, answer.output.text,
                                  answer.label.verdict, answer.label.rationale,
                                  answer.label.id))
    return result[:MAX_CASES]


async def draft(session: Session, on_text: Callable[[str], object] | None = None
                ) -> RevisionDraft:
    """Draft a revision of the newest version from its bad and unsure cases (nothing is
    stored). Leaves one "assist" event when the model was asked. With `on_text`, the
    answer is streamed to it as it comes."""
    store = session.store
    version = await store.versions.latest()
    cases = await failing_cases(session, version)
    if not cases:
        return RevisionDraft(error=f"no bad or unsure answers under v{version.number} to"
                                   " learn from; label some first")
    assistant = Assistant(session)
    await assistant.ready()
    summary = assistant.summary(TASK, f"v{version.number}", total=len(cases))
    async with assistant.recorded(summary, version.id):
        result = await complete_json(assistant.client,
                                     build_call(assistant, version, session.project.task,
                                                cases),
                                     schema([c.ext_id for c in cases]), name="revision",
                                     urgent=True, on_text=on_text)
        assistant.count(summary, result)
        if not result.ok:
            summary.errors += 1
            summary.error = result.error
            return RevisionDraft(error=result.error)
        drafted = parse(result.value, cases)
        summary.problems.extend(drafted.problems)
        if drafted.instructions.strip() == version.instructions.strip():
            summary.error = "the draft is the same as the current instructions"
            return RevisionDraft(problems=drafted.problems, error=summary.error)
        summary.generated = summary.kept = 1
        summary.done = len(drafted.case_ids)
    return RevisionDraft(drafted.instructions, drafted.summary, drafted.case_ids,
                         drafted.label_ids, (*result.problems, *drafted.problems))


async def drafting(session: Session) -> AsyncIterator[AssistEvent]:
    """`draft` as a task's events, for an app job: `AssistText` as the answer comes, then
    one `RevisionDrafted` (with the draft, or its error). Closing the stream stops the
    model."""
    found: list[RevisionDraft] = []
    pieces = text_while(lambda on_text: draft(session, on_text), found)
    async with contextlib.aclosing(pieces):
        async for piece in pieces:
            yield AssistText(piece)
    yield RevisionDrafted(found[0])
