"""`coevo eval PATH [--check] [--baseline N] [--revision M] [--model MODEL]
[--min-pass-rate X] [--judge [--min-kappa K]] [--json] [--junit FILE]`: the CI gate.

Compares the newest answer of every active case under two versions (by default the
newest version, the revision, against its parent, the baseline), and reports both pass
rates and the fixed and regressed cases.

With `--check` it is a gate. First it answers the revision's cases that have no answer
yet of the model under test (`--model`, the project's model or ``COEVO_MODEL``), exactly
as `coevo run` does (`commands/run.run_missing`: same runner, cache, retries and resume;
a bar on a terminal, plain lines otherwise, all on stderr). With no model under test
configured (only the offline fallback), nothing is run and the cases not run are
reported. Then it exits 1 when the gate fails (domain/gate.py: a regression, a pass rate
below `--min-pass-rate`, errors from the model), 0 when it passes; bad input exits 2 and
changes nothing. Without `--check` nothing is run and the exit status is 0.

`--json` prints one JSON document on stdout instead of the lines (which are then not
printed; what goes to stderr stays there); `--junit FILE` writes a JUnit XML report
(commands/eval_report.py). `--judge` lets the judge's stored verdicts decide the
revision's unlabelled answers, only when its agreement with the user is high enough
(domain/gate.py), and with `--check` and an assistant model configured first judges the
revision's answers that have neither a label nor a verdict.

Which versions and which model's answers are compared is decided by the same rule as the
Compare screen's (`services/comparison.py`); when several models answered and none is
the model under test, `--model` must say which. A `--model` with no answers anywhere in
the project is refused (a typing mistake must not store an error per case): answer it
first with `coevo run --model M`, or make it the project's model. `--candidate` is the old name
of `--revision`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from coevo_tui.commands.eval_report import (
    EvalReport,
    ReportCase,
    json_document,
    junit_tree,
    text_lines,
)
from coevo_tui.domain.agreement import agreement
from coevo_tui.domain.errors import UserError, shown_name
from coevo_tui.domain.gate import (
    DEFAULT_MIN_KAPPA,
    gate_reasons,
    judge_refusal,
    with_judge_verdicts,
)
from coevo_tui.domain.model import CaseState, OutputStatus, PromptVersion
from coevo_tui.domain.status import ComparisonStatus, compare_all, summarize
from coevo_tui.services.comparison import choose_model, choose_versions, merge_counts
from coevo_tui.session import Session

if TYPE_CHECKING:
    from coevo_tui.llm.runner import RunSummary

REGRESSION_EXIT_STATUS = 1
MAX_CONCURRENCY = 512


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo eval`."""
    if args.check:
        # litellm takes seconds to import: start now so it overlaps opening the project.
        from coevo_tui.llm.litellm_import import (
            join_preload,
            preload_litellm,
            use_litellm_http_handler_for_openai,
        )

        preload_litellm()
        use_litellm_http_handler_for_openai()  # headless runs never stream
    try:
        return asyncio.run(evaluate(
            Path(args.path), check=args.check, baseline=args.baseline,
            revision=args.revision, model=getattr(args, "model", None),
            api_base=getattr(args, "api_base", None),
            min_pass_rate=getattr(args, "min_pass_rate", None),
            as_json=getattr(args, "json", False), junit=getattr(args, "junit", None),
            judge=getattr(args, "judge", False),
            min_kappa=getattr(args, "min_kappa", None),
            concurrency=getattr(args, "concurrency", None),
            # Read by the command line's boundary: what an interrupt leaves behind.
            on_answering=lambda: setattr(args, "answering", True)))
    finally:
        if args.check:
            join_preload()


def _check_options(*, check: bool, min_pass_rate: float | None, min_kappa: float | None,
                   judge: bool, junit: Path | None, concurrency: int | None) -> None:
    """Refuse bad options in one line before the project is opened."""
    if min_pass_rate is not None:
        if not check:
            raise UserError("--min-pass-rate gates: use it with --check")
        if not (math.isfinite(min_pass_rate) and 0 <= min_pass_rate <= 1):
            raise UserError(f"--min-pass-rate must be between 0 and 1 (0.8 for 80%), "
                            f"not {min_pass_rate:g}")
    if min_kappa is not None:
        if not judge:
            raise UserError("--min-kappa is the bar for --judge: use it with --judge")
        if not (math.isfinite(min_kappa) and -1 <= min_kappa <= 1):
            raise UserError(f"--min-kappa must be between -1 and 1, not {min_kappa:g}")
    if concurrency is not None and not 1 <= concurrency <= MAX_CONCURRENCY:
        raise UserError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    if junit is not None:
        folder = junit.parent if str(junit.parent) else Path(".")
        if junit.is_dir():
            raise UserError(f"--junit {shown_name(junit)} is a folder; name a file")
        if not folder.is_dir():
            raise UserError(f"--junit {shown_name(junit)}: no such folder "
                            f"{shown_name(folder)}")


async def evaluate(path: Path, *, check: bool = False, baseline: int | None = None,
                   revision: int | None = None, model: str | None = None,
                   api_base: str | None = None, min_pass_rate: float | None = None,
                   as_json: bool = False, junit: Path | str | None = None,
                   judge: bool = False, min_kappa: float | None = None,
                   concurrency: int | None = None, out: TextIO | None = None,
                   err: TextIO | None = None,
                   on_answering: Callable[[], None] | None = None) -> int:
    """Report the comparison (lines, or JSON with `as_json`; JUnit XML to `junit`); with
    `check`, first run the revision's missing answers, then return 1 when the gate fails,
    else 0. Bad input raises UserError before anything is changed. `on_answering` is
    called when answers start being stored (from then on the project changes)."""
    out = out or sys.stdout
    err = err or sys.stderr
    junit_path = None if junit is None else Path(junit)
    _check_options(check=check, min_pass_rate=min_pass_rate, min_kappa=min_kappa,
                   judge=judge, junit=junit_path, concurrency=concurrency)
    bar = DEFAULT_MIN_KAPPA if min_kappa is None else min_kappa
    async with await Session.open_existing(path, reading=True, missing="nothing evaluated",
                                           model=model, api_base=api_base) as session:
        store = session.store
        pair = choose_versions(await store.versions.all(), baseline, revision, purpose="eval")
        base, cand = pair.baseline, pair.revision
        under_test = session.configured_model()
        asked = None if model is None else session.model_choice().model
        answered = merge_counts(await store.outputs.cases_per_model(base.id),
                                await store.outputs.cases_per_model(cand.id))
        if asked is not None:
            await _check_asked_model(session, asked)
        measured = None
        if judge:
            pairs = [p for v in await store.versions.all()
                     for p in await store.judgements.pairs(v.id)]
            measured = agreement(pairs)
            refusal = judge_refusal(measured, bar)
            if refusal is not None:
                raise UserError(refusal)

        ran = not_run_because = None
        if check:
            ran, not_run_because = await _answer_missing(session, cand, under_test,
                                                         concurrency, err, on_answering)
            if ran is not None:
                answered = merge_counts(await store.outputs.cases_per_model(base.id),
                                        await store.outputs.cases_per_model(cand.id))
        compared = choose_model(pair, answered, asked=asked, under_test=under_test)
        if judge and check and session.assistant_configured() and not session.read_only:
            await _judge_unjudged(session, cand, compared, err)

        rows = [r for r in await store.cases.rows() if r.state == CaseState.ACTIVE.value]
        base_answers = await store.answers.per_case(base.id, compared)
        cand_answers = await store.answers.per_case(cand.id, compared)
        judged: set[int] = set()
        if judge:
            waiting = [a.output.id for a in cand_answers.values()
                       if a.label is None and a.output.status == OutputStatus.OK]
            cand_answers, judged = with_judge_verdicts(
                cand_answers, await store.judgements.newest_for_outputs(waiting))
        project_name = session.project.name
    ids = [r.id for r in rows]
    statuses = compare_all(ids, base_answers, cand_answers)
    cand_summary = summarize(ids, cand_answers, statuses)
    regressed = [cid for cid in ids if statuses[cid] == ComparisonStatus.REGRESSED]
    report = EvalReport(
        project=project_name, baseline=base, revision=cand, model=compared,
        cases=[ReportCase(r.id, r.ext_id, r.input) for r in rows],
        baseline_answers=base_answers, revision_answers=cand_answers, statuses=statuses,
        baseline_summary=summarize(ids, base_answers), revision_summary=cand_summary,
        checked=check, min_pass_rate=min_pass_rate, ran=ran, judged=judged,
        judge_agreement=measured, min_kappa=bar if judge else None,
        reasons=gate_reasons(
            baseline=base.number, revision=cand.number, regressed=len(regressed),
            regressed_by_judge=sum(1 for cid in regressed if cid in judged),
            good=cand_summary.good, labelled=cand_summary.labelled,
            min_pass_rate=min_pass_rate, run_errors=0 if ran is None else ran.errors))

    if not_run_because is not None and cand_summary.missing:
        n = cand_summary.missing
        print(f"coevo: {n} case{'' if n == 1 else 's'} not run under v{cand.number}: "
              f"{not_run_because}", file=err, flush=True)
    if as_json:
        print(json.dumps(json_document(report), indent=2, ensure_ascii=False), file=out)
    else:
        for line in text_lines(report):
            print(line, file=out)
    out.flush()
    if junit_path is not None:
        _write_junit(report, junit_path)
    if check and report.reasons:
        for reason in report.reasons:
            print(f"coevo: {reason}", file=err, flush=True)
        return REGRESSION_EXIT_STATUS
    return 0


async def _check_asked_model(session: Session, asked: str) -> None:
    """Refuse a --model that answered nothing in the project: most likely a typing
    mistake, which would otherwise store an error for every case."""
    seen: dict[str, int] = {}
    for version in await session.store.versions.all():
        seen = merge_counts(seen, await session.store.outputs.cases_per_model(version.id))
    if not seen.get(asked):
        known = sorted(m for m, n in seen.items() if n)
        raise UserError(f"no outputs from model {asked} in this project"
                        + (f" (outputs from: {', '.join(known)})" if known else "")
                        + f"; answer its first version with coevo run --model {asked}")


async def _answer_missing(session: Session, version: PromptVersion,
                          under_test: str | None, concurrency: int | None, err: TextIO,
                          on_answering: Callable[[], None] | None = None
                          ) -> tuple[RunSummary | None, str | None]:
    """Run the version's cases that have no ok answer of the model under test (as
    `coevo run`, lines on `err`): (the run's summary, None), or (None, why nothing could
    be run)."""
    from coevo_tui.commands.assist_progress import use_client_from_environment
    from coevo_tui.commands.run import DEFAULT_CONCURRENCY, run_missing

    if under_test is None:
        return None, ("no model under test is configured (--model, the project's model or "
                      "COEVO_MODEL) to run them")
    if session.read_only:
        return None, f"{shown_name(session.path)} is read-only"
    use_client_from_environment(session, concurrency or DEFAULT_CONCURRENCY)
    if on_answering is not None:
        on_answering()
    return await run_missing(session, version, out=err), None


async def _judge_unjudged(session: Session, version: PromptVersion, model: str | None, err: TextIO) -> None:
    """The judge's verdict on every answer of `model` under `version` that has neither a
    label nor a verdict (as `coevo judge`), lines on `err`."""
    from coevo_tui.assist.judge import judge
    from coevo_tui.commands.assist_progress import drive

    if not await session.store.judgements.unlabelled_outputs(version.id, model):
        return
    await drive(judge(session, version, model), f"judging v{version.number}",
                lambda event: None, out=err)


def _write_junit(report: EvalReport, target: Path) -> None:
    """Write the JUnit report whole or not at all (a temporary file, then renamed)."""
    tree = junit_tree(report)
    folder = target.parent if str(target.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # as an ordinary file, not mkstemp's owner-only
        with os.fdopen(fd, "wb") as handle:
            tree.write(handle, encoding="utf-8", xml_declaration=True)
            handle.write(b"\n")
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
