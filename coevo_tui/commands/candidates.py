"""`coevo candidates PATH [list] | accept IDS... | reject IDS...`: review the candidate queue
from the command line.

`list` (the default) prints the waiting candidates, oldest first, one line each (id,
rule, input, reason) and where each came from. `accept` moves candidates into the test
set; `reject` turns them down (kept, hidden, never proposed again). IDS are case ids as
printed (c57); `all` stands for every waiting candidate. A review is all or nothing: an
unknown id, or a case that is not a candidate, changes nothing (exit status 2).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from coevo_tui.commands.generate import candidate_line


def main(args: argparse.Namespace) -> int:
    """Entry point of `coevo candidates`."""
    return asyncio.run(candidates_command(args))


async def candidates_command(args: argparse.Namespace) -> int:
    from coevo_tui.domain.errors import UserError
    from coevo_tui.session import Session

    action = args.action
    ids = list(args.ids)
    if action == "list" and ids:
        raise UserError("list takes no ids (accept IDS... or reject IDS...)")
    if action != "list" and not ids:
        raise UserError(f"{action} needs case ids (or all)")
    async with await Session.open_existing(Path(args.path), reading=action == "list",
                                           missing="nothing was changed") as session:
        store = session.store
        waiting = await store.cases.candidates()
        if action == "list":
            if not waiting:
                print("no candidates waiting; coevo generate PATH asks the assistant for some")
                return 0
            versions = {v.id: v.number for v in await store.versions.all()}
            origins = await store.cases.by_ids(c.origin_case_id for c in waiting
                                               if c.origin_case_id is not None)
            for case in waiting:
                print(f"{candidate_line(case)}  [{_origin(case, versions, origins)}]")
            print(f"{len(waiting)} candidate{'' if len(waiting) == 1 else 's'} waiting")
            return 0
        if ids == ["all"]:
            chosen = waiting
        elif "all" in ids:
            raise UserError("all stands alone: all, or case ids")
        else:
            chosen = await store.cases.by_ext_ids(ids)
        if not chosen:
            print("no candidates waiting; nothing was changed")
            return 0
        if action == "accept":
            done = await store.cases.accept([c.id for c in chosen])
            verb = "accepted"
        else:
            done = await store.cases.reject([c.id for c in chosen])
            verb = "rejected"
    names = ", ".join(c.ext_id for c in done)
    print(f"{verb} {len(done)} case{'' if len(done) == 1 else 's'}: {names}")
    return 0


def _origin(case, versions, origins) -> str:  # type: ignore[no-untyped-def]
    """Where a candidate came from, as the review queue shows it."""
    if case.origin_case_id is not None:
        origin = origins.get(case.origin_case_id)
        return f"similar to {origin.ext_id if origin else case.origin_case_id}"
    if case.origin_version_id is not None:
        rule = f" for rule {case.rule_number}" if case.rule_number is not None else ""
        return f"generated under v{versions.get(case.origin_version_id, '?')}{rule}"
    return case.source.value
