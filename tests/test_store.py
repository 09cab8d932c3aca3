"""The store: migrations from an older file, the event log, label history, versions, batches."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import coevo_tui.store.database as store_module
from coevo_tui.domain.errors import (
    DiskFull,
    ImportRejected,
    NotFound,
    ProjectFileError,
    ReadOnlyProject,
    UserError,
)
from coevo_tui.domain.model import CaseState, LabelSource, OutputStatus, Verdict
from coevo_tui.store import SCHEMA_VERSION, NewCase, Store
from coevo_tui.store.processes import this_process
from coevo_tui.store.schema import APPLICATION_ID, MIGRATIONS

T0 = "2024-01-02T03:04:05.000+00:00"


def make_schema_1_file(path: Path) -> None:
    """A project as coevo's first schema wrote it, with a little of everything in it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO project (id, name, task, model, created_at)"
               " VALUES (1, 'old', 'moderate chat', 'openai/gpt-4o-mini', ?)", (T0,))
    db.execute("INSERT INTO prompt_version (id, number, instructions, note, created_at)"
               " VALUES (1, 1, 'Be kind.', 'first', ?)", (T0,))
    db.executemany(
        "INSERT INTO cases (id, ext_id, input, tags, note, source, state, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1, "a", "you are bad at this game", '["trash talk"]', "keep", "imported", "active",
          T0, T0),
         (2, "b", "gg ez", "[]", "", "manual", "archived", T0, T0)],
    )
    db.execute("INSERT INTO output (id, case_id, version_id, model, text, status, created_at)"
               " VALUES (1, 1, 1, 'openai/gpt-4o-mini', 'allowed', 'ok', ?)", (T0,))
    db.execute("INSERT INTO label (id, output_id, verdict, rationale, source, created_at)"
               " VALUES (1, 1, 'good', 'banter is fine', 'human', ?)", (T0,))
    db.execute("INSERT INTO event (at, kind, entity, entity_id, payload)"
               " VALUES (?, 'create', 'project', 1, '{\"name\": \"old\"}')", (T0,))
    db.execute("COMMIT")
    db.close()


def is_utc_time(text: str) -> bool:
    return datetime.fromisoformat(text).utcoffset() == timedelta(0)


# ---------------------------------------------------------------------- migrations
async def test_schema_1_file_is_migrated_with_data_intact(tmp_path) -> None:
    path = tmp_path / "old.db"
    make_schema_1_file(path)
    async with await Store.open(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        project = await store.settings.get()
        assert (project.name, project.task, project.model) == (
            "old", "moderate chat", "openai/gpt-4o-mini")
        (v1,) = await store.versions.all()
        assert (v1.number, v1.instructions, v1.note) == (1, "Be kind.", "first")
        cases = await store.cases.all()
        assert [(c.ext_id, c.input, c.tags, c.note, c.state) for c in cases] == [
            ("a", "you are bad at this game", ("trash talk",), "keep", CaseState.ACTIVE),
            ("b", "gg ez", (), "", CaseState.ARCHIVED),
        ]
        (output,) = await store.outputs.of_case(1)
        assert (output.text, output.run_id, output.cached) == ("allowed", None, False)
        label = await store.labels.current(output.id)
        assert label is not None
        assert (label.verdict, label.rationale) == (Verdict.GOOD, "banter is fine")

        migrations = await store.events.recent(100, kind="migrate")
        assert sorted(e.payload["to"] for e in migrations) == list(
            range(2, SCHEMA_VERSION + 1))
        assert all(is_utc_time(e.at) for e in migrations)
        assert [e.at for e in await store.events.recent(100, kind="create")][-1] == T0  # kept

        # What migration 2 added works on the old data.
        run_id = await store.runs.start(v1.id, "m", {}, total=1)
        new = await store.outputs.add(case_id=2, version_id=v1.id, model="m", params={},
                                     text="x", status=OutputStatus.OK, run_id=run_id,
                                     cache_key="k", cached=True)
        assert (new.run_id, new.cached) == (run_id, True)
        assert (await store.outputs.cached("k")).id == new.id
        # Migration 3's index: the newest answer per case is a range of it, not a scan.
        (answer,) = (await store.answers.facts_per_case(v1.id, "openai/gpt-4o-mini")).values()
        assert answer[:5] == (1, 1, "ok", "allowed", "good")
    with sqlite3.connect(path) as db:
        plan = " ".join(row[3] for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT max(id) FROM output WHERE version_id = 1"
            " AND model = 'm' AND status != 'cancelled' GROUP BY case_id"))
    db.close()
    assert "COVERING INDEX output_version_model_case (version_id=? AND model=?)" in plan
    header = path.read_bytes()[:100]
    assert int.from_bytes(header[60:64], "big") == SCHEMA_VERSION
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID


async def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch) -> None:
    path = tmp_path / "p.db"
    async with await Store.open(path) as store:
        await store.cases.add(NewCase(input="keep me"))
    broken = {**MIGRATIONS, SCHEMA_VERSION + 1: ["CREATE TABLE half_done (x)", "NOT SQL"]}
    monkeypatch.setattr(store_module, "MIGRATIONS", broken)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(path)
    monkeypatch.undo()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in tables
        assert db.execute("SELECT input FROM cases").fetchall() == [("keep me",)]
    finally:
        db.close()


def make_schema_3_file(path: Path) -> None:
    """A project as schema 3 left it: one finished run, and one still 'running' (its
    process was killed by a coevo that did not yet record who runs a run)."""
    make_schema_1_file(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for number in (2, 3):
        for statement in MIGRATIONS[number]:
            db.execute(statement)
    db.execute("PRAGMA user_version = 3")
    db.executemany("INSERT INTO run (id, version_id, model, total, started_at, status)"
                   " VALUES (?, 1, 'm', 1, ?, ?)", [(1, T0, "done"), (2, T0, "running")])
    db.execute("COMMIT")
    db.close()


async def test_schema_3_file_is_migrated_to_record_who_runs_a_run(tmp_path) -> None:
    path = tmp_path / "old.db"
    make_schema_3_file(path)
    async with await Store.open(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        assert sorted(e.payload["to"] for e in await store.events.recent(
            100, kind="migrate")) == list(range(4, SCHEMA_VERSION + 1))
        # Nobody knows whose the old 'running' run is: it is left as it was.
        assert [tuple(r) for r in await store.database.all(
            "SELECT id, status, owner_host FROM run ORDER BY id")] == [
            (1, "done", None), (2, "running", None)]
        assert [c.ext_id for c in await store.cases.all()] == ["a", "b"]  # the data is kept
        run_id = await store.runs.start(1, "m", {}, total=1)
        owner = await store.database.one("SELECT owner_host, owner_pid, owner_started FROM run"
                                 " WHERE id = ?", (run_id,))
    assert tuple(owner)[:2] == (this_process().host, os.getpid())
    assert owner[2] == this_process().started
    assert int.from_bytes(path.read_bytes()[60:64], "big") == SCHEMA_VERSION


def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_runs_whose_process_is_gone_are_halted_on_the_next_writable_open(
        project_path) -> None:
    async with await Store.open(project_path) as store:
        version = await store.versions.latest()
        ids = [await store.runs.start(version.id, "m", {}, total=3) for _ in range(4)]
        me = this_process()
        owners = {
            ids[0]: (me.host, _dead_pid(), None),  # killed
            ids[1]: (me.host, os.getpid(), me.started),  # this process: still going
            ids[2]: ("another-host", 1, None),  # elsewhere: cannot tell, left alone
            ids[3]: (me.host, os.getpid(), "another boot/1"),  # a reused process id
        }
        async with store.database.transaction() as db:
            for run_id, owner in owners.items():
                await db.execute("UPDATE run SET owner_host = ?, owner_pid = ?,"
                                 " owner_started = ? WHERE id = ?", (*owner, run_id))
    async with await Store.open(project_path, read_only=True) as store:  # reading: no change
        assert [r[0] for r in await store.database.all("SELECT status FROM run")] == ["running"] * 4
    async with await Store.open(project_path) as store:
        statuses = dict(tuple(r) for r in await store.database.all("SELECT id, status FROM run"))
        halts = await store.events.recent(10, kind="finish")
    assert statuses == {ids[0]: "halted", ids[1]: "running", ids[2]: "running",
                        ids[3]: "halted"}
    assert sorted(e.entity_id for e in halts) == [ids[0], ids[3]]
    assert all(e.payload["status"] == "halted" for e in halts)


# ---------------------------------------------------------------------- refusals
async def test_a_refused_write_is_not_hidden_by_the_rollback(store) -> None:
    """SQLite rolls back by itself when the disk fills; the ROLLBACK that follows must not
    replace the real error ('cannot rollback - no transaction is active')."""
    with pytest.raises(DiskFull, match="the disk is full; this change was not saved"):
        async with store.database.transaction() as db:
            await db.execute("INSERT INTO cases (ext_id, input, source, state, created_at,"
                             " updated_at) VALUES ('x', 'x', 'manual', 'active', 't', 't')")
            await db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
            raise sqlite3.OperationalError("database or disk is full")
    assert await store.cases.all() == []
    await store.cases.add(NewCase(input="the store still works"))
    assert len(await store.cases.all()) == 1


async def test_a_store_opened_read_only_refuses_every_write(project_path) -> None:
    async with await Store.open(project_path) as store:
        await store.cases.add(NewCase(input="kept"))
    before = project_path.read_bytes()
    async with await Store.open(project_path, read_only=True) as store:
        assert store.read_only
        with pytest.raises(ReadOnlyProject, match="open read-only; nothing was changed"):
            await store.cases.add(NewCase(input="refused"))
        with pytest.raises(ReadOnlyProject):
            await store.settings.update(task="refused")
        assert [c.input for c in await store.cases.all()] == ["kept"]
    assert project_path.read_bytes() == before
    with pytest.raises(ProjectFileError, match="no such project file"):
        await Store.open(project_path.with_name("missing.db"), read_only=True)
    assert not project_path.with_name("missing.db").exists()


# ---------------------------------------------------------------------- the event log
async def new_events(store: Store, since: int) -> list:
    return [e for e in reversed(await store.events.recent(1000)) if e.id > since]


async def last_event_id(store: Store) -> int:
    events = await store.events.recent(1)
    return events[0].id if events else 0


async def test_every_change_appends_one_event_with_utc_time(store) -> None:
    mark = await last_event_id(store)
    case = await store.cases.add(NewCase(input="first", tags=("x",), note="n"))
    await store.cases.edit(case.id, input="changed", tags=["x", "y"])
    await store.cases.set_state(case.id, CaseState.ARCHIVED)
    await store.settings.update(task="moderation", params={"temperature": 0})
    version = await store.versions.create("Be strict.", note="v2")
    output = await store.outputs.add(case_id=case.id, version_id=version.id, model="m",
                                    params={}, text="ok", status=OutputStatus.OK)
    await store.labels.write(output.id, Verdict.BAD, "too lax")
    events = await new_events(store, mark)
    assert [(e.kind, e.entity) for e in events] == [
        ("create", "case"),
        ("edit", "case"),
        ("state", "case"),
        ("edit", "project"),
        ("create", "prompt_version"),
        ("create", "output"),
        ("label", "output"),
    ]
    assert [e.entity_id for e in events] == [case.id, case.id, case.id, 1, version.id,
                                             output.id, output.id]
    assert all(is_utc_time(e.at) for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[0].payload["input"] == "first"


async def test_edits_keep_the_old_values(store) -> None:
    case = await store.cases.add(NewCase(input="old text", tags=("a",), note="old note"))
    mark = await last_event_id(store)
    await store.cases.edit(case.id, input="new text", tags=["b"], note="old note")
    await store.cases.edit(case.id, input="new text")  # no change: no event
    await store.cases.set_state(case.id, CaseState.CANDIDATE)
    await store.settings.update(task="new task")
    edit, state, project = await new_events(store, mark)
    assert edit.payload == {"before": {"input": "old text", "tags": ["a"]},
                            "after": {"input": "new text", "tags": ["b"]}}
    assert state.payload == {"before": "active", "after": "candidate"}
    assert project.payload == {"before": {"task": ""}, "after": {"task": "new task"}}
    assert (await store.cases.get(case.id)).note == "old note"


async def test_event_payload_is_stored_as_json(store, project_path) -> None:
    await store.cases.add(NewCase(input="caf\u00e9 \u2014 \U0001f600"))
    db = sqlite3.connect(project_path)  # a second reader beside the open store (WAL)
    try:
        rows = db.execute("SELECT at, kind, entity, payload FROM event ORDER BY id").fetchall()
    finally:
        db.close()
    for at, kind, entity, payload in rows:
        assert is_utc_time(at) and kind and entity
        assert isinstance(json.loads(payload), dict)
    assert json.loads(rows[-1][3])["input"] == "caf\u00e9 \u2014 \U0001f600"


# ---------------------------------------------------------------------- labels
async def test_label_history_keeps_every_label(store) -> None:
    case = await store.cases.add(NewCase(input="is this a slur?"))
    v1 = await store.versions.by_number(1)
    output = await store.outputs.add(case_id=case.id, version_id=v1.id, model="m", params={},
                                    text="yes", status=OutputStatus.OK)
    first, _ = await store.labels.write(output.id, Verdict.BAD, "not a slur")
    second, _ = await store.labels.write(output.id, Verdict.UNSURE, "depends on the game")
    third, _ = await store.labels.write(output.id, Verdict.GOOD)
    history = await store.labels.history(output.id)
    assert [(lb.id, lb.verdict, lb.rationale) for lb in history] == [
        (first.id, Verdict.BAD, "not a slur"),
        (second.id, Verdict.UNSURE, "depends on the game"),
        (third.id, Verdict.GOOD, ""),
    ]
    assert {lb.source for lb in history} == {LabelSource.HUMAN}
    assert (await store.labels.current(output.id)).id == third.id
    assert (await store.labels.current_by_output([output.id]))[output.id].id == third.id
    labels = [e for e in await store.events.recent(100, kind="label") if e.entity_id == output.id]
    newest = labels[0].payload
    assert newest["before"] == {"verdict": "unsure", "rationale": "depends on the game",
                                "source": "human"}
    assert newest["after"]["verdict"] == "good"
    assert labels[-1].payload["before"] is None


# ---------------------------------------------------------------------- versions
async def test_versions_are_numbered_in_order_with_parents(store) -> None:
    v1 = await store.versions.by_number(1)
    assert v1.parent_id is None
    case = await store.cases.add(NewCase(input="x"))
    v2 = await store.versions.create("Rule two.", note="add rule two",
                                    motivating=[(case.id, None)])
    v3 = await store.versions.create("Rule three.", "Input: {input}", note="template")
    assert [v.number for v in await store.versions.all()] == [1, 2, 3]
    assert (v2.parent_id, v3.parent_id) == (v1.id, v2.id)
    assert (v3.user_template, v3.note) == ("Input: {input}", "template")
    assert (await store.versions.latest()).id == v3.id
    assert await store.versions.motivating_cases(v2.id) == [(case.id, None)]
    assert is_utc_time(v2.created_at)
    with pytest.raises(UserError, match=r"\{input\}"):
        await store.versions.create("bad", "no placeholder here")
    with pytest.raises(NotFound):
        await store.versions.by_number(99)
    assert [v.number for v in await store.versions.all()] == [1, 2, 3]


# ---------------------------------------------------------------------- batches of cases
async def test_add_cases_is_all_or_nothing_on_duplicates(store) -> None:
    await store.cases.add(NewCase(input="here", ext_id="k1"))
    mark = await last_event_id(store)
    batch = [NewCase(input="a", ext_id="n1", line=1), NewCase(input="b", ext_id="n1", line=4)]
    with pytest.raises(ImportRejected) as info:
        await store.cases.add_many(batch, source_name="f.jsonl")
    assert str(info.value) == ("f.jsonl, line 4: duplicate id 'n1' (first on line 1); "
                               "nothing was imported")
    with pytest.raises(ImportRejected, match="line 2: id 'k1' is already in the project"):
        await store.cases.add_many([NewCase(input="a", line=1), NewCase(input="b", ext_id="k1",
                                                                   line=2)],
                              source_name="f.jsonl")
    with pytest.raises(ImportRejected, match="line 3: empty input"):
        await store.cases.add_many([NewCase(input=" \n", line=3)], source_name="f.jsonl")
    assert [c.ext_id for c in await store.cases.all()] == ["k1"]
    assert await new_events(store, mark) == []


async def test_add_cases_import_is_one_event_and_fresh_ids_avoid_collisions(store) -> None:
    await store.cases.add(NewCase(input="manual", ext_id="c2"))
    ids = await store.cases.add_many(
        [NewCase(input=f"row {i}", ext_id="c3" if i == 0 else None) for i in range(3)],
        source_name="rows.jsonl",
    )
    cases = [await store.cases.get(i) for i in ids]
    ext_ids = [c.ext_id for c in cases]
    assert ext_ids[0] == "c3" and len(set(ext_ids) | {"c2"}) == 4
    (event,) = await store.events.recent(10, kind="import")
    assert event.payload == {"file": "rows.jsonl", "count": 3, "first_id": ids[0],
                             "last_id": ids[-1]}


async def test_active_case_lines_and_ids_leave_other_states_out(store) -> None:
    cases = [await store.cases.add(NewCase(f"input {i}", ext_id=f"c{i}")) for i in range(4)]
    await store.cases.set_state(cases[1].id, CaseState.ARCHIVED)
    await store.cases.set_state(cases[2].id, CaseState.CANDIDATE)
    assert await store.cases.active_lines() == [
        (cases[0].id, "c0", "input 0"), (cases[3].id, "c3", "input 3")]
    assert await store.cases.active_ids() == [cases[0].id, cases[3].id]
    lines = await store.cases.lines()  # the same cases as the full lines' active ones
    assert [line[0] for line in lines if line[5] == "active"] == await store.cases.active_ids()


# ---------------------------------------------------------------------- the shape of the store
def test_the_store_is_a_thin_facade_with_one_attribute_per_concern(store) -> None:
    # Opening and closing only: every read and write goes through a concern.
    assert {n for n in dir(Store) if not n.startswith("_")} == {
        "open", "open_to_read", "create", "close"}
    concerns = {n for n in vars(store) if not n.startswith("_")} - {"path", "read_only"}
    assert concerns == {"database", "settings", "versions", "cases", "outputs", "runs",
                        "labels", "answers", "rules", "judgements", "events", "loop"}


def test_columns_give_the_select_list_and_the_positions_from_one_declaration() -> None:
    from coevo_tui.store.database import Columns

    columns = Columns("Pair", [("o.case_id", "case_id"), ("l.verdict", "verdict")])
    assert columns.select == "o.case_id, l.verdict"
    assert (columns.at.case_id, columns.at.verdict) == (0, 1)
    assert columns.Row._make((7, "good")).verdict == "good"
    laid_out = Columns.in_layout("Laid", {1: ("b", "second"), 0: ("a", "first")})
    assert laid_out.select == "a, b" and laid_out.at.second == 1
    with pytest.raises(ValueError, match="not 0..1"):
        Columns.in_layout("Gap", {0: ("a", "first"), 2: ("c", "third")})


async def test_bulk_reads_follow_the_domain_layouts(store) -> None:
    from coevo_tui.domain.case_query import LINE_EXT_ID, LINE_ID, LINE_STATE, LINE_TAGS
    from coevo_tui.domain.status import FACT_CASE, FACT_OUTPUT, FACT_SOURCE, FACT_VERDICT

    case = await store.cases.add(NewCase("input", tags=("t",), ext_id="x1"))
    (line,) = await store.cases.lines()
    assert (line[LINE_ID], line[LINE_EXT_ID], line[LINE_TAGS], line[LINE_STATE]) == (
        case.id, "x1", '["t"]', "active")
    v1 = await store.versions.latest()
    out = await store.outputs.add(case_id=case.id, version_id=v1.id, model="m", params={},
                                  text="ok", status=OutputStatus.OK)
    await store.labels.write(out.id, Verdict.GOOD)
    facts = (await store.answers.facts_per_case(v1.id))[case.id]
    assert (facts[FACT_CASE], facts[FACT_OUTPUT], facts[FACT_VERDICT], facts[FACT_SOURCE]) == (
        case.id, out.id, "good", "human")
