"""How often the Label screen repaints a streaming answer (prints figures, asserts nothing).

Streams one long answer in many small chunks through the fake litellm provider into the
Label screen of a headless app (App.run_test), and reports the number of text deltas, the
number of body repaints of the StreamPane, the time it took, and repaints per second. With
coalescing the repaints stay near REDRAWS_PER_SECOND x seconds whatever the chunk count;
without it they would equal the delta count.

Also times how long the screen took to show the first case after `l`-style opening, and
the key-to-next-case latency of `j` over stored answers.

    .venv/bin/python benchmarks/bench_stream_redraws.py [CHUNKS] [CHUNK_DELAY_S]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from coevo_tui.app import make_app
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import fake_model
from coevo_tui.screens.label import LabelScreen
from coevo_tui.store import NewCase, Store
from coevo_tui.widgets.stream_pane import REDRAWS_PER_SECOND


async def main(chunks: int, chunk_delay: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = await Store.open(path, instructions="Answer at length.")
        await store.cases.add_many([NewCase(input=f"question {i}", ext_id=f"q{i}")
                               for i in range(30)], source_name="bench")
        await store.close()

        answer = " ".join(f"word{i}" for i in range(chunks * 2))
        fake_model.reset()
        fake_model.responder = lambda messages: answer
        fake_model.configure(chunks=chunks, chunk_delay=chunk_delay)
        app = make_app(path, model=FAKE_MODEL, keymap={})
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await app.open_screen("label")
            screen = app.screen
            assert isinstance(screen, LabelScreen)
            while not screen.pane.is_streaming:
                await asyncio.sleep(0.005)
            started = time.perf_counter()
            redraws_before = screen.pane.redraws
            while screen.pane.output is None:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            redraws = screen.pane.redraws - redraws_before
            print(f"stream: {chunks} deltas in {elapsed:.2f} s -> {redraws} repaints "
                  f"({redraws / elapsed:.1f}/s; cap {REDRAWS_PER_SECOND}/s)")

            # j over answers that are stored: run the rest first (cached path is not
            # involved: every case is a fresh call), then time key to answer shown.
            fake_model.configure(chunks=4, chunk_delay=0.0)
            screen.action_run_all()
            while not screen.running:
                await asyncio.sleep(0.005)
            while screen.running:
                await asyncio.sleep(0.02)
            times = []
            for _ in range(20):
                before = screen.pane.output
                t0 = time.perf_counter()
                screen.action_move(1)  # what `j` runs (Pilot's press waits for idle)
                while screen.pane.output is None or screen.pane.output is before:
                    await asyncio.sleep(0.001)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(f"j to the next stored answer: median {times[len(times) // 2] * 1000:.1f} ms,"
                  f" worst {times[-1] * 1000:.1f} ms (20 presses, headless)")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.001
    asyncio.run(main(n, delay))
