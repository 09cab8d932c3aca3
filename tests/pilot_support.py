"""Helpers shared by the Pilot tests of the screens (imported as a plain module: tests/
is on sys.path through pytest's rootdir insertion, like llm_fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def burst(app: App, keys: Iterable[str]) -> None:
    """Send `keys` the way a fast typist or an SSH connection delivers them: all queued at
    once, with no pause for the app between them (`pilot.press` waits after each key)."""
    import unicodedata

    from textual import events
    from textual.app import REPLACED_KEYS
    from textual.keys import _character_to_key, _get_unicode_name_from_key

    driver = app._driver
    assert driver is not None
    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        try:
            char: str | None = unicodedata.lookup(
                _get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)


async def settle(app: App, pilot, limit: int = 500) -> None:
    """Wait until the app is idle: every worker of the app and its screens has finished
    (streams, reads, writes) and the messages they posted were handled. A hang guard, not
    a speed assertion. Use `wait_for` for a held stream that only ends later."""
    for _ in range(limit):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return
    raise AssertionError("the app never settled: " + ", ".join(
        f"{w.group}/{w.name}" for w in app.workers if w.is_running))


async def open_screen(app: App, pilot, name: str, **kwargs) -> object:
    """Open the top-level screen `name` as its key does (`app.open_screen`, see
    screens/registry.py), wait until it is mounted and has finished loading, and return
    it. Keyword arguments go to the screen's factory."""
    await settle(app, pilot)
    await app.open_screen(name, **kwargs)  # type: ignore[attr-defined]
    screen = app.screen
    await wait_for(pilot, lambda: screen.is_mounted, f"the {name} screen mounted")
    await settle(app, pilot)
    return screen
