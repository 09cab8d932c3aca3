"""`coevo prompt`, `coevo versions`, `coevo diff`, and the version diff they print."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from coevo_tui.__main__ import main
from coevo_tui.commands.prompt import render_diff, use_colour
from coevo_tui.domain.model import PromptVersion
from coevo_tui.domain.versiondiff import DiffKind, version_diff
from coevo_tui.store import NewCase, Store


def _versions(path: Path) -> list[PromptVersion]:
    async def read() -> list[PromptVersion]:
        async with await Store.open(path) as store:
            return await store.versions.all()

    return asyncio.run(read())


def _event_count(path: Path) -> int:
    async def read() -> int:
        async with await Store.open(path) as store:
            return len(await store.events.recent(100_000))

    return asyncio.run(read())


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.fixture
def instructions(tmp_path: Path) -> Path:
    f = tmp_path / "instructions.txt"
    f.write_text("You moderate a gaming chat.\nTrash talk is fine.\nSlurs are not.\n")
    return f


# ------------------------------------------------------------------ coevo prompt
def test_prompt_saves_the_next_version(project_path: Path, instructions: Path,
                                       tmp_path: Path, capsys) -> None:
    template = tmp_path / "template.txt"
    template.write_text("Message: {input}\n")
    assert main(["prompt", str(project_path), "--file", str(instructions),
                 "--template", str(template), "--note", "first policy"]) == 0
    assert capsys.readouterr().out == "saved version 2\n"
    saved = _versions(project_path)[-1]
    assert saved.number == 2
    # The final newline ends the file's last line; it is not part of the prompt.
    assert saved.instructions == "You moderate a gaming chat.\nTrash talk is fine.\nSlurs are not."
    assert saved.user_template == "Message: {input}"
    assert saved.note == "first policy"
    assert saved.parent_id == _versions(project_path)[0].id


def test_prompt_twice_counts_up_and_says_when_nothing_changed(project_path: Path,
                                                              instructions: Path, capsys) -> None:
    args = ["prompt", str(project_path), "--file", str(instructions), "--note", "n"]
    assert main(args) == 0 and main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        "saved version 2", "saved version 3 (identical to version 2)"]


@pytest.mark.parametrize("problem", ["missing", "folder", "not-utf8", "empty"])
def test_bad_instructions_file_exits_2_and_saves_nothing(project_path: Path, tmp_path: Path,
                                                         instructions: Path, capsys,
                                                         problem: str) -> None:
    assert main(["prompt", str(project_path), "--file", str(instructions),
                 "--note", "ok"]) == 0
    capsys.readouterr()
    before = _event_count(project_path)
    bad = tmp_path / "bad.txt"
    if problem == "folder":
        bad.mkdir()
    elif problem == "not-utf8":
        bad.write_bytes("line one\nline two caf\u00e9\n".encode("latin-1"))
    elif problem == "empty":
        bad.write_text("  \n\n")
    assert main(["prompt", str(project_path), "--file", str(bad), "--note", "x"]) == 2
    err = _one_error_line(capsys)
    assert str(bad) in err and "nothing saved" in err
    if problem == "not-utf8":
        assert "line 2" in err and "UTF-8" in err
    assert [v.number for v in _versions(project_path)] == [1, 2]
    assert _event_count(project_path) == before


def test_template_without_input_placeholder_exits_2(project_path: Path, instructions: Path,
                                                    tmp_path: Path, capsys) -> None:
    template = tmp_path / "template.txt"
    template.write_text("Message: {text}\n")
    assert main(["prompt", str(project_path), "--file", str(instructions),
                 "--template", str(template), "--note", "n"]) == 2
    assert "{input}" in _one_error_line(capsys)
    assert not project_path.exists()  # checked before the project was created


def test_bad_file_does_not_create_a_project(project_path: Path, tmp_path: Path,
                                            capsys) -> None:
    assert main(["prompt", str(project_path), "--file", str(tmp_path / "nope.txt"),
                 "--note", "n"]) == 2
    _one_error_line(capsys)
    assert not project_path.exists()


def test_prompt_refuses_a_file_that_is_not_a_project(tmp_path: Path, instructions: Path,
                                                      capsys) -> None:
    not_project = tmp_path / "notes.db"
    not_project.write_text("hello")
    assert main(["prompt", str(not_project), "--file", str(instructions),
                 "--note", "n"]) == 2
    _one_error_line(capsys)
    assert not_project.read_text() == "hello"


# ------------------------------------------------------------------ coevo versions
def test_versions_lists_number_note_first_line_and_motivating_cases(project_path: Path,
                                                                    capsys) -> None:
    async def setup() -> None:
        async with await Store.open(project_path) as store:
            a = await store.cases.add(NewCase("a"))
            b = await store.cases.add(NewCase("b"))
            await store.versions.create("\nNo slurs.\nTrash talk is fine.", "Say: {input}",
                                       note="ban slurs", motivating=[(a.id, None), (b.id, None)])

    asyncio.run(setup())
    assert main(["versions", str(project_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("v1  ") and "motivated by 0 cases" in lines[0]
    assert lines[1] == "    note: initial empty instructions"
    assert lines[2] == "    instructions: (empty)"
    assert lines[3].startswith("v2  ") and "motivated by 2 cases" in lines[3]
    assert "+template" in lines[3]
    assert lines[4] == "    note: ban slurs"
    assert lines[5] == "    instructions: No slurs."
    assert len(lines) == 6


def test_versions_of_a_missing_project_exits_2_without_creating_it(project_path: Path,
                                                                  capsys) -> None:
    assert main(["versions", str(project_path)]) == 2
    _one_error_line(capsys)
    assert not project_path.exists()


# ------------------------------------------------------------------ coevo diff
def _two_versions(path: Path) -> None:
    async def setup() -> None:
        async with await Store.open(path) as store:
            await store.versions.create("Be kind.\nNo slurs.\nBe brief.", note="a")
            await store.versions.create("Be kind.\nNo slurs or threats.\nBe brief.",
                                       "User: {input}", note="b")

    asyncio.run(setup())


def test_diff_prints_a_plain_unified_diff(project_path: Path, capsys) -> None:
    _two_versions(project_path)
    assert main(["diff", str(project_path), "2", "3"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # captured output is not a terminal
    assert out.splitlines() == [
        "--- v2 instructions",
        "+++ v3 instructions",
        "@@ -1,3 +1,3 @@",
        " Be kind.",
        "-No slurs.",
        "+No slurs or threats.",
        " Be brief.",
        "--- v2 template (none)",
        "+++ v3 template",
        "@@ -0,0 +1 @@",
        "+User: {input}",
    ]


def test_diff_of_identical_versions_says_so(project_path: Path, capsys) -> None:
    _two_versions(project_path)
    assert main(["diff", str(project_path), "3", "3"]) == 0
    assert capsys.readouterr().out == "v3 and v3 have the same instructions and template\n"


def test_diff_with_an_unknown_version_exits_2(project_path: Path, capsys) -> None:
    _two_versions(project_path)
    assert main(["diff", str(project_path), "2", "9"]) == 2
    assert "no version 9" in _one_error_line(capsys)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Terminal())
    assert not use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Terminal())
    monkeypatch.setenv("NO_COLOR", "")  # an empty NO_COLOR does not count (no-color.org)
    assert use_colour(_Terminal())


def test_rendered_colour_marks_added_and_removed_lines() -> None:
    a = PromptVersion(1, 1, "keep\nold", None, None, "", "")
    b = PromptVersion(2, 2, "keep\nnew", None, 1, "", "")
    lines = version_diff(a, b)
    coloured = render_diff(lines, colour=True).splitlines()
    assert "\x1b[31m-old\x1b[0m" in coloured and "\x1b[32m+new\x1b[0m" in coloured
    assert " keep" in coloured  # context stays plain
    assert render_diff(lines, colour=False) == "".join(x.text + "\n" for x in lines)


# ------------------------------------------------------------------ the diff lines
def test_version_diff_classifies_every_line() -> None:
    a = PromptVersion(1, 1, "--- a rule\nsame\nold", "In: {input}", None, "", "")
    b = PromptVersion(2, 2, "same\nnew\n+ extra", "In: {input}", 1, "", "")
    lines = version_diff(a, b)
    assert [(x.kind, x.text) for x in lines] == [
        (DiffKind.HEADER, "--- v1 instructions"),
        (DiffKind.HEADER, "+++ v2 instructions"),
        (DiffKind.HUNK, "@@ -1,3 +1,3 @@"),
        (DiffKind.REMOVED, "---- a rule"),  # a removed line that looks like a header
        (DiffKind.CONTEXT, " same"),
        (DiffKind.REMOVED, "-old"),
        (DiffKind.ADDED, "+new"),
        (DiffKind.ADDED, "++ extra"),
    ]  # the equal templates add nothing


def test_version_diff_of_equal_versions_is_empty() -> None:
    a = PromptVersion(1, 1, "same", None, None, "", "")
    b = PromptVersion(2, 2, "same", "", 1, "", "")  # no template and an empty one agree
    assert version_diff(a, b) == []
