"""Bulk reads of answers (an output with its current label): per case under a version,
as objects or as plain facts for 100,000 cases; one case's answers; the export records.

The choice of answer is the same everywhere: per case, the newest output under a version
(and model) that is not cancelled (a stopped call is not an answer, so the previous answer
stays current), with its newest label. The decisions made from them are the pure
functions of coevo_tui.domain.status and coevo_tui.domain.carryover.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

from coevo_tui.domain.errors import NotFound
from coevo_tui.domain.model import (
    Case,
    CaseSource,
    CaseState,
    Label,
    LabelSource,
    Output,
    OutputStatus,
    Verdict,
)
from coevo_tui.domain.status import (
    FACT_CASE,
    FACT_COST,
    FACT_LATENCY,
    FACT_OUTPUT,
    FACT_SOURCE,
    FACT_STATUS,
    FACT_TEXT,
    FACT_VERDICT,
    Answer,
    AnswerFacts,
    VerdictChange,
    verdict_changes,
)
from coevo_tui.store.database import Columns, Database
from coevo_tui.store.versions import Versions

# Bulk reads with more rows than this turn them into objects in a thread, so a screen's
# event loop keeps drawing while 100,000 answers are read.
_CONVERT_INLINE_ROWS = 5_000

_CURRENT_LABEL_JOIN = (
    "LEFT JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
)

# An output followed by its current label's columns (NULLs when unlabelled), read as
# plain tuples: for 100,000 rows, sqlite3.Row lookups by name and enum calls dominate.
_ANSWER = Columns("AnswerColumns", [
    ("o.id", "output_id"),
    ("o.case_id", "case_id"),
    ("o.version_id", "version_id"),
    ("o.model", "model"),
    ("o.params", "params"),
    ("o.text", "text"),
    ("o.status", "status"),
    ("o.error", "error"),
    ("o.latency_ms", "latency_ms"),
    ("o.tokens_in", "tokens_in"),
    ("o.tokens_out", "tokens_out"),
    ("o.cost", "cost"),
    ("o.cached", "cached"),
    ("o.run_id", "run_id"),
    ("o.created_at", "created_at"),
    ("l.id", "label_id"),
    ("l.verdict", "verdict"),
    ("l.rationale", "rationale"),
    ("l.source", "label_source"),
    ("l.carried_from", "carried_from"),
    ("l.created_at", "labelled_at"),
])

# A case id and the current label of its answer.
_CASE_LABEL = Columns("CaseLabelColumns", [
    ("o.case_id", "case_id"),
    ("l.id", "label_id"),
    ("l.output_id", "output_id"),
    ("l.verdict", "verdict"),
    ("l.rationale", "rationale"),
    ("l.source", "label_source"),
    ("l.carried_from", "carried_from"),
    ("l.created_at", "labelled_at"),
])

# An answer's facts, laid out as the domain's AnswerFacts (coevo_tui.domain.status).
_FACTS = Columns.in_layout("AnswerFactsColumns", {
    FACT_CASE: ("o.case_id", "case_id"),
    FACT_OUTPUT: ("o.id", "output_id"),
    FACT_STATUS: ("o.status", "status"),
    FACT_TEXT: ("o.text", "text"),
    FACT_VERDICT: ("l.verdict", "verdict"),
    FACT_SOURCE: ("l.source", "label_source"),
    FACT_COST: ("o.cost", "cost"),
    FACT_LATENCY: ("o.latency_ms", "latency_ms"),
})

# A case's own columns, for the read of a case on show.
_CASE = Columns("CaseColumns", [
    ("c.id", "id"),
    ("c.ext_id", "ext_id"),
    ("c.input", "input"),
    ("c.tags", "tags"),
    ("c.note", "note"),
    ("c.source", "source"),
    ("c.origin_case_id", "origin_case_id"),
    ("c.state", "state"),
    ("c.created_at", "case_created_at"),
    ("c.updated_at", "case_updated_at"),
    ("c.rule_number", "rule_number"),
    ("c.reason", "reason"),
    ("c.origin_version_id", "origin_version_id"),
])

# A case on show: which side (the query's own number), the case, that side's answer with
# its current label, and how many labels the answer has had.
_ON_SHOW = Columns("CaseOnShowColumns", [
    ("? AS side", "side"),
    *_CASE.columns,
    *_ANSWER.columns,
    ("(SELECT count(*) FROM label WHERE output_id = o.id)", "label_count"),
])

_OUTPUT_STATUSES = {s.value: s for s in OutputStatus}
_VERDICTS = {v.value: v for v in Verdict}
_LABEL_SOURCES = {s.value: s for s in LabelSource}

_T = TypeVar("_T")


def _answers(rows: Iterable[tuple[Any, ...]]) -> list[Answer]:
    """Answers from `_ANSWER` tuples. Outputs with equal params share one decoded dict (a
    run's outputs all have the same): treat it as read-only."""
    at = _ANSWER.at
    # Positions in locals: this loop runs once per case, 100,000 times.
    i_id, i_case, i_version, i_model, i_params = (
        at.output_id, at.case_id, at.version_id, at.model, at.params)
    i_text, i_status, i_error, i_latency, i_tokens_in, i_tokens_out = (
        at.text, at.status, at.error, at.latency_ms, at.tokens_in, at.tokens_out)
    i_cost, i_cached, i_run, i_created = at.cost, at.cached, at.run_id, at.created_at
    i_label, i_verdict, i_rationale, i_source, i_carried, i_labelled = (
        at.label_id, at.verdict, at.rationale, at.label_source, at.carried_from,
        at.labelled_at)
    params_cache: dict[str, dict[str, Any]] = {}
    statuses, verdicts, sources = _OUTPUT_STATUSES, _VERDICTS, _LABEL_SOURCES
    answers = []
    for r in rows:
        params = params_cache.get(r[i_params])
        if params is None:
            params = params_cache[r[i_params]] = json.loads(r[i_params])
        output = Output(r[i_id], r[i_case], r[i_version], r[i_model], params, r[i_text],
                        statuses[r[i_status]], r[i_error], r[i_latency], r[i_tokens_in],
                        r[i_tokens_out], r[i_cost], bool(r[i_cached]), r[i_run],
                        r[i_created])
        label = None if r[i_label] is None else Label(
            r[i_label], r[i_id], verdicts[r[i_verdict]], r[i_rationale],
            sources[r[i_source]], r[i_carried], r[i_labelled])
        answers.append(Answer(output, label))
    return answers


def _labels_by_case(rows: Iterable[tuple[Any, ...]]) -> dict[int, Label]:
    """Case id -> Label from `_CASE_LABEL` tuples."""
    at = _CASE_LABEL.at
    i_case, i_label, i_output, i_verdict, i_rationale, i_source, i_carried, i_labelled = (
        at.case_id, at.label_id, at.output_id, at.verdict, at.rationale, at.label_source,
        at.carried_from, at.labelled_at)
    verdicts, sources = _VERDICTS, _LABEL_SOURCES
    return {
        r[i_case]: Label(r[i_label], r[i_output], verdicts[r[i_verdict]], r[i_rationale],
                         sources[r[i_source]], r[i_carried], r[i_labelled])
        for r in rows
    }


async def _convert(rows: Sequence[tuple[Any, ...]],
                   convert: Callable[[Sequence[tuple[Any, ...]]], _T]) -> _T:
    if len(rows) < _CONVERT_INLINE_ROWS:
        return convert(rows)
    # 100k rows take ~1 s to become objects: keep the caller's event loop free.
    return await asyncio.to_thread(convert, rows)


def _newest_per_case(version_id: int, model: str | None) -> tuple[str, list[Any]]:
    """The ids of the answers: per case, the newest non-cancelled output."""
    sql = "SELECT max(id) FROM output WHERE version_id = ? AND status != 'cancelled'"
    params: list[Any] = [version_id]
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    return sql + " GROUP BY case_id", params


class Answers:
    """Bulk reads of outputs with their current labels (`store.answers`)."""

    def __init__(self, database: Database, versions: Versions) -> None:
        self._db = database
        self._versions = versions

    # ------------------------------------------------------------------ per case, in bulk
    async def per_case(self, version_id: int, model: str | None = None) -> dict[int, Answer]:
        """Per case id, the newest non-cancelled output under a version (and model, if
        given) with its current label, in one query."""
        newest, params = _newest_per_case(version_id, model)
        rows = await self._db.tuples(
            f"SELECT {_ANSWER.select} FROM output o {_CURRENT_LABEL_JOIN}"
            f" WHERE o.id IN ({newest})",
            params,
        )
        answers = await _convert(rows, _answers)
        return {a.output.case_id: a for a in answers}

    async def facts_per_case(self, version_id: int, model: str | None = None
                             ) -> dict[int, AnswerFacts]:
        """`per_case` as plain `AnswerFacts` tuples (case id, output id, status, text,
        verdict, label source, cost, latency), in one query: what is needed to compare
        and count 100,000 answers, without an Output and a Label object each (the same
        choice of output and label)."""
        newest, params = _newest_per_case(version_id, model)
        rows = await self._db.tuples(
            f"SELECT {_FACTS.select} FROM output o {_CURRENT_LABEL_JOIN}"
            f" WHERE o.id IN ({newest})",
            params,
        )
        return {r[FACT_CASE]: r for r in rows}  # type: ignore[misc]

    async def labels_per_case(self, version_id: int, model: str | None = None
                              ) -> dict[int, Label]:
        """Per case id, the current label of the newest non-cancelled output under a
        version (and model); cases whose newest output is unlabelled are absent (the
        label's source tells carried ones apart)."""
        newest, params = _newest_per_case(version_id, model)
        rows = await self._db.tuples(
            f"SELECT {_CASE_LABEL.select} FROM output o"
            " JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
            f" WHERE o.id IN ({newest})",
            params,
        )
        return await _convert(rows, _labels_by_case)

    async def labelled(self, sources: Iterable[LabelSource] | None = None) -> list[Answer]:
        """Every output that has a label (any version and model) with its current label,
        oldest label first; only labels from `sources` if given. What the assistant
        learns from: the project's verdicts and rationales."""
        sql = (f"SELECT {_ANSWER.select} FROM label l JOIN output o ON o.id = l.output_id"
               " WHERE l.id IN (SELECT max(id) FROM label GROUP BY output_id)")
        params: list[Any] = []
        if sources is not None:
            names = [s.value for s in sources]
            sql += f" AND l.source IN ({','.join('?' * len(names))})"
            params += names
        rows = await self._db.tuples(sql + " ORDER BY l.id", params)
        return await _convert(rows, _answers)

    # ------------------------------------------------------------------ one case
    # The reads a screen needs to show one case.
    async def case_on_show(self, case_id: int, sides: Sequence[tuple[int, str | None]]
                           ) -> tuple[Case, list[tuple[Answer | None, int]]]:
        """The case, and for each side (version id, model; None: any model) the newest
        non-cancelled answer with its current label (None when there is none; the same
        choice as `Outputs.newest_per_model` and `per_case`) and how many labels that
        answer has had (its history's length), in one query: what the Compare and Label
        screens' j/k need, in one round trip through aiosqlite's thread."""
        if not sides:
            raise ValueError("case_on_show needs at least one side")
        # One SELECT per side, glued with UNION ALL; `side` keeps them apart. The unary
        # `+` keeps SQLite on the case's own outputs (index on case_id): with the version
        # indexable it walks every output of the version instead (~4 ms at 100,000).
        part = (
            f"SELECT {_ON_SHOW.select}"
            " FROM cases c LEFT JOIN output o ON o.id = (SELECT max(id) FROM output"
            " WHERE case_id = c.id AND +version_id = ? AND status != 'cancelled'"
            " AND (? IS NULL OR model = ?))"
            f" {_CURRENT_LABEL_JOIN} WHERE c.id = ?"
        )
        params: list[Any] = []
        for number, (version_id, model) in enumerate(sides):
            params += [number, version_id, model, model, case_id]
        at = _ON_SHOW.at
        rows = sorted(await self._db.tuples_in_one_hop(
            " UNION ALL ".join([part] * len(sides)), params), key=lambda r: r[at.side])
        if not rows:
            raise NotFound(f"no case with id {case_id}")
        first = _ON_SHOW.Row._make(rows[0])
        case = Case(id=first.id, ext_id=first.ext_id, input=first.input,
                    tags=tuple(json.loads(first.tags)), note=first.note,
                    source=CaseSource(first.source), origin_case_id=first.origin_case_id,
                    state=CaseState(first.state), created_at=first.case_created_at,
                    updated_at=first.case_updated_at, rule_number=first.rule_number,
                    reason=first.reason, origin_version_id=first.origin_version_id)
        shown: list[tuple[Answer | None, int]] = []
        answer_columns = slice(at.output_id, at.labelled_at + 1)  # the _ANSWER layout
        for row in rows:
            if row[at.output_id] is None:
                shown.append((None, 0))
            else:
                shown.append((_answers([row[answer_columns]])[0], row[at.label_count]))
        return case, shown

    async def of_case(self, case_id: int) -> list[Answer]:
        """Every output of one case (oldest first) with its current label."""
        rows = await self._db.tuples(
            f"SELECT {_ANSWER.select} FROM output o {_CURRENT_LABEL_JOIN}"
            " WHERE o.case_id = ? ORDER BY o.id",
            (case_id,),
        )
        return _answers(rows)

    async def verdict_changes(self, case_id: int, model: str | None = None
                              ) -> list[VerdictChange]:
        """The versions under which this case's verdict differs from its verdict under the
        parent version (its provenance), oldest first. Per version the newest
        non-cancelled output counts (of `model`, if given)."""
        per_version: dict[int, Answer] = {}
        for answer in await self.of_case(case_id):
            out = answer.output
            if out.status == OutputStatus.CANCELLED or (model is not None and out.model != model):
                continue
            per_version[out.version_id] = answer  # oldest first, so the newest wins
        return verdict_changes(await self._versions.all(), per_version)

    # ------------------------------------------------------------------ everything
    async def export_records(self) -> AsyncIterator[dict[str, Any]]:
        """Every case with its outputs and their current labels, in SPEC section 5's shape."""
        versions = {v.id: v.number for v in await self._versions.all()}
        cases = await self._db.all("SELECT * FROM cases ORDER BY id")
        outputs: dict[int, list[sqlite3.Row]] = {}
        for r in await self._db.all("SELECT * FROM output ORDER BY id"):
            outputs.setdefault(r["case_id"], []).append(r)
        labels = {
            r["output_id"]: r
            for r in await self._db.all(
                "SELECT * FROM label WHERE id IN (SELECT max(id) FROM label GROUP BY output_id)"
            )
        }
        for c in cases:
            record: dict[str, Any] = {
                "id": c["ext_id"],
                "input": c["input"],
                "tags": json.loads(c["tags"]),
                "source": c["source"],
                "state": c["state"],
            }
            if c["note"]:
                record["note"] = c["note"]
            record["outputs"] = [
                {
                    "version": versions[o["version_id"]],
                    "model": o["model"],
                    "text": o["text"],
                    "status": o["status"],
                    "error": o["error"],
                    "label": labels[o["id"]]["verdict"] if o["id"] in labels else None,
                    "rationale": labels[o["id"]]["rationale"] if o["id"] in labels else None,
                    "label_source": labels[o["id"]]["source"] if o["id"] in labels else None,
                }
                for o in outputs.get(c["id"], [])
            ]
            yield record
