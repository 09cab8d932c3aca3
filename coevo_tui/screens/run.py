"""`R`: run the whole test set. The run lives on the Label screen (its run panel), so the
answers can be labelled while they stream in; this module is the registry's entry point
and the run panel's wording.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from coevo_tui.domain.model import PromptVersion
    from coevo_tui.llm.runner import RunSummary
    from coevo_tui.screens.label import LabelScreen


def run_screen(version: int | None = None, **kwargs: Any) -> LabelScreen:
    """The screen `R` opens: the Label screen over every active case with the run of the
    test set started under `version` (default the newest). Keyword arguments go to
    LabelScreen (e.g. `case_ids`, `start_case_id`)."""
    from coevo_tui.screens.label import LabelScreen

    return LabelScreen(version=version, start_run=True, **kwargs)


def text_bar(done: int, total: int, width: int = 20) -> str:
    """A progress bar readable without colour: "█████░░░░░"."""
    filled = 0 if total <= 0 else min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def run_line(summary: RunSummary, version: PromptVersion, *, running: bool) -> Text:
    """The run panel's line: bar, done/total, errors, cost, and what the keys do."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if running:
        head = f"Run v{version.number} "
    elif summary.halted:
        head = f"Run stopped v{version.number} "
    else:
        head = f"Run done v{version.number} "
    text.append(head, style="bold")
    text.append(text_bar(summary.done, summary.to_run, 16))
    text.append(f" {summary.done}/{summary.to_run}")
    errors = f" · {summary.errors} error{'' if summary.errors == 1 else 's'}"
    text.append(errors, style="bold" if summary.errors else "")
    if summary.cached:
        text.append(f" · {summary.cached} cached")
    text.append(f" · {summary.cost_text()}")
    if summary.skipped:
        text.append(f" · {summary.skipped} already done")
    if running:
        text.append(" · x stop", style="dim")
    elif summary.halted:
        text.append(" · R resumes", style="dim")
    return text
