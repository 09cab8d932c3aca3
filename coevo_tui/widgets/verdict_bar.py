"""The verdict of the output on screen, its source and its rationale, readable without colour.

A person's label reads `[BAD]` (upper case, in brackets); a carried one reads
`~ bad (carried)` in dim italics; a confirmed judge verdict `[GOOD] (judge)`. An
unlabelled answer the judge has looked at shows its suggestion, dimmed, on the second line
("judge: bad: threatens a real person · y accepts"): a suggestion, not a label. The marker
and the words carry the meaning, colour (CSS classes -good/-bad/-unsure/-carried) only
helps.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from coevo_tui.domain.carryover import describe_label, is_carried
from coevo_tui.domain.model import Judgement, Label, LabelSource, first_line


def verdict_text(label: Label | None) -> str:
    """The verdict words: "[GOOD]", "[BAD] (judge)", "~ good (carried)", "unlabelled"."""
    if label is None:
        return "unlabelled"
    if is_carried(label):
        return f"~ {describe_label(label)}"
    head = f"[{label.verdict.value.upper()}]"
    return head if label.source == LabelSource.HUMAN else f"{head} ({label.source.value})"


_STATE_CLASSES = frozenset({"-good", "-bad", "-unsure", "-carried", "-unlabelled", "-waiting"})


def judge_text(judgement: Judgement, accept_key: str = "y", width: int | None = None
               ) -> Text:
    """The judge's suggestion on one line, dimmed: "judge: bad: <reason> · y accepts"
    (the reason cut to fit `width` columns)."""
    text = Text(style="dim")
    text.append("judge: ", style="italic")
    text.append(judgement.verdict.value, style="bold")
    hint = f" · {accept_key} accepts" if accept_key else ""
    if judgement.reason:
        room = None if width is None else max(width - text.cell_len - len(hint) - 2, 8)
        text.append(f": {first_line(judgement.reason, room)}")
    text.append(hint)
    return text


def verdict_cell(label: Label | None) -> str:
    """The verdict in a narrow table cell (8 columns): "bad", "~good" for a carried label,
    "j:good" for a confirmed judge verdict, "" when unlabelled."""
    if label is None:
        return ""
    if is_carried(label):
        return f"~{label.verdict.value}"
    if label.source == LabelSource.JUDGE:
        return f"j:{label.verdict.value}"
    return label.verdict.value


class VerdictBar(Static):
    """Shows a label (or why there is none) and its rationale, on one or two lines."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.label: Label | None = None
        self.judgement: Judgement | None = None  # the judge's suggestion shown, if any
        self._text: Text | None = None  # what it shows

    def show_label(self, label: Label | None, *, changes: int = 0,
                   judgement: Judgement | None = None, accept_key: str = "y") -> None:
        """Show `label` (None: unlabelled). `changes` is how many earlier labels the output
        had (its history), mentioned so that a changed mind is visible. An unlabelled
        output's `judgement` shows as the judge's suggestion (`accept_key` accepts it)."""
        self.label = label
        self.judgement = judgement if label is None else None
        text = Text()
        text.append("Verdict ", style="bold")
        text.append(verdict_text(label), style="italic" if is_carried(label) else "bold")
        if label is None:
            text.append("   g good · b bad · u unsure", style="dim")
        elif changes:
            text.append(f"   (changed; {changes} earlier label{'s' if changes > 1 else ''}"
                        " kept in history)", style="dim")
        if label is None and judgement is not None:
            text.append("\n")
            width = self.content_region.width if self.is_mounted else None
            text.append_text(judge_text(judgement, accept_key, width or None))
        if label is not None:
            text.append("\nRationale ", style="bold")
            if label.rationale:
                text.append(label.rationale)
            else:
                text.append("none (r to write one)", style="dim")
        self._show(text)
        wanted = {"-unlabelled"} if label is None else {f"-{label.verdict.value}"}
        if is_carried(label):
            wanted.add("-carried")
        self._use_classes(wanted)

    def show_waiting(self, reason: str) -> None:
        """No output to label yet (streaming, waiting for a run, or an error)."""
        self.label = None
        self.judgement = None
        self._show(Text.assemble(("Verdict ", "bold"), (reason, "dim")))
        self._use_classes({"-waiting"})

    def _show(self, text: Text) -> None:
        # The same text again (the same label shown twice) is not redrawn.
        if text != self._text:
            self._text = text
            self.update(text)

    def _use_classes(self, wanted: set[str]) -> None:
        # One restyle for the whole change, none when nothing changed.
        current = {c for c in self.classes if c in _STATE_CLASSES}
        if current != wanted:
            self.set_classes((set(self.classes) - _STATE_CLASSES) | wanted)
