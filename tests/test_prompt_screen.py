"""The Prompt screen with Pilot: edit, save version N+1 with a note (and motivating cases),
template validation as a notification, read-only view, edit-from, and diffs with +/- lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList, SelectionList

from coevo_tui.app import CoevoApp
from coevo_tui.domain.model import OutputStatus, Verdict
from coevo_tui.screens.cases import CasesScreen
from coevo_tui.screens.dialogs.save_version import SaveVersionScreen
from coevo_tui.screens.prompt import PromptScreen, VersionDiffView
from coevo_tui.store import NewCase, Store

from pilot_support import (burst, notifications, open_screen, screen_text, settle, wait_for,
                           wait_for_screen)

V1 = "Be polite.\nNever promise refunds."


@pytest.fixture
async def project(project_path: Path) -> Path:
    store = await Store.open(project_path, instructions=V1, note="first")
    try:
        await store.cases.add_many([NewCase(input="refund me now", ext_id="r1"),
                               NewCase(input="hello", ext_id="h1")], source_name="t")
    finally:
        await store.close()
    return project_path


async def versions_of(project: Path):
    store = await Store.open(project)
    try:
        return await store.versions.all()
    finally:
        await store.close()


async def label_r1_bad(project: Path) -> tuple[int, int]:
    """Answer r1 under v1 and label the answer bad; returns (case id, label id)."""
    store = await Store.open(project)
    try:
        v1 = await store.versions.latest()
        case = await store.cases.by_ext_id("r1")
        out = await store.outputs.add(case_id=case.id, version_id=v1.id, model="m", params={},
                                     text="Sure, refund promised!", status=OutputStatus.OK)
        label, _ = await store.labels.write(out.id, Verdict.BAD, "never promise refunds")
    finally:
        await store.close()
    return case.id, label.id


async def save(app: CoevoApp, pilot, note: str) -> None:
    """ctrl+s, the note, enter: back on the editor once the save has finished."""
    await pilot.press("ctrl+s")
    await wait_for_screen(app, pilot, SaveVersionScreen)
    await pilot.press(*note)
    await pilot.press("enter")
    await wait_for_screen(app, pilot, PromptScreen)
    await settle(app, pilot)


async def test_saving_creates_the_next_version_with_its_note(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        assert screen.instructions_area.text == V1
        assert "editing from v1; ctrl+s saves v2" in screen_text(app)
        screen.instructions_area.move_cursor(screen.instructions_area.document.end)
        await pilot.press("enter", *"No threats.")
        await save(app, pilot, "threats")
        assert any("Saved v2" in message for message in notifications(app))
        assert "editing from v2; ctrl+s saves v3" in screen_text(app)
        assert "v2 (base)" in screen_text(app)
    versions = await versions_of(project)
    assert [v.number for v in versions] == [1, 2]
    assert versions[1].instructions == V1 + "\nNo threats."
    assert versions[1].note == "threats"
    assert versions[1].parent_id == versions[0].id
    assert versions[0].instructions == V1  # immutable


async def test_a_template_without_input_is_refused_with_a_notification(
        project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        screen.template_area.focus()
        await pilot.press(*"M: {x}")
        await save(app, pilot, "tmpl")
        errors = notifications(app, "error")
        assert errors == ["the user template must contain {input}"]
        assert screen.template_area.text == "M: {x}"  # the draft stays
        # Fix it and save again: the note typed before is offered again.
        screen.template_area.clear()
        screen.template_area.focus()
        await pilot.press(*"M: {input}")
        await pilot.press("ctrl+s")
        await wait_for_screen(app, pilot, SaveVersionScreen)
        from textual.widgets import Input

        assert app.screen.query_one(Input).value == "tmpl"
        await pilot.press("enter")
        await wait_for_screen(app, pilot, PromptScreen)  # saved
        await settle(app, pilot)
    versions = await versions_of(project)
    assert [v.number for v in versions] == [1, 2]
    assert versions[1].user_template == "M: {input}" and versions[1].note == "tmpl"


async def test_nothing_changed_saves_nothing(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(app, pilot, "prompt")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert any("nothing to save" in message for message in notifications(app))
    assert len(await versions_of(project)) == 1


async def test_bad_and_unsure_cases_are_offered_as_motivating(
        project: Path, make_test_app) -> None:
    case_id, label_id = await label_r1_bad(project)
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        screen.instructions_area.move_cursor(screen.instructions_area.document.end)
        await pilot.press(*" Ask.")
        await pilot.press("ctrl+s")
        await wait_for_screen(app, pilot, SaveVersionScreen)
        choices = app.screen.query_one(SelectionList)
        await wait_for(pilot, lambda: choices.option_count, "the choices load")
        assert choices.option_count == 1 and len(choices.selected) == 1
        assert "r1 bad: never promise refunds" in screen_text(app)
        await pilot.press(*"refunds")
        await pilot.press("enter")
        await wait_for_screen(app, pilot, PromptScreen)  # saved
        await settle(app, pilot)
    store = await Store.open(project)
    try:
        v2 = await store.versions.latest()
        assert await store.versions.motivating_cases(v2.id) == [(case_id, label_id)]
    finally:
        await store.close()


async def test_view_a_version_read_only_and_edit_from_it(project: Path, make_test_app) -> None:
    store = await Store.open(project)
    try:
        await store.versions.create("Version two words.", note="second")
    finally:
        await store.close()
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        assert screen.instructions_area.text == "Version two words."
        await pilot.press("shift+tab")  # to the version list
        assert isinstance(app.focused, OptionList)
        await pilot.press("down", "enter")  # v1, read-only
        await pilot.pause()
        assert screen.mode == "view"
        text = screen_text(app)
        assert "Version 1" in text and "read-only" in text and "Never promise refunds." in text
        assert screen.instructions_area.text == "Version two words."  # the draft is intact
        await pilot.press("e")  # v1 becomes the base of the next version
        await pilot.pause()
        assert screen.mode == "edit" and screen.instructions_area.text == V1
        assert "editing from v1; ctrl+s saves v3" in screen_text(app)
        await pilot.press(*"Brief. ")
        await save(app, pilot, "from v1")
    versions = await versions_of(project)
    assert versions[-1].number == 3 and versions[-1].instructions.startswith("Brief. ")


async def test_diff_between_two_versions_shows_plus_and_minus_lines(
        project: Path, monkeypatch: pytest.MonkeyPatch, make_test_app) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    store = await Store.open(project)
    try:
        await store.versions.create("Be polite.\nRefunds go to a person.", note="v2")
        await store.versions.create("Be polite.\nRefunds go to a person.\nNo threats.",
                                   note="v3")
    finally:
        await store.close()
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press("shift+tab")
        await pilot.press("d")  # highlighted v3 against its parent v2
        await pilot.pause()
        assert screen.mode == "diff"
        text = screen_text(app)
        assert "Diff v2 → v3" in text and "+No threats." in text
        assert "-Refunds" not in text
        await pilot.press("down", "down", "m", "up", "up", "d")  # marked v1 vs v3
        await pilot.pause()
        text = screen_text(app)
        assert "Diff v1 → v3" in text
        assert "-Never promise refunds." in text and "+Refunds go to a person." in text
        assert " Be polite." in text  # context keeps its space marker
        assert "* v1" in text  # the mark shows as a character, not only a colour
        kinds = {line.kind.value for line in screen.query_one(VersionDiffView).lines}
        assert {"added", "removed", "context", "header", "hunk"} <= kinds
        await pilot.press("escape")  # back to the editor, then off the screen
        await pilot.pause()
        assert screen.mode == "edit"


async def test_leaving_with_unsaved_changes_asks_for_a_second_esc(
        project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press(*"draft ")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        assert any("Unsaved changes" in message for message in notifications(app))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
    assert len(await versions_of(project)) == 1


async def test_the_prompt_screen_fits_80x24(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(app, pilot, "prompt")
        lines = screen_text(app).splitlines()
        assert len(lines) == 24
        text = "\n".join(lines)
        for needed in ("Versions", "v1 (base)", "Instructions", "Be polite.",
                       "User template", "Save version"):
            assert needed in text, needed


async def test_keys_that_overflow_the_footer_do_not_show_beside_the_palette_hint(
        project: Path, make_test_app) -> None:
    # On the version list the keys fill more than 120 columns; the ones that do not fit
    # used to show through the palette hint's last column ("^p paletteO").
    app = make_test_app(project, model=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(app, pilot, "prompt")
        await pilot.press("shift+tab")
        await settle(app, pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "e Edit from" in footer  # the version list's keys: more than fit
        assert footer.rstrip().endswith("^p palette"), footer


async def test_an_edit_left_by_another_key_comes_back(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press(*"Kept: ")
        await open_screen(app, pilot, "label")  # what c, R, o, v do: replace this screen
        await pilot.press("escape")
        await wait_for_screen(app, pilot, CasesScreen)
        screen = await open_screen(app, pilot, "prompt")
        await wait_for(pilot, lambda: screen.instructions_area.text.startswith("Kept: "),
                       "the edit is back")
        assert any("unsaved edit is back" in message for message in notifications(app))
        assert "editing from v1" in screen_text(app)
        await pilot.press("escape", "escape")  # esc twice drops it for good
        await pilot.pause()
        screen = await open_screen(app, pilot, "prompt")
        assert screen.instructions_area.text == V1


async def test_esc_without_edits_leaves_at_once(project: Path, make_test_app) -> None:
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
        assert not any("Unsaved" in message for message in notifications(app))


async def test_a_note_typed_straight_after_ctrl_s_goes_into_the_note(
        project: Path, make_test_app) -> None:
    # ctrl+s and the note in one burst: the dialog opens at once (its list of motivating
    # cases loads inside it), so the note does not land in the instructions, and enter
    # before the list has loaded still records the preselected bad cases.
    case_id, label_id = await label_r1_bad(project)
    app = make_test_app(project, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot, "prompt")
        screen.instructions_area.move_cursor(screen.instructions_area.document.end)
        await pilot.press(*" Ask.")
        burst(app, ["ctrl+s", *"quick note", "enter"])
        await wait_for(pilot, lambda: len(screen.versions) == 2, "v2 saved")
        await settle(app, pilot)
        assert isinstance(app.screen, PromptScreen)
        assert screen.instructions_area.text == V1 + " Ask."
    v2 = (await versions_of(project))[-1]
    assert (v2.number, v2.note, v2.instructions) == (2, "quick note", V1 + " Ask.")
    store = await Store.open(project)
    try:
        assert await store.versions.motivating_cases(v2.id) == [(case_id, label_id)]
    finally:
        await store.close()
