"""A pane showing one case's answer under one version and model: stored, or streaming in.

`StreamPane` is self-contained, for the Label screen and for each side of Compare:

    pane = StreamPane(choice=None, title="Output")   # None: the model under test (the session's)
    pane.show(case, version)           # the newest stored answer, else stream a fresh one
    pane.show(case, version, autostream=False)   # stored answer only; else "waiting"
    pane.show_answer(case, version, answer)   # an answer the caller read (None: none stored)
    pane.rerun()                       # a fresh call (bypasses the cache), a new output
    pane.stop()                        # cancel the stream (nothing half-done is stored)
    pane.output, pane.label, pane.is_streaming, pane.state

The pane owns its streaming worker (group "stream-pane", exclusive): showing another case
or removing the pane cancels the stream, and the runner then stores nothing for it. Tokens
are collected as they come and drawn at most `REDRAWS_PER_SECOND` times a second.

Whenever it shows an output (stored, just streamed, or from a run) it posts
`StreamPane.OutputShown(pane, output, label)`; when an output the pane itself asked for is
stored it also posts `StreamPane.OutputStored` (with the label carry-over gave it, if any). A failure before anything is stored (no API key) is
reported through the app's error path and shown in the pane.

A run elsewhere (the Label screen's run of the whole test set) can drive the pane instead:
`follow(case_id, text_so_far)` then `feed(event)` with the runner's Case* events.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from coevo_tui.domain.carryover import is_carried
from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import Case, Label, Output, OutputStatus, PromptVersion
from coevo_tui.domain.status import Answer
from coevo_tui.llm.config import ModelChoice
# The runner's event classes. The module is light (it does not import litellm: the client
# loads it on the first call); tests/test_label_screen.py checks opening Label stays so.
from coevo_tui.llm.runner import (
    CaseDelta,
    CaseEvent,
    CaseFinished,
    CaseRestarted,
    CaseStarted,
)
from coevo_tui.widgets.verdict_bar import verdict_text
from coevo_tui.widgets.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from coevo_tui.app import CoevoApp
    from coevo_tui.session import Session
    from coevo_tui.store import Store

REDRAWS_PER_SECOND = 30
CURSOR = "▌"

# What the pane is doing; also its CSS class (-streaming, -error, ...).
STATES = ("idle", "loading", "stored", "streaming", "waiting", "error", "failed", "stopped",
          "no-model")


def output_facts(output: Output) -> str:
    """Short facts about an output for a header: "cached · 1.2 s · 35 tok · $0.0001"."""
    facts: list[str] = []
    if output.cached:
        facts.append("cached")
    if output.latency_ms is not None and not output.cached:
        facts.append(f"{output.latency_ms / 1000:.1f} s")
    if output.tokens_out is not None:
        facts.append(f"{output.tokens_out} tok")
    if output.cost:
        facts.append(f"${output.cost:.4f}")
    return " · ".join(facts)


class StreamPane(ReportsWorkerErrors, Vertical):
    """One case's output under one version and model (see the module docstring)."""

    @dataclass
    class _OutputMessage(Message):
        pane: StreamPane
        output: Output
        label: Label | None

        @property
        def control(self) -> StreamPane:
            return self.pane

    class OutputStored(_OutputMessage):
        """An output this pane asked for was stored (`label`: what carry-over gave it)."""

    class OutputShown(_OutputMessage):
        """The pane now shows `output` (stored earlier, just streamed, or from a run) with
        its current `label`. Handlers should check `output.case_id`: the user may have
        moved on since."""

    def __init__(self, *, choice: ModelChoice | None = None,
                 params: dict[str, Any] | None = None, title: str = "Output",
                 show_label: bool = True, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.choice = choice
        self.params = params
        self.title = title
        self.show_label = show_label
        self.case: Case | None = None
        self.version: PromptVersion | None = None
        self.state = "idle"
        self.redraws = 0  # body repaints, for the coalescing benchmark
        self._output: Output | None = None
        self._label: Label | None = None
        self._parts: list[str] = []
        self._note = ""  # a line under the text: a retry, the error, why nothing shows
        self._model_name = ""
        self._dirty = False
        self._timer: Timer | None = None
        self._external = False  # the shown case is being answered by someone else's run

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("", classes="stream-pane--head")
        # Not focusable: the screen's keys (j, k, space...) must not be taken by a scroll
        # view; `scroll_page` scrolls it from the keyboard.
        with VerticalScroll(classes="stream-pane--scroll", can_focus=False):
            yield Static("", classes="stream-pane--body")

    def on_mount(self) -> None:
        self._timer = self.set_interval(1 / REDRAWS_PER_SECOND, self._flush, pause=True)
        self._render_all()

    @property
    def session(self) -> Session:
        return cast("CoevoApp", self.app).session

    @property
    def store(self) -> Store:
        return self.session.store

    # ------------------------------------------------------------------ public state
    @property
    def output(self) -> Output | None:
        """The output shown (None while streaming or when there is none)."""
        return self._output

    @property
    def label(self) -> Label | None:
        return self._label

    @property
    def is_streaming(self) -> bool:
        return self.state == "streaming"

    @property
    def text(self) -> str:
        """The answer text shown so far (streamed or stored)."""
        if self._output is not None:
            return self._output.text
        return "".join(self._parts)

    def set_label(self, label: Label | None) -> None:
        """Show a new label of the current output (after the user labelled it)."""
        self._label = label
        self._render_head()

    # ------------------------------------------------------------------ commands
    def show(self, case: Case, version: PromptVersion, *, autostream: bool = True) -> None:
        """Show `case` under `version`: the newest stored answer of the pane's model, else
        (if `autostream`) stream a fresh one (served from the cache when identical)."""
        self.case, self.version = case, version
        self._reset("loading")
        self._load(case, version, autostream=autostream, fresh=False)

    def answer_model(self) -> str | None:
        """The model whose stored answers `show` reads (None: the newest answer of any
        model, when no model is configured), for a screen that reads the answer itself
        (with the case, in one query) and hands it to `show_answer`."""
        choice = self._resolve_choice()
        return choice.model if choice is not None else None

    def show_answer(self, case: Case, version: PromptVersion, answer: Answer | None, *,
                    autostream: bool = True) -> None:
        """`show`, with the stored answer already read by the caller: the newest answer of
        `answer_model()` under `version`, None when there is none. A stored answer is
        drawn at once: no round trip to the store, no "loading" in between."""
        if answer is None:
            self.case, self.version = case, version
            self._reset("loading")
            self._load(case, version, autostream=autostream, fresh=False, read=False)
            return
        self.workers.cancel_group(self, "stream-pane")
        self.case, self.version = case, version
        self._note = ""
        self._dirty = False
        self._show_output(answer.output, answer.label)

    def rerun(self) -> None:
        """Call the model again for the current case, bypassing the cache: a new output."""
        if self.case is None or self.version is None:
            return
        self._reset("loading")
        self._load(self.case, self.version, autostream=True, fresh=True)

    def stop(self) -> None:
        """Stop a stream in flight; the runner stores nothing for it."""
        self.workers.cancel_group(self, "stream-pane")
        if self.state in ("streaming", "loading"):
            self._set_state("stopped")
            self._note = "stopped; nothing was stored"
            self._stop_timer()
            self._render_all()

    # ------------------------------------------------------------------ driven by a run
    def follow(self, case: Case, version: PromptVersion, text: str = "", *,
               started: bool = False) -> None:
        """Show `case`, which a run elsewhere is answering: `text` is what it streamed so
        far; its next events come through `feed`. Cancels this pane's own stream."""
        self.workers.cancel_group(self, "stream-pane")
        self.case, self.version = case, version
        self._reset("streaming" if started or text else "waiting")
        self._external = True
        self._note = "" if started or text else "waiting for the run to reach this case…"
        self._parts = [text] if text else []
        choice = self._resolve_choice()
        self._model_name = choice.model if choice is not None else ""
        if self.state == "streaming":
            self._start_timer()
        self._render_all()

    def feed(self, event: CaseEvent) -> None:
        """An event of the run answering the shown case (others are ignored)."""
        if not self._external or self.case is None or event.case_id != self.case.id:
            return
        self._apply(event)

    # ------------------------------------------------------------------ the worker
    def _resolve_choice(self) -> ModelChoice | None:
        if self.choice is not None:
            return self.choice
        try:
            return self.session.model_choice()
        except UserError as exc:
            self._note = str(exc)
            return None

    async def _stored(self, case: Case, version: PromptVersion,
                      choice: ModelChoice | None) -> Output | None:
        by_model = await self.store.outputs.newest_per_model(case.id, version.id)
        if choice is not None:
            return by_model.get(choice.model)
        # No model configured: still show what was answered before, newest first.
        return max(by_model.values(), key=lambda o: o.id, default=None)

    @work(group="stream-pane", exclusive=True, exit_on_error=False)
    async def _load(self, case: Case, version: PromptVersion, *, autostream: bool,
                    fresh: bool, read: bool = True) -> None:
        choice = self._resolve_choice()
        self._model_name = choice.model if choice is not None else ""
        if not fresh and read:  # `read` False: the caller knows nothing is stored
            stored = await self._stored(case, version, choice)
            if stored is not None:
                label = await self.store.labels.current(stored.id)
                self._show_output(stored, label)
                return
        if choice is None:
            self._set_state("no-model")
            self._render_all()
            return
        if not autostream:
            self._set_state("waiting")
            self._note = "no answer yet for this version and model"
            self._render_all()
            return
        await self._stream(case, version, choice, use_cache=not fresh)

    async def _stream(self, case: Case, version: PromptVersion, choice: ModelChoice, *,
                      use_cache: bool) -> None:
        app = cast("CoevoApp", self.app)
        self._set_state("streaming")
        self._note = "" if use_cache else "fresh call (cache bypassed)"
        self._render_all()
        self._start_timer()
        try:
            runner = self.session.runner(choice, self.params)
            events = runner.run_case(case, version, use_cache=use_cache)
            async with contextlib.aclosing(events):
                async for event in events:
                    self._apply(event, own=True)
        except UserError as exc:  # e.g. the API key is missing: nothing was stored
            self._set_state("failed")
            self._note = str(exc)
            self._stop_timer()
            self._render_all()
            app.report_error(exc)
        finally:
            if self.state == "streaming":  # cancelled (another case shown, pane removed)
                self._stop_timer()

    def _apply(self, event: CaseEvent, *, own: bool = False) -> None:
        if isinstance(event, CaseDelta):
            if self.state != "streaming":
                self._set_state("streaming")
                self._note = ""
                self._render_head()
                self._start_timer()
            self._parts.append(event.text)
            self._dirty = True
        elif isinstance(event, CaseStarted):
            if self.state != "streaming":
                self._set_state("streaming")
                self._note = ""
                self._start_timer()
                self._render_all()
        elif isinstance(event, CaseRestarted):
            self._parts = []
            self._note = f"retrying: {event.reason}"
            self._dirty = True
            self._render_head()
        elif isinstance(event, CaseFinished):
            self._show_output(event.output, event.label)
            if own:
                self.post_message(self.OutputStored(self, event.output, event.label))

    # ------------------------------------------------------------------ drawing
    def _reset(self, state: str) -> None:
        self._output = None
        self._label = None
        self._parts = []
        self._note = ""
        self._external = False
        self._dirty = False
        self._stop_timer()
        self._set_state(state)
        self._render_all()

    def _set_state(self, state: str) -> None:
        # Only the two classes that change: each class change restyles the pane's subtree.
        if state != self.state or not self.has_class(f"-{state}"):
            self.remove_class(f"-{self.state}")
            self.add_class(f"-{state}")
        self.state = state

    def _start_timer(self) -> None:
        if self._timer is not None:
            self._timer.resume()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.pause()
        self._dirty = False

    def _show_output(self, output: Output, label: Label | None) -> None:
        self._stop_timer()
        self._output = output
        self._label = label
        self._parts = []
        self._external = False
        self._model_name = output.model
        if output.status == OutputStatus.OK:
            self._note = ""
            self._set_state("stored")
        else:
            self._note = f"{output.status.value}: {output.error or 'no message'}"
            self._set_state("error")
        self._render_all()
        self.post_message(self.OutputShown(self, output, label))

    def scroll_page(self, direction: int) -> None:
        """Scroll the answer a page down (1) or up (-1), for keyboard users."""
        scroll = self.query_one(VerticalScroll)
        if direction > 0:
            scroll.scroll_page_down(animate=False)
        else:
            scroll.scroll_page_up(animate=False)

    def _flush(self) -> None:
        """The timer's tick: redraw only if text arrived since the last one."""
        if self._dirty:
            self._dirty = False
            self._render_body()

    def _render_all(self) -> None:
        if not self.is_mounted:
            return
        self._render_head()
        self._render_body()

    def _render_head(self) -> None:
        if not self.is_mounted:
            return
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(self.title, style="bold")
        if self.version is not None:
            head.append(f" · v{self.version.number}")
        if self._model_name:
            head.append(f" · {self._model_name}")
        output = self._output
        if output is not None:
            facts = output_facts(output)
            if facts:
                head.append(f" · {facts}")
        status = {"streaming": "streaming…", "loading": "loading…", "waiting": "waiting",
                  "stopped": "stopped", "failed": "not run", "no-model": "no model",
                  "error": "ERROR"}.get(self.state)
        if status:
            head.append(f" · {status}", style="bold" if self.state == "error" else "")
        if self.show_label and output is not None and output.status == OutputStatus.OK:
            head.append(" · ")
            head.append(verdict_text(self._label),
                        style="italic" if is_carried(self._label) else "bold")
        # One line of fixed height: redrawing it needs no layout pass.
        self.query_one(".stream-pane--head", Static).update(head, layout=False)

    def _render_body(self) -> None:
        if not self.is_mounted:
            return
        body = Text()
        state = self.state
        if self._output is not None and state == "stored":
            body.append(self._output.text if self._output.text else "(an empty answer)")
        elif state == "error":
            body.append(self._note, style="bold")
            body.append("\nspace calls the model again", style="dim")
        elif state == "streaming":
            body.append("".join(self._parts))
            body.append(CURSOR, style="blink")
            if self._note:
                body.append(f"\n({self._note})", style="dim")
        elif state == "waiting":
            body.append(self._note or "no answer yet", style="dim italic")
        elif state == "loading":
            body.append("loading…", style="dim")
        elif state in ("failed", "stopped"):
            body.append("".join(self._parts))
            body.append(f"\n({self._note})", style="dim italic")
        elif state == "no-model":
            body.append("No answer stored for this case and version, and no model to ask: "
                        + (self._note or "configure a model"), style="italic")
        self.redraws += 1
        self.query_one(".stream-pane--body", Static).update(body)
        if state == "streaming":
            self.query_one(VerticalScroll).scroll_end(animate=False, immediate=True)
