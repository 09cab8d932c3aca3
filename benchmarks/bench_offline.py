"""Benchmark the offline models (coevo-local/...): what they cost and how well they moderate.

For each installed offline model, in a fresh process of its own (so load time and peak
memory are that model's alone), through coevo's own client and the litellm provider:

  install   disk the model takes: its GGUF file (for Qwen also its 22 parts in .venv)
  load      loading the model (the file is already joined and verified: a later run's cost)
  ttft      time to first token of a moderation call under the demo's v1 (about 230
            prompt tokens): the first case's (nothing cached) and the median over the
            cases (the engine reuses the shared instructions' evaluation, as in a run)
  tok/s     generated tokens per second after the first token (a long answer, 256 tokens)
  rss       the process's peak resident memory (ru_maxrss)
  verdicts  the demo's 54 cases under v1 at the demo's parameters (temperature 0, 60
            tokens): the share whose answer's verdict (the first ALLOW, WARN or REMOVE in
            it) is one the case's note expects ("Expected WARN, or ALLOW ..." accepts
            both; "WARN or REMOVE: ..." too), and how many answers had no verdict at all

Usage: python benchmarks/bench_offline.py [--models qwen2.5-coder-1.5b smollm2] [--cases N]
(run it with the project's .venv python after ./dev demo; COEVO_MODEL_CACHE is honoured).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VERDICTS = ("ALLOW", "WARN", "REMOVE")
_VERDICT = re.compile(r"\b(ALLOW|WARN|REMOVE)\b")
LONG_PROMPT = "Explain in detail, in at least 300 words, how a 5v5 online game's ranked" \
              " matchmaking works."


def expected_verdicts(note: str) -> set[str]:
    """The verdicts a case's note accepts: those named before its first ':' ';' or '.'
    ("Expected WARN, or ALLOW as mild heat; ..." -> {WARN, ALLOW}; "WARN or REMOVE: ..."
    -> {WARN, REMOVE}; "Expected REMOVE under this community's policy, ... may ALLOW it"
    -> {REMOVE})."""
    head = re.split(r"[:;.]", note, maxsplit=1)[0]
    return set(_VERDICT.findall(head))


def answer_verdict(text: str) -> str | None:
    """The verdict an answer gives: the first ALLOW, WARN or REMOVE in it."""
    found = _VERDICT.search(text.upper())
    return found.group(1) if found else None


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def _measure(key: str, limit: int | None) -> dict[str, object]:
    from coevo_tui.commands.demo import DEMO_PARAMS, demo_cases
    from coevo_tui.demo import INSTRUCTIONS_FILE
    from coevo_tui.llm import local_models, local_provider
    from coevo_tui.llm.client import ModelCall, ModelClient, StreamDone, TextDelta
    from coevo_tui.llm.litellm_import import load_litellm_async

    model = local_models.model_for(key)
    await load_litellm_async()
    path = local_models.model_file(model)  # joined and verified before timing the load
    install = path.stat().st_size
    if isinstance(model.file, local_models.StitchedFile):
        install += sum(_dir_bytes(p.parent.parent) for p in
                       local_models.part_paths(model.file) or ())
    started = time.perf_counter()
    await asyncio.to_thread(local_provider._load, model)
    load = time.perf_counter() - started

    client = ModelClient(concurrency=1, timeout=600, rng=random.Random(1))
    instructions = INSTRUCTIONS_FILE.read_text(encoding="utf-8").strip() + "\n"
    cases = demo_cases()[:limit]
    notes = [case.note for case in cases]
    ttfts, matched, no_verdict, wrong = [], 0, 0, []
    for case, note in zip(cases, notes):
        call = ModelCall(model.model_string, [{"role": "system", "content": instructions},
                                              {"role": "user", "content": case.input}],
                         dict(DEMO_PARAMS))
        started = time.perf_counter()
        first = None
        async for event in client.stream(call):
            if isinstance(event, TextDelta) and first is None:
                first = time.perf_counter() - started
            if isinstance(event, StreamDone):
                text = event.result.text
        if first is not None:
            ttfts.append(first)
        verdict = answer_verdict(text)
        if verdict is None:
            no_verdict += 1
        if verdict in expected_verdicts(note):
            matched += 1
        else:
            wrong.append(f"{case.ext_id}: {verdict} ({note[:40]})")

    call = ModelCall(model.model_string, [{"role": "user", "content": LONG_PROMPT}],
                     {"temperature": 0, "max_tokens": 256})
    started = time.perf_counter()
    first = end = None
    async for event in client.stream(call):
        if isinstance(event, TextDelta) and first is None:
            first = time.perf_counter()
        if isinstance(event, StreamDone):
            end = time.perf_counter()
            tokens = event.result.tokens_out or 0
    rate = (tokens - 1) / (end - first) if first and end and tokens > 1 else 0.0
    return {
        "model": model.model_string, "install_bytes": install, "load_s": load,
        "ttft_s": statistics.median(ttfts) if ttfts else None,
        "ttft_cold_s": ttfts[0] if ttfts else None,
        "tokens_per_s": rate, "long_tokens": tokens,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cases": len(cases), "matched": matched, "no_verdict": no_verdict, "wrong": wrong,
    }


def _child(key: str, limit: int | None) -> None:
    result = asyncio.run(_measure(key, limit))
    print("RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-1.5b", "smollm2"])
    parser.add_argument("--cases", type=int, default=None, help="only the first N cases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="list the mismatched cases")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.cases)
        return 0
    from coevo_tui.llm import local_models

    rows = []
    for key in args.models:
        if not local_models.is_installed(local_models.model_for(key)):
            print(f"{key}: not installed, skipped", file=sys.stderr)
            continue
        command = [sys.executable, __file__, "--child", key]
        if args.cases:
            command += ["--cases", str(args.cases)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            print(f"{key}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(lines[-1][len("RESULT "):]))
    print("| model | install | load | first token (first case / median) | tokens/s |"
          " peak RSS | verdicts as expected (v1) | no verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['install_bytes'] / 1e9:.2f} GB | {r['load_s']:.1f} s"
              f" | {r['ttft_cold_s']:.2f} s / {r['ttft_s']:.2f} s | {r['tokens_per_s']:.0f}"
              f" | {r['rss_mb']:,.0f} MB"
              f" | {r['matched']}/{r['cases']} ({100 * r['matched'] / r['cases']:.0f}%)"
              f" | {r['no_verdict']} |")
        if args.verbose:
            for line in r["wrong"]:
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
