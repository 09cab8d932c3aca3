"""The async store: every read and write of a project file goes through `Store`.

One aiosqlite connection per process. Every change is one transaction that also appends an
event to the log; an edit keeps the old value in its event. Writes start with
``BEGIN IMMEDIATE`` so that two processes writing the same file queue on SQLite's busy
handler instead of failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiosqlite

from coevo_tui.domain.errors import (
    ImportRejected,
    NotFound,
    ProjectFileError,
    ReadOnlyProject,
    UserError,
    shown_name,
)
from coevo_tui.domain.model import (
    Case,
    CaseSource,
    CaseState,
    Event,
    Label,
    LabelSource,
    Output,
    OutputStatus,
    Project,
    PromptVersion,
    Verdict,
)
from coevo_tui.domain.carryover import label_to_carry, propagation_targets, root_label_id
from coevo_tui.domain.status import Answer, AnswerFacts, VerdictChange, verdict_changes
from coevo_tui.store.project_file import check_project_file
from coevo_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

# How long a writer waits for another process's transaction before giving up. Long, because
# a 100,000-case import in another shell legitimately holds the write lock for seconds.
BUSY_TIMEOUT_S = 60.0

# Bulk reads with more rows than this turn them into objects in a thread, so a screen's
# event loop keeps drawing while 100,000 answers are read.
_CONVERT_INLINE_ROWS = 5_000


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _tags_json(tags: Iterable[str]) -> str:
    return json.dumps(list(tags), ensure_ascii=False)


@dataclass(frozen=True)
class NewCase:
    """A case about to be added (from a file, the Add modal, or the assistant)."""

    input: str
    tags: tuple[str, ...] = ()
    note: str = ""
    ext_id: str | None = None
    source: CaseSource = CaseSource.MANUAL
    origin_case_id: int | None = None
    state: CaseState = CaseState.ACTIVE
    line: int | None = None  # where it came from in an import file, for error messages


@dataclass(frozen=True)
class CaseRow:
    """The few fields the Cases table shows, cheap to hold for 100,000 cases."""

    id: int
    ext_id: str
    input: str
    tags: tuple[str, ...]
    source: str
    state: str


class Store:
    """An open project file. Create with `await Store.open(path)`; close with `close()`."""

    def __init__(self, path: Path, db: aiosqlite.Connection, *, read_only: bool = False) -> None:
        self.path = path
        self._db = db
        self._write_lock = asyncio.Lock()
        self.read_only = read_only

    # ------------------------------------------------------------------ opening
    @classmethod
    async def open(cls, path: str | Path, *, name: str | None = None,
                   instructions: str = "", note: str = "", read_only: bool = False) -> Store:
        """Open the project at `path`, creating it if it does not exist.

        Raises ProjectFileError, leaving the file untouched, for a file that is not a coevo
        project or comes from a newer schema. Older schemas are migrated forward.
        A new project's version 1 holds `instructions` (empty by default) with `note`;
        both are ignored when the file already exists.
        """
        path = Path(path)
        create = check_project_file(path)
        if read_only:  # SHIM (issue 7-b) until issue 7-a's read-only opening lands
            if create:
                raise ReadOnlyProject(f"{shown_name(path)}: no such project file, and a "
                                      "read-only one cannot be created")
            return await cls._open_read_only(path)
        try:
            db = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ProjectFileError(f"{path}: cannot open ({exc})") from None
        db.row_factory = sqlite3.Row
        store = cls(path, db)
        try:
            await store._configure(create)
            schema_before = await store.schema_version()
            await store._migrate()
            if create:
                await store._init_project(name or path.stem, instructions, note)
            if create or schema_before != await store.schema_version():
                # The header (application_id, user_version) sits in the WAL until a
                # checkpoint; copy it into the file now, or another process's header check
                # (check_project_file) would call a project that is open here "not coevo".
                await db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except BaseException:
            await db.close()
            if create:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    with contextlib.suppress(OSError):
                        Path(str(path) + suffix).unlink()
            raise
        return store

    @classmethod
    async def _open_read_only(cls, path: Path) -> Store:
        """SHIM (issue 7-b): the project opened for reading only; writes raise
        ReadOnlyProject. On a read-only file system SQLite cannot make the WAL's shared
        memory file, so the file is then read as immutable (nobody can change it there)."""
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro"
        try:
            db = await cls._connect_read_only(uri)
        except sqlite3.OperationalError:
            db = await cls._connect_read_only(uri + "&immutable=1")
        store = cls(path, db, read_only=True)
        if await store.schema_version() != SCHEMA_VERSION:
            await db.close()
            raise ReadOnlyProject(f"{shown_name(path)}: written by an older coevo and must be "
                                  "upgraded, which a read-only project cannot be")
        return store

    @staticmethod
    async def _connect_read_only(uri: str) -> aiosqlite.Connection:
        db = await aiosqlite.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S,
                                     isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("SELECT count(*) FROM project")
        except BaseException:
            await db.close()
            raise
        return db

    async def _configure(self, create: bool) -> None:
        await self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        await self._db.execute("PRAGMA foreign_keys = ON")
        if create:
            await self._db.execute("PRAGMA journal_mode = WAL")
        else:
            # Reading the schema and the settings row touches the pages every screen needs;
            # a whole-file check (quick_check) would cost seconds on a large project.
            try:
                await self._scalar("SELECT count(*) FROM sqlite_master")
                await self._scalar("SELECT count(*) FROM project")
            except sqlite3.DatabaseError as exc:
                raise ProjectFileError(f"{self.path}: damaged project file ({exc})") from None
            mode = await self._scalar("PRAGMA journal_mode")
            if mode != "wal":
                await self._db.execute("PRAGMA journal_mode = WAL")
        await self._db.execute("PRAGMA synchronous = NORMAL")

    async def _migrate(self) -> None:
        current = await self._scalar("PRAGMA user_version")
        if current > SCHEMA_VERSION:  # header said otherwise; trust the live value
            raise ProjectFileError(f"{self.path}: written by a newer coevo (schema {current})")
        for number in sorted(n for n in MIGRATIONS if n > current):
            async with self._transaction() as db:
                # Another process may have migrated while we waited for the lock.
                if await self._scalar("PRAGMA user_version") >= number:
                    continue
                for statement in MIGRATIONS[number]:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")
                await self._event(db, "migrate", "project", None, {"to": number})

    async def _init_project(self, name: str, instructions: str = "", note: str = "") -> None:
        async with self._transaction() as db:
            if await self._scalar("SELECT count(*) FROM project"):
                return
            await db.execute(
                "INSERT INTO project (id, name, created_at) VALUES (1, ?, ?)", (name, utc_now())
            )
            await self._event(db, "create", "project", 1, {"name": name})
            default_note = "first version" if instructions else "initial empty instructions"
            await self._insert_version(db, instructions, None, note or default_note)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing
    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front (waiting on
        the busy handler), so a transaction never fails half-way for lack of it."""
        if self.read_only:  # SHIM (issue 7-b) until issue 7-a lands
            raise ReadOnlyProject(f"{shown_name(self.path)}: the project is read-only; "
                                  "nothing was changed")
        async with self._write_lock:
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    await self._db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    if time.monotonic() > deadline:
                        raise UserError(
                            f"{self.path}: another program has held the project for over "
                            f"{BUSY_TIMEOUT_S:.0f} s; try again"
                        ) from None
                    await asyncio.sleep(0.05)
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    @staticmethod
    async def _event(
        db: aiosqlite.Connection,
        kind: str,
        entity: str,
        entity_id: int | None,
        payload: dict[str, Any],
    ) -> None:
        await db.execute(
            "INSERT INTO event (at, kind, entity, entity_id, payload) VALUES (?, ?, ?, ?, ?)",
            (utc_now(), kind, entity, entity_id, json.dumps(payload, ensure_ascii=False)),
        )

    async def schema_version(self) -> int:
        return int(await self._scalar("PRAGMA user_version"))

    # ------------------------------------------------------------------ project
    async def project(self) -> Project:
        row = await self._one("SELECT * FROM project WHERE id = 1")
        if row is None:
            raise ProjectFileError(f"{self.path}: project settings are missing")
        return Project(
            name=row["name"],
            task=row["task"],
            model=row["model"],
            params=json.loads(row["params"]),
            assistant_model=row["assistant_model"],
        )

    async def update_project(self, **changes: Any) -> Project:
        """Change project settings (name, task, model, params, assistant_model)."""
        allowed = {"name", "task", "model", "params", "assistant_model"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown project settings: {sorted(unknown)}")
        async with self._transaction() as db:
            before = await self.project()
            values = {k: json.dumps(v) if k == "params" else v for k, v in changes.items()}
            sets = ", ".join(f"{k} = ?" for k in values)
            await db.execute(f"UPDATE project SET {sets} WHERE id = 1", tuple(values.values()))
            await self._event(
                db,
                "edit",
                "project",
                1,
                {
                    "before": {k: getattr(before, k) for k in changes},
                    "after": changes,
                },
            )
        return await self.project()

    # ------------------------------------------------------------------ versions
    @staticmethod
    def _version(row: sqlite3.Row) -> PromptVersion:
        return PromptVersion(
            id=row["id"],
            number=row["number"],
            instructions=row["instructions"],
            user_template=row["user_template"],
            parent_id=row["parent_id"],
            note=row["note"],
            created_at=row["created_at"],
        )

    async def versions(self) -> list[PromptVersion]:
        rows = await self._all("SELECT * FROM prompt_version ORDER BY number")
        return [self._version(r) for r in rows]

    async def version(self, number: int) -> PromptVersion:
        row = await self._one("SELECT * FROM prompt_version WHERE number = ?", (number,))
        if row is None:
            raise NotFound(f"no version {number} in {self.path.name}")
        return self._version(row)

    async def version_by_id(self, version_id: int) -> PromptVersion:
        row = await self._one("SELECT * FROM prompt_version WHERE id = ?", (version_id,))
        if row is None:
            raise NotFound(f"no version with id {version_id}")
        return self._version(row)

    async def latest_version(self) -> PromptVersion:
        row = await self._one("SELECT * FROM prompt_version ORDER BY number DESC LIMIT 1")
        if row is None:
            raise NotFound(f"{self.path.name} has no prompt version")
        return self._version(row)

    async def _insert_version(
        self,
        db: aiosqlite.Connection,
        instructions: str,
        user_template: str | None,
        note: str,
        motivating: Sequence[tuple[int, int | None]] = (),
    ) -> int:
        parent = await self._one("SELECT id, number FROM prompt_version ORDER BY number DESC")
        number = 1 if parent is None else parent["number"] + 1
        cur = await db.execute(
            "INSERT INTO prompt_version (number, instructions, user_template, parent_id, note,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                number,
                instructions,
                user_template,
                None if parent is None else parent["id"],
                note,
                utc_now(),
            ),
        )
        version_id = cur.lastrowid
        assert version_id is not None
        await db.executemany(
            "INSERT INTO version_motivation (version_id, case_id, label_id) VALUES (?, ?, ?)",
            [(version_id, case_id, label_id) for case_id, label_id in motivating],
        )
        await self._event(
            db,
            "create",
            "prompt_version",
            version_id,
            {
                "number": number,
                "note": note,
                "motivating_cases": [case_id for case_id, _ in motivating],
            },
        )
        return version_id

    async def create_version(
        self,
        instructions: str,
        user_template: str | None = None,
        note: str = "",
        motivating: Sequence[tuple[int, int | None]] = (),
    ) -> PromptVersion:
        """Save the next immutable version. `motivating` is (case id, label id or None)."""
        if user_template is not None and "{input}" not in user_template:
            raise UserError("the user template must contain {input}")
        async with self._transaction() as db:
            version_id = await self._insert_version(
                db, instructions, user_template or None, note, motivating
            )
        return await self.version_by_id(version_id)

    async def motivating_cases(self, version_id: int) -> list[tuple[int, int | None]]:
        rows = await self._all(
            "SELECT case_id, label_id FROM version_motivation WHERE version_id = ?"
            " ORDER BY case_id",
            (version_id,),
        )
        return [(r["case_id"], r["label_id"]) for r in rows]

    # ------------------------------------------------------------------ cases
    @staticmethod
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
        )

    async def case(self, case_id: int) -> Case:
        row = await self._one("SELECT * FROM cases WHERE id = ?", (case_id,))
        if row is None:
            raise NotFound(f"no case with id {case_id}")
        return self._case(row)

    async def case_by_ext_id(self, ext_id: str) -> Case:
        row = await self._one("SELECT * FROM cases WHERE ext_id = ?", (ext_id,))
        if row is None:
            raise NotFound(f"no case with id {ext_id!r} in {self.path.name}")
        return self._case(row)

    async def cases(self, states: Iterable[CaseState] | None = None) -> list[Case]:
        """Full cases, in creation order, optionally only those in `states`."""
        if states is None:
            rows = await self._all("SELECT * FROM cases ORDER BY id")
        else:
            names = [s.value for s in states]
            marks = ",".join("?" * len(names))
            rows = await self._all(
                f"SELECT * FROM cases WHERE state IN ({marks}) ORDER BY id", names
            )
        return [self._case(r) for r in rows]

    async def case_rows(self) -> list[CaseRow]:
        """Every case as a light row for the Cases table (one query, no per-row objects
        beyond the tuple)."""
        rows = await self._all(
            "SELECT id, ext_id, input, tags, source, state FROM cases ORDER BY id"
        )
        return [
            CaseRow(r[0], r[1], r[2], tuple(json.loads(r[3])) if r[3] != "[]" else (), r[4], r[5])
            for r in rows
        ]

    async def case_lines(self, after_id: int = 0, limit: int = -1
                         ) -> list[tuple[int, str, str, str, str, str]]:
        """Cases as plain tuples (id, ext_id, input, tags JSON, source, state), by id, paged
        with `after_id`/`limit`. For the TUI's 100,000-row table: SQLite's own tuples, with
        no per-row object and no JSON decoding (about 3x faster than `case_rows`)."""
        async with self._db.execute(
            "SELECT id, ext_id, input, tags, source, state FROM cases WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (after_id, limit),
        ) as cur:
            cur.row_factory = None  # plain tuples, not sqlite3.Row
            return await cur.fetchall()  # type: ignore[return-value]

    async def active_case_lines(self) -> list[tuple[int, str, str]]:
        """The active cases as plain (id, ext_id, input) tuples, by id: what the Compare
        list shows, without the other columns and states `case_lines` reads."""
        return await self._tuples(  # type: ignore[return-value]
            "SELECT id, ext_id, input FROM cases WHERE state = ? ORDER BY id",
            (CaseState.ACTIVE.value,))

    async def active_case_ids(self) -> list[int]:
        """The ids of the active cases, in id order."""
        rows = await self._tuples("SELECT id FROM cases WHERE state = ? ORDER BY id",
                                  (CaseState.ACTIVE.value,))
        return [r[0] for r in rows]

    async def case_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT state, count(*) FROM cases GROUP BY state")
        counts = {s.value: 0 for s in CaseState}
        counts.update({r[0]: r[1] for r in rows})
        return counts

    async def _next_ext_ids(self, taken: set[str], count: int) -> list[str]:
        """Fresh case ids `c<N>` that collide with nothing in `taken`."""
        top = await self._scalar("SELECT coalesce(max(id), 0) FROM cases")
        ids: list[str] = []
        n = int(top) + 1
        while len(ids) < count:
            candidate = f"c{n}"
            if candidate not in taken:
                ids.append(candidate)
            n += 1
        return ids

    async def add_case(self, new: NewCase) -> Case:
        """Add one case (by hand, or from the assistant)."""
        ids = await self.add_cases([new], kind="create")
        return await self.case(ids[0])

    async def add_cases(self, new_cases: Sequence[NewCase], *, kind: str = "import",
                        source_name: str = "") -> list[int]:
        """Add cases all or nothing in one transaction. A duplicate `ext_id` (in the batch or
        against the project) rejects the whole batch naming the line. Returns the new ids."""
        for new in new_cases:
            if not new.input.strip():
                raise ImportRejected(source_name or "case", new.line, "empty input")
        async with self._transaction() as db:
            existing = {r[0] for r in await self._all("SELECT ext_id FROM cases")}
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
            now = utc_now()
            rows = [
                (
                    new.ext_id if new.ext_id is not None else next(fresh),
                    new.input,
                    _tags_json(new.tags),
                    new.note,
                    new.source.value,
                    new.origin_case_id,
                    new.state.value,
                    now,
                    now,
                )
                for new in new_cases
            ]
            first_id = int(await self._scalar("SELECT coalesce(max(id), 0) FROM cases")) + 1
            await db.executemany(
                "INSERT INTO cases (ext_id, input, tags, note, source, origin_case_id, state,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if kind == "import":
                await self._event(
                    db,
                    "import",
                    "cases",
                    None,
                    {
                        "file": source_name,
                        "count": len(rows),
                        "first_id": first_id,
                        "last_id": first_id + len(rows) - 1,
                    },
                )
            else:
                for offset, row in enumerate(rows):
                    await self._event(
                        db,
                        kind,
                        "case",
                        first_id + offset,
                        {"ext_id": row[0], "input": row[1], "tags": json.loads(row[2]),
                         "source": row[4], "state": row[6]},
                    )
        return list(range(first_id, first_id + len(rows)))

    async def edit_case(
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
        async with self._transaction() as db:
            before = await self.case(case_id)
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
                await db.execute(
                    f"UPDATE cases SET {sets}, updated_at = ? WHERE id = ?",
                    (*values.values(), utc_now(), case_id),
                )
                old = {
                    k: list(before.tags) if k == "tags" else getattr(before, k) for k in changes
                }
                await self._event(db, "edit", "case", case_id, {"before": old, "after": changes})
        return await self.case(case_id)

    async def set_case_state(self, case_id: int, state: CaseState) -> Case:
        """Archive, restore, accept a candidate: the event keeps the old state."""
        async with self._transaction() as db:
            before = await self.case(case_id)
            if before.state != state:
                await db.execute(
                    "UPDATE cases SET state = ?, updated_at = ? WHERE id = ?",
                    (state.value, utc_now(), case_id),
                )
                await self._event(
                    db,
                    "state",
                    "case",
                    case_id,
                    {"before": before.state.value, "after": state.value},
                )
        return await self.case(case_id)

    # ------------------------------------------------------------------ runs and outputs
    async def start_run(self, version_id: int, model: str, params: dict[str, Any],
                        total: int) -> int:
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT INTO run (version_id, model, params, total, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (version_id, model, json.dumps(params, sort_keys=True), total, utc_now()),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            await self._event(db, "start", "run", run_id,
                              {"version_id": version_id, "model": model, "total": total})
        return run_id

    async def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE run SET status = ?, finished_at = ? WHERE id = ?",
                (status, utc_now(), run_id),
            )
            await self._event(db, "finish", "run", run_id, {"status": status, **summary})

    @staticmethod
    def _output(row: sqlite3.Row) -> Output:
        return Output(
            id=row["id"],
            case_id=row["case_id"],
            version_id=row["version_id"],
            model=row["model"],
            params=json.loads(row["params"]),
            text=row["text"],
            status=OutputStatus(row["status"]),
            error=row["error"],
            latency_ms=row["latency_ms"],
            tokens_in=row["tokens_in"],
            tokens_out=row["tokens_out"],
            cost=row["cost"],
            cached=bool(row["cached"]),
            run_id=row["run_id"],
            created_at=row["created_at"],
        )

    async def add_output(
        self,
        *,
        case_id: int,
        version_id: int,
        model: str,
        params: dict[str, Any],
        text: str,
        status: OutputStatus,
        error: str | None = None,
        latency_ms: float | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost: float | None = None,
        cache_key: str | None = None,
        cached: bool = False,
        run_id: int | None = None,
    ) -> Output:
        """Commit one model answer the moment it completes."""
        async with self._transaction() as db:
            cur = await db.execute(
                "INSERT INTO output (case_id, version_id, model, params, text, status, error,"
                " latency_ms, tokens_in, tokens_out, cost, cache_key, cached, run_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    case_id,
                    version_id,
                    model,
                    json.dumps(params, sort_keys=True),
                    text,
                    status.value,
                    error,
                    latency_ms,
                    tokens_in,
                    tokens_out,
                    cost,
                    cache_key,
                    int(cached),
                    run_id,
                    utc_now(),
                ),
            )
            output_id = cur.lastrowid
            assert output_id is not None
            await self._event(
                db,
                "create",
                "output",
                output_id,
                {"case_id": case_id, "version_id": version_id, "model": model,
                 "status": status.value, "cached": cached},
            )
        row = await self._one("SELECT * FROM output WHERE id = ?", (output_id,))
        assert row is not None
        return self._output(row)

    async def output(self, output_id: int) -> Output:
        row = await self._one("SELECT * FROM output WHERE id = ?", (output_id,))
        if row is None:
            raise NotFound(f"no output with id {output_id}")
        return self._output(row)

    async def outputs_for_case(self, case_id: int) -> list[Output]:
        rows = await self._all("SELECT * FROM output WHERE case_id = ? ORDER BY id", (case_id,))
        return [self._output(r) for r in rows]

    async def latest_output(self, case_id: int, version_id: int, model: str | None = None
                            ) -> Output | None:
        if model is None:
            row = await self._one(
                "SELECT * FROM output WHERE case_id = ? AND version_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (case_id, version_id),
            )
        else:
            row = await self._one(
                "SELECT * FROM output WHERE case_id = ? AND version_id = ? AND model = ?"
                " ORDER BY id DESC LIMIT 1",
                (case_id, version_id, model),
            )
        return None if row is None else self._output(row)

    async def latest_outputs(self, version_id: int, model: str | None = None
                             ) -> dict[int, Output]:
        """The newest output per case under a version (and model), keyed by case id."""
        sql = "SELECT * FROM output WHERE id IN (SELECT max(id) FROM output WHERE version_id = ?"
        params: list[Any] = [version_id]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        sql += " GROUP BY case_id)"
        return {r["case_id"]: self._output(r) for r in await self._all(sql, params)}

    async def finished_case_ids(self, version_id: int, model: str, params: dict[str, Any]
                                ) -> set[int]:
        """Cases that already have an ok output for this exact call setting (for resume)."""
        rows = await self._all(
            "SELECT DISTINCT case_id FROM output WHERE version_id = ? AND model = ?"
            " AND params = ? AND status = 'ok'",
            (version_id, model, json.dumps(params, sort_keys=True)),
        )
        return {r[0] for r in rows}

    async def cached_output(self, cache_key: str) -> Output | None:
        row = await self._one(
            "SELECT * FROM output WHERE cache_key = ? AND status = 'ok' ORDER BY id DESC LIMIT 1",
            (cache_key,),
        )
        return None if row is None else self._output(row)

    # ------------------------------------------------------------------ labels
    @staticmethod
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

    async def set_label(
        self,
        output_id: int,
        verdict: Verdict,
        rationale: str = "",
        source: LabelSource = LabelSource.HUMAN,
        carried_from: int | None = None,
    ) -> Label:
        """Label an output. The previous label stays in history (a new row each time)."""
        async with self._transaction() as db:
            before = await self.current_label(output_id)
            return await self._insert_label(
                db, output_id, verdict, rationale, source, carried_from, before
            )

    async def current_label(self, output_id: int) -> Label | None:
        row = await self._one(
            "SELECT * FROM label WHERE output_id = ? ORDER BY id DESC LIMIT 1", (output_id,)
        )
        return None if row is None else self._label(row)

    async def label_history(self, output_id: int) -> list[Label]:
        rows = await self._all("SELECT * FROM label WHERE output_id = ? ORDER BY id", (output_id,))
        return [self._label(r) for r in rows]

    async def current_labels(self, output_ids: Iterable[int]) -> dict[int, Label]:
        """The current label of each output that has one, keyed by output id."""
        ids = list(output_ids)
        result: dict[int, Label] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(
                f"SELECT * FROM label WHERE id IN (SELECT max(id) FROM label"
                f" WHERE output_id IN ({marks}) GROUP BY output_id)",
                chunk,
            )
            result.update({r["output_id"]: self._label(r) for r in rows})
        return result

    # ------------------------------------------------------------------ events
    async def events(self, limit: int = 100, *, kind: str | None = None) -> list[Event]:
        if kind is None:
            rows = await self._all("SELECT * FROM event ORDER BY id DESC LIMIT ?", (limit,))
        else:
            rows = await self._all(
                "SELECT * FROM event WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [
            Event(r["id"], r["at"], r["kind"], r["entity"], r["entity_id"],
                  json.loads(r["payload"]))
            for r in rows
        ]

    # ------------------------------------------------------------------ export
    async def export_records(self) -> AsyncIterator[dict[str, Any]]:
        """Every case with its outputs and their current labels, in SPEC section 5's shape."""
        versions = {v.id: v.number for v in await self.versions()}
        cases = await self._all("SELECT * FROM cases ORDER BY id")
        outputs: dict[int, list[sqlite3.Row]] = {}
        for r in await self._all("SELECT * FROM output ORDER BY id"):
            outputs.setdefault(r["case_id"], []).append(r)
        labels = {
            r["output_id"]: r
            for r in await self._all(
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

    # ================================================================== comparison & carry-over
    # Added for carry-over, comparison statuses and the label/eval commands. Reads here are
    # bulk (one query whatever the number of cases); the decisions themselves are the pure
    # functions of coevo_tui.domain.carryover and coevo_tui.domain.status.

    # An output row followed by its current label's columns (NULLs when unlabelled), read as
    # plain tuples: for 100,000 rows, sqlite3.Row lookups by name and enum calls dominate.
    _ANSWER_COLUMNS = (
        "o.id, o.case_id, o.version_id, o.model, o.params, o.text, o.status, o.error,"
        " o.latency_ms, o.tokens_in, o.tokens_out, o.cost, o.cached, o.run_id, o.created_at,"
        " l.id, l.verdict, l.rationale, l.source, l.carried_from, l.created_at"
    )
    _CURRENT_LABEL_JOIN = (
        "LEFT JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
    )
    _OUTPUT_STATUSES = {s.value: s for s in OutputStatus}
    _VERDICTS = {v.value: v for v in Verdict}
    _LABEL_SOURCES = {s.value: s for s in LabelSource}

    async def _tuples(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, params) as cur:
            cur.row_factory = None  # plain tuples, not sqlite3.Row
            return list(await cur.fetchall())

    def _answers(self, rows: Iterable[tuple[Any, ...]]) -> list[Answer]:
        """Answers from `_ANSWER_COLUMNS` tuples. Outputs with equal params share one
        decoded dict (a run's outputs all have the same): treat it as read-only."""
        params_cache: dict[str, dict[str, Any]] = {}
        statuses, verdicts, sources = self._OUTPUT_STATUSES, self._VERDICTS, self._LABEL_SOURCES
        answers = []
        for r in rows:
            params = params_cache.get(r[4])
            if params is None:
                params = params_cache[r[4]] = json.loads(r[4])
            output = Output(r[0], r[1], r[2], r[3], params, r[5], statuses[r[6]], r[7], r[8],
                            r[9], r[10], r[11], bool(r[12]), r[13], r[14])
            label = None if r[15] is None else Label(
                r[15], r[0], verdicts[r[16]], r[17], sources[r[18]], r[19], r[20])
            answers.append(Answer(output, label))
        return answers

    @staticmethod
    def _newest_per_case(version_id: int, model: str | None) -> tuple[str, list[Any]]:
        # Cancelled outputs are skipped: a stopped call is not an answer, so the previous
        # answer stays current.
        sql = "SELECT max(id) FROM output WHERE version_id = ? AND status != 'cancelled'"
        params: list[Any] = [version_id]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        return sql + " GROUP BY case_id", params

    async def case_outputs_with_labels(
        self, version_id: int, model: str | None = None
    ) -> dict[int, Answer]:
        """Per case id, the newest non-cancelled output under a version (and model, if
        given) with its current label, in one query."""
        newest, params = self._newest_per_case(version_id, model)
        rows = await self._tuples(
            f"SELECT {self._ANSWER_COLUMNS} FROM output o {self._CURRENT_LABEL_JOIN}"
            f" WHERE o.id IN ({newest})",
            params,
        )
        if len(rows) < _CONVERT_INLINE_ROWS:
            answers = self._answers(rows)
        else:  # 100k rows take ~1 s to become objects: keep the caller's event loop free
            answers = await asyncio.to_thread(self._answers, rows)
        return {a.output.case_id: a for a in answers}

    async def answer_facts(self, version_id: int, model: str | None = None
                           ) -> dict[int, AnswerFacts]:
        """`case_outputs_with_labels` as plain `AnswerFacts` tuples (case id, output id,
        status, text, verdict, label source, cost, latency), in one query: what the
        Compare and Overview screens need of 100,000 answers, without an Output and a
        Label object each (the same choice of output and label)."""
        newest, params = self._newest_per_case(version_id, model)
        rows = await self._tuples(
            "SELECT o.case_id, o.id, o.status, o.text, l.verdict, l.source, o.cost,"
            f" o.latency_ms FROM output o {self._CURRENT_LABEL_JOIN}"
            f" WHERE o.id IN ({newest})",
            params,
        )
        return {r[0]: r for r in rows}  # type: ignore[misc]

    async def verdict_by_case(self, version_id: int, model: str | None = None
                              ) -> dict[int, Label]:
        """Per case id, the current label of the newest non-cancelled output under a
        version (and model); cases whose newest output is unlabelled are absent. For the
        Cases table's verdict column (the label's source tells carried ones apart)."""
        newest, params = self._newest_per_case(version_id, model)
        rows = await self._tuples(
            "SELECT o.case_id, l.id, l.output_id, l.verdict, l.rationale, l.source,"
            " l.carried_from, l.created_at FROM output o"
            " JOIN label l ON l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
            f" WHERE o.id IN ({newest})",
            params,
        )
        verdicts, sources = self._VERDICTS, self._LABEL_SOURCES

        def convert() -> dict[int, Label]:
            return {
                r[0]: Label(r[1], r[2], verdicts[r[3]], r[4], sources[r[5]], r[6], r[7])
                for r in rows
            }

        if len(rows) < _CONVERT_INLINE_ROWS:
            return convert()
        return await asyncio.to_thread(convert)

    async def case_answers(self, case_id: int) -> list[Answer]:
        """Every output of one case (oldest first) with its current label."""
        rows = await self._tuples(
            f"SELECT {self._ANSWER_COLUMNS} FROM output o {self._CURRENT_LABEL_JOIN}"
            " WHERE o.case_id = ? ORDER BY o.id",
            (case_id,),
        )
        return self._answers(rows)

    async def versions_changing_case(self, case_id: int, model: str | None = None
                                     ) -> list[VerdictChange]:
        """The versions under which this case's verdict differs from its verdict under the
        parent version (its provenance), oldest first. Per version the newest
        non-cancelled output counts (of `model`, if given)."""
        per_version: dict[int, Answer] = {}
        for answer in await self.case_answers(case_id):
            out = answer.output
            if out.status == OutputStatus.CANCELLED or (model is not None and out.model != model):
                continue
            per_version[out.version_id] = answer  # oldest first, so the newest wins
        return verdict_changes(await self.versions(), per_version)

    async def newest_outputs_by_model(self, case_id: int, version_id: int) -> dict[str, Output]:
        """Per model, the newest non-cancelled output of a case under a version."""
        rows = await self._all(
            "SELECT * FROM output WHERE id IN (SELECT max(id) FROM output WHERE case_id = ?"
            " AND version_id = ? AND status != 'cancelled' GROUP BY model) ORDER BY model",
            (case_id, version_id),
        )
        return {r["model"]: self._output(r) for r in rows}

    async def models_with_outputs(self, version_id: int) -> dict[str, int]:
        """Model name -> number of cases with a non-cancelled output under a version."""
        rows = await self._all(
            "SELECT model, count(DISTINCT case_id) FROM output WHERE version_id = ?"
            " AND status != 'cancelled' GROUP BY model ORDER BY model",
            (version_id,),
        )
        return {r[0]: r[1] for r in rows}

    async def motivation_counts(self) -> dict[int, int]:
        """Version id -> number of cases that motivated it (versions with none are absent)."""
        rows = await self._all(
            "SELECT version_id, count(*) FROM version_motivation GROUP BY version_id"
        )
        return {r[0]: r[1] for r in rows}

    async def _insert_label(
        self,
        db: aiosqlite.Connection,
        output_id: int,
        verdict: Verdict,
        rationale: str,
        source: LabelSource,
        carried_from: int | None,
        before: Label | None,
    ) -> Label:
        """Append a label row and its event, inside the caller's transaction."""
        cur = await db.execute(
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
        await self._event(
            db,
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
        row = await self._one("SELECT * FROM label WHERE id = ?", (label_id,))
        assert row is not None
        return self._label(row)

    async def _propagate(self, db: aiosqlite.Connection, label: Label) -> list[Label]:
        """Carry a person-given `label` to the identical outputs of its case (see
        coevo_tui.domain.carryover); inside the caller's transaction."""
        current = await self.current_label(label.output_id)
        if current is None or current.id != label.id:
            return []  # superseded since: the newer label is the one to propagate
        source = await self.output(label.output_id)
        answers = await self.case_answers(source.case_id)
        carried: list[Label] = []
        for target in propagation_targets(label, source, answers):
            before = next(a.label for a in answers if a.output.id == target.id)
            carried.append(
                await self._insert_label(
                    db, target.id, label.verdict, label.rationale, LabelSource.CARRIED,
                    root_label_id(label), before,
                )
            )
        return carried

    async def label_output(
        self,
        output_id: int,
        verdict: Verdict,
        rationale: str = "",
        source: LabelSource = LabelSource.HUMAN,
    ) -> tuple[Label, list[Label]]:
        """Label an output as a person (or a confirmed judge verdict) and, in the same
        transaction, carry the label to the case's identical outputs that are unlabelled
        or only hold an older carried label. Returns (the label, the carried labels).
        The TUI and `coevo label` use this rather than `set_label`."""
        if source == LabelSource.CARRIED:
            raise ValueError("carried labels are made by carry-over, not given")
        async with self._transaction() as db:
            output = await self.output(output_id)  # NotFound for a bad id, nothing written
            before = await self.current_label(output.id)
            label = await self._insert_label(db, output.id, verdict, rationale, source,
                                             None, before)
            carried = await self._propagate(db, label)
        return label, carried

    async def propagate_label(self, label_id: int) -> list[Label]:
        """Carry an existing person-given label to identical outputs of its case (for a
        label made with `set_label`). Returns the carried labels; none if the label is
        carried itself or no longer its output's current label."""
        async with self._transaction() as db:
            row = await self._one("SELECT * FROM label WHERE id = ?", (label_id,))
            if row is None:
                raise NotFound(f"no label with id {label_id}")
            return await self._propagate(db, self._label(row))

    async def apply_carry_over(self, output_id: int) -> Label | None:
        """Give a newly stored output the label of an identical, already labelled output of
        the same case (any version or model), marked carried; one transaction. Returns
        the new label, or None (no identical labelled output, not ok, or already labelled).
        The run engine calls this after each ok output."""
        output = await self.output(output_id)
        if output.status != OutputStatus.OK:
            return None

        async def decide() -> Label | None:
            answers = await self.case_answers(output.case_id)
            own = next((a.label for a in answers if a.output.id == output.id), None)
            return label_to_carry(output, own, answers)

        # Most outputs have nothing to inherit: decide before taking the write lock, so a
        # run does not queue a write transaction per answer; decide again under the lock.
        if await decide() is None:
            return None
        async with self._transaction() as db:
            source = await decide()
            if source is None:
                return None
            return await self._insert_label(
                db, output.id, source.verdict, source.rationale, LabelSource.CARRIED,
                root_label_id(source), None,
            )

    # ================================================================== provenance
    # Added for the Compare and Overview screens (instruction provenance).

    async def labels_by_id(self, label_ids: Iterable[int]) -> dict[int, Label]:
        """The labels with these ids (current or superseded), keyed by id: the rationale a
        version's motivation points at stays readable after the label changed."""
        ids = list(dict.fromkeys(label_ids))
        result: dict[int, Label] = {}
        for start in range(0, len(ids), 900):  # stay under SQLite's variable limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = await self._all(f"SELECT * FROM label WHERE id IN ({marks})", chunk)
            result.update({r["id"]: self._label(r) for r in rows})
        return result
