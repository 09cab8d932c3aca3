"""Nothing lost, nothing leaked, never a traceback (issue 7): the command line's error
boundary, Ctrl-C, the bounded import reader and its messages, and the app's error path.

Most commands run in-process through `coevo_tui.__main__.main` (fast); the Ctrl-C tests
and the endless source run `coevo` as a real process, as a user would. Waits are polls
with generous limits, never timed assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import gc
import hashlib
import io
import json
import logging
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_model_server import FakeModelServer
from pilot_support import open_screen, raised_notifications, settle, wait_for

from coevo_tui.__main__ import main as coevo
from coevo_tui.app import CoevoApp
from coevo_tui.store.project_file import read_only_reason
from coevo_tui.domain.errors import shown_name
from coevo_tui.store import NewCase, Store
from coevo_tui.store import formats
from coevo_tui.widgets.status_bar import StatusBar

INTERNAL_HINT = "(please report; COEVO_DEBUG=1 shows the details)"


# ---------------------------------------------------------------------- helpers
def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = coevo(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def seed(path: Path) -> Path:
    """Make `path` a project holding one case, with id 'taken'."""
    async with await Store.open(path) as store:
        await store.cases.add_many([NewCase(input="already here", ext_id="taken")], kind="create")
    return path


def seeded_project(path: Path) -> Path:
    """`seed`, for tests that are not coroutines."""
    return asyncio.run(seed(path))


def query(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def intact(path: Path) -> bool:
    return query(path, "PRAGMA integrity_check") == [("ok",)]


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("COEVO_", "PYTHON")) and not k.endswith("_API_KEY")}
    clean.update(LITELLM_LOCAL_MODEL_COST_MAP="True", NO_COLOR="1", COEVO_RETRY_DELAY="0.01",
                 COEVO_TIMEOUT="20", COEVO_MAX_ATTEMPTS="2")
    clean.update(extra)
    return clean


def start(*args: str, stdout: int = subprocess.DEVNULL, **popen: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "coevo_tui", *args], env=env(),
                            stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            **popen)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str,
               limit: float = 120) -> None:
    """Poll until `ready()`; fail if `proc` ends first or `limit` seconds pass."""
    deadline = time.monotonic() + limit
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"coevo ended (status {proc.returncode}) before {what}: "
                        f"{proc.stderr.read().decode() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def interrupt(proc: subprocess.Popen) -> tuple[int, str]:
    """One SIGINT; then (exit status, stderr). Fails if one is not enough. Its standard
    output is not read meanwhile: a command blocked writing to it must stop all the same."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("one Ctrl-C did not stop the command")
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode("utf-8", "replace")


def reading(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open and has read some of it (Linux /proc)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) != str(path):
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:
            continue
        return int(info.split("pos:")[1].split()[0]) > 0
    return False


needs_proc = pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(),
                                reason="needs Linux /proc to see how far coevo has read")


# ---------------------------------------------------------------------- the boundary
def fail_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make `coevo import` raise `error` from inside the command."""
    from coevo_tui.commands import transfer

    def broken(args: Any) -> int:
        raise error

    monkeypatch.setattr(transfer, "main", broken)


def test_an_unexpected_error_is_one_line_asking_for_a_report(tmp_path, capsys,
                                                             monkeypatch) -> None:
    monkeypatch.delenv("COEVO_DEBUG", raising=False)
    fail_with(monkeypatch, ZeroDivisionError("boom\nand a second line"))
    code, out, err = cli(capsys, "import", str(tmp_path / "p.db"), str(tmp_path / "c.jsonl"))
    assert (code, out) == (70, "")
    assert err == ("coevo: internal error: ZeroDivisionError: boom\\nand a second line "
                   f"{INTERNAL_HINT}\n")
    assert "Traceback" not in err


def test_an_internal_error_never_shows_an_api_key(tmp_path, capsys, monkeypatch) -> None:
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    fail_with(monkeypatch, RuntimeError(f"provider said: bad key {secret}"))
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(tmp_path / "c.jsonl"))
    assert code == 70 and err.count("\n") == 1
    assert "SECRET" not in err and "[redacted]" in err


def test_coevo_debug_adds_the_traceback_for_a_report(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COEVO_DEBUG", "1")
    fail_with(monkeypatch, ZeroDivisionError("boom"))
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(tmp_path / "c.jsonl"))
    assert code == 70
    assert err.startswith("Traceback (most recent call last):")
    assert err.splitlines()[-1].startswith("coevo: internal error: ZeroDivisionError: boom")


def _chained_disk_full() -> Exception:
    """SQLite rolls back by itself on a full disk; the store's ROLLBACK then fails."""
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")
    except sqlite3.OperationalError as exc:
        return exc


REFUSALS = [
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "the disk is full"),
    (OSError(errno.EROFS, "Read-only file system"), "the file system is read-only"),
    (OSError(errno.EACCES, "Permission denied"), "permission denied"),
    (OSError(errno.EIO, "Input/output error"), "the disk reported an I/O error"),
    (MemoryError(), "out of memory"),
    (sqlite3.OperationalError("database or disk is full"), "the disk is full"),
    (sqlite3.OperationalError("attempt to write a readonly database"),
     "the project is read-only"),
    (sqlite3.OperationalError("disk I/O error"), "the disk reported an I/O error"),
    (_chained_disk_full(), "the disk is full"),
]


@pytest.mark.parametrize(("error", "reason"), REFUSALS,
                         ids=[f"{type(e).__name__}-{r}" for e, r in REFUSALS])
def test_the_machine_refusing_is_one_line_with_status_3(tmp_path, capsys, monkeypatch, error,
                                                        reason) -> None:
    fail_with(monkeypatch, error)
    project = tmp_path / "p.db"
    code, out, err = cli(capsys, "import", str(project), str(tmp_path / "c.jsonl"))
    assert (code, out) == (3, "")
    assert err.count("\n") == 1 and err.startswith("coevo: "), err
    assert reason in err and "nothing was imported" in err, err
    assert "Traceback" not in err


def test_a_keyboard_interrupt_says_what_was_kept(tmp_path, capsys, monkeypatch) -> None:
    fail_with(monkeypatch, KeyboardInterrupt())
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(tmp_path / "c.jsonl"))
    assert (code, err) == (130, "coevo: interrupted; nothing was imported\n")


def test_a_command_that_swallows_ctrl_c_still_exits_130(tmp_path, capsys, monkeypatch) -> None:
    from coevo_tui.commands import transfer

    async def swallows() -> int:
        signal.raise_signal(signal.SIGINT)  # the user's Ctrl-C, while the loop runs
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return 0  # a command that forgets to re-raise
        return 1

    monkeypatch.setattr(transfer, "main", lambda args: asyncio.run(swallows()))
    before = signal.getsignal(signal.SIGINT)
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(tmp_path / "c.jsonl"))
    assert (code, err) == (130, "coevo: interrupted; nothing was imported\n")
    assert signal.getsignal(signal.SIGINT) is before  # undone on return (in-process use)


def test_warnings_thread_and_loop_errors_never_reach_the_terminal(tmp_path, capsys,
                                                                  monkeypatch) -> None:
    from coevo_tui.commands import transfer

    class BrokenFinalizer:
        def __del__(self) -> None:
            raise RuntimeError("from a finalizer")

    async def noisy() -> int:
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
        warnings.warn("a library's warning", UserWarning, stacklevel=1)

        def thread_fails() -> None:
            raise RuntimeError("Event loop is closed")

        thread = threading.Thread(target=thread_fails)
        thread.start()
        thread.join()
        finalizer = BrokenFinalizer()
        del finalizer

        async def task_fails() -> None:
            raise RuntimeError("never retrieved")

        task = asyncio.ensure_future(task_fails())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del task
        gc.collect()
        asyncio.get_running_loop().call_soon(lambda: 1 / 0)  # a failing callback
        await asyncio.sleep(0.01)
        logging.getLogger("some.library").warning("a log record nobody handles")
        return 0

    monkeypatch.setattr(transfer, "main", lambda args: asyncio.run(noisy()))
    hooks = (threading.excepthook, sys.unraisablehook, logging.lastResort)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as PYTHONWARNINGS=error or -W error would
        code, out, err = cli(capsys, "import", str(tmp_path / "p.db"),
                             str(tmp_path / "c.jsonl"))
    assert (code, out, err) == (0, "", "")
    assert (threading.excepthook, sys.unraisablehook, logging.lastResort) == hooks


def test_dev_mode_and_warnings_as_errors_add_nothing_to_a_real_run(tmp_path) -> None:
    project = tmp_path / "p.db"
    src = tmp_path / "c.jsonl"
    src.write_text('{"input": "hello"}\n{"input": "again", "id": 7}\n', encoding="utf-8")
    loud = env(PYTHONWARNINGS="error", PYTHONDEVMODE="1", PYTHONASYNCIODEBUG="1")
    for args in (["import", str(project), str(src)],
                 ["export", str(project), str(tmp_path / "out.csv")],
                 ["eval", str(project)]):
        done = subprocess.run([sys.executable, "-m", "coevo_tui", *args], env=loud,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        lines = done.stderr.splitlines()
        if args[0] == "eval":  # one version only: bad input, one line
            assert done.returncode == 2 and len(lines) == 1, done.stderr
            assert lines[0].startswith("coevo: eval needs two prompt versions")
        else:
            assert (done.returncode, done.stderr) == (0, ""), done.stderr


# ---------------------------------------------------------------------- messages
def test_shown_name_escapes_what_would_break_or_drive_the_terminal() -> None:
    assert shown_name("plain name.jsonl") == "plain name.jsonl"
    assert shown_name("caf\u00e9 \u6f22\u5b57 \u00a0.csv") == "caf\u00e9 \u6f22\u5b57 \u00a0.csv"
    assert shown_name("two\nlines\r\tx.jsonl") == "two\\nlines\\r\\tx.jsonl"
    assert shown_name("\x1b[31mred\x07") == "\\x1b[31mred\\x07"
    assert shown_name("evil\u202egpj.csv") == "evil\\u202egpj.csv"  # a bidi override
    assert shown_name("sep\u2028x") == "sep\\u2028x"
    assert shown_name(os.fsdecode(b"caf\xe9.jsonl")) == "caf\\xe9.jsonl"  # not UTF-8
    assert shown_name(Path("a\nb")) == "a\\nb"
    assert shown_name(b"a\nb") == "a\\nb"


def test_json_errors_do_not_say_at_at(tmp_path, capsys) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"input": "fine"}\n{"input": "never closed}\n', encoding="utf-8")
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert code == 2
    assert err == (f"coevo: {src}, line 2: invalid JSON (Unterminated string starting at "
                   "column 11); nothing was imported\n")
    src.write_text('{"input": "bell \x07 inside"}\n', encoding="utf-8")
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert "Invalid control character at column 17" in err and " at at " not in err


def test_exporting_one_case_says_case(tmp_path, capsys) -> None:
    project = tmp_path / "p.db"
    src = tmp_path / "c.jsonl"
    src.write_text('{"input": "only one"}\n', encoding="utf-8")
    assert cli(capsys, "import", str(project), str(src))[0] == 0
    code, out, _ = cli(capsys, "export", str(project), str(tmp_path / "o.jsonl"))
    assert (code, out) == (0, f"exported 1 case to {tmp_path / 'o.jsonl'} (jsonl)\n")
    code, out, _ = cli(capsys, "export", str(project), str(tmp_path / "o.yaml"))
    assert (code, out) == (0, f"exported 1 test to {tmp_path / 'o.yaml'} (promptfoo)\n")


def test_a_huge_integer_id_is_called_too_long(tmp_path, capsys) -> None:
    src = tmp_path / "c.jsonl"
    src.write_text('{"input": "a", "id": ' + "7" * 5000 + "}\n", encoding="utf-8")
    code, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert code == 2
    assert err == (f"coevo: {src}, line 1: 'id' is too long (a number of 5000 digits); "
                   "nothing was imported\n")
    assert "sys.set_int_max_str_digits" not in err
    src.write_text('{"input": "a", "n": -' + "7" * 5000 + "}\n", encoding="utf-8")
    _, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert "line 1: invalid JSON (a number of more than 4300 digits)" in err
    src.write_text('{"input": "a", "n": ' + "7" * 5000 + ", oops}\n", encoding="utf-8")
    _, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert "invalid JSON (Expecting property name" in err and err.count("\n") == 1


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("c.jsonl", b'{"input": "\\u0000 starts with NUL"}\n', "'input' contains a NUL"),
    ("c.jsonl", b'{"input": "a", "note": "x\\u0000"}\n', "'note' contains a NUL"),
    ("c.csv", b"input,tags\nfine,\"a;b\x00\"\n", "a tag contains a NUL"),
    ("c.jsonl", b'\xef\xbb\xbf{"input": "a"}\n\xef\xbb\xbf{"input": "b"}\n',
     "invalid JSON (a byte-order mark (U+FEFF) at column 1)"),
])
def test_text_sqlite_cannot_keep_is_refused_by_line(tmp_path, capsys, name, content,
                                                     reason) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = tmp_path / name
    src.write_bytes(content)
    code, _, err = cli(capsys, "import", str(project), str(src))
    assert code == 2 and err.count("\n") == 1
    assert reason in err and ", line " in err, err
    assert sha256(project) == before


def test_deep_nesting_is_invalid_json_in_words(tmp_path, capsys) -> None:
    src = tmp_path / "c.jsonl"
    src.write_bytes(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    _, _, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src))
    assert err == f"coevo: {src}, line 1: invalid JSON (nested too deeply); nothing was imported\n"


def test_file_names_with_control_characters_stay_on_one_line(tmp_path, capsys) -> None:
    folder = tmp_path / "new\nline"
    folder.mkdir()
    shown = shown_name(folder)
    project = folder / "p\x1b[2J.db"
    src = folder / "cases\n.jsonl"
    src.write_text('{"input": "a"}\n{"input": ""}\n', encoding="utf-8")
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, out) == (2, "")
    assert err == (f"coevo: {shown}/cases\\n.jsonl, line 2: empty 'input'; "
                   "nothing was imported\n")
    src.write_text('{"input": "a"}\n', encoding="utf-8")
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, err) == (0, "")
    assert out == f"imported 1 case into {shown}/p\\x1b[2J.db (a new project)\n"
    target = folder / "out\n.jsonl"
    code, out, _ = cli(capsys, "export", str(project), str(target))
    assert out == f"exported 1 case to {shown}/out\\n.jsonl (jsonl)\n"
    messages = [
        cli(capsys, "import", str(project), str(folder / "gone\n.jsonl"))[2],
        cli(capsys, "export", str(project), str(folder / "o\n.txt"))[2],
        cli(capsys, "export", str(folder / "none\n.db"), str(folder / "o.jsonl"))[2],
        cli(capsys, "export", str(project), str(folder / "no\ndir" / "o.jsonl"))[2],
    ]
    for err in messages:
        assert err.count("\n") == 1 and err.startswith(f"coevo: {shown}/"), err


def test_a_line_longer_than_the_limit_is_refused_by_number(tmp_path, capsys) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = tmp_path / "long.jsonl"
    with src.open("wb") as f:
        f.write(b'{"input": "short"}\n')
        f.write(b'{"input": "' + b"x" * (formats.MAX_LINE_BYTES + 10) + b'"}\n')
    code, _, err = cli(capsys, "import", str(project), str(src))
    assert code == 2
    assert err == f"coevo: {src}, line 2: the line is longer than 16 MiB; nothing was imported\n"
    assert sha256(project) == before
    # A line of exactly the limit (not counting its newline) is fine.
    exact = b'{"input": "' + b"y" * (formats.MAX_LINE_BYTES - 13) + b'"}'
    assert len(exact) == formats.MAX_LINE_BYTES
    src.write_bytes(exact + b"\n")
    assert cli(capsys, "import", str(project), str(src))[0] == 0


def test_file_and_case_limits(tmp_path, capsys, monkeypatch) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(f'{{"input": "case {i}"}}\n' for i in range(10)), encoding="utf-8")
    monkeypatch.setattr(formats, "MAX_CASES", 9)
    _, _, err = cli(capsys, "import", str(project), str(src))
    assert err == (f"coevo: {src}: holds more than 9 cases, more than coevo imports at once "
                   "(split it into several files); nothing was imported\n")
    monkeypatch.setattr(formats, "MAX_CASES", 10)
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", src.stat().st_size - 1)
    monkeypatch.setitem(formats._LIMITS_TEXT, formats.MAX_FILE_BYTES, "the test's limit")
    _, _, err = cli(capsys, "import", str(project), str(src))
    assert err == (f"coevo: {src}: larger than the test's limit, more than coevo imports at "
                   "once (split it into several files); nothing was imported\n")
    assert sha256(project) == before


def test_a_device_is_refused_before_it_is_read(tmp_path, capsys) -> None:
    project = seeded_project(tmp_path / "p.db")
    link = tmp_path / "null.jsonl"
    link.symlink_to("/dev/null")
    code, _, err = cli(capsys, "import", str(project), str(link))
    assert code == 2
    assert err == (f"coevo: {link}: is a character device, not a file of cases; "
                   "nothing was imported\n")


def test_a_fifo_is_read_like_a_file(tmp_path, capsys) -> None:
    project = tmp_path / "p.db"
    fifo = tmp_path / "cases.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as f:
            f.write(b"id,input\r\n")
            for i in range(3000):
                f.write(f'k{i},"line one, of {i}\r\nline two"\r\n'.encode())

    writer = threading.Thread(target=feed)
    writer.start()
    code, out, err = cli(capsys, "import", str(project), str(fifo))
    writer.join()
    assert (code, err) == (0, ""), err
    assert out == f"imported 3000 cases into {project} (a new project)\n"
    assert query(project, "SELECT ext_id, input FROM cases WHERE ext_id = 'k2999'") == [
        ("k2999", "line one, of 2999\r\nline two")]


def test_export_writes_into_a_device_or_fifo_instead_of_replacing_it(tmp_path,
                                                                    capsys) -> None:
    project = tmp_path / "p.db"
    src = tmp_path / "c.jsonl"
    src.write_text('{"input": "one"}\n{"input": "two"}\n', encoding="utf-8")
    assert cli(capsys, "import", str(project), str(src))[0] == 0
    null = tmp_path / "null.jsonl"
    null.symlink_to(os.devnull)
    code, out, _ = cli(capsys, "export", str(project), str(null))
    assert (code, out) == (0, f"exported 2 cases to {null} (jsonl)\n")
    assert null.is_symlink() and null.is_char_device()  # written through, not replaced
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    code, _, err = cli(capsys, "export", str(project), str(fifo))
    reader.join()
    assert (code, err) == (0, "")
    assert fifo.is_fifo()
    assert received[0].decode().splitlines()[1:] == ["c1,one,,,imported,active",
                                                      "c2,two,,,imported,active"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "null.jsonl", "out.csv",
                                                         "p.db"]


def test_standard_input_can_be_the_file(tmp_path) -> None:
    project = tmp_path / "p.db"
    done = subprocess.run([sys.executable, "-m", "coevo_tui", "import", str(project),
                           "/dev/stdin", "--format", "jsonl"], env=env(), capture_output=True,
                          timeout=120, input=b'{"input": "from a pipe"}\n')
    assert (done.returncode, done.stderr) == (0, b"")
    assert query(project, "SELECT input FROM cases") == [("from a pipe",)]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("source", ["symlink to /dev/zero", "endless FIFO of zeros",
                                    "endless FIFO of cases"])
def test_an_endless_source_is_refused_in_one_line_within_bounded_memory(tmp_path,
                                                                        source) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = tmp_path / "endless.jsonl"
    stop = threading.Event()
    writer = None
    if source == "symlink to /dev/zero":
        src.symlink_to("/dev/zero")
        reason = "is a character device, not a file of cases"
    else:
        os.mkfifo(src)
        chunk = b"\0" * 65536 if "zeros" in source else b'{"input": "y"}\n' * 4096
        reason = ("line 1: the line is longer than 16 MiB" if "zeros" in source
                  else "holds more than 1,000,000 cases")

        def feed() -> None:
            # coevo closes its end when it refuses the source.
            with contextlib.suppress(OSError, ValueError), src.open("wb") as f:
                while not stop.is_set():
                    f.write(chunk)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    try:
        done = subprocess.run([sys.executable, "-m", "coevo_tui", "import", str(project),
                               str(src)], env=env(), capture_output=True, text=True,
                              timeout=300, preexec_fn=_limit_memory)
    finally:
        stop.set()
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and reason in done.stderr, done.stderr
    assert done.stderr.endswith("; nothing was imported\n")
    assert sha256(project) == before


# ---------------------------------------------------------------------- Ctrl-C
@needs_proc
def test_ctrl_c_while_a_large_file_is_read(tmp_path) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = tmp_path / "large.jsonl"
    row = ('{"input": "' + "a large import that is still being read " * 25 + '"}\n').encode()
    with src.open("wb") as f:
        for _ in range(80):
            f.write(row * 1000)
    proc = start("import", str(project), str(src))
    wait_until(lambda: reading(proc.pid, src), proc, "coevo started reading")
    code, err = interrupt(proc)
    assert (code, err) == (130, "coevo: interrupted; nothing was imported\n")
    assert sha256(project) == before and intact(project)
    assert query(project, "SELECT ext_id FROM cases") == [("taken",)]


def test_ctrl_c_while_a_fifo_waits_for_more(tmp_path) -> None:
    project = tmp_path / "new.db"
    fifo = tmp_path / "cases.jsonl"
    os.mkfifo(fifo)
    proc = start("import", str(project), str(fifo))
    writer: list[int] = []

    def opened_by_coevo() -> bool:  # opening for writing succeeds once coevo reads it
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return False
        return True

    wait_until(opened_by_coevo, proc, "coevo opened the FIFO")
    try:
        os.write(writer[0], b'{"input": "one"}\n' * 100)  # and then nothing: no end yet
        code, err = interrupt(proc)
    finally:
        os.close(writer[0])
    assert (code, err) == (130, "coevo: interrupted; nothing was imported\n")
    assert not project.exists()


@pytest.mark.slow
def test_ctrl_c_during_a_run_keeps_the_answers(tmp_path, fake_server: FakeModelServer) -> None:
    project = tmp_path / "p.db"

    async def make() -> None:
        async with await Store.open(project) as store:
            await store.versions.create("Answer in one line.", "Input: {input}", "v2")
            await store.cases.add_many([NewCase(input=f"case {i}") for i in range(16)])

    asyncio.run(make())
    fake_server.ttft = 0.4
    proc = start("run", str(project), "--model", "gpt-4o-mini", "--api-base", fake_server.url,
                 "--concurrency", "2", stdout=subprocess.PIPE)
    wait_until(lambda: project.with_name("p.db-wal").exists() and query(
        project, "SELECT count(*) FROM output")[0][0] >= 2, proc, "two answers were stored")
    code, err = interrupt(proc)
    assert code == 130
    assert err == ("coevo: interrupted; the answers that arrived are saved; coevo run again "
                   "runs the rest\n")
    assert intact(project)
    kept = query(project, "SELECT count(*) FROM output WHERE status = 'ok'")[0][0]
    assert 2 <= kept < 16
    assert query(project, "SELECT status FROM run") == [("halted",)]


@pytest.fixture(scope="module")
def large_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.db"

    async def make() -> None:
        async with await Store.open(path) as store:
            await store.cases.add_many([NewCase(input=f"case {i}: " + "words " * 40)
                                   for i in range(100_000)], kind="create")

    asyncio.run(make())
    return path


def test_ctrl_c_during_an_export_to_a_file_leaves_no_file(tmp_path, large_project) -> None:
    project = tmp_path / "p.db"
    shutil.copy(large_project, project)
    before = sha256(project)
    target = tmp_path / "out.jsonl"
    proc = start("export", str(project), str(target))
    wait_until(lambda: any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()),
               proc, "the export began writing")
    code, err = interrupt(proc)
    assert (code, err) == (130, "coevo: interrupted; nothing was exported\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.db"]
    assert sha256(project) == before


def test_ctrl_c_while_the_reader_of_an_export_stops_reading(tmp_path, large_project) -> None:
    proc = start("export", str(large_project), "-", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b'{"id": "c1"')  # then the pipe fills up
    code, err = interrupt(proc)
    assert (code, err) == (130, "coevo: interrupted; standard output holds part of the "
                                "export\n")
    assert intact(large_project)


def test_ctrl_c_while_eval_prints_to_a_full_pipe(tmp_path) -> None:
    project = tmp_path / "p.db"
    count = 12_000

    async def make() -> None:
        async with await Store.open(project) as store:
            await store.cases.add_many([NewCase(input=f"case {i} " + "x" * 80)
                                   for i in range(count)], kind="create")
            await store.versions.create("v2", None, note="v2")

    asyncio.run(make())
    db = sqlite3.connect(project, isolation_level=None)
    db.execute("BEGIN")
    for version, verdict in ((1, "bad"), (2, "good")):  # every case fixed: a long list
        db.executemany(
            "INSERT INTO output (case_id, version_id, model, text, status, created_at) "
            "VALUES (?, ?, 'm', 'answer', 'ok', '2025-01-01')",
            [(i, version) for i in range(1, count + 1)])
        db.execute("INSERT INTO label (output_id, verdict, source, created_at) "
                   "SELECT id, ?, 'human', '2025-01-01' FROM output WHERE version_id = ?",
                   (verdict, version))
    db.execute("COMMIT")
    db.close()
    before = sha256(project)
    proc = start("eval", str(project), "--check", stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"v1 -> v2 on 12000 active cases")
    code, err = interrupt(proc)
    assert (code, err) == (130, "coevo: interrupted; nothing was changed\n")
    assert sha256(project) == before and intact(project)


# ---------------------------------------------------------------------- the import fuzzer
STATES = ("candidate", "active", "archived", "rejected")


def reference_rows(data: bytes, fmt: str) -> list[tuple] | None:
    """What the README's import rules say the file holds: (id or None, input, tags, note,
    state) per case, or None when the file must be rejected. Written from the rules, on
    the whole file at once, independently of coevo's streaming reader."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    rows: list[tuple[Any, Any, Any, Any, Any, bool]] = []  # id, input, tags, note, state
    if fmt == "jsonl":
        for line in text.split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                return None
            if not isinstance(obj, dict):
                return None
            tags = obj.get("tags")
            if tags is None:
                tags = []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                return None
            rows.append((obj.get("id"), obj.get("input"), tags, obj.get("note"),
                         obj.get("state"), False))
    else:
        try:
            records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error:
            return None
        records = [r for r in records if r and not (len(r) == 1 and not r[0].strip())]
        if not records:
            return None
        header = [h.strip().lower() for h in records[0]]
        named = [h for h in header if h]
        if "input" not in header or len(set(named)) != len(named):
            return None
        for record in records[1:]:
            if len(record) != len(header):
                return None
            row = dict(zip(header, record))
            tags = (row.get("tags") or "").split(";")
            rows.append(((row.get("id") or "").strip() or None, row["input"], tags,
                         row.get("note"), row.get("state"), True))
    cases = []
    seen = {"taken"}  # the project's own case
    for ext_id, text_in, tags, note, state, _ in rows:
        if not isinstance(text_in, str) or not text_in.strip():
            return None
        if isinstance(ext_id, bool) or not (ext_id is None or isinstance(ext_id, (str, int))):
            return None
        if ext_id is not None:
            ext_id = str(ext_id).strip()
            if not ext_id or ext_id in seen:
                return None
            seen.add(ext_id)
        note = "" if note is None else note
        if not isinstance(note, str):
            return None
        if state in (None, ""):
            state = "active"
        elif not isinstance(state, str) or state.strip() not in STATES:
            return None
        tags = tuple(t.strip() for t in tags if t.strip())
        values = [text_in, note, *tags] + ([ext_id] if ext_id else [])
        try:
            for value in values:
                value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
            return None
        if any("\x00" in value for value in values):  # SQLite's text stops at NUL
            return None
        cases.append((ext_id, text_in, tags, note, state.strip()))
    return cases or None


VALID_JSONL = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
    {"id": "a1", "input": "gg ez, uninstall", "tags": ["banter", "gaming"], "note": "why"},
    {"input": "report: he said \"kys\"", "tags": ["quote"]},
    {"id": 42, "input": "caf\u00e9 \u6f22\u5b57 \U0001f600 sep\u2028para\u2029",
     "state": "archived"},
    {"id": "b2", "input": "  spaces  ", "tags": [" x ", ""], "note": "", "state": "candidate"},
    {"id": "c3", "input": "tab\tand\\backslash", "extra": {"nested": [1, 2.5, None, True]}},
]) + "\n" + json.dumps({"input": "after a blank line", "id": -7}) + "\n"

VALID_CSV = ("id,input,tags,note,state\r\n"
             'a1,"hello, world","x; y ;;",a note,active\r\n'
             ',"two\r\nlines",,,\r\n'
             'c3,"say ""hi""",z,,archived\r\n'
             "\r\n"
             "d4,caf\u00e9 \u6f22\u5b57,,n,candidate\r\n")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage of the kinds real files have."""
    lines = data.split(b"\n")
    kind = rng.randrange(14)
    at = rng.randrange(len(data) + 1)
    if kind == 0:  # a flipped byte
        if not data:
            return data
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
    if kind == 1:  # cut short
        return data[:at]
    if kind == 2:  # a line twice
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i + 1] + lines[i:])
    if kind == 3:  # a line lost
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i] + lines[i + 1:])
    if kind == 4:  # bytes that are not UTF-8
        return data[:at] + rng.choice([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\xe9"]) + data[at:]
    if kind == 5:  # a huge or odd number
        number = rng.choice([b"1" * 5000, b"-" + b"9" * 4400, b"1e999", b"NaN", b"-0",
                             b"12345678901234567890"])
        return data.replace(b'"a1"', number, 1) if rng.random() < 0.5 else \
            data.replace(b"42", number, 1)
    if kind == 6:  # NUL bytes
        return data[:at] + b"\x00" * rng.randint(1, 3) + data[at:]
    if kind == 7:  # a value of the wrong type
        swap = rng.choice([b"42", b"null", b"true", b"[]", b'{"a": 1}', b'["x", 1]', b'""'])
        field = rng.choice([b'"input": ', b'"tags": ', b'"id": ', b'"note": ', b'"state": '])
        i = data.find(field)
        if i < 0:
            return data
        end = i + len(field)
        stop = data.find(b",", end) if data[end:end + 1] != b"[" else data.find(b"]", end) + 1
        return data[:end] + swap + data[stop:] if stop > end else data
    if kind == 8:  # a byte-order mark, at the start or elsewhere
        return (b"\xef\xbb\xbf" + data) if rng.random() < 0.5 else \
            data[:at] + b"\xef\xbb\xbf" + data[at:]
    if kind == 9:  # line ends converted
        return data.replace(b"\n", b"\r\n") if rng.random() < 0.5 else \
            data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    if kind == 10:  # a stray quote or delimiter
        return data[:at] + rng.choice([b'"', b",", b"\\", b"{", b"\\ud800"]) + data[at:]
    if kind == 11:  # an escaped lone surrogate or control character in a string
        return data.replace(b"gg ez", rng.choice([b"\\udc00", b"\\u0000", b"\\u001b"]), 1)
    if kind == 12:  # an id that the project already has, or an empty one
        return data.replace(b"a1", rng.choice([b"taken", b" ", b""]), 1)
    return b"\n".join(rng.sample(lines, len(lines)))  # lines shuffled


async def _cases_after(project: Path) -> list[tuple]:
    async with await Store.open(project) as store:
        return [(c.ext_id, c.input, c.tags, c.note, c.state.value)
                for c in await store.cases.all()]


def test_import_fuzzer_adds_exactly_the_rows_or_nothing(tmp_path, capsys) -> None:
    rng = random.Random(20240607)
    template = seeded_project(tmp_path / "template.db")
    accepted = rejected = 0
    bases = [(VALID_JSONL.encode("utf-8"), "jsonl"), (VALID_CSV.encode("utf-8"), "csv")]
    for number in range(400):
        base, fmt = bases[number % 2]
        data = base
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            data = mutate(data, rng)
        src = tmp_path / f"case{number}.{fmt}"
        src.write_bytes(data)
        project = tmp_path / "p.db"
        shutil.copy(template, project)
        before = sha256(project)
        expected = reference_rows(data, fmt)
        code, out, err = cli(capsys, "import", str(project), str(src))
        where = f"mutation {number} ({fmt}): {data!r}"
        if expected is None:
            assert code == 2, f"{where} was accepted: {out}"
            assert out == "" and err.count("\n") == 1 and err.startswith("coevo: "), where
            assert err.endswith("; nothing was imported\n"), where
            assert sha256(project) == before, where
            rejected += 1
        else:
            assert (code, err) == (0, ""), f"{where} was rejected: {err}"
            added = asyncio.run(_cases_after(project))[1:]
            assert len(added) == len(expected), where
            for got, want in zip(added, expected):
                assert got[1:] == want[1:], where
                assert want[0] is None or got[0] == want[0], where
            accepted += 1
        src.unlink()
    assert accepted >= 20 and rejected >= 100  # both outcomes were exercised


# ---------------------------------------------------------------------- the app
def _titled(app: CoevoApp) -> list[tuple[str, str]]:
    """Every notification the app raised, as (title, message)."""
    return [(n.title, n.message) for n in raised_notifications(app)]


async def test_a_project_that_cannot_be_written_opens_read_only(tmp_path, monkeypatch,
                                                                make_test_app) -> None:
    project = await seed(tmp_path / "p.db")
    before = sha256(project)
    monkeypatch.setattr("coevo_tui.session.read_only_reason", lambda path: "not writable")
    app = make_test_app(project, model=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.session.store is not None and app.session.store.read_only
        assert app.sub_title == "read-only"
        assert any(title == "read-only" and "cannot be saved" in message
                   for title, message in _titled(app))
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"a new case", "ctrl+s")
        refused = ("read-only", f"{project}: the project is open read-only; nothing was changed")
        # The editor comes back with the text, its write waiting: do not settle.
        await wait_for(pilot, lambda: refused in _titled(app), "the write refused")
        assert refused in _titled(app)
        await pilot.press("escape")
        await pilot.pause()
        await open_screen(app, pilot, "prompt")
        bar = app.screen.query_one(StatusBar)
        assert str(bar.render()).startswith("read-only · ")
        assert bar.has_class("-read-only")
    assert sha256(project) == before


@pytest.mark.parametrize(("error", "title", "message"), [
    (sqlite3.OperationalError("database or disk is full"), "Not saved",
     "the disk is full; nothing was changed. Free some space and try again"),
    (OSError(errno.EIO, "Input/output error"), "Not saved",
     "the disk reported an I/O error; nothing was changed"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "read-only",
     "the project is read-only; nothing was changed"),
])
async def test_the_machine_refusing_is_a_one_line_notification(project_path, error, title,
                                                               message, make_test_app) -> None:
    app = make_test_app(model=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.report_error(error)
        await pilot.pause()
        assert (title, f"{project_path}: {message}") in _titled(app)


async def test_a_refusal_at_start_up_stops_the_app_with_status_3(project_path, monkeypatch,
                                                                   make_test_app) -> None:
    async def refused(*args: Any, **kwargs: Any) -> Store:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "open", refused)
    app = make_test_app(model=None)
    async with app.run_test() as pilot:
        await pilot.pause()
    assert app.return_code == 3
    assert app.startup_error == (f"{project_path}: the disk reported an I/O error; "
                                 "nothing was changed")


def test_a_crash_in_the_tui_ends_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    from textual.app import App

    from coevo_tui.screens.cases import CasesScreen

    def crashes(self: CasesScreen) -> None:
        raise ZeroDivisionError("a bug in a screen")

    monkeypatch.setattr(CasesScreen, "on_mount", crashes)
    monkeypatch.setattr(CoevoApp, "run", lambda self, **kw: App.run(self, headless=True))
    monkeypatch.delenv("COEVO_DEBUG", raising=False)
    code, _, err = cli(capsys, str(tmp_path / "p.db"))
    assert code == 70
    assert err == f"coevo: internal error: ZeroDivisionError: a bug in a screen {INTERNAL_HINT}\n"


def test_a_project_on_a_read_only_mount_is_read_only(tmp_path) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs mount rights)")
    try:
        project = seeded_project(mount / "p.db")
        assert read_only_reason(project) is None
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        assert read_only_reason(project) is not None

        async def look() -> list:
            async with await Store.open(project, read_only=True) as store:
                return await store.cases.all()

        assert [c.ext_id for c in asyncio.run(look())] == ["taken"]
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
