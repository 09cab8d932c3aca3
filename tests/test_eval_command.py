"""`coevo eval PATH [--check] [--baseline N] [--revision M] [--model MODEL]` (for CI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coevo_tui.__main__ import main
from coevo_tui.domain.model import CaseState, OutputStatus, Verdict
from coevo_tui.store import NewCase, Store

G, B, U = Verdict.GOOD, Verdict.BAD, Verdict.UNSURE

# case ext id -> (v2 answer, v3 answer); an answer is (text, verdict or None) or None.
SCENARIO = {
    "fixed-1": (("promises a refund", B), ("points to the form", G)),
    "regress-1": (("refuses a slur", G), ("repeats the slur", B)),
    "same-1": (("hello there", G), ("hello  there", None)),  # carried over: still good
    "changed-1": (("yes", G), ("no", None)),
    "new-1": (None, ("fresh", U)),
    "notrun-1": (("old", B), None),
    "errored-1": (("fine", G), ("", None)),  # v3 answer is an error
}


async def _build(path: Path, *, extra_model: bool = False, regress: bool = True) -> None:
    async with await Store.open(path) as store:
        v2 = (await store.versions.create("v2 rules", note="")).id
        v3 = (await store.versions.create("v3 rules", note="")).id
        for ext_id, answers in SCENARIO.items():
            if ext_id == "regress-1" and not regress:
                continue
            case = await store.cases.add(NewCase(f"Input of {ext_id}\nsecond line",
                                                ext_id=ext_id))
            for version, answer in zip((v2, v3), answers):
                if answer is None:
                    continue
                text, verdict = answer
                error = ext_id == "errored-1" and version == v3
                out = await store.outputs.add(
                    case_id=case.id, version_id=version, model="m", params={}, text=text,
                    status=OutputStatus.ERROR if error else OutputStatus.OK,
                    error="timeout" if error else None)
                if verdict is not None:
                    await store.labels.write(out.id, verdict)
                else:
                    await store.labels.inherit(out.id)
        # An archived case is hidden, so its regression does not count.
        hidden = await store.cases.add(NewCase("hidden", ext_id="archived-1"))
        for version, verdict in ((v2, G), (v3, B)):
            out = await store.outputs.add(case_id=hidden.id, version_id=version, model="m",
                                         params={}, text=str(verdict), status=OutputStatus.OK)
            await store.labels.write(out.id, verdict)
        await store.cases.set_state(hidden.id, CaseState.ARCHIVED)
        if extra_model:
            first = (await store.cases.by_ext_id("fixed-1")).id
            await store.outputs.add(case_id=first, version_id=v3, model="other", params={},
                                   text="x", status=OutputStatus.OK)


def test_report_lists_pass_rates_fixed_and_regressed(project_path: Path, capsys) -> None:
    asyncio.run(_build(project_path))
    assert main(["eval", str(project_path)]) == 0  # without --check a regression is reported
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "v2 -> v3 on 7 active cases, model m"
    # v2: bad (fixed-1, notrun-1), good (regress-1, same-1, changed-1, errored-1); new-1 not run.
    assert out[1] == "v2: pass rate 66.7% (4 good of 6 labelled); 0 unlabelled, 0 errors, 1 not run"
    # v3: fixed good, regress bad, same good (carried), new unsure; changed unlabelled;
    # errored is an error; notrun has no output.
    assert out[2] == "v3: pass rate 50.0% (2 good of 4 labelled); 1 unlabelled, 1 error, 1 not run"
    assert out[3:8] == [
        "fixed: 1",
        "  fixed-1  Input of fixed-1",
        "regressed: 1",
        "  regress-1  Input of regress-1",
        "other: changed, unlabelled 1, error 1, new 1, not run 1, still good 1",
    ]
    assert len(out) == 8


def test_check_exits_1_on_a_regression(project_path: Path, capsys) -> None:
    asyncio.run(_build(project_path))
    assert main(["eval", str(project_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "1 case regressed" in err


def test_check_exits_0_without_a_regression(project_path: Path, capsys) -> None:
    asyncio.run(_build(project_path, regress=False))
    assert main(["eval", str(project_path), "--check"]) == 0
    assert "regressed: 0" in capsys.readouterr().out


def test_explicit_versions_and_defaults_for_one_side(project_path: Path, capsys) -> None:
    asyncio.run(_build(project_path))
    # Reversed, the regression is a fix and vice versa.
    assert main(["eval", str(project_path), "--check", "--baseline", "3",
                 "--revision", "2"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("v3 -> v2")
    assert "fixed: 1\n  regress-1" in out and "regressed: 1\n  fixed-1" in out
    assert main(["eval", str(project_path), "--revision", "3"]) == 0  # baseline: its parent
    assert capsys.readouterr().out.startswith("v2 -> v3")
    assert main(["eval", str(project_path), "--baseline", "1"]) == 0  # revision: newest
    assert capsys.readouterr().out.startswith("v1 -> v3")


def test_candidate_still_works_as_the_old_name_of_revision(project_path: Path, capsys) -> None:
    """Scripts written for `--candidate` keep working: a hidden alias of `--revision`."""
    asyncio.run(_build(project_path))
    assert main(["eval", str(project_path), "--check", "--baseline", "3",
                 "--candidate", "2"]) == 1
    old = capsys.readouterr()
    assert main(["eval", str(project_path), "--check", "--baseline", "3",
                 "--revision", "2"]) == 1
    new = capsys.readouterr()
    assert old.out.startswith("v3 -> v2") and (old.out, old.err) == (new.out, new.err)
    assert main(["eval", str(project_path), "--candidate", "1"]) == 2
    assert "v1 has no earlier version" in capsys.readouterr().err


def test_eval_help_names_revision_and_says_candidate_is_deprecated(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--help"])
    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--revision M" in help_text
    assert "--candidate M, its old name, still works but is deprecated" in help_text
    assert "[--candidate" not in help_text  # hidden from the usage line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--baseline", "9"], "no version 9"),
        (["--revision", "9"], "no version 9"),
        (["--baseline", "2", "--revision", "2"], "both v2"),
        (["--baseline", "3"], "v3 is the newest version"),
        (["--revision", "1"], "v1 has no earlier version"),
        (["--model", "nobody"], "no outputs from model nobody"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(project_path: Path, capsys, argv: list[str],
                                            message: str) -> None:
    asyncio.run(_build(project_path))
    assert main(["eval", str(project_path), "--check", *argv]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and message in captured.err
    assert captured.out == ""


def test_several_models_need_model(project_path: Path, capsys) -> None:
    asyncio.run(_build(project_path, extra_model=True))
    assert main(["eval", str(project_path), "--check"]) == 2
    assert "several models (m, other)" in capsys.readouterr().err
    assert main(["eval", str(project_path), "--check", "--model", "m"]) == 1


def test_one_version_is_not_enough(project_path: Path, capsys) -> None:
    async def create() -> None:  # a new project holds v1 only
        async with await Store.open(project_path):
            pass

    asyncio.run(create())
    assert main(["eval", str(project_path)]) == 2
    assert "two prompt versions" in capsys.readouterr().err


def test_missing_project_exits_2_and_is_not_created(project_path: Path, capsys) -> None:
    assert main(["eval", str(project_path), "--check"]) == 2
    assert not project_path.exists()
