"""The judge's suggestions: a verdict and a one-line reason per unlabelled answer.

A judgement is a suggestion, never a label, until the user accepts it (`accept`): then a
label with source judge is written through the one label writer and the judgement
points at it. Agreement between judge and user is read from here (`pairs`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import Judgement, Label, LabelSource, Output, Verdict
from coevo_tui.store.answers import _newest_per_case
from coevo_tui.store.database import Database, utc_now
from coevo_tui.store.labels import Labels
from coevo_tui.store.outputs import output_from_row

_VERDICTS = {v.value: v for v in Verdict}


def _judgement(row: sqlite3.Row) -> Judgement:
    return Judgement(id=row["id"], output_id=row["output_id"],
                     verdict=_VERDICTS[row["verdict"]], reason=row["rationale"],
                     model=row["model"], label_id=row["label_id"],
                     created_at=row["created_at"])


class Judgements:
    """Store, read and accept the judge's suggestions (`store.judgements`)."""

    def __init__(self, database: Database, labels: Labels) -> None:
        self._db = database
        self._labels = labels

    async def add(self, output_id: int, verdict: Verdict, reason: str, model: str
                  ) -> Judgement:
        """Store the judge's verdict on an output (one transaction, one event)."""
        (judgement,) = await self.add_many([(output_id, verdict, reason)], model)
        return judgement

    async def add_many(self, verdicts: Sequence[tuple[int, Verdict, str]], model: str
                       ) -> list[Judgement]:
        """Store several verdicts (output id, verdict, reason) of the judge `model` in one
        transaction, one event each: what arrived together is written together."""
        now = utc_now()
        stored: list[Judgement] = []
        async with self._db.transaction():
            for output_id, verdict, reason in verdicts:
                cur = await self._db.execute(
                    "INSERT INTO judgement (output_id, verdict, rationale, model, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (output_id, verdict.value, reason, model, now))
                judgement_id = cur.lastrowid
                assert judgement_id is not None
                await self._db.events.append(
                    "create", "judgement", judgement_id,
                    {"output_id": output_id, "verdict": verdict.value, "reason": reason,
                     "model": model})
                stored.append(Judgement(judgement_id, output_id, verdict, reason, model, None,
                                        now))
        return stored

    async def get(self, judgement_id: int) -> Judgement:
        """The judgement with this id; NotFound if there is none."""
        row = await self._db.one("SELECT * FROM judgement WHERE id = ?", (judgement_id,))
        if row is None:
            raise NotFound(f"no judgement with id {judgement_id}")
        return _judgement(row)

    async def newest_for_outputs(self, output_ids: Iterable[int]) -> dict[int, Judgement]:
        """The newest judgement of each output that has one, keyed by output id."""
        ids = list(output_ids)
        result: dict[int, Judgement] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start:start + 900]
            marks = ",".join("?" * len(chunk))
            rows = await self._db.all(
                f"SELECT * FROM judgement WHERE id IN (SELECT max(id) FROM judgement"
                f" WHERE output_id IN ({marks}) GROUP BY output_id)", chunk)
            result.update({r["output_id"]: _judgement(r) for r in rows})
        return result

    async def unlabelled_outputs(self, version_id: int, model: str | None = None, *,
                                 judge_model: str | None = None) -> list[Output]:
        """What the judge has still to judge under a version: per active case the newest
        answer (of `model`, None: of any model) when it is ok, has no label and no
        judgement yet (by `judge_model`, if given; else by any judge), by case id."""
        newest, params = _newest_per_case(version_id, model)
        judged = "SELECT 1 FROM judgement j WHERE j.output_id = o.id"
        extra: list[Any] = []
        if judge_model is not None:
            judged += " AND j.model = ?"
            extra.append(judge_model)
        rows = await self._db.all(
            f"SELECT o.* FROM output o JOIN cases c ON c.id = o.case_id"
            f" WHERE o.id IN ({newest}) AND o.status = 'ok' AND c.state = 'active'"
            " AND NOT EXISTS (SELECT 1 FROM label l WHERE l.output_id = o.id)"
            f" AND NOT EXISTS ({judged}) ORDER BY o.case_id",
            [*params, *extra])
        return [output_from_row(r) for r in rows]

    async def accept(self, judgement_id: int) -> Label:
        """Label the judged output with the judge's verdict (source judge, its reason as
        the rationale) through the one label writer, and link the judgement to that
        label, in one transaction. Accepting again returns the label already made. A
        suggestion on an output the user has labelled since is refused (UserError), as
        the user's own label wins."""
        async with self._db.transaction():
            judgement = await self.get(judgement_id)
            current = await self._labels.current(judgement.output_id)
            if judgement.label_id is not None and current is not None \
                    and current.id == judgement.label_id:
                return current
            if current is not None and current.source == LabelSource.HUMAN:
                raise UserError(f"that answer is already labelled {current.verdict.value};"
                                " the judge's suggestion was not applied")
            label, _ = await self._labels.write_within(
                judgement.output_id, judgement.verdict, judgement.reason, LabelSource.JUDGE)
            await self._db.execute("UPDATE judgement SET label_id = ? WHERE id = ?",
                                   (label.id, judgement.id))
            await self._db.events.append("accept", "judgement", judgement.id,
                                         {"label_id": label.id,
                                          "verdict": judgement.verdict.value})
        return label

    async def pairs(self, version_id: int, model: str | None = None
                    ) -> list[tuple[Verdict, Verdict]]:
        """(the user's verdict, the judge's verdict) for every answer under a version (of
        `model`, None: any) that has both a label and a judgement: the newest judgement,
        and the current label, so a label given after the judgement (a correction, or the
        suggestion accepted with a key) is the user's verdict."""
        sql = ("SELECT l.verdict, j.verdict FROM output o"
               " JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
               " JOIN judgement j ON j.id = (SELECT max(id) FROM judgement"
               " WHERE output_id = o.id) WHERE o.version_id = ?")
        params: list[Any] = [version_id]
        if model is not None:
            sql += " AND o.model = ?"
            params.append(model)
        rows = await self._db.tuples(sql + " ORDER BY o.id", params)
        return [(_VERDICTS[human], _VERDICTS[judge]) for human, judge in rows]

    async def corrections(self, limit: int = 20) -> list[tuple[int, Judgement]]:
        """The newest answers where the user's own label (source human) differs from the
        judge's newest verdict: (output id, that judgement), newest label first. What the
        judge must learn from first."""
        rows = await self._db.all(
            "SELECT j.*, o.id AS answer_id FROM output o"
            " JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
            " JOIN judgement j ON j.id = (SELECT max(id) FROM judgement WHERE output_id = o.id)"
            " WHERE l.source = 'human' AND l.verdict != j.verdict ORDER BY l.id DESC LIMIT ?",
            (limit,))
        return [(r["answer_id"], _judgement(r)) for r in rows]

    async def versions_judged(self) -> list[int]:
        """The ids of the versions with at least one judged answer, oldest first."""
        rows = await self._db.tuples(
            "SELECT DISTINCT o.version_id FROM judgement j JOIN output o ON o.id = j.output_id"
            " ORDER BY o.version_id")
        return [version_id for (version_id,) in rows]
