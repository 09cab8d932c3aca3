"""The Compare screen, driven with Pilot: streaming side by side, labelling from a pane,
navigation by status, the instruction diff, choosing versions and models, running the
revision over the set, and the layout at 80 and 120 columns."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from textual.widgets import OptionList, TextArea

from coevo_tui.domain.model import OutputStatus, Verdict
from coevo_tui.domain.status import ComparisonStatus, navigation_order
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel
from coevo_tui.screens.case_detail import CaseDetailScreen
from coevo_tui.screens.compare import (
    CompareRow,
    CompareScreen,
    build_rows,
    history_text,
    status_counts,
)
from coevo_tui.screens.dialogs.rationale import RationaleScreen
from coevo_tui.screens.dialogs.version_picker import VersionPicker
from coevo_tui.store import NewCase, Store

from comparison_project import MODEL, build
from fake_model_server import FakeModelServer
from pilot_support import (burst, notifications, open_screen, screen_text, settle, wait_for,
                           wait_for_screen)

S = ComparisonStatus


# ---------------------------------------------------------------------- helpers
async def panes_shown(pilot, screen: CompareScreen) -> None:
    """Both panes show a stored answer (or an error) for the current case."""
    await wait_for(pilot, lambda: all(p.state in ("stored", "error")
                                      and p.case is not None and p.case.id == screen.case.id
                                      for p in (screen.left_pane, screen.right_pane)),
                   "both panes settled")


def current_ext_id(screen: CompareScreen) -> str:
    assert screen.current is not None
    return screen.rows[screen.current].ext_id


async def labels_of(project: Path, ext_id: str, version: int) -> list[tuple[str, str, str]]:
    """Every label (oldest first) on the case's answers under a version."""
    store = await Store.open(project)
    try:
        case = await store.cases.by_ext_id(ext_id)
        v = await store.versions.by_number(version)
        result = []
        for output in await store.outputs.of_case(case.id):
            if output.version_id == v.id:
                result += [(lb.verdict.value, lb.rationale, lb.source.value)
                           for lb in await store.labels.history(output.id)]
        return result
    finally:
        await store.close()


@pytest.fixture
async def stored(project_path: Path) -> Path:
    """The fixed project: every answer and label already stored (nothing streams)."""
    await build(project_path)
    return project_path


@pytest.fixture
async def unrun(project_path: Path) -> Path:
    """Two versions, three cases, no answer at all."""
    store = await Store.open(project_path, instructions="Allow trash talk.")
    try:
        await store.versions.create("Allow trash talk. Remove threats.", note="threats")
        await store.cases.add_many([NewCase(input="gg ez", ext_id="a1"),
                               NewCase(input="I will find you", ext_id="a2"),
                               NewCase(input="nice shot", ext_id="a3")], source_name="test")
    finally:
        await store.close()
    return project_path


# ---------------------------------------------------------------------- streaming
async def test_both_panes_stream_at_once_and_leaving_cancels_both(
        unrun: Path, fake_server: FakeModelServer, make_test_app) -> None:
    """Through litellm's real client to the fake OpenAI server: a slow stream per side,
    both in flight together; esc closes both connections and stores nothing."""
    fake_server.configure(ttft=0.05, chunks=200, chunk_gap=0.05)  # ~10 s per answer
    app = make_test_app(unrun, model="fake-model", api_base=fake_server.url)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "compare", idle=False)  # slow streams
        await wait_for(pilot, lambda: screen.list_ready and screen.case is not None,
                       "the first case is shown")
        left, right = screen.left_pane, screen.right_pane
        await wait_for(pilot, lambda: left.is_streaming and right.is_streaming
                       and left.text and right.text, "both panes show streamed text",
                       limit=1500)
        assert fake_server.request_count == 2
        systems = sorted(r["messages"][0]["content"] for r in fake_server.requests)
        assert systems == ["Allow trash talk.", "Allow trash talk. Remove threats."]
        assert "Reply to: gg ez"[:len(left.text)] == left.text[:len("Reply to: gg ez")]
        assert fake_server.streams_closed_by_client == []
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(fake_server.streams_closed_by_client) == 2,
                       "the server sees both streams closed", limit=1500)
        assert sorted(fake_server.streams_closed_by_client) == [1, 2]
        assert fake_server.stats.streams_finished == []
    store = await Store.open(unrun)
    try:
        case = await store.cases.by_ext_id("a1")
        assert await store.outputs.of_case(case.id) == []  # a cancelled call stores nothing
    finally:
        await store.close()


async def test_a_missing_side_streams_while_a_stored_side_shows_at_once(
        unrun: Path, fake_provider: FakeModel, make_test_app) -> None:
    store = await Store.open(unrun)
    try:
        v1 = await store.versions.by_number(1)
        case = await store.cases.by_ext_id("a1")
        out = await store.outputs.add(case_id=case.id, version_id=v1.id, model=FAKE_MODEL,
                                     params={}, text="ALLOW", status=OutputStatus.OK)
        await store.labels.write(out.id, Verdict.GOOD)
    finally:
        await store.close()
    fake_provider.hold()
    app = make_test_app(unrun)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare", idle=False)  # its stream is held
        await wait_for(pilot, lambda: screen.list_ready and screen.case is not None,
                       "the first case is shown")
        assert current_ext_id(screen) == "a1"  # new (no baseline answer for a2, a3: not run)
        await wait_for(pilot, lambda: screen.left_pane.state == "stored"
                       and screen.right_pane.state == "streaming", "left stored, right live")
        assert screen.left_pane.text == "ALLOW"
        await wait_for(pilot, lambda: fake_provider.calls, "the model is called")
        assert fake_provider.calls == 1  # only the missing side was asked
        fake_provider.release()
        await panes_shown(pilot, screen)
        assert screen.right_pane.text == "Reply to: gg ez"
        # The stored answer gives the case its status: changed, unlabelled.
        await wait_for(pilot, lambda: screen.rows[screen.current].status
                       == S.CHANGED_UNLABELLED, "the status follows the stored answer")
        await pilot.pause()
        assert "? changed, unlabelled" in screen_text(app)  # the badge


# ---------------------------------------------------------------------- navigation
def test_rows_are_in_navigation_order() -> None:
    lines = [(1, "a", "x"), (2, "b", "y"), (3, "c", "z"), (4, "d", "w"), (5, "e", "v")]
    statuses = {1: S.STILL_GOOD, 2: S.FIXED, 3: S.REGRESSED, 4: S.CHANGED_UNLABELLED,
                5: S.REGRESSED}
    rows = build_rows(lines, statuses)
    assert [r.ext_id for r in rows] == ["c", "e", "d", "b", "a"]
    assert [r.case_id for r in rows] == navigation_order(statuses)  # the domain's order
    assert [r.key for r in rows] == [0, 1, 2, 3, 4]


def test_rows_read_and_write_like_a_list_and_count_their_statuses() -> None:
    lines = [(1, "a", "x"), (2, "b", "y"), (3, "c", "z")]
    statuses = {1: S.STILL_GOOD, 2: S.REGRESSED, 3: S.REGRESSED}
    rows = build_rows(lines, statuses)
    assert rows[0] == CompareRow(0, 2, "b", "y", S.REGRESSED)
    assert rows[-1].status is S.STILL_GOOD and rows[1:] == [rows[1], rows[2]]
    assert rows.index_of_cases() == {2: 0, 3: 1, 1: 2}
    assert status_counts(rows) == {S.REGRESSED: 2, S.STILL_GOOD: 1}
    rows[1] = rows[1]._replace(status=S.FIXED)
    assert (rows[1].case_id, rows[1].status) == (3, S.FIXED)
    assert status_counts(rows) == status_counts(list(rows)) == {
        S.REGRESSED: 1, S.FIXED: 1, S.STILL_GOOD: 1}
    # Plain tuples underneath, which the garbage collector stops tracking: 100,000 rows
    # must not lengthen every full collection (a frozen screen).
    gc.collect()
    assert not any(gc.is_tracked(item) for item in rows._items)


async def test_the_list_puts_regressions_first_and_j_k_step_through_it(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        assert [r.status for r in screen.rows][:3] == [S.REGRESSED, S.CHANGED_UNLABELLED,
                                                       S.FIXED]
        assert [r.ext_id for r in screen.rows] == [
            "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c10", "c8", "c9"]
        text = screen_text(app)
        assert text.index("▼ regressed") < text.index("? changed, unlab.") < text.index(
            "▲ fixed")
        assert "v2 → v3" in text
        assert current_ext_id(screen) == "c1"
        assert screen.left_pane.text == "ALLOW: trash talk about skill"
        assert screen.right_pane.text == "REMOVE: insult"
        await pilot.press("j")
        await panes_shown(pilot, screen)
        assert current_ext_id(screen) == "c2"
        assert screen.right_pane.text == "REMOVE: doxxing, shares an address"
        await pilot.press("j", "j")
        await panes_shown(pilot, screen)
        assert current_ext_id(screen) == "c4"
        assert screen.right_pane.state == "error"  # an error answer is shown as one
        await pilot.press("k")
        await panes_shown(pilot, screen)
        assert current_ext_id(screen) == "c3"
        assert screen.case_list.cursor_row == 2


async def test_the_case_shows_the_versions_that_changed_its_verdict(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(app, pilot, "compare")
        await wait_for(pilot, lambda: "Verdict changed in" in screen_text(app), "history")
        assert "v1 good · v3 ▼ good→bad" in screen_text(app)


def test_history_text_without_changes() -> None:
    assert history_text([]).plain == "Verdict changed in: no version yet"


async def test_enter_opens_the_case_above_compare_and_esc_returns(
        stored: Path, make_test_app) -> None:
    """The case detail opens by name through the registry, as a drill-down: above Compare
    (not in its place), so esc comes back to the same comparison."""
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        ext_id = current_ext_id(screen)
        await pilot.press("enter")
        await wait_for_screen(app, pilot, CaseDetailScreen)
        await wait_for(pilot, lambda: f"Case {ext_id}" in screen_text(app), "its title")
        assert app.screen_stack[-2] is screen
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on Compare")
        assert current_ext_id(screen) == ext_id


# ---------------------------------------------------------------------- labelling
async def test_g_labels_the_focused_pane_and_the_status_updates(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        assert screen.focused_pane() is screen.left_pane
        assert "▶ Baseline" in screen_text(app)
        await pilot.press("l")  # focus the revision
        assert screen.focused_pane() is screen.right_pane
        assert "▶ Revision" in screen_text(app) and "▶ Baseline" not in screen_text(app)
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.right_pane.label is not None
                       and screen.right_pane.label.verdict == Verdict.GOOD, "labelled good")
        await settle(app, pilot)
        assert screen.rows[0].ext_id == "c1" and screen.rows[0].status == S.STILL_GOOD
        assert screen.query_one("#compare-badge").status == S.STILL_GOOD
        # v3 no longer changed the case's verdict: its history says so.
        await wait_for(pilot, lambda: "Verdict changed in: v1 good " in screen_text(app)
                       + " " and "good→bad" not in screen_text(app), "history updated")
    assert await labels_of(stored, "c1", 3) == [("bad", "", "human"), ("good", "", "human")]
    assert await labels_of(stored, "c1", 2) == [("good", "Mocking play skill is allowed "
                                                          "trash talk.", "human")]


async def test_b_asks_for_a_rationale_and_labels_the_focused_pane(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await pilot.press("j")  # c2: changed, unlabelled
        await panes_shown(pilot, screen)
        await pilot.press("tab")  # focus moves to the revision pane
        assert screen.focused_pane() is screen.right_pane
        await pilot.press("b")
        await wait_for_screen(app, pilot, RationaleScreen)
        app.screen.query_one(TextArea).text = "An address is doxxing."
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.right_pane.label
                       is not None, "labelled")
        await settle(app, pilot)
        assert screen.rows[1].status == S.STILL_BAD
        assert "[BAD] An address is doxxing." in screen_text(app)
        # r edits the rationale of the focused pane's label
        await pilot.press("r")
        await wait_for_screen(app, pilot, RationaleScreen)
        app.screen.query_one(TextArea).text = "Sharing an address is doxxing."
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.right_pane.label
                       is not None and screen.right_pane.label.rationale.startswith("Sharing"),
                       "rationale edited")
        await settle(app, pilot)
    assert await labels_of(stored, "c2", 3) == [
        ("bad", "An address is doxxing.", "human"),
        ("bad", "Sharing an address is doxxing.", "human")]


async def test_a_rationale_typed_straight_after_b_goes_into_the_rationale(
        stored: Path, make_test_app) -> None:
    # "b" and the rationale in one burst: the keys belong to the dialog; on Compare "g"
    # would label the pane good and "j" move to another case.
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await pilot.press("j")  # c2: changed, unlabelled
        await panes_shown(pilot, screen)
        await pilot.press("tab")
        burst(app, ["b", *"gj: an address is doxxing", "enter"])
        await wait_for(pilot, lambda: app.screen is screen and screen.right_pane.label
                       is not None, "labelled")
        await settle(app, pilot)
        assert screen.case is not None and screen.case.ext_id == "c2"
    assert await labels_of(stored, "c2", 3) == [("bad", "gj: an address is doxxing", "human")]


async def test_esc_in_the_rationale_still_labels_and_labelling_needs_an_answer(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        for _ in range(3):
            await pilot.press("j")
        await panes_shown(pilot, screen)
        assert current_ext_id(screen) == "c4"  # the revision's answer is an error
        await pilot.press("l", "g")
        await pilot.pause()
        assert screen.right_pane.label is None
        assert app.screen is screen
        await pilot.press("h", "u")  # the baseline's answer can be labelled
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.left_pane.label is not None
                       and screen.left_pane.label.verdict == Verdict.UNSURE, "labelled")
        await settle(app, pilot)
    assert (await labels_of(stored, "c4", 2))[-1] == ("unsure", "", "human")


async def test_a_label_carries_over_to_the_identical_answer_on_the_other_side(
        stored: Path, make_test_app) -> None:
    store = await Store.open(stored)
    try:
        [cid] = await store.cases.add_many([NewCase(input="ez clap", ext_id="c11")])
        for number in (2, 3):
            version = await store.versions.by_number(number)
            await store.outputs.add(case_id=cid, version_id=version.id, model=MODEL, params={},
                                   text="ALLOW: banter" + " " * number,
                                   status=OutputStatus.OK)
    finally:
        await store.close()
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        index = screen.index_of_case[cid]
        assert screen.rows[index].status == S.UNCHANGED
        await screen._select(index)
        await panes_shown(pilot, screen)
        await pilot.press("l", "g")
        await wait_for(pilot, lambda: screen.left_pane.label is not None, "carried left")
        assert screen.left_pane.label.source.value == "carried"
        assert screen.rows[index].status == S.STILL_GOOD
    assert await labels_of(stored, "c11", 2) == [("good", "", "carried")]


# ---------------------------------------------------------------------- diff, choosing
async def test_d_toggles_the_instruction_diff(stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        assert "+Flag doxxing" not in screen_text(app)
        await pilot.press("d")
        await pilot.pause()
        text = screen_text(app)
        assert "--- v2 instructions" in text and "+++ v3 instructions" in text
        assert "+Flag doxxing (real names, addresses)" in text
        assert "REMOVE: insult" not in text  # the diff takes the panes' place
        await pilot.press("d")
        await pilot.pause()
        assert "+Flag doxxing" not in screen_text(app)
        assert "REMOVE: insult" in screen_text(app)


async def test_v_chooses_other_versions(stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await pilot.press("V")
        picker = await wait_for_screen(app, pilot, VersionPicker)
        assert picker.query_one("#version-picker-baseline", OptionList).highlighted == 1
        await pilot.press("up", "enter")  # baseline v1, then the revision list
        await pilot.press("up", "enter")  # revision v2
        await settle(app, pilot)
        await wait_for(pilot, lambda: app.screen is screen and screen.list_ready
                       and screen.right is not None and screen.right.version.number == 2,
                       "reloaded")
        await wait_for(pilot, lambda: screen.case is not None, "a case")
        assert screen.left is not None and screen.left.version.number == 1
        assert "v1 → v2" in screen_text(app)
        # v1 and v2 answered alike: nothing regressed or fixed
        assert {r.status for r in screen.rows} <= {S.STILL_GOOD, S.STILL_BAD, S.MISSING}


async def test_m_compares_the_revision_under_a_second_model(
        stored: Path, fake_provider: FakeModel, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await pilot.press("m")
        await wait_for(pilot, lambda: app.screen is not screen, "the model prompt")
        await pilot.press(*"coevo-fake/other", "enter")
        await settle(app, pilot)
        await wait_for(pilot, lambda: app.screen is screen and screen.list_ready
                       and screen.right is not None and screen.right.model == "coevo-fake/other",
                       "models mode")
        await wait_for(pilot, lambda: screen.right_pane.state == "stored"
                       and screen.right_pane.text.startswith("other says:"), "model B answers")
        assert screen.left is not None and screen.left.version.number == 3
        assert screen.left.model == MODEL
        assert screen.left_pane.state in ("stored", "error")
        text = screen_text(app)
        assert f"v3: {MODEL} vs coevo-fake/other" in text
        assert "Model A" in text and "Model B" in text
        # Only the current case was asked: no run started by itself.
        assert fake_provider.calls == 1


# ---------------------------------------------------------------------- running the set
async def test_r_runs_the_revision_and_statuses_fill_in(
        unrun: Path, fake_provider: FakeModel, make_test_app) -> None:
    # v1 answers: a1 and a3 as the fake model will answer again (so carry-over labels the
    # v2 answers), a2 differently.
    v1_answers = {"a1": ("Reply to: gg ez", Verdict.BAD),
                  "a2": ("an old answer", Verdict.GOOD),
                  "a3": ("Reply to: nice shot", Verdict.GOOD)}
    store = await Store.open(unrun)
    try:
        v1 = await store.versions.by_number(1)
        for ext, (text, verdict) in v1_answers.items():
            case = await store.cases.by_ext_id(ext)
            out = await store.outputs.add(case_id=case.id, version_id=v1.id, model=FAKE_MODEL,
                                         params={}, text=text, status=OutputStatus.OK)
            await store.labels.write(out.id, verdict)
    finally:
        await store.close()
    fake_provider.configure(chunks=6, chunk_delay=0.01)
    # Held until the list is seen: the answer a1's pane streams changes a1's status, so
    # unheld the list had to be read within that stream's 60 ms.
    fake_provider.hold()
    app = make_test_app(unrun)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare", idle=False)
        await wait_for(pilot, lambda: screen.list_ready and screen.case is not None,
                       "the first case is shown")
        assert {r.status for r in screen.rows} == {S.MISSING}
        assert [r.ext_id for r in screen.rows] == ["a1", "a2", "a3"]
        fake_provider.release()
        await panes_shown(pilot, screen)  # a1's missing revision answer streamed in
        await pilot.press("R")
        await wait_for(pilot, lambda: screen.run_summary is not None
                       and not screen.run_in_progress(), "the run finished")
        await settle(app, pilot)
        await wait_for(pilot, lambda: screen.list_ready, "re-sorted")
        # Statuses filled in, then the list went back to status order.
        assert [(r.ext_id, r.status) for r in screen.rows] == [
            ("a2", S.CHANGED_UNLABELLED), ("a1", S.STILL_BAD), ("a3", S.STILL_GOOD)]
        assert current_ext_id(screen) == "a1"  # the case on show stays on show
        assert screen.case_list.cursor_row == 1
        await pilot.pause()
        assert "run done 2/2" in screen_text(app)  # a1 was answered by its pane already
    store = await Store.open(unrun)
    try:
        v2 = await store.versions.by_number(2)
        answers = await store.answers.per_case(v2.id, FAKE_MODEL)
        assert len(answers) == 3
        assert all(a.output.text.startswith("Reply to: ") for a in answers.values())
    finally:
        await store.close()


# ---------------------------------------------------------------------- layout
async def test_the_layout_follows_the_width(stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        assert screen.has_class("-narrow") and not screen.has_class("-wide")
        left, right = screen.left_pane.region, screen.right_pane.region
        assert right.y > left.y and left.x == right.x  # stacked
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert screen.has_class("-wide")
        left, right = screen.left_pane.region, screen.right_pane.region
        assert right.x > left.x and left.y == right.y  # side by side
        case_list = screen.case_list.region
        assert case_list.right <= left.x


async def test_without_a_model_stored_answers_still_show(
        stored: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.delenv("COEVO_MODEL", raising=False)
    store = await Store.open(stored)
    try:
        await store.settings.update(model=None)
    finally:
        await store.close()
    monkeypatch.setattr("coevo_tui.llm.config.local_model_installed", lambda: False)
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        await panes_shown(pilot, screen)
        assert screen.rows[0].status == S.REGRESSED
        assert screen.right_pane.text == "REMOVE: insult"


async def test_a_new_status_shows_in_the_list_when_it_is_scrolled(
        stored: Path, make_test_app) -> None:
    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "compare")
        for _ in range(8):
            await pilot.press("j")
        await panes_shown(pilot, screen)
        assert current_ext_id(screen) == "c8"  # the list (4 rows high) has scrolled
        assert screen.case_list.scroll_y > 0
        assert "≡ unchanged       c8" in screen_text(app)
        await pilot.press("l", "b")
        await wait_for_screen(app, pilot, RationaleScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.right_pane.label is not None, "labelled")
        await pilot.pause()
        assert "▼ regressed       c8" in screen_text(app)


# ---------------------------------------------------------------------- the Cases table
def test_the_status_filter_words() -> None:
    from coevo_tui.domain.case_query import split_status_filter

    assert split_status_filter("refund #edge") == ("refund #edge", None, None)
    rest, wanted, problem = split_status_filter("refund status:reg #edge")
    assert (rest, wanted, problem) == ("refund #edge", frozenset({S.REGRESSED}), None)
    assert split_status_filter("status:still")[1] == {S.STILL_GOOD, S.STILL_BAD,
                                                      S.STILL_UNSURE}
    assert split_status_filter("status:not-run")[1] == {S.MISSING}
    assert split_status_filter("status:changed status:fixed")[1] == {
        S.CHANGED_UNLABELLED, S.FIXED}
    rest, wanted, problem = split_status_filter("status:nope")
    assert rest == "" and wanted is None and problem and "nope" in problem


async def test_the_cases_table_has_version_columns_and_a_status_filter(
        stored: Path, make_test_app) -> None:
    from textual.widgets import Input

    from coevo_tui.widgets.case_table import CaseTable

    app = make_test_app(stored, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: any(c.label == "v3" for c in
                                          app.screen.query_one(CaseTable).columns),
                       "the version columns")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if line.startswith("Id "))
        assert "v1 v2 v3" in header
        c1 = next(line for line in lines if line.startswith("c1 "))
        assert "G  G  B " in c1  # good, good, then bad under v3
        c6 = next(line for line in lines if line.startswith("c6 "))
        assert "·  ·  G " in c6

        def shown() -> list[str]:
            return [row[1] for row in app.screen.query_one(CaseTable).rows]

        app.screen.query_one("#cases-filter", Input).value = "status:regressed"
        await wait_for(pilot, lambda: shown() == ["c1"], "only the regression")
        app.screen.query_one("#cases-filter", Input).value = "status:changed status:fixed"
        await wait_for(pilot, lambda: shown() == ["c2", "c3"], "changed and fixed")
        app.screen.query_one("#cases-filter", Input).value = "status:not_run"
        await wait_for(pilot, lambda: shown() == ["c10"], "not run under v3")


def test_importing_compare_and_overview_does_not_import_litellm() -> None:
    import subprocess
    import sys

    code = ("import sys, coevo_tui.screens.compare, coevo_tui.screens.overview;"
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


async def test_one_version_says_how_to_get_something_to_compare(
        project_path: Path, make_test_app) -> None:
    store = await Store.open(project_path, instructions="Allow trash talk.")
    try:
        await store.cases.add_many([NewCase(input="gg ez", ext_id="a1")], source_name="test")
    finally:
        await store.close()
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(app, pilot, "compare")
        await wait_for(pilot, lambda: any("Only v1 to compare with itself" in message
                                          for message in notifications(app)), "the hint")
