"""`coevo label PATH CASE_ID VERSION good|bad|unsure`: label one output from the shell.

It labels the newest answer of the case under the version (of `--model` when given; when
several models answered and none is named, it refuses and names them). The label is a
human label; identical answers of the same case that are unlabelled (or only hold an
older carried label) inherit it as carried, in the same transaction. The previous label
stays in the history.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from coevo_tui.domain.errors import NotFound, ProjectFileError, UserError
from coevo_tui.domain.model import LabelSource, Output, OutputStatus, Verdict, first_line
from coevo_tui.store.project_file import check_project_file
from coevo_tui.store.store import Store


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo label`."""
    return asyncio.run(
        label_case(Path(args.path), args.case_id, args.version, Verdict(args.verdict),
                   args.rationale or "", args.model)
    )


def choose_output(outputs: dict[str, Output], case_ext_id: str, version_number: int,
                  model: str | None) -> Output:
    """The output to label among the newest one per model, or a UserError saying why none."""
    where = f"case {case_ext_id} under version {version_number}"
    if not outputs:
        raise NotFound(f"{where} has no output yet; run it first "
                       f"(coevo run PATH --version {version_number})")
    if model is not None:
        if model not in outputs:
            raise NotFound(f"{where} has no output from model {model} "
                           f"(outputs from: {', '.join(sorted(outputs))})")
        output = outputs[model]
    elif len(outputs) > 1:
        raise UserError(f"{where} has outputs from several models "
                        f"({', '.join(sorted(outputs))}); choose one with --model")
    else:
        output = next(iter(outputs.values()))
    if output.status == OutputStatus.ERROR:
        raise UserError(f"the newest output of {where} is an error "
                        f"({first_line(output.error or 'no message', 60)}); re-run it first")
    return output


async def label_case(path: Path, case_ext_id: str, version_number: int, verdict: Verdict,
                     rationale: str = "", model: str | None = None) -> int:
    """Label the newest output of a case under a version, print what happened."""
    if not path.exists():
        raise ProjectFileError(f"{path}: no such project file")
    check_project_file(path)
    async with await Store.open(path) as store:
        case = await store.cases.by_ext_id(case_ext_id)
        version = await store.versions.by_number(version_number)
        outputs = await store.outputs.newest_per_model(case.id, version.id)
        output = choose_output(outputs, case.ext_id, version.number, model)
        current = await store.labels.current(output.id)
        if (current is not None and current.source == LabelSource.HUMAN
                and current.verdict == verdict and current.rationale == rationale):
            print(f"{case.ext_id} under v{version.number} is already labelled "
                  f"{verdict.value}; nothing changed")
            return 0
        label, carried = await store.labels.write(output.id, verdict, rationale)
    was = ""
    if current is not None:
        by = "" if current.source == LabelSource.HUMAN else f", {current.source.value}"
        was = f" (was {current.verdict.value}{by})"
    models = f" ({output.model})" if len(outputs) > 1 else ""
    print(f"labelled {case.ext_id} under v{version.number}{models}: {label.verdict.value}{was}")
    if carried:
        n = len(carried)
        print(f"carried to {n} identical output{'' if n == 1 else 's'} of {case.ext_id}")
    return 0
