"""Benchmark of the Cases screen at 1,000, 10,000 and 100,000 cases.

For each size it builds a project file once, then starts the app several times, each in a
fresh process (headless, 80x24, through `App.run_test`), and prints medians of:

- start to first rows: from spawning the process (so Python start-up and every import
  count) to the table showing rows;
- start to interactive: ... to a key press (down) having moved the cursor, measured
  right after the first rows appear;
- start to all loaded: ... to every case loaded and the default filter applied;
- filter latency: from setting the filter text (as typing does) to the table showing the
  new result, for a few queries, after everything loaded (includes the 0.12 s debounce
  above 20,000 rows);
- page down: one pgdn key handled and repainted (median of 20, after loading), next to
  the same for an unbound key (f12), which is what Pilot's press-and-wait costs by itself;
- key latency while filtering: a cursor key pressed while a 100,000-row filter runs;
- peak memory: the process's ru_maxrss.

Run: .venv/bin/python benchmarks/bench_cases.py [--sizes 1000,10000,100000] [--runs 5]
     [--labelled] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUERIES = ("refund", "#hard", "refund angry #hard", "zzz-no-match", "")
WORDS = ("refund policy gamer trash talk slur account password order ship delay angry happy "
         "price discount billing error crash login").split()


async def _build(path: Path, count: int, labelled: bool) -> None:
    from coevo_tui.domain.model import OutputStatus, Verdict
    from coevo_tui.store import NewCase, Store

    rnd = random.Random(count)
    cases = [
        NewCase(
            input=" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 40)))
            + f" #{i}\nand a second line",
            tags=tuple(rnd.sample(("hard", "edge", "refund", "abuse", "ok"), rnd.randint(0, 2))),
        )
        for i in range(count)
    ]
    store = await Store.open(path)
    try:
        ids = await store.cases.add_many(cases, source_name="bench")
        if labelled:  # an answer for every case under v1, 70% of them labelled
            version = await store.versions.latest()
            for case_id in ids:
                output = await store.outputs.add(case_id=case_id, version_id=version.id,
                                                model="bench/model", params={},
                                                text=f"answer {case_id}", status=OutputStatus.OK)
                if rnd.random() < 0.7:
                    await store.labels.write(output.id, rnd.choice(list(Verdict)))
    finally:
        await store.close()


async def _key_moves_cursor(app, table) -> None:
    """Send `down` the way a terminal does and wait until the table has handled it.

    (Pilot.press would also wait for the whole app to go idle, loading included.) The
    table's cursor action is wrapped to flag its call: a filter result arriving at the same
    moment may move the cursor index again, so the index alone is not a reliable signal.
    """
    from textual import events

    handled = asyncio.Event()
    original = table.action_cursor

    def flagged(delta: int) -> None:
        original(delta)
        handled.set()

    table.action_cursor = flagged
    try:
        key = events.Key("down", None)
        key.set_sender(app)
        app._driver.send_message(key)
        await asyncio.wait_for(handled.wait(), 30)
    finally:
        del table.action_cursor


async def _child(path: Path, spawned_at: float) -> dict[str, float]:
    """Runs inside the measured process: start the app and time the milestones."""
    from coevo_tui.app import make_app
    from coevo_tui.screens.cases import CasesScreen
    from coevo_tui.widgets.case_table import CaseTable

    result: dict[str, float] = {}
    app = make_app(path, keymap={})
    async with app.run_test(size=(80, 24)) as pilot:
        while not (isinstance(app.screen, CasesScreen) and app.screen.query(CaseTable)
                   and app.screen.query_one(CaseTable).row_count):
            await asyncio.sleep(0.002)
        result["first_rows_s"] = time.time() - spawned_at
        screen = app.screen
        table = screen.query_one(CaseTable)
        await _key_moves_cursor(app, table)
        result["interactive_s"] = time.time() - spawned_at
        while screen._loading or any(w.is_running for w in screen.workers):
            await asyncio.sleep(0.002)
        result["all_loaded_s"] = time.time() - spawned_at
        result["rows"] = float(table.row_count)

        # Scrolling: page down 20 times, each press waited for until the app is idle again
        # (the key handled and the screen repainted).
        # An unbound key measures what Pilot itself costs per press, for comparison.
        for key, name in (("pagedown", "page_down_s"), ("f12", "unbound_key_s")):
            pages = []
            for _ in range(20):
                started = time.perf_counter()
                await pilot.press(key)
                pages.append(time.perf_counter() - started)
            result[name] = statistics.median(pages)
        await pilot.press("home")

        latencies = []
        filter_input = screen.filter_input
        for query in QUERIES:
            rows_before = table.rows
            started = time.perf_counter()
            filter_input.value = query
            # The table is updated when set_rows gives it a new list and no filter runs.
            deadline = time.perf_counter() + 30
            while table.rows is rows_before or any(
                    w.is_running and w.group == "cases-filter" for w in screen.workers):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the filter {query!r} never reached the table")
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - started)
            await pilot.pause()
        result["filter_median_s"] = statistics.median(latencies)
        result["filter_max_s"] = max(latencies)

        # A key pressed while a filter runs: how long until the cursor moved.
        filter_input.value = "refund"
        await asyncio.sleep(0.13)  # past the debounce: the filter worker is running now
        started = time.perf_counter()
        await _key_moves_cursor(app, table)
        result["key_during_filter_s"] = time.perf_counter() - started
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _run_once(path: Path) -> dict[str, float]:
    spawned_at = time.time()
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--spawned-at", repr(spawned_at)],
        capture_output=True, text=True, check=True, timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--labelled", action="store_true",
                        help="give every case an answer (70%% labelled): the Verdict column's "
                             "load counts too; building 100,000 takes minutes")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the project files in DIR and reuse them on later runs")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.spawned_at))))
        return 0

    print(f"Cases screen, headless 80x24, median of {args.runs} runs, each a fresh process"
          + (", every case answered (70% labelled)" if args.labelled else ", no answers"))
    print(f"{'cases':>8} {'first rows':>11} {'interactive':>12} {'all loaded':>11} "
          f"{'filter med':>11} {'filter max':>11} {'key@filter':>11} {'pgdn':>7} "
          f"{'(f12)':>7} {'peak RSS':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for size in (int(s) for s in args.sizes.split(",")):
            path = folder / f"bench-{size}{'-labelled' if args.labelled else ''}.db"
            if not path.exists():
                asyncio.run(_build(path, size, args.labelled))
            runs = [_run_once(path) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            assert med["rows"] == size, med
            print(f"{size:>8,} {med['first_rows_s']:>10.2f}s {med['interactive_s']:>11.2f}s "
                  f"{med['all_loaded_s']:>10.2f}s {med['filter_median_s'] * 1000:>9.0f}ms "
                  f"{med['filter_max_s'] * 1000:>9.0f}ms "
                  f"{med['key_during_filter_s'] * 1000:>9.0f}ms "
                  f"{med['page_down_s'] * 1000:>5.0f}ms "
                  f"{med['unbound_key_s'] * 1000:>5.0f}ms "
                  f"{med['peak_rss_mb']:>7.0f}MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
