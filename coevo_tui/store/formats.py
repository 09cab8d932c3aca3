"""Test-set files: reading JSONL/CSV imports into `NewCase`s, writing JSONL/CSV/promptfoo exports.

Formats are SPEC section 5. Reading is strict and all or nothing: the first bad row raises
`ImportRejected` naming its line (1-based, counting blank lines too, so the number matches
what an editor shows) and the reason. Decisions beyond the SPEC:

- `id` may be a JSON string or integer (an integer becomes its decimal text); `null` or an
  empty CSV cell means "give it a fresh id". Surrounding spaces are stripped.
- `state` (candidate, active, archived), as written by our own export, is honoured so that
  an export re-imported into a new project keeps archived cases archived. Other keys
  (`source`, `outputs`, anything unknown) are ignored: imported cases always get source
  `imported`, and outputs belong to prompt versions the new project does not have.
- Tags are stripped and empty ones dropped, in both formats.

Writing is deterministic: an unchanged project exports byte for byte the same file (cases
in id order, keys in a fixed order, no time of export), so that a committed export diffs
line by line. The promptfoo config is written with PyYAML, taught to quote what a YAML 1.2
reader (promptfoo's) would read as a number.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import stat
import sys
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import yaml

from coevo_tui.domain.errors import ImportRejected, UserError, shown_name
from coevo_tui.domain.model import CaseSource, CaseState, Project, PromptVersion
from coevo_tui.store.store import NewCase

IMPORT_FORMATS = ("jsonl", "csv")
EXPORT_FORMATS = ("jsonl", "csv", "promptfoo")
CSV_COLUMNS = ("id", "input", "tags", "note", "source", "state")

_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".yaml": "promptfoo",
    ".yml": "promptfoo",
}
_BOM = b"\xef\xbb\xbf"
_STATES = {s.value: s for s in CaseState}
# A JSON escape of a UTF-16 surrogate or of NUL: only a line holding one can decode to text
# coevo cannot store (see _check_text).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")


# ---------------------------------------------------------------------- format choice
def import_format(file: str, explicit: str | None = None) -> str:
    """The import format: `explicit` if given, else from FILE's extension."""
    if explicit is not None:
        return explicit
    fmt = _EXTENSIONS.get(Path(file).suffix.lower())
    if fmt not in IMPORT_FORMATS:
        raise ImportRejected(file, None, _unknown_extension(file, IMPORT_FORMATS))
    return fmt


def export_format(file: str, explicit: str | None = None) -> str:
    """The export format: `explicit` if given, JSONL for standard output, else by extension."""
    if explicit is not None:
        return explicit
    if file == "-":
        return "jsonl"
    fmt = _EXTENSIONS.get(Path(file).suffix.lower())
    if fmt is None:
        raise UserError(f"{shown_name(file)}: {_unknown_extension(file, EXPORT_FORMATS)}; "
                        "nothing exported")
    return fmt


def _unknown_extension(file: str, formats: tuple[str, ...]) -> str:
    suffix = Path(file).suffix
    what = f"unknown file extension {suffix!r}" if suffix else "no file extension"
    choices = ", ".join(formats[:-1]) + " or " + formats[-1]
    return f"{what} (use --format {choices})"


# ---------------------------------------------------------------------- reading
# The limits of one import. Far above the 100,000 cases coevo is built for, and low enough
# that an endless source (a pipe fed by `yes`, /dev/zero behind a symlink) is refused in
# one line long before memory runs out: the cases are held in memory until they are
# checked, as an import is all or nothing.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024 * 1024
MAX_CASES = 1_000_000
_LIMITS_TEXT = {MAX_LINE_BYTES: "16 MiB", MAX_FILE_BYTES: "1 GiB"}


def read_cases(path: Path, fmt: str, source: str | None = None) -> list[NewCase]:
    """Read and check a whole import file, line by line. `source` names the file in
    messages. Works for regular files and pipes (a FIFO, /dev/stdin fed by a pipe);
    refuses folders and devices. Every problem is an `ImportRejected`."""
    source = source if source is not None else str(path)
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"not an import format: {fmt}")
    with _open_import(path, source) as stream:
        return _parse_stream(stream, fmt, source)


def parse_jsonl(data: bytes, source: str) -> list[NewCase]:
    """One JSON object a line; blank lines are skipped but still counted."""
    return _parse_stream(io.BytesIO(data), "jsonl", source)


def parse_csv(data: bytes, source: str) -> list[NewCase]:
    """A header row with an `input` column; optional id, tags (`;`-separated), note, state."""
    return _parse_stream(io.BytesIO(data), "csv", source)


def _parse_stream(stream: BinaryIO, fmt: str, source: str) -> list[NewCase]:
    lines = _lines(stream, source)
    return _parse_jsonl_lines(lines, source) if fmt == "jsonl" else \
        _parse_csv_lines(lines, source)


@contextlib.contextmanager
def _open_import(path: Path, source: str) -> Iterator[BinaryIO]:
    """`path` opened for reading, once it is known to be a regular file or a pipe."""
    try:
        # stat() follows symlinks, so /dev/zero behind a link is seen for what it is, and a
        # device is refused before it is opened (opening one can have effects).
        info = path.stat()
        _check_kind(info.st_mode, source)
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_FILE_BYTES:
            raise _too_large(source)
        stream = path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        raise ImportRejected(source, None, "no such file") from None
    except IsADirectoryError:
        raise ImportRejected(source, None, "is a folder, not a file") from None
    except OSError as exc:
        raise ImportRejected(source, None, f"cannot read ({exc.strerror})") from None
    with stream:
        # What was opened may not be what was looked at a moment ago.
        _check_kind(os.fstat(stream.fileno()).st_mode, source)
        yield stream


def _check_kind(mode: int, source: str) -> None:
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return
    if stat.S_ISDIR(mode):
        raise ImportRejected(source, None, "is a folder, not a file")
    kind = ("a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    raise ImportRejected(source, None, f"is {kind}, not a file of cases")


def _too_large(source: str) -> ImportRejected:
    return ImportRejected(source, None, f"larger than {_LIMITS_TEXT[MAX_FILE_BYTES]}, more "
                          "than coevo imports at once (split it into several files)")


def _lines(stream: BinaryIO, source: str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) pairs, the byte-order mark removed from the first; each line
    at most MAX_LINE_BYTES and the whole at most MAX_FILE_BYTES, so that neither an
    endless line nor an endless file is ever held in memory."""
    readline = stream.readline
    total = 0
    number = 0
    while True:
        try:
            raw = readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise ImportRejected(source, number + 1, f"cannot read ({exc.strerror})") \
                from None
        if not raw:
            return
        number += 1
        total += len(raw)
        if total > MAX_FILE_BYTES:
            raise _too_large(source)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise ImportRejected(source, number, f"the line is longer than "
                                 f"{_LIMITS_TEXT[MAX_LINE_BYTES]}")
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        yield number, raw


def _decode(raw: bytes, source: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportRejected(source, number, "not valid UTF-8 text") from None


def _check_text(value: str, what: str, source: str, line: int) -> None:
    # SQLite's text functions stop at a NUL character (an input starting with one has
    # length 0 there), and a JSON "\ud800" escape decodes to a lone surrogate, which it
    # cannot store at all.
    if "\x00" in value:
        raise ImportRejected(source, line, f"{what} contains a NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ImportRejected(source, line, f"{what} contains an invalid \\u escape "
                             "(a lone surrogate)") from None


def _clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    return tuple(t.strip() for t in tags if t.strip())


class _Rows:
    """Builds `NewCase`s from decoded rows, checking ids for duplicates within the file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.cases: list[NewCase] = []
        self._seen: dict[str, int] = {}

    def reject(self, line: int, reason: str) -> ImportRejected:
        return ImportRejected(self.source, line, reason)

    def add(self, line: int, *, input: Any, ext_id: Any = None, tags: Any = None,
            note: Any = None, state: Any = None, csv_tags: bool = False,
            check_text: bool = False) -> None:
        """Check one row's values and keep it. `check_text` looks for NUL characters and
        lone surrogates (only a row that may hold them needs the look)."""
        if len(self.cases) >= MAX_CASES:
            raise ImportRejected(self.source, None, f"holds more than {MAX_CASES:,} cases, "
                                 "more than coevo imports at once (split it into several "
                                 "files)")
        if input is None:
            raise self.reject(line, "missing 'input'")
        if not isinstance(input, str):
            raise self.reject(line, f"'input' must be a string, not {_json_type(input)}")
        if not input.strip():
            raise self.reject(line, "empty 'input'")
        if check_text:
            _check_text(input, "'input'", self.source, line)

        if isinstance(ext_id, bool) or not (ext_id is None or isinstance(ext_id, (str, int))):
            raise self.reject(line, f"'id' must be a string or an integer, not "
                              f"{_json_type(ext_id)}")
        if ext_id is not None:
            ext_id = str(ext_id).strip()
            if not ext_id:
                raise self.reject(line, "empty 'id' (leave it out to get a fresh one)")
            if check_text:
                _check_text(ext_id, "'id'", self.source, line)
            if ext_id in self._seen:
                raise self.reject(line, f"duplicate id {ext_id!r} (first on line "
                                  f"{self._seen[ext_id]})")
            self._seen[ext_id] = line

        if csv_tags:
            tag_tuple = _clean_tags((tags or "").split(";"))
        elif tags is None:
            tag_tuple = ()
        elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise self.reject(line, "'tags' must be a list of strings")
        else:
            tag_tuple = _clean_tags(tags)
        if check_text:
            for tag in tag_tuple:
                _check_text(tag, "a tag", self.source, line)

        if note is None:
            note = ""
        if not isinstance(note, str):
            raise self.reject(line, f"'note' must be a string, not {_json_type(note)}")
        if check_text:
            _check_text(note, "'note'", self.source, line)

        case_state = CaseState.ACTIVE
        if state is not None and state != "":
            if not isinstance(state, str) or state.strip() not in _STATES:
                shown = repr(state) if len(repr(state)) <= 40 else repr(state)[:39] + "…"
                raise self.reject(line, f"'state' must be one of {', '.join(_STATES)}, "
                                  f"not {shown}")
            case_state = _STATES[state.strip()]

        self.cases.append(NewCase(input=input, tags=tag_tuple, note=note, ext_id=ext_id,
                                  source=CaseSource.IMPORTED, state=case_state, line=line))

    def result(self) -> list[NewCase]:
        if not self.cases:
            raise ImportRejected(self.source, None, "the file holds no cases")
        return self.cases


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _LongInteger:
    """An integer literal with more digits than Python converts (sys.int_max_str_digits)."""

    def __init__(self, literal: str) -> None:
        self.digits = len(literal.lstrip("-"))


def _integer(literal: str) -> int | _LongInteger:
    try:
        return int(literal)
    except ValueError:
        return _LongInteger(literal)


def _json_row(line: str, rows: _Rows, number: int) -> Any:
    """The JSON value of one line; a row that cannot be read is rejected with a reason
    worded for the user (not Python's own message)."""
    try:
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer of thousands of digits; find out which, below
            value = json.loads(line, parse_int=_integer)
    except json.JSONDecodeError as exc:
        # Some of json's messages end in "at" ("Unterminated string starting at").
        where = f"column {exc.colno}" if exc.msg.endswith(" at") else f"at column {exc.colno}"
        what = ("a byte-order mark (U+FEFF)" if exc.msg.startswith("Unexpected UTF-8 BOM")
                else exc.msg)
        raise rows.reject(number, f"invalid JSON ({what} {where})") from None
    except RecursionError:  # [[[[...]]]]
        raise rows.reject(number, "invalid JSON (nested too deeply)") from None
    ext_id = value.get("id") if isinstance(value, dict) else None
    if isinstance(ext_id, _LongInteger):
        raise rows.reject(number, f"'id' is too long (a number of {ext_id.digits} digits)")
    raise rows.reject(number, "invalid JSON (a number of more than "
                      f"{sys.get_int_max_str_digits()} digits)")


def _parse_jsonl_lines(lines: Iterable[tuple[int, bytes]], source: str) -> list[NewCase]:
    rows = _Rows(source)
    # Lines end at "\n" only: str.splitlines() would also split on U+2028 and friends,
    # which may legally appear raw inside a JSON string, and would make line numbers lie.
    for number, raw in lines:
        line = _decode(raw, source, number).rstrip("\n").rstrip("\r")
        if not line.strip():
            continue
        obj = _json_row(line, rows, number)
        if not isinstance(obj, dict):
            raise rows.reject(number, f"expected a JSON object, found {_json_type(obj)}")
        rows.add(number, input=obj.get("input"), ext_id=obj.get("id"), tags=obj.get("tags"),
                 note=obj.get("note"), state=obj.get("state"),
                 check_text=_SUSPECT_ESCAPE.search(line) is not None)
    return rows.result()


# A carriage return not followed by a line feed also ends a CSV line (old Mac files), as it
# does when Python reads a file opened with newline="".
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def _csv_lines(lines: Iterable[tuple[int, bytes]], source: str) -> Iterator[str]:
    for number, raw in lines:
        text = _decode(raw, source, number)
        if "\r" in text:
            yield from (part for part in _LONE_CR.split(text) if part)
        else:
            yield text


def _parse_csv_lines(lines: Iterable[tuple[int, bytes]], source: str) -> list[NewCase]:
    # The default limit (128 KiB a field) would reject long but legitimate inputs; the
    # reader's own limits bound the whole file.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    reader = csv.reader(_csv_lines(lines, source), strict=True)
    rows = _Rows(source)
    header: list[str] | None = None
    end_of_previous = 0
    while True:
        start = end_of_previous + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise rows.reject(start, f"malformed CSV ({exc})") from None
        end_of_previous = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if header is None:
            header = [name.strip().lower() for name in fields]
            for index, name in enumerate(header):
                if name and name in header[:index]:
                    raise rows.reject(start, f"column {name!r} appears twice in the header")
            if "input" not in header:
                raise rows.reject(start, "the header row has no 'input' column")
            continue
        if len(fields) != len(header):
            raise rows.reject(start, f"expected {len(header)} fields, found {len(fields)}")
        row = dict(zip(header, fields))
        ext_id = (row.get("id") or "").strip() or None  # an empty cell: a fresh id
        rows.add(start, input=row["input"], ext_id=ext_id, tags=row.get("tags"),
                 note=row.get("note"), state=row.get("state"), csv_tags=True,
                 check_text=any("\x00" in field for field in fields))
    if header is None:
        raise ImportRejected(source, None, "the file is empty (no header row)")
    return rows.result()


# ---------------------------------------------------------------------- writing
# Characters that JSON leaves raw but that some line readers (Python's str.splitlines,
# editors) treat as line breaks; escaping them keeps one case a line for every reader.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


async def drain(out: TextIO, *, everything: bool = False) -> None:
    """Let `out` pass on what it holds, if it is a stream that writes without blocking
    (standard output to a pipe, see commands/transfer.py): the writers below call this
    after every case, and with `everything` at the end."""
    pass_on = getattr(out, "drain", None)
    if pass_on is not None:
        await pass_on(everything=everything)


async def write_jsonl(records: AsyncIterable[dict[str, Any]], out: TextIO) -> int:
    """SPEC section 5's JSONL export, one case a line. Returns the number of cases."""
    count = 0
    async for record in records:
        out.write(json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS))
        out.write("\n")
        count += 1
        await drain(out)
    await drain(out, everything=True)
    return count


async def write_csv(records: AsyncIterable[dict[str, Any]], out: TextIO) -> int:
    """CSV that `coevo import` reads back: id, input, tags (`;`-joined), note, source, state."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for r in records:
        writer.writerow([r["id"], r["input"], ";".join(r["tags"]), r.get("note", ""),
                         r["source"], r["state"]])
        count += 1
        await drain(out)
    await drain(out, everything=True)
    return count


# Sampling settings that mean the same in litellm and promptfoo's providers. Anything else in
# the project's params stays out, so nothing secret could ever be copied into the config.
_PORTABLE_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "presence_penalty",
                    "frequency_penalty", "stop")

# litellm "provider/model" prefixes and the promptfoo provider id that speaks the same API.
_PROMPTFOO_PROVIDERS = {
    "openai": "openai:chat:",
    "anthropic": "anthropic:messages:",
    "ollama": "ollama:chat:",
    "ollama_chat": "ollama:chat:",
    "gemini": "google:",
    "groq": "groq:",
    "mistral": "mistral:",
    "openrouter": "openrouter:",
    "deepseek": "deepseek:",
}
PLACEHOLDER_PROVIDER = "openai:chat:gpt-4o-mini"


def promptfoo_provider(model: str | None) -> tuple[str, str | None]:
    """The promptfoo provider id for a litellm model string, and a comment when it is a guess."""
    if not model:
        return PLACEHOLDER_PROVIDER, "the project names no model: this is a placeholder"
    prefix, slash, name = model.partition("/")
    if slash and prefix in _PROMPTFOO_PROVIDERS:
        return _PROMPTFOO_PROVIDERS[prefix] + name, None
    if not slash and model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-")):
        return "openai:chat:" + model, None
    if not slash and model.startswith("claude-"):
        return "anthropic:messages:" + model, None
    return "litellm:" + model, "promptfoo's litellm provider needs a LiteLLM proxy; adjust"


def _nunjucks_literal(text: str) -> str:
    """`text` as promptfoo's Nunjucks renders it verbatim."""
    if "{{" in text or "{%" in text or "{#" in text:
        return "{% raw %}" + text + "{% endraw %}"
    return text


def promptfoo_messages(version: PromptVersion) -> list[dict[str, str]]:
    """The chat messages of `version` with the case input as promptfoo's `{{input}}`."""
    messages = []
    if version.instructions.strip():
        messages.append({"role": "system", "content": _nunjucks_literal(version.instructions)})
    if version.user_template:
        pieces = version.user_template.split("{input}")
        user = "{{input}}".join(_nunjucks_literal(p) for p in pieces)
    else:
        user = "{{input}}"
    messages.append({"role": "user", "content": user})
    return messages


# YAML 1.2 numbers (as js-yaml, promptfoo's reader, resolves them) that YAML 1.1, which
# PyYAML writes, reads as strings: `1e3`, `0o17`, `.5`. A dumper that knows them quotes them.
_YAML12_INT = re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$")
_YAML12_FLOAT = re.compile(r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
                           r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# Line breaks that YAML 1.1 and 1.2 readers disagree on, and a carriage return (which a
# literal block would turn into a line feed): a string holding one is written quoted.
_NOT_LITERAL = re.compile("[\r\x85\u2028\u2029\ufeff]")


class _PromptfooDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, for files promptfoo reads: strings that a YAML 1.2 reader
    would take for numbers are quoted, multi-line strings are literal blocks (they read,
    and diff, line by line), and nothing is written as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    literal = "\n" in value and _NOT_LITERAL.search(value) is None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if literal else None)


_PromptfooDumper.add_representer(str, _represent_str)
_PromptfooDumper.add_implicit_resolver("tag:yaml.org,2002:int", _YAML12_INT,
                                       list("-+0123456789"))
_PromptfooDumper.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT,
                                       list("-+0123456789."))


def promptfoo_yaml(data: Any) -> str:
    """`data` as YAML that promptfoo reads back exactly: keys in the order given, Unicode
    as is, no line folded (so that one changed value changes its own lines only)."""
    return yaml.dump(data, Dumper=_PromptfooDumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=1 << 30)


PROMPTFOO_CONFIG_FILE = "promptfooconfig.yaml"
PROMPTFOO_TESTS_FILE = "tests.yaml"


def promptfoo_config(project: Project, versions: list[PromptVersion], *,
                     tests_file: str | None = None) -> tuple[str, dict[str, Any]]:
    """The promptfoo config (without its tests unless `tests_file` names the file they go
    in) and the comment lines to put above it: one prompt per version, the project's
    provider with its portable parameters. API keys are never part of it."""
    provider, provider_note = promptfoo_provider(project.model)
    numbers = [v.number for v in versions]
    shown = ", ".join(str(n) for n in numbers)
    header = (f"# promptfoo config written by coevo from project {project.name!r}, prompt "
              f"version{'s' if len(numbers) > 1 else ''} {shown}.\n"
              f"# Run it with: npx promptfoo@latest eval -c {PROMPTFOO_CONFIG_FILE} "
              "(API keys come from your environment).\n")
    if provider_note:
        header += f"# provider {provider}: {provider_note}\n"
    provider_entry: dict[str, Any] = {"id": provider}
    params = {k: project.params[k] for k in _PORTABLE_PARAMS if k in project.params}
    if params:
        provider_entry["config"] = params
    config: dict[str, Any] = {
        "description": f"{project.name}: prompt version{'s' if len(numbers) > 1 else ''} "
                       f"{shown}",
        # A raw prompt that is a JSON list of messages is sent as chat; promptfoo renders
        # each string in it with Nunjucks and escapes the variables for JSON itself.
        "prompts": [{"label": f"coevo v{v.number}",
                     "raw": json.dumps(promptfoo_messages(v), ensure_ascii=False)}
                    for v in versions],
        "providers": [provider_entry],
    }
    if tests_file is not None:
        config["tests"] = f"file://{tests_file}"
    return header, config


def _assertion_value(text: str) -> str:
    """`text` as an assertion value promptfoo compares verbatim: it renders assertion
    values with Nunjucks and reads one starting with file:// or package: as a reference."""
    if text.startswith(("file://", "package:")):
        return "{% raw %}" + text + "{% endraw %}"
    return _nunjucks_literal(text)


def promptfoo_rubric(verdict: str, rationale: str) -> str:
    """The `llm-rubric` a labelled output's rationale becomes (good or bad verdicts)."""
    if verdict == "good":
        return ("A reviewer marked an earlier answer to this input as good, for this "
                f"reason: {rationale}\n"
                "Pass the output only if it has the quality that reason describes.")
    return ("A reviewer marked an earlier answer to this input as bad, for this reason: "
            f"{rationale}\n"
            "The output must NOT do what that reason describes: fail it if it does, pass "
            "it if it avoids that fault.")


def promptfoo_assertions(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The assertions a case's labelled outputs teach (outputs oldest first; when one text
    was labelled more than once, its newest label counts): an exact good output must be
    matched (any one of several), an exact bad one must not be, and a good or bad verdict
    with a rationale becomes an `llm-rubric` stating it. Unsure labels teach nothing."""
    newest: dict[str, dict[str, Any]] = {}
    for output in outputs:
        if output["label"] is not None and output["status"] == "ok":
            newest[output["text"]] = output
    good = [text for text, o in newest.items() if o["label"] == "good" and text]
    bad = [text for text, o in newest.items() if o["label"] == "bad" and text]
    asserts: list[dict[str, Any]] = []
    if len(good) == 1:
        asserts.append({"type": "equals", "value": _assertion_value(good[0])})
    elif good:
        # The set passes when its score (the share of its checks that pass) reaches the
        # threshold: one match in n.
        asserts.append({"type": "assert-set", "threshold": 1 / len(good),
                        "assert": [{"type": "equals", "value": _assertion_value(text)}
                                   for text in good]})
    asserts.extend({"type": "not-equals", "value": _assertion_value(text)} for text in bad)
    rubrics: list[tuple[str, str]] = []
    for o in newest.values():
        rationale = (o["rationale"] or "").strip()
        if o["label"] in ("good", "bad") and rationale and (o["label"], rationale) not in rubrics:
            rubrics.append((o["label"], rationale))
    asserts.extend({"type": "llm-rubric", "value": _assertion_value(promptfoo_rubric(*r))}
                   for r in rubrics)
    return asserts


def promptfoo_test(record: dict[str, Any], rule: tuple[int, str | None] | None = None
                   ) -> dict[str, Any]:
    """One promptfoo test for an exported case record: its input as the `input` variable,
    assertions from its labels, and metadata naming the case, its rule (number, and
    title if known) and its newest label."""
    metadata: dict[str, Any] = {"coevo_id": record["id"]}
    if record["tags"]:
        metadata["coevo_tags"] = ";".join(record["tags"])
    if rule is not None:
        metadata["coevo_rule"] = rule[0]
        if rule[1]:
            metadata["coevo_rule_title"] = rule[1]
    labelled = [o for o in record["outputs"] if o["label"] is not None]
    if labelled:
        newest = labelled[-1]
        metadata["coevo_label"] = newest["label"]
        metadata["coevo_label_version"] = newest["version"]
        if newest["rationale"]:
            metadata["coevo_rationale"] = newest["rationale"]
    test: dict[str, Any] = {"description": record["id"], "vars": {"input": record["input"]}}
    asserts = promptfoo_assertions(record["outputs"])
    if asserts:
        test["assert"] = asserts
    test["metadata"] = metadata
    return test


async def _write_tests(records: AsyncIterable[dict[str, Any]], out: TextIO,
                       rules: dict[str, tuple[int, str | None]], *, lead: str = "") -> int:
    """The tests of the active cases, as the items of a YAML list at the left margin,
    `lead` written before the first."""
    count = 0
    async for record in records:
        if record["state"] != CaseState.ACTIVE.value:
            continue
        if count == 0:
            out.write(lead)
        # Each test is dumped as a list of one: concatenated, they make the whole list.
        out.write(promptfoo_yaml([promptfoo_test(record, rules.get(record["id"]))]))
        count += 1
        await drain(out)
    return count


async def write_promptfoo(records: AsyncIterable[dict[str, Any]], out: TextIO, *,
                          project: Project, versions: list[PromptVersion],
                          rules: dict[str, tuple[int, str | None]] | None = None,
                          tests_out: TextIO | None = None) -> int:
    """A promptfoo config: one prompt per version in `versions`, the project's provider,
    one test per active case (`rules` maps a case id to its rule's number and title).
    The tests go into the config itself, or with `tests_out` into that stream (a
    PROMPTFOO_TESTS_FILE beside the config, which names it). Returns the number of tests."""
    rules = rules or {}
    header, config = promptfoo_config(
        project, versions, tests_file=None if tests_out is None else PROMPTFOO_TESTS_FILE)
    out.write(header)
    out.write(promptfoo_yaml(config))
    if tests_out is None:
        count = await _write_tests(records, out, rules, lead="tests:\n")
        if count == 0:
            out.write("tests: []\n")
    else:
        tests_out.write(f"# promptfoo tests written by coevo from project {project.name!r}: "
                        f"one per active case, read by {PROMPTFOO_CONFIG_FILE}.\n")
        count = await _write_tests(records, tests_out, rules)
        if count == 0:
            tests_out.write("[]\n")
        await drain(tests_out, everything=True)
    await drain(out, everything=True)
    return count
