"""Aggregate counts of where a project stands in the loop (`store.loop`), for the guided
workflow (coevo_tui/services/workflow.py).

Each read is one SQL aggregate over indexes, never a row per case brought into Python, so
that the Cases screen can ask for them at 100,000 cases without holding up anything.
Answers are chosen as everywhere else (store/answers.py): per case, the newest output under
the version (and model) that is not cancelled, with its newest label; only active cases
count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coevo_tui.domain.model import CaseState
from coevo_tui.store.database import Database

_ACTIVE = CaseState.ACTIVE.value


@dataclass(frozen=True)
class VerdictCounts:
    """The active cases' answers under one version, by what they still need."""

    answered: int = 0  # ok answers
    unlabelled: int = 0
    good: int = 0
    failing_explained: int = 0  # bad or unsure, with a rationale
    failing_unexplained: int = 0  # bad or unsure, without one

    @property
    def failing(self) -> int:
        return self.failing_explained + self.failing_unexplained


def _newest(version_id: int, model: str | None) -> tuple[str, list[Any]]:
    """The ids of the answers (see the module docstring), as a sub-query."""
    sql = ("SELECT max(id) FROM output WHERE version_id = ? AND status != 'cancelled'")
    params: list[Any] = [version_id]
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    return sql + " GROUP BY case_id", params


_CURRENT_LABEL = "label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"


class LoopFacts:
    """Counts of what is left to do in the loop (`store.loop`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def unanswered(self, version_id: int, model: str | None = None) -> int:
        """Active cases with no ok answer under the version (of `model`; None: of any
        model): what running the version (R) would call the model for. An error answer
        is no answer (the run tries it again)."""
        # NOT IN over a sub-query SQLite reads once: a correlated NOT EXISTS let the
        # planner scan the version's outputs for every case (minutes at 100,000).
        answered = ("SELECT case_id FROM output WHERE version_id = ? AND status = 'ok'"
                    + (" AND model = ?" if model is not None else ""))
        params: list[Any] = [_ACTIVE, version_id] + ([model] if model is not None else [])
        return int(await self._db.scalar(
            f"SELECT count(*) FROM cases WHERE state = ? AND id NOT IN ({answered})", params))

    async def verdicts(self, version_id: int, model: str | None = None) -> VerdictCounts:
        """The active cases' ok answers under the version, counted by their current
        label: unlabelled, good, bad or unsure with and without a rationale."""
        newest, params = _newest(version_id, model)
        rows = await self._db.tuples(
            "SELECT l.verdict, coalesce(trim(l.rationale), '') != '', count(*)"
            f" FROM output o JOIN cases c ON c.id = o.case_id AND c.state = ?"
            f" LEFT JOIN {_CURRENT_LABEL}"
            f" WHERE o.id IN ({newest}) AND o.status = 'ok' GROUP BY 1, 2",
            [_ACTIVE, *params])
        counts = {"answered": 0, "unlabelled": 0, "good": 0, "failing_explained": 0,
                  "failing_unexplained": 0}
        for verdict, explained, n in rows:
            counts["answered"] += n
            if verdict is None:
                counts["unlabelled"] += n
            elif verdict == "good":
                counts["good"] += n
            elif explained:
                counts["failing_explained"] += n
            else:
                counts["failing_unexplained"] += n
        return VerdictCounts(**counts)

    async def regressions(self, baseline_id: int, revision_id: int,
                          model: str | None = None) -> int:
        """Active cases whose answer was labelled good under the baseline and is labelled
        bad under the revision (`ComparisonStatus.REGRESSED`: when both sides carry a
        verdict, the labels decide)."""
        base, base_params = _newest(baseline_id, model)
        rev, rev_params = _newest(revision_id, model)
        sql = (
            "WITH rev AS (SELECT o.case_id FROM output o JOIN " + _CURRENT_LABEL +
            f" WHERE o.id IN ({rev}) AND o.status = 'ok' AND l.verdict = 'bad'),"
            " base AS (SELECT o.case_id FROM output o JOIN " + _CURRENT_LABEL +
            f" WHERE o.id IN ({base}) AND l.verdict = 'good')"
            " SELECT count(*) FROM rev JOIN base ON base.case_id = rev.case_id"
            " JOIN cases c ON c.id = rev.case_id AND c.state = ?")
        return int(await self._db.scalar(sql, [*rev_params, *base_params, _ACTIVE]))

    async def rules_without_cases(self) -> tuple[int, list[tuple[int, str]]]:
        """How many rules the newest version whose rules were extracted has (0: none was
        extracted), and the (number, title) of each that no active case probes, in the
        rules' order."""
        rules = await self._db.tuples(
            "SELECT number, title FROM policy_rule WHERE version_id ="
            " (SELECT max(version_id) FROM policy_rule) ORDER BY number")
        if not rules:
            return 0, []
        probed = {number for (number,) in await self._db.tuples(
            "SELECT DISTINCT rule_number FROM cases WHERE state = ?"
            " AND rule_number IS NOT NULL", (_ACTIVE,))}
        return len(rules), [(number, title) for number, title in rules
                            if number not in probed]
