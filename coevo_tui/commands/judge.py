"""`coevo judge PATH [--version N] [--model M] [--assistant-model M] [--concurrency C]`:
the judge, headless.

Every answer under the version (default: the newest) of the model under test (or
--model's) that has no label and no judgement yet gets the assistant's verdict and a
one-line reason, stored as a suggestion (the TUI shows it dimmed; one key accepts it).
Calls go out at --concurrency at once (default 8; one at a time on the offline model);
each verdict is stored as it arrives. The last lines sum up the batch and the judge's
agreement with the user's labels under the version.

Exit status: 0 every answer judged, 1 some calls failed, 2 bad input, 3 the machine
refused a write, 130 interrupted (the verdicts stored are kept; judging again does the
rest).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from coevo_tui.llm.litellm_import import (
    join_preload,
    preload_litellm,
    use_litellm_http_handler_for_openai,
)

MAX_CONCURRENCY = 512


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo judge`."""
    preload_litellm()
    use_litellm_http_handler_for_openai()  # the judge never streams
    try:
        return asyncio.run(judge_command(args))
    finally:
        join_preload()


async def judge_command(args: argparse.Namespace) -> int:
    from coevo_tui.assist.judge import judge
    from coevo_tui.commands.assist_progress import drive, use_client_from_environment
    from coevo_tui.domain.agreement import agreement
    from coevo_tui.domain.errors import UserError
    from coevo_tui.services.overview import pick_model
    from coevo_tui.session import Session

    if args.concurrency is not None and not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise UserError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}")
    async with await Session.open_existing(
            Path(args.path), missing="nothing was judged", model=args.model,
            api_base=args.api_base, assistant_model=args.assistant_model) as session:
        use_client_from_environment(session, args.concurrency)
        store = session.store
        version = (await store.versions.by_number(args.version) if args.version is not None
                   else await store.versions.latest())
        # The answers judged: --model's, else the model under test's, else the model with
        # the most answers under the version (the Overview's rule).
        model = pick_model(session.configured_model() if args.model is None else
                           session.model_choice().model,
                           await store.outputs.cases_per_model(version.id))
        assistant = session.assistant_choice().describe()
        waiting = len(await store.judgements.unlabelled_outputs(version.id, model))
        print(f"{session.project.name} v{version.number}: judging {waiting} unlabelled"
              f" answer{'' if waiting == 1 else 's'}{f' of {model}' if model else ''}"
              f" with {assistant}", flush=True)
        summary = await drive(judge(session, version, model), f"judging v{version.number}",
                              lambda event: None)
        measured = agreement(await store.judgements.pairs(version.id, model))
        print(f"judge-human agreement under v{version.number}: {measured.line()}", flush=True)
    if summary is None:
        return 1
    return 1 if summary.errors else 0
