"""Opening a project file: create when missing, refuse anything else untouched (SPEC 4).

Every refused file must come out byte-for-byte the same, with no -wal/-shm/-journal file
created beside it, whether refused by Store.open or by the command line (`coevo import`,
`coevo export` and plain `coevo PATH`, run as real processes).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from coevo_tui.domain.errors import ProjectFileError
from coevo_tui.store import SCHEMA_VERSION, NewCase, Store, check_project_file
from coevo_tui.store.project_file import ProjectAppeared
from coevo_tui.store.schema import APPLICATION_ID, MIGRATIONS

SIDE_FILES = ("-wal", "-shm", "-journal")


def coevo_command() -> list[str]:
    """The installed `coevo` script beside this Python, else `python -m coevo_tui`."""
    script = Path(sys.executable).parent / "coevo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coevo_tui"]


def run_coevo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([*coevo_command(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def snapshot(path: Path) -> tuple[str, list[str]]:
    """The file's digest and which side files exist next to it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sides = [s for s in SIDE_FILES if Path(str(path) + s).exists()]
    return digest, sides


# ---------------------------------------------------------------------- the bad files
def text_file(path: Path) -> None:
    path.write_text("name,input\nthis is a CSV, not a project\n" * 20)


def random_bytes(path: Path) -> None:
    path.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(8192)))


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def truncated_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 20)


def other_sqlite_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    db.commit()
    db.close()


def other_sqlite_db_in_wal_mode(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()


def newer_coevo_project(path: Path) -> None:
    async def make() -> None:
        async with await Store.open(path) as store:
            await store.settings.update(task="made by a future coevo")

    asyncio.run(make())
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()


def damaged_coevo_project(path: Path) -> None:
    """A real project cut short: the header is ours, the pages it promises are missing."""
    newer_coevo_project(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 2")
    db.execute("CREATE TABLE padding (x)")
    db.executemany("INSERT INTO padding VALUES (?)", [("x" * 500,)] * 200)
    db.commit()
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[:4096] + b"\x00" * 10)


BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "text": (text_file, "not a SQLite database"),
    "random-bytes": (random_bytes, "not a SQLite database"),
    "empty": (empty_file, "an empty file"),
    "truncated-header": (truncated_header, "not a SQLite database"),
    "other-sqlite": (other_sqlite_db, "a SQLite database but not a coevo project"),
    "other-sqlite-wal": (other_sqlite_db_in_wal_mode, "a SQLite database but not a coevo"),
    "newer-schema": (newer_coevo_project, "written by a newer coevo (schema 99"),
    # Only SQLite can tell this one: the TUI has started when it is refused (see below).
    "damaged": (damaged_coevo_project, "damaged project file"),
}


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request, tmp_path: Path) -> tuple[Path, str]:
    make, reason = BAD_FILES[request.param]
    path = tmp_path / "project.db"
    make(path)
    assert snapshot(path)[1] == [], "the bad file must start without side files"
    return path, reason


async def test_store_open_refuses_bad_file_untouched(bad_file) -> None:
    path, reason = bad_file
    before = snapshot(path)
    with pytest.raises(ProjectFileError) as info:
        await Store.open(path)
    message = str(info.value)
    assert reason in message and "\n" not in message
    assert message.startswith(str(path))
    assert snapshot(path) == before


@pytest.mark.parametrize("command", ["import", "export", "open"])
def test_command_line_refuses_bad_file_untouched(bad_file, tmp_path, command) -> None:
    path, reason = bad_file
    before = snapshot(path)
    src = tmp_path / "cases.jsonl"
    src.write_text('{"input": "hello"}\n')
    out_file = tmp_path / "out.jsonl"
    args = {
        "import": ["import", str(path), str(src)],
        "export": ["export", str(path), str(out_file)],
        "open": [str(path)],
    }[command]
    result = run_coevo(*args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stdout == ""
    if command == "open" and "damaged" in reason:
        # The header looked right, so the TUI took the terminal before SQLite refused the
        # file; the message still comes last, on its own line, once the screen is restored.
        last_line = result.stderr.rstrip("\n").rsplit("\n", 1)[-1]
        message = last_line[last_line.find("coevo: "):]
        assert message.startswith(f"coevo: {path}: {reason}"), result.stderr
        assert "\x1b" not in message and result.stderr.endswith("\n")
    else:
        assert result.stderr.startswith(f"coevo: {path}: ")
        assert result.stderr.count("\n") == 1 and reason in result.stderr, result.stderr
    assert snapshot(path) == before
    assert not out_file.exists()


def test_folder_is_refused(tmp_path) -> None:
    folder = tmp_path / "project.db"
    folder.mkdir()
    with pytest.raises(ProjectFileError, match="is a folder"):
        check_project_file(folder)
    result = run_coevo("import", str(folder), "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2 and "is a folder" in result.stderr
    assert list(folder.iterdir()) == []


def test_missing_folder_is_refused(tmp_path) -> None:
    with pytest.raises(ProjectFileError, match="does not exist"):
        asyncio.run(Store.open(tmp_path / "no" / "such" / "p.db"))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- creating and reopening
async def test_missing_path_creates_a_marked_project(tmp_path) -> None:
    path = tmp_path / "fresh.db"
    async with await Store.open(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        assert (await store.settings.get()).name == "fresh"
        versions = await store.versions.all()
        assert [v.number for v in versions] == [1]
        kinds = [e.kind for e in reversed(await store.events.recent(50))]
        assert kinds[-2:] == ["create", "create"]  # the project, then version 1
        assert kinds.count("migrate") == SCHEMA_VERSION
    header = path.read_bytes()[:100]
    assert int.from_bytes(header[68:72], "big") == APPLICATION_ID
    assert int.from_bytes(header[60:64], "big") == SCHEMA_VERSION
    assert check_project_file(path) is False  # now an existing, openable project


async def test_reopening_keeps_data_and_adds_no_migration(tmp_path) -> None:
    path = tmp_path / "p.db"
    async with await Store.open(path) as store:
        await store.settings.update(task="classify messages")
        migrations = len(await store.events.recent(100, kind="migrate"))
    async with await Store.open(path) as store:
        assert (await store.settings.get()).task == "classify messages"
        assert len(await store.events.recent(100, kind="migrate")) == migrations


def test_import_into_missing_path_creates_the_project(tmp_path) -> None:
    src = tmp_path / "cases.csv"
    src.write_text("input\nhello\n")
    result = run_coevo("import", "new.db", "cases.csv", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "imported 1 case into new.db (a new project)\n"
    assert check_project_file(tmp_path / "new.db") is False


async def test_project_open_in_another_process_is_recognised(tmp_path) -> None:
    """A new project's header first lands in its WAL; Store.open checkpoints it so that
    another process's header check sees a coevo project while this one keeps it open."""
    path = tmp_path / "busy.db"
    async with await Store.open(path) as store:
        await store.cases.add(NewCase(input="written while open", ext_id="w1"))
        assert check_project_file(path) is False
        out_file = tmp_path / "out.jsonl"
        proc = await asyncio.create_subprocess_exec(
            *coevo_command(), "export", str(path), str(out_file),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL)
        stdout, stderr = await proc.communicate()
        assert (proc.returncode, stderr) == (0, b""), stderr.decode()
        assert '"id": "w1"' in out_file.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- creating whole
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_stale_partials_of_gone_processes_are_cleared_and_live_ones_kept(
        tmp_path) -> None:
    """What a creation killed half-way leaves is hidden, and the next creation (or writable
    open) of the same path removes it, unless its process may still be writing it."""
    host = socket.gethostname()
    dead = tmp_path / f".p.db.creating-{_dead_pid()}@{host}-0123abcd"
    live = tmp_path / f".p.db.creating-{os.getpid()}@{host}-89abcdef"
    elsewhere = tmp_path / f".p.db.creating-{_dead_pid()}@another-host-00000000"
    other_target = tmp_path / f".q.db.creating-{_dead_pid()}@{host}-00000000"
    for partial in (dead, live, elsewhere, other_target):
        partial.write_bytes(b"half a project")
    Path(f"{dead}-wal").write_bytes(b"its wal")
    async with await Store.open(tmp_path / "p.db") as store:
        assert (await store.settings.get()).name == "p"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["p.db", live.name, elsewhere.name, other_target.name])


async def test_a_project_appearing_during_creation_is_kept(tmp_path) -> None:
    """Two programs creating one path: the first to finish wins, the other keeps nothing of
    its own, and `Store.open` then opens the winner's project."""
    path = tmp_path / "p.db"

    async def another_program_is_quicker(store: Store) -> None:
        await store.cases.add(NewCase(input="mine, never published"))
        async with await Store.open(path, name="theirs") as theirs:
            await theirs.cases.add(NewCase(input="theirs"))

    with pytest.raises(ProjectAppeared):
        await Store.create(path, fill=another_program_is_quicker)
    assert sorted(os.listdir(tmp_path)) == ["p.db"]
    async with await Store.open(path) as store:
        assert (await store.settings.get()).name == "theirs"
        assert [c.input for c in await store.cases.all()] == ["theirs"]


async def test_a_new_project_is_one_file_with_nothing_beside_it(tmp_path) -> None:
    path = tmp_path / "p.db"
    store = await Store.create(path, name="whole",
                               fill=lambda s: s.cases.add_many([NewCase(input="one")]))
    await store.close()
    assert os.listdir(tmp_path) == ["p.db"]
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # the file alone
    try:
        assert db.execute("SELECT name FROM project").fetchall() == [("whole",)]
        assert db.execute("SELECT input FROM cases").fetchall() == [("one",)]
    finally:
        db.close()


def test_a_dangling_link_is_refused_not_followed(tmp_path) -> None:
    link = tmp_path / "p.db"
    link.symlink_to(tmp_path / "gone" / "p.db")
    with pytest.raises(ProjectFileError, match="which does not exist"):
        check_project_file(link)
    assert os.listdir(tmp_path) == ["p.db"]


async def test_a_project_an_older_coevo_left_half_created_is_finished(tmp_path) -> None:
    """An older coevo killed while creating a project left a file whose header lacks the
    coevo marker (it was still in the -wal) and no settings row: SQLite reading both finds
    a coevo project, and opening it for writing finishes the creation."""
    source = tmp_path / "source.db"
    db = sqlite3.connect(source, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    for number in sorted(MIGRATIONS):
        db.execute("BEGIN")
        for statement in MIGRATIONS[number]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    path = tmp_path / "p.db"
    shutil.copyfile(source, path)
    shutil.copyfile(f"{source}-wal", f"{path}-wal")
    db.close()
    assert int.from_bytes(path.read_bytes()[68:72], "big") != APPLICATION_ID
    assert check_project_file(path) is False
    async with await Store.open(path) as store:
        assert (await store.settings.get()).name == "p"
        assert [v.number for v in await store.versions.all()] == [1]

