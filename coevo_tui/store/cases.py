"""Cases: the test set's inputs, read one at a time, as full lists, or as light lines for
100,000-row tables; added one by one or all or nothing; edited; moved between states."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coevo_tui.domain.case_query import (
    LINE_EXT_ID,
    LINE_ID,
    LINE_INPUT,
    LINE_RULE,
    LINE_SOURCE,
    LINE_STATE,
    LINE_TAGS,
    CaseLine,
)
from coevo_tui.domain.errors import ImportRejected, NotFound, UserError
from coevo_tui.domain.model import Case, CaseSource, CaseState
from coevo_tui.store.database import Columns, Database, utc_now


@dataclass(frozen=True)
class NewCase:
    """A case about to be added (from a file, the Add modal, or the assistant: then
    with the rule it probes, the assistant's reason and the version it was made under)."""

    input: str
    tags: tuple[str, ...] = ()
    note: str = ""
    ext_id: str | None = None
    source: CaseSource = CaseSource.MANUAL
    origin_case_id: int | None = None
    state: CaseState = CaseState.ACTIVE
    line: int | None = None  # where it came from in an import file, for error messages
    rule_number: int | None = None
    reason: str = ""
    origin_version_id: int | None = None


@dataclass(frozen=True)
class CaseRow:
    """The few fields a table of cases shows, cheap to hold for 100,000 cases."""

    id: int
    ext_id: str
    input: str
    tags: tuple[str, ...]
    source: str
    state: str


# The light columns of a case. Lines keep the stored tags JSON and are laid out as the
# domain's CaseLine (coevo_tui.domain.case_query), which the filters index.
_LINE = Columns.in_layout("CaseLineColumns", {
    LINE_ID: ("id", "id"),
    LINE_EXT_ID: ("ext_id", "ext_id"),
    LINE_INPUT: ("input", "input"),
    LINE_TAGS: ("tags", "tags"),
    LINE_SOURCE: ("source", "source"),
    LINE_STATE: ("state", "state"),
    LINE_RULE: ("rule_number", "rule_number"),
})
# What a list of the active cases shows: (id, ext_id, input).
_ACTIVE_LINE = Columns("ActiveCaseLine", [("id", "id"), ("ext_id", "ext_id"),
                                          ("input", "input")])


def _tags_json(tags: Iterable[str]) -> str:
    return json.dumps(list(tags), ensure_ascii=False)


def _case(row: sqlite3.Row) -> Case:
    return Case(
        id=row["id"],
        ext_id=row["ext_id"],
        input=row["input"],
        tags=tuple(json.loads(row["tags"])),
        note=row["note"],
        source=CaseSource(row["source"]),
        origin_case_id=row["origin_case_id"],
        state=CaseState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        rule_number=row["rule_number"],
        reason=row["reason"],
        origin_version_id=row["origin_version_id"],
    )


def _created_payload(ext_id: str, new: NewCase) -> dict[str, Any]:
    """What the event of a new case records (where the assistant's came from, too)."""
    payload: dict[str, Any] = {"ext_id": ext_id, "input": new.input, "tags": list(new.tags),
                               "source": new.source.value, "state": new.state.value}
    for name in ("origin_case_id", "origin_version_id", "rule_number"):
        if getattr(new, name) is not None:
            payload[name] = getattr(new, name)
    if new.reason:
        payload["reason"] = new.reason
    return payload


class Cases:
    """Read and change cases (`store.cases`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # ------------------------------------------------------------------ reads
    async def get(self, case_id: int) -> Case:
        """The case with this row id; NotFound if there is none."""
        row = await self._db.one("SELECT * FROM cases WHERE id = ?", (case_id,))
        if row is None:
            raise NotFound(f"no case with id {case_id}")
        return _case(row)

    async def by_ext_id(self, ext_id: str) -> Case:
        """The case with this stable id (the one files and commands use)."""
        row = await self._db.one("SELECT * FROM cases WHERE ext_id = ?", (ext_id,))
        if row is None:
            raise NotFound(f"no case with id {ext_id!r} in {self._db.path.name}")
        return _case(row)

    async def all(self, states: Iterable[CaseState] | None = None) -> list[Case]:
        """Full cases, in creation order, optionally only those in `states`."""
        if states is None:
            rows = await self._db.all("SELECT * FROM cases ORDER BY id")
        else:
            names = [s.value for s in states]
            marks = ",".join("?" * len(names))
            rows = await self._db.all(
                f"SELECT * FROM cases WHERE state IN ({marks}) ORDER BY id", names
            )
        return [_case(r) for r in rows]

    async def rows(self) -> list[CaseRow]:
        """Every case as a light row, by id (one query, no per-row objects beyond the
        row)."""
        rows = await self._db.tuples(f"SELECT {_LINE.select} FROM cases ORDER BY id")
        at = _LINE.at
        i_id, i_ext_id, i_input, i_tags, i_source, i_state = (
            at.id, at.ext_id, at.input, at.tags, at.source, at.state)
        return [
            CaseRow(r[i_id], r[i_ext_id], r[i_input],
                    tuple(json.loads(r[i_tags])) if r[i_tags] != "[]" else (),
                    r[i_source], r[i_state])
            for r in rows
        ]

    async def lines(self, after_id: int = 0, limit: int = -1) -> list[CaseLine]:
        """Cases as plain CaseLine tuples (id, ext_id, input, tags JSON, source, state,
        rule number), by id, paged with `after_id`/`limit`. For 100,000-row tables:
        SQLite's own tuples, with no per-row object and no JSON decoding (about 3x faster
        than `rows`)."""
        return await self._db.tuples(  # type: ignore[return-value]
            f"SELECT {_LINE.select} FROM cases WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )

    async def active_lines(self) -> list[tuple[int, str, str]]:
        """The active cases as plain (id, ext_id, input) tuples, by id: what a list of the
        active cases shows, without the other columns and states `lines` reads."""
        return await self._db.tuples(  # type: ignore[return-value]
            f"SELECT {_ACTIVE_LINE.select} FROM cases WHERE state = ? ORDER BY id",
            (CaseState.ACTIVE.value,))

    async def rule_states(self) -> list[tuple[int, int | None, str, str]]:
        """Every case as a plain (id, rule number or None, state, input) tuple, by id: what
        policy coverage counts and what a new candidate must not nearly repeat."""
        return await self._db.tuples(  # type: ignore[return-value]
            "SELECT id, rule_number, state, input FROM cases ORDER BY id")

    async def active_ids(self) -> list[int]:
        """The ids of the active cases, in id order."""
        rows = await self._db.tuples("SELECT id FROM cases WHERE state = ? ORDER BY id",
                                     (CaseState.ACTIVE.value,))
        return [case_id for (case_id,) in rows]

    async def first_active_id(self) -> int | None:
        """The lowest id among the active cases (None when there is none): the case a
        screen shows first, before its whole list is read."""
        rows = await self._db.tuples_in_one_hop(
            "SELECT min(id) AS first_id FROM cases WHERE state = ?", (CaseState.ACTIVE.value,))
        return rows[0][0] if rows else None

    async def counts_by_state(self) -> dict[str, int]:
        """State value -> number of cases in it (every state, zeros included)."""
        rows = await self._db.all("SELECT state, count(*) AS cases FROM cases GROUP BY state")
        counts = {s.value: 0 for s in CaseState}
        counts.update({r["state"]: r["cases"] for r in rows})
        return counts

    # ------------------------------------------------------------------ writes
    async def add(self, new: NewCase) -> Case:
        """Add one case (by hand, or from the assistant)."""
        ids = await self.add_many([new], kind="create")
        return await self.get(ids[0])

    async def add_many(self, new_cases: Sequence[NewCase], *, kind: str = "import",
                       source_name: str = "") -> list[int]:
        """Add cases all or nothing in one transaction. A duplicate `ext_id` (in the batch or
        against the project) rejects the whole batch naming the line. Returns the new ids.
        With `kind` "import" one event records the batch; otherwise one event per case
        (of that kind)."""
        for new in new_cases:
            if not new.input.strip():
                raise ImportRejected(source_name or "case", new.line, "empty input")
        async with self._db.transaction():
            existing = {ext_id for (ext_id,) in
                        await self._db.tuples("SELECT ext_id FROM cases")}
            seen: dict[str, int | None] = {}
            for new in new_cases:
                if new.ext_id is None:
                    continue
                if new.ext_id in existing:
                    raise ImportRejected(
                        source_name or "case",
                        new.line,
                        f"id {new.ext_id!r} is already in the project",
                    )
                if new.ext_id in seen:
                    first = seen[new.ext_id]
                    raise ImportRejected(
                        source_name or "case",
                        new.line,
                        f"duplicate id {new.ext_id!r} (first on line {first})",
                    )
                seen[new.ext_id] = new.line
            fresh = iter(
                await self._next_ext_ids(
                    existing | set(seen), sum(1 for n in new_cases if n.ext_id is None)
                )
            )
            ext_ids = [new.ext_id if new.ext_id is not None else next(fresh)
                       for new in new_cases]
            now = utc_now()
            first_id = int(await self._db.scalar("SELECT coalesce(max(id), 0) FROM cases")) + 1
            await self._db.executemany(
                "INSERT INTO cases (ext_id, input, tags, note, source, origin_case_id, state,"
                " created_at, updated_at, rule_number, reason, origin_version_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (ext_id, new.input, _tags_json(new.tags), new.note, new.source.value,
                     new.origin_case_id, new.state.value, now, now, new.rule_number,
                     new.reason, new.origin_version_id)
                    for ext_id, new in zip(ext_ids, new_cases)
                ],
            )
            if kind == "import":
                await self._db.events.append(
                    "import",
                    "cases",
                    None,
                    {
                        "file": source_name,
                        "count": len(new_cases),
                        "first_id": first_id,
                        "last_id": first_id + len(new_cases) - 1,
                    },
                )
            else:
                for offset, (ext_id, new) in enumerate(zip(ext_ids, new_cases)):
                    await self._db.events.append(kind, "case", first_id + offset,
                                                 _created_payload(ext_id, new))
        return list(range(first_id, first_id + len(new_cases)))

    async def _next_ext_ids(self, taken: set[str], count: int) -> list[str]:
        """Fresh case ids `c<N>` that collide with nothing in `taken`."""
        top = await self._db.scalar("SELECT coalesce(max(id), 0) FROM cases")
        ids: list[str] = []
        n = int(top) + 1
        while len(ids) < count:
            candidate = f"c{n}"
            if candidate not in taken:
                ids.append(candidate)
            n += 1
        return ids

    async def edit(
        self,
        case_id: int,
        *,
        input: str | None = None,
        tags: Sequence[str] | None = None,
        note: str | None = None,
    ) -> Case:
        """Change a case's text, tags or note; the event keeps the old values."""
        if input is not None and not input.strip():
            raise UserError("a case's input cannot be empty")
        async with self._db.transaction():
            before = await self.get(case_id)
            changes: dict[str, Any] = {}
            if input is not None and input != before.input:
                changes["input"] = input
            if tags is not None and tuple(tags) != before.tags:
                changes["tags"] = list(tags)
            if note is not None and note != before.note:
                changes["note"] = note
            if changes:
                values = {k: _tags_json(v) if k == "tags" else v for k, v in changes.items()}
                sets = ", ".join(f"{k} = ?" for k in values)
                await self._db.execute(
                    f"UPDATE cases SET {sets}, updated_at = ? WHERE id = ?",
                    (*values.values(), utc_now(), case_id),
                )
                old = {
                    k: list(before.tags) if k == "tags" else getattr(before, k) for k in changes
                }
                await self._db.events.append("edit", "case", case_id,
                                             {"before": old, "after": changes})
        return await self.get(case_id)

    async def set_state(self, case_id: int, state: CaseState) -> Case:
        """Archive, restore, accept a candidate: the event keeps the old state."""
        async with self._db.transaction():
            before = await self.get(case_id)
            if before.state != state:
                await self._db.execute(
                    "UPDATE cases SET state = ?, updated_at = ? WHERE id = ?",
                    (state.value, utc_now(), case_id),
                )
                await self._db.events.append(
                    "state",
                    "case",
                    case_id,
                    {"before": before.state.value, "after": state.value},
                )
        return await self.get(case_id)

    # ------------------------------------------------------------------ the candidate queue
    async def candidates(self) -> list[Case]:
        """The candidates waiting for review, oldest first."""
        return await self.all([CaseState.CANDIDATE])

    async def rejected_inputs(self) -> list[str]:
        """The inputs of every rejected case (so nothing rejected is proposed again)."""
        rows = await self._db.tuples("SELECT input FROM cases WHERE state = ? ORDER BY id",
                                     (CaseState.REJECTED.value,))
        return [text for (text,) in rows]

    async def by_ids(self, case_ids: Iterable[int]) -> dict[int, Case]:
        """The cases with these row ids that exist, keyed by id (one query per 900)."""
        ids = list(dict.fromkeys(case_ids))
        found: dict[int, Case] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start:start + 900]
            rows = await self._db.all(
                f"SELECT * FROM cases WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update({r["id"]: _case(r) for r in rows})
        return found

    async def by_ext_ids(self, ext_ids: Sequence[str]) -> list[Case]:
        """The cases with these stable ids, in the order given (each once); NotFound
        naming the first unknown one."""
        found: list[Case] = []
        seen: set[str] = set()
        for ext_id in ext_ids:
            if ext_id not in seen:
                seen.add(ext_id)
                found.append(await self.by_ext_id(ext_id))
        return found

    async def add_candidates(self, new_cases: Sequence[NewCase]) -> list[Case]:
        """Add the assistant's proposals to the review queue in one transaction: each in
        state candidate, source generated or similar, with the rule it probes, its reason,
        the version it was made under and (similar ones) the case it varies. One "create"
        event per case. Returns them as stored."""
        queued = []
        for new in new_cases:
            if new.source not in (CaseSource.GENERATED, CaseSource.SIMILAR):
                raise ValueError(f"a candidate comes from the assistant, not {new.source.value}")
            queued.append(dataclasses.replace(new, state=CaseState.CANDIDATE, ext_id=None))
        if not queued:
            return []
        ids = await self.add_many(queued, kind="create")
        return [await self.get(case_id) for case_id in ids]

    async def accept(self, case_ids: Sequence[int],
                     edited: Mapping[int, str] | None = None) -> list[Case]:
        """Move candidates into the test set (state active), all or nothing, in one
        transaction. `edited` maps a case id to the input the user changed it to: saved
        as an edit (the event keeps the assistant's text) before the acceptance. A case
        that is not a candidate, or an empty edited input, is refused (UserError) with
        nothing changed."""
        edited = dict(edited or {})
        for case_id, text in edited.items():
            if not text.strip():
                raise UserError(f"case {case_id}: a case's input cannot be empty")
        return await self._review(case_ids, CaseState.ACTIVE, edited)

    async def reject(self, case_ids: Sequence[int]) -> list[Case]:
        """Turn candidates down (state rejected: hidden, kept, never proposed again), all
        or nothing, in one transaction; a case that is not a candidate is refused."""
        return await self._review(case_ids, CaseState.REJECTED, {})

    async def _review(self, case_ids: Sequence[int], state: CaseState,
                      edited: Mapping[int, str]) -> list[Case]:
        ids = list(dict.fromkeys(case_ids))
        unknown = set(edited) - set(ids)
        if unknown:
            raise ValueError(f"edited cases {sorted(unknown)} are not among those reviewed")
        async with self._db.transaction():
            before = [await self.get(case_id) for case_id in ids]
            for case in before:
                if case.state != CaseState.CANDIDATE:
                    raise UserError(f"case {case.ext_id} is {case.state.value}, not a candidate"
                                    "; nothing was changed")
            now = utc_now()
            for case in before:
                text = edited.get(case.id)
                if text is not None and text != case.input:
                    await self._db.execute(
                        "UPDATE cases SET input = ?, updated_at = ? WHERE id = ?",
                        (text, now, case.id))
                    await self._db.events.append(
                        "edit", "case", case.id,
                        {"before": {"input": case.input}, "after": {"input": text}})
                await self._db.execute("UPDATE cases SET state = ?, updated_at = ? WHERE id = ?",
                                       (state.value, now, case.id))
                await self._db.events.append("state", "case", case.id,
                                             {"before": case.state.value, "after": state.value})
        return [await self.get(case_id) for case_id in ids]
