"""The guided loop's core (services/workflow.py, store/loop_facts.py): each step appears when
its fact holds and disappears once it is done, in the loop's order, with the keys that do
it; and the project preference that hides the loop line."""

from __future__ import annotations

import sqlite3

from coevo_tui.commands.demo import _write_demo
from coevo_tui.domain.model import CaseSource, NewRule, OutputStatus, Verdict
from coevo_tui.services.workflow import LOOP_LINE_PREFERENCE, LoopState, loop_state
from coevo_tui.store import SCHEMA_VERSION, NewCase, Store
from coevo_tui.store.schema import MIGRATIONS

MODEL = "test/model"
ORDER = ["instructions", "cases", "candidates", "run", "label", "rationale", "regressions",
         "rules", "revise"]


def pending(state: LoopState) -> list[str]:
    return [step.name for step in state.pending]


async def answer(store: Store, case_id: int, version_id: int, text: str = "ok",
                 *, model: str = MODEL, status: OutputStatus = OutputStatus.OK) -> int:
    output = await store.outputs.add(case_id=case_id, version_id=version_id, model=model,
                                     params={}, text=text, status=status)
    return output.id


async def project(tmp_path, instructions: str = "Allow banter; remove slurs.") -> Store:
    return await Store.open(tmp_path / "p.db", instructions=instructions)


async def test_a_fresh_demo_project_is_told_to_run_v1_first(tmp_path) -> None:
    path = await _write_demo(tmp_path / "demo.db")
    async with await Store.open(path) as store:
        state = await loop_state(store)
        active = (await store.cases.counts_by_state())["active"]
    assert [step.name for step in state.steps] == ORDER
    assert pending(state) == ["run"]
    step = state.next
    assert step is not None and step.name == "run" and step.stage == "run"
    assert step.count == active > 0
    assert step.hint == f"{active} cases have no answer under v1"
    assert [(k.binding, k.default) for k in step.keys] == [("app.run", "R")]
    # Steps with nothing to work on yet are done but marked as not applying.
    assert not state.step("label").applies and not state.step("regressions").applies


async def test_empty_instructions_and_no_case_come_first(tmp_path) -> None:
    async with await project(tmp_path, instructions="") as store:
        state = await loop_state(store)
        assert pending(state) == ["instructions", "cases"]
        assert state.next is not None and state.next.keys[0].binding == "app.prompt"
        assert [k.binding for k in state.step("cases").keys] == ["cases.add", "cases.generate"]
        await store.versions.create("Allow banter.", note="written")
        await store.cases.add(NewCase("gg ez"))
        state = await loop_state(store)
        assert "instructions" not in pending(state) and "cases" not in pending(state)
        assert state.next is not None and state.next.name == "run"
        assert state.version_number == 2


async def test_run_waits_for_an_ok_answer_of_the_model(tmp_path) -> None:
    async with await project(tmp_path) as store:
        v1 = await store.versions.latest()
        ids = [c.id for c in [await store.cases.add(NewCase(t)) for t in ("a", "b", "c")]]
        assert (await loop_state(store, MODEL)).step("run").count == 3
        await answer(store, ids[0], v1.id)
        await answer(store, ids[1], v1.id, status=OutputStatus.ERROR)  # no answer: re-run
        await answer(store, ids[2], v1.id, model="other/model")  # another model's
        state = await loop_state(store, MODEL)
        assert state.step("run").count == 2
        assert state.step("run").hint == "2 cases have no answer under v1"
        # Counting every model, the other model's answer counts.
        assert (await loop_state(store)).step("run").count == 1
        await answer(store, ids[1], v1.id)
        await answer(store, ids[2], v1.id)
        assert "run" not in pending(await loop_state(store, MODEL))


async def test_label_then_rationale_then_revise(tmp_path) -> None:
    async with await project(tmp_path) as store:
        v1 = await store.versions.latest()
        cases = [await store.cases.add(NewCase(t)) for t in ("gg ez", "you slur", "hmm")]
        outputs = [await answer(store, c.id, v1.id, f"answer {c.id}") for c in cases]
        state = await loop_state(store, MODEL)
        assert pending(state) == ["label"]
        assert state.next is not None and state.next.count == 3
        assert state.next.hint == "3 answers wait for a label"
        assert [(k.binding, k.in_line) for k in state.next.keys] == [
            ("cases.label", True), ("label.next_unlabelled", False)]

        await store.labels.write(outputs[0], Verdict.GOOD)
        await store.labels.write(outputs[1], Verdict.BAD)
        await store.labels.write(outputs[2], Verdict.UNSURE)
        state = await loop_state(store, MODEL)
        assert pending(state) == ["rationale"]
        assert state.next is not None and state.next.count == 2
        assert state.next.hint == "2 bad/unsure labels lack a rationale"
        assert [k.binding for k in state.next.keys] == ["cases.label", "label.rationale"]

        await store.labels.write(outputs[1], Verdict.BAD, "slurs are never allowed")
        state = await loop_state(store, MODEL)
        assert pending(state) == ["rationale", "revise"]
        assert state.step("rationale").count == 1 and state.step("revise").count == 1
        await store.labels.write(outputs[2], Verdict.UNSURE, "   ")  # blank: no rationale
        assert (await loop_state(store, MODEL)).step("rationale").count == 1
        await store.labels.write(outputs[2], Verdict.UNSURE, "depends on the game")
        state = await loop_state(store, MODEL)
        assert pending(state) == ["revise"]
        revise = state.next
        assert revise is not None and revise.stage == "revise" and revise.count == 2
        assert revise.hint == "2 failures have a rationale"
        assert [(k.binding, k.default) for k in revise.keys] == [
            ("app.prompt", "p"), ("prompt.draft_revision", "ctrl+d")]

        # Saving the revision starts the loop again: v2 is saved but not run.
        await store.versions.create("Allow banter; no slurs, ever.", note="v2")
        state = await loop_state(store, MODEL)
        assert pending(state) == ["run"]
        assert state.next is not None and state.next.stage == "compare"
        assert state.next.hint == "v2 is not run yet: 3 cases to answer"


async def test_regressions_show_until_fixed(tmp_path) -> None:
    async with await project(tmp_path) as store:
        v1 = await store.versions.latest()
        case = await store.cases.add(NewCase("gg ez"))
        other = await store.cases.add(NewCase("hello"))
        await store.labels.write(await answer(store, case.id, v1.id, "allowed"), Verdict.GOOD)
        await store.labels.write(await answer(store, other.id, v1.id, "fine"), Verdict.BAD,
                                 "wrong")
        v2 = await store.versions.create("Remove all trash talk.", note="stricter")
        regressed = await answer(store, case.id, v2.id, "removed")
        await store.labels.write(regressed, Verdict.BAD, "banter is allowed")
        await store.labels.write(await answer(store, other.id, v2.id, "better"), Verdict.GOOD)
        state = await loop_state(store, MODEL)
        assert pending(state) == ["regressions", "revise"]
        step = state.next
        assert step is not None and step.name == "regressions" and step.count == 1
        assert step.hint == "1 answer regressed from v1 to v2"
        assert [(k.binding, k.default) for k in step.keys] == [("app.compare", "c")]
        await store.labels.write(regressed, Verdict.GOOD)
        assert "regressions" not in pending(await loop_state(store, MODEL))


async def test_candidates_and_rules_without_cases(tmp_path) -> None:
    async with await project(tmp_path) as store:
        v1 = await store.versions.latest()
        await store.rules.replace(v1.id, [NewRule(1, "Banter is fine"),
                                          NewRule(2, "No slurs"), NewRule(3, "No doxxing")])
        probing = await store.cases.add(NewCase("gg ez", rule_number=1))
        await store.labels.write(await answer(store, probing.id, v1.id), Verdict.GOOD)
        state = await loop_state(store, MODEL)
        assert pending(state) == ["rules"]
        rules = state.next
        assert rules is not None and rules.count == 2
        assert rules.hint == "2 rules have no case"
        assert [(k.binding, k.does) for k in rules.keys] == [
            ("cases.filter", "rule:2"), ("cases.generate", "generates some")]

        queued = await store.cases.add_candidates([
            NewCase("your address is 12 Elm St", source=CaseSource.GENERATED, rule_number=3,
                    origin_version_id=v1.id)])
        state = await loop_state(store, MODEL)
        assert pending(state) == ["candidates", "rules"]  # a candidate is no case yet
        assert state.next is not None and state.next.hint == "1 candidate waits for review"
        assert state.step("rules").count == 2

        await store.cases.accept([queued[0].id])
        state = await loop_state(store, MODEL)
        assert pending(state) == ["run", "rules"]  # the accepted case waits for its answer
        assert state.step("rules").count == 1
        assert state.step("rules").hint == "rule 2 (No slurs) has no case"


async def test_the_next_step_is_the_first_pending_one_in_loop_order(tmp_path) -> None:
    async with await project(tmp_path) as store:
        v1 = await store.versions.latest()
        await store.rules.replace(v1.id, [NewRule(1, "Banter is fine")])
        labelled, unlabelled, unrun = [await store.cases.add(NewCase(t)) for t in "abc"]
        await store.labels.write(await answer(store, labelled.id, v1.id, "x"), Verdict.BAD)
        await answer(store, unlabelled.id, v1.id, "y")
        await store.cases.add_candidates([NewCase("d", source=CaseSource.GENERATED)])
        state = await loop_state(store, MODEL)
        assert pending(state) == ["candidates", "run", "label", "rationale", "rules"]
        assert state.next is not None and state.next.name == "candidates"
        assert [step.name for step in state.steps] == ORDER


async def test_the_loop_line_preference_is_kept_in_the_project(tmp_path) -> None:
    path = tmp_path / "p.db"
    async with await Store.open(path) as store:
        assert await store.settings.preferences() == {}
        await store.settings.set_preference(LOOP_LINE_PREFERENCE, False)
    async with await Store.open(path) as store:
        assert await store.settings.preferences() == {LOOP_LINE_PREFERENCE: False}
        edits = [e.payload for e in await store.events.recent(10, kind="edit")]
        assert {"before": {"preferences.loop_line": None},
                "after": {"preferences.loop_line": False}} in edits
        await store.settings.set_preference(LOOP_LINE_PREFERENCE, True)
        assert await store.settings.preferences() == {LOOP_LINE_PREFERENCE: True}


async def test_a_schema_5_file_gains_preferences(tmp_path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for number in range(1, 6):
        for statement in MIGRATIONS[number]:
            db.execute(statement)
    db.execute("PRAGMA user_version = 5")
    db.execute("INSERT INTO project (id, name, created_at) VALUES (1, 'old', '2024-01-01')")
    db.execute("INSERT INTO prompt_version (id, number, instructions, note, created_at)"
               " VALUES (1, 1, 'Be kind.', 'first', '2024-01-01')")
    db.execute("COMMIT")
    db.close()
    async with await Store.open(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        assert await store.settings.preferences() == {}
        assert (await store.settings.get()).name == "old"
        await store.settings.set_preference(LOOP_LINE_PREFERENCE, False)
        assert await store.settings.preferences() == {LOOP_LINE_PREFERENCE: False}
