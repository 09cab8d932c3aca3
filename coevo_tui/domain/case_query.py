"""The Cases screen's filter language, and the light row it filters (no Textual here).

A query is words separated by spaces:

- a plain word matches the case's input text, case-insensitively (every word must match);
  a `"quoted phrase"` matches as one piece;
- `#tag` or `tag:tag` keeps cases with that tag (every tag named must be present);
- `state:active|candidate|archived|all` chooses the states shown (several are allowed;
  the default is active cases only, so archived and candidate cases are hidden);
- `source:manual|imported|generated|similar`, `id:c12` (the case's id);
- `rule:3` keeps cases that probe rule 3 (the rule the assistant generated them for),
  `rule:none` those that probe no rule; several mean "any of".

Values of `state:` and `source:` may be prefixes (`state:arch`), so a half-typed filter
already works. A word starting with `-` excludes (`-refund`, `-#easy`).

The rows are plain tuples, `CaseLine`, because the table may hold 100,000 of them: a tuple
is a third of the memory of a dataclass and is what SQLite hands back without conversion.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from coevo_tui.domain.model import Case, CaseSource, CaseState
from coevo_tui.domain.status import ComparisonStatus

# (id, ext_id, input, tags as the stored JSON list, source, state, rule number or None)
CaseLine = tuple[int, str, str, str, str, str, int | None]
LINE_ID, LINE_EXT_ID, LINE_INPUT, LINE_TAGS, LINE_SOURCE, LINE_STATE, LINE_RULE = range(7)

STATES = tuple(s.value for s in CaseState)
SOURCES = tuple(s.value for s in CaseSource)
DEFAULT_STATES = frozenset({CaseState.ACTIVE.value})


def case_line(case: Case) -> CaseLine:
    """The light row of a full Case (after an add or an edit)."""
    return (case.id, case.ext_id, case.input, tags_json(case.tags), case.source.value,
            case.state.value, case.rule_number)


def tags_json(tags: Sequence[str]) -> str:
    """Tags encoded exactly as the store encodes them, so `tag_token` finds them."""
    return json.dumps(list(tags), ensure_ascii=False)


def line_tags(line: CaseLine) -> tuple[str, ...]:
    """The tags of a row (decoded on demand: only visible rows need them)."""
    raw = line[LINE_TAGS]
    return () if raw == "[]" else tuple(json.loads(raw))


def tag_token(tag: str) -> str:
    """How `tag` appears inside the stored JSON list: a quoted JSON string.

    Searching for it in the raw JSON is exact (a quote inside a tag is escaped, so it can
    never close the token early) and avoids decoding 100,000 lists per keystroke.
    """
    return json.dumps(tag, ensure_ascii=False)


def _expand(value: str, choices: Sequence[str]) -> set[str]:
    if value == "all":
        return set(choices)
    return {c for c in choices if c.startswith(value)}


def _rule_number(value: str) -> int | None | bool:
    """The rule a `rule:` word names: its number, None for `none` (a prefix is enough),
    False for anything else."""
    value = value.strip().lower()
    if value.isdigit() and int(value) > 0:
        return int(value)
    if value and "none".startswith(value):
        return None
    return False


@dataclass(frozen=True)
class CaseQuery:
    """A parsed filter. `CaseQuery.parse("")` shows the active cases."""

    text: str = ""
    words: tuple[str, ...] = ()
    not_words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    not_tags: tuple[str, ...] = ()
    states: frozenset[str] = DEFAULT_STATES
    sources: frozenset[str] | None = None
    ext_ids: frozenset[str] | None = None
    rules: frozenset[int | None] | None = None  # None: any rule; None inside: no rule
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, text: str) -> CaseQuery:
        """Parse the filter line. Never raises: what it cannot use is listed in `problems`."""
        try:
            tokens = shlex.split(text)
        except ValueError:  # an unclosed quote while typing: treat quotes as letters
            tokens = text.split()
        words: list[str] = []
        not_words: list[str] = []
        tags: list[str] = []
        not_tags: list[str] = []
        states: set[str] = set()
        sources: set[str] | None = None
        ext_ids: set[str] | None = None
        rules: set[int | None] | None = None
        problems: list[str] = []
        for token in tokens:
            negate = token.startswith("-") and len(token) > 1
            body = token[1:] if negate else token
            key, sep, value = body.partition(":")
            key = key.lower()
            if body.startswith("#") and len(body) > 1:
                (not_tags if negate else tags).append(body[1:])
            elif sep and key == "tag" and value:
                (not_tags if negate else tags).append(value)
            elif sep and key == "state":
                found = _expand(value.lower(), STATES)
                if not found:
                    problems.append(f"no state {value!r} ({', '.join(STATES)}, all)")
                states |= found
            elif sep and key == "source":
                found = _expand(value.lower(), SOURCES)
                if not found:
                    problems.append(f"no source {value!r} ({', '.join(SOURCES)})")
                sources = (sources or set()) | found
            elif sep and key == "id" and value:
                ext_ids = (ext_ids or set()) | {value}
            elif sep and key == "rule":
                number = _rule_number(value)
                if number is False:
                    problems.append(f"no rule {value!r} (a rule's number, or none)")
                else:
                    rules = (rules or set()) | {number}
            else:
                (not_words if negate else words).append(body.lower())
        return cls(
            text=text,
            words=tuple(words),
            not_words=tuple(not_words),
            tags=tuple(tags),
            not_tags=tuple(not_tags),
            states=frozenset(states) if states else DEFAULT_STATES,
            sources=None if sources is None else frozenset(sources),
            ext_ids=None if ext_ids is None else frozenset(ext_ids),
            rules=None if rules is None else frozenset(rules),
            problems=tuple(problems),
        )

    @property
    def needs_lowered_text(self) -> bool:
        """True when matching needs the lower-cased inputs (built once, then kept)."""
        return bool(self.words or self.not_words)

    @property
    def shows_archived(self) -> bool:
        return CaseState.ARCHIVED.value in self.states

    def select(self, lines: Sequence[CaseLine], lowered: Sequence[str] | None,
               start: int, stop: int) -> list[CaseLine]:
        """The rows of `lines[start:stop]` that match, in order.

        `lowered[i]` is `lines[i]`'s input lower-cased; it is only read when the query has
        words. Written as comprehensions over one condition at a time, because this runs
        over 100,000 rows on a keystroke.
        """
        picked = range(start, min(stop, len(lines)))
        states = self.states
        if states != frozenset(STATES):
            picked = [i for i in picked if lines[i][LINE_STATE] in states]
        if self.sources is not None:
            sources = self.sources
            picked = [i for i in picked if lines[i][LINE_SOURCE] in sources]
        if self.ext_ids is not None:
            ext_ids = self.ext_ids
            picked = [i for i in picked if lines[i][LINE_EXT_ID] in ext_ids]
        if self.rules is not None:
            rules = self.rules
            picked = [i for i in picked if lines[i][LINE_RULE] in rules]
        for tag in self.tags:
            token = tag_token(tag)
            picked = [i for i in picked if token in lines[i][LINE_TAGS]]
        for tag in self.not_tags:
            token = tag_token(tag)
            picked = [i for i in picked if token not in lines[i][LINE_TAGS]]
        if self.words or self.not_words:
            assert lowered is not None, "the query has words: pass the lowered inputs"
            for word in self.words:
                picked = [i for i in picked if word in lowered[i]]
            for word in self.not_words:
                picked = [i for i in picked if word not in lowered[i]]
        return [lines[i] for i in picked]

    def matches(self, line: CaseLine) -> bool:
        """Whether one row matches (for a row that was just added or edited)."""
        return bool(self.select([line], [line[LINE_INPUT].lower()], 0, 1))


# ---------------------------------------------------------------------- verdict: and status:
# These two words need the answers' labels, which the rows do not carry: the screen takes
# them out of the line first, filters the rest with CaseQuery, then by verdict or status.
# `status:regressed`: the comparison status between the newest two versions.
STATUS_CHOICES: dict[str, ComparisonStatus] = {
    **{s.value: s for s in ComparisonStatus}, "not_run": ComparisonStatus.MISSING}
_STATUS_TOKEN = re.compile(r"(?<!\S)status:(\S*)", re.IGNORECASE)


def split_status_filter(text: str
                        ) -> tuple[str, frozenset[ComparisonStatus] | None, str | None]:
    """Take the `status:NAME` words out of a filter line (NAME a status such as regressed,
    fixed, changed_unlabelled, still_good, not_run; a prefix is enough, `-` may stand for
    `_`, several mean "any of"). Returns the rest, the statuses asked for (None: no status
    filter) and a problem to show (None: none)."""
    found: set[ComparisonStatus] = set()
    problem: str | None = None
    seen = False
    for match in _STATUS_TOKEN.finditer(text):
        seen = True
        value = match.group(1).lower().replace("-", "_")
        chosen = {s for name, s in STATUS_CHOICES.items() if name.startswith(value)} if value \
            else set()
        if not chosen:
            problem = f"no status {value!r} (regressed, fixed, changed_unlabelled, ...)"
        found |= chosen
    if not seen:
        return text, None, None
    return " ".join(_STATUS_TOKEN.sub(" ", text).split()), frozenset(found) or None, problem


VERDICT_CHOICES = ("good", "bad", "unsure", "unlabelled")
_VERDICT_TOKEN = re.compile(r"(?<!\S)verdict:(\S*)", re.IGNORECASE)


def split_verdict_filter(text: str) -> tuple[str, frozenset[str] | None, str | None]:
    """Take the `verdict:good|bad|unsure|unlabelled` words (prefixes allowed; several
    mean "any of") out of a filter line. Returns the rest (for CaseQuery), the verdicts
    asked for (None: no verdict filter) and a problem to show (None: none)."""
    found: set[str] = set()
    problem: str | None = None
    seen = False
    for match in _VERDICT_TOKEN.finditer(text):
        seen = True
        value = match.group(1).lower()
        chosen = {v for v in VERDICT_CHOICES if v.startswith(value)} if value else set()
        if not chosen:
            problem = f"no verdict {value!r} ({', '.join(VERDICT_CHOICES)})"
        found |= chosen
    if not seen:
        return text, None, None
    return " ".join(_VERDICT_TOKEN.sub(" ", text).split()), frozenset(found) or None, problem
