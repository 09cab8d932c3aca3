"""The Cases screen: the test set as a virtual table, filterable, editable, at any size.

Rows are light tuples (`CaseLine`) held in one list sorted by case id. The first page is
loaded at once so the table shows rows on the first frames; the rest follows in the same
worker (aiosqlite fetches in its thread). Filtering runs in an exclusive worker over chunks
of rows, yielding to the event loop between chunks, so typing stays responsive at 100,000
cases; for large sets keystrokes are debounced. A write changes one row in place (found by
bisecting on the id) instead of reloading the table.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Awaitable
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Header, Input, Static

from coevo_tui.domain.case_query import (
    LINE_EXT_ID,
    LINE_ID,
    LINE_INPUT,
    LINE_SOURCE,
    LINE_STATE,
    LINE_TAGS,
    VERDICT_CHOICES,
    CaseLine,
    CaseQuery,
    case_line,
    line_tags,
    split_status_filter,
    split_verdict_filter,
)
from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import Case, CaseState, Label, first_line
from coevo_tui.domain.status import ComparisonStatus, compare_all
from coevo_tui.jobs import AssistJob, Job, TestSetRun, start_candidates
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.screens.dialogs.case_editor import CaseDraft, CaseEditorScreen
from coevo_tui.screens.dialogs.loop_panel import LoopPanel
from coevo_tui.services.workflow import LOOP_LINE_PREFERENCE, LoopState, loop_state
from coevo_tui.store import NewCase
from coevo_tui.widgets.case_table import CaseTable, Column
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.loop_line import LoopLine
from coevo_tui.widgets.status_badge import label_mark
from coevo_tui.widgets.verdict_bar import verdict_cell

FIRST_PAGE = 500  # rows fetched before anything else, for the first paint
FILTER_CHUNK = 20_000  # rows filtered between two yields to the event loop
DEBOUNCE_ABOVE = 20_000  # rows beyond which typing in the filter is debounced
DEBOUNCE_S = 0.12


def _line_key(line: CaseLine) -> int:
    return line[LINE_ID]


#: The orders `s` cycles through, and what each means.
SORTS = ("added", "newest", "input", "verdict", "tag")
SORT_HELP = {
    "added": "the order the cases were added",
    "newest": "the newest cases first",
    "input": "the input, A to Z",
    "verdict": "bad first, then unsure, unlabelled, good",
    "tag": "the tags, A to Z; untagged last",
}
VERDICT_RANK = {"bad": 0, "unsure": 1, None: 2, "good": 3}


def _verdict_of(verdicts: dict[int, Label], line: CaseLine) -> str | None:
    label = verdicts.get(line[LINE_ID])
    return None if label is None else label.verdict.value


def _state_style(line: CaseLine) -> str | None:
    state = line[LINE_STATE]
    if state == CaseState.ARCHIVED.value:
        return "case-table--archived"
    if state == CaseState.CANDIDATE.value:
        return "case-table--candidate"
    return None


def case_columns(verdicts: dict[int, Label] | None = None,
                 version_marks: list[tuple[str, dict[int, Label]]] | None = None,
                 ) -> list[Column[CaseLine]]:
    """The Cases table's columns. Later features append verdict or status columns here.

    With `verdicts` (case id -> label of its newest answer under the newest version, kept
    up to date in place by the screen) a Verdict column shows them: `bad`, `~good` for a
    carried label, `j:good` for a confirmed judge verdict, blank when unlabelled."""
    columns = [
        Column("id", "Id", lambda r: r[LINE_EXT_ID], width=7),
        Column("input", "Input", lambda r: first_line(r[LINE_INPUT]), min_width=16),
        Column("tags", "Tags", lambda r: " ".join(f"#{t}" for t in line_tags(r)), width=14),
        Column("source", "Source", lambda r: r[LINE_SOURCE], width=9,
               style=lambda r: "case-table--muted"),
        Column("state", "State", lambda r: r[LINE_STATE], width=9, style=_state_style),
    ]
    if verdicts is not None:
        def verdict_style(row: CaseLine) -> str | None:
            label = verdicts.get(row[LINE_ID])
            return None if label is None else f"case-table--{label.verdict.value}"

        columns.insert(2, Column("verdict", "Verdict",
                                 lambda r: verdict_cell(verdicts.get(r[LINE_ID])), width=8,
                                 style=verdict_style))
    for name, labels in reversed(version_marks or []):
        columns.insert(2, version_column(name, labels))
    return columns


def version_column(name: str, labels: dict[int, Label]) -> Column[CaseLine]:
    """One version's verdicts as single characters (G B U; g b u when carried; · none),
    headed by the version's name ("v3"); see status_badge.label_mark."""
    def style(row: CaseLine) -> str | None:
        label = labels.get(row[LINE_ID])
        return None if label is None else f"case-table--{label.verdict.value}"

    return Column(f"verdict-{name}", name, lambda r: label_mark(labels.get(r[LINE_ID])),
                  width=max(2, len(name)), style=style)


class CasesScreen(CoevoScreen):
    """The test set. `/` filter, `a` add, `e` edit, `x` archive/restore, `enter` open."""

    CSS_PATH = stylesheet("cases.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_filter", "Filter", id="cases.filter", key_display="/"),
        Binding("a", "add_case", "Add", id="cases.add"),
        Binding("e", "edit_case", "Edit", id="cases.edit"),
        Binding("x", "toggle_archive", "Archive", id="cases.archive", show=False,
                tooltip="Archive the case, or restore an archived one"),
        Binding("enter", "label_case", "Label", id="cases.open",
                tooltip="Label the answers, from this case on (the cases shown, in order)"),
        Binding("l", "label_case", "Label", id="cases.label", show=False),
        Binding("i", "open_case", "Details", id="cases.details", show=False,
                tooltip="Every field and every output of the case"),
        Binding("V", "cycle_verdict", "Verdict filter", id="cases.verdict_filter",
                show=False, tooltip="Show good, bad, unsure, unlabelled cases, then all"),
        Binding("A", "toggle_archived", "Show archived", id="cases.show_archived", show=False,
                tooltip="Show or hide archived and candidate cases (state:all)"),
        Binding("s", "cycle_sort", "Sort", id="cases.sort", show=False,
                tooltip="Order the rows by: added, newest, input, verdict (bad first), tag"),
        Binding("escape", "leave_filter", "Back to table", show=False, id="cases.leave_filter"),
        # Priority: the table's own `G` (last row; `end` still does that) must not take it;
        # in the filter a capital G is typed (check_action lets it through).
        Binding("G", "generate", "Generate cases", id="cases.generate", show=False,
                priority=True, tooltip="Ask the assistant for 10 new cases that probe the "
                "rules (with rule:K in the filter, rule K); they go to the queue (v)"),
        # Not in the footer (80 columns are full): the loop line itself says "L the loop".
        Binding("L", "loop_panel", "The loop", id="cases.loop", show=False,
                tooltip="Where the project stands in the loop: every step, done or not, "
                "with its key"),
        Binding("ctrl+l", "toggle_loop_line", "Hide or show the loop line",
                id="cases.loop_line", show=False,
                tooltip="The line above the keys naming the loop's next step (kept in the "
                "project)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[CaseLine] = []
        self._lowered: list[str] = []  # lower-cased inputs; a prefix of _lines when partial
        self._shown: list[CaseLine] = []
        self._query = CaseQuery.parse("")
        self._counts: dict[str, int] = {s.value: 0 for s in CaseState}
        self._loading = True
        self._written_while_loading: dict[int, CaseLine] = {}
        self._debounce: Timer | None = None
        self._had_row = False  # whether the footer was last refreshed with a row selected
        # The label of each case's newest answer under the newest version (and the app's
        # model), read in bulk; the Verdict column and `verdict:` filter read it.
        self._verdicts: dict[int, Label] = {}
        self._verdict_filter: frozenset[str] | None = None
        self._verdict_problem: str | None = None
        self._passing_through = False
        # `_shown` stays in id order (rows written in place find theirs by bisection);
        # the table shows it in the order `s` picked.
        self._sort = SORTS[0]
        # The guided loop: whether its line is shown (None until the project's preference
        # is read) and the newest facts it showed.
        self._loop_line_shown: bool | None = None
        self._loop_state: LoopState | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="cases-filter-bar"):
            yield Input(placeholder="/ filter: words  #tag  verdict:bad  rule:2  state:all",
                        id="cases-filter")
            yield Static("", id="cases-shown")
        yield CaseTable(case_columns(self._verdicts), row_key=_line_key, empty_message="loading…",
                        id="cases-table")
        yield LoopLine(id="cases-loop")
        yield CoevoFooter()

    @property
    def table(self) -> CaseTable[CaseLine]:
        return self.query_one("#cases-table", CaseTable)

    @property
    def loop_line(self) -> LoopLine:
        return self.query_one("#cases-loop", LoopLine)

    @property
    def filter_input(self) -> Input:
        return self.query_one("#cases-filter", Input)

    def on_mount(self) -> None:
        self.title = self.app.title
        self._show_counts()
        self.table.focus()
        self.load_cases()
        # The app's long jobs: their progress beside the counts (coalesced by the app).
        self.jobs.changed.subscribe(self, self._job_changed)

    def _job_changed(self, job: Job) -> None:
        """A job moved on: its progress beside the counts; when a run ends, the verdict
        column catches up with the labels its answers carried over."""
        if self.app.screen is not self:
            return  # shown again on resume (on_screen_resume reads the verdicts anyway)
        self._show_counts()
        if not job.running or (isinstance(job, TestSetRun) and job.summary is None):
            self.refresh_loop()  # a run started, or answers, candidates or verdicts landed
        if not job.running and isinstance(job, TestSetRun):
            self.refresh_verdicts()
        elif isinstance(job, AssistJob) and job.task in ("candidates", "similar"):
            self.run_worker(self._refresh_counts(), group="cases-counts", exclusive=True,
                            exit_on_error=False)

    # ------------------------------------------------------------------ loading
    @work(group="cases-load", exclusive=True, exit_on_error=False)
    async def load_cases(self) -> None:
        """First page at once (first paint with rows), then the rest, then filter."""
        self._counts = await self.store.cases.counts_by_state()
        self._show_counts()
        first = await self.store.cases.lines(limit=FIRST_PAGE)
        self._lines = list(first)
        self._lowered = []
        self._apply_written()
        self._start_filter()
        # Verdicts after the first rows are up: reading them takes ~0.4 s at 100,000
        # labelled cases, and the column fills in when they arrive.
        await self._load_verdicts()
        self.table.refresh()
        if len(first) == FIRST_PAGE:
            rest = await self.store.cases.lines(after_id=first[-1][LINE_ID])
            # Rows added by this screen while loading have ids beyond the first page; the
            # fresh query has them too, and the written copies below are at least as new.
            self._lines = [line for line in self._lines if line[LINE_ID] <= first[-1][LINE_ID]]
            self._lines.extend(rest)
            self._lowered = []
            self._apply_written()
        self._loading = False
        self._start_filter()
        self.load_version_marks()
        # The loop line last: its counts are aggregates (well under a second at 100,000
        # cases) and nothing above should wait for them.
        self.refresh_loop()
        # Lower-case the inputs now, while the user reads, so the first text filter is as
        # quick as the next ones (about 60 ms of CPU for 100,000 cases, in small steps).
        await self._build_lowered()

    async def _build_lowered(self) -> None:
        lines, lowered = self._lines, self._lowered
        while len(lowered) < len(lines):
            start = len(lowered)
            lowered.extend(line[LINE_INPUT].lower() for line in lines[start:start + 5000])
            await asyncio.sleep(0)
            if lines is not self._lines or lowered is not self._lowered:
                return  # reloaded meanwhile

    def _apply_written(self) -> None:
        for line in self._written_while_loading.values():
            self._put_line(line)

    # ------------------------------------------------------------------ filtering
    def _cursor_key(self) -> int | None:
        row = self.table.current_row
        return None if row is None else row[LINE_ID]

    @on(Input.Changed, "#cases-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if len(self._lines) > DEBOUNCE_ABOVE:
            self._debounce = self.set_timer(DEBOUNCE_S, self._filter_now)
        else:
            self._filter_now()

    def _filter_now(self) -> None:
        self._debounce = None
        rest, self._verdict_filter, self._verdict_problem = split_verdict_filter(
            self.filter_input.value)
        rest, self._status_filter, self._status_problem = split_status_filter(rest)
        self._query = CaseQuery.parse(rest)
        self._start_filter()

    @on(Input.Submitted, "#cases-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:  # apply a pending keystroke at once
            self._debounce.stop()
            self._filter_now()
        self.table.focus()

    def _start_filter(self, keep_key: int | None = None) -> None:
        self.run_filter(self._query, keep_key)

    @work(group="cases-filter", exclusive=True, exit_on_error=False)
    async def run_filter(self, query: CaseQuery, keep_key: int | None = None) -> None:
        """Select the rows matching `query`, a chunk at a time; a newer filter cancels this.

        The cursor stays on `keep_key`'s case if given, else on the case under the cursor
        when the result arrives (the user may have moved while the filter ran)."""
        lines = self._lines
        if query.needs_lowered_text:
            await self._build_lowered()
            if lines is not self._lines:  # reloaded meanwhile: a newer filter run follows
                return
        lowered = self._lowered
        if self._status_filter is not None:
            await self._load_statuses()
        big = len(lines) > FILTER_CHUNK
        shown: list[CaseLine] = []
        for start in range(0, len(lines), FILTER_CHUNK):
            picked = query.select(lines, lowered, start, start + FILTER_CHUNK)
            if self._verdict_filter is not None:
                picked = [line for line in picked if self._verdict_shown(line)]
            if self._status_filter is not None:
                picked = [line for line in picked if self._status_shown(line)]
            shown.extend(picked)
            if big:
                await asyncio.sleep(0)
        if lines is not self._lines:
            return
        self._shown = shown
        self.table.empty_message = self._empty_message()
        self.table.set_rows(self._ordered(shown), keep_cursor_on=keep_key if keep_key
                            is not None else self._cursor_key())
        self._show_counts()

    def _empty_message(self) -> str:
        """What an empty table says: still loading, no cases at all, or none match."""
        if self._loading:
            return "loading…"
        if not self._lines:
            return f"no cases yet: press {self.key_for('cases.add', 'a')} to add one"
        return ("no case matches the filter"
                f" ({self.key_for('cases.leave_filter', 'esc')} on the table clears it)")

    def _show_counts(self) -> None:
        """Counts by state in the header; how many the filter shows beside the filter."""
        counts = self._counts
        self.sub_title = (f"{counts.get('active', 0):,} active · "
                          f"{counts.get('candidate', 0):,} candidates · "
                          f"{counts.get('archived', 0):,} archived")
        problems = list(self._query.problems)
        if self._verdict_problem:
            problems.insert(0, self._verdict_problem)
        if self._status_problem:
            problems.insert(0, self._status_problem)
        if problems:
            shown = problems[0]
        elif self._loading:
            shown = f"{len(self._shown):,} shown, loading…"
        else:
            shown = f"{len(self._shown):,} shown"
        if not problems and self._sort != SORTS[0]:
            shown += f" · by {self._sort}"
        jobs = self.jobs.summary_text()
        if not problems and jobs:
            shown += f" · {jobs}"
        status = self.query_one("#cases-shown", Static)
        status.update(shown)
        status.set_class(bool(problems), "-problem")

    # ------------------------------------------------------------------ one row changed
    def _put_line(self, line: CaseLine) -> None:
        """Insert or replace `line` in the loaded rows (kept sorted by id)."""
        lines = self._lines
        key = line[LINE_ID]
        i = bisect_left(lines, key, key=_line_key)
        if i < len(lines) and lines[i][LINE_ID] == key:
            lines[i] = line
            if i < len(self._lowered):
                self._lowered[i] = line[LINE_INPUT].lower()
        else:
            lines.insert(i, line)
            if i < len(self._lowered):
                self._lowered.insert(i, line[LINE_INPUT].lower())
            elif i == len(self._lowered) == len(lines) - 1:
                self._lowered.append(line[LINE_INPUT].lower())

    def _show_line(self, case: Case, *, move_cursor: bool = False) -> bool:
        """Reflect a written case in the table without reloading. True if it is shown."""
        line = case_line(case)
        if self._loading:
            self._written_while_loading[line[LINE_ID]] = line
        self._put_line(line)
        shown = self._shown
        key = line[LINE_ID]
        i = bisect_left(shown, key, key=_line_key)
        present = i < len(shown) and shown[i][LINE_ID] == key
        visible = (self._query.matches(line) and self._verdict_shown(line)
                   and self._status_shown(line))
        if present and visible:
            shown[i] = line
        elif present:
            del shown[i]
        elif visible:
            shown.insert(i, line)
        cursor_key = key if (visible and move_cursor) else self._cursor_key()
        self.table.set_rows(self._ordered(shown), keep_cursor_on=cursor_key)
        if any(w.group == "cases-filter" and w.is_running for w in self.workers):
            # A filter in flight saw the old row: run it again.
            self._start_filter(keep_key=key if (visible and move_cursor) else None)
        return visible

    async def _refresh_counts(self) -> None:
        self._counts = await self.store.cases.counts_by_state()
        self._show_counts()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("edit_case", "toggle_archive", "open_case", "label_case"):
            return None if self.table.current_row is None else True
        if action == "generate":
            return False if self.filter_input.has_focus else True
        return True

    def on_case_table_cursor_moved(self, event: CaseTable.CursorMoved) -> None:
        # Only whether a row is selected changes what check_action allows; refreshing the
        # footer on every move would rebuild it each key press (~0.1 s).
        has_row = event.row is not None
        if has_row != self._had_row:
            self._had_row = has_row
            self.refresh_bindings()

    def action_focus_filter(self) -> None:
        self.filter_input.focus()

    def action_leave_filter(self) -> None:
        if self.filter_input.has_focus:
            self.table.focus()
        elif self.filter_input.value:
            self.filter_input.value = ""  # esc on the table clears the filter

    def action_toggle_archived(self) -> None:
        words = self.filter_input.value.split()
        kept = [w for w in words if not w.lower().startswith("state:")]
        if not self._query.shows_archived:
            kept.append("state:all")
        self.filter_input.value = " ".join(kept)
        self._filter_now()

    async def action_open_case(self) -> None:
        row = self.table.current_row
        if row is not None:
            app: Any = self.app
            await app.open_screen("case_detail", case_id=row[LINE_ID])

    def action_add_case(self) -> None:
        self.add_case(self.ask(CaseEditorScreen(title="Add a case")))

    def action_edit_case(self) -> None:
        row = self.table.current_row
        if row is not None:
            self.edit_case(row[LINE_ID])

    def action_toggle_archive(self) -> None:
        row = self.table.current_row
        if row is not None:
            self.toggle_archive(row[LINE_ID], row[LINE_STATE])

    # ------------------------------------------------------------------ writes (workers)
    async def _ask(self, title: str, draft: CaseDraft | None) -> CaseDraft | None:
        editor = CaseEditorScreen(title=title) if draft is None else CaseEditorScreen(
            title=title, input=draft.input, tags=draft.tags, note=draft.note)
        result: Any = await self.app.push_screen_wait(editor)
        return result

    @work(group="cases-write", exit_on_error=False)
    async def add_case(self, asked: Awaitable[CaseDraft | None]) -> None:
        draft = await asked
        while draft is not None:
            try:
                case = await self.store.cases.add(
                    NewCase(input=draft.input, tags=draft.tags, note=draft.note))
            except Exception as exc:  # keep what was typed: report, then reopen the editor
                self.app.report_error(exc)  # type: ignore[attr-defined]
                draft = await self._ask("Add a case (not saved yet)", draft)
                continue
            shown = self._show_line(case, move_cursor=True)
            await self._refresh_counts()
            self.refresh_loop()
            self.notify(f"Added case {case.ext_id}"
                        + ("" if shown else " (hidden by the filter)"))
            return

    @work(group="cases-write", exit_on_error=False)
    async def edit_case(self, case_id: int) -> None:
        case = await self.store.cases.get(case_id)
        draft: CaseDraft | None = CaseDraft(case.input, case.tags, case.note)
        draft = await self._ask(f"Edit case {case.ext_id}", draft)
        while draft is not None:
            try:
                case = await self.store.cases.edit(case_id, input=draft.input, tags=draft.tags,
                                                  note=draft.note)
            except Exception as exc:
                self.app.report_error(exc)  # type: ignore[attr-defined]
                draft = await self._ask(f"Edit case {case.ext_id} (not saved yet)", draft)
                continue
            self._show_line(case)
            self.notify(f"Saved case {case.ext_id}")
            return

    @work(group="cases-write", exit_on_error=False)
    async def toggle_archive(self, case_id: int, state: str) -> None:
        archived = state == CaseState.ARCHIVED.value
        target = CaseState.ACTIVE if archived else CaseState.ARCHIVED
        case = await self.store.cases.set_state(case_id, target)
        shown = self._show_line(case)
        await self._refresh_counts()
        self.refresh_loop()
        verb = "Restored" if archived else "Archived"
        hint = "" if shown else (
            f" (press {self.key_for('cases.show_archived', 'A')} to show archived cases)")
        self.notify(f"{verb} case {case.ext_id}{hint}")

    # ------------------------------------------------------------------ verdicts and Label
    # Added for the Label screen: the latest-verdict column, the `verdict:` filter (and `V`
    # cycling it), `enter`/`l` to label from the cursor on, `i` for the detail view.
    async def _load_verdicts(self) -> None:
        """One bulk read of the newest version's verdicts (for the app's model, or any
        model when none is configured), updated in place for the column's closure."""
        version = await self.store.versions.latest()
        try:
            model: str | None = self.session.model_choice().model
        except UserError:
            model = None
        verdicts = await self.store.answers.labels_per_case(version.id, model)
        self._verdicts.clear()
        self._verdicts.update(verdicts)

    def _verdict_shown(self, line: CaseLine) -> bool:
        wanted = self._verdict_filter
        if wanted is None:
            return True
        label = self._verdicts.get(line[LINE_ID])
        return (label.verdict.value if label is not None else "unlabelled") in wanted

    def on_screen_resume(self) -> None:
        # Back from Label (or Compare): verdicts may have changed. Not when only passed
        # through on the way to another screen (see `passing_through`).
        if self._passing_through:
            self._passing_through = False
            return
        self._show_counts()  # a job may have moved on (or ended) meanwhile
        if not self._loading:
            self.refresh_verdicts()
            self.refresh_loop()
            self._statuses = None  # read again when a status: filter needs them
            self.load_version_marks()
            if self._status_filter is not None:
                self._start_filter(keep_key=self._cursor_key())

    def passing_through(self) -> None:
        """The app returns to this screen only to open another (p, c, o from another
        screen): skip the re-reads of the next resume, which would hold up that screen's
        own reads (~1.5 s at 100,000 cases). They happen when this screen is shown."""
        self._passing_through = True

    @work(group="cases-verdicts", exclusive=True, exit_on_error=False)
    async def refresh_verdicts(self) -> None:
        await self._load_verdicts()
        self.table.refresh()
        if self._verdict_filter is not None:
            self._start_filter(keep_key=self._cursor_key())
        elif self._sort == "verdict":  # new labels move rows
            self.table.set_rows(self._ordered(self._shown), keep_cursor_on=self._cursor_key())

    def action_cycle_verdict(self) -> None:
        """`V`: verdict:good, bad, unsure, unlabelled, then no verdict filter."""
        current = sorted(self._verdict_filter or ())
        order = list(VERDICT_CHOICES)
        if len(current) == 1 and current[0] in order:
            index = order.index(current[0]) + 1
            following = order[index] if index < len(order) else None
        else:
            following = order[0]
        rest, _, _ = split_verdict_filter(self.filter_input.value)
        words = rest.split()
        if following is not None:
            words.append(f"verdict:{following}")
        self.filter_input.value = " ".join(words)
        self._filter_now()

    def action_generate(self) -> None:
        rules = self._query.rules
        rule = next(iter(rules)) if rules is not None and len(rules) == 1 else None
        self.generate(rule if isinstance(rule, int) else None)

    @work(group="cases-generate", exclusive=True, exit_on_error=False)
    async def generate(self, rule: int | None) -> None:
        """`G`: a batch of candidates for the review queue, as an app job."""
        going = self.jobs.running_assist("candidates")
        job = await start_candidates(self.jobs, self.session, rule=rule)
        self._show_counts()
        queue = self.key_for("app.candidates", "v")
        if going and going[-1] is job:
            self.notify(f"A batch is already coming: {queue} shows it.", timeout=4)
        else:
            probing = f" probing rule {rule}" if rule is not None else ""
            self.notify(f"Asking the assistant for new cases{probing}; they go to the "
                        f"review queue ({queue} opens it).", timeout=5)

    async def action_label_case(self) -> None:
        """Label the cases shown, in the table's order, from the one under the cursor."""
        row = self.table.current_row
        if row is None:
            return
        app: Any = self.app
        await app.open_screen("label", case_ids=[line[LINE_ID] for line in self.table.rows],
                              start_case_id=row[LINE_ID])

    # ------------------------------------------------------------------ sorting
    def action_cycle_sort(self) -> None:
        """`s`: the next order of SORTS; the cursor stays on its case."""
        self._sort = SORTS[(SORTS.index(self._sort) + 1) % len(SORTS)]
        self.table.set_rows(self._ordered(self._shown), keep_cursor_on=self._cursor_key())
        self._show_counts()
        self.notify(f"Sorted by {self._sort}: {SORT_HELP[self._sort]}", timeout=3)

    def _ordered(self, shown: list[CaseLine]) -> list[CaseLine]:
        """`shown` (in id order) in the order the user picked."""
        sort = self._sort
        if sort == "added":
            return shown
        if sort == "newest":
            return shown[::-1]
        if sort == "input":
            return sorted(shown, key=lambda line: line[LINE_INPUT].casefold())
        if sort == "tag":  # untagged last; by the first tag, then the rest
            return sorted(shown, key=lambda line: (line[LINE_TAGS] == "[]",
                                                   line_tags(line)))
        verdicts = self._verdicts  # "verdict": what needs work first
        return sorted(shown, key=lambda line: VERDICT_RANK[_verdict_of(verdicts, line)])

    # ------------------------------------------------------------------ versions and statuses
    # Added for Compare: a verdict column per recent version and the `status:` filter
    # (the comparison status between the newest two versions, read only when asked for).
    VERSION_COLUMNS = 3  # the newest versions that get a verdict column
    _status_filter: frozenset[ComparisonStatus] | None = None
    _status_problem: str | None = None
    _statuses: dict[int, ComparisonStatus] | None = None

    def _model_filter(self) -> str | None:
        try:
            return self.session.model_choice().model
        except UserError:
            return None

    @work(group="cases-version-marks", exclusive=True, exit_on_error=False)
    async def load_version_marks(self) -> None:
        """The verdicts of the newest versions (one bulk read each), as columns."""
        versions = (await self.store.versions.all())[-self.VERSION_COLUMNS:]
        if len(versions) < 2:
            return  # one version: the Verdict column already says it all
        model = self._model_filter()
        marks = [(f"v{v.number}", await self.store.answers.labels_per_case(v.id, model))
                 for v in versions]
        self.table.set_columns(case_columns(self._verdicts, marks))

    async def _load_statuses(self) -> None:
        """Statuses of every case between the newest two versions (once, then kept until
        the screen is shown again)."""
        if self._statuses is not None:
            return
        versions = await self.store.versions.all()
        ids = [line[LINE_ID] for line in self._lines]
        if len(versions) < 2:
            self._statuses = {cid: ComparisonStatus.MISSING for cid in ids}
            return
        model = self._model_filter()
        baseline = await self.store.answers.per_case(versions[-2].id, model)
        revision = await self.store.answers.per_case(versions[-1].id, model)
        self._statuses = compare_all(ids, baseline, revision)

    def _status_shown(self, line: CaseLine) -> bool:
        wanted = self._status_filter
        if wanted is None or self._statuses is None:
            return True
        return self._statuses.get(line[LINE_ID], ComparisonStatus.MISSING) in wanted

    # ------------------------------------------------------------------ the guided loop
    # Added for the guided workflow (services/workflow.py): the loop line above the keys,
    # `L` for the whole loop, `ctrl+l` (or `h` in the panel) to hide or show the line.
    async def _read_loop(self) -> LoopState:
        return await loop_state(self.store, self._model_filter())

    @work(group="cases-loop", exclusive=True, exit_on_error=False)
    async def refresh_loop(self) -> None:
        """Read where the project stands and show the next step (nothing is read while
        the line is hidden: the panel reads for itself)."""
        if self._loop_line_shown is None:
            preferences = await self.store.settings.preferences()
            self._loop_line_shown = preferences.get(LOOP_LINE_PREFERENCE, True) is not False
            self.loop_line.set_class(not self._loop_line_shown, "-hidden")
        if not self._loop_line_shown:
            return
        self._loop_state = state = await self._read_loop()
        newest = await self.store.versions.latest()
        running = self.jobs.running_run(newest.id) is not None
        self.loop_line.show_state(state, self.key_for("cases.loop", "L"), running=running)

    def action_loop_panel(self) -> None:
        panel = LoopPanel(self._loop_state, self._read_loop,
                          line_shown=self._loop_line_shown is not False)
        self.app.push_screen(panel, callback=self._loop_panel_closed)

    def _loop_panel_closed(self, shown: bool | None) -> None:
        if shown is not None:
            self._show_loop_line(shown)

    def action_toggle_loop_line(self) -> None:
        self._show_loop_line(self._loop_line_shown is False)

    def _show_loop_line(self, shown: bool) -> None:
        """Show or hide the loop line now, and keep the choice in the project."""
        self._loop_line_shown = shown
        self.loop_line.set_class(not shown, "-hidden")
        self.save_loop_line(shown)
        if shown:
            self.refresh_loop()
            self.notify("The loop line is back above the keys.", timeout=3)
        else:
            self.notify(f"Loop line hidden: {self.key_for('cases.loop', 'L')} still shows "
                        f"the loop, {self.key_for('cases.loop_line', 'ctrl+l')} brings the "
                        "line back.", timeout=5)

    @work(group="cases-preferences", exit_on_error=False)
    async def save_loop_line(self, shown: bool) -> None:
        await self.store.settings.set_preference(LOOP_LINE_PREFERENCE, shown)
