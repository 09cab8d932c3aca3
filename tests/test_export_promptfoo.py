"""`coevo export PATH DIR --format promptfoo [--versions N,M]`: a promptfoo config and its
tests file, written with PyYAML, checked against promptfoo's config schema (vendored in
tests/schemas, with its source named in the README there).

Real promptfoo is not run here: its npm install takes minutes on this machine (and the
release needs a newer Node.js than CI has), so the schema stands in for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from coevo_tui.__main__ import main as coevo
from coevo_tui.domain.errors import EXIT_STORAGE
from coevo_tui.domain.model import CaseState, NewRule, OutputStatus, Verdict
from coevo_tui.store import NewCase, Store
from coevo_tui.store.formats import (
    PROMPTFOO_CONFIG_FILE,
    PROMPTFOO_TESTS_FILE,
    promptfoo_rubric,
)

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "promptfoo-config-schema.json")
                    .read_text(encoding="utf-8"))
SECRET = "sk-from-params-SECRET"


# ---------------------------------------------------------------------- helpers
def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = coevo(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative name -> sha256), to see that nothing changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def schema_errors(config: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(config)]


def assertion_types_in_schema() -> set[str]:
    """The assertion types promptfoo's schema enumerates (the list holding `equals`)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "equals" in node.get("enum", []):
                found.update(node["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(SCHEMA)
    return found


def all_assertions(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for test in tests:
        for assertion in test.get("assert", []):
            out.append(assertion)
            out.extend(assertion.get("assert", []))
    return out


def read_folder(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    config = yaml.safe_load((folder / PROMPTFOO_CONFIG_FILE).read_text(encoding="utf-8"))
    tests = yaml.safe_load((folder / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8"))
    return config, tests


async def _labelled_project(path: Path) -> None:
    """Two versions (v2 with a rule), five active cases with good, bad and unsure labels,
    one archived case and one candidate; the params hold an API key by mistake."""
    async with await Store.open(path) as store:
        await store.settings.update(model="anthropic/claude-3-5-haiku-latest",
                                    params={"temperature": 0.2, "max_tokens": 80,
                                            "top_p": 0.9, "api_key": SECRET,
                                            "api_base": "http://user:pw@127.0.0.1:9"})
        ids = await store.cases.add_many([
            NewCase(input="gg ez", ext_id="banter", tags=("banter", "ok")),
            NewCase(input="1e3", ext_id="numberish"),
            NewCase(input="line one\nline two\n", ext_id="multi"),
            NewCase(input="you are {{name}}", ext_id="braces"),
            NewCase(input="never answered", ext_id="plain"),
            NewCase(input="old one", ext_id="archived"),
            NewCase(input="maybe later", ext_id="candidate"),
        ], kind="create")
        await store.cases.set_state(ids[5], CaseState.ARCHIVED)
        await store.cases.set_state(ids[6], CaseState.CANDIDATE)
        v1 = await store.versions.by_number(1)
        v2 = await store.versions.create("Moderate the chat. 1. No slurs.",
                                         "Message:\n{input}\nVerdict?", note="v2")
        await store.rules.replace(v2.id, [NewRule(1, "No slurs", "no slurs at all")])
        await store.cases.assign_rules({ids[0]: 1})

        async def answer(case: int, version: int, text: str, verdict: Verdict | None,
                         rationale: str = "") -> None:
            out = await store.outputs.add(case_id=ids[case], version_id=version, model="m",
                                          params={}, text=text, status=OutputStatus.OK)
            if verdict is not None:
                await store.labels.write(out.id, verdict, rationale)

        # banter: a good answer with its reason, then a bad one with its reason.
        await answer(0, v1.id, "ALLOW - banter", Verdict.GOOD, "trash talk is allowed")
        await answer(0, v2.id, "REMOVE - insult", Verdict.BAD, "removes harmless banter")
        # numberish: two exact good answers, no reasons; one looks like a YAML 1.2 number.
        await answer(1, v1.id, "0o17", Verdict.GOOD)
        await answer(1, v2.id, "{{x}} ok", Verdict.GOOD)
        # multi: one bad answer without a reason, one unsure with a reason.
        await answer(2, v1.id, "package:foo", Verdict.BAD)
        await answer(2, v2.id, "hmm", Verdict.UNSURE, "depends on context")
        # braces: relabelled from bad to good: the newest label counts.
        out = await store.outputs.add(case_id=ids[3], version_id=v2.id, model="m", params={},
                                      text="ALLOW", status=OutputStatus.OK)
        await store.labels.write(out.id, Verdict.BAD, "first thought")
        await store.labels.write(out.id, Verdict.GOOD, "")
        # plain: only an error, and an unlabelled answer.
        await store.outputs.add(case_id=ids[4], version_id=v2.id, model="m", params={},
                                text="", status=OutputStatus.ERROR, error="HTTP 500")
        await answer(4, v1.id, "unlabelled", None)


def labelled_project(path: Path) -> Path:
    asyncio.run(_labelled_project(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return labelled_project(tmp_path / "p.db")


# ---------------------------------------------------------------------- the files
def test_folder_export_writes_config_and_tests_file_valid_against_promptfoo_schema(
        project: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pf"
    code, out, err = cli(capsys, "export", str(project), str(folder), "--format", "promptfoo",
                         "--versions", "1,2")
    assert (code, err) == (0, "")
    assert out == (f"exported 5 tests to {folder} (promptfoo: promptfooconfig.yaml and "
                   "tests.yaml)\n")
    assert sorted(p.name for p in folder.iterdir()) == ["promptfooconfig.yaml", "tests.yaml"]
    config, tests = read_folder(folder)
    assert config["tests"] == "file://tests.yaml"
    assert schema_errors(config) == []
    inlined = dict(config, tests=tests)  # what promptfoo reads once it loads the file
    assert schema_errors(inlined) == []
    known = assertion_types_in_schema()
    assert "llm-rubric" in known  # the walk found the list of assertion types
    for assertion in all_assertions(tests):
        kind = assertion["type"]
        assert kind == "assert-set" or kind in known or kind.removeprefix("not-") in known
    # The check can fail: a misspelt key is refused.
    broken = json.loads(json.dumps(inlined))
    broken["tests"][0]["asserts"] = broken["tests"][0].pop("assert")
    assert schema_errors(broken) != []


def test_single_yaml_file_holds_the_tests_inline_and_validates(project: Path, tmp_path: Path,
                                                               capsys) -> None:
    target = tmp_path / "promptfooconfig.yaml"
    code, out, err = cli(capsys, "export", str(project), str(target))
    assert (code, err) == (0, "")
    assert out == f"exported 5 tests to {target} (promptfoo)\n"
    config = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert [t["description"] for t in config["tests"]] == [
        "banter", "numberish", "multi", "braces", "plain"]
    assert schema_errors(config) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.db", "promptfooconfig.yaml"]


def test_prompts_one_per_chosen_version_default_the_newest(project: Path, tmp_path: Path,
                                                           capsys) -> None:
    assert cli(capsys, "export", str(project), str(tmp_path / "new"), "--format",
               "promptfoo")[0] == 0
    config, _ = read_folder(tmp_path / "new")
    assert [p["label"] for p in config["prompts"]] == ["coevo v2"]
    assert config["description"] == "p: prompt version 2"
    assert json.loads(config["prompts"][0]["raw"]) == [
        {"role": "system", "content": "Moderate the chat. 1. No slurs."},
        {"role": "user", "content": "Message:\n{{input}}\nVerdict?"},
    ]
    assert cli(capsys, "export", str(project), str(tmp_path / "both"), "--format",
               "promptfoo", "--versions", "2, 1,2")[0] == 0
    config, tests = read_folder(tmp_path / "both")
    assert [p["label"] for p in config["prompts"]] == ["coevo v1", "coevo v2"]
    assert config["description"] == "p: prompt versions 1, 2"
    # v1 has no instructions: the input is the whole user message.
    assert json.loads(config["prompts"][0]["raw"]) == [{"role": "user", "content": "{{input}}"}]
    # Each test fills the template's variable.
    assert all(set(t["vars"]) == {"input"} for t in tests)


def test_labels_become_assertions_and_metadata(project: Path, tmp_path: Path, capsys) -> None:
    assert cli(capsys, "export", str(project), str(tmp_path / "pf"), "--format",
               "promptfoo")[0] == 0
    _, tests = read_folder(tmp_path / "pf")
    by_id = {t["description"]: t for t in tests}
    assert "archived" not in by_id and "candidate" not in by_id

    banter = by_id["banter"]
    assert banter["vars"] == {"input": "gg ez"}
    assert banter["assert"] == [
        {"type": "equals", "value": "ALLOW - banter"},
        {"type": "not-equals", "value": "REMOVE - insult"},
        {"type": "llm-rubric", "value": promptfoo_rubric("good", "trash talk is allowed")},
        {"type": "llm-rubric", "value": promptfoo_rubric("bad", "removes harmless banter")},
    ]
    good_rubric, bad_rubric = (a["value"] for a in banter["assert"][2:])
    assert "trash talk is allowed" in good_rubric and "NOT" not in good_rubric
    assert "removes harmless banter" in bad_rubric and "must NOT do what" in bad_rubric
    assert banter["metadata"] == {
        "coevo_id": "banter", "coevo_tags": "banter;ok", "coevo_rule": 1,
        "coevo_rule_title": "No slurs", "coevo_label": "bad", "coevo_label_version": 2,
        "coevo_rationale": "removes harmless banter"}

    # Two exact good answers: either one passes (a set that needs one match in two). A
    # value promptfoo would render as a template is protected.
    assert by_id["numberish"]["assert"] == [{
        "type": "assert-set", "threshold": 0.5,
        "assert": [{"type": "equals", "value": "0o17"},
                   {"type": "equals", "value": "{% raw %}{{x}} ok{% endraw %}"}]}]
    # A bad answer without a reason must not come back; an unsure one teaches nothing.
    # "package:" would name a module to promptfoo: it is protected too.
    assert by_id["multi"]["assert"] == [
        {"type": "not-equals", "value": "{% raw %}package:foo{% endraw %}"}]
    assert by_id["multi"]["metadata"]["coevo_label"] == "unsure"
    # A relabelled answer counts with its newest label only.
    assert by_id["braces"]["assert"] == [{"type": "equals", "value": "ALLOW"}]
    assert by_id["braces"]["vars"] == {"input": "you are {{name}}"}
    # No label, no assertion (an empty list would be noise).
    assert "assert" not in by_id["plain"]
    assert by_id["plain"]["metadata"] == {"coevo_id": "plain"}


def test_provider_and_portable_parameters_never_keys(project: Path, tmp_path: Path, capsys,
                                                    monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-SECRET")
    folder = tmp_path / "pf"
    assert cli(capsys, "export", str(project), str(folder), "--format", "promptfoo")[0] == 0
    config, _ = read_folder(folder)
    assert config["providers"] == [{
        "id": "anthropic:messages:claude-3-5-haiku-latest",
        "config": {"temperature": 0.2, "max_tokens": 80, "top_p": 0.9}}]
    for name in (PROMPTFOO_CONFIG_FILE, PROMPTFOO_TESTS_FILE):
        text = (folder / name).read_text(encoding="utf-8")
        assert "SECRET" not in text and "api_key" not in text and "pw@" not in text, name


def test_strings_a_yaml_12_reader_takes_for_numbers_are_quoted(tmp_path: Path,
                                                               capsys) -> None:
    # promptfoo reads YAML 1.2 (js-yaml), where 1e3, 0o17 and .5 are numbers; PyYAML,
    # left alone, writes them bare (YAML 1.1 reads them as strings).
    tricky = ["1e3", "0o17", ".5", "-1.5e5", "0x1F", "1_000", "yes", "null", "~", "true",
              ".inf", "2026-01-02", "12:30"]
    path = tmp_path / "p.db"

    async def fill() -> None:
        async with await Store.open(path) as store:
            await store.cases.add_many([NewCase(input=t, ext_id=f"c{i}")
                                        for i, t in enumerate(tricky)], kind="create")

    asyncio.run(fill())
    folder = tmp_path / "pf"
    assert cli(capsys, "export", str(path), str(folder), "--format", "promptfoo")[0] == 0
    text = (folder / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8")
    inputs = re.findall(r"^    input: (.*)$", text, flags=re.M)
    assert len(inputs) == len(tricky)
    for shown, value in zip(inputs, tricky):
        assert shown in (f"'{value}'", f'"{value}"'), (value, shown)
    assert [t["vars"]["input"] for t in yaml.safe_load(text)] == tricky


def test_multiline_and_unusual_text_reads_back_exactly(tmp_path: Path, capsys) -> None:
    texts = ["two\nlines\n", "trailing spaces  \nnext", "  leading\nspaces", "crlf\r\nline",
             "tab\tand # hash: colon", "line sep \u2028 para \u2029 nel \x85", "bom \ufeff",
             "- a list?\n- no", "'quoted'\n\"double\""]
    path = tmp_path / "p.db"

    async def fill() -> None:
        async with await Store.open(path) as store:
            ids = await store.cases.add_many([NewCase(input=t, ext_id=f"c{i}")
                                              for i, t in enumerate(texts)], kind="create")
            v1 = await store.versions.by_number(1)
            for case_id, text in zip(ids, texts):
                out = await store.outputs.add(case_id=case_id, version_id=v1.id, model="m",
                                              params={}, text=text, status=OutputStatus.OK)
                await store.labels.write(out.id, Verdict.GOOD, text)

    asyncio.run(fill())
    folder = tmp_path / "pf"
    assert cli(capsys, "export", str(path), str(folder), "--format", "promptfoo")[0] == 0
    tests = yaml.safe_load((folder / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8"))
    assert [t["vars"]["input"] for t in tests] == texts
    assert [t["assert"][0]["value"] for t in tests] == texts
    assert [t["assert"][1]["value"] for t in tests] == [promptfoo_rubric("good", text.strip())
                                                        for text in texts]
    # A multi-line input is a literal block: it reads (and diffs) line by line.
    assert "    input: |\n      two\n      lines\n" in \
        (folder / PROMPTFOO_TESTS_FILE).read_text(encoding="utf-8")


def test_a_project_without_active_cases_exports_an_empty_test_list(tmp_path: Path,
                                                                   capsys) -> None:
    path = tmp_path / "p.db"

    async def fill() -> None:
        async with await Store.open(path) as store:
            (case_id,) = await store.cases.add_many([NewCase(input="gone", ext_id="g")],
                                                    kind="create")
            await store.cases.set_state(case_id, CaseState.ARCHIVED)

    asyncio.run(fill())
    folder = tmp_path / "pf"
    code, out, _ = cli(capsys, "export", str(path), str(folder), "--format", "promptfoo")
    assert (code, out) == (0, f"exported 0 tests to {folder} (promptfoo: promptfooconfig.yaml"
                              " and tests.yaml)\n")
    config, tests = read_folder(folder)
    assert tests == []
    assert schema_errors(dict(config, tests=tests)) == []
    single = tmp_path / "one.yaml"
    assert cli(capsys, "export", str(path), str(single))[0] == 0
    assert yaml.safe_load(single.read_text(encoding="utf-8"))["tests"] == []


def test_an_existing_folder_is_written_into_and_other_files_stay(project: Path,
                                                                 tmp_path: Path,
                                                                 capsys) -> None:
    folder = tmp_path / "ci"
    folder.mkdir()
    (folder / "README.md").write_text("mine\n", encoding="utf-8")
    (folder / PROMPTFOO_TESTS_FILE).write_text("old\n", encoding="utf-8")
    assert cli(capsys, "export", str(project), str(folder), "--format", "promptfoo")[0] == 0
    assert (folder / "README.md").read_text(encoding="utf-8") == "mine\n"
    _, tests = read_folder(folder)
    assert len(tests) == 5
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "promptfooconfig.yaml", "tests.yaml"]  # no temporary file left


@pytest.mark.parametrize(("versions", "reason"), [
    ("x", "--versions: 'x' is not a version number (give them as 1,3); nothing exported"),
    ("1,,2", "--versions: '' is not a version number"),
    ("0", "--versions: '0' is not a version number"),
    ("-1", "--versions: '-1' is not a version number"),
    ("1,9", "--versions: no version 9 in {project} (it has versions 1 to 2); nothing "
            "exported"),
])
def test_bad_versions_exit_2_in_one_line_and_write_nothing(project: Path, tmp_path: Path,
                                                           capsys, versions, reason) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / PROMPTFOO_TESTS_FILE).write_text("kept\n", encoding="utf-8")
    before = tree(tmp_path)
    for target in (tmp_path / "new", existing, tmp_path / "one.yaml"):
        code, out, err = cli(capsys, "export", str(project), str(target), "--format",
                             "promptfoo", f"--versions={versions}")
        assert (code, out) == (2, ""), target
        assert err.startswith("coevo: ") and err.count("\n") == 1, err
        assert reason.format(project=project) in err, err
    assert tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "p.db"]


def test_versions_with_another_format_is_refused(project: Path, tmp_path: Path,
                                                 capsys) -> None:
    code, out, err = cli(capsys, "export", str(project), str(tmp_path / "o.jsonl"),
                         "--versions", "1")
    assert (code, out) == (2, "")
    assert err == ("coevo: --versions: only the promptfoo export holds prompt versions; "
                   "nothing exported\n")
    assert not (tmp_path / "o.jsonl").exists()


def test_folder_in_a_missing_parent_is_refused(project: Path, tmp_path: Path, capsys) -> None:
    code, out, err = cli(capsys, "export", str(project), str(tmp_path / "no" / "pf"),
                         "--format", "promptfoo")
    assert (code, out) == (2, "")
    assert err == (f"coevo: {tmp_path / 'no' / 'pf'}: folder {tmp_path / 'no'} does not "
                   "exist; nothing exported\n")
    assert not (tmp_path / "no").exists()


# ---------------------------------------------------------------------- the machine refusing
@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[None]:
    """`mount OPTIONS TARGET` for the block, or skip the test saying why it cannot (CI may
    run without the right to mount)."""
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


def test_a_read_only_place_gets_exit_3_and_nothing_half_written(project: Path, tmp_path: Path,
                                                               capsys) -> None:
    place = tmp_path / "ro"
    place.mkdir()
    (place / "existing").mkdir()
    with mounted(place, "--bind", str(place)):
        again = subprocess.run(["mount", "-o", "remount,ro,bind", str(place)],
                               capture_output=True, text=True, timeout=30)
        if again.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {again.stderr.strip()}")
        for target in (place / "new", place / "existing"):
            code, out, err = cli(capsys, "export", str(project), str(target), "--format",
                                 "promptfoo")
            assert (code, out) == (EXIT_STORAGE, ""), (target, err)
            assert err.startswith("coevo: ") and err.count("\n") == 1, err
            assert "nothing was exported" in err, err
        assert sorted(p.name for p in place.iterdir()) == ["existing"]
        assert list((place / "existing").iterdir()) == []


def test_a_full_disk_gets_exit_3_and_leaves_no_folder(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.db"

    async def fill() -> None:
        async with await Store.open(path) as store:
            await store.cases.add_many([NewCase(input=f"{i} " + "x" * 20_000, ext_id=f"c{i}")
                                        for i in range(20)], kind="create")

    asyncio.run(fill())
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted(disk, "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
        code, out, err = cli(capsys, "export", str(path), str(disk / "pf"), "--format",
                             "promptfoo")
        assert (code, out) == (EXIT_STORAGE, ""), err
        assert err.startswith("coevo: ") and err.count("\n") == 1, err
        assert "nothing was exported" in err, err
        assert list(disk.iterdir()) == []
