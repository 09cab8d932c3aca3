"""How long the comparison reads take on a large project (prints figures, asserts nothing).

Builds a project of N active cases (default 100,000) with one answer per case under two
versions, half of them labelled, then times the bulk reads the Compare and Cases screens
and `coevo eval` use: `Store.answers.per_case` (per version), `compare_all` +
`summarize`, `Store.answers.labels_per_case`, and the whole `coevo eval --check` command.

The outputs and labels are written with plain sqlite3 executemany, because going through
`Store.outputs.add` one commit at a time would take minutes to build the fixture; the
timed parts use only the Store API.

    .venv/bin/python benchmarks/bench_comparison.py [N]
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from coevo_tui.commands.evaluate import evaluate
from coevo_tui.domain.status import compare_all, summarize
from coevo_tui.store import NewCase, Store, utc_now


async def build(path: Path, n: int) -> None:
    async with await Store.open(path) as store:
        await store.cases.add_many([NewCase(f"input number {i}") for i in range(n)])
        await store.versions.create("v2", note="")
        await store.versions.create("v3", note="")
    now = utc_now()
    db = sqlite3.connect(path)
    with db:
        ids = [r[0] for r in db.execute("SELECT id FROM cases ORDER BY id")]
        versions = [r[0] for r in db.execute("SELECT id FROM prompt_version ORDER BY number")]
        rows = []
        for version in versions[1:]:
            for cid in ids:
                text = f"answer {cid}" if (cid + version) % 5 else f"changed {cid} {version}"
                rows.append((cid, version, "m", "{}", text, "ok", 120.0, 0.0001, now))
        db.executemany(
            "INSERT INTO output (case_id, version_id, model, params, text, status,"
            " latency_ms, cost, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        outputs = [r[0] for r in db.execute("SELECT id FROM output ORDER BY id")]
        verdicts = ("good", "bad", "unsure")
        db.executemany(
            "INSERT INTO label (output_id, verdict, rationale, source, created_at)"
            " VALUES (?, ?, '', 'human', ?)",
            [(oid, verdicts[oid % 3], now) for oid in outputs if oid % 2])
        db.execute("INSERT INTO event (at, kind, entity, payload) VALUES (?, ?, ?, ?)",
                   (now, "benchmark", "project", json.dumps({"cases": n})))
    db.close()


async def measure(path: Path) -> None:
    async with await Store.open(path) as store:
        versions = await store.versions.all()
        base, cand = versions[-2].id, versions[-1].id
        t = time.perf_counter()
        base_answers = await store.answers.per_case(base, "m")
        t_read = time.perf_counter() - t
        cand_answers = await store.answers.per_case(cand, "m")
        ids = [r.id for r in await store.cases.rows()]
        t = time.perf_counter()
        statuses = compare_all(ids, base_answers, cand_answers)
        summarize(ids, base_answers)
        summarize(ids, cand_answers, statuses)
        t_pure = time.perf_counter() - t
        t = time.perf_counter()
        verdicts = await store.answers.labels_per_case(cand, "m")
        t_verdicts = time.perf_counter() - t
    print(f"case_outputs_with_labels (one version): {t_read:.2f} s for {len(base_answers)} cases")
    print(f"compare_all + 2 x summarize:            {t_pure:.2f} s")
    print(f"verdict_by_case:                        {t_verdicts:.2f} s ({len(verdicts)} labels)")
    t = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        await evaluate(path, check=True, out=io.StringIO())
    print(f"coevo eval --check (whole command):     {time.perf_counter() - t:.2f} s")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        asyncio.run(build(path, n))
        print(f"built {n} cases x 2 versions in {time.perf_counter() - t:.1f} s")
        asyncio.run(measure(path))


if __name__ == "__main__":
    main()
