"""The entities of SPEC section 2 as frozen dataclasses."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any


class Verdict(str, enum.Enum):
    GOOD = "good"
    BAD = "bad"
    UNSURE = "unsure"


class CaseState(str, enum.Enum):
    CANDIDATE = "candidate"
    ACTIVE = "active"
    ARCHIVED = "archived"
    REJECTED = "rejected"  # a candidate turned down: kept, hidden, never proposed again


class CaseSource(str, enum.Enum):
    MANUAL = "manual"
    IMPORTED = "imported"
    GENERATED = "generated"
    SIMILAR = "similar"


class OutputStatus(str, enum.Enum):
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"


class LabelSource(str, enum.Enum):
    HUMAN = "human"
    CARRIED = "carried"
    JUDGE = "judge"


@dataclass(frozen=True)
class Project:
    """Project-wide settings (one row per project file)."""

    name: str
    task: str = ""
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    assistant_model: str | None = None


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of the instructions."""

    id: int
    number: int
    instructions: str
    user_template: str | None
    parent_id: int | None
    note: str
    created_at: str


@dataclass(frozen=True)
class Case:
    """One input of the living test set. `ext_id` is the stable id used in files and CLI.

    A case the assistant proposed says where it came from: `origin_version_id` (generated
    under that version), `rule_number` (the rule of that version it probes), `reason` (the
    assistant's one line on why it is hard), and for a similar case `origin_case_id`."""

    id: int
    ext_id: str
    input: str
    tags: tuple[str, ...] = ()
    note: str = ""
    source: CaseSource = CaseSource.MANUAL
    origin_case_id: int | None = None
    state: CaseState = CaseState.ACTIVE
    created_at: str = ""
    updated_at: str = ""
    rule_number: int | None = None
    reason: str = ""
    origin_version_id: int | None = None


@dataclass(frozen=True)
class Output:
    """One model answer for (case, version, model, parameters)."""

    id: int
    case_id: int
    version_id: int
    model: str
    params: dict[str, Any]
    text: str
    status: OutputStatus
    error: str | None = None
    latency_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    cached: bool = False
    run_id: int | None = None
    created_at: str = ""


@dataclass(frozen=True)
class Label:
    """A verdict on one output. Changing a label adds a new row; the old one stays."""

    id: int
    output_id: int
    verdict: Verdict
    rationale: str
    source: LabelSource
    carried_from: int | None = None
    created_at: str = ""


@dataclass(frozen=True)
class NewRule:
    """A numbered rule of a version's instructions, about to be stored."""

    number: int
    title: str
    text: str = ""


@dataclass(frozen=True)
class PolicyRule:
    """A numbered rule of a version's instructions (short title, and the rule's text),
    extracted by the assistant and editable; cases point at it by `number`."""

    id: int
    version_id: int
    number: int
    title: str
    text: str = ""


@dataclass(frozen=True)
class Judgement:
    """The judge's suggested verdict on an output with its one-line `reason`. A
    suggestion until the user accepts it: then `label_id` is the label it became."""

    id: int
    output_id: int
    verdict: Verdict
    reason: str
    model: str
    label_id: int | None = None
    created_at: str = ""


@dataclass(frozen=True)
class Event:
    """One entry of the append-only event log."""

    id: int
    at: str
    kind: str
    entity: str
    entity_id: int | None
    payload: dict[str, Any]


_WS = re.compile(r"\s+")


def normalize_output_text(text: str) -> str:
    """Whitespace-normalized text, the key of carry-over (SPEC section 2)."""
    return _WS.sub(" ", text).strip()


def first_line(text: str, width: int | None = None) -> str:
    """The first non-blank line of `text`, for one-line table cells."""
    for line in text.splitlines():
        if line.strip():
            text = line.strip()
            break
    else:
        text = text.strip()
    if width is not None and len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text
