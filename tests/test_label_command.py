"""`coevo label PATH CASE_ID VERSION good|bad|unsure [--rationale TEXT] [--model M]`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coevo_tui.__main__ import main
from coevo_tui.domain.model import Label, LabelSource, OutputStatus, Verdict
from coevo_tui.store import NewCase, Store


def run(coro):
    return asyncio.run(coro)


async def _setup(path: Path) -> dict[str, int]:
    async with await Store.open(path) as store:
        c1 = await store.cases.add(NewCase("Can I get a refund?", ext_id="refund-1"))
        c2 = await store.cases.add(NewCase("Two models answered", ext_id="two"))
        await store.cases.add(NewCase("Never run", ext_id="idle"))
        c4 = await store.cases.add(NewCase("Failed", ext_id="failed"))
        v1 = (await store.versions.latest()).id
        v2 = (await store.versions.create("Be helpful.", note="")).id

        async def add(case_id, version_id, text, model="m", status=OutputStatus.OK):
            return (await store.outputs.add(case_id=case_id, version_id=version_id, model=model,
                                           params={}, text=text, status=status)).id

        ids = {
            "old_v2": await add(c1.id, v2, "Maybe."),
            "newest_v2": await add(c1.id, v2, "See the refund form."),
            "same_v1": await add(c1.id, v1, "See the  refund form.\n"),
            "two_m": await add(c2.id, v2, "answer m"),
            "two_n": await add(c2.id, v2, "answer n", model="n"),
            "failed": await add(c4.id, v2, "", status=OutputStatus.ERROR),
        }
        await add(c1.id, v2, "half", status=OutputStatus.CANCELLED)
        return ids


async def _history(path: Path, output_id: int) -> list[Label]:
    async with await Store.open(path) as store:
        return await store.labels.history(output_id)


async def _label_count(path: Path) -> int:
    async with await Store.open(path) as store:
        return len(await store.events.recent(100_000, kind="label"))


def test_labels_the_newest_output_and_carries_to_identical_ones(project_path: Path,
                                                                capsys) -> None:
    ids = run(_setup(project_path))
    assert main(["label", str(project_path), "refund-1", "2", "bad",
                 "--rationale", "must not promise"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["labelled refund-1 under v2: bad",
                   "carried to 1 identical output of refund-1"]
    [label] = run(_history(project_path, ids["newest_v2"]))
    assert (label.verdict, label.rationale, label.source) == (
        Verdict.BAD, "must not promise", LabelSource.HUMAN)
    assert run(_history(project_path, ids["old_v2"])) == []  # not the newest: untouched
    [carried] = run(_history(project_path, ids["same_v1"]))
    assert carried.source == LabelSource.CARRIED and carried.carried_from == label.id


def test_relabelling_keeps_the_old_label_in_history(project_path: Path, capsys) -> None:
    ids = run(_setup(project_path))
    assert main(["label", str(project_path), "refund-1", "2", "bad"]) == 0
    assert main(["label", str(project_path), "refund-1", "2", "good"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == "labelled refund-1 under v2: good (was bad)"
    history = run(_history(project_path, ids["newest_v2"]))
    assert [x.verdict for x in history] == [Verdict.BAD, Verdict.GOOD]
    # The carried copy followed the new human label.
    assert [x.verdict for x in run(_history(project_path, ids["same_v1"]))] == [
        Verdict.BAD, Verdict.GOOD]


def test_the_same_label_again_changes_nothing(project_path: Path, capsys) -> None:
    run(_setup(project_path))
    assert main(["label", str(project_path), "refund-1", "2", "good"]) == 0
    before = run(_label_count(project_path))
    assert main(["label", str(project_path), "refund-1", "2", "good"]) == 0
    assert "already labelled good; nothing changed" in capsys.readouterr().out
    assert run(_label_count(project_path)) == before


def test_confirming_a_carried_label_records_a_human_label(project_path: Path, capsys) -> None:
    ids = run(_setup(project_path))
    assert main(["label", str(project_path), "refund-1", "2", "good"]) == 0
    assert main(["label", str(project_path), "refund-1", "1", "good"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "labelled refund-1 under v1: good (was good, carried)")
    sources = [x.source for x in run(_history(project_path, ids["same_v1"]))]
    assert sources == [LabelSource.CARRIED, LabelSource.HUMAN]


def test_several_models_need_model_and_the_error_names_them(project_path: Path,
                                                             capsys) -> None:
    ids = run(_setup(project_path))
    assert main(["label", str(project_path), "two", "2", "good"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "several models (m, n)" in err and "--model" in err
    assert run(_history(project_path, ids["two_m"])) == []
    assert main(["label", str(project_path), "two", "2", "unsure", "--model", "n"]) == 0
    assert capsys.readouterr().out.startswith("labelled two under v2 (n): unsure")
    assert run(_history(project_path, ids["two_m"])) == []
    assert [x.verdict for x in run(_history(project_path, ids["two_n"]))] == [Verdict.UNSURE]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuch", "2", "good"], "no case with id 'nosuch'"),
        (["refund-1", "7", "good"], "no version 7"),
        (["idle", "2", "good"], "case idle under version 2 has no output yet"),
        (["refund-1", "2", "good", "--model", "zzz"], "no output from model zzz"),
        (["failed", "2", "bad"], "is an error"),
    ],
)
def test_errors_are_one_line_exit_2_and_change_nothing(project_path: Path, capsys,
                                                       argv: list[str], message: str) -> None:
    run(_setup(project_path))
    capsys.readouterr()
    before = run(_label_count(project_path))
    assert main(["label", str(project_path), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err
    assert run(_label_count(project_path)) == before


def test_a_missing_project_is_not_created(project_path: Path, capsys) -> None:
    assert main(["label", str(project_path), "c1", "1", "good"]) == 2
    assert not project_path.exists()
