"""The command line's contract: messages and exit statuses (SPEC section 4).

Usage errors are one line on stderr with a hint and exit status 2; a successful import
prints one line and exits 0. The installed `coevo` script and `python -m coevo_tui` are run
as real processes, as a user or a CI job would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coevo_tui.__main__ import main as coevo


def coevo_command() -> list[str]:
    """The installed `coevo` script beside this Python, else `python -m coevo_tui`."""
    script = Path(sys.executable).parent / "coevo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coevo_tui"]


def run(*args: str, cwd: Path, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "coevo_tui"] if module else coevo_command()
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "NO_COLOR": "1"})


def test_no_arguments_prints_usage_and_exits_2(tmp_path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout.startswith("usage: coevo")
    for command in ("import", "export", "run", "eval", "demo"):
        assert f"    {command} " in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_help_exits_0(tmp_path) -> None:
    result = run("--help", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert "coevo PATH" in result.stdout


def test_python_dash_m_is_the_same_program(tmp_path) -> None:
    result = run(cwd=tmp_path, module=True)
    assert result.returncode == 2 and result.stdout.startswith("usage: coevo")


USAGE_ERRORS = [
    (["import", "p.db", "c.jsonl", "--bogus"], "coevo: unrecognized arguments: --bogus"),
    (["import", "p.db"], "coevo import: the following arguments are required: FILE"),
    (["import"], "coevo import: the following arguments are required: PATH, FILE"),
    (["import", "p.db", "c.jsonl", "--format", "xml"],
     "coevo import: argument --format: invalid choice: 'xml'"),
    (["export", "p.db", "out.yaml", "--format", "yaml"],
     "coevo export: argument --format: invalid choice: 'yaml'"),
    (["--frobnicate"], "coevo: unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS,
                         ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_with_a_hint(tmp_path, capsys, monkeypatch, argv,
                                               message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        coevo(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "--help)" in err
    assert list(tmp_path.iterdir()) == []


def test_usage_error_from_the_real_script(tmp_path) -> None:
    result = run("import", "p.db", "c.jsonl", "--bogus", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "coevo: unrecognized arguments: --bogus (see coevo --help)\n"


def test_missing_import_file(tmp_path) -> None:
    result = run("import", "p.db", "missing.jsonl", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "coevo: missing.jsonl: no such file; nothing was imported\n"
    assert list(tmp_path.iterdir()) == []  # no project was created for nothing


def test_missing_project_for_export(tmp_path) -> None:
    result = run("export", "p.db", "out.jsonl", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "coevo: p.db: no such project file; nothing exported\n"
    assert list(tmp_path.iterdir()) == []


def test_import_happy_path_then_export(tmp_path) -> None:
    (tmp_path / "cases.jsonl").write_text(
        '{"input": "is gg ez a slur?", "tags": ["gaming"]}\n'
        '{"input": "can I have a refund?", "id": "refund-1"}\n', encoding="utf-8")
    result = run("import", "p.db", "cases.jsonl", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "imported 2 cases into p.db (a new project)\n"

    (tmp_path / "more.csv").write_text("input,id\nwhat about store credit?,credit-1\n",
                                       encoding="utf-8")
    result = run("import", "p.db", "more.csv", cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (
        0, "", "imported 1 case into p.db\n")

    result = run("export", "p.db", "-", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and '"id": "refund-1"' in lines[1] and '"credit-1"' in lines[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.jsonl", "more.csv", "p.db"]


def test_rejected_import_names_line_and_exits_2(tmp_path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"input": "fine"}\n{"input": ""}\n')
    result = run("import", "p.db", "cases.jsonl", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("coevo: cases.jsonl, line 2: empty 'input'; "
                             "nothing was imported\n")
    assert not (tmp_path / "p.db").exists()
