"""The Label screen: one case at a time, its answer streaming in, labelled with one key.

`g` good, `b` bad, `u` unsure (`b` and `u` ask for a rationale; `esc` skips it), `r` edits
the rationale, `j`/`k` next/previous case, `n` next unlabelled, `space` calls the model
again (bypassing the cache), `R` runs every active case under this version, `x` stops the
run. After a verdict the screen moves to the next case.

The cases are the ones the Cases screen showed when Label was opened (its filter and
order), or every active case. The answer shown is the newest stored one for this version
and the app's model; when there is none the pane streams one. A label belongs to that one
output; a new label appends to its history, and identical answers of the case inherit it
(carried, shown as `~ good (carried)`).

A run (`R`) is an app job: it goes on when the screen is left; `x` here (or `X`
anywhere) stops it. Answers that arrived are kept, and `R` later resumes with the
unfinished cases only.

The assistant: `s` asks for cases similar to the one shown (they go to the review queue,
`v`); `ctrl+g` in the rationale dialog suggests a rationale; `J` has the judge suggest a
verdict for every unlabelled answer of this version (also done after a run when an
assistant model is configured). The judge's suggestion shows dimmed under an unlabelled
answer; `y` accepts it as the label (source judge), `g`/`b`/`u` label it yourself.
"""

from __future__ import annotations

from collections.abc import Awaitable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Header, Static

from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import (
    Case,
    CaseState,
    Judgement,
    Label,
    OutputStatus,
    PromptVersion,
    Verdict,
)
from coevo_tui.domain.status import Answer
from coevo_tui.llm.runner import (
    CaseDelta,
    CaseFinished,
    CaseRestarted,
    CaseStarted,
    RunFinished,
    RunStarted,
    RunSummary,
)
from coevo_tui.jobs import (
    JOB_ENDED,
    AssistJob,
    Job,
    JobEvent,
    TestSetRun,
    start_judge,
    start_similar,
)
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.screens.dialogs.rationale import RationaleScreen, carried_notice
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.run_line import run_line, text_bar
from coevo_tui.widgets.status_bar import StatusBar
from coevo_tui.widgets.stream_pane import StreamPane
from coevo_tui.widgets.verdict_bar import VerdictBar

if TYPE_CHECKING:
    from coevo_tui.llm.config import ModelChoice

PROGRESS_REDRAWS_PER_SECOND = 10
ERROR_NOT_LABELLABLE = "an error cannot be labelled: space calls the model again"


class LabelScreen(CoevoScreen):
    """Label the answers of `case_ids` (default: every active case) under a version
    (default: the newest), starting at `start_case_id`; `start_run` starts `R` at once."""

    CSS_PATH = stylesheet("label.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "verdict('good')", "Good", id="label.good"),
        Binding("b", "verdict('bad')", "Bad", id="label.bad"),
        Binding("u", "verdict('unsure')", "Unsure", id="label.unsure"),
        Binding("r", "edit_rationale", "Rationale", id="label.rationale",
                tooltip="Write or edit the rationale of the current label"),
        Binding("n", "next_unlabelled", "Unlabelled", id="label.next_unlabelled",
                tooltip="Jump to the next case without a verdict"),
        # j/k are left out of the footer (80 columns do not hold every key; `?` lists them
        # and the info line says "4 of 54").
        Binding("j", "move(1)", "Next case", id="label.next", show=False),
        Binding("k", "move(-1)", "Previous case", id="label.previous", show=False),
        Binding("space", "rerun", "Re-run", id="label.rerun", key_display="␣",
                tooltip="Call the model again for this case (not from the cache)"),
        Binding("R", "run_all", "Run", id="label.run",
                tooltip="Run every active case under this version (resumes unfinished)"),
        Binding("x", "stop_run", "Stop", id="label.stop", tooltip="Stop the run (R resumes it)"),
        # The assistant's keys: in `?` and the palette (the footer is full at 80 columns);
        # the judge's line under the answer says "y accepts".
        Binding("y", "accept_judge", "Accept judge", id="label.accept_judge", show=False,
                tooltip="Label the answer with the judge's suggestion (source judge)"),
        Binding("s", "similar", "Similar cases", id="label.similar", show=False,
                tooltip="Ask the assistant for 5 cases similar to this one (to the queue, v)"),
        Binding("J", "judge", "Judge answers", id="label.judge", show=False,
                tooltip="Have the judge suggest a verdict for every unlabelled answer here"),
        Binding("escape", "back", "Back", id="label.back", show=False),
        Binding("pagedown", "scroll_output(1)", "Scroll answer down", show=False,
                id="label.page_down"),
        Binding("pageup", "scroll_output(-1)", "Scroll answer up", show=False,
                id="label.page_up"),
    ]

    def __init__(self, case_ids: list[int] | None = None, *, start_case_id: int | None = None,
                 version: int | None = None, start_run: bool = False) -> None:
        super().__init__()
        self._given_ids = case_ids
        self._start_case_id = start_case_id
        self._version_number = version
        self._start_run = start_run
        self.case_ids: list[int] = []
        self._case_set: set[int] = set()
        self.index = 0
        self.case: Case | None = None
        self.version: PromptVersion | None = None
        self._model: str | None = None  # the model whose answers are labelled here
        self._verdicts: dict[int, Label] = {}  # case id -> label of its newest answer
        self._labelled = 0  # how many of case_ids are in _verdicts
        self._writing: set[int] = set()  # cases whose label is being written
        self._ready = False
        # The run of the whole test set (R) shown here, if any: the app's, which goes on
        # when this screen is left. `_starting` covers the moment before it exists.
        self._shown_run: TestSetRun | None = None
        self._starting = False
        self._progress_dirty = False
        self._progress_timer: Timer | None = None
        self._bindings_for: tuple[object, ...] = ()
        # The (output id, label) the verdict bar shows, None when it shows a reason why
        # there is nothing to label: a label already shown is not read again.
        self._verdict_shown: tuple[int, Label | None] | None = None
        # The judge's newest suggestion per output id (None: it has none), read when an
        # unlabelled answer is shown and updated as a judge job goes.
        self._judgements: dict[int, Judgement | None] = {}

    @property
    def _going_run(self) -> TestSetRun | None:
        """The run shown here while it goes on."""
        run = self._shown_run
        return run if run is not None and run.running else None

    @property
    def running(self) -> bool:
        """Whether the run shown here is going (or about to)."""
        return self._starting or self._going_run is not None

    @property
    def run_summary(self) -> RunSummary | None:
        return self._shown_run.summary if self._shown_run is not None else None

    @property
    def _run_pending(self) -> set[int]:
        run = self._going_run
        return run.pending if run is not None else set()

    @property
    def _run_streams(self) -> dict[int, list[str]]:
        run = self._going_run
        return run.streams if run is not None else {}

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("loading…", id="label-info")
        with VerticalScroll(id="label-input", can_focus=False):
            yield Static("", id="label-input-text")
        yield StreamPane(id="label-output", title="Answer", show_label=False)
        yield VerdictBar(id="label-verdict")
        with Vertical(id="label-bars"):
            yield Static("", id="label-progress")
            yield Static("", id="label-run")
        yield StatusBar(id="label-status")
        yield CoevoFooter()

    @property
    def pane(self) -> StreamPane:
        return self.query_one("#label-output", StreamPane)

    @property
    def verdict_bar(self) -> VerdictBar:
        return self.query_one("#label-verdict", VerdictBar)

    def on_mount(self) -> None:
        self.title = "Label"
        self.sub_title = self.app.title
        self.query_one("#label-run", Static).display = False
        self._progress_timer = self.set_interval(1 / PROGRESS_REDRAWS_PER_SECOND,
                                                 self._redraw_progress)
        # The run shown here streams through the app's job events (see _on_job_event).
        self.jobs.events.subscribe(self, self._on_job_event)
        self._load()

    def _choice(self) -> ModelChoice | None:
        try:
            return self.session.model_choice()
        except UserError:
            return None

    # ------------------------------------------------------------------ loading
    @work(group="label-load", exit_on_error=False)
    async def _load(self) -> None:
        store = self.store
        self.version = (await store.versions.by_number(self._version_number)
                        if self._version_number is not None else await store.versions.latest())
        if self._given_ids is not None:
            self.case_ids = list(self._given_ids)
        else:
            self.case_ids = [c.id for c in await store.cases.all([CaseState.ACTIVE])]
        self._case_set = set(self.case_ids)
        choice = self._choice()
        self._model = choice.model if choice is not None else None
        self._verdicts = dict(await store.answers.labels_per_case(self.version.id, self._model))
        self._labelled = sum(1 for cid in self.case_ids if cid in self._verdicts)
        if self._start_case_id is not None and self._start_case_id in self._case_set:
            self.index = self.case_ids.index(self._start_case_id)
        self._ready = True
        self._progress_dirty = True
        if not self.case_ids:
            self.query_one("#label-info", Static).update(
                "No cases to label: add some on the Cases screen (a) or import a file.")
            self._show_waiting("nothing to label")
        going = self.jobs.running_run(self.version.id, self._model)
        if going is not None:
            self._start_run = False  # R again while it runs: show it, do not restart it
            self._follow_run(going)
        if self._start_run:
            self._start_run = False
            self.action_run_all()  # its worker shows the first case once the run knows it
        elif self.case_ids:
            await self._show_case(self.index)
        self._sync_bindings()

    async def _show_case(self, index: int, *, autostream: bool = True) -> None:
        """Show case number `index` of the list (its input, then its answer, streamed if
        none is stored and `autostream`). The case and its stored answer (with its label
        and how many labels it has had) come in one read, and everything visible changes
        after it without an await: one round trip and one frame per case."""
        assert self.version is not None
        self.index = index
        case_id = self.case_ids[index]
        following = self.running and case_id in self._run_pending
        answer: Answer | None = None
        labels = 0
        if following:
            case = await self.store.cases.get(case_id)
        else:
            case, [(answer, labels)] = await self.store.answers.case_on_show(
                case_id, [(self.version.id, self.pane.answer_model())])
        if self.index != index:
            return  # moved on meanwhile
        self.case = case
        self._show_info()
        self.query_one("#label-input-text", Static).update(Text(case.input))
        self.query_one("#label-input", VerticalScroll).scroll_home(animate=False)
        if self.running and case.id in self._run_pending:
            parts = self._run_streams.get(case.id)
            self.pane.follow(case, self.version, "".join(parts or ()),
                             started=parts is not None)
            self._show_waiting("waiting for the run to answer this case")
        elif following:  # the run answered it meanwhile: read its answer the usual way
            self.pane.show(case, self.version, autostream=autostream)
            self._show_waiting("loading the answer…")
        else:
            self.pane.show_answer(case, self.version, answer, autostream=autostream)
            if answer is None:
                self._show_waiting("loading the answer…")
            elif answer.output.status != OutputStatus.OK:
                self._show_waiting(ERROR_NOT_LABELLABLE)
            else:
                self._show_verdict(answer.output.id, answer.label, changes=max(labels - 1, 0))
        self._sync_bindings()

    def _show_info(self) -> None:
        case, version = self.case, self.version
        if case is None or version is None:
            return
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"Case {case.ext_id}", style="bold")
        text.append(f"  {self.index + 1} of {len(self.case_ids)}")
        if case.state != CaseState.ACTIVE:
            text.append(f"  ({case.state.value})", style="italic")
        text.append(f"  · v{version.number}")
        if version.note:
            text.append(f" ({version.note})", style="dim")
        if case.tags:
            text.append("  " + " ".join(f"#{t}" for t in case.tags))
        self.query_one("#label-info", Static).update(text, layout=False)  # one line

    # ------------------------------------------------------------------ the answer shown
    @on(StreamPane.OutputShown)
    def _output_shown(self, event: StreamPane.OutputShown) -> None:
        output = event.output
        if self.version is not None and output.version_id == self.version.id and (
                self._model is None or output.model == self._model):
            self._set_verdict(output.case_id, event.label)
        if self.case is None or output.case_id != self.case.id:
            return
        if output.status != OutputStatus.OK:
            self._show_waiting(ERROR_NOT_LABELLABLE)
        elif self._verdict_shown != (output.id, event.label):
            self._show_label(output.id, event.label)
        self._sync_bindings()

    @work(group="label-history", exclusive=True, exit_on_error=False)
    async def _show_label(self, output_id: int, label: Label | None) -> None:
        changes = 0
        if label is not None:
            changes = len(await self.store.labels.history(output_id)) - 1
        output = self.pane.output
        if output is not None and output.id == output_id:
            self._show_verdict(output_id, label, changes=changes)

    def _show_verdict(self, output_id: int, label: Label | None, *, changes: int) -> None:
        """The verdict bar shows `label` of output `output_id` (`changes`: how many
        earlier labels it had), or when unlabelled the judge's suggestion, if any."""
        self._verdict_shown = (output_id, label)
        judgement = self._judgements.get(output_id) if label is None else None
        self.verdict_bar.show_label(label, changes=changes, judgement=judgement,
                                    accept_key=self.key_for("label.accept_judge", "y"))
        if label is None and output_id not in self._judgements:
            self._load_judgement(output_id)

    @work(group="label-judgement", exclusive=True, exit_on_error=False)
    async def _load_judgement(self, output_id: int) -> None:
        """Read the judge's suggestion for an unlabelled answer on show (after the frame
        that shows the answer)."""
        found = await self.store.judgements.newest_for_outputs([output_id])
        self._judgements[output_id] = found.get(output_id)
        if found.get(output_id) is not None:
            self._reshow_judgement(output_id)

    def _reshow_judgement(self, output_id: int) -> None:
        """The judge's suggestion for `output_id` changed: show it if that unlabelled
        answer is on show."""
        output = self.pane.output
        if (output is not None and output.id == output_id and self.pane.label is None
                and self._verdict_shown is not None and self._verdict_shown[0] == output_id):
            self._show_verdict(output_id, None, changes=0)
            self._sync_bindings()

    def _show_waiting(self, reason: str) -> None:
        """The verdict bar says why there is nothing to label."""
        self._verdict_shown = None
        self.verdict_bar.show_waiting(reason)

    def _set_verdict(self, case_id: int, label: Label | None) -> None:
        """Record the label of a case's newest answer (None: unlabelled) for progress."""
        had = case_id in self._verdicts
        if label is None:
            self._verdicts.pop(case_id, None)
        else:
            self._verdicts[case_id] = label
        if case_id in self._case_set and had != (label is not None):
            self._labelled += 1 if label is not None else -1
        self._progress_dirty = True

    def _redraw_progress(self) -> None:
        """The timer's tick: labelled/total and the run panel, when something changed."""
        if not self._progress_dirty or not self._ready:
            return
        self._progress_dirty = False
        total = len(self.case_ids)
        done = self._labelled
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("Labelled ", style="bold")
        text.append(text_bar(done, total, 20))
        percent = f" {done * 100 // total}%" if total else ""
        text.append(f" {done}/{total}{percent}")
        unlabelled = total - done
        if unlabelled:
            text.append(f" · {unlabelled} to go (n jumps to the next)", style="dim")
        self.query_one("#label-progress", Static).update(text)
        run = self.query_one("#label-run", Static)
        if self.running and self.run_summary is None and self.version is not None:
            run.display = True
            run.update(Text(f"Run v{self.version.number}: starting (the first call loads "
                            "the model library)… · x stop", no_wrap=True, overflow="ellipsis"))
        elif self.run_summary is not None and self.version is not None:
            run.display = True
            run.update(run_line(self.run_summary, self.version, running=self.running))
            run.set_class(bool(self.run_summary.errors), "-errors")

    # ------------------------------------------------------------------ keys
    def _binding_state(self) -> tuple[object, ...]:
        output = self.pane.output if self.is_mounted else None
        return (self._ready, self.case is not None, bool(self.case_ids),
                output is not None and output.status == OutputStatus.OK,
                self.pane.label is not None if self.is_mounted else False, self.running,
                self.case is not None and self.case.id in self._run_pending,
                output is not None and self._judgements.get(output.id) is not None)

    def _sync_bindings(self) -> None:
        """Refresh the footer only when what `check_action` decides has changed: each
        refresh rebuilds the footer's widgets, which costs more than the rest of a move."""
        if self.is_mounted and self.pane.state == "loading":
            return  # transient (a stored answer is on its way): wait for the outcome
        state = self._binding_state()
        if state != self._bindings_for:
            self._bindings_for = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("verdict", "edit_rationale"):
            if not self._ready or self.case is None:
                return None
            output = self.pane.output
            if output is None or output.status != OutputStatus.OK:
                return None
            if action == "edit_rationale" and self.pane.label is None:
                return None
            return True
        if action == "rerun":
            if self.case is None or (self.running and self.case.id in self._run_pending):
                return None
            return True
        if action == "accept_judge":
            output = self.pane.output
            if (output is None or output.status != OutputStatus.OK or self.case is None
                    or self.pane.label is not None):
                return None
            return True if self._judgements.get(output.id) is not None else None
        if action == "similar":
            return True if self.case is not None else None
        if action == "judge":
            return True if self._ready and self.version is not None else None
        if action == "run_all":
            return not self.running
        if action == "stop_run":
            return self.running
        if action in ("move", "next_unlabelled"):
            return True if self._ready and self.case_ids else None
        return True

    def action_verdict(self, verdict: str) -> None:
        output, case = self.pane.output, self.case
        if output is None or case is None or output.status != OutputStatus.OK:
            return
        chosen = Verdict(verdict)
        if chosen == Verdict.GOOD:
            self._writing.add(case.id)
            self._write_label(case, output.id, chosen, "", advance=False)
            self._advance_from(case.id)
        else:
            self._ask_and_label(case, output.id, chosen, self.ask(
                RationaleScreen.for_verdict(chosen, case.input, self.pane.label,
                                            suggest=self._suggester(output.id, chosen))))

    @work(group="label-ask", exclusive=True, exit_on_error=False)
    async def _ask_and_label(self, case: Case, output_id: int, verdict: Verdict,
                             asked: Awaitable[str | None]) -> None:
        answer = await asked
        self._writing.add(case.id)
        self._write_label(case, output_id, verdict, answer or "", advance=True)

    @work(group="label-write", exit_on_error=False)
    async def _write_label(self, case: Case, output_id: int, verdict: Verdict,
                           rationale: str, *, advance: bool) -> None:
        """Commit a person's label (the store carries it to identical answers)."""
        try:
            label, carried = await self.store.labels.write(output_id, verdict, rationale)
        finally:
            self._writing.discard(case.id)
        self._set_verdict(case.id, label)
        pane_output = self.pane.output
        if pane_output is not None and pane_output.id == output_id:
            self.pane.set_label(label)
            self._show_label(output_id, label)
        if carried:
            self.notify(carried_notice(case.ext_id, verdict, carried), timeout=3)
        self._sync_bindings()
        if advance:
            self._advance_from(case.id)

    def _advance_from(self, case_id: int) -> None:
        """Auto-advance after a verdict, unless the user already moved elsewhere."""
        if self.case is None or self.case.id != case_id:
            return
        if self.index + 1 < len(self.case_ids):
            self._go(self.index + 1)
        else:
            self.notify("That was the last case; n finds any still unlabelled.", timeout=4)

    def action_edit_rationale(self) -> None:
        output, case, label = self.pane.output, self.case, self.pane.label
        if output is None or case is None or label is None:
            return
        self._edit_rationale(case, output.id, label, self.ask(RationaleScreen.for_label(
            label, case.input, suggest=self._suggester(output.id, label.verdict))))

    @work(group="label-ask", exclusive=True, exit_on_error=False)
    async def _edit_rationale(self, case: Case, output_id: int, label: Label,
                              asked: Awaitable[str | None]) -> None:
        answer = await asked
        if answer is None or answer == label.rationale:
            return
        self._writing.add(case.id)
        # A new label row (the old one stays in history); a carried label so edited
        # becomes the person's own.
        self._write_label(case, output_id, label.verdict, answer, advance=False)

    def _suggester(self, output_id: int, verdict: Verdict) -> Any:
        """What the rationale dialog calls for the assistant's suggestion."""
        from coevo_tui.assist import rationale

        return partial(rationale.suggest, self.session, output_id, verdict)

    # ------------------------------------------------------------------ the assistant
    def action_accept_judge(self) -> None:
        output, case = self.pane.output, self.case
        if output is None or case is None or self.pane.label is not None:
            return
        judgement = self._judgements.get(output.id)
        if judgement is None:
            return
        self._writing.add(case.id)
        self._accept_judgement(case, output.id, judgement)

    @work(group="label-write", exit_on_error=False)
    async def _accept_judgement(self, case: Case, output_id: int,
                                judgement: Judgement) -> None:
        """Label the answer with the judge's verdict (source judge), then move on."""
        try:
            label = await self.store.judgements.accept(judgement.id)
        finally:
            self._writing.discard(case.id)
        self._set_verdict(case.id, label)
        pane_output = self.pane.output
        if pane_output is not None and pane_output.id == output_id:
            self.pane.set_label(label)
            self._show_label(output_id, label)
        self._sync_bindings()
        self._advance_from(case.id)

    def action_similar(self) -> None:
        if self.case is not None:
            self._ask_similar(self.case)

    @work(group="label-similar", exit_on_error=False)
    async def _ask_similar(self, case: Case) -> None:
        going = self.jobs.running_assist("similar")
        job = await start_similar(self.jobs, self.session, case)
        queue = self.key_for("app.candidates", "v")
        if job in going:
            self.notify(f"Similar cases of {case.ext_id} are already coming ({queue} shows "
                        "them).", timeout=4)
        else:
            self.notify(f"Asking the assistant for cases similar to {case.ext_id}; they go "
                        f"to the review queue ({queue} opens it).", timeout=5)

    def action_judge(self) -> None:
        if self.version is not None:
            start_judge(self.jobs, self.session, self.version, self._model)
            accept = self.key_for("label.accept_judge", "y")
            self.notify(f"The judge looks at the unlabelled answers of v{self.version.number}"
                        f"; its suggestions show here as they come ({accept} accepts one).",
                        timeout=5)

    def action_move(self, delta: int) -> None:
        if not self.case_ids:
            return
        target = self.index + delta
        if not 0 <= target < len(self.case_ids):
            self.notify("first case" if target < 0 else "last case", timeout=2)
            return
        self._go(target)

    def action_next_unlabelled(self) -> None:
        count = len(self.case_ids)
        for step in range(1, count + 1):
            i = (self.index + step) % count
            cid = self.case_ids[i]
            if cid not in self._verdicts and cid not in self._writing:
                self._go(i)
                return
        self.notify("Every case here is labelled.", timeout=3)

    def _go(self, index: int) -> None:
        self.index = index
        self._navigate(index)

    @work(group="label-nav", exclusive=True, exit_on_error=False)
    async def _navigate(self, index: int, *, autostream: bool = True) -> None:
        await self._show_case(index, autostream=autostream)

    def action_rerun(self) -> None:
        if self.case is None:
            return
        self.pane.rerun()
        self._show_waiting("calling the model again (not from the cache)…")
        self._sync_bindings()

    def action_scroll_output(self, direction: int) -> None:
        self.pane.scroll_page(direction)

    def action_back(self) -> None:
        self.app.pop_screen()

    # ------------------------------------------------------------------ the run (R)
    def action_run_all(self) -> None:
        if not self.running:
            self._run_all()

    def action_stop_run(self) -> None:
        run = self._going_run
        if run is not None:
            self.jobs.stop(run)
        else:  # still being set up here
            self.workers.cancel_group(self, "label-run")

    def _follow_run(self, run: TestSetRun) -> None:
        """Show `run` here: its panel, and its stream on the case it is answering."""
        self._shown_run = run
        self._progress_dirty = True

    def shows_job(self, job: Job) -> bool:
        """This screen says itself how the run it shows ended (the app stays quiet)."""
        return job is self._shown_run

    def on_unmount(self) -> None:
        run = self._going_run
        if run is not None:
            done = f"{run.summary.done} of {run.summary.to_run} done" if run.summary else \
                "starting"
            self.app.notify(f"The run of v{run.version.number} goes on ({done}): R shows it "
                            "again, x there (or X anywhere) stops it.", timeout=5)

    @work(group="label-run", exclusive=True, exit_on_error=False)
    async def _run_all(self) -> None:
        """Run every active case under this version, those about to be labelled first."""
        store = self.store
        if self.version is None:
            return
        version = self.version
        try:
            choice = self.session.model_choice()
        except UserError:  # no model: show the case anyway, then report it
            if self.case is None and self.case_ids:
                await self._show_case(self.index, autostream=False)
            raise
        self._model = choice.model
        going = self.jobs.running_run(version.id, choice.model)
        if going is not None:  # started elsewhere (Compare's R): show it, never twice
            self._follow_run(going)
            if self.case_ids:
                await self._show_case(self.index)
            self._sync_bindings()
            return
        self._starting = True
        self._shown_run = None
        self._progress_dirty = True
        self._sync_bindings()
        started = False
        run: TestSetRun | None = None
        try:
            runner = self.session.runner(choice)
            cases = await store.cases.all([CaseState.ACTIVE])
            ahead = self.case_ids[self.index:] + self.case_ids[:self.index]
            order = {cid: i for i, cid in enumerate(ahead)}
            cases.sort(key=lambda c: order.get(c.id, len(order)))
            finished = await store.outputs.finished_case_ids(version.id, choice.model, runner.params)
            run = TestSetRun(version, choice.model, {c.id for c in cases} - finished)
            self._follow_run(run)
            self._starting = False
            if self.case_ids:
                await self._show_case(self.index)
            job = self.jobs.start(run, runner.run_version(version, stream=True, cases=cases))
            if job is not run:  # another screen started the same run meanwhile
                self._follow_run(job)  # type: ignore[arg-type]
            started = True
        finally:
            self._starting = False
            if not started:  # failed or stopped before the run began
                following = (run is not None and self.case is not None
                             and self.case.id in run.pending)
                if run is not None:
                    run.running = False
                self._shown_run = None
                self._run_ended(was_following=following)

    def _on_job_event(self, job_event: JobEvent) -> None:
        """An event of one of the app's jobs: only the run shown here matters (its state
        is already updated)."""
        if isinstance(job_event.job, AssistJob):
            self._on_assist_event(job_event.job, job_event.event)
            return
        if job_event.job is not self._shown_run or not self.is_attached:
            return
        event = job_event.event
        current = self.case.id if self.case is not None else None
        if event is JOB_ENDED:
            run = self._shown_run
            self._run_ended(was_following=run is not None and current in run.pending)
        elif isinstance(event, (CaseDelta, CaseStarted, CaseRestarted)):
            if event.case_id == current:
                self.pane.feed(event)
        elif isinstance(event, CaseFinished):
            # The new output is the case's newest: its label (carried, or none) counts now.
            self._set_verdict(event.case_id, event.label)
            if event.case_id == current:
                self.pane.feed(event)
                self._sync_bindings()
            self._progress_dirty = True
        elif isinstance(event, RunStarted):
            self._progress_dirty = True
            if event.run_id is None:
                total = event.summary.total
                self.notify(f"All {total} active cases already have an answer for "
                            f"v{event.version.number} with {event.model}."
                            if total else "No active cases to run.", timeout=5)
        elif isinstance(event, RunFinished):
            self._progress_dirty = True

    def _on_assist_event(self, job: AssistJob, event: object) -> None:
        """A judge's verdict on the answer on show appears at once."""
        from coevo_tui.assist.events import Judged

        if isinstance(event, Judged) and self.is_attached:
            self._judgements[event.output_id] = event.judgement
            self._reshow_judgement(event.output_id)

    def _run_ended(self, *, was_following: bool) -> None:
        """After the run finished or was stopped: the panel says so; an unanswered case
        on screen (`was_following` the run's stream) gets its own stream."""
        self._progress_dirty = True
        summary = self.run_summary
        if not self.is_attached:
            return
        if summary is not None and summary.to_run:
            if summary.halted:
                self.notify(f"Run stopped: {summary.done} of {summary.to_run} done; "
                            "R resumes the unfinished cases.", timeout=5)
            else:
                self.notify(f"Run done: {summary.line()}", timeout=6,
                            severity="warning" if summary.errors else "information")
        self._redraw_progress()
        if self.case is None and self.case_ids:  # the run failed before showing a case
            self._navigate(self.index, autostream=False)
        elif was_following and self.case is not None and self.version is not None:
            # Stream the case on screen ourselves, unless the run never started (then the
            # same failure would only repeat).
            self.pane.show(self.case, self.version, autostream=summary is not None)
        self._sync_bindings()


def run_screen(version: int | None = None, **kwargs: Any) -> LabelScreen:
    """The screen `R` opens: the Label screen over every active case with the run of the
    test set started under `version` (default the newest). Keyword arguments go to
    LabelScreen (e.g. `case_ids`, `start_case_id`)."""
    return LabelScreen(version=version, start_run=True, **kwargs)
