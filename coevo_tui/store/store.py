"""The store: every read and write of a project file goes through a `Store`.

A thin façade over one `Database` (connection, opening, migrations, transactions, the
event log) with one attribute per concern, each a small class over that database::

    store.settings   the project's settings (settings.py)
    store.versions   prompt versions and their motivations (versions.py)
    store.cases      the test set's cases (cases.py)
    store.outputs    model answers (outputs.py)
    store.runs       runs of a version over the cases (outputs.py)
    store.labels     the one label writer, label reads, carry-over (labels.py)
    store.answers    bulk reads of answers with their labels, export (answers.py)
    store.rules      the numbered policy rules of each version (rules.py)
    store.judgements the judge's suggestions, accepting them, agreement pairs (judgements.py)
    store.loop       aggregate counts of what is left to do in the loop (loop_facts.py)
    store.events     the event log (database.py)

Create with `await Store.open(path)`; close with `close()` (or use ``async with``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from coevo_tui.domain.errors import ProjectFileError
from coevo_tui.store.answers import Answers
from coevo_tui.store.cases import CaseRow, Cases, NewCase
from coevo_tui.store.database import Database, utc_now
from coevo_tui.store.judgements import Judgements
from coevo_tui.store.labels import Labels
from coevo_tui.store.loop_facts import LoopFacts
from coevo_tui.store.outputs import Outputs, Runs
from coevo_tui.store.project_file import read_only_reason
from coevo_tui.store.rules import Rules
from coevo_tui.store.settings import Settings
from coevo_tui.store.versions import Versions

__all__ = ["CaseRow", "NewCase", "Store", "utc_now"]


class Store:
    """An open project file. Create with `await Store.open(path)`; close with `close()`."""

    def __init__(self, database: Database) -> None:
        # The connection itself, for what no concern covers (tests reading raw rows).
        self.database = database
        self.path = database.path
        # Opened read-only: every write is refused with ReadOnlyProject before it starts.
        self.read_only = database.read_only
        self.events = database.events
        self.settings = Settings(database)
        self.versions = Versions(database)
        self.cases = Cases(database)
        self.outputs = Outputs(database)
        self.runs = Runs(database)
        self.answers = Answers(database, self.versions)
        self.labels = Labels(database, self.outputs, self.answers)
        self.rules = Rules(database)
        self.judgements = Judgements(database, self.labels)
        self.loop = LoopFacts(database)

    # ------------------------------------------------------------------ opening
    @classmethod
    async def open(cls, path: str | Path, *, name: str | None = None,
                   instructions: str = "", note: str = "", read_only: bool = False) -> Store:
        """Open the project at `path`, creating it if it does not exist (see `create`).

        Raises ProjectFileError, leaving the file untouched, for a file that is not a coevo
        project or comes from a newer schema. Older schemas are migrated forward.
        A new project's version 1 holds `instructions` (empty by default) with `note`;
        both are ignored when the file already exists.

        With `read_only` the project is opened so that nothing can be written (and a
        missing one is not created); without it, a project that cannot be written (a
        read-only file, folder or mount) is refused with ReadOnlyProject before anything
        is done. Opening for writing also marks halted the runs whose process is gone.
        """
        path = Path(path)

        async def populate(database: Database) -> None:
            await cls(database)._start_project(name or path.stem, instructions, note)

        database = await Database.open(path, read_only=read_only, populate=populate,
                                       on_writable_open=cls._tend)
        return cls(database)

    @classmethod
    async def open_to_read(cls, path: str | Path) -> Store:
        """Open an existing project for a command that only reads it: read-only where it
        cannot be written (a read-only file, folder or mount), else as `open` does (so an
        older schema is upgraded and abandoned runs are marked halted)."""
        path = Path(path)
        if not path.exists():
            raise ProjectFileError(f"{path}: no such project file")
        return await cls.open(path, read_only=read_only_reason(path) is not None)

    @classmethod
    async def create(cls, path: str | Path, *, name: str | None = None,
                     instructions: str = "", note: str = "",
                     fill: Callable[[Store], Awaitable[object]] | None = None) -> Store:
        """Create the project at `path` whole or not at all, and open it.

        The project is built under a hidden name in the same folder (schema, settings,
        version 1, then whatever `fill` adds, e.g. imported cases), folded from its WAL
        into the one file, and only then linked under `path`. A kill at any moment leaves
        either no project or a whole one, and a failure (a bad row, a full disk) leaves
        nothing behind. Raises ProjectAppeared, keeping nothing of its own, if a file
        appeared at `path` meanwhile.
        """
        path = Path(path)

        async def populate(database: Database) -> None:
            store = cls(database)
            await store._start_project(name or path.stem, instructions, note)
            if fill is not None:
                await fill(store)

        return cls(await Database.create(path, populate=populate, on_writable_open=cls._tend))

    @classmethod
    async def _tend(cls, database: Database) -> None:
        """What every open for writing does after the migrations."""
        store = cls(database)
        if not await store.settings.exist():
            # Left by an older coevo killed while creating it: finish the job.
            await store._start_project(database.path.stem)
        await store.runs.halt_abandoned()

    async def _start_project(self, name: str, instructions: str = "", note: str = "") -> None:
        """A new project's settings and version 1, in one transaction (nothing if the
        settings are there already)."""
        async with self.database.transaction():
            if await self.settings.exist():
                return
            await self.settings.insert(name)
            default_note = "first version" if instructions else "initial empty instructions"
            await self.versions.insert(instructions, None, note or default_note)

    async def close(self) -> None:
        await self.database.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
