"""The project's settings: its one row of name, task, model, parameters and assistant."""

from __future__ import annotations

import json
from typing import Any

from coevo_tui.domain.errors import ProjectFileError
from coevo_tui.domain.model import Project
from coevo_tui.store.database import Database, utc_now

_SETTINGS = ("name", "task", "model", "params", "assistant_model")


class Settings:
    """Read and change the project settings (`store.settings`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self) -> Project:
        """The project's settings."""
        row = await self._db.one("SELECT * FROM project WHERE id = 1")
        if row is None:
            raise ProjectFileError(f"{self._db.path}: project settings are missing")
        return Project(
            name=row["name"],
            task=row["task"],
            model=row["model"],
            params=json.loads(row["params"]),
            assistant_model=row["assistant_model"],
        )

    async def update(self, **changes: Any) -> Project:
        """Change project settings (name, task, model, params, assistant_model)."""
        unknown = set(changes) - set(_SETTINGS)
        if unknown:
            raise ValueError(f"unknown project settings: {sorted(unknown)}")
        async with self._db.transaction():
            before = await self.get()
            values = {k: json.dumps(v) if k == "params" else v for k, v in changes.items()}
            sets = ", ".join(f"{k} = ?" for k in values)
            await self._db.execute(f"UPDATE project SET {sets} WHERE id = 1",
                                   tuple(values.values()))
            await self._db.events.append(
                "edit",
                "project",
                1,
                {
                    "before": {k: getattr(before, k) for k in changes},
                    "after": changes,
                },
            )
        return await self.get()

    async def preferences(self) -> dict[str, Any]:
        """The project's preferences for how it is shown (see `set_preference`); empty
        until one is set."""
        text = await self._db.scalar("SELECT preferences FROM project WHERE id = 1")
        try:
            found = json.loads(text) if text else {}
        except ValueError:  # a hand-edited file: fall back to the defaults
            return {}
        return found if isinstance(found, dict) else {}

    async def set_preference(self, name: str, value: Any) -> None:
        """Set one preference (a JSON value, e.g. `loop_line`: whether the Cases screen
        shows the loop's next step), recorded in the event log like every change."""
        async with self._db.transaction():
            preferences = await self.preferences()
            before = preferences.get(name)
            preferences[name] = value
            await self._db.execute("UPDATE project SET preferences = ? WHERE id = 1",
                                   (json.dumps(preferences, sort_keys=True),))
            await self._db.events.append("edit", "project", 1, {
                "before": {f"preferences.{name}": before},
                "after": {f"preferences.{name}": value},
            })

    async def exist(self) -> bool:
        """Whether the settings row is there (it is not in a project an older coevo was
        killed while creating)."""
        return bool(await self._db.scalar("SELECT count(*) FROM project"))

    async def insert(self, name: str) -> None:
        """Write a new project's settings row; inside the caller's transaction."""
        await self._db.execute(
            "INSERT INTO project (id, name, created_at) VALUES (1, ?, ?)", (name, utc_now())
        )
        await self._db.events.append("create", "project", 1, {"name": name})
