"""The app's long jobs on one line ("run v2 12/54 · X stops"), for screens that have no
other place for them; hidden while nothing runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from coevo_tui.jobs import Job


class JobsLine(Static):
    """Follows `app.jobs.changed` (coalesced by the app); one line, or nothing."""

    def on_mount(self) -> None:
        app: Any = self.app
        app.jobs.changed.subscribe(self, self._changed)
        self._changed(None)

    def _changed(self, job: Job | None) -> None:
        app: Any = self.app
        text = app.jobs.summary_text()
        self.display = bool(text)
        if text:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(text, style="bold")
            line.append(" · X stops", style="dim")
            self.update(line)
