"""Task "rationale": a suggested rationale for a Bad or Unsure label (SPEC section 1,
step 3), which the user edits before saving.

A rationale is a policy principle stated on a concrete example. The assistant is shown
the instructions, the input, the answer, the verdict, and rationales the user wrote on
other cases (their wording is the style to follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coevo_tui.assist.assistant import Assistant, quoted
from coevo_tui.assist.context import LabelledCase, labelled_cases, newest_each
from coevo_tui.assist.rules import example_json
from coevo_tui.domain.diversity import normalise
from coevo_tui.domain.model import Case, Output, PromptVersion, Verdict
from coevo_tui.llm.client import ModelCall
from coevo_tui.llm.structured import complete_json

if TYPE_CHECKING:
    from coevo_tui.session import Session

TASK = "rationale"
RATIONALE_CHARS = 600

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"rationale": {"type": "string", "minLength": 1}},
    "required": ["rationale"], "additionalProperties": False}

SYSTEM = """\
You help a user write the rationale for their label on an answer of an LLM application.

A rationale states the policy on this concrete example: in one or two sentences, what \
the application should have done with this input, and why. Write it as the user would, \
plainly, without repeating the whole input.
- For "bad": say what the right answer was and which principle the answer broke.
- For "unsure": say which question the policy leaves open here.

Example, for a bad answer of a chat moderator that removed "he called me a [slur], \
please ban him":
{example}"""

EXAMPLE = {"rationale": "Quoting a slur to report it is not using it: the report should be"
                        " allowed and the reporter not punished."}


@dataclass(frozen=True)
class SuggestionResult:
    """The suggested rationale (`text`, empty on failure) or `error`, one line."""

    text: str = ""
    error: str | None = None


@dataclass(frozen=True)
class RationalePrompt:
    task: str
    version: PromptVersion | None
    case: Case
    answer: Output
    verdict: Verdict
    examples: tuple[LabelledCase, ...] = ()


def build_messages(prompt: RationalePrompt) -> list[dict[str, str]]:
    """The messages of the rationale call."""
    parts = []
    if prompt.task.strip():
        parts.append(f"The application: {quoted(prompt.task, 600)}")
    if prompt.version is not None and prompt.version.instructions.strip():
        parts.append(f"Its instructions:\n<<<\n{prompt.version.instructions.strip()}\n>>>")
    if prompt.examples:
        lines = [f"- {example_json(quoted(e.input, 120))} ({e.verdict.value}):"
                 f" {quoted(e.rationale, 200)}" for e in prompt.examples]
        parts.append("Rationales the user wrote before:\n" + "\n".join(lines))
    parts.append(f"The input:\n{example_json(prompt.case.input)}")
    parts.append(f"The application answered:\n{example_json(quoted(prompt.answer.text, 800))}")
    parts.append(f"The user labelled this answer {prompt.verdict.value}. Write the"
                 ' rationale, as {"rationale": "..."}.')
    return [{"role": "system", "content": SYSTEM.format(example=example_json(EXAMPLE))},
            {"role": "user", "content": "\n\n".join(parts)}]


def build_call(assistant: Assistant, prompt: RationalePrompt) -> ModelCall:
    return assistant.call(TASK, build_messages(prompt), max_tokens=300)


def parse(value: Any) -> str:
    """The rationale's text: whitespace tidied, within RATIONALE_CHARS."""
    text = " ".join(str(value.get("rationale", "")).split()) if isinstance(value, dict) else ""
    if len(text) > RATIONALE_CHARS:
        text = text[:RATIONALE_CHARS - 1].rstrip() + "…"
    return text


async def suggest(session: Session, output_id: int, verdict: Verdict | str
                  ) -> SuggestionResult:
    """A suggested rationale for labelling output `output_id` as `verdict` (never
    stored: the user edits it and saves it with the label). NotFound for an unknown
    output. Leaves one "assist" event."""
    store = session.store
    verdict = Verdict(verdict)
    output = await store.outputs.get(output_id)
    case = await store.cases.get(output.case_id)
    version = await store.versions.by_id(output.version_id)
    assistant = Assistant(session)
    await assistant.ready()
    examples = tuple(e for e in newest_each(await labelled_cases(store))
                     if e.rationale and e.case_id != case.id)[:3 if assistant.small else 6]
    prompt = RationalePrompt(session.project.task, version, case, output, verdict, examples)
    summary = assistant.summary(TASK, case.ext_id)
    async with assistant.recorded(summary, output.id):
        result = await complete_json(assistant.client, build_call(assistant, prompt), SCHEMA,
                                     name="rationale", urgent=True)
        assistant.count(summary, result)
        if not result.ok:
            summary.errors += 1
            summary.error = result.error
            return SuggestionResult(error=result.error)
        text = parse(result.value)
        if not text:
            summary.error = "the suggestion was empty"
            return SuggestionResult(error=summary.error)
        if normalise(text) == normalise(EXAMPLE["rationale"]):
            summary.error = "the assistant repeated the prompt's example instead of answering"
            return SuggestionResult(error=summary.error)
        summary.generated = summary.kept = 1
    return SuggestionResult(text)
