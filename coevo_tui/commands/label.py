"""`coevo label PATH CASE_ID VERSION good|bad|unsure`: label one output from the shell.

It labels the newest answer of the case under the version, chosen by the rule the screens
use (services/labelling.py): `--model`'s, else the model under test's, else the only
model's; when several models answered and none of these says which, it refuses and names
them. The label is a
human label; identical answers of the same case that are unlabelled (or only hold an
older carried label) inherit it as carried, in the same transaction. The previous label
stays in the history.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from coevo_tui.domain.model import LabelSource, Verdict
from coevo_tui.services.labelling import choose_output
from coevo_tui.session import Session


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo label`."""
    return asyncio.run(
        label_case(Path(args.path), args.case_id, args.version, Verdict(args.verdict),
                   args.rationale or "", args.model)
    )


async def label_case(path: Path, case_ext_id: str, version_number: int, verdict: Verdict,
                     rationale: str = "", model: str | None = None) -> int:
    """Label the newest output of a case under a version, print what happened."""
    async with await Session.open_existing(path, missing="nothing labelled") as session:
        store = session.store
        case = await store.cases.by_ext_id(case_ext_id)
        version = await store.versions.by_number(version_number)
        outputs = await store.outputs.newest_per_model(case.id, version.id)
        output = choose_output(outputs, case.ext_id, version.number, model,
                               session.configured_model())
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
