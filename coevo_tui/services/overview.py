"""What the Overview shows of each version, as plain facts (no Textual): pass rate,
counts, statuses against the parent version, and the cases that motivated it.

Counted: the active cases, and per version the newest answer of one model (mixing models
would compare a model with another, not a version with another). That model is the model
under test when it has answers, else the one with the most answers (`pick_model`); the
screen's `m` cycles through the others. Comparing two versions chooses its model by the
stricter rule of `services.comparison`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coevo_tui.domain.model import Label, PromptVersion
from coevo_tui.domain.status import AnswerFacts, VersionSummary, compare_all_facts, summarize_facts

if TYPE_CHECKING:
    from coevo_tui.store import Store


@dataclass(frozen=True)
class Motivation:
    """A case that motivated a version, with the label (and rationale) it pointed at."""

    case_ext_id: str
    case_input: str
    label: Label | None


@dataclass(frozen=True)
class VersionRow:
    """One version's line of the overview."""

    version: PromptVersion
    parent_number: int | None
    summary: VersionSummary
    motivations: tuple[Motivation, ...] = ()


def pick_model(configured: str | None, counts: Mapping[str, int]) -> str | None:
    """The model whose answers are counted: the configured one if it has answers, else the
    one with the most answers (ties: alphabetical), else the configured one (or None)."""
    if configured is not None and counts.get(configured):
        return configured
    if counts:
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]
    return configured


def version_rows_from_facts(versions: Sequence[PromptVersion], case_ids: Sequence[int],
                            facts: Mapping[int, Mapping[int, AnswerFacts]],
                            motivations: Mapping[int, Sequence[Motivation]] | None = None
                            ) -> list[VersionRow]:
    """`version_rows` from answers' facts (version id -> case id -> `AnswerFacts`), as
    `Store.answers.facts_per_case` reads them: the same rows without an object per answer (pure: the
    screen runs it in a thread)."""
    by_id = {v.id: v for v in versions}
    rows = []
    for version in versions:
        mine = facts.get(version.id, {})
        parent = by_id.get(version.parent_id) if version.parent_id is not None else None
        statuses = None
        if parent is not None:
            statuses = compare_all_facts(case_ids, facts.get(parent.id, {}), mine)
        rows.append(VersionRow(
            version=version,
            parent_number=None if parent is None else parent.number,
            summary=summarize_facts(case_ids, mine, statuses),
            motivations=tuple((motivations or {}).get(version.id, ())),
        ))
    return rows


async def read_motivations(store: Store, versions: Sequence[PromptVersion]
                           ) -> dict[int, list[Motivation]]:
    """Per version id, the cases that motivated it with the labels they pointed at."""
    pairs = {v.id: await store.versions.motivating_cases(v.id) for v in versions}
    label_ids = [lid for found in pairs.values() for _, lid in found if lid is not None]
    labels = await store.labels.by_id(label_ids) if label_ids else {}
    cases = {cid: await store.cases.get(cid) for found in pairs.values() for cid, _ in found}
    return {
        vid: [Motivation(cases[cid].ext_id, cases[cid].input,
                         labels.get(lid) if lid is not None else None)
              for cid, lid in found]
        for vid, found in pairs.items()
    }
