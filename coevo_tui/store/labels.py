"""Labels: the one label writer, and carry-over applied (SPEC section 2).

A label is never changed: labelling again appends a row, so the history stays. Every
label row is written by `_append`, with its event; `write` is how a person's (or a
confirmed judge's) verdict is given, and carries it to the case's identical answers in the
same transaction. Which outputs inherit what is decided by the pure functions of
coevo_tui.domain.carryover; this module reads what they need and writes what they decide.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from coevo_tui.domain.carryover import inherited_label, root_label_id, spread_targets
from coevo_tui.domain.errors import NotFound
from coevo_tui.domain.model import Label, LabelSource, OutputStatus, Verdict
from coevo_tui.store.answers import Answers
from coevo_tui.store.database import Database, utc_now
from coevo_tui.store.outputs import Outputs


def _label(row: sqlite3.Row) -> Label:
    return Label(
        id=row["id"],
        output_id=row["output_id"],
        verdict=Verdict(row["verdict"]),
        rationale=row["rationale"],
        source=LabelSource(row["source"]),
        carried_from=row["carried_from"],
        created_at=row["created_at"],
    )


class Labels:
    """Write and read labels (`store.labels`)."""

    def __init__(self, database: Database, outputs: Outputs, answers: Answers) -> None:
        self._db = database
        self._outputs = outputs
        self._answers = answers

    # ------------------------------------------------------------------ writing
    async def write(
        self,
        output_id: int,
        verdict: Verdict,
        rationale: str = "",
        source: LabelSource = LabelSource.HUMAN,
    ) -> tuple[Label, list[Label]]:
        """Label an output as a person (or a confirmed judge verdict) and, in the same
        transaction, carry the label to the case's identical outputs that are unlabelled
        or only hold an older carried label. The previous label stays in history.
        Returns (the label, the carried labels). NotFound for an unknown output, with
        nothing written."""
        if source == LabelSource.CARRIED:
            raise ValueError("carried labels are made by carry-over, not given")
        async with self._db.transaction():
            return await self.write_within(output_id, verdict, rationale, source)

    async def write_within(
        self,
        output_id: int,
        verdict: Verdict,
        rationale: str = "",
        source: LabelSource = LabelSource.HUMAN,
    ) -> tuple[Label, list[Label]]:
        """`write`, inside the caller's transaction: for a change that labels and does
        more at once (a judge's suggestion accepted and linked to its label)."""
        if source == LabelSource.CARRIED:
            raise ValueError("carried labels are made by carry-over, not given")
        output = await self._outputs.get(output_id)  # NotFound for a bad id
        before = await self.current(output.id)
        label = await self._append(output.id, verdict, rationale, source, None, before)
        carried = await self._spread(label)
        return label, carried

    async def inherit(self, output_id: int) -> Label | None:
        """Give a newly stored output the label of an identical, already labelled output of
        the same case (any version or model), marked carried; one transaction. Returns
        the new label, or None (no identical labelled output, not ok, or already labelled).
        The run engine calls this after each ok output."""
        output = await self._outputs.get(output_id)
        if output.status != OutputStatus.OK:
            return None

        async def decide() -> Label | None:
            return inherited_label(output, await self._answers.of_case(output.case_id))

        # Most outputs have nothing to inherit: decide before taking the write lock, so a
        # run does not queue a write transaction per answer; decide again under the lock.
        if await decide() is None:
            return None
        async with self._db.transaction():
            source = await decide()
            if source is None:
                return None
            return await self._append(output.id, source.verdict, source.rationale,
                                      LabelSource.CARRIED, root_label_id(source), None)

    async def spread(self, label_id: int) -> list[Label]:
        """Carry an existing person-given label to the identical outputs of its case (a
        label written before they were stored, or by an older coevo). Returns the carried
        labels; none if the label is carried itself or no longer its output's current
        label."""
        async with self._db.transaction():
            row = await self._db.one("SELECT * FROM label WHERE id = ?", (label_id,))
            if row is None:
                raise NotFound(f"no label with id {label_id}")
            return await self._spread(_label(row))

    async def _spread(self, label: Label) -> list[Label]:
        """Carry `label` to the outputs `spread_targets` picks; inside the caller's
        transaction."""
        output = await self._outputs.get(label.output_id)
        answers = await self._answers.of_case(output.case_id)
        return [
            await self._append(target.output.id, label.verdict, label.rationale,
                               LabelSource.CARRIED, root_label_id(label), target.label)
            for target in spread_targets(label, answers)
        ]

    async def _append(
        self,
        output_id: int,
        verdict: Verdict,
        rationale: str,
        source: LabelSource,
        carried_from: int | None,
        before: Label | None,
    ) -> Label:
        """Append a label row and its event, inside the caller's transaction: the one
        place a label is written."""
        cur = await self._db.execute(
            "INSERT INTO label (output_id, verdict, rationale, source, carried_from,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (output_id, verdict.value, rationale, source.value, carried_from, utc_now()),
        )
        label_id = cur.lastrowid
        assert label_id is not None
        after: dict[str, Any] = {"verdict": verdict.value, "rationale": rationale,
                                 "source": source.value}
        if carried_from is not None:
            after["carried_from"] = carried_from
        await self._db.events.append(
            "label",
            "output",
            output_id,
            {
                "label_id": label_id,
                "before": None if before is None else {
                    "verdict": before.verdict.value,
                    "rationale": before.rationale,
                    "source": before.source.value,
                },
                "after": after,
            },
        )
        row = await self._db.one("SELECT * FROM label WHERE id = ?", (label_id,))
        assert row is not None
        return _label(row)

    # ------------------------------------------------------------------ reading
    async def current(self, output_id: int) -> Label | None:
        """An output's current (newest) label, or None when unlabelled."""
        row = await self._db.one(
            "SELECT * FROM label WHERE output_id = ? ORDER BY id DESC LIMIT 1", (output_id,)
        )
        return None if row is None else _label(row)

    async def history(self, output_id: int) -> list[Label]:
        """Every label an output has had, oldest first."""
        rows = await self._db.all("SELECT * FROM label WHERE output_id = ? ORDER BY id",
                                  (output_id,))
        return [_label(r) for r in rows]

    async def current_by_output(self, output_ids: Iterable[int]) -> dict[int, Label]:
        """The current label of each output that has one, keyed by output id."""
        ids = list(output_ids)
        result: dict[int, Label] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = await self._db.all(
                f"SELECT * FROM label WHERE id IN (SELECT max(id) FROM label"
                f" WHERE output_id IN ({marks}) GROUP BY output_id)",
                chunk,
            )
            result.update({r["output_id"]: _label(r) for r in rows})
        return result

    async def by_id(self, label_ids: Iterable[int]) -> dict[int, Label]:
        """The labels with these ids (current or superseded), keyed by id: the rationale a
        version's motivation points at stays readable after the label changed."""
        ids = list(dict.fromkeys(label_ids))
        result: dict[int, Label] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = await self._db.all(f"SELECT * FROM label WHERE id IN ({marks})", chunk)
            result.update({r["id"]: _label(r) for r in rows})
        return result
