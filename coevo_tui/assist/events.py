"""What an assistant task tells whoever drives it (an app job, a headless command).

The tasks that produce many items (candidates, similar cases, the judge) are async
iterators of these events, like the runner's: `AssistStarted` first, then per item
`CandidateAdded` / `CandidateDropped` / `ItemRejected` / `Judged`, `AssistText` pieces of
the answer as it arrives (for a progress display), and `AssistFinished` last with the
`AssistSummary`. Closing or cancelling the iterator stops the model call; what was
stored stays, and the summary says `halted`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from coevo_tui.domain.model import Case, Judgement, PolicyRule

_PROBLEMS_LOGGED = 10  # of a task's problems, in its event-log entry


@dataclass
class AssistSummary:
    """Counts of one assistant task, updated live while it runs (the same object
    throughout). `by_rule` maps a rule number (None: no rule) to (kept, dropped).
    `error`: one line when the task produced nothing usable. `cost` is None while no
    call's price is known."""

    task: str
    model: str = ""
    total: int | None = None  # items asked for (generation) or answers to judge
    generated: int = 0  # usable items the assistant produced (kept + dropped)
    kept: int = 0
    dropped: int = 0  # near duplicates
    unusable: int = 0  # items that did not match what was asked
    by_rule: dict[int | None, tuple[int, int]] = field(default_factory=dict)
    done: int = 0  # answers judged
    errors: int = 0  # calls that failed
    problems: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    halted: bool = False
    error: str | None = None
    subject: str = ""  # what it worked on: "v2", "c12"
    elapsed_s: float = 0.0
    _started: float = field(default_factory=time.perf_counter, repr=False)

    # ------------------------------------------------------------------ updating
    def add_call(self, tokens_in: int | None, tokens_out: int | None,
                 cost: float | None) -> None:
        """Count one structured call's usage."""
        self.tokens_in += tokens_in or 0
        self.tokens_out += tokens_out or 0
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def count_item(self, rule_number: int | None, *, kept: bool) -> None:
        """One usable item, kept or dropped as a near duplicate."""
        self.generated += 1
        was_kept, was_dropped = self.by_rule.get(rule_number, (0, 0))
        if kept:
            self.kept += 1
            self.by_rule[rule_number] = (was_kept + 1, was_dropped)
        else:
            self.dropped += 1
            self.by_rule[rule_number] = (was_kept, was_dropped + 1)

    def finish(self) -> None:
        self.elapsed_s = time.perf_counter() - self._started

    # ------------------------------------------------------------------ telling
    def cost_text(self) -> str:
        return "cost unknown" if self.cost is None else f"${self.cost:.4f}"

    def line(self) -> str:
        """One line for a notification or a command's last line."""
        head = "stopped: " if self.halted else ""
        if self.task == "judge":
            total = "?" if self.total is None else str(self.total)
            body = f"judged {self.done} of {total} answers"
            if self.subject:
                body += f" under {self.subject}"
            if self.errors:
                body += f", {self.errors} failed"
        elif self.task == "assign":
            total = "?" if self.total is None else str(self.total)
            body = f"rules for {self.done} of {total} cases"
            if self.subject:
                body += f" under {self.subject}"
            rules = ", ".join(f"{'no rule' if n is None else f'rule {n}'}: {kept}"
                              for n, (kept, _) in sorted(
                                  self.by_rule.items(), key=lambda i: (i[0] is None, i[0] or 0)))
            if rules:
                body += f" ({rules})"
            if self.errors:
                body += f", {self.errors} batches failed"
        elif self.task in ("candidates", "similar"):
            what = "similar cases" if self.task == "similar" else "cases"
            where = f" of {self.subject}" if self.task == "similar" and self.subject else (
                f" under {self.subject}" if self.subject else "")
            body = (f"{self.generated} {what}{where}: {self.kept} kept, {self.dropped}"
                    " dropped as near duplicates")
            rules = self._rules_text()
            if rules:
                body += f" ({rules})"
            if self.unusable:
                body += f"; {self.unusable} unusable"
        else:
            body = f"{self.task}{' for ' + self.subject if self.subject else ''}"
            body += " failed" if self.error else " done"
        if self.error and (self.task != "judge" or not self.done):
            body += f"; {self.error}"
        return f"{head}{body}; {self.cost_text()}; {self.elapsed_s:.1f} s"

    def _rules_text(self) -> str:
        parts = []
        for number in sorted(self.by_rule, key=lambda n: (n is None, n or 0)):
            kept, dropped = self.by_rule[number]
            name = "no rule" if number is None else f"rule {number}"
            counts = ", ".join(text for text, count in ((f"{kept} kept", kept),
                                                         (f"{dropped} dropped", dropped))
                               if count)
            parts.append(f"{name}: {counts}")
        return "; ".join(parts)

    def payload(self) -> dict[str, Any]:
        """The event log's record of the task (kind "assist", entity the task)."""
        return {
            "model": self.model, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
            "cost": None if self.cost is None else round(self.cost, 8),
            "kept": self.kept, "dropped": self.dropped, "generated": self.generated,
            "unusable": self.unusable, "done": self.done, "total": self.total,
            "errors": self.errors, "halted": self.halted, "error": self.error,
            "by_rule": {("none" if k is None else str(k)): list(v)
                        for k, v in self.by_rule.items()},
            "problems": self.problems[:_PROBLEMS_LOGGED],
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class AssistStarted:
    """A task began: `total` items asked for or answers to judge (None: not known)."""

    task: str
    total: int | None
    summary: AssistSummary | None = None


@dataclass(frozen=True)
class RulesExtracted:
    """The version had no rules: the assistant extracted (and the store saved) these."""

    version_id: int
    rules: tuple[PolicyRule, ...]


@dataclass(frozen=True)
class RulesAssigned:
    """Existing cases now point at the rule they probe (case id -> rule number, None:
    none of the rules)."""

    rules: dict[int, int | None]


@dataclass(frozen=True)
class AssistText:
    """A piece of the assistant's answer as it arrives (progress on a slow model)."""

    text: str


@dataclass(frozen=True)
class RulesText:
    """A piece of the rules' answer as it arrives, while a version's rules are extracted
    before the task's own call (progress on a slow model)."""

    text: str


@dataclass(frozen=True)
class CandidateAdded:
    """A generated or similar case, stored in the review queue."""

    case: Case


@dataclass(frozen=True)
class CandidateDropped:
    """An item left out as a near duplicate of `duplicate_of` (an existing case, a
    rejected input or an earlier item)."""

    text: str
    duplicate_of: str
    rule_number: int | None


@dataclass(frozen=True)
class ItemRejected:
    """An item (or, for the judge, the answer `output_id`) that could not be used."""

    problem: str
    output_id: int | None = None


@dataclass(frozen=True)
class Judged:
    """The judge's verdict on an answer, stored as a suggestion."""

    output_id: int
    judgement: Judgement


@dataclass(frozen=True)
class RevisionDrafted:
    """The assistant's draft of a revision (`draft.error` says why there is none); an
    `assist.revision.RevisionDraft`."""

    draft: Any


@dataclass(frozen=True)
class AssistFinished:
    summary: AssistSummary


AssistEvent = (AssistStarted | RulesExtracted | RulesAssigned | RulesText | AssistText
               | CandidateAdded | CandidateDropped | ItemRejected | Judged | RevisionDrafted
               | AssistFinished)
