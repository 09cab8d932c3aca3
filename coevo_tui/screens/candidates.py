"""The Candidates screen (`v`): the review queue of the assistant's proposals.

Each row is a case the assistant proposed, waiting for the user's key: `a` accepts it
(it joins the test set), `e` edits it first, `d` rejects it (kept, hidden, never proposed
again), `A` twice accepts every row shown. A row says where it came from ("generated
under v2 for rule 3" or "similar to c12"), the rule it probes and the assistant's reason;
the panel under the table shows the row under the cursor in full.

`G` asks the assistant for a batch (with a `rule:K` filter, for that rule): an app job
(`jobs.AssistJob`), so it goes on when the screen is left. The screen follows every
batch going (also `s` from the Label screen): each candidate appears as a row the moment
the assistant has written it, and the line above the footer says how far the batch is
and, at its end, how many were generated, kept and dropped, for which rules. `x` (or `X`
anywhere) stops it; what arrived stays.

`/` filters like the Cases screen (words, `#tag`, `source:similar`, `rule:2`); rejected
candidates are hidden until `r`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Header, Input, Static

from coevo_tui.domain.case_query import CaseQuery, case_line
from coevo_tui.domain.model import Case, CaseSource, CaseState, first_line
from coevo_tui.jobs import JOB_ENDED, AssistJob, Job, JobEvent, start_candidates
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.screens.dialogs.case_editor import CaseDraft, CaseEditorScreen
from coevo_tui.widgets.case_table import CaseTable, Column
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.run_line import text_bar
from coevo_tui.widgets.status_bar import assistant_line

BATCH = 10  # cases `G` asks for
WIDE = 110  # from this width the table has a Reason column (narrower: the panel has it)
QUEUE_TASKS = ("candidates", "similar")

EMPTY_QUEUE = ("The queue is empty. G asks the assistant for {n} new cases that probe the "
               "rules of the newest instructions (with rule:K in the filter, rule K); s on "
               "the Label screen asks for cases similar to the one shown. They appear here "
               "one by one as the assistant writes them.")


def _row_key(case: Case) -> int:
    return case.id


class CandidatesScreen(CoevoScreen):
    """The review queue: accept, edit then accept, reject, accept all shown, ask for more."""

    CSS_PATH = stylesheet("candidates.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept", id="candidates.accept",
                tooltip="Accept the candidate: it joins the test set"),
        Binding("e", "edit_accept", "Edit", id="candidates.edit",
                tooltip="Edit the candidate's input, then accept it"),
        Binding("d", "reject", "Reject", id="candidates.reject",
                tooltip="Reject it: kept, hidden, never proposed again"),
        Binding("A", "accept_all", "Accept all", id="candidates.accept_all",
                tooltip="Accept every candidate shown (press A twice)"),
        # Priority: the table's own `G` (last row) must not take it; a letter typed in
        # the filter still goes to the filter (check_action lets it through).
        Binding("G", "generate", "Generate", id="candidates.generate", priority=True,
                tooltip=f"Ask the assistant for {BATCH} new cases that probe the rules "
                        "(with rule:K in the filter, rule K)"),
        Binding("slash", "focus_filter", "Filter", id="candidates.filter", key_display="/",
                show=False),
        Binding("r", "toggle_rejected", "Show rejected", id="candidates.show_rejected",
                show=False, tooltip="Show or hide the rejected candidates"),
        Binding("x", "stop", "Stop batch", id="candidates.stop", show=False,
                tooltip="Stop the assistant's batch (what arrived is kept)"),
        Binding("escape", "back", "Back", id="candidates.back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cases: list[Case] = []  # candidates (and rejected ones), by id
        self.shown: list[Case] = []
        self._query = CaseQuery.parse("")
        self.show_rejected = False
        self._loaded = False
        self._versions: dict[int, int] = {}  # version id -> number
        self._rules: dict[tuple[int, int], str] = {}  # (version id, number) -> title
        self._origins: dict[int, str] = {}  # case id -> ext id, for "similar to c12"
        self._armed_all = False  # A pressed once: the next A accepts every row shown
        self._writing: set[int] = set()  # rows taken off the table, being written
        self._followed: AssistJob | None = None  # the batch the job line shows
        self._had_row = False
        self._wide = False  # the table has its Reason column

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Horizontal(id="candidates-filter-bar"):
            yield Input(placeholder="/ filter: words  #tag  source:similar  rule:2",
                        id="candidates-filter")
            yield Static("", id="candidates-shown")
        yield CaseTable(self._columns(wide=False), row_key=_row_key,
                        empty_message="loading…", id="candidates-table")
        yield Static("", id="candidates-detail")
        yield Static("", id="candidates-job")
        yield CoevoFooter()

    @property
    def table(self) -> CaseTable[Case]:
        return self.query_one("#candidates-table", CaseTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#candidates-filter", Input)

    def on_mount(self) -> None:
        self.title = self.app.title
        self.sub_title = "Candidates"
        self.table.focus()
        self._apply_width(self.app.size.width)
        self.jobs.events.subscribe(self, self._on_job_event)
        self.jobs.changed.subscribe(self, self._job_changed)
        # The batch going, or else how the last one ended (a batch asked for on Cases
        # ends while the user is elsewhere; its notification is gone by the time they look).
        going = self.jobs.running_assist(*QUEUE_TASKS)
        self._followed = going[-1] if going else self.jobs.latest_assist(*QUEUE_TASKS)
        self._show_job()
        self.load()

    def on_resize(self) -> None:
        self._apply_width(self.app.size.width)

    def _apply_width(self, width: int) -> None:
        wide = width >= WIDE
        if wide != self._wide:
            self._wide = wide
            self.table.set_columns(self._columns(wide=wide))

    # ------------------------------------------------------------------ columns
    def origin_text(self, case: Case, *, short: bool = False) -> str:
        """Where a candidate came from: "generated under v2 for rule 3", "similar to
        c12" (short: "v2 r3", "≈ c12")."""
        version = self._versions.get(case.origin_version_id or -1)
        if case.source == CaseSource.SIMILAR and case.origin_case_id is not None:
            origin = self._origins.get(case.origin_case_id, f"#{case.origin_case_id}")
            return f"≈ {origin}" if short else f"similar to {origin}"
        if case.source == CaseSource.GENERATED:
            under = f"v{version}" if version is not None else ""
            if short:
                return f"{under} r{case.rule_number}".strip() if case.rule_number else under
            text = "generated" + (f" under {under}" if under else "")
            return text + (f" for rule {case.rule_number}" if case.rule_number else "")
        return case.source.value

    def rule_text(self, case: Case) -> str:
        """The rule a candidate probes: "3 Threats need a target", or "" for none."""
        if case.rule_number is None:
            return ""
        title = self._rules.get((case.origin_version_id or -1, case.rule_number), "")
        return f"{case.rule_number} {title}".strip()

    def _columns(self, *, wide: bool) -> list[Column[Case]]:
        def state_style(case: Case) -> str | None:
            return "case-table--archived" if case.state == CaseState.REJECTED else None

        columns: list[Column[Case]] = [
            Column("id", "Id", lambda c: c.ext_id, width=6, style=state_style),
            Column("input", "Input", lambda c: first_line(c.input), min_width=16,
                   style=state_style),
            Column("origin", "From", lambda c: self.origin_text(c, short=True), width=9,
                   style=lambda c: "case-table--muted"),
            Column("rule", "Rule", self.rule_text, width=24 if wide else 20,
                   style=lambda c: "case-table--muted"),
        ]
        if wide:
            columns.append(Column("reason", "Reason", lambda c: first_line(c.reason),
                                  min_width=16, style=lambda c: "case-table--muted"))
        if self.show_rejected:
            columns.insert(1, Column(
                "state", "State", lambda c: "rejected" if c.state == CaseState.REJECTED
                else "waiting", width=8, style=state_style))
        return columns

    # ------------------------------------------------------------------ loading
    @work(group="candidates-load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Read the candidates (and rejected ones), the versions and the rules they name."""
        store = self.store
        states = [CaseState.CANDIDATE, CaseState.REJECTED]
        cases = await store.cases.all(states)
        self._versions = {v.id: v.number for v in await store.versions.all()}
        await self._learn(cases)
        known = {case.id: case for case in cases}
        # Candidates that arrived from a job while this read ran are kept.
        known.update({case.id: case for case in self.cases if case.id not in known})
        self.cases = sorted(known.values(), key=_row_key)
        self._loaded = True
        self._refilter()

    async def _learn(self, cases: Iterable[Case]) -> None:
        """Read what the rows name and is not known yet: rule titles, origin cases."""
        store = self.store
        cases = list(cases)
        for version_id in {c.origin_version_id for c in cases if c.origin_version_id}:
            if version_id not in self._versions:
                self._versions = {v.id: v.number for v in await store.versions.all()}
            if not any(key[0] == version_id for key in self._rules):
                for rule in await store.rules.for_version(version_id):
                    self._rules[(version_id, rule.number)] = rule.title
        missing = {c.origin_case_id for c in cases
                   if c.origin_case_id is not None and c.origin_case_id not in self._origins}
        if missing:
            found = await store.cases.by_ids(missing)
            self._origins.update({cid: case.ext_id for cid, case in found.items()})

    # ------------------------------------------------------------------ filtering
    @on(Input.Changed, "#candidates-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._query = CaseQuery.parse(event.value)
        self._refilter()

    @on(Input.Submitted, "#candidates-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def _visible(self, case: Case) -> bool:
        if case.id in self._writing:
            return False
        if case.state != CaseState.CANDIDATE and not (
                self.show_rejected and case.state == CaseState.REJECTED):
            return False
        # The filter's own states are ignored here: this screen shows the queue.
        query = dataclasses.replace(self._query, states=frozenset({case.state.value}))
        return query.matches(case_line(case))

    def _refilter(self, keep: int | None = None) -> None:
        """Choose the rows shown; the cursor stays on `keep` (default: its row, or its
        index when that row left)."""
        current = self.table.current_row
        self.shown = [case for case in self.cases if self._visible(case)]
        if keep is None and current is not None and any(c.id == current.id
                                                        for c in self.shown):
            keep = current.id
        self.table.empty_message = ("loading…" if not self._loaded else
                                    "no candidate matches the filter" if self.cases
                                    and self._query.text.strip() else "the queue is empty")
        self.table.set_rows(self.shown, keep_cursor_on=keep)
        self._show_counts()
        self._show_detail()

    def _show_counts(self) -> None:
        waiting = sum(1 for c in self.cases
                      if c.state == CaseState.CANDIDATE and c.id not in self._writing)
        rejected = sum(1 for c in self.cases if c.state == CaseState.REJECTED)
        problems = self._query.problems
        if problems:
            text = problems[0]
        else:
            shown = len(self.shown)
            text = f"{waiting} waiting" if shown == waiting and not self.show_rejected \
                else f"{shown} shown · {waiting} waiting"
            if rejected:
                text += (f" · {rejected} rejected" if self.show_rejected
                         else f" · {rejected} rejected hidden (r)")
        counts = self.query_one("#candidates-shown", Static)
        counts.update(text)
        counts.set_class(bool(problems), "-problem")

    def _show_detail(self) -> None:
        detail = self.query_one("#candidates-detail", Static)
        case = self.table.current_row
        if case is None:
            detail.update(Text(EMPTY_QUEUE.format(n=BATCH) if self._loaded and not self.shown
                               and not self._query.text.strip() else "", style="italic"))
            return
        text = Text()
        text.append(case.ext_id, style="bold")
        if case.state == CaseState.REJECTED:
            text.append(" (rejected)", style="italic")
        text.append(f" · {self.origin_text(case)}")
        rule = self.rule_text(case)
        if rule and case.rule_number is not None:
            text.append(f": {rule.partition(' ')[2] or rule}", style="italic")
        text.append("\nReason: ", style="bold")
        text.append(case.reason or "(none given)")
        text.append("\nInput: ", style="bold")
        text.append(case.input)
        detail.update(text)

    def on_case_table_cursor_moved(self, event: CaseTable.CursorMoved) -> None:
        self._show_detail()
        has_row = event.row is not None
        if has_row != self._had_row:
            self._had_row = has_row
            self.refresh_bindings()
        self._armed_all = False

    # ------------------------------------------------------------------ the job
    def _on_job_event(self, job_event: JobEvent) -> None:
        job = job_event.job
        if not isinstance(job, AssistJob) or job.task not in QUEUE_TASKS:
            return
        if job is not self._followed and job.running:
            self._followed = job  # a newer batch (G here, or s on Label)
        event = job_event.event
        from coevo_tui.assist.events import CandidateAdded, RulesExtracted

        if isinstance(event, CandidateAdded):
            self._add(event.case)
        elif isinstance(event, RulesExtracted):
            for rule in event.rules:
                self._rules[(event.version_id, rule.number)] = rule.title
            self.table.refresh()
        elif event is JOB_ENDED and job is self._followed and self.is_attached:
            self._show_job()
            ending = job.ending()
            if ending is not None and self.app.screen is self:
                message, severity = ending
                message = message.replace(": v opens it", "")
                self.notify(message, severity=severity,  # type: ignore[arg-type]
                            timeout=6)
            self.refresh_bindings()

    def _add(self, case: Case) -> None:
        """A candidate the assistant just stored: a row at once (its names follow)."""
        if any(c.id == case.id for c in self.cases):
            return
        self.cases.append(case)
        self.cases.sort(key=_row_key)
        was_empty = not self.shown
        self._refilter(keep=case.id if was_empty else None)
        if (case.origin_version_id is not None and case.origin_version_id not in
                self._versions) or (case.origin_case_id is not None
                                    and case.origin_case_id not in self._origins):
            self._learn_later([case])

    @work(group="candidates-learn", exit_on_error=False)
    async def _learn_later(self, cases: list[Case]) -> None:
        await self._learn(cases)
        self.table.refresh()
        self._show_detail()

    def _job_changed(self, job: Job) -> None:
        if job is self._followed:
            self._show_job()

    def _show_job(self) -> None:
        """The batch's progress (or how the last one ended), on one line."""
        line = self.query_one("#candidates-job", Static)
        job = self._followed
        summary = job.summary if job is not None else None
        text = Text(no_wrap=True, overflow="ellipsis")
        if job is None:  # nothing asked yet: who would answer
            text.append(assistant_line(self.session), style="dim")
        elif job.running:
            text.append("Assistant ", style="bold")
            total = summary.total if summary is not None and summary.total else BATCH
            text.append(text_bar(job.arrived, total, 10))
            text.append(f" {job.progress_text()}")
            if summary is not None and (summary.kept or summary.dropped):
                text.append(f" · {summary.kept} kept, {summary.dropped} dropped")
            text.append(" · x stops", style="dim")
        elif summary is not None:
            stopped = " (stopped)" if job.stopped and not summary.halted else ""
            text.append(f"Last batch{stopped}: ", style="bold")
            text.append(summary.line())
        else:
            why = "failed: the message said why" if job.failed else "stopped before it began"
            text.append(f"{job.title}: {why}", style="dim")
        line.update(text)
        line.set_class(summary is not None and bool(summary.error or summary.errors),
                       "-problem")

    def shows_job(self, job: Job) -> bool:
        """This screen says itself how a batch ended (the app stays quiet)."""
        return isinstance(job, AssistJob) and job.task in QUEUE_TASKS

    # ------------------------------------------------------------------ keys
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "generate":
            # Let a capital G typed in the filter reach it.
            return False if self.filter_input.has_focus else True
        if action in ("accept", "edit_accept", "reject"):
            case = self.table.current_row
            return True if case is not None and case.state == CaseState.CANDIDATE else None
        if action == "accept_all":
            return True if any(c.state == CaseState.CANDIDATE for c in self.shown) else None
        if action == "stop":
            return True if self._followed is not None and self._followed.running else None
        return True

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_back(self) -> None:
        if self.filter_input.has_focus:
            self.table.focus()
        elif self.filter_input.value:
            self.filter_input.value = ""
        else:
            self.app.pop_screen()

    def action_toggle_rejected(self) -> None:
        self.show_rejected = not self.show_rejected
        self.table.set_columns(self._columns(wide=self._wide))
        self._refilter()

    def action_accept(self) -> None:
        case = self._take_current()
        if case is not None:
            self.review([case], accept=True)

    def action_reject(self) -> None:
        case = self._take_current()
        if case is not None:
            self.review([case], accept=False)

    def action_accept_all(self) -> None:
        waiting = [c for c in self.shown if c.state == CaseState.CANDIDATE]
        if not waiting:
            return
        if not self._armed_all:
            self._armed_all = True
            key = self.key_for("candidates.accept_all", "A")
            self.notify(f"Press {key} again to accept all {len(waiting)} candidates shown "
                        "into the test set.", timeout=5)
            return
        self._armed_all = False
        self._writing.update(c.id for c in waiting)
        self._refilter()
        self.review(waiting, accept=True)

    def action_edit_accept(self) -> None:
        case = self.table.current_row
        if case is None or case.state != CaseState.CANDIDATE:
            return
        asked = self.ask(CaseEditorScreen(title=f"Edit {case.ext_id}, then accept it",
                                          input=case.input, tags=case.tags, note=case.note))
        self.edit_then_accept(case, asked)

    def _take_current(self) -> Case | None:
        """The candidate under the cursor, taken off the table at once (so keys typed in a
        burst act on the rows that follow), or None."""
        case = self.table.current_row
        self._armed_all = False
        if case is None or case.state != CaseState.CANDIDATE or case.id in self._writing:
            return None
        self._writing.add(case.id)
        self._refilter()
        return case

    @work(group="candidates-write", exit_on_error=False)
    async def review(self, cases: list[Case], *, accept: bool,
                     edited: dict[int, str] | None = None) -> None:
        """Accept or reject `cases` in one transaction; on a refusal they come back."""
        ids = [c.id for c in cases]
        try:
            if accept:
                done = await self.store.cases.accept(ids, edited)
            else:
                done = await self.store.cases.reject(ids)
        finally:
            self._writing.difference_update(ids)
        self._replace(done)
        names = ", ".join(c.ext_id for c in done[:3]) + (" …" if len(done) > 3 else "")
        if accept:
            self.notify(f"Accepted {names} into the test set"
                        + (f" ({len(done)} cases)" if len(done) > 3 else "")
                        + ": R runs the new cases.", timeout=4)
        else:
            hint = self.key_for("candidates.show_rejected", "r")
            self.notify(f"Rejected {names}: kept, never proposed again ({hint} shows "
                        "rejected candidates).", timeout=4)

    def _replace(self, cases: Iterable[Case]) -> None:
        by_id = {c.id: c for c in cases}
        self.cases = [by_id.get(c.id, c) for c in self.cases]
        self._refilter()
        self.refresh_bindings()

    @work(group="candidates-write", exit_on_error=False)
    async def edit_then_accept(self, case: Case, asked: Awaitable[CaseDraft | None]) -> None:
        draft = await asked
        if draft is None:
            return
        self._writing.add(case.id)
        self._refilter()
        try:
            if (draft.tags, draft.note) != (case.tags, case.note):
                await self.store.cases.edit(case.id, tags=draft.tags, note=draft.note)
            done = await self.store.cases.accept([case.id], {case.id: draft.input})
        finally:
            self._writing.discard(case.id)
        self._replace(done)
        edited = " (edited)" if draft.input != case.input else ""
        self.notify(f"Accepted {case.ext_id}{edited} into the test set: R runs it.",
                    timeout=4)

    # ------------------------------------------------------------------ asking for more
    def action_generate(self) -> None:
        rules = self._query.rules
        rule = next(iter(rules)) if rules is not None and len(rules) == 1 else None
        self.generate(rule if isinstance(rule, int) else None)

    @work(group="candidates-generate", exclusive=True, exit_on_error=False)
    async def generate(self, rule: int | None) -> None:
        """Start a batch (or show the one coming) and follow it here."""
        going = self.jobs.running_assist("candidates")
        job = await start_candidates(self.jobs, self.session, n=BATCH, rule=rule)
        self._followed = job
        self._show_job()
        self.refresh_bindings()
        if going and going[-1] is job:
            self.notify("A batch is already coming: its cases appear here as they arrive.",
                        timeout=4)
        else:
            self.notify(f"Asking the assistant for {BATCH} new cases"
                        + (f" probing rule {rule}" if rule is not None else "")
                        + ": they appear here one by one.", timeout=4)

    def action_stop(self) -> None:
        job = self._followed
        if job is not None and job.running:
            self.jobs.stop(job)
            self.notify("Stopping the batch; the cases that arrived are kept.", timeout=3)
