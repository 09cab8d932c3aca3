"""Benchmark `coevo run`: 1,000 cases against the fake OpenAI-compatible server.

The server runs in its own process (so its CPU does not share the command's GIL) and
answers each request 150 ms to first token then 20 chunks 5 ms apart (250 ms in all; a
non-streaming request gets its answer after the same 250 ms). For each concurrency the
whole command runs as a subprocess on a fresh copy of the project, several times, and the
script prints per run and as medians:

  wall    the whole command, from spawn to exit (start-up, litellm import, run, exit)
  span    the model calls as the server saw them: first request received to last answer sent
  ideal   cases x 0.25 s / concurrency
  ratio   span / ideal (goals: <= 1.25 at concurrency 32, <= 1.1 at 4)
  rss     peak memory of the command (its own ru_maxrss, from os.wait4)
  also    start-up (spawn to first request received) and exit (last answer to exit), and
          the command's CPU time (user + system)

Usage: python benchmarks/bench_run.py [--cases 1000] [--concurrency 4 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "fake_model_server.py"
TTFT, CHUNKS, GAP = 0.15, 20, 0.005
PER_CALL = TTFT + CHUNKS * GAP  # 0.25 s


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--ttft", str(TTFT), "--chunks", str(CHUNKS),
         "--chunk-gap", str(GAP)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


def server_call(base: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(base + path, method=method,
                                     data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def make_project(path: Path, cases: int) -> None:
    sys.path.insert(0, str(ROOT))
    from coevo_tui.store import NewCase, Store

    async def make() -> None:
        store = await Store.open(path)
        await store.versions.create(
            "You moderate a gaming community chat. Allow trash talk; refuse slurs. Answer"
            " ALLOW or BLOCK and one short reason.", None, "benchmark")
        await store.cases.add_many([NewCase(input=f"benchmark message number {i}: gg ez, "
                                             f"you played like a bot {i % 17}")
                               for i in range(cases)])
        await store.close()

    asyncio.run(make())


def run_once(project: Path, base: str, concurrency: int, extra_env: dict[str, str]
             ) -> dict[str, float]:
    server_call(base, "/reset", "POST")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COEVO_")}
    env.update(extra_env)
    args = [sys.executable, "-m", "coevo_tui", "run", str(project), "--model", "gpt-4o-mini",
            "--api-base", base + "/v1", "--concurrency", str(concurrency)]
    started = time.perf_counter()
    started_at = time.time()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would be the max over all).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    ended_at = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"coevo run failed ({proc.returncode}):\n{out}\n{err}")
    stats = server_call(base, "/stats")
    span = stats["last_answer_at"] - stats["first_request_at"]
    return {"wall": wall, "span": span, "requests": stats["request_count"],
            "startup": stats["first_request_at"] - started_at,
            "exit": ended_at - stats["last_answer_at"],
            "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime,
            "summary": out.strip().splitlines()[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 4])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="extra environment for the command (to compare settings)")
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)
    server, base = start_server()
    work = Path(tempfile.mkdtemp(prefix="coevo-bench-"))
    try:
        template = work / "template.db"
        make_project(template, args.cases)
        print(f"{args.cases} cases, {PER_CALL * 1000:.0f} ms per call "
              f"({TTFT * 1000:.0f} ms to first token, {CHUNKS} chunks {GAP * 1000:.0f} ms apart);"
              f" {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
        for concurrency in args.concurrency:
            ideal = args.cases * PER_CALL / concurrency
            rows = []
            for run in range(args.runs):
                project = work / f"c{concurrency}-r{run}.db"
                shutil.copy(template, project)
                row = run_once(project, base, concurrency, extra_env)
                assert row["requests"] == args.cases, row
                rows.append(row)
                print(f"  C={concurrency:<3} run {run + 1}: wall {row['wall']:6.2f} s  span "
                      f"{row['span']:6.2f} s  ideal {ideal:6.2f} s  span/ideal "
                      f"{row['span'] / ideal:5.2f}  (start-up {row['startup']:.2f} s, exit "
                      f"{row['exit']:.2f} s)  cpu {row['cpu']:6.2f} s  peak rss "
                      f"{row['rss_mb']:6.1f} MB   [{row['summary']}]", flush=True)
            med = {k: statistics.median(r[k] for r in rows)
                   for k in ("wall", "span", "rss_mb", "cpu")}
            print(f"C={concurrency:<3} median of {args.runs}: wall {med['wall']:.2f} s, span "
                  f"{med['span']:.2f} s, ideal {ideal:.2f} s, span/ideal "
                  f"{med['span'] / ideal:.2f}, cpu {med['cpu']:.2f} s, peak rss "
                  f"{med['rss_mb']:.0f} MB", flush=True)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
