"""`coevo eval PATH [--check] [--baseline N] [--revision M] [--model MODEL]`: for CI.

Compares the newest answer of every active case under two versions (by default the
newest version, the revision, against its parent, the baseline), prints both pass rates
and the fixed and regressed cases, and with `--check` exits 1 when any case regressed
(good to bad), 0 otherwise. Cases not yet run under the revision are reported but do
not fail the check: run them first with `coevo run`. Bad arguments exit 2.

Which versions and which model's answers are compared is decided by the same rule as the
Compare screen's (`services/comparison.py`); when several models answered and none is
the model under test, `--model` must say which (mixing models would compare a model with
another, not a version with another). `--candidate` is the old name of `--revision`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from coevo_tui.domain.model import CaseState, first_line
from coevo_tui.domain.status import (
    ComparisonStatus,
    VersionSummary,
    compare_all,
    summarize,
)
from coevo_tui.services.comparison import choose_model, choose_versions, merge_counts
from coevo_tui.session import Session

REGRESSION_EXIT_STATUS = 1


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo eval`."""
    return asyncio.run(
        evaluate(Path(args.path), check=args.check, baseline=args.baseline,
                 revision=args.revision, model=getattr(args, "model", None))
    )


def _rate(summary: VersionSummary) -> str:
    rate = summary.pass_rate
    if rate is None:
        return "pass rate n/a (nothing labelled)"
    return f"pass rate {rate:.1%} ({summary.good} good of {summary.labelled} labelled)"


def _details(summary: VersionSummary) -> str:
    errors = f"{summary.errors} error{'' if summary.errors == 1 else 's'}"
    parts = [f"{summary.unlabelled} unlabelled", errors]
    if summary.missing:
        parts.append(f"{summary.missing} not run")
    return ", ".join(parts)


async def evaluate(path: Path, *, check: bool = False, baseline: int | None = None,
                   revision: int | None = None, model: str | None = None,
                   out: TextIO | None = None) -> int:
    """Print the comparison report; return 1 if `check` and a case regressed, else 0."""
    out = out or sys.stdout
    async with await Session.open_existing(path, reading=True, missing="nothing evaluated"
                                           ) as session:
        store = session.store
        pair = choose_versions(await store.versions.all(), baseline, revision, purpose="eval")
        base, cand = pair.baseline, pair.revision
        answered = merge_counts(await store.outputs.cases_per_model(base.id),
                                await store.outputs.cases_per_model(cand.id))
        model = choose_model(pair, answered, asked=model,
                             under_test=session.configured_model())
        rows = [r for r in await store.cases.rows() if r.state == CaseState.ACTIVE.value]
        base_answers = await store.answers.per_case(base.id, model)
        cand_answers = await store.answers.per_case(cand.id, model)
    ids = [r.id for r in rows]
    statuses = compare_all(ids, base_answers, cand_answers)
    base_summary = summarize(ids, base_answers)
    cand_summary = summarize(ids, cand_answers, statuses)

    on_model = f", model {model}" if model else ""
    print(f"v{base.number} -> v{cand.number} on {len(ids)} active cases{on_model}", file=out)
    for version, summary in ((base, base_summary), (cand, cand_summary)):
        print(f"v{version.number}: {_rate(summary)}; {_details(summary)}", file=out)
    by_id = {r.id: r for r in rows}
    for status in (ComparisonStatus.FIXED, ComparisonStatus.REGRESSED):
        listed = [cid for cid in ids if statuses[cid] == status]
        print(f"{status.text}: {len(listed)}", file=out)
        id_width = max((len(by_id[cid].ext_id) for cid in listed), default=0)
        for cid in listed:
            row = by_id[cid]
            print(f"  {row.ext_id:<{id_width}}  {first_line(row.input, 70)}", file=out)
    others = [
        f"{s.text} {n}" for s, n in cand_summary.statuses.items()
        if s not in (ComparisonStatus.FIXED, ComparisonStatus.REGRESSED)
    ]
    if others:
        print("other: " + ", ".join(others), file=out)
    regressed = cand_summary.statuses.get(ComparisonStatus.REGRESSED, 0)
    if check and regressed:
        print(f"coevo: {regressed} case{'' if regressed == 1 else 's'} regressed "
              f"(good under v{base.number}, bad under v{cand.number})", file=sys.stderr)
        return REGRESSION_EXIT_STATUS
    return 0
