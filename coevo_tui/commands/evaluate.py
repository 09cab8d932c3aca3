"""`coevo eval PATH [--check] [--baseline N] [--revision M] [--model MODEL]`: for CI.

Compares the newest answer of every active case under two versions (by default the
newest two), prints both pass rates and the fixed and regressed cases, and with
`--check` exits 1 when any case regressed (good to bad), 0 otherwise. Cases not yet run
under the revision are reported but do not fail the check: run them first with
`coevo run`. Bad arguments exit 2.

When outputs come from several models, `--model` must say which to compare (mixing
models would compare a model with another, not a version with another).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from coevo_tui.domain.errors import ProjectFileError, UserError
from coevo_tui.domain.model import CaseState, PromptVersion, first_line
from coevo_tui.domain.status import (
    ComparisonStatus,
    VersionSummary,
    compare_all,
    summarize,
)
from coevo_tui.store.project_file import check_project_file
from coevo_tui.store.store import Store

REGRESSION_EXIT_STATUS = 1


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo eval`."""
    return asyncio.run(
        evaluate(Path(args.path), check=args.check, baseline=args.baseline,
                 revision=args.revision, model=getattr(args, "model", None))
    )


async def _pick_versions(store: Store, baseline: int | None, revision: int | None
                         ) -> tuple[PromptVersion, PromptVersion]:
    versions = await store.versions()
    if baseline is None and revision is None:
        if len(versions) < 2:
            raise UserError("eval needs two prompt versions; save another with coevo prompt")
        return versions[-2], versions[-1]
    if revision is None:
        assert baseline is not None
        base = await store.version(baseline)
        rev = versions[-1]
        if rev.id == base.id:
            raise UserError(f"v{base.number} is the newest version; name an older --baseline "
                            f"or a --revision")
        return base, rev
    rev = await store.version(revision)
    if baseline is None:
        if rev.parent_id is None:
            raise UserError(f"v{rev.number} has no earlier version; name a --baseline")
        return await store.version_by_id(rev.parent_id), rev
    base = await store.version(baseline)
    if base.id == rev.id:
        raise UserError(f"--baseline and --revision are both v{base.number}")
    return base, rev


async def _pick_model(store: Store, base: PromptVersion, rev: PromptVersion,
                      model: str | None) -> str | None:
    base_models = await store.models_with_outputs(base.id)
    rev_models = await store.models_with_outputs(rev.id)
    if model is not None:
        if model not in base_models and model not in rev_models:
            known = sorted(set(base_models) | set(rev_models))
            raise UserError(
                f"no outputs from model {model} under v{base.number} or v{rev.number}"
                + (f" (outputs from: {', '.join(known)})" if known else "")
            )
        return model
    models = sorted(set(base_models) | set(rev_models))
    if len(models) > 1:
        raise UserError(f"outputs under v{base.number} and v{rev.number} come from several "
                        f"models ({', '.join(models)}); choose one with --model")
    return models[0] if models else None


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
    if not path.exists():
        raise ProjectFileError(f"{path}: no such project file")
    check_project_file(path)
    async with await Store.open_to_read(path) as store:
        base, rev = await _pick_versions(store, baseline, revision)
        model = await _pick_model(store, base, rev, model)
        rows = [r for r in await store.case_rows() if r.state == CaseState.ACTIVE.value]
        base_answers = await store.case_outputs_with_labels(base.id, model)
        rev_answers = await store.case_outputs_with_labels(rev.id, model)
    ids = [r.id for r in rows]
    statuses = compare_all(ids, base_answers, rev_answers)
    base_summary = summarize(ids, base_answers)
    rev_summary = summarize(ids, rev_answers, statuses)

    on_model = f", model {model}" if model else ""
    print(f"v{base.number} -> v{rev.number} on {len(ids)} active cases{on_model}", file=out)
    for version, summary in ((base, base_summary), (rev, rev_summary)):
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
        f"{s.text} {n}" for s, n in rev_summary.statuses.items()
        if s not in (ComparisonStatus.FIXED, ComparisonStatus.REGRESSED)
    ]
    if others:
        print("other: " + ", ".join(others), file=out)
    regressed = rev_summary.statuses.get(ComparisonStatus.REGRESSED, 0)
    if check and regressed:
        print(f"coevo: {regressed} case{'' if regressed == 1 else 's'} regressed "
              f"(good under v{base.number}, bad under v{rev.number})", file=sys.stderr)
        return REGRESSION_EXIT_STATUS
    return 0
