"""Comparison-status badges and verdict marks that read without colour.

Every status has a symbol and words (`ComparisonStatus.text`), so a badge reads the same
with NO_COLOR as in colour: the colour only repeats what the symbol says. The symbols
point the way the verdict moved (▼ worse, ▲ better, = the same verdict, ? needs a label),
and the CSS class groups statuses for the stylesheet (`-worse`, `-better`, `-attention`,
`-failure`, `-same`, `-missing`).

A verdict mark is one character for narrow table cells: the letter of the labelling key
(G good, B bad, U unsure), lower-case when the label was carried over from an identical
answer, `!` for an error, `·` for an answer nobody labelled and a blank when not run.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from coevo_tui.domain.model import Label, LabelSource, OutputStatus, Verdict
from coevo_tui.domain.status import Answer, ComparisonStatus

S = ComparisonStatus

STATUS_SYMBOL: dict[ComparisonStatus, str] = {
    S.REGRESSED: "▼",
    S.GOOD_TO_UNSURE: "▽",
    S.UNSURE_TO_BAD: "▽",
    S.FIXED: "▲",
    S.BAD_TO_UNSURE: "△",
    S.UNSURE_TO_GOOD: "△",
    S.CHANGED_UNLABELLED: "?",
    S.NO_BASELINE_VERDICT: "?",
    S.NEW: "+",
    S.ERROR: "!",
    S.STILL_GOOD: "=",
    S.STILL_BAD: "=",
    S.STILL_UNSURE: "=",
    S.UNCHANGED: "≡",
    S.MISSING: "·",
}

# The stylesheet colours groups, not single statuses: fewer rules, the same meaning.
STATUS_GROUP: dict[ComparisonStatus, str] = {
    S.REGRESSED: "worse",
    S.GOOD_TO_UNSURE: "worse",
    S.UNSURE_TO_BAD: "worse",
    S.FIXED: "better",
    S.BAD_TO_UNSURE: "better",
    S.UNSURE_TO_GOOD: "better",
    S.CHANGED_UNLABELLED: "attention",
    S.NO_BASELINE_VERDICT: "attention",
    S.NEW: "attention",
    S.ERROR: "failure",
    S.STILL_GOOD: "same",
    S.STILL_BAD: "same",
    S.STILL_UNSURE: "same",
    S.UNCHANGED: "same",
    S.MISSING: "missing",
}
GROUPS = ("worse", "better", "attention", "failure", "same", "missing")

# Short words for narrow cells; the full words are `ComparisonStatus.text`.
_SHORT_TEXT: dict[ComparisonStatus, str] = {
    S.CHANGED_UNLABELLED: "changed, unlab.",
    S.NO_BASELINE_VERDICT: "no base verdict",
}


def status_label(status: ComparisonStatus, *, short: bool = False) -> str:
    """Symbol and words, e.g. "▼ regressed"; `short` keeps it within 17 cells."""
    words = _SHORT_TEXT.get(status, status.text) if short else status.text
    return f"{STATUS_SYMBOL[status]} {words}"


STATUS_LABEL_WIDTH = max(len(status_label(s, short=True)) for s in ComparisonStatus)


def status_group(status: ComparisonStatus) -> str:
    """The colour group of a status (one of `GROUPS`)."""
    return STATUS_GROUP[status]


def status_text(status: ComparisonStatus, *, short: bool = False) -> Text:
    """The badge as Rich text: bold for the statuses to look at first, plain otherwise."""
    group = STATUS_GROUP[status]
    style = "bold" if group in ("worse", "failure", "attention") else ""
    return Text(status_label(status, short=short), style=style)


VERDICT_MARK = {Verdict.GOOD: "G", Verdict.BAD: "B", Verdict.UNSURE: "U"}


def verdict_mark(answer: Answer | None) -> str:
    """One character for a version's answer to a case (see the module docstring)."""
    if answer is None or answer.output.status == OutputStatus.CANCELLED:
        return " "
    if answer.output.status == OutputStatus.ERROR:
        return "!"
    return label_mark(answer.label)


def label_mark(label: Label | None) -> str:
    """G/B/U for a label given by a person (or a confirmed judge), g/b/u when carried,
    `·` for no label."""
    if label is None:
        return "·"
    mark = VERDICT_MARK[label.verdict]
    return mark.lower() if label.source == LabelSource.CARRIED else mark


def verdict_words(label: Label | None) -> str:
    """A label in words for a pane's title: "GOOD", "BAD (carried)", "unlabelled"."""
    if label is None:
        return "unlabelled"
    words = label.verdict.value.upper()
    if label.source != LabelSource.HUMAN:
        words += f" ({label.source.value})"
    return words


class StatusBadge(Static):
    """A comparison status as "▼ regressed", with a CSS class for its group (`-worse`...).

    `status` None shows `placeholder` (e.g. while the statuses load).
    """

    status: reactive[ComparisonStatus | None] = reactive(None)

    def __init__(self, status: ComparisonStatus | None = None, *, placeholder: str = "",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.placeholder = placeholder
        self.set_reactive(StatusBadge.status, status)

    def on_mount(self) -> None:
        self.watch_status(self.status)

    def watch_status(self, status: ComparisonStatus | None) -> None:
        for group in GROUPS:
            self.set_class(status is not None and STATUS_GROUP[status] == group, f"-{group}")
        self.update(self.placeholder if status is None else status_text(status))
