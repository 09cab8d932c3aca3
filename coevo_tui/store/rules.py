"""Policy rules: the numbered rules of a version's instructions (SPEC section 2).

The assistant extracts them (assist/rules.py) and the user may edit them; cases and
candidates point at a rule by its number under the version they were made for."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import NewRule, PolicyRule
from coevo_tui.store.database import Database, utc_now


def _rule(row: sqlite3.Row) -> PolicyRule:
    return PolicyRule(id=row["id"], version_id=row["version_id"], number=row["number"],
                      title=row["title"], text=row["text"])


class Rules:
    """Read, replace and edit a version's rules (`store.rules`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def for_version(self, version_id: int) -> list[PolicyRule]:
        """The rules of a version, by number (empty when none were extracted yet)."""
        rows = await self._db.all(
            "SELECT * FROM policy_rule WHERE version_id = ? ORDER BY number", (version_id,))
        return [_rule(r) for r in rows]

    async def get(self, rule_id: int) -> PolicyRule:
        """The rule with this row id; NotFound if there is none."""
        row = await self._db.one("SELECT * FROM policy_rule WHERE id = ?", (rule_id,))
        if row is None:
            raise NotFound(f"no rule with id {rule_id}")
        return _rule(row)

    async def replace(self, version_id: int, rules: Sequence[NewRule]) -> list[PolicyRule]:
        """Make `rules` the version's rules, in one transaction with one event (which keeps
        the rules replaced). Numbers must be distinct and positive; titles non-empty."""
        numbers = [r.number for r in rules]
        if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
            raise UserError(f"rule numbers must be distinct and positive, not {numbers}")
        if any(not r.title.strip() for r in rules):
            raise UserError("every rule needs a title")
        async with self._db.transaction():
            before = await self.for_version(version_id)
            if await self._db.scalar("SELECT count(*) FROM prompt_version WHERE id = ?",
                                     (version_id,)) == 0:
                raise NotFound(f"no version with id {version_id}")
            await self._db.execute("DELETE FROM policy_rule WHERE version_id = ?",
                                   (version_id,))
            now = utc_now()
            await self._db.executemany(
                "INSERT INTO policy_rule (version_id, number, title, text, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(version_id, r.number, r.title.strip(), r.text.strip(), now)
                 for r in sorted(rules, key=lambda r: r.number)])
            await self._db.events.append(
                "rules", "prompt_version", version_id,
                {"before": [[r.number, r.title] for r in before],
                 "after": [[r.number, r.title.strip()] for r in
                           sorted(rules, key=lambda r: r.number)]})
        return await self.for_version(version_id)

    async def edit(self, rule_id: int, *, title: str | None = None,
                   text: str | None = None) -> PolicyRule:
        """Change a rule's title or text; the event keeps the old values."""
        if title is not None and not title.strip():
            raise UserError("a rule's title cannot be empty")
        async with self._db.transaction():
            before = await self.get(rule_id)
            changes = {}
            if title is not None and title.strip() != before.title:
                changes["title"] = title.strip()
            if text is not None and text.strip() != before.text:
                changes["text"] = text.strip()
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                await self._db.execute(f"UPDATE policy_rule SET {sets} WHERE id = ?",
                                       (*changes.values(), rule_id))
                await self._db.events.append(
                    "edit", "policy_rule", rule_id,
                    {"before": {k: getattr(before, k) for k in changes}, "after": changes})
        return await self.get(rule_id)
