"""`coevo run` as a subprocess against the fake server: resume after a kill, keys never
stored, clear messages for bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.store import NewCase, Store


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COEVO_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", COEVO_RETRY_DELAY="0.01",
               COEVO_TIMEOUT="5", COEVO_MAX_ATTEMPTS="3", NO_COLOR="1")
    env.update(extra)
    return env


def _coevo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coevo_tui", *args], capture_output=True,
                          text=True, env=env or _env(), timeout=120)


def _make_project(path: Path, n: int) -> None:
    async def make() -> None:
        store = await Store.open(path)
        await store.versions.create("Answer in one line.", "Input: {input}", "v2")
        await store.cases.add_many([NewCase(input=f"case {i}") for i in range(n)])
        await store.close()

    asyncio.run(make())


def _query(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _dump(path: Path) -> list[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_run_stores_every_output_and_prints_a_summary(tmp_path: Path,
                                                      fake_server: FakeModelServer) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 6)
    done = _coevo("run", str(project), "--model", "gpt-4o-mini", "--api-base", fake_server.url,
                  "--concurrency", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (f"p v2 with openai/gpt-4o-mini at {fake_server.url}: running 6 cases")
    assert lines[-1].startswith("6 ok (0 cached), 0 errors, 0 already done; $0.0")
    assert done.stderr == ""
    rows = _query(project, "SELECT text, status, model FROM output ORDER BY case_id")
    assert rows == [(f"Reply to: Input: case {i}", "ok", "openai/gpt-4o-mini")
                    for i in range(6)]
    assert sorted(r["messages"][1]["content"] for r in fake_server.requests) == [
        f"Input: case {i}" for i in range(6)]
    assert _query(project, "SELECT status, total FROM run") == [("done", 6)]
    again = _coevo("run", str(project), "--model", "gpt-4o-mini", "--api-base",
                   fake_server.url)
    assert again.returncode == 0
    assert "all 6 active cases already have an answer" in again.stdout
    assert fake_server.request_count == 6


@pytest.mark.slow
def test_a_killed_run_resumes_calling_only_unfinished_cases(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    project = tmp_path / "p.db"
    total = 16
    _make_project(project, total)
    fake_server.ttft = 0.3
    args = [sys.executable, "-m", "coevo_tui", "run", str(project), "--model", "gpt-4o-mini",
            "--api-base", fake_server.url, "--concurrency", "2"]
    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if project.with_name("p.db-wal").exists() and _query(
                    project, "SELECT count(*) FROM output")[0][0] >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    finished = _query(project, "SELECT count(*) FROM output WHERE status = 'ok'")[0][0]
    assert 4 <= finished < total, "the run was not killed halfway"
    assert _query(project, "SELECT status FROM run") == [("running",)]
    fake_server.reset()
    fake_server.ttft = 0.0
    done = _coevo("run", str(project), "--model", "gpt-4o-mini", "--api-base", fake_server.url)
    assert done.returncode == 0, done.stderr
    assert fake_server.request_count == total - finished
    assert f"({finished} already done)" in done.stdout
    assert _query(project, "SELECT count(DISTINCT case_id) FROM output WHERE status = 'ok'"
                  ) == [(total,)]


def test_the_api_key_lands_nowhere(tmp_path: Path, fake_server: FakeModelServer) -> None:
    canary = "sk-canary-7f3a9c1e5b2d4680"
    project = tmp_path / "p.db"
    _make_project(project, 4)
    fake_server.set_fault("401", count=1)  # its message echoes the key back
    done = _coevo("run", str(project), "--model", "gpt-4o-mini", "--api-base", fake_server.url,
                  "--concurrency", "1", env=_env(OPENAI_API_KEY=canary))
    assert done.returncode == 1  # one output is an error
    assert fake_server.request_headers[0]["authorization"] == f"Bearer {canary}"
    error = _query(project, "SELECT error FROM output WHERE status = 'error'")[0][0]
    assert error.startswith("HTTP 401: Incorrect API key provided: [redacted]")
    places = {"stdout": done.stdout.encode(), "stderr": done.stderr.encode()}
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = Path(f"{project}{suffix}")
        if file.exists():
            places[file.name] = file.read_bytes()
    assert len(places) >= 3
    for name, data in places.items():
        assert canary.encode() not in data, f"the key is in {name}"
    assert "case 1" not in done.stdout + done.stderr  # nor are prompts printed


def test_a_missing_key_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 2)
    before = _dump(project)
    done = _coevo("run", str(project), "--model", "gpt-4o-mini")
    assert done.returncode == 2
    assert done.stderr == ("coevo: OPENAI_API_KEY is not set; export it or choose another"
                           " model with --model\n")
    assert done.stdout == ""
    assert _dump(project) == before


@pytest.mark.parametrize(("args", "message"), [
    (["--concurrency", "0"], "coevo: --concurrency must be between 1 and 512\n"),
    (["--version", "9"], "coevo: no version 9 in p.db\n"),
])
def test_bad_arguments_are_one_line_and_change_nothing(tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 2)
    before = _dump(project)
    done = _coevo("run", str(project), "--model", "coevo-fake/echo", *args)
    assert (done.returncode, done.stderr, done.stdout) == (2, message, "")
    assert _dump(project) == before


def test_a_missing_project_is_not_created(tmp_path: Path) -> None:
    project = tmp_path / "nope.db"
    done = _coevo("run", str(project), "--model", "coevo-fake/echo")
    assert done.returncode == 2
    assert done.stderr == f"coevo: {project}: no such project file; nothing was run\n"
    assert list(tmp_path.iterdir()) == []


def test_no_cache_calls_the_model_again(tmp_path: Path, fake_server: FakeModelServer) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 3)
    base = ["run", str(project), "--model", "m1", "--api-base", fake_server.url]
    assert _coevo(*base).returncode == 0

    async def same_again() -> None:
        store = await Store.open(project)
        await store.versions.create("Answer in one line.", "Input: {input}", "v3, same text")
        await store.versions.create("Answer in one line.", "Input: {input}", "v4, same text")
        await store.close()

    asyncio.run(same_again())
    cached = _coevo(*base, "--version", "3")
    assert cached.stdout.splitlines()[-1].startswith("3 ok (3 cached)")
    assert fake_server.request_count == 3
    fresh = _coevo(*base, "--version", "4", "--no-cache")
    assert fresh.stdout.splitlines()[-1].startswith("3 ok (0 cached)")
    assert fake_server.request_count == 6


@pytest.mark.parametrize("where", ["option", "environment"])
def test_credentials_in_the_api_base_are_refused_and_shown_nowhere(
        tmp_path: Path, fake_server: FakeModelServer, where: str) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 3)
    before = _dump(project)
    secret = "PASSWORD-c4n4ry-9e1f"
    if where == "option":
        url = f"http://user:{secret}@127.0.0.1:{fake_server.port}/v1"
        done = _coevo("run", str(project), "--model", "m", "--api-base", url)
        shown = (f"coevo: --api-base http://[redacted]@127.0.0.1:{fake_server.port}/v1 has"
                 " credentials in it (user:password); ")
    else:
        url = f"{fake_server.url}?api_key={secret}"
        done = _coevo("run", str(project), "--model", "m", env=_env(COEVO_API_BASE=url))
        shown = (f"coevo: COEVO_API_BASE {fake_server.url}?api_key=[redacted] has"
                 " credentials in it (api_key); ")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(shown) and done.stderr.count("\n") == 1
    assert fake_server.request_count == 0  # nothing was sent, nothing retried
    assert _dump(project) == before
    for file in tmp_path.iterdir():
        assert secret.encode() not in file.read_bytes(), file.name
    assert secret not in done.stderr


def test_run_makes_six_attempts_by_default(tmp_path: Path,
                                           fake_server: FakeModelServer) -> None:
    project = tmp_path / "p.db"
    _make_project(project, 1)
    fake_server.set_fault("500", count=50)
    env = _env()
    del env["COEVO_MAX_ATTEMPTS"]
    done = _coevo("run", str(project), "--model", "m", "--api-base", fake_server.url, env=env)
    assert done.returncode == 1
    assert _query(project, "SELECT error FROM output") == [
        ("server error (HTTP 500): internal error (gave up after 6 attempts)",)]
    assert fake_server.request_count == 6
