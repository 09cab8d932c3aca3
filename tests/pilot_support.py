"""Helpers shared by the Pilot tests of the screens (imported as a plain module: tests/
is on sys.path through pytest's rootdir insertion, like llm_fixtures).

The app itself comes from conftest's `make_test_app` fixture. These helpers reach it the
way every test file does: `settle` (wait for the workers), `open_screen` (open a screen by
name and wait until it has loaded), `wait_for_screen` (a screen or dialog a key opened),
`wait_for` (any other condition), and `notifications` (what the app told the user)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar
from weakref import WeakKeyDictionary

from textual.app import App
from textual.notifications import Notification
from textual.screen import Screen

ScreenT = TypeVar("ScreenT", bound=Screen)


async def wait_for(pilot, condition: Callable[[], object], what: str, limit: int = 3000) -> None:
    """Pause until `condition()` holds (a hang guard, not a speed assertion: the default
    allows a minute, as a loaded shared machine needs; a hang still fails)."""
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


async def settle(app: App, pilot, limit: int = 500, *, leave: Iterable[str] = ()) -> None:
    """Wait until the app is idle: every worker of the app and its screens has finished
    (streams, reads, writes) and the messages they posted were handled. A hang guard, not
    a speed assertion. Use `wait_for` for a held stream that only ends later.

    `leave` names worker groups not to wait for: a write that waits for the dialog the
    test expects to be open (the Cases screen's "cases-write") would never finish."""
    left = frozenset(leave)

    def waited() -> list:
        return [w for w in app.workers if w.group not in left and not w.is_finished]

    for _ in range(limit):
        await pilot.pause()
        workers = waited()
        if workers:  # an empty list would mean every worker to Textual
            await app.workers.wait_for_complete(workers)
        await pilot.pause()
        if not waited():
            return
    raise AssertionError("the app never settled: " + ", ".join(
        f"{w.group}/{w.name}" for w in waited()))


async def wait_for_screen(app: App, pilot, screen_type: type[ScreenT],
                          limit: int = 3000) -> ScreenT:
    """Wait until the app shows a mounted screen of `screen_type` (one a key opened, a
    dialog) and return it. Its workers may still run: `settle` waits for them."""
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type) and app.screen.is_mounted,
                   f"the {screen_type.__name__} shown", limit)
    screen = app.screen
    assert isinstance(screen, screen_type)
    return screen


async def open_screen(app: App, pilot, name: str, *, idle: bool = True, **kwargs) -> object:
    """Open the top-level screen `name` as its key does (`app.open_screen`, see
    screens/registry.py) once the app has settled, wait until it is mounted and, unless
    `idle` is False, until it has finished loading (`settle`), and return it. Keyword
    arguments go to the screen's factory.

    `idle=False` is for a screen whose work does not end by itself (a held or slow stream,
    a held sort): the test then waits for what it needs with `wait_for`."""
    await settle(app, pilot)
    await app.open_screen(name, **kwargs)  # type: ignore[attr-defined]
    screen = app.screen
    await wait_for(pilot, lambda: screen.is_mounted, f"the {name} screen mounted")
    if idle:
        await settle(app, pilot)
    return screen


# ---------------------------------------------------------------------- notifications
# Textual forgets a notification once its toast times out (2 to 8 seconds here), which a
# loaded machine can reach before a test looks: the app built by `make_test_app` keeps
# every one it raised.
_raised: WeakKeyDictionary[App, list[Notification]] = WeakKeyDictionary()


def record_notifications(app: App) -> None:
    """Keep every notification `app` raises from now on, for `notifications` and
    `raised_notifications` (`make_test_app` does this for every app it builds)."""
    raised: list[Notification] = []
    notify = app.notify

    def recording(message: str, **kwargs) -> None:
        raised.append(Notification(message, kwargs.get("title", ""),
                                   kwargs.get("severity", "information")))
        notify(message, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    _raised[app] = raised


def raised_notifications(app: App) -> list[Notification]:
    """Every notification the app raised (message, title, severity), oldest first,
    whether or not its toast is still shown."""
    raised = _raised.get(app)
    if raised is None:
        raise AssertionError("notifications are recorded for apps made by make_test_app")
    return list(raised)


def notifications(app: App, severity: str | None = None) -> list[str]:
    """The messages of every notification the app raised, oldest first; only those of
    `severity` ("information", "warning", "error") when it is given."""
    return [n.message for n in raised_notifications(app)
            if severity is None or n.severity == severity]
