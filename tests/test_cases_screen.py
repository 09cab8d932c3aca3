"""The Cases screen, driven with Pilot as a user would: filter, add, edit, archive, open, help."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from coevo_tui.app import CoevoApp
from coevo_tui.domain.case_query import LINE_EXT_ID, LINE_INPUT, CaseQuery, case_line
from coevo_tui.domain.model import CaseState, OutputStatus, Verdict
from coevo_tui.palette import bound_actions
from coevo_tui.screens.case_detail import CaseDetailScreen
from coevo_tui.screens.dialogs.case_editor import CaseEditorScreen, parse_tags
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.compare import CompareScreen
from coevo_tui.screens.dialogs.help import HelpScreen
from coevo_tui.screens.label import LabelScreen
from coevo_tui.screens.overview import OverviewScreen
from coevo_tui.store import NewCase, Store
from coevo_tui.widgets.case_table import CaseTable

from pilot_support import (burst, notifications, raised_notifications, screen_lines, settle,
                           wait_for, wait_for_screen)

CASES = [
    NewCase(input="How do I get a refund?\nI paid twice.", tags=("refund",), ext_id="r1"),
    NewCase(input="You are trash at this game", tags=("trash-talk", "edge"), ext_id="t1",
            note="allowed banter"),
    NewCase(input="Can you promise me a REFUND by Friday?", tags=("refund", "edge"),
            ext_id="r2"),
    NewCase(input="What time is it?", ext_id="q1"),
    NewCase(input="an archived question", ext_id="old", state=CaseState.ARCHIVED),
    NewCase(input="a generated candidate", ext_id="cand", state=CaseState.CANDIDATE),
]


async def _make_project(path: Path, cases: list[NewCase]) -> None:
    store = await Store.open(path)
    try:
        await store.cases.add_many(cases, source_name="test")
    finally:
        await store.close()


def _shown_ids(app: CoevoApp) -> list[str]:
    table = app.screen.query_one(CaseTable)
    return [row[LINE_EXT_ID] for row in table.rows]


@pytest.fixture
async def project(project_path: Path) -> Path:
    await _make_project(project_path, CASES)
    return project_path


# ---------------------------------------------------------------------- the filter language
def test_query_words_tags_states_and_sources() -> None:
    lines = [
        (1, "a", "Refund please", '["refund"]', "manual", "active"),
        (2, "b", "trash talk", '["trash-talk", "edge"]', "imported", "active"),
        (3, "c", "old refund", '["refund"]', "manual", "archived"),
        (4, "d", "maybe", "[]", "generated", "candidate"),
    ]
    lowered = [line[LINE_INPUT].lower() for line in lines]

    def ids(text: str) -> list[str]:
        return [r[1] for r in CaseQuery.parse(text).select(lines, lowered, 0, len(lines))]

    assert ids("") == ["a", "b"]  # archived and candidates hidden by default
    assert ids("REFUND") == ["a"]
    assert ids("refund state:all") == ["a", "c"]
    assert ids("state:arch") == ["c"]  # a prefix is enough while typing
    assert ids("state:candidate state:archived") == ["c", "d"]
    assert ids("#edge") == ["b"] and ids("tag:trash-talk") == ["b"]
    assert ids("#trash") == []  # tags match whole, not by prefix
    assert ids("-#edge") == ["a"] and ids("-refund") == ["b"]
    assert ids("source:imp") == ["b"]
    assert ids("id:b") == ["b"]
    assert ids('"trash talk"') == ["b"] and ids('"talk trash"') == []
    assert CaseQuery.parse("state:nope").problems


def test_tag_with_a_quote_matches_exactly() -> None:
    from coevo_tui.domain.case_query import tags_json

    line = (1, "a", "x", tags_json(['say "hi"', "b"]), "manual", "active")
    assert CaseQuery.parse("#'say \"hi\"'").matches(line)
    assert not CaseQuery.parse("#say").matches(line)


def test_parse_tags_from_the_editor() -> None:
    assert parse_tags(" #refund, edge  refund\tnew ") == ("refund", "edge", "new")
    assert parse_tags("") == ()


# ---------------------------------------------------------------------- the screen
async def test_the_table_shows_active_cases_with_counts(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1"]
        text = "\n".join(screen_lines(app))
        assert "4 active · 1 candidates · 1 archived" in text
        assert "4 shown" in text
        assert "How do I get a refund?" in text  # the first line of the input
        assert "I paid twice" not in text
        assert "#trash-talk" in text


async def test_filter_by_text_tag_and_state(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        assert app.screen.query_one("#cases-filter", Input).has_focus
        await pilot.press(*"refund")
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "r2"]
        assert "2 shown" in "\n".join(screen_lines(app))
        await pilot.press("space", *"#edge")
        await settle(app, pilot)
        assert _shown_ids(app) == ["r2"]
        await pilot.press("enter")  # back to the table, filter kept
        assert app.screen.query_one(CaseTable).has_focus
        await pilot.press("escape")  # esc on the table clears the filter
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1"]
        await pilot.press("A")  # show archived and candidate cases too
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1", "old", "cand"]
        assert app.screen.query_one("#cases-filter", Input).value == "state:all"
        await pilot.press("A")
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1"]


async def test_add_a_case_with_the_modal(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, CaseEditorScreen)
        await pilot.press(*"first line", "enter", *"second line")
        await pilot.press("tab", *"new, edge")
        await pilot.press("tab", *"why it matters")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        table = app.screen.query_one(CaseTable)
        assert table.current_row is not None
        assert table.current_row[LINE_INPUT] == "first line\nsecond line"  # cursor on it
        assert "Added case" in notifications(app)[-1]
        assert "6 active" not in "\n".join(screen_lines(app))
        assert "5 active" in "\n".join(screen_lines(app))
    async with await Store.open(project) as store:
        case = (await store.cases.all())[-1]
        assert (case.input, case.tags, case.note) == (
            "first line\nsecond line", ("new", "edge"), "why it matters")


async def test_a_case_typed_straight_after_a_goes_into_the_editor(
        project: Path, make_test_app) -> None:
    # "a" and the text in one burst (a fast typist, SSH): no key reaches the table, where
    # "e" edits, "x" archives and "q" quits.
    async with await Store.open(project) as store:
        before = [(c.ext_id, c.input, c.state) for c in await store.cases.all()]
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        burst(app, ["a", *"quick example text", "ctrl+s"])
        await wait_for(pilot, lambda: any("Added case" in n for n in notifications(app)), "added")
        assert app.is_running and isinstance(app.screen, CasesScreen)
    async with await Store.open(project) as store:
        cases = await store.cases.all()
    assert cases[-1].input == "quick example text"
    assert [(c.ext_id, c.input, c.state) for c in cases[:-1]] == before  # nothing else changed


async def test_an_empty_input_is_refused_in_the_modal(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("a", "space", "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, CaseEditorScreen)
        assert "cannot be empty" in "\n".join(screen_lines(app))
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
    async with await Store.open(project) as store:
        assert len(await store.cases.all()) == len(CASES)


async def test_edit_the_selected_case(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down")  # t1
        await pilot.press("e")  # the editor opens once the case is read
        editor = await wait_for_screen(app, pilot, CaseEditorScreen)
        await settle(app, pilot, leave=["cases-write"])  # it waits for the editor
        assert isinstance(editor, CaseEditorScreen)
        area = editor.query_one("#case-input", TextArea)
        assert area.text == "You are trash at this game"  # pre-filled
        assert editor.query_one("#case-tags", Input).value == "trash-talk edge"
        assert editor.query_one("#case-note", Input).value == "allowed banter"
        area.text = "You are garbage at this game"
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        table = app.screen.query_one(CaseTable)
        assert table.current_row is not None
        assert table.current_row[LINE_INPUT] == "You are garbage at this game"
        assert "You are garbage at this game" in "\n".join(screen_lines(app))
    async with await Store.open(project) as store:
        case = await store.cases.by_ext_id("t1")
        assert case.input == "You are garbage at this game"
        assert case.tags == ("trash-talk", "edge")
        edits = await store.events.recent(kind="edit")
        assert edits[0].payload["before"] == {"input": "You are trash at this game"}


async def test_archive_then_restore(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("x")  # archive r1
        await settle(app, pilot)
        assert _shown_ids(app) == ["t1", "r2", "q1"]  # hidden by the default filter
        assert "Archived case r1" in notifications(app)[-1]
        text = "\n".join(screen_lines(app))
        assert "3 active · 1 candidates · 2 archived" in text
        await pilot.press("slash", *"state:archived", "enter")
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "old"]
        await pilot.press("x")  # restore r1
        await settle(app, pilot)
        assert _shown_ids(app) == ["old"]
        assert "Restored case r1" in notifications(app)[-1]
    async with await Store.open(project) as store:
        assert (await store.cases.by_ext_id("r1")).state is CaseState.ACTIVE
        states = [e.payload for e in await store.events.recent(kind="state")]
        assert states == [{"before": "archived", "after": "active"},
                          {"before": "active", "after": "archived"}]


async def test_i_opens_the_detail_view(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "i")  # enter and l open the Label screen
        await settle(app, pilot)
        assert isinstance(app.screen, CaseDetailScreen)
        text = "\n".join(screen_lines(app))
        for expected in ("Case t1", "You are trash at this game", "#trash-talk #edge",
                         "allowed banter", "manual", "active", "No outputs yet"):
            assert expected in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CasesScreen)


async def test_the_detail_view_shows_outputs_and_labels(project: Path, make_test_app) -> None:
    from coevo_tui.domain.model import OutputStatus, Verdict

    async with await Store.open(project) as store:
        case = await store.cases.by_ext_id("r1")
        version = await store.versions.latest()
        output = await store.outputs.add(case_id=case.id, version_id=version.id, model="m",
                                        params={}, text="No refunds, sorry.",
                                        status=OutputStatus.OK)
        await store.labels.write(output.id, Verdict.BAD, "must offer the refund form")
    app = make_test_app(project, model=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("i")
        await settle(app, pilot)
        text = "\n".join(screen_lines(app))
        assert "No refunds, sorry." in text
        assert "[BAD]" in text and "must offer the refund form" in text


async def test_help_lists_every_key_of_the_screen(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(100, 50)) as pilot:
        await settle(app, pilot)
        expected = {(a.key_display, a.description) for a in bound_actions(app.screen)}
        # Every described binding the screen and the app declare is among them.
        # (A screen key shows once that screen's module exists.)
        declared = {b.description for b in CasesScreen.BINDINGS + CoevoApp.BINDINGS
                    if b.description and (not b.action.startswith("open_screen")
                                          or b.action.split("'")[1] in app.available_screens)}
        declared |= {b.description for b in CaseTable.BINDINGS}
        assert declared <= {d for _, d in expected}
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = "\n".join(screen_lines(app))
        for key, description in expected:
            assert any(key in line and description in line for line in text.splitlines()), (
                key, description)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CasesScreen)


async def test_a_store_write_error_is_a_notification_and_keeps_the_draft(
        project: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.session.store is not None

        async def disk_full(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(app.session.store.cases, "add", disk_full)
        await pilot.press("a", *"keep me", "ctrl+s")
        await wait_for(pilot, lambda: notifications(app, "error"), "the write refused")
        await settle(app, pilot, leave=["cases-write"])  # it waits for the editor again
        # Said the way the command line says it (store/faults.py), not in SQLite's words.
        assert any("the disk is full; nothing was changed" in n for n in notifications(app))
        assert {n.severity for n in raised_notifications(app)} == {"error"}
        # The editor came back with what was typed: nothing is lost.
        assert isinstance(app.screen, CaseEditorScreen)
        assert app.screen.query_one("#case-input", TextArea).text == "keep me"
        monkeypatch.undo()
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        assert "Added case" in notifications(app)[-1]
        # An archive that fails is reported too, and the app keeps running.
        monkeypatch.setattr(app.session.store.cases, "set_state", disk_full)
        await pilot.press("x")
        await settle(app, pilot)
        assert app.is_running and isinstance(app.screen, CasesScreen)
        assert sum("the disk is full; nothing was changed" in n for n in notifications(app)) == 2


async def test_a_few_thousand_cases_render_only_the_visible_rows(
        project_path: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    await _make_project(project_path, [NewCase(input=f"case number {i}", tags=("t",))
                                       for i in range(3000)])
    rendered: set[int] = set()
    original = CaseTable.render_line

    def counting(self: CaseTable, y: int) -> object:
        if y > 0 and self.rows:
            rendered.add(int(self.scroll_y) + y - 1)
        return original(self, y)

    monkeypatch.setattr(CaseTable, "render_line", counting)
    app = make_test_app(project_path, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(CaseTable)
        assert table.row_count == 3000
        assert not table.children  # rows are lines, not widgets
        assert len(app.screen.query("*")) < 40
        page = table.scrollable_content_region.height - 1
        assert rendered and max(rendered) < page
        rendered.clear()
        await pilot.press("end")
        await pilot.pause()
        assert table.current_row is not None
        assert table.current_row[LINE_INPUT] == "case number 2999"
        assert "case number 2999" in "\n".join(screen_lines(app))
        assert rendered and min(rendered) >= 3000 - page
        await pilot.press("home", "pagedown")
        await pilot.pause()
        assert table.cursor_row == page


async def test_keyboard_navigation_moves_the_cursor(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(CaseTable)
        await pilot.press("down", "down", "up")
        assert table.current_row is not None and table.current_row[LINE_EXT_ID] == "t1"
        await pilot.press("end")
        assert table.current_row[LINE_EXT_ID] == "q1"
        await pilot.press("home")
        assert table.current_row[LINE_EXT_ID] == "r1"


async def test_the_screen_fits_80x24_with_its_keys_in_the_footer(
        project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        lines = screen_lines(app)
        assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
        assert "project" in lines[0]  # the project name in the header
        assert lines[2].split()[:2] == ["Id", "Input"]
        footer = lines[-1]
        # x Archive, i Details, V and A are in help and the palette: the footer has no room
        for key in ("/ Filter", "a Add", "e Edit", "Label", "? Help", "q Quit",
                    "p Prompt", "R Run", "c Compare", "o Overview"):
            assert key in footer, key
        assert "palette" not in footer  # the ^p hint gives way to keys below 100 columns


async def test_a_wide_terminal_footer_keeps_the_palette_hint(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        await wait_for(pilot, lambda: "palette" in screen_lines(app)[-1], "the ^p hint")


async def test_no_cases_yet_says_how_to_add_one(project_path: Path, make_test_app) -> None:
    app = make_test_app(project_path, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "press a to add one" in "\n".join(screen_lines(app))
        # Edit, archive and open do not apply: dimmed, and pressing them does nothing.
        await pilot.press("e", "x", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, CasesScreen)
        assert not notifications(app, "error")


async def test_a_row_written_elsewhere_in_the_list_keeps_the_order(
        project: Path, make_test_app) -> None:
    """A written row replaces its line in place (bisect by id), not appended at the end."""
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CasesScreen) and app.session.store is not None
        case = await app.session.store.cases.edit((await app.session.store.cases.by_ext_id("r2")).id,
                                         input="changed")
        screen._show_line(case)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1"]
        assert screen.query_one(CaseTable).rows[2] == case_line(case)


async def test_the_cursor_stays_on_its_case_when_a_filter_result_lands(
        project: Path, make_test_app) -> None:
    """Moving while a filter runs (100,000 rows take a moment) is not undone by its result."""
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, CasesScreen)
        table = screen.query_one(CaseTable)
        screen._query = CaseQuery.parse("refund")
        screen._start_filter()  # a worker: it runs after this synchronous code
        table.move_cursor_to(2)  # the user moves to r2 meanwhile (r1 was under the cursor)
        # Keeping the case that was under the cursor when the filter started would land on
        # r1 (index 0); keeping the index would land on r2 only by clamping, so check both.
        await settle(app, pilot)
        assert _shown_ids(app) == ["r1", "r2"]
        assert table.current_row is not None and table.current_row[LINE_EXT_ID] == "r2"
        screen._query = CaseQuery.parse("")
        screen._start_filter()
        table.move_cursor_to(0)  # r1; the full list puts r2 at index 2, r1 at index 0
        await settle(app, pilot)
        assert table.current_row is not None and table.current_row[LINE_EXT_ID] == "r1"


async def test_an_empty_result_says_the_filter_hides_everything(
        project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"nothing-matches-this", "enter")
        await settle(app, pilot)
        text = "\n".join(screen_lines(app))
        assert "no case matches the filter" in text and "no cases yet" not in text
        assert "0 shown" in text


async def test_s_cycles_the_order_and_the_cursor_stays_on_its_case(
        project: Path, make_test_app) -> None:
    async with await Store.open(project) as store:
        v1 = await store.versions.latest()
        for ext, verdict in (("r1", Verdict.GOOD), ("t1", Verdict.BAD), ("q1", Verdict.UNSURE)):
            case = await store.cases.by_ext_id(ext)
            out = await store.outputs.add(case_id=case.id, version_id=v1.id, model="m",
                                         params={}, text=f"answer {ext}", status=OutputStatus.OK)
            await store.labels.write(out.id, verdict, "")
    app = make_test_app(project, model="m")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(CaseTable)
        assert _shown_ids(app) == ["r1", "t1", "r2", "q1"]  # the order they were added
        await pilot.press("down")
        orders = []
        for _ in range(5):
            await pilot.press("s")
            await settle(app, pilot)
            assert table.current_row is not None and table.current_row[LINE_EXT_ID] == "t1"
            orders.append((_shown_ids(app), screen_lines(app)[1]))
        assert [ids for ids, _ in orders] == [
            ["q1", "r2", "t1", "r1"],  # newest first
            ["r2", "r1", "q1", "t1"],  # input A to Z: Can, How, What, You
            ["t1", "q1", "r2", "r1"],  # verdict: bad, unsure, unlabelled, good
            ["r1", "r2", "t1", "q1"],  # tag: refund < refund edge < trash-talk; untagged last
            ["r1", "t1", "r2", "q1"],  # back to the order added
        ]
        assert "by newest" in orders[0][1] and "by verdict" in orders[2][1]
        assert "by" not in orders[4][1].split("shown")[-1]
        # The Label screen steps through the cases in the order shown.
        for _ in range(3):
            await pilot.press("s")
        await settle(app, pilot)
        await pilot.press("enter")
        labelled = await wait_for_screen(app, pilot, LabelScreen)
        async with await Store.open(project) as store:
            expected = [(await store.cases.by_ext_id(e)).id for e in ["t1", "q1", "r2", "r1"]]
        assert labelled.case_ids == expected


async def test_passing_through_cases_to_another_screen_reads_no_verdicts(
        project: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    # p, c, o from another screen return to Cases and push the next: Cases must not reload
    # its verdicts then (at 100,000 cases that held up the next screen's reads ~1.5 s),
    # only when it is shown again.
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        reads: list[int] = []
        store = app.session.store
        assert store is not None
        original = store.answers.labels_per_case

        async def counting(version_id: int, model: str | None = None):
            reads.append(version_id)
            return await original(version_id, model)

        monkeypatch.setattr(store.answers, "labels_per_case", counting)
        await pilot.press("o")
        await wait_for_screen(app, pilot, OverviewScreen)
        await settle(app, pilot)
        await pilot.press("c")  # Overview -> (Cases) -> Compare
        await wait_for_screen(app, pilot, CompareScreen)
        await settle(app, pilot)
        assert reads == []
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        await settle(app, pilot)
        assert reads  # shown again: verdicts read
