"""Showing a case fast (issue 8, keypress to repaint): the one-query read of a case on show,
Compare showing a case before its list is sorted, Compare and Label reading a case once
per key, and the footer dimming keys in place."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

import coevo_tui.screens.compare as compare_module
from coevo_tui.domain.model import CaseState, OutputStatus, Verdict
from coevo_tui.domain.status import ComparisonStatus
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.store import NewCase, Store

from comparison_project import MODEL, build
from pilot_support import notifications, open_screen, screen_text, settle, wait_for

S = ComparisonStatus


# ---------------------------------------------------------------------- the store
async def test_case_on_show_reads_what_the_separate_reads_read(project_path: Path) -> None:
    """For every case of the comparison project and every side (each version, with its
    model, any model, a model without answers): the case, the newest non-cancelled
    answer, its current label and its history's length, as the one-at-a-time reads give
    them."""
    await build(project_path)
    store = await Store.open(project_path)
    try:
        case = await store.cases.by_ext_id("c1")
        v3 = await store.versions.by_number(3)
        # A newer answer that was stopped is not an answer: the previous stays current.
        await store.outputs.add(case_id=case.id, version_id=v3.id, model=MODEL, params={},
                               text="half an answ", status=OutputStatus.CANCELLED)
        # A label changed twice: three labels in its history.
        newest = (await store.outputs.newest_per_model(case.id, v3.id))[MODEL]
        await store.labels.write(newest.id, Verdict.GOOD)
        await store.labels.write(newest.id, Verdict.UNSURE, "not sure")
        versions = await store.versions.all()
        sides = [(v.id, model) for v in versions for model in (MODEL, None, "no/such")]
        answered = labelled = 0
        for listed in await store.cases.all():
            shown, per_side = await store.answers.case_on_show(listed.id, sides)
            assert shown == listed
            assert len(per_side) == len(sides)
            for (version_id, model), (answer, count) in zip(sides, per_side):
                by_model = await store.outputs.newest_per_model(listed.id, version_id)
                expected = (by_model.get(model) if model is not None
                            else max(by_model.values(), key=lambda o: o.id, default=None))
                if expected is None:
                    assert (answer, count) == (None, 0)
                    continue
                answered += 1
                assert answer is not None and answer.output == expected
                assert answer.label == await store.labels.current(expected.id)
                assert count == len(await store.labels.history(expected.id))
                labelled += answer.label is not None
        assert answered and labelled  # the comparison covered both kinds
        shown, per_side = await store.answers.case_on_show(case.id, [(v3.id, MODEL)])
        answer, count = per_side[0]
        assert answer is not None and answer.output.id == newest.id
        assert answer.label is not None and answer.label.rationale == "not sure"
        assert count == 3
        assert await store.cases.first_active_id() == min(
            c.id for c in await store.cases.all([CaseState.ACTIVE]))
    finally:
        await store.close()


async def test_first_active_case_id_skips_archived_cases_and_may_be_none(
        project_path: Path) -> None:
    store = await Store.open(project_path)
    try:
        assert await store.cases.first_active_id() is None
        first, second = await store.cases.add_many([NewCase("one"), NewCase("two")])
        await store.cases.set_state(first, CaseState.ARCHIVED)
        assert await store.cases.first_active_id() == second
    finally:
        await store.close()


# ---------------------------------------------------------------------- Compare
@pytest.fixture
async def still_good_then_regressed(project_path: Path) -> Path:
    """Two versions; a1 (the lowest id) is changed-unlabelled, a2 regressed: the first case
    by id is not the first in status order."""
    store = await Store.open(project_path, instructions="Allow trash talk.")
    try:
        v2 = await store.versions.create("Allow trash talk. Remove threats.", note="threats")
        v1 = await store.versions.by_number(1)
        a1, a2 = await store.cases.add_many([NewCase("gg ez", ext_id="a1"),
                                        NewCase("nice shot", ext_id="a2")])
        answers = {(a1, v1.id): ("ALLOW", Verdict.GOOD), (a1, v2.id): ("ALLOW: banter", None),
                   (a2, v1.id): ("ALLOW", Verdict.GOOD), (a2, v2.id): ("REMOVE", Verdict.BAD)}
        for (case_id, version_id), (text, verdict) in answers.items():
            out = await store.outputs.add(case_id=case_id, version_id=version_id, model=MODEL,
                                         params={}, text=text, status=OutputStatus.OK)
            if verdict is not None:
                await store.labels.write(out.id, verdict)
    finally:
        await store.close()
    return project_path


@pytest.fixture
def sorting_gate(monkeypatch: pytest.MonkeyPatch):
    """Holds Compare's sorting (it runs in a thread) until the test sets the event."""
    gate = threading.Event()
    sort = compare_module.compare_lines

    def held(*args, **kwargs):
        gate.wait(timeout=60)
        return sort(*args, **kwargs)

    monkeypatch.setattr(compare_module, "compare_lines", held)
    try:
        yield gate
    finally:
        gate.set()


async def case_on_show(pilot, screen: CompareScreen) -> None:
    """A case is on show with both its stored answers (the list may still be sorting)."""
    await wait_for(pilot, lambda: screen.case is not None and all(
        p.state == "stored" and p.case is not None and p.case.id == screen.case.id
        for p in (screen.left_pane, screen.right_pane)), "a case shown")


async def test_compare_shows_a_case_before_its_list_is_sorted(
        still_good_then_regressed: Path, sorting_gate: threading.Event, make_test_app) -> None:
    app = make_test_app(still_good_then_regressed, model=MODEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "compare", idle=False)  # the sort is held
        await case_on_show(pilot, screen)
        # The first case by id, with its own status, while the list is still sorting.
        assert screen.case is not None and screen.case.ext_id == "a1"
        assert not screen.list_ready and len(screen.rows) == 0
        assert screen.left_pane.text == "ALLOW" and screen.right_pane.text == "ALLOW: banter"
        assert screen.query_one("#compare-badge").status == S.CHANGED_UNLABELLED
        await pilot.pause()
        text = screen_text(app)
        assert "a1 · sorting…" in text and "sorting the cases" in text
        # j cannot step through a list that is not there yet: it says so.
        await pilot.press("j")
        await wait_for(pilot, lambda: any("Still sorting" in m for m in notifications(app)),
                       "j says the list is sorting")
        assert screen.case.ext_id == "a1"
        sorting_gate.set()
        # Ready: the first case in status order (the regression) is shown.
        await wait_for(pilot, lambda: screen.list_ready and screen.case is not None
                       and screen.case.ext_id == "a2"
                       and screen.right_pane.case is not None
                       and screen.right_pane.case.id == screen.case.id
                       and screen.right_pane.state == "stored", "the regression shown")
        assert [(r.ext_id, r.status) for r in screen.rows] == [
            ("a2", S.REGRESSED), ("a1", S.CHANGED_UNLABELLED)]
        assert screen.current == 0 and screen.case_list.cursor_row == 0
        assert screen.right_pane.text == "REMOVE"
        await pilot.press("j")
        await wait_for(pilot, lambda: screen.case.ext_id == "a1", "j steps to a1")


async def test_a_label_given_before_the_list_is_sorted_counts_and_keeps_the_case(
        still_good_then_regressed: Path, sorting_gate: threading.Event, make_test_app) -> None:
    app = make_test_app(still_good_then_regressed, model=MODEL)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare", idle=False)  # the sort is held
        await case_on_show(pilot, screen)
        assert screen.case is not None and screen.case.ext_id == "a1"
        # Both sides' answers were read before this label: the list must not keep the
        # status they gave (changed-unlabelled).
        await wait_for(pilot, lambda: screen.left_answers and screen.right_answers,
                       "the statuses' reads done")
        await pilot.press("l", "g")  # the revision's answer is good too
        await wait_for(pilot, lambda: screen.right_pane.label is not None, "labelled")
        await pilot.pause()
        assert screen.query_one("#compare-badge").status == S.STILL_GOOD
        sorting_gate.set()
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.list_ready, "sorted")
        by_ext = {r.ext_id: r.status for r in screen.rows}
        assert by_ext == {"a1": S.STILL_GOOD, "a2": S.REGRESSED}
        # The user was working on a1: it stays on show, the cursor on its row.
        assert screen.case.ext_id == "a1"
        assert screen.current is not None and screen.rows[screen.current].ext_id == "a1"
        assert screen.case_list.cursor_row == screen.current
        assert screen.query_one("#compare-badge").status == S.STILL_GOOD


class ReadRecorder:
    """Records which of the store's per-case reads are called, by name."""

    NAMES = (("cases", "get", "case"), ("answers", "case_on_show", "case_on_show"),
             ("outputs", "newest_per_model", "newest_outputs_by_model"),
             ("labels", "current", "current_label"), ("labels", "history", "label_history"))

    def __init__(self, store: Store) -> None:
        self.calls: list[str] = []
        for concern, method, name in self.NAMES:
            owner = getattr(store, concern)
            original = getattr(owner, method)

            async def recorded(*args, _original=original, _name=name, **kwargs):
                self.calls.append(_name)
                return await _original(*args, **kwargs)

            setattr(owner, method, recorded)


async def test_j_on_compare_reads_the_case_and_both_answers_in_one_query(
        still_good_then_regressed: Path, make_test_app) -> None:
    app = make_test_app(still_good_then_regressed, model=MODEL)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        assert isinstance(screen, CompareScreen)
        await wait_for(pilot, lambda: screen.list_ready, "loaded")
        assert app.session.store is not None
        reads = ReadRecorder(app.session.store)
        await pilot.press("j")
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.case.ext_id == "a1"
                       and screen.right_pane.text == "ALLOW: banter", "a1 shown")
        assert reads.calls == ["case_on_show"]
        assert "unlabelled" in screen_text(app) and "[GOOD]" in screen_text(app)


# ---------------------------------------------------------------------- Label
async def test_j_on_label_reads_the_case_its_answer_and_label_in_one_query(
        still_good_then_regressed: Path, make_test_app) -> None:
    """Label shows v2's answers: a1's unlabelled, a2's labelled bad then bad again with a
    reason (two labels: "1 earlier label")."""
    store = await Store.open(still_good_then_regressed)
    try:
        a2 = await store.cases.by_ext_id("a2")
        v2 = await store.versions.by_number(2)
        out = (await store.outputs.newest_per_model(a2.id, v2.id))[MODEL]
        await store.labels.write(out.id, Verdict.BAD, "a false removal")
    finally:
        await store.close()
    app = make_test_app(still_good_then_regressed, model=MODEL)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "label")
        assert isinstance(screen, LabelScreen)
        await wait_for(pilot, lambda: screen.case is not None and screen.pane.output is not None,
                       "a1 shown")
        assert screen.case.ext_id == "a1"
        r_key = next(k for k in app.screen.query(FooterKey) if k.key == "r")
        assert r_key.has_class("-disabled")  # nothing to write a rationale for
        assert app.session.store is not None
        reads = ReadRecorder(app.session.store)
        await pilot.press("j")
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.case.ext_id == "a2"
                       and screen.verdict_bar.label is not None, "a2 shown")
        assert reads.calls == ["case_on_show"]
        await pilot.pause()
        text = screen_text(app)
        assert "[BAD]" in text and "1 earlier label kept in history" in text
        assert "a false removal" in text
        # `r` now applies: the footer key is undimmed in place, not rebuilt.
        keys = list(app.screen.query(FooterKey))
        assert r_key in keys and not r_key.has_class("-disabled")
        await pilot.press("k")
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.case.ext_id == "a1", "a1 again")
        await pilot.pause()
        assert r_key.has_class("-disabled") and list(app.screen.query(FooterKey)) == keys
