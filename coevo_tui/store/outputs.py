"""Model answers (outputs) and the runs that produce them.

Each output is committed the moment it completes; a run records who runs it (host,
process, start time) so that a run whose process is gone can be marked halted.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

from coevo_tui.domain.errors import NotFound, StorageError
from coevo_tui.domain.model import Output, OutputStatus
from coevo_tui.store.database import Database, utc_now
from coevo_tui.store.processes import ProcessIdentity, this_host, this_process


def output_from_row(row: sqlite3.Row) -> Output:
    """An Output from a ``SELECT * FROM output`` row."""
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


class Outputs:
    """Store and read model answers (`store.outputs`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(
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
        async with self._db.transaction():
            cur = await self._db.execute(
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
            await self._db.events.append(
                "create",
                "output",
                output_id,
                {"case_id": case_id, "version_id": version_id, "model": model,
                 "status": status.value, "cached": cached},
            )
        return await self.get(output_id)

    async def get(self, output_id: int) -> Output:
        """The output with this id; NotFound if there is none."""
        row = await self._db.one("SELECT * FROM output WHERE id = ?", (output_id,))
        if row is None:
            raise NotFound(f"no output with id {output_id}")
        return output_from_row(row)

    async def of_case(self, case_id: int) -> list[Output]:
        """Every output of a case, oldest first."""
        rows = await self._db.all("SELECT * FROM output WHERE case_id = ? ORDER BY id",
                                  (case_id,))
        return [output_from_row(r) for r in rows]

    async def newest(self, case_id: int, version_id: int, model: str | None = None
                     ) -> Output | None:
        """The newest output (of any status) of a case under a version (and model)."""
        if model is None:
            row = await self._db.one(
                "SELECT * FROM output WHERE case_id = ? AND version_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (case_id, version_id),
            )
        else:
            row = await self._db.one(
                "SELECT * FROM output WHERE case_id = ? AND version_id = ? AND model = ?"
                " ORDER BY id DESC LIMIT 1",
                (case_id, version_id, model),
            )
        return None if row is None else output_from_row(row)

    async def newest_per_case(self, version_id: int, model: str | None = None
                              ) -> dict[int, Output]:
        """The newest output (of any status) per case under a version (and model), keyed
        by case id."""
        sql = "SELECT * FROM output WHERE id IN (SELECT max(id) FROM output WHERE version_id = ?"
        params: list[Any] = [version_id]
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        sql += " GROUP BY case_id)"
        return {r["case_id"]: output_from_row(r) for r in await self._db.all(sql, params)}

    async def newest_per_model(self, case_id: int, version_id: int) -> dict[str, Output]:
        """Per model, the newest non-cancelled output of a case under a version."""
        rows = await self._db.all(
            "SELECT * FROM output WHERE id IN (SELECT max(id) FROM output WHERE case_id = ?"
            " AND version_id = ? AND status != 'cancelled' GROUP BY model) ORDER BY model",
            (case_id, version_id),
        )
        return {r["model"]: output_from_row(r) for r in rows}

    async def cases_per_model(self, version_id: int) -> dict[str, int]:
        """Model name -> number of cases with a non-cancelled output under a version."""
        rows = await self._db.all(
            "SELECT model, count(DISTINCT case_id) AS cases FROM output WHERE version_id = ?"
            " AND status != 'cancelled' GROUP BY model ORDER BY model",
            (version_id,),
        )
        return {r["model"]: r["cases"] for r in rows}

    async def finished_case_ids(self, version_id: int, model: str, params: dict[str, Any]
                                ) -> set[int]:
        """Cases that already have an ok output for this exact call setting (for resume)."""
        rows = await self._db.all(
            "SELECT DISTINCT case_id FROM output WHERE version_id = ? AND model = ?"
            " AND params = ? AND status = 'ok'",
            (version_id, model, json.dumps(params, sort_keys=True)),
        )
        return {r["case_id"] for r in rows}

    async def cached(self, cache_key: str) -> Output | None:
        """The newest ok output stored under this call's cache key, or None."""
        row = await self._db.one(
            "SELECT * FROM output WHERE cache_key = ? AND status = 'ok' ORDER BY id DESC LIMIT 1",
            (cache_key,),
        )
        return None if row is None else output_from_row(row)


class Runs:
    """Start and finish runs, and halt those whose process is gone (`store.runs`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def start(self, version_id: int, model: str, params: dict[str, Any],
                    total: int) -> int:
        """Record a run of `total` cases by this process; returns its id."""
        owner = this_process()
        async with self._db.transaction():
            cur = await self._db.execute(
                "INSERT INTO run (version_id, model, params, total, started_at, owner_host,"
                " owner_pid, owner_started) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (version_id, model, json.dumps(params, sort_keys=True), total, utc_now(),
                 owner.host, owner.pid, owner.started),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            await self._db.events.append("start", "run", run_id,
                                         {"version_id": version_id, "model": model,
                                          "total": total})
        return run_id

    async def finish(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        """Record how a run ended (done or halted) with its summary in the event."""
        async with self._db.transaction():
            await self._db.execute(
                "UPDATE run SET status = ?, finished_at = ? WHERE id = ?",
                (status, utc_now(), run_id),
            )
            await self._db.events.append("finish", "run", run_id,
                                         {"status": status, **summary})

    async def halt_abandoned(self) -> None:
        """Mark halted the runs still 'running' whose process (on this host) is gone: killed,
        or ended by a full disk before it could say so. A run whose process is alive, or
        on another host, may be going on right now and is left alone. If the machine
        refuses the write (the disk is still full) the next writable open tries again:
        a command that only reads must not fail for it."""
        with contextlib.suppress(StorageError):
            await self._halt_runs_of_gone_processes()

    async def _halt_runs_of_gone_processes(self) -> None:
        rows = await self._db.all(
            "SELECT id, owner_pid, owner_started FROM run WHERE status = 'running'"
            " AND owner_host = ? AND owner_pid > 0", (this_host(),))
        gone = [r["id"] for r in rows
                if ProcessIdentity(this_host(), r["owner_pid"], r["owner_started"]).is_gone()]
        if not gone:
            return
        async with self._db.transaction():
            for run_id in gone:
                cur = await self._db.execute(
                    "UPDATE run SET status = 'halted', finished_at = ? WHERE id = ?"
                    " AND status = 'running'", (utc_now(), run_id))
                if cur.rowcount:
                    await self._db.events.append(
                        "finish", "run", run_id,
                        {"status": "halted", "because": "its process ended"})
