"""`coevo import` and `coevo export`: SPEC sections 4 and 5.

The command line runs in-process (coevo_tui.__main__.main) for speed; test_project_file.py
and test_cli.py drive the installed script in subprocesses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coevo_tui.__main__ import main as coevo
from coevo_tui.domain.model import CaseSource, CaseState, OutputStatus, Verdict
from coevo_tui.store import NewCase, Store
from coevo_tui.store.formats import (
    PLACEHOLDER_PROVIDER,
    parse_csv,
    parse_jsonl,
    promptfoo_provider,
    promptfoo_yaml,
)


# ---------------------------------------------------------------------- helpers
def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = coevo(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def jsonl(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


async def _cases(path: Path) -> list:
    async with await Store.open(path) as store:
        return await store.cases.all()


def cases_of(path: Path) -> list:
    return asyncio.run(_cases(path))


async def _import_events(path: Path) -> list:
    async with await Store.open(path) as store:
        return await store.events.recent(1000, kind="import")


def import_events(path: Path) -> list:
    return asyncio.run(_import_events(path))


async def _seed(path: Path, cases: list[NewCase]) -> None:
    async with await Store.open(path) as store:
        await store.cases.add_many(cases, kind="create")


def seeded_project(path: Path) -> Path:
    """A project holding one case with id 'taken'."""
    asyncio.run(_seed(path, [NewCase(input="already here", ext_id="taken")]))
    return path


TRICKY = [
    'quotes " and \' and back\\slash',
    "two\nlines\r\nand a CRLF",
    "comma, semicolon; tab\there",
    "unicode: caf\u00e9, \u6f22\u5b57, emoji \U0001f600, line sep \u2028 para \u2029",
    "  leading and trailing spaces  ",
    "# not a comment: - not a list, null, yes, {{braces}} and {% tags %}",
    "bell \x07 and nbsp \u00a0 and next-line \u0085 and bom \ufeff",
]


async def _rich_project(path: Path) -> None:
    """Cases in every state with tags and notes, two versions, outputs and relabels."""
    async with await Store.open(path) as store:
        await store.settings.update(model="openai/gpt-4o-mini",
                                   params={"temperature": 0.25, "max_tokens": 200,
                                           "api_key": "sk-from-params-SECRET"})
        ids = await store.cases.add_many(
            [NewCase(input=text, ext_id=f"t{i}", tags=(f"tag{i}", "shared"),
                     note=f"note {i}" if i % 2 else "") for i, text in enumerate(TRICKY)],
            kind="create",
        )
        await store.cases.set_state(ids[1], CaseState.ARCHIVED)
        await store.cases.set_state(ids[2], CaseState.CANDIDATE)
        v2 = await store.versions.create(
            "Refuse slurs. Allow {{trash talk}}.", "Message:\n{input}\nVerdict?", note="v2"
        )
        v1 = await store.versions.by_number(1)
        out_a = await store.outputs.add(case_id=ids[0], version_id=v1.id, model="m",
                                       params={}, text="first answer", status=OutputStatus.OK)
        await store.labels.write(out_a.id, Verdict.BAD, "too strict")
        await store.labels.write(out_a.id, Verdict.GOOD, "")
        out_b = await store.outputs.add(case_id=ids[0], version_id=v2.id, model="m",
                                       params={}, text="second answer", status=OutputStatus.OK)
        await store.labels.write(out_b.id, Verdict.UNSURE, "depends on context")
        await store.outputs.add(case_id=ids[3], version_id=v2.id, model="m", params={},
                               text="", status=OutputStatus.ERROR, error="HTTP 500")


def rich_project(path: Path) -> Path:
    asyncio.run(_rich_project(path))
    return path


# ---------------------------------------------------------------------- import: happy paths
def test_import_jsonl_adds_every_case_as_imported_and_active(tmp_path, capsys) -> None:
    project = tmp_path / "p.db"
    src = write(tmp_path / "cases.jsonl", b"\xef\xbb\xbf" + jsonl(
        {"input": "first", "id": "a", "tags": [" x ", "", "y"], "note": "why"},
        {"input": "second", "id": 7},
    ).encode() + b"\n   \n" + jsonl({"input": "third", "extra": {"ignored": True}}).encode())
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, err) == (0, "")
    assert out == f"imported 3 cases into {project} (a new project)\n"
    cases = cases_of(project)
    assert [(c.ext_id, c.input, c.tags, c.note) for c in cases] == [
        ("a", "first", ("x", "y"), "why"),
        ("7", "second", (), ""),  # an integer id becomes its text
        (cases[2].ext_id, "third", (), ""),
    ]
    assert cases[2].ext_id not in {"a", "7"}
    assert {c.source for c in cases} == {CaseSource.IMPORTED}
    assert {c.state for c in cases} == {CaseState.ACTIVE}
    (event,) = import_events(project)
    assert event.payload["count"] == 3 and event.payload["file"] == str(src)


def test_import_into_existing_project_says_so(tmp_path, capsys) -> None:
    project = seeded_project(tmp_path / "p.db")
    src = write(tmp_path / "more.jsonl", jsonl({"input": "one more"}))
    code, out, _ = cli(capsys, "import", str(project), str(src))
    assert code == 0 and out == f"imported 1 case into {project}\n"
    assert len(cases_of(project)) == 2


def test_import_csv_with_bom_crlf_quoted_newlines_and_tags(tmp_path, capsys) -> None:
    project = tmp_path / "p.db"
    src = write(tmp_path / "cases.csv", b"\xef\xbb\xbf" + (
        "ID, Input ,tags,note,expected\r\n"
        'a,"hello, world","x; y ;;",a note,ignored\r\n'
        '\r\n'
        ',"two\r\nlines",,,\r\n'
        'c,"say ""hi""",z,,\r\n'
    ).encode())
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, err) == (0, ""), err
    assert out.startswith("imported 3 cases")
    cases = cases_of(project)
    assert [(c.input, c.tags, c.note) for c in cases] == [
        ("hello, world", ("x", "y"), "a note"),
        ("two\r\nlines", (), ""),
        ('say "hi"', ("z",), ""),
    ]
    assert cases[0].ext_id == "a" and cases[2].ext_id == "c" and cases[1].ext_id
    assert {c.source for c in cases} == {CaseSource.IMPORTED}


def test_import_with_explicit_format_ignores_the_extension(tmp_path, capsys) -> None:
    src = write(tmp_path / "cases.txt", "input\nfrom a txt file\n")
    code, out, err = cli(capsys, "import", str(tmp_path / "p.db"), str(src), "--format", "csv")
    assert (code, err) == (0, "")
    assert [c.input for c in cases_of(tmp_path / "p.db")] == ["from a txt file"]


# ---------------------------------------------------------------------- import: rejections
BAD_JSONL = [
    # (file content, line named, reason)
    (b'{"input": "ok"}\n\n{"input": "broken",}\n', 3, "invalid JSON"),
    (b'{"input": "ok"}\n{"id": "x"}\n', 2, "missing 'input'"),
    (b'{"input": "   "}\n', 1, "empty 'input'"),
    (b'{"input": 42}\n', 1, "'input' must be a string, not a number"),
    (b'{"input": ["a"]}\n', 1, "'input' must be a string, not a list"),
    (b'{"input": "a", "tags": "x;y"}\n', 1, "'tags' must be a list of strings"),
    (b'{"input": "a", "tags": ["x", 1]}\n', 1, "'tags' must be a list of strings"),
    (b'{"input": "a", "id": 1.5}\n', 1, "'id' must be a string or an integer, not a number"),
    (b'{"input": "a", "id": true}\n', 1, "'id' must be a string or an integer, not a boolean"),
    (b'{"input": "a", "id": " "}\n', 1, "empty 'id'"),
    (b'{"input": "a", "note": 3}\n', 1, "'note' must be a string, not a number"),
    (b'{"input": "a", "state": "deleted"}\n', 1, "'state' must be one of"),
    (b'[1, 2]\n', 1, "expected a JSON object, found a list"),
    (b'{"input": "a", "id": "x"}\n{"input": "b", "id": "x"}\n', 2,
     "duplicate id 'x' (first on line 1)"),
    (b'{"input": "fine"}\n{"input": "caf\xe9"}\n', 2, "not valid UTF-8"),
    (b'{"input": "lone \\ud800 surrogate"}\n', 1, "lone surrogate"),
    (b'{"input": "a", "n": ' + b"1" * 5000 + b"}\n", 1, "invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", 1, "invalid JSON"),
]


@pytest.mark.parametrize(("content", "line", "reason"), BAD_JSONL,
                         ids=[r for _, _, r in BAD_JSONL])
def test_bad_jsonl_row_rejects_whole_file_naming_line(tmp_path, capsys, content, line,
                                                      reason) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = write(tmp_path / "bad.jsonl", content)
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"coevo: {src}, line {line}: "), err
    assert reason in err
    assert err.endswith("; nothing was imported\n")
    assert sha256(project) == before
    assert [c.ext_id for c in cases_of(project)] == ["taken"]


BAD_CSV = [
    (b"id,text\n1,hello\n", 1, "no 'input' column"),
    (b"input,input\na,b\n", 1, "column 'input' appears twice"),
    (b"id,input\n1,ok\n2,too,many\n", 3, "expected 2 fields, found 3"),
    (b"id,input,note\n1,ok,n\n2,short\n", 3, "expected 3 fields, found 2"),
    (b'id,input\n1,"multi\nline ok"\n2,"never closed\n', 4, "malformed CSV"),
    (b"id,input\n1,ok\n2,\n", 3, "empty 'input'"),
    (b"id,input\nx,a\nx,b\n", 3, "duplicate id 'x' (first on line 2)"),
    (b"input,state\na,gone\n", 2, "'state' must be one of"),
    (b"input\nfine\n\xff\xfe bad bytes\n", 3, "not valid UTF-8"),
]


@pytest.mark.parametrize(("content", "line", "reason"), BAD_CSV, ids=[r for _, _, r in BAD_CSV])
def test_bad_csv_rejects_whole_file_naming_line(tmp_path, capsys, content, line,
                                                reason) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = write(tmp_path / "bad.csv", content)
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, out) == (2, "")
    assert err == f"coevo: {src}, line {line}: {err.split(': ', 2)[2]}"
    assert reason in err and err.endswith("; nothing was imported\n")
    assert sha256(project) == before


WHOLE_FILE_PROBLEMS = [
    ("empty.jsonl", b"", "the file holds no cases"),
    ("blank.jsonl", b"\n  \n\r\n", "the file holds no cases"),
    ("bom-only.jsonl", b"\xef\xbb\xbf", "the file holds no cases"),
    ("empty.csv", b"", "the file is empty (no header row)"),
    ("header-only.csv", b"id,input,tags\n", "the file holds no cases"),
    ("cases.txt", b'{"input": "a"}\n', "unknown file extension '.txt' (use --format jsonl or csv)"),
    ("cases", b'{"input": "a"}\n', "no file extension (use --format jsonl or csv)"),
]


@pytest.mark.parametrize(("name", "content", "reason"), WHOLE_FILE_PROBLEMS,
                         ids=[n for n, _, _ in WHOLE_FILE_PROBLEMS])
def test_file_level_problems_are_one_line_without_line_number(tmp_path, capsys, name, content,
                                                              reason) -> None:
    project = seeded_project(tmp_path / "p.db")
    before = sha256(project)
    src = write(tmp_path / name, content)
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, out) == (2, "")
    assert err == f"coevo: {src}: {reason}; nothing was imported\n"
    assert sha256(project) == before


def test_missing_or_folder_import_file(tmp_path, capsys) -> None:
    project = seeded_project(tmp_path / "p.db")
    code, _, err = cli(capsys, "import", str(project), str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert err == f"coevo: {tmp_path / 'nope.jsonl'}: no such file; nothing was imported\n"
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    code, _, err = cli(capsys, "import", str(project), str(folder))
    assert code == 2 and "is a folder" in err and err.count("\n") == 1


def test_bad_file_never_creates_the_project(tmp_path, capsys) -> None:
    project = tmp_path / "new.db"
    src = write(tmp_path / "bad.jsonl", '{"input": ""}\n')
    assert cli(capsys, "import", str(project), str(src))[0] == 2
    assert cli(capsys, "import", str(project), str(tmp_path / "missing.csv"))[0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_id_already_in_project_rejects_whole_file(tmp_path, capsys) -> None:
    project = seeded_project(tmp_path / "p.db")
    src = write(tmp_path / "c.jsonl", jsonl({"input": "new", "id": "fresh"},
                                            {"input": "clash", "id": "taken"}))
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, out) == (2, "")
    assert err == (f"coevo: {src}, line 2: id 'taken' is already in the project; "
                   "nothing was imported\n")
    assert [c.ext_id for c in cases_of(project)] == ["taken"]
    assert import_events(project) == []


def test_first_bad_row_is_the_one_named(tmp_path) -> None:
    data = jsonl({"input": "a", "id": "d"}, {"input": "b", "id": "d"}).encode() + b"{oops\n"
    with pytest.raises(Exception) as info:
        parse_jsonl(data, "f.jsonl")
    assert info.value.line == 2  # the duplicate on line 2, not the broken JSON on line 3


def test_parsers_accept_ids_and_states_written_by_export() -> None:
    cases = parse_jsonl(jsonl({"id": "k", "input": "x", "tags": [], "source": "generated",
                               "state": "archived", "outputs": [{"version": 1}]}).encode(), "f")
    assert (cases[0].ext_id, cases[0].state, cases[0].source) == (
        "k", CaseState.ARCHIVED, CaseSource.IMPORTED)
    cases = parse_csv(b"id,input,tags,note,source,state\nk,x,,,similar,candidate\n", "f")
    assert (cases[0].state, cases[0].source, cases[0].line) == (
        CaseState.CANDIDATE, CaseSource.IMPORTED, 2)


# ---------------------------------------------------------------------- export
def test_jsonl_export_has_spec_fields_and_current_labels(tmp_path, capsys) -> None:
    project = rich_project(tmp_path / "p.db")
    target = tmp_path / "out.jsonl"
    code, out, err = cli(capsys, "export", str(project), str(target))
    assert (code, err) == (0, "")
    assert out == f"exported {len(TRICKY)} cases to {target} (jsonl)\n"
    lines = target.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == len(TRICKY) + 1
    records = [json.loads(line) for line in lines[:-1]]
    assert [r["input"] for r in records] == TRICKY
    first = records[0]
    assert list(first) == ["id", "input", "tags", "source", "state", "outputs"]
    assert (first["id"], first["tags"], first["source"], first["state"]) == (
        "t0", ["tag0", "shared"], "manual", "active")
    assert first["outputs"] == [
        {"version": 1, "model": "m", "text": "first answer", "status": "ok", "error": None,
         "label": "good", "rationale": "", "label_source": "human"},
        {"version": 2, "model": "m", "text": "second answer", "status": "ok", "error": None,
         "label": "unsure", "rationale": "depends on context", "label_source": "human"},
    ]
    assert records[1]["note"] == "note 1" and records[1]["state"] == "archived"
    assert records[2]["state"] == "candidate"
    assert records[3]["outputs"] == [
        {"version": 2, "model": "m", "text": "", "status": "error", "error": "HTTP 500",
         "label": None, "rationale": None, "label_source": None}]


def test_export_to_stdout(tmp_path, capsysbinary) -> None:
    project = rich_project(tmp_path / "p.db")
    assert coevo(["export", str(project), "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert err == b""
    records = [json.loads(line) for line in out.decode("utf-8").splitlines(keepends=False)
               if line.startswith("{")]
    assert [r["id"] for r in records] == [f"t{i}" for i in range(len(TRICKY))]
    assert coevo(["export", str(project), "-", "--format", "csv"]) == 0
    out, _ = capsysbinary.readouterr()
    assert out.startswith(b"id,input,tags,note,source,state\n")


def test_csv_export_columns(tmp_path, capsys) -> None:
    project = rich_project(tmp_path / "p.db")
    target = tmp_path / "out.csv"
    assert cli(capsys, "export", str(project), str(target))[0] == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("id,input,tags,note,source,state\n")
    assert "t1,two\n" not in text  # a multi-line input is quoted
    assert ',"quotes "" and \' and back\\slash",tag0;shared,,manual,active\n' in text


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_round_trip_into_a_new_project_keeps_cases(tmp_path, capsys, fmt) -> None:
    project = rich_project(tmp_path / "p.db")
    target = tmp_path / f"out.{fmt}"
    assert cli(capsys, "export", str(project), str(target))[0] == 0
    fresh = tmp_path / "fresh.db"
    code, out, err = cli(capsys, "import", str(fresh), str(target))
    assert (code, err) == (0, ""), err
    assert out == f"imported {len(TRICKY)} cases into {fresh} (a new project)\n"

    def shape(cases: list) -> list:
        return [(c.ext_id, c.input, c.tags, c.note, c.state) for c in cases]

    original, copied = cases_of(project), cases_of(fresh)
    assert shape(copied) == shape(original)
    assert {c.source for c in copied} == {CaseSource.IMPORTED}
    # Export it again: identical apart from the source and the outputs, which stay behind.
    again = tmp_path / f"again.{fmt}"
    assert cli(capsys, "export", str(fresh), str(again))[0] == 0
    if fmt == "csv":
        assert again.read_text().replace(",imported,", ",manual,") == target.read_text()


def test_promptfoo_config_is_valid_yaml_with_prompt_provider_and_active_tests(
        tmp_path, capsys) -> None:
    project = rich_project(tmp_path / "p.db")
    target = tmp_path / "promptfooconfig.yaml"
    code, out, err = cli(capsys, "export", str(project), str(target))
    assert (code, err) == (0, "")
    active = [0, 3, 4, 5, 6]  # t1 is archived, t2 a candidate
    assert out == f"exported {len(active)} tests to {target} (promptfoo)\n"
    config = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert config["description"] == "p: prompt version 2"
    (prompt,) = config["prompts"]
    assert prompt["label"] == "coevo v2"
    assert json.loads(prompt["raw"]) == [
        {"role": "system",
         "content": "{% raw %}Refuse slurs. Allow {{trash talk}}.{% endraw %}"},
        {"role": "user", "content": "Message:\n{{input}}\nVerdict?"},
    ]
    assert config["providers"] == [
        {"id": "openai:chat:gpt-4o-mini", "config": {"temperature": 0.25, "max_tokens": 200}}
    ]
    tests = config["tests"]
    assert [t["vars"]["input"] for t in tests] == [TRICKY[i] for i in active]
    assert [t["description"] for t in tests] == [f"t{i}" for i in active]
    assert tests[0]["metadata"] == {
        "coevo_id": "t0", "coevo_tags": "tag0;shared", "coevo_label": "unsure",
        "coevo_label_version": 2, "coevo_rationale": "depends on context"}
    assert "coevo_label" not in tests[1]["metadata"]  # only an error output, unlabelled


def test_promptfoo_for_a_new_project_uses_placeholder_and_plain_input(tmp_path, capsys) -> None:
    project = tmp_path / "p.db"
    src = write(tmp_path / "c.jsonl", jsonl({"input": "hi"}))
    assert cli(capsys, "import", str(project), str(src))[0] == 0
    code, out, err = cli(capsys, "export", str(project), "-", "--format", "promptfoo")
    assert (code, err) == (0, "")
    target = tmp_path / "pf.yml"
    assert cli(capsys, "export", str(project), str(target))[0] == 0
    assert target.read_text(encoding="utf-8") == out
    config = yaml.safe_load(out)
    assert json.loads(config["prompts"][0]["raw"]) == [{"role": "user", "content": "{{input}}"}]
    assert config["providers"] == [{"id": PLACEHOLDER_PROVIDER}]
    assert "placeholder" in target.read_text()
    assert config["tests"][0]["vars"] == {"input": "hi"}


@pytest.mark.parametrize(("model", "provider"), [
    ("openai/gpt-4o", "openai:chat:gpt-4o"),
    ("gpt-4o-mini", "openai:chat:gpt-4o-mini"),
    ("anthropic/claude-3-5-haiku-latest", "anthropic:messages:claude-3-5-haiku-latest"),
    ("ollama_chat/llama3", "ollama:chat:llama3"),
    ("gemini/gemini-2.0-flash", "google:gemini-2.0-flash"),
    ("hosted_vllm/my-model", "litellm:hosted_vllm/my-model"),
])
def test_promptfoo_provider_names(model, provider) -> None:
    assert promptfoo_provider(model)[0] == provider


@pytest.mark.parametrize("text", TRICKY + ["", "\x00\x1f\x7f\x9f", "\ufffe", "\\u0041"])
def test_promptfoo_yaml_reads_back_exactly(text) -> None:
    assert yaml.safe_load(promptfoo_yaml({"key": text})) == {"key": text}


def test_exports_never_hold_api_keys(tmp_path, capsys, monkeypatch) -> None:
    secret_env = "sk-from-env-SECRET"
    monkeypatch.setenv("OPENAI_API_KEY", secret_env)
    project = rich_project(tmp_path / "p.db")  # its params hold an "api_key" by mistake
    for name in ("a.jsonl", "a.csv", "a.yaml"):
        assert cli(capsys, "export", str(project), str(tmp_path / name))[0] == 0
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "SECRET" not in text, name
        assert "api_key" not in text, name


def test_export_refusals_leave_no_files(tmp_path, capsys) -> None:
    project = rich_project(tmp_path / "p.db")
    before = sha256(project)
    cases = [
        (["export", str(tmp_path / "missing.db"), str(tmp_path / "o.jsonl")],
         "no such project file"),
        (["export", str(project), str(tmp_path / "o.txt")], "unknown file extension '.txt'"),
        (["export", str(project), str(project), "--format", "jsonl"], "the project file itself"),
        (["export", str(project), str(tmp_path / "no" / "o.jsonl")], "does not exist"),
        (["export", str(project), str(tmp_path)], "no file extension"),
        (["export", str(project), str(tmp_path), "--format", "csv"], "is a folder"),
    ]
    for argv, reason in cases:
        code, out, err = cli(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert err.startswith("coevo: ") and err.count("\n") == 1 and reason in err, err
    assert sha256(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.db"]


def test_export_replaces_an_existing_file(tmp_path, capsys) -> None:
    project = rich_project(tmp_path / "p.db")
    target = write(tmp_path / "out.jsonl", "old content that is longer than one line\n" * 100)
    target.chmod(0o640)
    assert cli(capsys, "export", str(project), str(target))[0] == 0
    assert target.read_text(encoding="utf-8").startswith('{"id": "t0"')
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "p.db"]


# ---------------------------------------------------------------------- scale
@pytest.mark.slow
def test_import_100k_cases_in_one_transaction(tmp_path, capsys) -> None:
    count = 100_000
    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as f:
        for i in range(count):
            f.write(f'{{"id": "r{i}", "input": "case number {i} asks whether a refund can be '
                    f'promised to a customer", "tags": ["bulk", "t{i % 7}"]}}\n')
    assert src.stat().st_size > 9_000_000
    project = tmp_path / "big.db"
    code, out, err = cli(capsys, "import", str(project), str(src))
    assert (code, err) == (0, "")
    assert out == f"imported {count} cases into {project} (a new project)\n"

    async def check() -> None:
        async with await Store.open(project) as store:
            assert await store.cases.counts_by_state() == {"candidate": 0, "active": count,
                                                           "archived": 0, "rejected": 0}
            (event,) = await store.events.recent(10, kind="import")
            assert event.payload["count"] == count
            assert (event.payload["first_id"], event.payload["last_id"]) == (1, count)
            last = await store.cases.by_ext_id(f"r{count - 1}")
            assert last.tags == ("bulk", f"t{(count - 1) % 7}")

    asyncio.run(check())
