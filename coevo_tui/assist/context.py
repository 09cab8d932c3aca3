"""What the assistant is shown of the project: the cases the user has labelled, with the
answers, verdicts and rationales, as plain records for the prompts.

The user's verdicts are what teaches the assistant: labelled failures show where the
instructions are weak (candidates, revision), and rationales are worked examples of the
policy (rationale, judge)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from coevo_tui.domain.model import LabelSource, Verdict
from coevo_tui.store import Store

# Failures first: they show where the instructions are weak.
VERDICT_ORDER = {Verdict.BAD: 0, Verdict.UNSURE: 1, Verdict.GOOD: 2}


@dataclass(frozen=True)
class LabelledCase:
    """A case with one labelled answer: what the user said of it and why."""

    case_id: int
    ext_id: str
    input: str
    answer: str
    verdict: Verdict
    rationale: str
    output_id: int
    version_id: int
    label_id: int
    source: LabelSource
    origin_case_id: int | None = None


async def labelled_cases(store: Store,
                         sources: Iterable[LabelSource] = (LabelSource.HUMAN,)
                         ) -> dict[int, list[LabelledCase]]:
    """Per case id, its labelled answers (current labels from `sources`), newest label
    first, over every version and model."""
    answers = await store.answers.labelled(sources)
    cases = await store.cases.by_ids(a.output.case_id for a in answers)
    found: dict[int, list[LabelledCase]] = {}
    for answer in reversed(answers):  # newest label first
        label, output = answer.label, answer.output
        case = cases.get(output.case_id)
        if label is None or case is None:
            continue
        found.setdefault(case.id, []).append(LabelledCase(
            case.id, case.ext_id, case.input, output.text, label.verdict, label.rationale,
            output.id, output.version_id, label.id, label.source, case.origin_case_id))
    return found


def newest_each(by_case: Mapping[int, Sequence[LabelledCase]]) -> list[LabelledCase]:
    """Each case's newest labelled answer, failures first, then newest first."""
    newest = [items[0] for items in by_case.values() if items]
    newest.sort(key=lambda c: (VERDICT_ORDER[c.verdict], -c.label_id))
    return newest


def balanced(examples: Sequence[LabelledCase], limit: int) -> list[LabelledCase]:
    """Up to `limit` examples taking the verdicts in turn (bad, unsure, good), each in
    the given order: a judge shown only failures learns to say bad."""
    queues = {v: [e for e in examples if e.verdict == v] for v in VERDICT_ORDER}
    picked: list[LabelledCase] = []
    while len(picked) < limit and any(queues.values()):
        for verdict in VERDICT_ORDER:
            if queues[verdict] and len(picked) < limit:
                picked.append(queues[verdict].pop(0))
    return picked
