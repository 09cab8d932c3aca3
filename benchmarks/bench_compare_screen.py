"""Opening the Compare and Overview screens on a large project (prints figures, asserts
nothing).

Builds N active cases (default 100,000) answered under two versions, half labelled (the
same fixture as bench_comparison.py), then drives the real app headless at 120x40 and
measures, for each screen: the time from opening it until it shows its data (Compare:
until its list is sorted and the first case in status order is on show; it shows a case
before that, see bench_keys.py), and the longest the event loop was blocked meanwhile (a
10 ms ticker records the largest gap between two ticks: a long gap is a frozen screen).

Keys (`j`/`k`) and the first case after `c` are timed by bench_keys.py, to the frame that
draws them. (This benchmark used to time `j` too, but until `pilot.press` returned, which
waits for the app to go idle: on the same code at 1,000 cases it gave 137 ms where the
frame showing the case came after a median 51 ms.)

    .venv/bin/python benchmarks/bench_compare_screen.py [N] [RUNS]

With RUNS > 1 (default 1) the project is built once and the app opened RUNS times on it,
each time in a fresh process; each run's figures are printed, then their medians.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_comparison import build  # noqa: E402

from coevo_tui.app import make_app  # noqa: E402
from coevo_tui.screens.compare import CompareScreen  # noqa: E402
from coevo_tui.screens.overview import OverviewScreen  # noqa: E402


class StallMeter:
    """The longest gap between two ticks of a 10 ms timer on the event loop."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.longest = max(self.longest, now - self._last - 0.01)
            self._last = now

    def start(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.longest


async def wait(pilot, condition, limit_s: float = 600.0) -> None:
    deadline = time.perf_counter() + limit_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("gave up waiting")
        await pilot.pause(0.005)


async def measure(path: Path) -> dict[str, float]:
    """One run: the figures printed, also returned by name (seconds)."""
    figures: dict[str, float] = {}
    app = make_app(path, model="m", keymap={})
    meter = StallMeter()
    async with app.run_test(size=(120, 40)) as pilot:
        # The Cases screen loads first (rows, verdicts, version columns): let it finish, so
        # the figures are the Compare screen's own.
        await wait(pilot, lambda: not getattr(app.screen, "_loading", True))
        for _ in range(3):
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
        meter.start()
        started = time.perf_counter()
        await app.open_screen("compare")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await wait(pilot, lambda: screen._loaded and screen.case is not None
                   and screen.right_pane.state == "stored")
        opened = time.perf_counter() - started
        stall = meter.stop()
        figures.update(compare_open=opened, compare_stall=stall)
        print(f"Compare: list sorted, first case in status order shown after {opened:.2f} s "
              f"({len(screen.rows):,} cases); longest event-loop stall {stall * 1000:.0f} ms")
        meter.start()
        started = time.perf_counter()
        await app.open_screen("overview")
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        await wait(pilot, lambda: bool(overview.rows) and not overview.workers)
        opened = time.perf_counter() - started
        stall = meter.stop()
        figures.update(overview_open=opened, overview_stall=stall)
        print(f"Overview: shows {len(overview.rows)} versions after {opened:.2f} s; "
              f"longest event-loop stall {stall * 1000:.0f} ms")
    return figures


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":  # one run, in its own process
        print(json.dumps(asyncio.run(measure(Path(sys.argv[2])))))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t = time.perf_counter()
        asyncio.run(build(path, n))
        print(f"built {n:,} cases x 2 answered versions in {time.perf_counter() - t:.1f} s")
        if runs == 1:
            asyncio.run(measure(path))
            return
        # Each run in a fresh process: apps left over from earlier runs in the same
        # process would make every later run's garbage collections (stalls) longer.
        results = []
        for number in range(runs):
            print(f"run {number + 1}/{runs}")
            done = subprocess.run([sys.executable, __file__, "--measure", str(path)],
                                  check=True, capture_output=True, text=True)
            *shown, last = done.stdout.strip().splitlines()
            print("\n".join(shown))
            results.append(json.loads(last))

        def median(name: str) -> float:
            return statistics.median(r[name] for r in results)

        print(f"median of {runs}: Compare list ready {median('compare_open'):.2f} s "
              f"(stall {median('compare_stall') * 1000:.0f} ms); Overview "
              f"{median('overview_open'):.2f} s "
              f"(stall {median('overview_stall') * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
