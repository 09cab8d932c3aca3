"""`coevo generate`, `coevo candidates` and `coevo judge` end to end: as subprocesses
against the fake OpenAI-compatible server (their lines, exit statuses, the event log, no
key ever printed or stored), and `candidates` in-process through `main([...])`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.__main__ import main
from coevo_tui.domain.model import CaseSource, CaseState, NewRule, OutputStatus
from coevo_tui.store import NewCase, Store

SECRET = "sk-test-assistant-secret-123456"
INSTRUCTIONS = "Moderate chat.\n1. No slurs.\n2. No threats.\n3. Trash talk is fine."


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COEVO_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", COEVO_RETRY_DELAY="0.01",
               COEVO_TIMEOUT="10", COEVO_MAX_ATTEMPTS="3", NO_COLOR="1",
               OPENAI_API_KEY=SECRET)
    env.update(extra)
    return env


def _coevo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coevo_tui", *args], capture_output=True,
                          text=True, env=_env(), timeout=180)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dump(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def _make_project(path: Path, *, answers: int = 0, rules: bool = False) -> None:
    async def make() -> None:
        async with await Store.open(path) as store:
            await store.settings.update(task="Moderate the chat of a game.")
            version = await store.versions.create(INSTRUCTIONS, note="v2")
            if rules:
                await store.rules.replace(version.id, [
                    NewRule(1, "No slurs"), NewRule(2, "No threats"), NewRule(3, "Trash talk")])
            await store.cases.add(NewCase("gg ez", ext_id="gg"))
            for i in range(answers):
                case = await store.cases.add(NewCase(f"message {i}", ext_id=f"m{i}"))
                await store.outputs.add(case_id=case.id, version_id=version.id,
                                        model="openai/m", params={}, text=f"ALLOW {i}",
                                        status=OutputStatus.OK)

    asyncio.run(make())


def _last_user(body: dict[str, Any]) -> str:
    return [m for m in body["messages"] if m["role"] == "user"][0]["content"]


def _assistant(body: dict[str, Any]) -> str:
    user = _last_user(body)
    if "List its rules." in user:
        return json.dumps({"rules": [{"number": 1, "title": "No slurs", "text": ""},
                                     {"number": 2, "title": "No threats", "text": ""},
                                     {"number": 3, "title": "Trash talk", "text": ""}]})
    if "variation" in user:
        return json.dumps({"cases": [{"input": "gg easy, go next", "reason": "reworded"}]})
    return json.dumps({"cases": [
        {"input": "see you at your school tomorrow", "rule": 2, "reason": "real or game?"},
        {"input": "GG EZ!", "rule": 3, "reason": "repeats a case"},
        {"input": "that strat is so gay lol", "rule": 1, "reason": "slur as slang"}]})


# ---------------------------------------------------------------------- generate
def test_generate_extracts_the_rules_stores_the_batch_and_prints_it(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    path = tmp_path / "p.db"
    _make_project(path)
    fake_server.responder = _assistant
    done = _coevo("generate", str(path), "--n", "3", "--model", "m", "--api-base",
                  fake_server.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("p: asking openai/m at http://127.0.0.1:") and lines[0].endswith(
        "for 3 cases under v2")
    assert lines[1] == "rules of v2: 1. No slurs; 2. No threats; 3. Trash talk"
    assert lines[2:4] == ["c2  rule 2  see you at your school tomorrow  (real or game?)",
                          "c3  rule 1  that strat is so gay lol  (slur as slang)"]
    assert lines[4].startswith("3 cases under v2: 2 kept, 1 dropped as near duplicates"
                               " (rule 1: 1 kept; rule 2: 1 kept; rule 3: 1 dropped);")
    assert len(lines) == 5 and done.stderr == ""
    assert SECRET not in done.stdout + done.stderr and SECRET not in _dump(path)

    async def check() -> None:
        async with await Store.open(path) as store:
            queued = await store.cases.candidates()
            assert [(c.ext_id, c.rule_number, c.source) for c in queued] == [
                ("c2", 2, CaseSource.GENERATED), ("c3", 1, CaseSource.GENERATED)]
            logged = await store.events.recent(10, kind="assist")
            assert [e.entity for e in reversed(logged)] == ["rules", "candidates"]
            assert logged[0].payload["model"] == "openai/m"

    asyncio.run(check())

    similar = _coevo("generate", str(path), "--similar-to", "gg", "--n", "1", "--model", "m",
                     "--api-base", fake_server.url)
    assert similar.returncode == 0, similar.stderr
    assert similar.stdout.splitlines()[1] == "c4  no rule  gg easy, go next  (reworded)"


@pytest.mark.parametrize(("extra", "message"), [
    (["--similar-to", "nope"], "coevo: no case with id 'nope' in p.db\n"),
    (["--rule", "9"], "coevo: v2 has no rule 9 (rules 1 to 3)\n"),
    (["--rule", "2", "--similar-to", "gg"], "coevo: --rule and --similar-to do not go"),
    (["--n", "0"], "coevo: the number of cases must be between 1 and 50\n"),
])
def test_generate_refuses_bad_input_in_one_line_and_changes_nothing(
        tmp_path: Path, fake_server: FakeModelServer, extra: list[str], message: str) -> None:
    path = tmp_path / "p.db"
    _make_project(path, rules=True)
    before = _sha(path)
    done = _coevo("generate", str(path), *extra, "--model", "m", "--api-base",
                  fake_server.url)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1
    assert _sha(path) == before and fake_server.request_count == 0


def test_generate_exits_1_when_the_assistant_gives_nothing_usable(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    path = tmp_path / "p.db"
    _make_project(path, rules=True)
    fake_server.responder = lambda body: "Sure, here are some ideas: be creative."
    done = _coevo("generate", str(path), "--n", "2", "--model", "m", "--api-base",
                  fake_server.url)
    assert done.returncode == 1 and done.stderr == ""
    last = done.stdout.splitlines()[-1]
    assert last.startswith("0 cases under v2: 0 kept") and "not JSON" in last


# ---------------------------------------------------------------------- candidates
async def _queue(path: Path) -> None:
    async with await Store.open(path) as store:
        version = await store.versions.latest()
        await store.cases.add_candidates([
            NewCase(f"candidate {i}", source=CaseSource.GENERATED, rule_number=i,
                    reason=f"why {i}", origin_version_id=version.id) for i in (1, 2, 3)])
        (origin,) = await store.cases.by_ext_ids(["gg"])
        await store.cases.add_candidates([NewCase("gg easy", source=CaseSource.SIMILAR,
                                                  origin_case_id=origin.id)])


def test_candidates_are_listed_accepted_and_rejected_from_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.db"
    _make_project(path)
    asyncio.run(_queue(path))
    assert main(["candidates", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["c2  rule 1  candidate 1  (why 1)  [generated under v2 for rule 1]",
                   "c3  rule 2  candidate 2  (why 2)  [generated under v2 for rule 2]",
                   "c4  rule 3  candidate 3  (why 3)  [generated under v2 for rule 3]",
                   "c5  no rule  gg easy  [similar to gg]",
                   "4 candidates waiting"]
    assert main(["candidates", str(path), "accept", "c2", "c3"]) == 0
    assert capsys.readouterr().out == "accepted 2 cases: c2, c3\n"
    before = _sha(path)
    for bad, message in ((["accept", "c2"], "case c2 is active, not a candidate"),
                         (["reject", "c4", "c99"], "no case with id 'c99'"),
                         (["accept"], "accept needs case ids"),
                         (["list", "c4"], "list takes no ids")):
        assert main(["candidates", str(path), *bad]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert _sha(path) == before
    assert main(["candidates", str(path), "reject", "all"]) == 0
    assert capsys.readouterr().out == "rejected 2 cases: c4, c5\n"
    assert main(["candidates", str(path), "list"]) == 0
    assert "no candidates waiting" in capsys.readouterr().out

    async def check() -> None:
        async with await Store.open(path) as store:
            states = {c.ext_id: c.state for c in await store.cases.all()}
            assert states == {"gg": CaseState.ACTIVE, "c2": CaseState.ACTIVE,
                              "c3": CaseState.ACTIVE, "c4": CaseState.REJECTED,
                              "c5": CaseState.REJECTED}

    asyncio.run(check())


# ---------------------------------------------------------------------- judge
def test_judge_stores_a_verdict_per_unlabelled_answer_and_reports_failures(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    path = tmp_path / "p.db"
    _make_project(path, answers=6)

    def verdicts(body: dict[str, Any]) -> str:
        user = _last_user(body)
        if "message 5" in user:
            return "no idea"
        return json.dumps({"verdict": "bad" if "message 1" in user else "good",
                           "reason": "checked"})

    fake_server.responder = verdicts
    done = _coevo("judge", str(path), "--model", "m", "--api-base", fake_server.url,
                  "--concurrency", "3")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("p v2: judging 6 unlabelled answers of openai/m with openai/m at")
    assert lines[1].startswith("stopped") is False
    assert lines[1].startswith("judged 5 of 6 answers under v2, 1 failed;")
    assert lines[2] == ("judge-human agreement under v2: no answer has both a label and a"
                        " judge verdict")
    assert done.stderr == "" and SECRET not in done.stdout + _dump(path)
    assert all(r.get("stream") in (None, False) for r in fake_server.requests)

    async def check() -> None:
        async with await Store.open(path) as store:
            version = await store.versions.latest()
            waiting = await store.judgements.unlabelled_outputs(version.id)
            assert [o.text for o in waiting] == ["ALLOW 5"]
            judged = await store.judgements.newest_for_outputs(range(1, 10))
            assert sorted(j.verdict.value for j in judged.values()) == ["bad"] + ["good"] * 4
            (event,) = await store.events.recent(1, kind="assist")
            assert (event.entity, event.payload["done"], event.payload["errors"]) == (
                "judge", 5, 1)

    asyncio.run(check())
    again = _coevo("judge", str(path), "--model", "m", "--api-base", fake_server.url)
    assert again.returncode == 1  # the one that failed is asked again, and fails again
    assert again.stdout.splitlines()[0].startswith("p v2: judging 1 unlabelled answer of")


def test_judge_refuses_an_unknown_version_and_a_bad_concurrency(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    path = tmp_path / "p.db"
    _make_project(path, answers=1)
    before = _sha(path)
    for extra, message in ((["--version", "7"], "coevo: no version 7 in p.db\n"),
                           (["--concurrency", "0"], "coevo: --concurrency must be between")):
        done = _coevo("judge", str(path), *extra, "--model", "m", "--api-base",
                      fake_server.url)
        assert done.returncode == 2 and done.stderr.startswith(message)
    assert _sha(path) == before and fake_server.request_count == 0
