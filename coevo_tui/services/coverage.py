"""Policy coverage of a version, for the Overview and the commands: per rule, the active
cases that probe it, the candidates waiting, and the pass rate of its cases' answers
under the version (the pure counting is domain/coverage.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coevo_tui.domain.coverage import RuleCoverage, coverage
from coevo_tui.domain.model import PromptVersion

if TYPE_CHECKING:
    from coevo_tui.store import Store


async def policy_coverage(store: Store, version: PromptVersion, model: str | None = None,
                          *, include_unassigned: bool = False) -> list[RuleCoverage]:
    """Coverage per rule of `version` (empty when its rules were not extracted yet). The
    verdicts are those of each case's newest answer under the version (of `model`;
    None: of any model). With `include_unassigned`, a last row counts the cases that
    probe none of its rules."""
    rules = await store.rules.for_version(version.id)
    if not rules and not include_unassigned:
        return []
    case_rules = [(case_id, rule, state) for case_id, rule, state, _ in
                  await store.cases.rule_states()]
    labels = await store.answers.labels_per_case(version.id, model)
    verdicts = {case_id: label.verdict for case_id, label in labels.items()}
    return coverage(rules, case_rules, verdicts, include_unassigned=include_unassigned)
