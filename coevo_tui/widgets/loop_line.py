"""The loop line: one line on the Cases screen saying where the project stands in the loop
and the next step with its key (coevo_tui/services/workflow.py decides both), and the key
that opens the whole loop ("L the loop").

Keys are shown as the user's keymap has them: a step names its keys by binding id, and
`key_display` looks each one up in the app's keymap (falling back to the default key), so
a hint stays true for keys of screens that are not open (`r` on Label, `ctrl+d` on Prompt).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from coevo_tui.services.workflow import KeyHint, LoopState, Step


def key_display(app: App[object], hint: KeyHint) -> str:
    """The key that does `hint` after the user's keymap (its first key if several)."""
    remapped = app._keymap.get(hint.binding)  # the keymap Textual applies (set_keymap)
    if not remapped:
        return hint.default
    return app.get_key_display(Binding(remapped.split(",")[0], ""))


def how(app: App[object], keys: tuple[KeyHint, ...], *, terse: bool = False) -> str:
    """The keys of a step in words: "l opens them, then r writes one" (`terse`, for the
    line: "l, then r writes one")."""
    return ", then ".join(key_display(app, hint) if terse and hint.terse
                          else f"{key_display(app, hint)} {hint.does}" for hint in keys)


def line_text(app: App[object], state: LoopState, *, running: bool = False) -> str:
    """What the loop line says: the stage, the next step and its keys (the keys only the
    panel needs, like `n` on Label, are left out to keep it to one line). `running`: the
    newest version is being run right now, so the run step says so instead of `R`."""
    step: Step | None = state.next
    if step is None:
        return (f"Up to date under v{state.version_number}: nothing waits. "
                f"{key_display(app, KeyHint('cases.generate', 'G', ''))} finds new cases")
    if running and step.name == "run":
        stop = key_display(app, KeyHint("app.stop_job", "X", ""))
        return f"{step.stage_word}: v{state.version_number} is running — {stop} stops it"
    keys = tuple(hint for hint in step.keys if hint.in_line)
    return f"{step.stage_word}: {step.hint} — {how(app, keys, terse=True)}"


class LoopLine(Horizontal):
    """The loop line (hidden with the `-hidden` class; the Cases screen keeps the choice
    in the project's preferences)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: LoopState | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="loop-line-text")
        yield Static("", id="loop-line-key")

    def show_state(self, state: LoopState, panel_key: str, *, running: bool = False) -> None:
        """Show `state`'s next step, and `panel_key` as the key to the whole loop
        (`running`: the newest version is being run)."""
        self.state = state
        self.query_one("#loop-line-text", Static).update(
            Text(line_text(self.app, state, running=running), no_wrap=True,
                 overflow="ellipsis"))
        self.query_one("#loop-line-key", Static).update(f"{panel_key} the loop")
        self.set_class(state.next is None, "-done")
