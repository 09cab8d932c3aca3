"""Helpers shared by the Pilot tests of the screens (imported as a plain module: tests/
is on sys.path through pytest's rootdir insertion, like llm_fixtures)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App


async def wait_for(pilot, condition: Callable[[], object], what: str, limit: int = 500) -> None:
    """Pause until `condition()` holds (a hang guard, not a speed assertion)."""
    for _ in range(limit):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"never happened: {what}")


def screen_lines(app: App) -> list[str]:
    """The text of every line the current screen shows, as rendered."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App) -> str:
    """The current screen's text, one string."""
    return "\n".join(screen_lines(app))
