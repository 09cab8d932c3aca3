"""`coevo generate PATH [--n N] [--rule K] [--similar-to CASE_ID]`: ask the assistant for a
batch of candidates, headless.

Without --similar-to: N hard or ambiguous inputs under the newest version, spread over
its rules (extracted first if it has none), or all probing rule K. With --similar-to: N
variants of that case. Each kept candidate is stored in the review queue as it arrives
and printed as one line (id, rule, input, the assistant's reason); near duplicates are
dropped and counted; the last line sums the batch up. Review with `coevo candidates`.

Exit status: 0 done, 1 the assistant's call failed (nothing usable came back), 2 bad
input, 3 the machine refused a write, 130 interrupted (the candidates printed are kept).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from coevo_tui.llm.litellm_import import join_preload, preload_litellm

DEFAULT_N = 10
DEFAULT_SIMILAR_N = 5


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo generate`."""
    preload_litellm()  # seconds to import: overlap it with opening the project
    try:
        return asyncio.run(generate_command(args))
    finally:
        join_preload()


def candidate_line(case: Any) -> str:
    """One candidate as the commands print it: id, rule, input, reason (one line)."""
    rule = f"rule {case.rule_number}" if case.rule_number is not None else "no rule"
    text = " ".join(case.input.split())
    reason = f"  ({' '.join(case.reason.split())})" if case.reason else ""
    return f"{case.ext_id}  {rule}  {text}{reason}"


async def generate_command(args: argparse.Namespace) -> int:
    from coevo_tui.assist import candidates, similar
    from coevo_tui.assist.events import CandidateAdded, RulesExtracted
    from coevo_tui.commands.assist_progress import drive, use_client_from_environment
    from coevo_tui.domain.errors import UserError
    from coevo_tui.session import Session

    if args.similar_to is not None and args.rule is not None:
        raise UserError("--rule and --similar-to do not go together (a similar case keeps"
                        " the rule of its origin)")
    n = args.n if args.n is not None else (
        DEFAULT_SIMILAR_N if args.similar_to is not None else DEFAULT_N)
    async with await Session.open_existing(
            Path(args.path), missing="nothing was generated", model=args.model,
            api_base=args.api_base, assistant_model=args.assistant_model) as session:
        use_client_from_environment(session)
        store = session.store
        version = await store.versions.latest()
        assistant = session.assistant_choice().describe()
        if args.similar_to is not None:
            case = await store.cases.by_ext_id(args.similar_to)
            events = similar.generate(session, case.id, n)
            what = f"{n} case{'s' if n != 1 else ''} similar to {case.ext_id}"
        else:
            events = candidates.generate(session, n, args.rule)
            rule = f" for rule {args.rule}" if args.rule is not None else ""
            what = f"{n} case{'s' if n != 1 else ''} under v{version.number}{rule}"
        print(f"{session.project.name}: asking {assistant} for {what}", flush=True)

        def show(event: object) -> None:
            if isinstance(event, CandidateAdded):
                print(candidate_line(event.case), flush=True)
            elif isinstance(event, RulesExtracted):
                titles = "; ".join(f"{r.number}. {r.title}" for r in event.rules)
                print(f"rules of v{version.number}: {titles}", flush=True)

        summary = await drive(events, "generating", show)
    if summary is None:
        return 1
    return 1 if summary.errors and not summary.kept else 0
