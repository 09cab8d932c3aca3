"""Policy coverage: per rule of a version, how many cases probe it, how many candidates
wait, and how the model does on them (SPEC section 2, Policy rule).

A case points at a rule by its number (`Case.rule_number`, the rule it was generated
for). The pass rate counts as everywhere else: good / labelled, unsure is labelled and
not good."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from coevo_tui.domain.model import CaseState, PolicyRule, Verdict

NO_RULE_TITLE = "(no rule)"


@dataclass(frozen=True)
class RuleCoverage:
    """One rule's coverage. `number` is None only for the row of cases that probe no rule
    (see `coverage`'s `include_unassigned`). `pass_rate` is None with nothing labelled."""

    number: int | None
    title: str
    active_cases: int
    candidates_waiting: int
    good: int
    labelled: int
    pass_rate: float | None

    @property
    def uncovered(self) -> bool:
        """No active case probes this rule: the gap the map is for."""
        return self.active_cases == 0


def coverage(rules: Iterable[PolicyRule],
             case_rules: Iterable[tuple[int, int | None, str | CaseState]],
             verdicts: Mapping[int, Verdict | str | None], *,
             include_unassigned: bool = False) -> list[RuleCoverage]:
    """Coverage per rule, in the rules' order.

    `case_rules`: (case id, rule number or None, state) for the cases (any states; only
    active cases and candidates count). `verdicts`: case id -> the current verdict of its
    answer under the version (absent or None: unlabelled). With `include_unassigned`, a
    last row (number None) counts the cases that probe no rule of these (also a rule
    number the version does not have)."""
    rules = list(rules)
    numbers = {r.number for r in rules}
    counts: dict[int | None, list[int]] = {r.number: [0, 0, 0, 0] for r in rules}
    counts[None] = [0, 0, 0, 0]
    for case_id, number, state in case_rules:
        key = number if number in numbers else None
        state = CaseState(state)
        row = counts[key]
        if state == CaseState.CANDIDATE:
            row[1] += 1
        elif state == CaseState.ACTIVE:
            row[0] += 1
            verdict = verdicts.get(case_id)
            if verdict is not None:
                row[3] += 1
                row[2] += Verdict(verdict) == Verdict.GOOD
    result = [_row(r.number, r.title, counts[r.number]) for r in rules]
    if include_unassigned and any(counts[None]):
        result.append(_row(None, NO_RULE_TITLE, counts[None]))
    return result


def _row(number: int | None, title: str, counts: list[int]) -> RuleCoverage:
    active, waiting, good, labelled = counts
    return RuleCoverage(number, title, active, waiting, good, labelled,
                        good / labelled if labelled else None)
