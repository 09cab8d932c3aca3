"""The project file's connection: opening and creating it, configuration, migrations,
write transactions, small query helpers, and the event log.

Nothing here knows what a case or a label is; the concerns (`cases`, `versions`,
`outputs`, `labels`, `answers`, `settings`) each hold a `Database` and say what the rows
mean. One aiosqlite connection per process. Every change is one transaction that also
appends an event to the log. Writes start with ``BEGIN IMMEDIATE`` so that two processes
writing the same file queue on SQLite's busy handler instead of failing with "database
is locked".
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiosqlite

from coevo_tui.domain.errors import ProjectFileError, ReadOnlyProject, StorageError, UserError
from coevo_tui.domain.model import Event
from coevo_tui.store.faults import storage_error
from coevo_tui.store.project_file import (
    FileState,
    ProjectAppeared,
    inspect_project_file,
    partial_path,
    publish,
    read_only_reason,
    remove_stale_partials,
    remove_with_side_files,
    sqlite_uri,
    wal_pending,
)
from coevo_tui.store.schema import MIGRATIONS, SCHEMA_VERSION

# How long a writer waits for another process's transaction before giving up. Long, because
# a 100,000-case import in another shell legitimately holds the write lock for seconds.
BUSY_TIMEOUT_S = 60.0

# What opening does beyond the file itself, given by the store (see `Database.open`).
Setup = Callable[["Database"], Awaitable[object]]


def utc_now() -> str:
    """The current time as stored: ISO 8601, UTC, milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Columns:
    """The columns of one bulk read, declared once as (SQL expression, field name) pairs.

    `select` is the SELECT list, `Row` a NamedTuple class of the field names in the same
    order (``Row._make(row)`` decodes a plain tuple by name), and `at` holds each field's
    position (``at.case_id``): the reads of 100,000 rows keep SQLite's plain tuples and
    index them with positions taken from here, so that no position is written by hand.
    """

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self.columns = list(columns)  # to build a wider read from this one
        self.select = ", ".join(sql for sql, _ in columns)
        self.Row = collections.namedtuple(name, [field for _, field in columns])  # type: ignore[misc]
        self.at = self.Row._make(range(len(columns)))

    @classmethod
    def in_layout(cls, name: str, layout: Mapping[int, tuple[str, str]]) -> Columns:
        """Columns whose order is a tuple layout defined elsewhere (the domain's
        ``LINE_*`` and ``FACT_*`` positions): `layout` maps each position to its
        (SQL expression, field name)."""
        if sorted(layout) != list(range(len(layout))):
            raise ValueError(f"{name}: positions {sorted(layout)} are not 0..{len(layout) - 1}")
        return cls(name, [layout[position] for position in range(len(layout))])


class Database:
    """An open project file. Open with `await Database.open(path, ...)` (the store does);
    close with `close()`."""

    def __init__(self, path: Path, conn: aiosqlite.Connection, *, read_only: bool = False
                 ) -> None:
        self.path = path
        # Opened read-only (a reading command, or a project in a read-only place): every
        # write is refused with ReadOnlyProject before it starts.
        self.read_only = read_only
        self._conn = conn
        self._write_lock = asyncio.Lock()
        # What a refused write tells the user survived it.
        self._kept_on_refusal = "this change was not saved; everything saved before it is kept"
        self.events = EventLog(self)

    # ------------------------------------------------------------------ opening
    @classmethod
    async def open(cls, path: str | Path, *, read_only: bool = False, populate: Setup,
                   on_writable_open: Setup) -> Database:
        """Open the project at `path`, creating it if it does not exist (see `create`).

        Raises ProjectFileError, leaving the file untouched, for a file that is not a coevo
        project or comes from a newer schema. Older schemas are migrated forward.
        `populate` writes what a new project holds (see `create`); `on_writable_open`
        runs after the migrations on every open for writing (finishing what an
        interrupted process left).

        With `read_only` the project is opened so that nothing can be written (and a
        missing one is not created); without it, a project that cannot be written (a
        read-only file, folder or mount) is refused with ReadOnlyProject before anything
        is done.
        """
        path = Path(path)
        state = inspect_project_file(path)
        if state is FileState.MISSING:
            if read_only:
                raise ProjectFileError(f"{path}: no such project file")
            try:
                return await cls.create(path, populate=populate,
                                        on_writable_open=on_writable_open)
            except ProjectAppeared:
                state = inspect_project_file(path)  # someone else's, perhaps not a project
                if state is FileState.MISSING:  # and gone again: never create it unguarded
                    raise ProjectFileError(f"{path}: another program created and deleted "
                                           "this file meanwhile; try again") from None
        return await cls._open_existing(path, state, read_only, on_writable_open)

    @classmethod
    async def create(cls, path: str | Path, *, populate: Setup, on_writable_open: Setup
                     ) -> Database:
        """Create the project at `path` whole or not at all, and open it.

        The project is built under a hidden name in the same folder (schema, then whatever
        `populate` writes: settings, version 1, perhaps imported cases), folded from its
        WAL into the one file, and only then linked under `path`. A kill at any moment
        leaves either no project or a whole one, and a failure (a bad row, a full disk)
        leaves nothing behind. Raises ProjectAppeared, keeping nothing of its own, if a
        file appeared at `path` meanwhile.
        """
        path = Path(path)
        if inspect_project_file(path) is not FileState.MISSING:
            raise ProjectAppeared(f"{path}: already exists")
        remove_stale_partials(path)
        partial = partial_path(path)
        kept = "no project was created"
        try:
            try:
                conn = await aiosqlite.connect(partial, timeout=BUSY_TIMEOUT_S,
                                               isolation_level=None)
            except sqlite3.Error as exc:
                raise storage_error(exc, path, kept) or ProjectFileError(
                    f"{path}: cannot create ({exc})") from None
            conn.row_factory = sqlite3.Row
            database = cls(path, conn)  # messages name the target, not the hidden file
            database._kept_on_refusal = kept
            try:
                await database._configure(create=True)
                await database._migrate()
                await populate(database)
                # Nothing else has the hidden file open, so this copies every page.
                busy = await database.scalar("PRAGMA wal_checkpoint(TRUNCATE)")
                if busy:
                    raise StorageError(f"{path}: could not finish writing the new project; "
                                       f"{kept}")
            finally:
                await conn.close()
            if wal_pending(partial):
                raise StorageError(f"{path}: could not finish writing the new project; {kept}")
            publish(partial, path)
        except BaseException as exc:
            remove_with_side_files(partial)
            refusal = None if isinstance(exc, ProjectAppeared) else storage_error(exc, path, kept)
            if refusal is not None and refusal is not exc:
                raise refusal from None
            raise
        return await cls._open_existing(path, FileState.READY, False, on_writable_open)

    @classmethod
    async def _open_existing(cls, path: Path, state: FileState, read_only: bool,
                             on_writable_open: Setup) -> Database:
        if not read_only:
            reason = read_only_reason(path)
            if reason is not None:
                raise ReadOnlyProject(f"{path}: the project is read-only ({reason}); "
                                      "nothing was changed")
        try:
            conn = await aiosqlite.connect(sqlite_uri(path, read_only=read_only), uri=True,
                                           timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise storage_error(exc, path) or ProjectFileError(
                f"{path}: cannot open ({exc})") from None
        conn.row_factory = sqlite3.Row
        database = cls(path, conn, read_only=read_only)
        try:
            await database._configure(create=False)
            schema_before = await database.schema_version()
            await database._migrate()
            if not read_only:
                await on_writable_open(database)
                remove_stale_partials(path)  # a creation of this path killed half-way
                if state is FileState.RECOVERABLE:
                    # Copy what the WAL held into the file, so the next open needs no
                    # whole-file check. PASSIVE: never wait for another process's readers;
                    # if the disk is still full, it simply stays in the WAL for now.
                    with contextlib.suppress(sqlite3.Error):
                        await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                elif schema_before != await database.schema_version():
                    # The header (user_version) sits in the WAL until a checkpoint; copy
                    # it into the file now, or another process's header check would still
                    # see the old schema.
                    await conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except BaseException as exc:
            await conn.close()
            refusal = storage_error(exc, path)
            if refusal is not None and refusal is not exc:
                raise refusal from None
            raise
        return database

    async def _configure(self, create: bool) -> None:
        await self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        await self._conn.execute("PRAGMA foreign_keys = ON")
        if create:
            await self._conn.execute("PRAGMA journal_mode = WAL")
        else:
            # Reading the schema and the settings row touches the pages every screen needs;
            # a whole-file check (quick_check) would cost seconds on a large project.
            try:
                await self.scalar("SELECT count(*) FROM sqlite_master")
                await self.scalar("SELECT count(*) FROM project")
            except sqlite3.DatabaseError as exc:
                if storage_error(exc, self.path) is not None:
                    raise
                raise ProjectFileError(f"{self.path}: damaged project file ({exc})") from None
            if not self.read_only and await self.scalar("PRAGMA journal_mode") != "wal":
                await self._conn.execute("PRAGMA journal_mode = WAL")
        await self._conn.execute("PRAGMA synchronous = NORMAL")

    async def _migrate(self) -> None:
        current = await self.scalar("PRAGMA user_version")
        if current > SCHEMA_VERSION:  # header said otherwise; trust the live value
            raise ProjectFileError(f"{self.path}: written by a newer coevo (schema {current})")
        if current < SCHEMA_VERSION and self.read_only:
            raise ReadOnlyProject(
                f"{self.path}: written by an older coevo (schema {current}) and read-only "
                "here, so it cannot be upgraded; open it once where it can be written")
        pending = sorted(n for n in MIGRATIONS if n > current)
        if not pending:
            return
        # A migration may rebuild a table others refer to (SQLite's way of changing a
        # CHECK constraint), which enforcement would refuse half-way; it is switched off
        # around the migrations (it cannot be inside a transaction) and every reference
        # is checked before each one commits, as SQLite's documentation prescribes.
        await self._conn.execute("PRAGMA foreign_keys = OFF")
        try:
            for number in pending:
                async with self.transaction() as conn:
                    # Another process may have migrated while we waited for the lock.
                    if await self.scalar("PRAGMA user_version") >= number:
                        continue
                    for statement in MIGRATIONS[number]:
                        await conn.execute(statement)
                    broken = await self.all("PRAGMA foreign_key_check")
                    if broken:
                        raise ProjectFileError(
                            f"{self.path}: upgrading to schema {number} would leave "
                            f"{len(broken)} broken references (first in table "
                            f"{broken[0][0]}); nothing was changed")
                    await conn.execute(f"PRAGMA user_version = {number}")
                    await self.events.append("migrate", "project", None, {"to": number})
        finally:
            await self._conn.execute("PRAGMA foreign_keys = ON")

    async def close(self) -> None:
        await self._conn.close()

    async def schema_version(self) -> int:
        """The schema the file holds now (``PRAGMA user_version``)."""
        return int(await self.scalar("PRAGMA user_version"))

    # ------------------------------------------------------------------ transactions
    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock up front (waiting on
        the busy handler), so a transaction never fails half-way for lack of it.

        A write the machine refuses (full disk, read-only, I/O error) raises the
        StorageError family saying what was kept; the refusal itself is what is raised,
        never a failure of the ROLLBACK after it (SQLite may have rolled back already)."""
        async with self._write_lock:
            if self.read_only:
                raise ReadOnlyProject(f"{self.path}: the project is open read-only; "
                                      "nothing was changed")
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    await self._conn.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise self._refusal(exc) from None
                    if time.monotonic() > deadline:
                        raise UserError(
                            f"{self.path}: another program has held the project for over "
                            f"{BUSY_TIMEOUT_S:.0f} s; try again"
                        ) from None
                    await asyncio.sleep(0.05)
            try:
                yield self._conn
            except BaseException as exc:
                await self._rollback()
                refusal = storage_error(exc, self.path, self._kept_on_refusal)
                if refusal is not None and refusal is not exc:
                    raise refusal from None
                raise
            try:
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                raise self._refusal(exc) from None

    def _refusal(self, exc: BaseException) -> BaseException:
        """`exc` as a StorageError if the machine refused, else `exc` itself."""
        return storage_error(exc, self.path, self._kept_on_refusal) or exc

    async def _rollback(self) -> None:
        """Roll back if a transaction is still open; never let a failing ROLLBACK hide the
        error that led here."""
        if self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await self._conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ queries
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        """Run one statement (a write: inside `transaction()`); returns its cursor."""
        return await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement per row of `rows` (inside `transaction()`)."""
        await self._conn.executemany(sql, rows)

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None without a row."""
        async with self._conn.execute(sql, params) as cur:
            row = await cur.fetchone()
        return None if row is None else row[0]

    async def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """The first row (columns by name), or None."""
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row (columns by name)."""
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def tuples_in_one_hop(self, sql: str, params: Sequence[Any] = ()
                                ) -> list[tuple[Any, ...]]:
        """`tuples` in one trip to aiosqlite's thread (execute, fetch and close together,
        where a cursor costs three): for the reads a key press waits for."""
        return [tuple(row) for row in await self._conn.execute_fetchall(sql, params)]

    async def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row as SQLite's plain tuple: for bulk reads, where sqlite3.Row lookups by
        name would dominate (index them with a `Columns` declaration's positions)."""
        async with self._conn.execute(sql, params) as cur:
            cur.row_factory = None  # plain tuples, not sqlite3.Row
            return list(await cur.fetchall())


class EventLog:
    """The append-only record of every user action and every state change (SPEC
    section 2): one row per change, written in the change's own transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def append(self, kind: str, entity: str, entity_id: int | None,
                     payload: dict[str, Any]) -> None:
        """Record one change; call inside the transaction that makes it, so that the
        entry commits (or not) with the change."""
        await self._database.execute(
            "INSERT INTO event (at, kind, entity, entity_id, payload) VALUES (?, ?, ?, ?, ?)",
            (utc_now(), kind, entity, entity_id, json.dumps(payload, ensure_ascii=False)),
        )

    async def record(self, kind: str, entity: str, entity_id: int | None,
                     payload: dict[str, Any]) -> None:
        """Record something that changed nothing else (an assistant call, say) in a
        transaction of its own."""
        async with self._database.transaction():
            await self.append(kind, entity, entity_id, payload)

    async def recent(self, limit: int = 100, *, kind: str | None = None) -> list[Event]:
        """The newest `limit` events (of `kind`, if given), newest first."""
        if kind is None:
            rows = await self._database.all("SELECT * FROM event ORDER BY id DESC LIMIT ?",
                                            (limit,))
        else:
            rows = await self._database.all(
                "SELECT * FROM event WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [
            Event(id=r["id"], at=r["at"], kind=r["kind"], entity=r["entity"],
                  entity_id=r["entity_id"], payload=json.loads(r["payload"]))
            for r in rows
        ]
