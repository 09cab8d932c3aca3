"""Keypress to repaint on the Compare and Label screens (prints figures, asserts nothing).

Builds N active cases answered under two versions, half labelled (the fixture of
bench_comparison.py), then drives the real app headless, at each terminal size, in a
fresh process per run, and times what the user waits for:

- Compare open: from the key `c` (on the Cases screen, loaded) until the first case is
  on the screen.
- Compare j/k: PRESSES presses of `j`, then PRESSES of `k`; each from the key until the
  next case is on the screen.
- Label open: from `enter` on the Cases screen until its first case is on the screen.
- Label j/k: the same presses on the Label screen.

"On the screen" means drawn, not merely decided: the app's `_display` (which the
compositor calls with each frame) is wrapped; after each frame the terminal bytes are
produced (as a real terminal driver would; headless Textual skips that) and the time is
taken, then the lines the relevant widgets drew (their visible part, read back from
their render caches, i.e. what the compositor just drew) are checked, and the frame
counts only if:

- the case's input (first line) is in the input box (Compare `#compare-input`, Label
  `#label-input-text`), and
- each pane (Compare: both; Label: the one) shows the case's stored answer text (first
  line), read here with plain sqlite3 (the newest non-cancelled answer of that version
  and model), and its verdict words ("[GOOD]", "unlabelled", ...): on Compare in the
  pane's verdict line, on Label in the verdict bar.

Not waited for: Compare's "Verdict changed in" history line and the footer's keys (they
may follow in a later frame). The expected case is the one the screen's list says comes
next (Compare: `rows[current ± 1]`, Label: `case_ids[index ± 1]`); for the first case
after `c` or `enter` it is whichever case the screen says it shows. Between presses the
app is left to settle (its workers finish, then 0.1 s), so each press is timed alone.

    .venv/bin/python benchmarks/bench_keys.py [N ...] [--runs RUNS] [--presses P]
                                              [--sizes 120x40,80x24]

Defaults: N 1000 and 100000, RUNS 3, P 10 (10 `j` + 10 `k` = 20 timed presses a screen
and run), both sizes. Each run's figures are printed, then per N and size the medians
over the runs (of each run's median and p95) and the p95 over every press of every run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_comparison import build  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402
from textual.widget import Widget  # noqa: E402

from coevo_tui.app import CoevoApp, make_app  # noqa: E402
from coevo_tui.domain.model import LabelSource, Verdict  # noqa: E402
from coevo_tui.screens.compare import CompareScreen  # noqa: E402
from coevo_tui.screens.label import LabelScreen  # noqa: E402

MODEL = "m"
SETTLE_S = 0.1
LIMIT_S = 120.0  # a press not shown by then is reported as a failure


# ---------------------------------------------------------------------- what to expect
class Expected:
    """What the screen must show for a case, read with plain sqlite3 (cached per case)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        self._inputs: dict[int, str] = {}
        self._answers: dict[tuple[int, int], tuple[str, str]] = {}

    def input(self, case_id: int) -> str:
        if case_id not in self._inputs:
            (text,) = self._db.execute("SELECT input FROM cases WHERE id = ?",
                                       (case_id,)).fetchone()
            self._inputs[case_id] = text.splitlines()[0] if text else ""
        return self._inputs[case_id]

    def answer(self, case_id: int, version_id: int) -> tuple[str, str]:
        """(answer text's first line, verdict words) of the newest answer."""
        key = (case_id, version_id)
        if key not in self._answers:
            row = self._db.execute(
                "SELECT o.text, l.verdict, l.source FROM output o LEFT JOIN label l ON"
                " l.id = (SELECT max(id) FROM label WHERE output_id = o.id)"
                " WHERE o.id = (SELECT max(id) FROM output WHERE case_id = ? AND"
                " version_id = ? AND model = ? AND status != 'cancelled')",
                (case_id, version_id, MODEL)).fetchone()
            text, verdict, source = row
            if verdict is None:
                words = "unlabelled"
            else:
                words = f"[{Verdict(verdict).value.upper()}]"
                if LabelSource(source) != LabelSource.HUMAN:
                    words = ""  # carried or judge: the fixture has none; do not guess
            self._answers[key] = (text.splitlines()[0] if text else "", words)
        return self._answers[key]


def shows(widget: Widget, *needles: str) -> bool:
    """Whether every needle is, as whole words, in the lines `widget` drew on the screen
    (its visible part, from its render cache: what the compositor just drew)."""
    placed = widget.screen._compositor.visible_widgets.get(widget)
    if placed is None:
        return False
    region, clip = placed
    visible = region.intersection(clip)
    if not visible:
        return False
    lines = widget.render_lines(visible.translate((-region.x, -region.y)))
    text = "\n".join(line.text for line in lines)
    # Whole words only: "input number 5" must not match "input number 50".
    return all(re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text) for needle in needles)


# ---------------------------------------------------------------------- frames
class FrameWatch:
    """Wraps `app._display` (called with every frame the compositor draws) and records
    when the first frame after which `expect()` holds was drawn."""

    def __init__(self, app: CoevoApp) -> None:
        self.app = app
        self.expect: Callable[[], bool] | None = None
        self.seen_at: float | None = None
        self.frames = 0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            # What a terminal driver would write (headless mode skips it).
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
            now = time.perf_counter()
            self.frames += 1
            if self.expect is not None and self.seen_at is None and self.expect():
                self.seen_at = now

        app._display = display  # type: ignore[method-assign]

    def arm(self, expect: Callable[[], bool]) -> float:
        """Start waiting for `expect`; returns the start time."""
        self.seen_at = None
        self.expect = expect
        return time.perf_counter()

    async def shown(self, pilot: Any, started: float) -> float:
        """Seconds from `started` to the first frame that showed what was expected."""
        deadline = time.perf_counter() + LIMIT_S
        while self.seen_at is None:
            if time.perf_counter() > deadline:
                raise SystemExit("gave up waiting for the screen to show the case")
            await pilot.pause(0.005)
        self.expect = None
        return self.seen_at - started


async def settle(pilot: Any) -> None:
    app = pilot.app
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause(SETTLE_S)


# ---------------------------------------------------------------------- the screens
def compare_expect(expected: Expected, screen: CompareScreen,
                   case_id: Callable[[], int | None]) -> Callable[[], bool]:
    def check() -> bool:
        cid = case_id()
        if cid is None or screen.left is None or screen.right is None:
            return False
        if not shows(screen.query_one("#compare-input"), expected.input(cid)):
            return False
        for pane, side in ((screen.left_pane, screen.left), (screen.right_pane, screen.right)):
            text, words = expected.answer(cid, side.version.id)
            body = pane.query_one(".stream-pane--body")
            verdict = pane.query_one(".compare-pane--verdict")
            if not (shows(body, text) and shows(verdict, words)):
                return False
        return True
    return check


def label_expect(expected: Expected, screen: LabelScreen,
                 case_id: Callable[[], int | None]) -> Callable[[], bool]:
    def check() -> bool:
        cid = case_id()
        if cid is None or screen.version is None:
            return False
        text, words = expected.answer(cid, screen.version.id)
        return (shows(screen.query_one("#label-input-text"), expected.input(cid))
                and shows(screen.pane.query_one(".stream-pane--body"), text)
                and shows(screen.verdict_bar, words))
    return check


async def presses(pilot: Any, watch: FrameWatch, count: int,
                  target: Callable[[int], int],
                  expect: Callable[[Callable[[], int | None]], Callable[[], bool]]
                  ) -> list[float]:
    """`count` presses of `j`, then of `k`; the milliseconds each took to be shown."""
    times = []
    for key, delta in (("j", 1), ("k", -1)):
        for _ in range(count):
            next_id = target(delta)
            started = watch.arm(expect(lambda next_id=next_id: next_id))
            await pilot.press(key)
            times.append(await watch.shown(pilot, started) * 1000)
            await settle(pilot)
    return times


async def measure(path: Path, size: tuple[int, int], count: int) -> dict[str, Any]:
    """One run in this process: the figures, by name (seconds for opening, ms for keys)."""
    expected = Expected(path)
    app = make_app(path, model=MODEL, keymap={})
    figures: dict[str, Any] = {}
    async with app.run_test(size=size) as pilot:
        watch = FrameWatch(app)
        await wait(pilot, lambda: not getattr(app.screen, "_loading", True))
        await settle(pilot)
        await settle(pilot)

        # Compare: c, then j/k.

        def first_compare_case() -> int | None:
            screen = app.screen
            if not isinstance(screen, CompareScreen) or screen.case is None:
                return None
            return screen.case.id

        def compare_check() -> bool:
            screen = app.screen
            return isinstance(screen, CompareScreen) and compare_expect(
                expected, screen, first_compare_case)()

        started = watch.arm(compare_check)
        await pilot.press("c")
        figures["compare_open"] = await watch.shown(pilot, started)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        await wait(pilot, lambda: compare._loaded)
        await settle(pilot)
        figures["cases"] = len(compare.rows)

        def compare_target(delta: int) -> int:
            assert compare.current is not None
            return compare.rows[compare.current + delta].case_id

        figures["compare_keys"] = await presses(
            pilot, watch, count, compare_target,
            lambda case_id: compare_expect(expected, compare, case_id))

        # Back to Cases, then enter: Label, then j/k.
        await pilot.press("escape")
        await settle(pilot)

        def first_label_case() -> int | None:
            screen = app.screen
            if not isinstance(screen, LabelScreen) or screen.case is None:
                return None
            return screen.case.id

        def label_check() -> bool:
            screen = app.screen
            return isinstance(screen, LabelScreen) and label_expect(
                expected, screen, first_label_case)()

        started = watch.arm(label_check)
        await pilot.press("enter")
        figures["label_open"] = await watch.shown(pilot, started)
        label = app.screen
        assert isinstance(label, LabelScreen)
        await settle(pilot)

        def label_target(delta: int) -> int:
            return label.case_ids[label.index + delta]

        figures["label_keys"] = await presses(
            pilot, watch, count, label_target,
            lambda case_id: label_expect(expected, label, case_id))
    return figures


async def wait(pilot: Any, condition: Callable[[], bool], limit_s: float = LIMIT_S) -> None:
    deadline = time.perf_counter() + limit_s
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit("gave up waiting")
        await pilot.pause(0.005)


# ---------------------------------------------------------------------- figures
def p95(values: Sequence[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def key_line(name: str, times: Sequence[float]) -> str:
    return (f"{name} j/k median {statistics.median(times):.0f} ms, p95 {p95(times):.0f} ms,"
            f" max {max(times):.0f} ms ({len(times)} presses)")


def report(n: int, size: str, results: list[dict[str, Any]]) -> None:
    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    print(f"== {n:,} cases at {size}, medians of {len(results)} runs:")
    print(f"   Compare: first case {med([r['compare_open'] for r in results]):.2f} s after c;"
          f" j/k median {med([statistics.median(r['compare_keys']) for r in results]):.0f}"
          f" ms, p95 {med([p95(r['compare_keys']) for r in results]):.0f} ms"
          f" (p95 of all {sum(len(r['compare_keys']) for r in results)} presses"
          f" {p95([t for r in results for t in r['compare_keys']]):.0f} ms)")
    print(f"   Label:   first case {med([r['label_open'] for r in results]):.2f} s after enter;"
          f" j/k median {med([statistics.median(r['label_keys']) for r in results]):.0f}"
          f" ms, p95 {med([p95(r['label_keys']) for r in results]):.0f} ms"
          f" (p95 of all {sum(len(r['label_keys']) for r in results)} presses"
          f" {p95([t for r in results for t in r['label_keys']]):.0f} ms)")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":  # one run, in its own process
        width, height = (int(x) for x in sys.argv[3].split("x"))
        figures = asyncio.run(measure(Path(sys.argv[2]), (width, height), int(sys.argv[4])))
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="*", type=int, default=[1_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--presses", type=int, default=10,
                        help="presses of j, then as many of k, per screen and run")
    parser.add_argument("--sizes", default="120x40,80x24")
    args = parser.parse_args()
    summaries: list[tuple[int, str, list[dict[str, Any]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            path = Path(tmp) / f"bench-{n}.db"
            t = time.perf_counter()
            asyncio.run(build(path, n))
            print(f"built {n:,} cases x 2 answered versions in {time.perf_counter() - t:.1f} s")
            for size in args.sizes.split(","):
                results = []
                for number in range(args.runs):
                    # A fresh process each run: an earlier app's garbage would lengthen
                    # every later collection.
                    done = subprocess.run(
                        [sys.executable, __file__, "--measure", str(path), size,
                         str(args.presses)], capture_output=True, text=True)
                    if done.returncode:
                        print(done.stdout[-2000:], done.stderr[-4000:])
                        raise SystemExit(f"run {number + 1} at {size} failed")
                    figures = json.loads(done.stdout.strip().splitlines()[-1])
                    results.append(figures)
                    print(f"{n:,} at {size}, run {number + 1}/{args.runs}: Compare first case"
                          f" {figures['compare_open']:.2f} s; "
                          + key_line("Compare", figures["compare_keys"]) + "; Label first case"
                          f" {figures['label_open']:.2f} s; "
                          + key_line("Label", figures["label_keys"]), flush=True)
                summaries.append((n, size, results))
                report(n, size, results)
    print()
    for n, size, results in summaries:
        report(n, size, results)


if __name__ == "__main__":
    main()
