"""How a run's progress reads on one line, without colour: a bar, done/total, errors,
cost, and what the keys do ("Run v2 ████░░ 12/54 · 1 error · $0.0030 · x stop")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from coevo_tui.domain.model import PromptVersion
    from coevo_tui.llm.runner import RunSummary


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
