"""Comparison statuses, navigation order, pass rates and summaries (pure, no store)."""

from __future__ import annotations

import itertools

import pytest

from coevo_tui.domain.model import (
    Label,
    LabelSource,
    Output,
    OutputStatus,
    PromptVersion,
    Verdict,
)
from coevo_tui.domain.status import (
    Answer,
    ComparisonStatus,
    answer_facts,
    compare,
    compare_all,
    compare_all_facts,
    compare_answers,
    compare_facts,
    navigation_order,
    pass_rate,
    summarize,
    summarize_facts,
    verdict_changes,
    with_label_facts,
)

S = ComparisonStatus
_ids = itertools.count(1)

# Every (baseline, revision) combination, written out. A side is
#   none | cancelled | error | error:VERDICT | ok | ok:VERDICT
# ("ok" alone = an unlabelled answer). `text` is same/diff when both sides are ok answers
# (whitespace-normalized texts equal or not); "-" rows must hold for both.
TABLE = """
none          none        -     missing
cancelled     none        -     missing
error         none        -     missing
error:bad     none        -     missing
ok            none        -     missing
ok:good       none        -     missing
ok:bad        none        -     missing
ok:unsure     none        -     missing
none          cancelled   -     missing
cancelled     cancelled   -     missing
error         cancelled   -     missing
error:bad     cancelled   -     missing
ok            cancelled   -     missing
ok:good       cancelled   -     missing
ok:bad        cancelled   -     missing
ok:unsure     cancelled   -     missing
none          error       -     error
cancelled     error       -     error
error         error       -     error
error:bad     error       -     error
ok            error       -     error
ok:good       error       -     error
ok:bad        error       -     error
ok:unsure     error       -     error
none          error:bad   -     error
cancelled     error:bad   -     error
error         error:bad   -     error
error:bad     error:bad   -     error
ok            error:bad   -     error
ok:good       error:bad   -     error
ok:bad        error:bad   -     error
ok:unsure     error:bad   -     error
none          ok          -     new
none          ok:good     -     new
none          ok:bad      -     new
none          ok:unsure   -     new
cancelled     ok          -     new
cancelled     ok:good     -     new
cancelled     ok:bad      -     new
cancelled     ok:unsure   -     new
error         ok          -     changed_unlabelled
error         ok:good     -     no_baseline_verdict
error         ok:bad      -     no_baseline_verdict
error         ok:unsure   -     no_baseline_verdict
error:bad     ok          -     changed_unlabelled
error:bad     ok:good     -     fixed
error:bad     ok:bad      -     still_bad
error:bad     ok:unsure   -     bad_to_unsure
ok            ok          same  unchanged
ok            ok          diff  changed_unlabelled
ok            ok:good     same  unchanged
ok            ok:good     diff  no_baseline_verdict
ok            ok:bad      same  unchanged
ok            ok:bad      diff  no_baseline_verdict
ok            ok:unsure   same  unchanged
ok            ok:unsure   diff  no_baseline_verdict
ok:good       ok          same  unchanged
ok:good       ok          diff  changed_unlabelled
ok:bad        ok          same  unchanged
ok:bad        ok          diff  changed_unlabelled
ok:unsure     ok          same  unchanged
ok:unsure     ok          diff  changed_unlabelled
ok:good       ok:good     same  still_good
ok:good       ok:good     diff  still_good
ok:good       ok:bad      same  regressed
ok:good       ok:bad      diff  regressed
ok:good       ok:unsure   same  good_to_unsure
ok:good       ok:unsure   diff  good_to_unsure
ok:bad        ok:good     same  fixed
ok:bad        ok:good     diff  fixed
ok:bad        ok:bad      same  still_bad
ok:bad        ok:bad      diff  still_bad
ok:bad        ok:unsure   same  bad_to_unsure
ok:bad        ok:unsure   diff  bad_to_unsure
ok:unsure     ok:good     same  unsure_to_good
ok:unsure     ok:good     diff  unsure_to_good
ok:unsure     ok:bad      same  unsure_to_bad
ok:unsure     ok:bad      diff  unsure_to_bad
ok:unsure     ok:unsure   same  still_unsure
ok:unsure     ok:unsure   diff  still_unsure
"""
SIDES = ("none", "cancelled", "error", "error:bad", "ok", "ok:good", "ok:bad", "ok:unsure")


def _rows() -> list[tuple[str, str, str, ComparisonStatus]]:
    rows = []
    for line in TABLE.strip().splitlines():
        base, rev, text, expected = line.split()
        rows.append((base, rev, text, ComparisonStatus(expected)))
    return rows


def output(status: OutputStatus = OutputStatus.OK, text: str = "answer", *, case_id: int = 1,
           version_id: int = 1, cost: float | None = None,
           latency_ms: float | None = None) -> Output:
    return Output(id=next(_ids), case_id=case_id, version_id=version_id, model="m", params={},
                  text=text, status=status, cost=cost, latency_ms=latency_ms)


def label(out: Output, verdict: Verdict, source: LabelSource = LabelSource.HUMAN) -> Label:
    return Label(id=next(_ids), output_id=out.id, verdict=verdict, rationale="", source=source)


def side(spec: str, text: str) -> tuple[Output | None, Verdict | None]:
    kind, _, verdict = spec.partition(":")
    if kind == "none":
        return None, None
    status = OutputStatus(kind)
    # An error output has no answer text in the store; give it one here anyway, to show
    # that equal text never makes an error "unchanged".
    return output(status, text), Verdict(verdict) if verdict else None


def test_table_covers_every_combination() -> None:
    seen = {(b, c) for b, c, _, _ in _rows()}
    assert seen == set(itertools.product(SIDES, SIDES))
    for b, c, text, _ in _rows():
        both_ok = b.startswith("ok") and c.startswith("ok")
        assert (text in ("same", "diff")) == both_ok, (b, c, text)


@pytest.mark.parametrize(("base", "rev", "text", "expected"), _rows(),
                         ids=[f"{b}->{c}/{t}" for b, c, t, _ in _rows()])
def test_every_transition(base: str, rev: str, text: str, expected: ComparisonStatus) -> None:
    texts = {"same": [("the answer", "  the\nanswer ")], "diff": [("the answer", "another")],
             "-": [("the answer", "the answer"), ("the answer", "another")]}[text]
    for base_text, rev_text in texts:
        b_out, b_verdict = side(base, base_text)
        c_out, c_verdict = side(rev, rev_text)
        assert compare(b_out, b_verdict, c_out, c_verdict) == expected


@pytest.mark.parametrize(("base", "rev", "text", "expected"), _rows(),
                         ids=[f"{b}->{c}/{t}" for b, c, t, _ in _rows()])
def test_every_transition_on_answer_facts(base: str, rev: str, text: str,
                                          expected: ComparisonStatus) -> None:
    # The screens compare plain tuples read from the store: the same table must hold.
    texts = {"same": [("the answer", "  the\nanswer ")], "diff": [("the answer", "another")],
             "-": [("the answer", "the answer"), ("the answer", "another")]}[text]
    for base_text, rev_text in texts:
        facts = []
        for spec, side_text in ((base, base_text), (rev, rev_text)):
            out, verdict = side(spec, side_text)
            facts.append(None if out is None else answer_facts(
                Answer(out, None if verdict is None else label(out, verdict))))
        assert compare_facts(facts[0], facts[1]) == expected
        assert compare_all_facts([1, 2], {1: facts[0]} if facts[0] else {},
                                 {1: facts[1]} if facts[1] else {}) == {
            1: expected, 2: S.MISSING}


def test_answer_facts_take_a_new_label() -> None:
    out = output(text="x", cost=0.5, latency_ms=10)
    facts = answer_facts(Answer(out, None))
    assert facts == (out.case_id, out.id, "ok", "x", None, None, 0.5, 10)
    relabelled = with_label_facts(facts, label(out, Verdict.BAD, LabelSource.CARRIED))
    assert relabelled == (out.case_id, out.id, "ok", "x", "bad", "carried", 0.5, 10)
    base = answer_facts(Answer(output(text="y"), None))
    assert compare_facts(with_label_facts(base, label(out, Verdict.GOOD)),
                         relabelled) == S.REGRESSED


def test_whitespace_only_difference_is_unchanged_but_a_word_is_not() -> None:
    a = output(text="Refunds are\n\nnot promised.")
    assert compare(a, None, output(text="  Refunds are not   promised. "), None) == S.UNCHANGED
    assert compare(a, None, output(text="Refunds are promised."), None) == S.CHANGED_UNLABELLED


def test_compare_answers_reads_verdicts_from_labels() -> None:
    b, c = output(text="x"), output(text="y")
    base = Answer(b, label(b, Verdict.GOOD))
    rev = Answer(c, label(c, Verdict.BAD, LabelSource.CARRIED))
    assert compare_answers(base, rev) == S.REGRESSED
    assert compare_answers(None, rev) == S.NEW
    assert compare_answers(base, None) == S.MISSING


def test_every_status_has_words_and_a_distinct_rank() -> None:
    assert len({s.text for s in S}) == len(S)
    assert sorted(s.rank for s in S) == list(range(len(S)))


def test_navigation_regressions_then_changed_unlabelled_then_fixed_then_the_rest() -> None:
    statuses = {1: S.STILL_GOOD, 2: S.FIXED, 3: S.CHANGED_UNLABELLED, 4: S.REGRESSED,
                5: S.NEW, 6: S.REGRESSED, 7: S.CHANGED_UNLABELLED, 8: S.UNCHANGED}
    order = navigation_order(statuses)
    assert order[:5] == [4, 6, 3, 7, 2]  # ties keep their original order
    assert sorted(order[5:]) == [1, 5, 8]
    rest = [s for s in S if s not in (S.REGRESSED, S.CHANGED_UNLABELLED, S.FIXED)]
    assert all(s.rank > S.FIXED.rank for s in rest)


def test_pass_rate_is_good_over_labelled_with_unsure_in_the_denominator() -> None:
    assert pass_rate([Verdict.GOOD, Verdict.GOOD, Verdict.BAD, Verdict.UNSURE, None]) == 0.5
    assert pass_rate([Verdict.GOOD]) == 1.0
    assert pass_rate([None, None]) is None
    assert pass_rate([]) is None


def test_summary_counts_every_case_once_and_sums_cost_and_latency() -> None:
    outs = {
        1: output(case_id=1, cost=0.5, latency_ms=100),
        2: output(case_id=2, cost=0.25, latency_ms=300),
        3: output(case_id=3, latency_ms=200),
        4: output(case_id=4),
        5: output(OutputStatus.ERROR, "", case_id=5, cost=0.125, latency_ms=9999),
        6: output(OutputStatus.CANCELLED, "half", case_id=6, cost=1.0),
    }
    answers = {
        1: Answer(outs[1], label(outs[1], Verdict.GOOD)),
        2: Answer(outs[2], label(outs[2], Verdict.BAD, LabelSource.CARRIED)),
        3: Answer(outs[3], label(outs[3], Verdict.UNSURE)),
        4: Answer(outs[4], None),
        5: Answer(outs[5], None),
        6: Answer(outs[6], None),
    }
    statuses = {1: S.FIXED, 2: S.REGRESSED, 3: S.REGRESSED, 4: S.NEW, 5: S.ERROR, 6: S.MISSING,
                7: S.MISSING}
    summary = summarize(range(1, 8), answers, statuses)
    assert (summary.cases, summary.missing, summary.errors) == (7, 2, 1)
    assert (summary.good, summary.bad, summary.unsure, summary.unlabelled) == (1, 1, 1, 1)
    assert summary.labelled == 3 and summary.ok == 4 and summary.carried == 1
    assert summary.pass_rate == pytest.approx(1 / 3)
    assert summary.cost == pytest.approx(0.875)  # the cancelled call's cost is not counted
    assert summary.mean_latency_ms == pytest.approx(200)  # ok outputs only
    assert summary.statuses == {S.REGRESSED: 2, S.FIXED: 1, S.ERROR: 1, S.NEW: 1,
                                S.MISSING: 2}
    assert list(summary.statuses) == sorted(summary.statuses, key=lambda s: s.rank)


def test_summary_of_answer_facts_counts_the_same() -> None:
    outs = [output(case_id=1, cost=0.5, latency_ms=100),
            output(case_id=2, cost=0.25, latency_ms=300),
            output(case_id=3, latency_ms=200),
            output(case_id=4),
            output(OutputStatus.ERROR, "", case_id=5, cost=0.125, latency_ms=9999),
            output(OutputStatus.CANCELLED, "half", case_id=6, cost=1.0),
            output(case_id=7, cost=0.5)]
    labels = [label(outs[0], Verdict.GOOD), label(outs[1], Verdict.BAD, LabelSource.CARRIED),
              label(outs[2], Verdict.UNSURE), None, label(outs[4], Verdict.BAD), None,
              label(outs[6], Verdict.GOOD, LabelSource.CARRIED)]
    answers = {o.case_id: Answer(o, lab) for o, lab in zip(outs, labels)}
    facts = {cid: answer_facts(a) for cid, a in answers.items()}
    statuses = {1: S.FIXED, 2: S.REGRESSED, 8: S.MISSING}
    got = summarize_facts(range(1, 9), facts, statuses)
    assert (got.cases, got.missing, got.errors) == (8, 2, 1)  # 6 cancelled, 8 not run
    assert (got.good, got.bad, got.unsure, got.unlabelled, got.carried) == (2, 1, 1, 1, 2)
    assert got.cost == pytest.approx(1.375)  # the cancelled call's cost is not counted
    assert got.statuses == {S.FIXED: 1, S.REGRESSED: 1, S.MISSING: 1}
    empty = summarize_facts([], {})
    assert (empty.cases, empty.pass_rate, empty.statuses) == (0, None, {})


def test_summary_of_nothing_labelled_has_no_pass_rate() -> None:
    summary = summarize([1, 2], {1: Answer(output(case_id=1), None)})
    assert summary.pass_rate is None
    assert summary.mean_latency_ms is None
    assert (summary.unlabelled, summary.missing, summary.statuses) == (1, 1, {})


def test_compare_all_covers_every_case_id() -> None:
    a, b = output(case_id=1, text="p"), output(case_id=1, text="q")
    result = compare_all([1, 2], {1: Answer(a, label(a, Verdict.BAD))},
                         {1: Answer(b, label(b, Verdict.GOOD))})
    assert result == {1: S.FIXED, 2: S.MISSING}


def _versions(n: int) -> list[PromptVersion]:
    return [PromptVersion(id=10 + i, number=i, instructions=f"v{i}", user_template=None,
                          parent_id=None if i == 1 else 9 + i, note="", created_at="")
            for i in range(1, n + 1)]


def test_verdict_changes_lists_versions_whose_verdict_differs_from_the_parent() -> None:
    versions = _versions(5)
    answers = {}
    for v, verdict, text in ((10 + 1, Verdict.BAD, "a"), (10 + 2, Verdict.BAD, "b"),
                             (10 + 3, Verdict.GOOD, "c"), (10 + 5, Verdict.BAD, "e")):
        o = output(text=text, version_id=v)
        answers[v] = Answer(o, label(o, verdict))
    changes = verdict_changes(versions, answers)
    # v1: first verdict; v2: still bad (no change); v3: fixed; v4 not run;
    # v5's parent (v4) has no answer, so v5 is listed as having no earlier verdict.
    assert [(c.version_number, c.before, c.after, c.status) for c in changes] == [
        (1, None, Verdict.BAD, S.NEW),
        (3, Verdict.BAD, Verdict.GOOD, S.FIXED),
        (5, None, Verdict.BAD, S.NEW),
    ]
    assert changes[1].parent_number == 2


def test_verdict_changes_skip_unlabelled_versions() -> None:
    versions = _versions(2)
    o1, o2 = output(text="a", version_id=11), output(text="b", version_id=12)
    changes = verdict_changes(versions, {11: Answer(o1, label(o1, Verdict.GOOD)),
                                         12: Answer(o2, None)})
    assert [c.version_number for c in changes] == [1]


# ------------------------------------------------------------------ the store's bulk reads
async def test_case_outputs_with_labels_newest_non_cancelled_output_per_case(store) -> None:
    from coevo_tui.store import NewCase

    ids = [(await store.cases.add(NewCase(f"input {i}", ext_id=f"c{i}"))).id for i in range(4)]
    v1 = (await store.versions.latest()).id
    v2 = (await store.versions.create("x", note="")).id

    async def add(case_id, text, *, version=v2, model="m", status=OutputStatus.OK):
        return await store.outputs.add(case_id=case_id, version_id=version, model=model,
                                      params={"temperature": 0.5}, text=text, status=status,
                                      error="e", latency_ms=12.5, tokens_in=3, tokens_out=4,
                                      cost=0.01, cached=True)

    old = await add(ids[0], "old")
    await store.labels.write(old.id, Verdict.BAD)
    new = await add(ids[0], "new")
    first, _ = await store.labels.write(new.id, Verdict.BAD)
    relabel, _ = await store.labels.write(new.id, Verdict.GOOD)
    kept = await add(ids[1], "kept")
    await add(ids[1], "half", status=OutputStatus.CANCELLED)
    await add(ids[2], "other model", model="n")
    await add(ids[3], "under v1", version=v1)

    answers = await store.answers.per_case(v2, "m")
    assert set(answers) == {ids[0], ids[1]}
    assert answers[ids[0]].output.id == new.id and answers[ids[0]].label == relabel
    assert answers[ids[0]].label != first
    assert answers[ids[0]].output == await store.outputs.get(new.id)  # every field read back
    assert answers[ids[1]].output.id == kept.id and answers[ids[1]].label is None
    assert set(await store.answers.per_case(v2)) == {ids[0], ids[1], ids[2]}
    # The same choice as plain facts, for the screens' 100,000-case reads.
    for model in ("m", None):
        full = await store.answers.per_case(v2, model)
        assert await store.answers.facts_per_case(v2, model) == {
            cid: answer_facts(a) for cid, a in full.items()}
    assert (await store.answers.facts_per_case(v2, "m"))[ids[0]][4] == "good"  # the newest label
    assert await store.answers.facts_per_case(v1, "n") == {}
    assert await store.answers.labels_per_case(v2) == {ids[0]: relabel}
    assert await store.answers.labels_per_case(v1) == {}
    assert await store.outputs.cases_per_model(v2) == {"m": 2, "n": 1}
    by_model = await store.outputs.newest_per_model(ids[1], v2)
    assert {m: o.id for m, o in by_model.items()} == {"m": kept.id}


async def test_versions_changing_case_is_the_case_provenance(store) -> None:
    from coevo_tui.store import NewCase

    case = (await store.cases.add(NewCase("Is trash talk allowed?", ext_id="t1"))).id
    v1 = (await store.versions.latest()).id
    v2 = (await store.versions.create("allow trash talk", note="")).id
    v3 = (await store.versions.create("allow trash talk, not slurs", note="")).id
    for version, text, verdict in ((v1, "no", Verdict.BAD), (v2, "no!", Verdict.BAD),
                                   (v3, "yes", Verdict.GOOD)):
        out = await store.outputs.add(case_id=case, version_id=version, model="m", params={},
                                     text=text, status=OutputStatus.OK)
        await store.labels.write(out.id, verdict)
    changes = await store.answers.verdict_changes(case)
    assert [(c.version_number, c.before, c.after, c.status) for c in changes] == [
        (1, None, Verdict.BAD, S.NEW),
        (3, Verdict.BAD, Verdict.GOOD, S.FIXED),
    ]
    assert await store.answers.verdict_changes(case, model="other") == []


async def test_motivation_counts(store) -> None:
    from coevo_tui.store import NewCase

    a = (await store.cases.add(NewCase("a"))).id
    b = (await store.cases.add(NewCase("b"))).id
    v = await store.versions.create("fix", note="n", motivating=[(a, None), (b, None)])
    assert await store.versions.motivation_counts() == {v.id: 2}
