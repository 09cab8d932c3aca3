"""The footer every screen shows: Textual's `Footer`, compact, and on terminals narrower than
100 columns without the `^p palette` hint, so that the screen's keys fit at 80 columns
(`?` help and the palette still list everything)."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

#: Below this width the footer drops the palette hint to make room for keys.
WIDE = 100


class CoevoFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)

    async def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != self.show_command_palette:
            self.show_command_palette = wide
            await self.recompose()
