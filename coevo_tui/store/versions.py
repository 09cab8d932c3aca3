"""Prompt versions: immutable, numbered from 1, each with the cases that motivated it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import PromptVersion
from coevo_tui.store.database import Database, utc_now


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


class Versions:
    """Read and create prompt versions (`store.versions`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def all(self) -> list[PromptVersion]:
        """Every version, by number."""
        rows = await self._db.all("SELECT * FROM prompt_version ORDER BY number")
        return [_version(r) for r in rows]

    async def by_number(self, number: int) -> PromptVersion:
        """Version `number` (v1, v2, ...); NotFound if there is none."""
        row = await self._db.one("SELECT * FROM prompt_version WHERE number = ?", (number,))
        if row is None:
            raise NotFound(f"no version {number} in {self._db.path.name}")
        return _version(row)

    async def by_id(self, version_id: int) -> PromptVersion:
        """The version with this row id; NotFound if there is none."""
        row = await self._db.one("SELECT * FROM prompt_version WHERE id = ?", (version_id,))
        if row is None:
            raise NotFound(f"no version with id {version_id}")
        return _version(row)

    async def latest(self) -> PromptVersion:
        """The version with the highest number."""
        row = await self._db.one("SELECT * FROM prompt_version ORDER BY number DESC LIMIT 1")
        if row is None:
            raise NotFound(f"{self._db.path.name} has no prompt version")
        return _version(row)

    async def create(
        self,
        instructions: str,
        user_template: str | None = None,
        note: str = "",
        motivating: Sequence[tuple[int, int | None]] = (),
    ) -> PromptVersion:
        """Save the next immutable version. `motivating` is (case id, label id or None)."""
        if user_template is not None and "{input}" not in user_template:
            raise UserError("the user template must contain {input}")
        async with self._db.transaction():
            version_id = await self.insert(instructions, user_template or None, note,
                                           motivating)
        return await self.by_id(version_id)

    async def insert(
        self,
        instructions: str,
        user_template: str | None,
        note: str,
        motivating: Sequence[tuple[int, int | None]] = (),
    ) -> int:
        """Write the next version and its motivations, inside the caller's transaction;
        returns its row id."""
        parent = await self._db.one(
            "SELECT id, number FROM prompt_version ORDER BY number DESC")
        number = 1 if parent is None else parent["number"] + 1
        cur = await self._db.execute(
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
        await self._db.executemany(
            "INSERT INTO version_motivation (version_id, case_id, label_id) VALUES (?, ?, ?)",
            [(version_id, case_id, label_id) for case_id, label_id in motivating],
        )
        await self._db.events.append(
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

    async def motivating_cases(self, version_id: int) -> list[tuple[int, int | None]]:
        """The (case id, label id or None) pairs that motivated a version, by case id."""
        rows = await self._db.all(
            "SELECT case_id, label_id FROM version_motivation WHERE version_id = ?"
            " ORDER BY case_id",
            (version_id,),
        )
        return [(r["case_id"], r["label_id"]) for r in rows]

    async def motivation_counts(self) -> dict[int, int]:
        """Version id -> number of cases that motivated it (versions with none are absent)."""
        rows = await self._db.all(
            "SELECT version_id, count(*) AS cases FROM version_motivation GROUP BY version_id"
        )
        return {r["version_id"]: r["cases"] for r in rows}
