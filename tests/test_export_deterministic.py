"""Exports a team can keep in git: `coevo export` of an unchanged project is byte for byte
the same file, in every format, even after the project was opened in between; JSONL holds
one case a line, cases in the order they were added and keys in a fixed order, so a
label change changes that case's line and no other."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from coevo_tui.__main__ import main as coevo
from coevo_tui.commands import transfer
from coevo_tui.domain.model import CaseState, OutputStatus, Verdict
from coevo_tui.store import NewCase, Store
from coevo_tui.store.formats import PROMPTFOO_CONFIG_FILE, PROMPTFOO_TESTS_FILE

from pilot_support import settle

CASE_KEYS = ["id", "input", "tags", "source", "state", "outputs"]
OUTPUT_KEYS = ["version", "model", "text", "status", "error", "label", "rationale",
               "label_source"]
# Ids added out of alphabetical order: the export keeps the order they were added in.
IDS = ["zeta", "alpha", "mid", "10", "9"]
TIME_LIKE = re.compile(rb"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}:\d{2}|\d{10}")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = coevo(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _project(path: Path) -> dict[str, int]:
    """Five cases (one with a note, one archived), two versions, labelled outputs.
    Returns the output id of each case's first answer."""
    async with await Store.open(path) as store:
        await store.settings.update(model="openai/gpt-4o-mini", params={"temperature": 0})
        ids = await store.cases.add_many(
            [NewCase(input=f"input of {ext}", ext_id=ext, tags=("b", "a"),
                     note="a note" if ext == "mid" else "") for ext in IDS], kind="create")
        await store.cases.set_state(ids[3], CaseState.ARCHIVED)
        v1 = await store.versions.by_number(1)
        v2 = await store.versions.create("Answer briefly.", None, note="v2")
        first: dict[str, int] = {}
        for ext, case_id in zip(IDS, ids):
            for version in (v1, v2):
                out = await store.outputs.add(case_id=case_id, version_id=version.id,
                                              model="m", params={}, text=f"{ext} under "
                                              f"v{version.number}", status=OutputStatus.OK)
                first.setdefault(ext, out.id)
            await store.labels.write(first[ext], Verdict.BAD, f"why {ext} is bad")
        return first


def make_project(path: Path) -> dict[str, int]:
    return asyncio.run(_project(path))


async def _relabel(path: Path, output_id: int) -> None:
    async with await Store.open(path) as store:
        await store.labels.write(output_id, Verdict.GOOD, "on second thought")


def export_all(capsys, project: Path, where: Path) -> dict[str, bytes]:
    """Every export of `project` into folder `where`: name -> bytes."""
    where.mkdir()
    for name in ("cases.jsonl", "cases.csv", "single.yaml"):
        assert cli(capsys, "export", str(project), str(where / name))[0] == 0
    assert cli(capsys, "export", str(project), str(where / "pf"), "--format", "promptfoo",
               "--versions", "1,2")[0] == 0
    code, out, _ = cli(capsys, "export", str(project), "-")
    assert code == 0
    (where / "stdout.jsonl").write_text(out, encoding="utf-8", newline="")
    return {str(p.relative_to(where)): p.read_bytes()
            for p in sorted(where.rglob("*")) if p.is_file()}


def test_an_unchanged_project_exports_byte_identical_files(tmp_path: Path, capsys) -> None:
    project = tmp_path / "p.db"
    make_project(project)
    first = export_all(capsys, project, tmp_path / "one")
    assert set(first) == {"cases.jsonl", "cases.csv", "single.yaml", "stdout.jsonl",
                          f"pf/{PROMPTFOO_CONFIG_FILE}", f"pf/{PROMPTFOO_TESTS_FILE}"}
    # Opened and closed again by the store and by a read-only command in between.
    asyncio.run(_open_and_close(project))
    assert cli(capsys, "versions", str(project))[0] == 0
    second = export_all(capsys, project, tmp_path / "two")
    assert second == first
    assert first["stdout.jsonl"] == first["cases.jsonl"]
    # Both exports may fall in one second: that no file holds a date or a time at all
    # is what shows there is no time of export in them.
    for name, data in first.items():
        assert not TIME_LIKE.search(data), name


async def _open_and_close(path: Path) -> None:
    async with await Store.open(path) as store:
        await store.cases.all()


async def test_opening_the_project_in_the_app_changes_no_export(project_path: Path,
                                                                make_test_app,
                                                                tmp_path: Path,
                                                                capsys) -> None:
    await _project(project_path)

    async def exports(name: str) -> dict[str, str]:
        texts = {}
        for fmt, file in (("jsonl", f"{name}.jsonl"), ("csv", f"{name}.csv"),
                          ("promptfoo", f"{name}.yaml")):
            assert await transfer.export_cases(project_path, str(tmp_path / file), fmt) == 0
            texts[fmt] = (tmp_path / file).read_text(encoding="utf-8")
        capsys.readouterr()
        return texts

    before = await exports("before")
    app = make_test_app(model=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.session.store is not None
    assert await exports("after") == before


def test_jsonl_is_one_case_a_line_in_added_order_with_fixed_keys(tmp_path: Path,
                                                                capsys) -> None:
    project = tmp_path / "p.db"
    make_project(project)
    target = tmp_path / "cases.jsonl"
    assert cli(capsys, "export", str(project), str(target))[0] == 0
    data = target.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    lines = data.decode("utf-8").split("\n")[:-1]
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == IDS
    for record in records:
        expected = CASE_KEYS if record["id"] != "mid" else \
            ["id", "input", "tags", "source", "state", "note", "outputs"]
        assert list(record) == expected
        assert [o["version"] for o in record["outputs"]] == [1, 2]
        for output in record["outputs"]:
            assert list(output) == OUTPUT_KEYS
    assert records[0]["tags"] == ["b", "a"]  # as the user gave them
    # No time of export (nor any other time) in the file.
    assert not TIME_LIKE.search(data)


def test_a_label_change_changes_exactly_that_cases_line(tmp_path: Path, capsys) -> None:
    project = tmp_path / "p.db"
    first_outputs = make_project(project)
    before_file, after_file = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    assert cli(capsys, "export", str(project), str(before_file))[0] == 0
    asyncio.run(_relabel(project, first_outputs["mid"]))
    assert cli(capsys, "export", str(project), str(after_file))[0] == 0
    before = before_file.read_text(encoding="utf-8").splitlines()
    after = after_file.read_text(encoding="utf-8").splitlines()
    assert len(before) == len(after) == len(IDS)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed == [IDS.index("mid")]
    output = json.loads(after[changed[0]])["outputs"][0]
    assert (output["label"], output["rationale"]) == ("good", "on second thought")


def test_a_label_change_changes_only_that_test_in_the_promptfoo_tests_file(
        tmp_path: Path, capsys) -> None:
    project = tmp_path / "p.db"
    first_outputs = make_project(project)
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(capsys, "export", str(project), str(one), "--format", "promptfoo")[0] == 0
    asyncio.run(_relabel(project, first_outputs["alpha"]))
    assert cli(capsys, "export", str(project), str(two), "--format", "promptfoo")[0] == 0
    assert (one / PROMPTFOO_CONFIG_FILE).read_bytes() == (two / PROMPTFOO_CONFIG_FILE).read_bytes()
    tests_before = (one / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8")
    tests_after = (two / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8")
    blocks_before = re.split(r"(?m)^(?=- description: )", tests_before)
    blocks_after = re.split(r"(?m)^(?=- description: )", tests_after)
    differ = [b.splitlines()[0] for a, b in zip(blocks_before, blocks_after) if a != b]
    assert len(blocks_before) == len(blocks_after)
    assert differ == ["- description: alpha"]
