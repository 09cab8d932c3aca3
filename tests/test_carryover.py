"""Carry-over: the pure decisions, then the store applying them in one transaction."""

from __future__ import annotations

import itertools

import pytest

from coevo_tui.domain.carryover import (
    describe_label,
    inherited_label,
    is_carried,
    label_to_carry,
    propagation_targets,
    root_label_id,
    spread_targets,
)
from coevo_tui.domain.model import Label, LabelSource, Output, OutputStatus, Verdict
from coevo_tui.domain.status import Answer
from coevo_tui.store import NewCase, Store

_ids = itertools.count(100)


def output(text: str, *, case_id: int = 1, status: OutputStatus = OutputStatus.OK) -> Output:
    return Output(id=next(_ids), case_id=case_id, version_id=1, model="m", params={},
                  text=text, status=status)


def label(out: Output, verdict: Verdict, source: LabelSource = LabelSource.HUMAN,
          carried_from: int | None = None, rationale: str = "") -> Label:
    return Label(id=next(_ids), output_id=out.id, verdict=verdict, rationale=rationale,
                 source=source, carried_from=carried_from)


# ------------------------------------------------------------------ pure: label_to_carry
def test_identical_text_after_whitespace_normalization_carries() -> None:
    old = output("No refunds\n  are promised.")
    old_label = label(old, Verdict.GOOD)
    new = output(" No refunds are promised. ")
    assert label_to_carry(new, None, [Answer(old, old_label)]) == old_label


def test_different_text_or_other_case_or_unlabelled_does_not_carry() -> None:
    new = output("a")
    other_text = output("b")
    other_case = output("a", case_id=2)
    unlabelled = output("a")
    answers = [Answer(other_text, label(other_text, Verdict.GOOD)),
               Answer(other_case, label(other_case, Verdict.GOOD)),
               Answer(unlabelled, None)]
    assert label_to_carry(new, None, answers) is None


def test_never_onto_a_labelled_error_or_cancelled_output() -> None:
    old = output("a")
    answers = [Answer(old, label(old, Verdict.BAD))]
    new = output("a")
    assert label_to_carry(new, label(new, Verdict.GOOD), answers) is None
    assert label_to_carry(output("a", status=OutputStatus.ERROR), None, answers) is None
    assert label_to_carry(output("a", status=OutputStatus.CANCELLED), None, answers) is None


def test_never_from_an_error_output() -> None:
    # An error output's text is empty; an empty ok answer must not inherit its label.
    err = output("", status=OutputStatus.ERROR)
    assert label_to_carry(output(""), None, [Answer(err, label(err, Verdict.BAD))]) is None


def test_most_recent_human_label_wins_over_older_human_and_newer_carried() -> None:
    a, b, c = output("x"), output("x"), output("x")
    human_old = label(a, Verdict.GOOD)
    human_new = label(b, Verdict.BAD)
    carried_newest = label(c, Verdict.GOOD, LabelSource.CARRIED, carried_from=human_old.id)
    answers = [Answer(a, human_old), Answer(c, carried_newest), Answer(b, human_new)]
    assert label_to_carry(output("x"), None, answers) == human_new


def test_judge_confirmed_counts_as_a_person_given_label() -> None:
    a, b = output("x"), output("x")
    human = label(a, Verdict.GOOD)
    judge = label(b, Verdict.BAD, LabelSource.JUDGE)
    assert label_to_carry(output("x"), None, [Answer(a, human), Answer(b, judge)]) == judge


def test_carrying_from_a_carried_label_points_at_its_root_so_chains_cannot_loop() -> None:
    a, b = output("x"), output("x")
    root = label(a, Verdict.GOOD)
    carried = label(b, Verdict.GOOD, LabelSource.CARRIED, carried_from=root.id)
    # Only the carried label is current (say the root's output is no longer in the list).
    chosen = label_to_carry(output("x"), None, [Answer(b, carried)])
    assert chosen == carried
    assert root_label_id(chosen) == root.id
    assert root_label_id(root) == root.id


# ------------------------------------------------------------------ pure: propagation
def test_propagation_targets_unlabelled_and_older_carried_identical_outputs_only() -> None:
    src = output("same answer")
    unlabelled = output("same  answer")
    older_root = label(output("same answer"), Verdict.GOOD)
    stale_carried_out = output("same answer")
    stale = label(stale_carried_out, Verdict.GOOD, LabelSource.CARRIED, older_root.id)
    human_out = output("same answer")
    human = label(human_out, Verdict.GOOD)
    different = output("another answer")
    other_case = output("same answer", case_id=2)
    new_label = label(src, Verdict.BAD)
    answers = [Answer(src, new_label), Answer(unlabelled, None),
               Answer(stale_carried_out, stale), Answer(human_out, human),
               Answer(different, None), Answer(other_case, None)]
    targets = propagation_targets(new_label, src, answers)
    assert [t.id for t in targets] == [unlabelled.id, stale_carried_out.id]


def test_propagation_skips_outputs_already_carrying_this_or_a_newer_root() -> None:
    src = output("x")
    lbl = label(src, Verdict.GOOD)
    o1, o2 = output("x"), output("x")
    same_root = label(o1, Verdict.GOOD, LabelSource.CARRIED, lbl.id)
    newer_root = label(o2, Verdict.BAD, LabelSource.CARRIED, lbl.id + 1000)
    assert propagation_targets(lbl, src, [Answer(o1, same_root), Answer(o2, newer_root)]) == []


def test_a_carried_label_does_not_propagate() -> None:
    src, other = output("x"), output("x")
    carried = label(src, Verdict.GOOD, LabelSource.CARRIED, carried_from=1)
    assert propagation_targets(carried, src, [Answer(other, None)]) == []


def test_inherited_label_reads_the_outputs_own_label_from_the_answers() -> None:
    old, new = output("same"), output("same")
    old_label = label(old, Verdict.GOOD)
    assert inherited_label(new, [Answer(old, old_label), Answer(new, None)]) == old_label
    assert inherited_label(new, [Answer(old, old_label)]) == old_label  # new not read yet
    # Already labelled (its own label among the answers): nothing to inherit.
    mine = label(new, Verdict.BAD)
    assert inherited_label(new, [Answer(old, old_label), Answer(new, mine)]) is None


def test_spread_targets_carry_the_current_label_only() -> None:
    src, same, other = output("same"), output("same"), output("other")
    old = label(src, Verdict.GOOD)
    current = label(src, Verdict.BAD)
    answers = [Answer(src, current), Answer(same, None), Answer(other, None)]
    assert spread_targets(current, answers) == [Answer(same, None)]
    # Superseded since: the newer label is the one to spread, not this one.
    assert spread_targets(old, answers) == []
    # Its output not among the answers (another case's), or not labelled at all.
    assert spread_targets(current, [Answer(same, None)]) == []
    assert spread_targets(current, [Answer(src, None), Answer(same, None)]) == []
    # The label each target holds now comes along (the event records it as "before").
    stale = label(same, Verdict.GOOD, LabelSource.CARRIED, carried_from=old.id)
    assert spread_targets(current, [Answer(src, current), Answer(same, stale)]) == [
        Answer(same, stale)]


def test_describe_label_tells_carried_and_judge_apart_without_colour() -> None:
    o = output("x")
    assert describe_label(None) == "unlabelled"
    assert describe_label(label(o, Verdict.GOOD)) == "good"
    assert describe_label(label(o, Verdict.BAD, LabelSource.CARRIED, 1)) == "bad (carried)"
    assert describe_label(label(o, Verdict.UNSURE, LabelSource.JUDGE)) == "unsure (judge)"
    assert is_carried(label(o, Verdict.GOOD, LabelSource.CARRIED, 1))
    assert not is_carried(label(o, Verdict.GOOD)) and not is_carried(None)


# ------------------------------------------------------------------ store
async def _setup(store: Store) -> tuple[int, int, int, int]:
    case = await store.cases.add(NewCase("Can I get a refund?", ext_id="c1"))
    other = await store.cases.add(NewCase("Hello", ext_id="c2"))
    v1 = (await store.versions.latest()).id
    v2 = (await store.versions.create("Be kind.", note="second")).id
    return case.id, other.id, v1, v2


async def _add(store: Store, case_id: int, version_id: int, text: str, *,
               model: str = "m", status: OutputStatus = OutputStatus.OK) -> Output:
    return await store.outputs.add(case_id=case_id, version_id=version_id, model=model,
                                  params={}, text=text, status=status)


async def test_apply_carry_over_copies_verdict_and_rationale_marked_carried(
        store: Store) -> None:
    case, _, v1, v2 = await _setup(store)
    first = await _add(store, case, v1, "We cannot promise a refund.")
    human, _ = await store.labels.write(first.id, Verdict.BAD, "should point to the form")
    second = await _add(store, case, v2, "We cannot  promise a refund.\n", model="other")
    carried = await store.labels.inherit(second.id)
    assert carried is not None
    assert (carried.verdict, carried.rationale) == (Verdict.BAD, "should point to the form")
    assert carried.source == LabelSource.CARRIED and carried.carried_from == human.id
    assert await store.labels.current(second.id) == carried
    event = (await store.events.recent(1, kind="label"))[0]
    assert event.entity_id == second.id
    assert event.payload["after"]["source"] == "carried"
    assert event.payload["after"]["carried_from"] == human.id


async def test_apply_carry_over_leaves_different_unrelated_and_labelled_outputs(
        store: Store) -> None:
    case, other, v1, v2 = await _setup(store)
    first = await _add(store, case, v1, "answer")
    await store.labels.write(first.id, Verdict.GOOD)
    assert await store.labels.inherit((await _add(store, case, v2, "another")).id) is None
    assert await store.labels.inherit((await _add(store, other, v2, "answer")).id) is None
    labelled = await _add(store, case, v2, "answer")
    mine, _ = await store.labels.write(labelled.id, Verdict.BAD)
    assert await store.labels.inherit(labelled.id) is None
    assert await store.labels.history(labelled.id) == [mine]
    error = await _add(store, case, v2, "", status=OutputStatus.ERROR)
    assert await store.labels.inherit(error.id) is None
    assert await store.labels.current(error.id) is None


async def test_labelling_carries_to_unlabelled_identical_outputs_of_the_case(
        store: Store) -> None:
    case, other, v1, v2 = await _setup(store)
    a = await _add(store, case, v1, "Refunds: see the form.")
    b = await _add(store, case, v2, "Refunds:  see the form.")
    c = await _add(store, case, v2, "Something else")
    d = await _add(store, other, v2, "Refunds: see the form.")
    label, carried = await store.labels.write(b.id, Verdict.GOOD, "points to the form")
    assert label.source == LabelSource.HUMAN
    assert [x.output_id for x in carried] == [a.id]
    assert carried[0].carried_from == label.id and carried[0].source == LabelSource.CARRIED
    assert (await store.labels.current(a.id)).verdict == Verdict.GOOD
    assert await store.labels.current(c.id) is None
    assert await store.labels.current(d.id) is None


async def test_relabelling_updates_carried_copies_but_never_human_labels(store: Store) -> None:
    case, _, v1, v2 = await _setup(store)
    a = await _add(store, case, v1, "same")
    b = await _add(store, case, v2, "same")
    c = await _add(store, case, v2, "same", model="other")
    first, carried = await store.labels.write(a.id, Verdict.GOOD)
    assert {x.output_id for x in carried} == {b.id, c.id}
    mine, carried = await store.labels.write(c.id, Verdict.UNSURE, "not sure")
    # The most recent person's label wins: b (carried) follows c, a (human) does not.
    assert [x.output_id for x in carried] == [b.id]
    assert (await store.labels.current(a.id)) == first
    # c is now a human label; relabelling a must change b (carried) but not c.
    changed, carried = await store.labels.write(a.id, Verdict.BAD, "wrong")
    assert [x.output_id for x in carried] == [b.id]
    assert (await store.labels.current(b.id)).verdict == Verdict.BAD
    assert (await store.labels.current(b.id)).carried_from == changed.id
    assert await store.labels.current(c.id) == mine
    # The old carried labels stay in b's history.
    assert [x.verdict for x in await store.labels.history(b.id)] == [
        Verdict.GOOD, Verdict.UNSURE, Verdict.BAD]


async def test_spread_after_the_identical_output_came_and_for_superseded_labels(
        store: Store) -> None:
    case, _, v1, v2 = await _setup(store)
    a = await _add(store, case, v1, "same")
    # Labelled before b exists, so writing carries nothing: b comes unlabelled.
    old, _ = await store.labels.write(a.id, Verdict.GOOD)
    await store.labels.write(a.id, Verdict.BAD)
    b = await _add(store, case, v2, "same")
    assert await store.labels.spread(old.id) == []  # superseded: nothing carried
    assert await store.labels.current(b.id) is None
    current = await store.labels.current(a.id)
    carried = await store.labels.spread(current.id)
    assert [(x.output_id, x.verdict) for x in carried] == [(b.id, Verdict.BAD)]
    assert await store.labels.spread(carried[0].id) == []  # carried labels do not spread


async def test_label_output_rejects_carried_source_and_unknown_output(store: Store) -> None:
    from coevo_tui.domain.errors import NotFound

    with pytest.raises(ValueError):
        await store.labels.write(1, Verdict.GOOD, source=LabelSource.CARRIED)
    before = len(await store.events.recent(1000))
    with pytest.raises(NotFound):
        await store.labels.write(12345, Verdict.GOOD)
    assert len(await store.events.recent(1000)) == before
