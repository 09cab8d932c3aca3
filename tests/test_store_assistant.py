"""The store's assistant pieces: migration 5 from a schema-4 file holding data, policy
rules, the candidate queue (accept, edit, reject), judgements (accepted as labels,
overridden by a direct label) and the agreement pairs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import (
    CaseSource,
    CaseState,
    LabelSource,
    NewRule,
    OutputStatus,
    Verdict,
)
from coevo_tui.store import SCHEMA_VERSION, NewCase, Store
from coevo_tui.store.schema import MIGRATIONS

T0 = "2024-01-02T03:04:05.000+00:00"


def make_schema_4_file(path: Path) -> None:
    """A project as schema 4 left it: cases that refer to each other (a similar case),
    outputs, labels, a judgement, a version's motivation and a run."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    for number in range(1, 5):
        db.execute("BEGIN")
        for statement in MIGRATIONS[number]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    db.execute("BEGIN")
    db.execute("INSERT INTO project (id, name, task, created_at) VALUES (1, 'old', 'moderate',"
               " ?)", (T0,))
    db.executemany("INSERT INTO prompt_version (id, number, instructions, parent_id, note,"
                   " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   [(1, 1, "1. No slurs.", None, "first", T0),
                    (2, 2, "1. No slurs.\n2. No threats.", 1, "second", T0)])
    db.executemany(
        "INSERT INTO cases (id, ext_id, input, tags, note, source, origin_case_id, state,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(1, "a", "you are trash at this", '["banter"]', "keep", "imported", None, "active",
          T0, T0),
         (2, "b", "u r trash at this lol", "[]", "", "similar", 1, "candidate", T0, T0),
         (5, "e", "gg", "[]", "", "manual", None, "archived", T0, T0)])
    db.execute("INSERT INTO run (id, version_id, model, total, started_at, status) VALUES"
               " (1, 2, 'm', 1, ?, 'done')", (T0,))
    db.execute("INSERT INTO output (id, case_id, version_id, model, text, status, run_id,"
               " created_at) VALUES (1, 1, 2, 'm', 'ALLOW', 'ok', 1, ?)", (T0,))
    db.execute("INSERT INTO label (id, output_id, verdict, rationale, source, created_at)"
               " VALUES (1, 1, 'bad', 'trash talk is allowed', 'human', ?)", (T0,))
    db.execute("INSERT INTO judgement (id, output_id, verdict, rationale, model, created_at)"
               " VALUES (1, 1, 'good', 'banter', 'j', ?)", (T0,))
    db.execute("INSERT INTO version_motivation VALUES (2, 1, 1)")
    db.execute("COMMIT")
    db.close()


async def test_a_schema_4_file_is_upgraded_keeping_its_cases_ids_and_references(
        tmp_path) -> None:
    path = tmp_path / "old.db"
    make_schema_4_file(path)
    async with await Store.open(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION == 6
        cases = await store.cases.all()
        assert [(c.id, c.ext_id, c.input, c.tags, c.note, c.source, c.origin_case_id,
                 c.state, c.created_at) for c in cases] == [
            (1, "a", "you are trash at this", ("banter",), "keep", CaseSource.IMPORTED, None,
             CaseState.ACTIVE, T0),
            (2, "b", "u r trash at this lol", (), "", CaseSource.SIMILAR, 1,
             CaseState.CANDIDATE, T0),
            (5, "e", "gg", (), "", CaseSource.MANUAL, None, CaseState.ARCHIVED, T0)]
        assert all((c.rule_number, c.reason, c.origin_version_id) == (None, "", None)
                   for c in cases)
        # Everything that pointed at a case still reaches it.
        (output,) = await store.outputs.of_case(1)
        assert (await store.labels.current(output.id)).rationale == "trash talk is allowed"
        assert await store.versions.motivating_cases(2) == [(1, 1)]
        assert (await store.judgements.newest_for_outputs([1]))[1].reason == "banter"
        # The new state and columns work on the old data; ids keep counting from the top.
        (rejected,) = await store.cases.reject([2])
        assert rejected.state == CaseState.REJECTED
        (new,) = await store.cases.add_candidates([NewCase(
            "a new one", source=CaseSource.GENERATED, rule_number=2, reason="why",
            origin_version_id=2)])
        assert (new.id, new.rule_number, new.reason, new.origin_version_id) == (6, 2, "why", 2)
        assert await store.rules.replace(2, [NewRule(1, "No slurs")])
        assert [e.payload["to"] for e in await store.events.recent(10, kind="migrate")] == [6, 5]
    db = sqlite3.connect(path)
    try:
        # The index and the references survived the rebuild; enforcement is back on.
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND"
                          " tbl_name = 'cases' AND name = 'cases_state'").fetchone()
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'output'").fetchone()[0]
        assert "REFERENCES cases(id)" in sql
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        db.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO output (case_id, version_id, model, text, status,"
                       " created_at) VALUES (99, 1, 'm', '', 'ok', 'now')")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("UPDATE cases SET state = 'lost' WHERE id = 1")
    finally:
        db.close()


async def test_a_migration_that_would_break_a_reference_changes_nothing(tmp_path,
                                                                          monkeypatch) -> None:
    import coevo_tui.store.database as database_module

    path = tmp_path / "old.db"
    make_schema_4_file(path)
    broken = {**MIGRATIONS, 5: [*MIGRATIONS[5], "DELETE FROM cases WHERE id = 1"]}
    monkeypatch.setattr(database_module, "MIGRATIONS", broken)
    with pytest.raises(UserError, match="broken references"):
        await Store.open(path)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM cases").fetchone()[0] == 3
    finally:
        db.close()


# ---------------------------------------------------------------------- rules
async def test_rules_are_replaced_per_version_in_one_event_and_edited(store) -> None:
    version = await store.versions.latest()
    assert await store.rules.for_version(version.id) == []
    rules = await store.rules.replace(version.id, [NewRule(2, " No threats ", "real ones"),
                                                   NewRule(1, "No slurs")])
    assert [(r.number, r.title, r.text) for r in rules] == [
        (1, "No slurs", ""), (2, "No threats", "real ones")]
    again = await store.rules.replace(version.id, [NewRule(1, "Banter is fine")])
    assert [r.title for r in again] == ["Banter is fine"]
    (event, first) = await store.events.recent(2, kind="rules")
    assert event.payload == {"before": [[1, "No slurs"], [2, "No threats"]],
                             "after": [[1, "Banter is fine"]]}
    edited = await store.rules.edit(again[0].id, title="Banter stays")
    assert edited.title == "Banter stays"
    (edit,) = await store.events.recent(1, kind="edit")
    assert edit.payload == {"before": {"title": "Banter is fine"},
                            "after": {"title": "Banter stays"}}
    with pytest.raises(UserError):
        await store.rules.replace(version.id, [NewRule(1, "a"), NewRule(1, "b")])
    with pytest.raises(NotFound):
        await store.rules.replace(999, [NewRule(1, "a")])
    assert [r.title for r in await store.rules.for_version(version.id)] == ["Banter stays"]


# ---------------------------------------------------------------------- candidates
async def _queue(store: Store, *texts: str) -> list:
    version = await store.versions.latest()
    return await store.cases.add_candidates([
        NewCase(text, source=CaseSource.GENERATED, rule_number=1, reason=f"why {text}",
                origin_version_id=version.id) for text in texts])


async def test_candidates_wait_then_are_accepted_edited_or_rejected(store) -> None:
    active = await store.cases.add(NewCase("already here"))
    one, two, three = await _queue(store, "one", "two", "three")
    assert [c.state for c in (one, two, three)] == [CaseState.CANDIDATE] * 3
    assert [c.id for c in await store.cases.candidates()] == [one.id, two.id, three.id]
    (created,) = [e for e in await store.events.recent(20, kind="create")
                  if e.entity_id == one.id]
    assert created.payload["reason"] == "why one" and created.payload["rule_number"] == 1

    accepted = await store.cases.accept([one.id, two.id], edited={two.id: "two, edited"})
    assert [(c.input, c.state) for c in accepted] == [
        ("one", CaseState.ACTIVE), ("two, edited", CaseState.ACTIVE)]
    (edit,) = await store.events.recent(1, kind="edit")
    assert edit.payload == {"before": {"input": "two"}, "after": {"input": "two, edited"}}
    (rejected,) = await store.cases.reject([three.id])
    assert rejected.state == CaseState.REJECTED
    assert await store.cases.candidates() == []
    assert await store.cases.rejected_inputs() == ["three"]
    assert set(await store.cases.active_ids()) == {active.id, one.id, two.id}

    # Reviewing anything but a candidate changes nothing, whole batch included.
    (four,) = await _queue(store, "four")
    with pytest.raises(UserError, match="not a candidate"):
        await store.cases.accept([four.id, active.id])
    with pytest.raises(UserError, match="not a candidate"):
        await store.cases.reject([three.id])
    with pytest.raises(UserError):
        await store.cases.accept([four.id], edited={four.id: "  "})
    assert [c.id for c in await store.cases.candidates()] == [four.id]
    with pytest.raises(ValueError):
        await store.cases.add_candidates([NewCase("by hand")])


# ---------------------------------------------------------------------- judgements
async def _answered(store: Store, text: str, answer: str = "ALLOW", model: str = "m"):
    version = await store.versions.latest()
    case = await store.cases.add(NewCase(text))
    output = await store.outputs.add(case_id=case.id, version_id=version.id, model=model,
                                     params={}, text=answer, status=OutputStatus.OK)
    return version, case, output


async def test_a_judgement_accepted_becomes_a_judge_label_linked_to_it(store) -> None:
    version, _, output = await _answered(store, "kys lol")
    assert [o.id for o in await store.judgements.unlabelled_outputs(version.id, "m")] == [
        output.id]
    judgement = await store.judgements.add(output.id, Verdict.BAD, "tells someone to die",
                                           "judge-model")
    assert await store.judgements.unlabelled_outputs(version.id, "m") == []
    assert [o.id for o in await store.judgements.unlabelled_outputs(
        version.id, "m", judge_model="other")] == [output.id]
    label = await store.judgements.accept(judgement.id)
    assert (label.verdict, label.source, label.rationale) == (
        Verdict.BAD, LabelSource.JUDGE, "tells someone to die")
    assert (await store.judgements.get(judgement.id)).label_id == label.id
    assert (await store.judgements.accept(judgement.id)).id == label.id  # no second label
    assert len(await store.labels.history(output.id)) == 1
    (accepted,) = await store.events.recent(1, kind="accept")
    assert (accepted.entity, accepted.payload["label_id"]) == ("judgement", label.id)
    assert await store.judgements.pairs(version.id, "m") == [(Verdict.BAD, Verdict.BAD)]


async def test_a_direct_label_overrides_the_judge_and_counts_as_the_users_verdict(
        store) -> None:
    version, _, output = await _answered(store, "gg ez")
    judgement = await store.judgements.add(output.id, Verdict.BAD, "insult", "j")
    await store.labels.write(output.id, Verdict.GOOD, "banter")
    assert await store.judgements.pairs(version.id) == [(Verdict.GOOD, Verdict.BAD)]
    with pytest.raises(UserError, match="already labelled good"):
        await store.judgements.accept(judgement.id)
    assert (await store.labels.current(output.id)).source == LabelSource.HUMAN
    assert await store.judgements.unlabelled_outputs(version.id) == []


async def test_only_the_newest_ok_answer_of_an_active_case_waits_for_the_judge(store) -> None:
    version, case, old = await _answered(store, "first")
    newer = await store.outputs.add(case_id=case.id, version_id=version.id, model="m",
                                    params={}, text="BLOCK", status=OutputStatus.OK)
    _, _, failed = await _answered(store, "second")
    await store.outputs.add(case_id=failed.case_id, version_id=version.id, model="m",
                            params={}, text="", status=OutputStatus.ERROR, error="500")
    _, archived, _ = await _answered(store, "third")
    await store.cases.set_state(archived.id, CaseState.ARCHIVED)
    _, _, other_model = await _answered(store, "fourth", model="n")
    waiting = await store.judgements.unlabelled_outputs(version.id, "m")
    assert [o.id for o in waiting] == [newer.id]
    assert old.id not in [o.id for o in waiting]
    assert {o.id for o in await store.judgements.unlabelled_outputs(version.id)} == {
        newer.id, other_model.id}


# ---------------------------------------------------------------------- coverage
async def test_policy_coverage_counts_each_rule_from_the_store(store) -> None:
    from coevo_tui.services.coverage import policy_coverage

    version = await store.versions.latest()
    await store.rules.replace(version.id, [NewRule(1, "No slurs"), NewRule(2, "No threats"),
                                           NewRule(3, "Banter is fine")])
    queued = await store.cases.add_candidates([
        NewCase(f"rule 1 case {i}", source=CaseSource.GENERATED, rule_number=1,
                origin_version_id=version.id) for i in range(3)] + [
        NewCase("rule 2 waiting", source=CaseSource.GENERATED, rule_number=2)])
    await store.cases.accept([c.id for c in queued[:3]])
    await store.cases.add(NewCase("by hand"))
    for case, verdict in ((queued[0], Verdict.GOOD), (queued[1], Verdict.BAD)):
        output = await store.outputs.add(case_id=case.id, version_id=version.id, model="m",
                                         params={}, text="x", status=OutputStatus.OK)
        await store.labels.write(output.id, verdict)
    rows = await policy_coverage(store, version, include_unassigned=True)
    assert [(r.number, r.title, r.active_cases, r.candidates_waiting, r.good, r.labelled,
             r.pass_rate) for r in rows] == [
        (1, "No slurs", 3, 0, 1, 2, 0.5), (2, "No threats", 0, 1, 0, 0, None),
        (3, "Banter is fine", 0, 0, 0, 0, None), (None, "(no rule)", 1, 0, 0, 0, None)]
    assert [r.uncovered for r in rows[:3]] == [False, True, True]
    other = await store.versions.create("new", note="v3")
    assert await policy_coverage(store, other) == []  # no rules extracted yet
