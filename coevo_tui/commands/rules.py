"""`coevo rules PATH [--version N] [--extract] [--assign]`: a version's policy rules and
how the test set covers them, headless.

Prints each rule of the version (default: the newest) with its active cases, the
candidates waiting and the pass rate of its cases' answers; a rule no case probes is
marked. `--extract` asks the assistant for the rules again (they replace the stored
ones; a version without rules gets them this way too); `--assign` asks it to point every
active case that probes no rule yet at the one it tests (hand-written and imported cases
have none until then).

Exit status: 0, 1 the assistant's call failed, 2 bad input, 3, 130.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from coevo_tui.llm.litellm_import import join_preload, preload_litellm


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo rules`."""
    if args.extract or args.assign:
        preload_litellm()
    try:
        return asyncio.run(rules_command(args))
    finally:
        join_preload()


async def rules_command(args: argparse.Namespace) -> int:
    from coevo_tui.assist import rules
    from coevo_tui.assist.events import RulesAssigned
    from coevo_tui.commands.assist_progress import drive, use_client_from_environment
    from coevo_tui.services.coverage import policy_coverage
    from coevo_tui.session import Session

    asks = args.extract or args.assign
    status = 0
    async with await Session.open_existing(
            Path(args.path), reading=not asks, missing="nothing was changed",
            model=args.model, api_base=args.api_base,
            assistant_model=args.assistant_model) as session:
        if asks:
            use_client_from_environment(session)
        store = session.store
        version = (await store.versions.by_number(args.version) if args.version is not None
                   else await store.versions.latest())
        if args.extract:
            result = await rules.extract(session, version)
            if result.rules:
                await store.rules.replace(version.id, result.rules)
            else:
                print(f"no rules extracted from v{version.number}: {result.error}", flush=True)
                status = 1
        if args.assign:
            def show(event: object) -> None:
                if isinstance(event, RulesAssigned):
                    for case_id, number in event.rules.items():
                        rule = f"rule {number}" if number is not None else "no rule"
                        print(f"{cases.get(case_id, case_id)}  {rule}", flush=True)

            cases = {case_id: ext_id for case_id, ext_id, _ in await store.cases.active_lines()}
            summary = await drive(rules.assign(session, version), "assigning rules", show)
            status = status or (1 if summary is None or summary.errors else 0)
        rows = await policy_coverage(store, version, session.configured_model(),
                                     include_unassigned=True)
        if not any(row.number is not None for row in rows):
            print(f"v{version.number} has no rules yet; coevo rules {args.path} --extract"
                  " asks the assistant for them")
            return status
        print(f"rules of v{version.number}: cases, candidates waiting, pass rate")
        for row in rows:
            rate = "-" if row.pass_rate is None else f"{row.pass_rate:.0%}"
            mark = "  <- no cases" if row.uncovered and row.number is not None else ""
            number = "-" if row.number is None else str(row.number)
            print(f"{number:>3}  {row.title}: {row.active_cases} cases,"
                  f" {row.candidates_waiting} waiting, {rate}{mark}")
    return status
