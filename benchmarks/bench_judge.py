"""Benchmark the assistant: `coevo judge` over 1,000 answers, and how soon a generated
batch's first candidate is stored.

The fake OpenAI-compatible server runs in its own process (this script with --serve, so
its CPU does not share the command's GIL), answering a judge's request with a verdict and
a generation request with a batch of cases, 150 ms to first token then 20 chunks 5 ms
apart (250 ms a call), as benchmarks/bench_run.py does.

1. Judge: 1,000 unlabelled answers judged by the whole `coevo judge` command as a
   subprocess at --concurrency 32 (several runs, each on a fresh copy of the project):
     span   the calls as the server saw them: first request received to last answer sent
     ideal  calls x 0.25 s / concurrency
     ratio  span / ideal (goal: within 1.3)
2. Generate: a batch of 10 candidates streamed from the server (the answer cut into
   pieces of 4 characters, 10 ms apart, after 150 ms), driven in this process through
   assist.candidates.generate: when the first candidate is stored, and when the batch's
   last token arrives, both from the call's start (goal: the first well before the last).

Usage: python benchmarks/bench_judge.py [--answers 1000] [--concurrency 32] [--runs 3]
       [--batches 3]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TTFT, CHUNKS, GAP = 0.15, 20, 0.005
PER_CALL = TTFT + CHUNKS * GAP  # 0.25 s
STREAM_PIECE, STREAM_GAP = 4, 0.010  # the generated batch: 4 characters every 10 ms

INSTRUCTIONS = ("You moderate a gaming community chat. Allow trash talk; refuse slurs and"
                " real threats. Answer ALLOW or BLOCK and one short reason.\n"
                "1. No slurs.\n2. No real-world threats.\n3. Trash talk is fine.")
BATCH = {"cases": [
    {"input": f"generated message number {i}: {text}", "rule": 1 + i % 3,
     "reason": f"borderline for rule {1 + i % 3}, variant {i}"}
    for i, text in enumerate([
        "you play like my grandma", "see you at the lan, bring a helmet",
        "that pick is so r-word lol", "gg, now log off forever", "uninstall or I'll make you",
        "mi abuela juega mejor que tú", "quote: he called me the n-word, report pls",
        "I know your real name, Kevin", "ez clap, go back to bronze", "kys (keep yourself safe)",
    ])]}


# ---------------------------------------------------------------------- the server
def serve(argv: list[str]) -> int:
    """The fake server with the assistant's answers (run as its own process)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_model_server import FakeModelServer, serve_until_interrupted

    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true")
    args, _ = parser.parse_known_args(argv)
    server = FakeModelServer(ttft=TTFT, chunks=CHUNKS, chunk_gap=GAP)
    batch = json.dumps(BATCH)

    def answer(body: dict[str, Any]) -> str | list[str]:
        if body.get("stream"):
            return [batch[i:i + STREAM_PIECE] for i in range(0, len(batch), STREAM_PIECE)]
        return json.dumps({"verdict": "good", "reason": "trash talk about the game"})

    server.responder = answer
    return serve_until_interrupted(server)


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


def server_call(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body or {}).encode() if method == "POST" else None
    request = urllib.request.Request(base + path, method=method, data=data)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# ---------------------------------------------------------------------- 1. judge
def make_project(path: Path, answers: int) -> None:
    sys.path.insert(0, str(ROOT))
    from coevo_tui.domain.model import OutputStatus
    from coevo_tui.store import NewCase, Store

    async def make() -> None:
        async with await Store.open(path) as store:
            await store.settings.update(task="Moderate the chat of an online game.")
            version = await store.versions.create(INSTRUCTIONS, None, "benchmark")
            ids = await store.cases.add_many([
                NewCase(input=f"benchmark message number {i}: gg ez, you played like a bot"
                              f" {i % 17}") for i in range(answers)])
            for case_id in ids:
                await store.outputs.add(case_id=case_id, version_id=version.id,
                                        model="openai/gpt-4o-mini", params={},
                                        text=f"ALLOW - trash talk {case_id % 13}",
                                        status=OutputStatus.OK)

    asyncio.run(make())


def judge_once(project: Path, base: str, concurrency: int) -> dict[str, Any]:
    server_call(base, "/reset", "POST")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COEVO_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True")
    args = [sys.executable, "-m", "coevo_tui", "judge", str(project), "--model",
            "gpt-4o-mini", "--api-base", base + "/v1", "--concurrency", str(concurrency)]
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"coevo judge failed:\n{out}\n{err}")
    stats = server_call(base, "/stats")
    return {"wall": wall, "span": stats["last_answer_at"] - stats["first_request_at"],
            "requests": stats["request_count"], "rss_mb": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime, "summary": out.strip().splitlines()[-2]}


# ---------------------------------------------------------------------- 2. generate
def generate_once(project: Path, base: str) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from coevo_tui.assist import candidates
    from coevo_tui.assist.events import AssistText, CandidateAdded
    from coevo_tui.session import Session

    async def run() -> dict[str, float]:
        async with await Session.open(project, model="gpt-4o-mini",
                                      api_base=base + "/v1") as session:
            await session.client.check_ready(session.assistant_choice())  # litellm loaded
            server_call(base, "/reset", "POST")
            started = time.perf_counter()
            first_stored = last_token = 0.0
            kept = 0
            async for event in candidates.generate(session, n=10):
                now = time.perf_counter() - started
                if isinstance(event, CandidateAdded):
                    kept += 1
                    first_stored = first_stored or now
                elif isinstance(event, AssistText):
                    last_token = now
            return {"first": first_stored, "last_token": last_token, "kept": kept}

    return asyncio.run(run())


def make_generation_project(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from coevo_tui.domain.model import NewRule
    from coevo_tui.store import Store

    async def make() -> None:
        async with await Store.open(path) as store:
            await store.settings.update(task="Moderate the chat of an online game.")
            version = await store.versions.create(INSTRUCTIONS, None, "benchmark")
            await store.rules.replace(version.id, [NewRule(1, "No slurs"),
                                                   NewRule(2, "No real threats"),
                                                   NewRule(3, "Trash talk is fine")])

    asyncio.run(make())


def main() -> int:
    if "--serve" in sys.argv:
        return serve(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3)
    args = parser.parse_args()
    server, base = start_server()
    work = Path(tempfile.mkdtemp(prefix="coevo-bench-judge-"))
    try:
        template = work / "template.db"
        make_project(template, args.answers)
        ideal = args.answers * PER_CALL / args.concurrency
        print(f"judge: {args.answers} answers, {PER_CALL * 1000:.0f} ms per call, concurrency"
              f" {args.concurrency}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
        rows = []
        for run in range(args.runs):
            project = work / f"judge-{run}.db"
            shutil.copy(template, project)
            row = judge_once(project, base, args.concurrency)
            assert row["requests"] == args.answers, row
            rows.append(row)
            print(f"  run {run + 1}: wall {row['wall']:6.2f} s  span {row['span']:6.2f} s  "
                  f"ideal {ideal:5.2f} s  span/ideal {row['span'] / ideal:5.2f}  cpu "
                  f"{row['cpu']:6.2f} s  peak rss {row['rss_mb']:6.1f} MB  [{row['summary']}]",
                  flush=True)
        med = {k: statistics.median(r[k] for r in rows) for k in ("wall", "span", "cpu",
                                                                 "rss_mb")}
        print(f"judge median of {args.runs}: wall {med['wall']:.2f} s, span {med['span']:.2f}"
              f" s, ideal {ideal:.2f} s, span/ideal {med['span'] / ideal:.2f}, cpu"
              f" {med['cpu']:.2f} s, peak rss {med['rss_mb']:.0f} MB", flush=True)

        size = len(json.dumps(BATCH))
        pieces = -(-size // STREAM_PIECE)
        print(f"generate: 10 cases streamed as {pieces} pieces of {STREAM_PIECE} characters,"
              f" {STREAM_GAP * 1000:.0f} ms apart after {TTFT * 1000:.0f} ms")
        server_call(base, "/config", "POST", {"chunk_gap": STREAM_GAP})
        batches = []
        for run in range(args.batches):
            project = work / f"generate-{run}.db"
            make_generation_project(project)
            row = generate_once(project, base)
            batches.append(row)
            print(f"  batch {run + 1}: first candidate stored at {row['first']:.2f} s, last"
                  f" token at {row['last_token']:.2f} s, {row['kept']:.0f} kept", flush=True)
        print(f"generate median of {args.batches}: first stored at"
              f" {statistics.median(r['first'] for r in batches):.2f} s, last token at"
              f" {statistics.median(r['last_token'] for r in batches):.2f} s", flush=True)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
