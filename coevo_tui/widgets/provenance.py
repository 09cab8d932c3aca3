"""How a version's provenance reads: its note and the cases (with the rationales) that
motivated it. Shared by the Overview and the Prompt screen's version view."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from coevo_tui.domain.model import first_line
from coevo_tui.services.overview import Motivation, VersionRow
from coevo_tui.widgets.status_badge import label_mark


def provenance_text(row: VersionRow) -> Text:
    """The version's note and the cases (with rationales) that motivated it."""
    text = Text()
    text.append(f"v{row.version.number} note: ", style="bold")
    text.append(row.version.note or "-")
    text.append("\n")
    text.append_text(motivations_text(row.motivations))
    return text


def motivations_text(motivations: Sequence[Motivation]) -> Text:
    """"Motivated by:" and one line per case: its id, the label's mark and rationale (or
    the case's input when the label had no rationale)."""
    text = Text()
    text.append("Motivated by: ", style="bold")
    if not motivations:
        text.append("no cases recorded", style="italic")
        return text
    for motivation in motivations:
        text.append(f"\n  {motivation.case_ext_id} ", style="bold")
        label = motivation.label
        if label is not None:
            text.append(f"[{label_mark(label)}] ")
            rationale = first_line(label.rationale, 200) if label.rationale else ""
            text.append(rationale or first_line(motivation.case_input, 200),
                        style="" if rationale else "italic")
        else:
            text.append(first_line(motivation.case_input, 200), style="italic")
    return text
