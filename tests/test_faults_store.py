"""The store under faults (issue 7): nothing lost, nothing leaked, never a traceback.

Real processes, real faults: `coevo` commands killed with SIGKILL at seeded random moments,
a disk that fills up (a 3 MB tmpfs), read-only files, folders and mounts, and a checkpoint
cut short by a crash. After each fault a fresh process or `Store.open` looks at the
project: there is either no project or a whole one, its rows are all there or none of
them, and a halted run resumes.

Mounting needs privileges (root here; CI may not have them): those tests skip with the
reason. As root, permission bits do not stop writes, so the read-only file and folder
commands run with the capabilities that override them dropped (`_without_root_override`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.demo import DEMO_NAME
from coevo_tui.domain.errors import ProjectFileError, ReadOnlyProject
from coevo_tui.domain.model import OutputStatus
from coevo_tui.store import NewCase, Store, check_project_file

MODEL = "gpt-4o-mini"


# ---------------------------------------------------------------------- running coevo
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COEVO_") and k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", COEVO_RETRY_DELAY="0.01",
               COEVO_TIMEOUT="10", COEVO_MAX_ATTEMPTS="2", NO_COLOR="1", TERM="dumb")
    return env


def _without_root_override() -> None:
    """In the child, before exec: drop the capabilities that let root ignore permission
    bits, so a read-only file or folder is read-only for it too."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def coevo(*args: str, bounded: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `coevo ARGS` to the end; `bounded`: as a root without permission overrides."""
    preexec = _without_root_override if bounded and os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "coevo_tui", *args], capture_output=True,
                          text=True, env=_env(), timeout=120, stdin=subprocess.DEVNULL,
                          preexec_fn=preexec)


def seconds_to_finish(args: list[str]) -> float:
    """How long `coevo ARGS` takes undisturbed (to spread the kills over)."""
    started = time.monotonic()
    done = coevo(*args)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def kill_after(args: list[str], delay: float, *, until: Callable[[], bool] | None = None,
               then: float = 0.0) -> None:
    """Start `coevo ARGS`, SIGKILL it after `delay` seconds (if still running), reap it.
    With `until`: kill `then` seconds after `until()` first holds, `delay` being the limit
    (a hang guard) on waiting for it."""
    proc = subprocess.Popen([sys.executable, "-m", "coevo_tui", *args], env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if until is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(delay)
        else:
            deadline = time.monotonic() + delay
            while not until():
                assert proc.poll() is None, "it ended before the moment to kill it"
                assert time.monotonic() < deadline, "the moment to kill it never came"
                time.sleep(0.02)
            time.sleep(then)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def kill_moments(duration: float, count: int, seed: int) -> list[float]:
    """`count` seeded moments spread over `duration` (one in each slice of it)."""
    rng = random.Random(seed)
    return [duration * (i + rng.random()) / count for i in range(count)]


# ---------------------------------------------------------------------- looking at projects
def rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def visible(folder: Path) -> set[str]:
    return {n for n in os.listdir(folder) if not n.startswith(".")}


def hidden(folder: Path) -> set[str]:
    return {n for n in os.listdir(folder) if n.startswith(".")}


async def open_and_count(path: Path) -> dict[str, int]:
    """Open for writing as a fresh command would; the counts of what matters."""
    async with await Store.open(path) as store:
        counts = {
            "cases": len(await store.cases.all()),
            "versions": len(await store.versions.all()),
            "running": int(await store.database.scalar(
                "SELECT count(*) FROM run WHERE status = 'running'")),
        }
        assert (await store.database.scalar("PRAGMA integrity_check")) == "ok"
    return counts


def write_jsonl(path: Path, count: int, *, width: int = 200, prefix: str = "case") -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps({"input": f"{prefix} {i} " + "x" * width}) + "\n")
    return path


def make_project(path: Path, cases: int, *, note_bytes: int = 0) -> None:
    """A project with two versions and `cases` active cases (each with a note this long)."""
    async def make() -> None:
        async with await Store.open(path) as store:
            await store.versions.create("Answer in one line.", "Input: {input}", "v2")
            await store.cases.add_many([NewCase(input=f"case {i}", ext_id=f"c{i}",
                                           note="n" * note_bytes) for i in range(cases)])
    asyncio.run(make())


# ---------------------------------------------------------------------- mounts
@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[None]:
    """`mount OPTIONS TARGET` for the block, or skip the test saying why it cannot."""
    try:
        done = subprocess.run(["mount", *options, str(target)], capture_output=True,
                              text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command on this machine")
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip() or done.returncode}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextlib.contextmanager
def read_only_bind(folder: Path) -> Iterator[None]:
    """`folder` as a read-only mount of itself for the block."""
    with mounted(folder, "--bind", str(folder)):
        again = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                               capture_output=True, text=True, timeout=30)
        if again.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {again.stderr.strip()}")
        yield


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB file system (tmpfs) to fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted(disk, "-t", "tmpfs", "-o", "size=3m", "tmpfs"):
        yield disk


def fill_up(disk: Path, leave: int) -> Path:
    """Fill `disk` with a file until about `leave` bytes are free; returns the file."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


# ====================================================================== a checkpoint cut short
def cut_checkpoint_copy(source: Path, target: Path) -> int:
    """Make `target` what a crash (or a full disk) in the middle of a checkpoint of
    `source` leaves: the new header and the WAL holding every page, but the file still
    at its size before the checkpoint. Returns the number of cases it holds.

    Pages are added to the WAL with checkpoints off, then copied into the file (PASSIVE:
    the WAL stays), and file and WAL are copied while the writer is still open (so its
    close does not fold and delete the WAL); the copy is then cut back to the old size.
    """
    size_before = source.stat().st_size
    db = sqlite3.connect(source, isolation_level=None)
    try:
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO cases (ext_id, input, note, source, state, created_at, updated_at)"
            " VALUES (?, ?, ?, 'imported', 'archived', 't', 't')",
            [(f"w{i}", f"written to the WAL {i}", "w" * 400) for i in range(1500)])
        db.execute("COMMIT")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0
        shutil.copyfile(source, target)
        shutil.copyfile(f"{source}-wal", f"{target}-wal")
        count = db.execute("SELECT count(*) FROM cases").fetchone()[0]
    finally:
        db.close()
    with target.open("r+b") as f:
        f.truncate(size_before)
    assert target.stat().st_size < int.from_bytes(target.read_bytes()[28:32], "big") * 4096
    return count


@pytest.fixture(scope="module")
def checkpoint_cut_short(tmp_path_factory) -> tuple[Path, int]:
    """A cut-short project (file and -wal) to copy for each test, and its case count."""
    folder = tmp_path_factory.mktemp("cut")
    source = folder / "source.db"
    make_project(source, 6, note_bytes=3000)
    async def answer() -> None:  # an answer under v2 for `coevo label`
        async with await Store.open(source) as store:
            await store.outputs.add(case_id=1, version_id=2, model=f"openai/{MODEL}",
                                   params={}, text="fine", status=OutputStatus.OK)
    asyncio.run(answer())
    count = cut_checkpoint_copy(source, folder / "cut.db")
    return folder / "cut.db", count


def copy_project(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


async def test_a_checkpoint_cut_short_opens_with_every_row(checkpoint_cut_short, tmp_path
                                                           ) -> None:
    path = copy_project(checkpoint_cut_short[0], tmp_path / "p.db")
    assert check_project_file(path) is False
    async with await Store.open(path, read_only=True) as store:
        assert len(await store.cases.all()) == checkpoint_cut_short[1]
    assert (await open_and_count(path))["cases"] == checkpoint_cut_short[1]
    # Opened for writing, the WAL was folded in: the file alone is whole again.
    assert path.stat().st_size >= int.from_bytes(path.read_bytes()[28:32], "big") * 4096


READING = {
    "export": (["export", "{p}", "{tmp}/out.jsonl"], None),
    "versions": (["versions", "{p}"], None),
    "diff": (["diff", "{p}", "1", "2"], None),
    "eval": (["eval", "{p}", "--baseline", "1", "--revision", "2"], None),
}
# Each writing command with a query of what it added, and what the query must then say.
WRITING = {
    "import": (["import", "{p}", "{tmp}/more.jsonl"], ("SELECT count(*) - {n} FROM cases", 3)),
    "prompt": (["prompt", "{p}", "--file", "{tmp}/v3.txt", "--note", "v3"],
               ("SELECT max(number) FROM prompt_version", 3)),
    "label": (["label", "{p}", "c0", "2", "bad", "--rationale", "too harsh"],
              ("SELECT count(*) FROM label", 1)),
}


def command_files(tmp: Path) -> None:
    write_jsonl(tmp / "more.jsonl", 3, prefix="more")
    (tmp / "v3.txt").write_text("Answer in one word.\n")


def expand(args: list[str], path: Path, tmp: Path) -> list[str]:
    return [a.format(p=path, tmp=tmp) for a in args]


@pytest.mark.parametrize("command", [*READING, *WRITING])
def test_every_command_accepts_a_checkpoint_cut_short(checkpoint_cut_short, tmp_path,
                                                      command) -> None:
    cut, count = checkpoint_cut_short
    path = copy_project(cut, tmp_path / "p.db")
    command_files(tmp_path)
    args, effect = {**READING, **WRITING}[command]
    done = coevo(*expand(args, path, tmp_path))
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    if effect is not None:
        query, expected = effect
        assert rows(path, query.format(n=count)) == [(expected,)]
    if command == "export":
        assert len((tmp_path / "out.jsonl").read_text().splitlines()) == count
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    assert rows(path, "SELECT count(*) FROM cases")[0][0] >= count


def test_coevo_run_accepts_a_checkpoint_cut_short(checkpoint_cut_short, tmp_path,
                                                  fake_server: FakeModelServer) -> None:
    path = copy_project(checkpoint_cut_short[0], tmp_path / "p.db")
    done = coevo("run", str(path), "--model", MODEL, "--api-base", fake_server.url)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert rows(path, "SELECT count(DISTINCT case_id) FROM output WHERE version_id = 2"
                      " AND status = 'ok'") == [(6,)]  # the six active cases


async def test_the_app_opens_a_checkpoint_cut_short(checkpoint_cut_short, tmp_path,
                                                      make_test_app) -> None:
    from pilot_support import settle

    path = copy_project(checkpoint_cut_short[0], tmp_path / "p.db")
    app = make_test_app(path, model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.startup_error is None and app.session.store is not None
        assert len(await app.session.store.cases.all()) == checkpoint_cut_short[1]


def test_a_cut_short_file_whose_wal_lacks_the_pages_is_refused_untouched(tmp_path) -> None:
    """Real damage: the file was cut, and the WAL beside it holds only a later change."""
    path = tmp_path / "p.db"
    make_project(path, 400, note_bytes=500)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("UPDATE project SET task = 'a change that sits in the WAL'")
    damaged = tmp_path / "damaged.db"
    shutil.copyfile(path, damaged)
    shutil.copyfile(f"{path}-wal", f"{damaged}-wal")
    db.close()
    with damaged.open("r+b") as f:
        f.truncate(damaged.stat().st_size // 2)
    before = digest(damaged), digest(Path(f"{damaged}-wal"))
    with pytest.raises(ProjectFileError, match="damaged project file") as info:
        asyncio.run(Store.open(damaged))
    assert "\n" not in str(info.value)
    done = coevo("export", str(damaged), str(tmp_path / "out.jsonl"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "damaged project file" in done.stderr
    assert (digest(damaged), digest(Path(f"{damaged}-wal"))) == before


# ====================================================================== kills
# Enough rows that writing them takes most of an import's time (~0.3 s of ~0.5 s here),
# so that most kills land while the project is being written.
ROWS = 20_000

def test_a_killed_import_into_a_new_project_leaves_none_or_all(tmp_path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    path = folder / "p.db"
    source = write_jsonl(tmp_path / "cases.jsonl", ROWS, width=100)
    args = ["import", str(path), str(source)]
    duration = seconds_to_finish(args)
    outcomes = []
    for delay in kill_moments(duration * 1.1, 5, seed=7):
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            file.unlink(missing_ok=True)
        kill_after(args, delay)
        assert visible(folder) <= {"p.db", "p.db-wal", "p.db-shm"}
        if path.exists():
            assert check_project_file(path) is False
            assert asyncio.run(open_and_count(path))["cases"] == ROWS
            outcomes.append("whole")
        else:
            outcomes.append("none")
    # What killed creations left is hidden; the next creation clears it away.
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        file.unlink(missing_ok=True)
    done = coevo(*args)
    assert done.returncode == 0, done.stderr
    assert hidden(folder) == set(), outcomes
    assert rows(path, "SELECT count(*) FROM cases") == [(ROWS,)]


def test_a_killed_import_into_a_project_adds_all_rows_or_none(tmp_path) -> None:
    path = tmp_path / "p.db"
    make_project(path, 10)
    source = write_jsonl(tmp_path / "cases.jsonl", ROWS, width=100)
    args = ["import", str(path), str(source)]
    duration = seconds_to_finish(args)
    expected = 10 + ROWS
    for delay in kill_moments(duration * 1.1, 5, seed=11):
        expected += ROWS
        kill_after(args, delay)
        count = asyncio.run(open_and_count(path))["cases"]
        assert count in (expected - ROWS, expected)
        expected = count
    # One import event per import that went in (the first is make_project's).
    assert rows(path, "SELECT count(*) FROM event WHERE kind = 'import'") == [
        (1 + (expected - 10) // ROWS,)]


def test_a_killed_demo_creation_leaves_no_project_or_the_whole_demo(tmp_path) -> None:
    from coevo_tui.commands.demo import demo_cases

    folder = tmp_path / "projects"
    folder.mkdir()
    path = folder / "demo.db"
    args = ["demo", "--no-open", str(path)]
    duration = seconds_to_finish(args)
    for delay in kill_moments(duration * 1.1, 5, seed=3):
        for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            file.unlink(missing_ok=True)
        kill_after(args, delay)
        assert visible(folder) <= {"demo.db", "demo.db-wal", "demo.db-shm"}
        if path.exists():
            assert asyncio.run(open_and_count(path)) == {
                "cases": len(demo_cases()), "versions": 1, "running": 0}
            assert rows(path, "SELECT name FROM project") == [(DEMO_NAME,)]
    done = coevo(*args)
    assert done.returncode == 0, done.stderr
    assert hidden(folder) == set()


def test_a_killed_run_is_halted_on_the_next_open_and_resumes(
        tmp_path, fake_server: FakeModelServer) -> None:
    path = tmp_path / "p.db"
    total = 20
    make_project(path, total)
    fake_server.ttft = 0.3  # 20 cases two at a time: 3 s of calls, far longer than a kill
    args = ["run", str(path), "--model", MODEL, "--api-base", fake_server.url,
            "--concurrency", "2"]
    rng = random.Random(5)
    answered = 0
    for kill in range(1, 4):
        # Loading litellm takes seconds: kill at a seeded moment once this run has stored
        # an answer, so that every kill lands among the calls and the stores.
        def stored_one(kill: int = kill, before: int = answered) -> bool:
            return (rows(path, "SELECT count(*) FROM run")[0][0] == kill and rows(
                path, "SELECT count(*) FROM output")[0][0] > before)

        kill_after(args, 60, until=stored_one, then=rng.uniform(0, 0.3))
        answered = rows(path, "SELECT count(*) FROM output")[0][0]
        assert rows(path, "SELECT status FROM run WHERE id = ?", (kill,)) == [("running",)]
        assert asyncio.run(open_and_count(path))["running"] == 0  # its process is gone
        assert all(n == 1 for (n,) in rows(
            path, "SELECT count(*) FROM output WHERE status = 'ok' GROUP BY case_id"))
    finished = rows(path, "SELECT count(*) FROM output WHERE status = 'ok'")[0][0]
    fake_server.reset()
    fake_server.ttft = 0.0
    done = coevo(*args)
    assert done.returncode == 0, done.stderr
    assert f"({finished} already done)" in done.stdout
    assert fake_server.request_count == total - finished
    assert rows(path, "SELECT count(*), count(DISTINCT case_id) FROM output"
                      " WHERE status = 'ok' AND version_id = 2") == [(total, total)]
    assert rows(path, "SELECT status, count(*) FROM run GROUP BY status ORDER BY status"
                ) == [("done", 1), ("halted", 3)]


def test_a_bad_row_in_an_import_into_a_new_project_leaves_nothing(tmp_path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    source = tmp_path / "cases.jsonl"
    source.write_text('{"id": "a", "input": "one"}\n{"id": "a", "input": "again"}\n')
    done = coevo("import", str(folder / "p.db"), str(source))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "duplicate id 'a'" in done.stderr
    assert os.listdir(folder) == []


# ====================================================================== a full disk
def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1 and stderr.startswith("coevo: "), stderr
    assert "Traceback" not in stderr
    return stderr


def test_a_full_disk_during_an_import_into_a_new_project_leaves_nothing(small_disk, tmp_path
                                                                        ) -> None:
    source = write_jsonl(tmp_path / "big.jsonl", 6000, width=600)
    done = coevo("import", str(small_disk / "p.db"), str(source))
    assert done.returncode == 3, done.stderr
    assert "the disk is full; no project was created" in one_line(done.stderr)
    assert os.listdir(small_disk) == []


def test_a_full_disk_during_an_import_keeps_the_project(small_disk, tmp_path) -> None:
    path = small_disk / "p.db"
    assert coevo("import", str(path), str(write_jsonl(tmp_path / "few.jsonl", 20))
                 ).returncode == 0
    before = rows(path, "SELECT * FROM cases")
    done = coevo("import", str(path), str(write_jsonl(tmp_path / "big.jsonl", 6000,
                                                      width=600)))
    assert done.returncode == 3
    assert "the disk is full" in one_line(done.stderr)
    assert rows(path, "SELECT * FROM cases") == before
    exported = coevo("export", str(path), "-")
    assert exported.returncode == 0 and len(exported.stdout.splitlines()) == 20
    # Once the failed transaction is gone, the space is back: a small import fits.
    assert coevo("import", str(path), str(write_jsonl(tmp_path / "more.jsonl", 5,
                                                      prefix="more"))).returncode == 0


def test_a_full_disk_during_a_run_keeps_every_answer_shown(
        small_disk, tmp_path, fake_server: FakeModelServer) -> None:
    path = small_disk / "p.db"
    total = 30
    make_project(path, total)
    fake_server.responder = lambda body: "a long answer " * 1500  # ~21 kB each
    filler = fill_up(small_disk, leave=250_000)
    args = ["run", str(path), "--model", MODEL, "--api-base", fake_server.url,
            "--concurrency", "2"]
    done = coevo(*args)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "the disk is full" in one_line(done.stderr)
    last = done.stdout.splitlines()[-1]
    assert last.startswith("halted: "), last
    shown = int(last.removeprefix("halted: ").split(" ok")[0])
    assert 0 < shown < total
    stored = rows(path, "SELECT count(*) FROM output WHERE status = 'ok'")[0][0]
    assert stored == shown
    filler.unlink()
    assert asyncio.run(open_and_count(path))["running"] == 0
    assert rows(path, "SELECT status FROM run") == [("halted",)]
    fake_server.reset()
    resumed = coevo(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert fake_server.request_count == total - shown
    assert rows(path, "SELECT count(DISTINCT case_id) FROM output WHERE status = 'ok'"
                ) == [(total,)]


# ====================================================================== read-only places
@contextlib.contextmanager
def read_only_place(kind: str, folder: Path, path: Path) -> Iterator[None]:
    """The project `path` in `folder` made read-only: the file, the folder, or the mount."""
    if kind == "mount":
        with read_only_bind(folder):
            yield
        return
    if os.geteuid() == 0:
        probe = subprocess.run(["true"], preexec_fn=_without_root_override,
                               capture_output=True)
        if probe.returncode != 0:
            pytest.skip("cannot drop root's permission overrides here")
    target = path if kind == "file" else folder
    mode = target.stat().st_mode
    target.chmod(0o444 if kind == "file" else 0o555)
    try:
        yield
    finally:
        target.chmod(mode)


@pytest.fixture
def labelled_project(tmp_path) -> tuple[Path, Path]:
    folder = tmp_path / "projects"
    folder.mkdir()
    path = folder / "p.db"
    make_project(path, 4)

    async def answer() -> None:
        async with await Store.open(path) as store:
            await store.outputs.add(case_id=1, version_id=2, model=f"openai/{MODEL}",
                                   params={}, text="fine", status=OutputStatus.OK)
    asyncio.run(answer())
    command_files(tmp_path)
    return folder, path


@pytest.mark.parametrize("kind", ["file", "folder", "mount"])
def test_reading_commands_work_in_a_read_only_place(labelled_project, tmp_path, kind
                                                    ) -> None:
    folder, path = labelled_project
    before = digest(path)
    out = tmp_path / "out.jsonl"
    with read_only_place(kind, folder, path):
        for command, (args, _) in READING.items():
            done = coevo(*expand(args, path, tmp_path), bounded=True)
            assert (done.returncode, done.stderr) == (0, ""), (command, done.stderr)
        assert len(out.read_text().splitlines()) == 4
    assert digest(path) == before


@pytest.mark.parametrize("kind", ["file", "folder", "mount"])
def test_writing_commands_say_read_only_in_a_read_only_place(labelled_project, tmp_path,
                                                            kind) -> None:
    folder, path = labelled_project
    before = digest(path)
    writing = {name: args for name, (args, _) in WRITING.items()}
    if kind == "mount":  # the slow one (it loads litellm): once is enough
        writing["run"] = ["run", "{p}", "--model", "coevo-fake/echo"]
    with read_only_place(kind, folder, path):
        for command, args in writing.items():
            done = coevo(*expand(args, path, tmp_path), bounded=True)
            assert done.returncode == 3, (command, done.stderr)
            assert "read-only" in one_line(done.stderr), command
            assert done.stdout == ""
    assert digest(path) == before


def test_changes_a_read_only_mount_cannot_show_are_refused(labelled_project, tmp_path
                                                          ) -> None:
    """On a read-only mount with a -wal but no -shm, SQLite cannot read the -wal, and
    reading the file alone would silently show an older project: refuse, saying why."""
    _, path = labelled_project
    folder = tmp_path / "copy"
    folder.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute("UPDATE project SET task = 'only in the WAL'")
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{path}{suffix}", folder / f"p.db{suffix}")
    db.close()
    copy = folder / "p.db"
    with read_only_bind(folder):
        with pytest.raises(ReadOnlyProject, match="newest changes are still in p.db-wal"):
            asyncio.run(Store.open(copy, read_only=True))
        done = coevo("export", str(copy), "-")
        assert done.returncode == 3
        assert "cannot be read in this read-only place" in one_line(done.stderr)
    assert sorted(os.listdir(folder)) == ["p.db", "p.db-wal"]


async def test_store_open_in_a_read_only_mount(labelled_project) -> None:
    folder, path = labelled_project
    with read_only_bind(folder):
        with pytest.raises(ReadOnlyProject, match="read-only file system"):
            await Store.open(path)
        async with await Store.open(path, read_only=True) as store:
            assert store.read_only
            assert len(await store.cases.all()) == 4
            with pytest.raises(ReadOnlyProject):
                await store.cases.add(NewCase(input="not here"))
        async with await Store.open_to_read(path) as store:
            assert store.read_only
        with pytest.raises(ReadOnlyProject, match="cannot create a project here"):
            await Store.open(folder / "new.db")
    assert os.listdir(folder) == ["p.db"]

