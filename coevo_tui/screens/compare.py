"""The Compare screen (`c`): two versions, or one version under two models, side by side.

The left pane is the baseline, the right pane the revision; both are `StreamPane`s, so
each owns its stream (leaving the screen, or moving to another case, cancels both) and a
side without a stored answer streams one at once, while a stored one shows immediately.

Every active case gets a comparison status (coevo_tui.domain.status); the list of cases
is in navigation order (regressions first, then changed-unlabelled, then fixed, then the
rest) and `j`/`k` step through it. Reading and sorting 100,000 statuses takes seconds, so
the screen first shows one case (the first active one) with the status of its own two
answers, and the list ("sorting…") follows; `j`/`k` say so until then. Showing a case
reads it and both answers in one query (`Store.answers.case_on_show`). `g`/`b`/`u` label the focused pane's answer (`tab` or
`h`/`l` moves focus), `r` edits its rationale; carry-over applies and the status updates
in place. The judge's suggestion for an unlabelled answer shows dimmed under the pane's
title; `y` accepts it as the label (source judge), `J` has the judge look at the focused
side's unlabelled answers, `ctrl+g` in the rationale dialog suggests a rationale. `d`
shows the diff of the two versions' instructions. `R` runs the revision
over every active case in a worker: statuses fill in as answers arrive (the list redraws
in batches) and the panes keep streaming. `V` chooses the two versions; `m` compares the
revision under a second model instead (a litellm model string).

Layout: at 110 columns and wider the case list sits on the left and the panes side by
side (`-wide`); narrower, the list shrinks to a few lines on top and the panes stack
(`-narrow`). The class is set from the screen's width on resize.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Header, Static

from coevo_tui.domain.carryover import is_carried
from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import (
    Case,
    CaseState,
    Judgement,
    Label,
    Output,
    OutputStatus,
    PromptVersion,
    Verdict,
    first_line,
)
from coevo_tui.domain.status import (
    FACT_OUTPUT,
    Answer,
    AnswerFacts,
    ComparisonStatus,
    VerdictChange,
    answer_facts,
    compare_facts,
    with_label_facts,
)
from coevo_tui.domain.versiondiff import DiffKind, DiffLine, version_diff
from coevo_tui.jobs import JOB_ENDED, AssistJob, Job, JobEvent, TestSetRun, start_judge
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.screens.dialogs.model_picker import ModelPicker
from coevo_tui.screens.dialogs.model_prompt import ModelPrompt
from coevo_tui.screens.dialogs.rationale import RationaleScreen, carried_notice
from coevo_tui.screens.dialogs.version_picker import VersionPicker
from coevo_tui.services.comparison import (
    SeveralModels,
    VersionPair,
    choose_model,
    choose_versions,
    merge_counts,
)
from coevo_tui.widgets.case_table import CaseTable, Column
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.status_badge import (
    STATUS_LABEL_WIDTH,
    StatusBadge,
    status_group,
    status_label,
)
from coevo_tui.widgets.stream_pane import StreamPane
from coevo_tui.widgets.verdict_bar import judge_text, verdict_text

if TYPE_CHECKING:
    from coevo_tui.llm.config import ModelChoice
    from coevo_tui.llm.runner import RunSummary

WIDE_FROM = 110  # columns from which the list and the panes sit side by side
RUN_REFRESH_S = 0.25  # a run's finished cases reach the list at most this often
S = ComparisonStatus


# ---------------------------------------------------------------------- plain data
@dataclass(frozen=True)
class Side:
    """One side of the comparison: a version under a model.

    `choice` is what the pane streams with (None: the app's model); `model` filters the
    stored answers (None: the newest answer of any model, when no model is configured).
    """

    version: PromptVersion
    model: str | None
    choice: ModelChoice | None = None

    @property
    def name(self) -> str:
        return f"v{self.version.number}"


class CompareRow(NamedTuple):
    """One case in the list: `key` orders the rows (navigation order at load time)."""

    key: int
    case_id: int
    ext_id: str
    input: str
    status: ComparisonStatus


_STATUS_BY_VALUE = {status.value: status for status in ComparisonStatus}


class CompareRows(Sequence[CompareRow]):
    """The list's rows, held as plain (key, case id, ext id, input, status value) tuples
    and read as `CompareRow`s. Why: the garbage collector stops tracking a plain tuple of
    ints and strings, but never a NamedTuple (nor one holding an enum member); 100,000
    tracked rows made every full collection, a frozen screen, ~40 ms longer, and
    building them set one off while the screen loaded."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[int, int, str, str, str]]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._row(item) for item in self._items[index]]
        return self._row(self._items[index])

    @staticmethod
    def _row(item: tuple[int, int, str, str, str]) -> CompareRow:
        return CompareRow(item[0], item[1], item[2], item[3], _STATUS_BY_VALUE[item[4]])

    def __setitem__(self, index: int, row: CompareRow) -> None:
        self._items[index] = (row.key, row.case_id, row.ext_id, row.input, row.status.value)

    def index_of_cases(self) -> dict[int, int]:
        """Case id -> index, without making a row object per case."""
        return {item[1]: index for index, item in enumerate(self._items)}

    def status_counts(self) -> dict[ComparisonStatus, int]:
        """`status_counts` without making a row object per case."""
        counts: dict[str, int] = {}
        for item in self._items:
            counts[item[4]] = counts.get(item[4], 0) + 1
        return {_STATUS_BY_VALUE[value]: count for value, count in counts.items()}


def build_rows(lines: Sequence[tuple[int, str, str]],
               statuses: Mapping[int, ComparisonStatus]) -> CompareRows:
    """Rows in navigation order (`navigation_order`: regressions first, then changed-
    unlabelled, then fixed, ...; ties keep the order of `lines`) from (case id, ext id,
    input) lines and their statuses. Bucketed by status rather than sorted: a third of the
    time at 100,000 cases."""
    buckets: dict[ComparisonStatus, list[tuple[int, str, str]]] = {
        status: [] for status in ComparisonStatus}  # declared in navigation order
    for line in lines:
        buckets[statuses[line[0]]].append(line)
    items: list[tuple[int, int, str, str, str]] = []
    for status, bucket in buckets.items():
        start, value = len(items), status.value
        items.extend((start + i, cid, ext_id, text, value)
                     for i, (cid, ext_id, text) in enumerate(bucket))
    return CompareRows(items)


def compare_lines(lines: Sequence[tuple[int, str, str]], left: Mapping[int, AnswerFacts],
                  right: Mapping[int, AnswerFacts]) -> CompareRows:
    """The status of every case, then the rows in navigation order, from (case id, ext id,
    input) lines (`Store.cases.active_lines`) and both sides' answer facts (pure: it runs
    in a thread so that 100,000 cases do not freeze the screen)."""
    get_left, get_right = left.get, right.get
    statuses = {line[0]: compare_facts(get_left(line[0]), get_right(line[0]))
                for line in lines}
    return build_rows(lines, statuses)


def newest_answer(answers: Sequence[Answer], version_id: int, model: str | None
                  ) -> Answer | None:
    """The newest non-cancelled answer of a version (and model) among one case's answers,
    the same choice as `Store.answers.per_case` makes in bulk."""
    found = None
    for answer in answers:
        out = answer.output
        if out.version_id != version_id or out.status == OutputStatus.CANCELLED:
            continue
        if model is not None and out.model != model:
            continue
        if found is None or out.id > found.output.id:
            found = answer
    return found


def status_counts(rows: Sequence[CompareRow]) -> dict[ComparisonStatus, int]:
    """How many rows have each status."""
    if isinstance(rows, CompareRows):
        return rows.status_counts()
    counts: dict[ComparisonStatus, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def history_text(changes: Sequence[VerdictChange]) -> Text:
    """The versions that changed a case's verdict, e.g. "v2 ▲ bad→good · v3 ▼ good→bad"."""
    text = Text()
    text.append("Verdict changed in: ", style="bold")
    if not changes:
        text.append("no version yet", style="italic")
        return text
    for number, change in enumerate(changes):
        if number:
            text.append(" · ")
        text.append(f"v{change.version_number} ", style="bold")
        if change.before is None:  # the first verdict, or the parent had none
            text.append(change.after.value)
            continue
        symbol = status_label(change.status).split(" ", 1)[0]
        text.append(f"{symbol} {change.before.value}→{change.after.value}")
    return text


def _status_style(row: CompareRow) -> str | None:
    return {
        "worse": "case-table--bad",
        "better": "case-table--good",
        "attention": "case-table--unsure",
        "failure": "case-table--error",
    }.get(status_group(row.status), "case-table--muted")


def compare_columns() -> list[Column[CompareRow]]:
    return [
        Column("status", "Status", lambda r: status_label(r.status, short=True),
               width=STATUS_LABEL_WIDTH, style=_status_style),
        Column("id", "Id", lambda r: r.ext_id, width=6),
        Column("input", "Input", lambda r: first_line(r.input), min_width=8),
    ]


# ---------------------------------------------------------------------- widgets
class CaseStatusList(CaseTable[CompareRow], can_focus=False):
    """The cases with their statuses; the screen moves its cursor (`j`/`k`), so it never
    takes focus (its own keys would shadow the labelling keys)."""


_VERDICT_CLASSES = frozenset(f"-{verdict.value}" for verdict in Verdict)


class ComparePane(StreamPane, can_focus=True):
    """A StreamPane that takes the focus itself (so `g`/`b`/`u` know which side they
    label) and says so without colour: a "▶" before its title. Its verdict and rationale
    get a line of their own under the title (a narrow pane's title line would cut them
    off). `up`/`down`/`pageup`/`pagedown` scroll its answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "scroll_answer('up')", "Scroll up", show=False, id="compare_pane.up"),
        Binding("down", "scroll_answer('down')", "Scroll down", show=False,
                id="compare_pane.down"),
        Binding("pageup", "scroll_answer('page_up')", "Page up", show=False,
                id="compare_pane.page_up"),
        Binding("pagedown", "scroll_answer('page_down')", "Page down", show=False,
                id="compare_pane.page_down"),
    ]

    def __init__(self, *, side_title: str, **kwargs: Any) -> None:
        super().__init__(title="  " + side_title, show_label=False, **kwargs)
        self.side_title = side_title
        # The judge's suggestion for the answer shown (None: none known); shown while the
        # answer is unlabelled.
        self.judgement: Judgement | None = None

    def show_judgement(self, judgement: Judgement | None) -> None:
        """Show the judge's suggestion for the answer on show (None: none)."""
        if judgement != self.judgement:
            self.judgement = judgement
            self._render_head()

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static("", classes="compare-pane--verdict")

    def on_mount(self) -> None:
        # Under the title line, above the answer.
        self.move_child(self.query_one(".compare-pane--verdict"),
                        after=self.query_one(".stream-pane--head"))
        self.query_one(VerticalScroll).can_focus = False  # one tab stop per pane

    @property
    def focused(self) -> bool:
        """The pane is its screen's focused widget (it stays so while a modal is open)."""
        return self.is_attached and self.screen.focused is self

    def _mark_focus(self) -> None:
        focused = self.focused
        self.set_class(focused, "-focused")
        self.title = ("▶ " if focused else "  ") + self.side_title
        self._render_head()

    def retitle(self, side_title: str) -> None:
        self.side_title = side_title
        self._mark_focus()

    def action_scroll_answer(self, how: str) -> None:
        scroll = self.query_one(VerticalScroll)
        getattr(scroll, f"scroll_{how}")(animate=False)

    def _render_head(self) -> None:
        super()._render_head()
        if not self.is_mounted:
            return
        line = Text(overflow="ellipsis")
        output, label = self.output, self.label
        if output is not None and output.status == OutputStatus.OK:
            line.append(verdict_text(label), style="italic" if is_carried(label) else "bold")
            judgement = self.judgement
            if label is not None and label.rationale:
                line.append(f" {first_line(label.rationale)}")
            elif label is None and judgement is not None and judgement.output_id == output.id:
                line.append("  ")
                line.append_text(judge_text(judgement))
            elif label is None:
                line.append("  g good · b bad · u unsure", style="dim")
        for verdict_line in self.query(".compare-pane--verdict").results(Static):
            verdict_line.update(line)
            # The verdict's colour class sits on the line itself and changes in one step:
            # a class change restyles the node's whole subtree, once per change.
            wanted = {f"-{label.verdict.value}"} if label is not None else set()
            if wanted != verdict_line.classes & _VERDICT_CLASSES:
                verdict_line.set_classes((verdict_line.classes - _VERDICT_CLASSES) | wanted)
        # What can be done with the pane (label, write a rationale) may have changed: the
        # footer dims or shows those keys.
        sync = getattr(self.screen, "sync_bindings", None)
        if sync is not None:
            sync()


class InstructionDiff(Static):
    """The unified diff of two versions' instructions; +/- markers carry the meaning,
    the component classes only colour them."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "instruction-diff--added", "instruction-diff--removed", "instruction-diff--hunk",
        "instruction-diff--header",
    }

    def show_diff(self, lines: Sequence[DiffLine], empty: str) -> None:
        if not lines:
            self.update(Text(empty, style="italic"))
            return
        styles = {
            DiffKind.ADDED: self.get_component_rich_style("instruction-diff--added"),
            DiffKind.REMOVED: self.get_component_rich_style("instruction-diff--removed"),
            DiffKind.HUNK: self.get_component_rich_style("instruction-diff--hunk"),
            DiffKind.HEADER: self.get_component_rich_style("instruction-diff--header"),
        }
        text = Text()
        for number, line in enumerate(lines):
            if number:
                text.append("\n")
            text.append(line.text, style=styles.get(line.kind, ""))
        self.update(text)


# ---------------------------------------------------------------------- the screen
class CompareScreen(CoevoScreen):
    """Baseline and revision side by side on one case at a time (module docstring)."""

    CSS_PATH = stylesheet("compare.tcss")
    AUTO_FOCUS = "#compare-left"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
        Binding("j", "step(1)", "Next", id="compare.next",
                tooltip="The next case in status order (regressions first)"),
        Binding("k", "step(-1)", "Prev", id="compare.prev", show=False,
                tooltip="The previous case in status order"),
        Binding("g", "label('good')", "Good", id="compare.good",
                tooltip="Label the focused pane's answer good"),
        Binding("b", "label('bad')", "Bad", id="compare.bad",
                tooltip="Label the focused pane's answer bad, then write why"),
        Binding("u", "label('unsure')", "Unsure", id="compare.unsure",
                tooltip="Label the focused pane's answer unsure, then write why"),
        Binding("r", "rationale", "Rationale", id="compare.rationale", show=False,
                tooltip="Write or edit the rationale of the focused pane's label"),
        Binding("h,left", "focus_side('left')", "Left pane", id="compare.left", show=False),
        Binding("l,right", "focus_side('right')", "Right pane", id="compare.right",
                show=False),
        Binding("d", "toggle_diff", "Diff", id="compare.diff",
                tooltip="Show or hide the diff of the two versions' instructions"),
        Binding("R", "run", "Run all", id="compare.run",
                tooltip="Run the revision over every active case (R again stops)"),
        Binding("space", "rerun", "Re-run", id="compare.rerun", show=False,
                tooltip="Call the model again for the focused pane (bypasses the cache)"),
        Binding("V", "choose_versions", "Versions", id="compare.versions", show=False,
                tooltip="Choose the two versions to compare"),
        Binding("m", "second_model", "Model", id="compare.model", show=False,
                tooltip="Compare the revision under a second model"),
        Binding("y", "accept_judge", "Accept judge", id="compare.accept_judge", show=False,
                tooltip="Label the focused pane's answer with the judge's suggestion"),
        Binding("J", "judge", "Judge answers", id="compare.judge", show=False,
                tooltip="Have the judge suggest a verdict for the focused side's unlabelled "
                        "answers"),
        Binding("enter", "open_case", "Open case", id="compare.open", show=False),
        Binding("ctrl+r", "reload", "Re-sort", id="compare.reload", show=False,
                tooltip="Read every answer again and put the list back in status order"),
    ]

    def __init__(self, baseline: int | None = None, revision: int | None = None,
                 model: str | None = None, second_model: str | None = None) -> None:
        super().__init__()
        self.requested = (baseline, revision)
        self.requested_model = model
        self.requested_second_model = second_model
        self.versions: list[PromptVersion] = []
        self.left: Side | None = None
        self.right: Side | None = None
        # Per case id, each side's answer as plain facts (status, text, verdict, ...):
        # 100,000 Output and Label objects would cost seconds to build.
        self.left_answers: dict[int, AnswerFacts] = {}
        self.right_answers: dict[int, AnswerFacts] = {}
        self.rows: CompareRows = CompareRows([])
        self._counts: dict[ComparisonStatus, int] = {}  # of the rows' statuses
        self.index_of_case: dict[int, int] = {}
        self.current: int | None = None  # index into rows
        self.case: Case | None = None
        # The run of the revision shown here: an app job, so it goes on when this
        # screen is left (and one started elsewhere over the same side is followed).
        self._run: TestSetRun | None = None
        self._run_dirty: set[int] = set()
        self._run_timer: Timer | None = None
        self._loaded = False
        # While the statuses are read and sorted (`load`): the case ids whose answers
        # changed meanwhile (read again after), and whether the user acted on the case
        # shown before the list was ready (it then stays on show).
        self._sorting = False
        self._loads = 0  # loads started, to tell the newest from a cancelled one
        self._touched_while_sorting: set[int] = set()
        self._acted_while_sorting = False
        self._bindings_for: tuple[object, ...] = ()
        # The judge's newest suggestion per output id (None: it has none), read for the
        # answers on show and updated as a judge job goes.
        self._judgements: dict[int, Judgement | None] = {}

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(icon="")
        with Horizontal(id="compare-bar"):
            yield Static("loading…", id="compare-scope")
            yield StatusBadge(id="compare-badge")
            yield Static("", id="compare-position")
        with Container(id="compare-main"):
            yield CaseStatusList(compare_columns(), row_key=lambda r: r.key,
                                 empty_message="loading…", id="compare-cases")
            with Vertical(id="compare-work"):
                yield Static("", id="compare-input")
                yield Static("", id="compare-history")
                with Container(id="compare-panes"):
                    yield ComparePane(side_title="Baseline", id="compare-left",
                                      classes="compare-pane")
                    yield ComparePane(side_title="Revision", id="compare-right",
                                      classes="compare-pane")
                with VerticalScroll(id="compare-diff"):
                    yield InstructionDiff("", id="compare-diff-text")
        yield CoevoFooter()

    @property
    def case_list(self) -> CaseStatusList:
        return self.query_one("#compare-cases", CaseStatusList)

    @property
    def left_pane(self) -> ComparePane:
        return self.query_one("#compare-left", ComparePane)

    @property
    def right_pane(self) -> ComparePane:
        return self.query_one("#compare-right", ComparePane)

    def focused_pane(self) -> ComparePane | None:
        for pane in (self.left_pane, self.right_pane):
            if pane.focused:
                return pane
        return None

    def on_mount(self) -> None:
        self.title = self.app.title
        self.sub_title = "Compare"
        self._apply_width(self.app.size.width)
        self.jobs.events.subscribe(self, self._on_job_event)
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_width(event.size.width)

    def watch_focused(self) -> None:
        for pane in self.query(ComparePane):
            pane.retitle(pane.side_title)
        self.sync_bindings()

    def _binding_state(self) -> tuple[object, ...]:
        """Everything `check_action` decides from."""
        pane = self.focused_pane()
        output = pane.output if pane is not None else None
        return (pane.id if pane is not None else None,
                output is not None and output.status == OutputStatus.OK,
                pane is not None and pane.label is not None,
                self.case is not None, bool(self.rows), self._loaded,
                pane is not None and self._judgement_of(pane) is not None)

    def sync_bindings(self) -> None:
        """Refresh the footer only when what `check_action` decides has changed: every
        refresh rebuilds the footer's widgets, which costs more than showing a case."""
        pane = self.focused_pane()
        if pane is not None and pane.state == "loading":
            return  # its answer follows in a moment: decide then (one footer rebuild)
        state = self._binding_state()
        if state != self._bindings_for:
            self._bindings_for = state
            self.refresh_bindings()

    def _apply_width(self, width: int) -> None:
        wide = width >= WIDE_FROM
        self.set_class(wide, "-wide")
        self.set_class(not wide, "-narrow")

    # ------------------------------------------------------------------ loading
    def _app_choice(self) -> ModelChoice | None:
        try:
            return self.session.model_choice()
        except UserError:
            return None

    def _pick_versions(self) -> VersionPair:
        """The two versions, by the rule `coevo eval` uses (services/comparison.py); a
        project with one version (or a second model on one version) compares it with
        itself."""
        baseline, revision = self.requested
        if self.requested_second_model:
            pair = choose_versions(self.versions, None, revision, allow_same=True)
            return VersionPair(pair.revision, pair.revision)
        return choose_versions(self.versions, baseline, revision, allow_same=True)

    async def _pick_model(self, pair: VersionPair, choice: ModelChoice | None) -> str | None:
        """The model whose answers are compared, by the rule `coevo eval` uses; when
        several models answered and none is the model under test, the user picks one."""
        if self.requested_model:
            return self.requested_model
        store = self.store
        answered = merge_counts(await store.outputs.cases_per_model(pair.baseline.id),
                                *([] if pair.same else
                                  [await store.outputs.cases_per_model(pair.revision.id)]))
        try:
            return choose_model(pair, answered, under_test=self.session.configured_model())
        except SeveralModels as several:
            where = (f"v{pair.revision.number}" if pair.same
                     else f"v{pair.baseline.number} and v{pair.revision.number}")
            picked = await self.app.push_screen_wait(ModelPicker(where, several.counts))
            if picked is None:  # cancelled: the model with the most answers, said so
                picked = sorted(several.counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
                self.notify(f"Comparing the answers of {picked} (m picks another model).",
                            timeout=6)
            self.requested_model = picked
            return picked

    async def _sides(self) -> tuple[Side, Side]:
        pair = self._pick_versions()
        base, rev = pair.baseline, pair.revision
        choice = self._app_choice()
        model = await self._pick_model(pair, choice)
        # Stream with the model under test unless the stored answers are another model's.
        side_choice = choice if choice is not None and choice.model == model else None
        if self.requested_second_model:
            from coevo_tui.llm.config import resolve_model

            second = resolve_model(self.requested_second_model, None,
                                   self.session.api_base_override)
            return (Side(rev, model, side_choice), Side(rev, second.model, second))
        return Side(base, model, side_choice), Side(rev, model, side_choice)

    @work(group="compare-load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Read the versions, the active cases and both sides' answers; order the cases.

        With new sides (the first load, or other versions or models) a case is shown at
        once, before every status is known (100,000 cases take seconds to read and
        sort): the one on show if it is active, else the first active case; its status
        is worked out from its own two answers. When the list is ready it shows the first
        case in navigation order (regressions first), unless the user has acted on the
        case on show meanwhile (labelled it, ...), which then stays."""
        store = self.store
        self.versions = await store.versions.all()
        before = (self.left, self.right)
        self.left, self.right = await self._sides()
        same_sides = before == (self.left, self.right)
        self._follow_going_run()
        if (not same_sides and self.left.version.id == self.right.version.id
                and self.left.model == self.right.model):
            number = self.right.version.number
            self.notify(f"Only v{number} to compare with itself: save a revision on the "
                        f"Prompt screen (p), or compare v{number} under a second model (m).",
                        timeout=8)
        keep = self.rows[self.current].case_id if self.current is not None and self.rows else None
        # A load replacing this one (V, m) starts before this one's cancellation runs its
        # `finally`: only the newest load may end the sorting state.
        self._loads += 1
        generation = self._loads
        self._sorting = True
        self._touched_while_sorting = set()
        self._acted_while_sorting = False
        try:
            if not same_sides:
                keep = await self._show_before_sorting(keep)
            lines = await store.cases.active_lines()
            left, right = self.left, self.right
            self.left_answers = await store.answers.facts_per_case(left.version.id, left.model)
            self.right_answers = await store.answers.facts_per_case(right.version.id, right.model)
            rows = await asyncio.to_thread(compare_lines, lines, self.left_answers,
                                           self.right_answers)
            keep = self.rows[self.current].case_id if self.current is not None and self.rows \
                else keep
            if same_sides:
                self._configure_panes()
                self._show_diff()
            self._set_rows(rows)
            self.case_list.empty_message = "no active cases: add some on the Cases screen"
            self._sorting = False
            # Answers stored or labelled while the bulk reads ran may be missing from them.
            for case_id in self._touched_while_sorting:
                await self._reread_case(case_id)
            if self.rows:
                if keep is None and self._acted_while_sorting and self.case is not None:
                    keep = self.case.id  # the user is working on it: it stays
                index = self.index_of_case.get(keep, 0) if keep is not None else 0
                on_show = self.case is not None and self.case.id == self.rows[index].case_id
                # Re-sorting the same comparison leaves the panes alone (a stream goes on),
                # and so does the case already shown before the list was ready.
                await self._select(index, reshow=not ((same_sides and keep is not None)
                                                      or (not same_sides and on_show)))
            else:
                self.current = None
                self._show_bar()
        finally:
            if generation == self._loads:
                self._sorting = False
        self._loaded = True
        self._show_bar()
        self.sync_bindings()

    async def _show_before_sorting(self, keep: int | None) -> int | None:
        """New sides: empty the list ("sorting…") and show a case at once (`keep` if it
        is active, else the first active case). Returns the case to keep on show once the
        list is ready (None: the list's first)."""
        self._loaded = False
        self._configure_panes()
        self._show_diff()
        self.current = None
        self._set_rows(CompareRows([]))
        self.case_list.empty_message = "sorting the cases (regressions first)…"
        case_id = keep
        if case_id is not None:
            if (await self.store.cases.get(case_id)).state != CaseState.ACTIVE:
                case_id = None
        if case_id is None:
            case_id = await self.store.cases.first_active_id()
        if case_id is None:
            self.case = None
            self._show_bar()
            return None
        await self._show_case(case_id)
        return keep

    async def _reread_case(self, case_id: int) -> None:
        """Read one case's answers again into the statuses (after the bulk read)."""
        left, right = self.left, self.right
        assert left is not None and right is not None
        _, answers = await self.store.answers.case_on_show(
            case_id, [(left.version.id, left.model), (right.version.id, right.model)])
        for held, (answer, _) in zip((self.left_answers, self.right_answers), answers):
            if answer is None:
                held.pop(case_id, None)
            else:
                held[case_id] = answer_facts(answer)
        self._update_case(case_id)

    def _set_rows(self, rows: CompareRows) -> None:
        self.rows = rows
        self.index_of_case = rows.index_of_cases()
        self._counts = rows.status_counts()
        self.case_list.set_rows(rows)

    def _configure_panes(self) -> None:
        left, right = self.left, self.right
        assert left is not None and right is not None
        models_mode = left.version.id == right.version.id and left.model != right.model
        params = self.session.params
        for pane, side, role in ((self.left_pane, left, "Baseline"),
                                 (self.right_pane, right, "Revision")):
            pane.choice = side.choice
            pane.params = params
            title = role
            if models_mode:
                title = "Model A" if pane is self.left_pane else "Model B"
            pane.retitle(title)
        self.set_class(models_mode, "-models")

    # ------------------------------------------------------------------ showing a case
    async def _select(self, index: int, *, reshow: bool = True) -> None:
        """Make row `index` the current case; `reshow` False only moves the list's cursor
        when that case is already on show."""
        if not self.rows:
            return
        index = max(0, min(index, len(self.rows) - 1))
        self.current = index
        row = self.rows[index]
        if not reshow and self.case is not None and self.case.id == row.case_id:
            self.case_list.move_cursor_to(index)
            self._show_bar()
            return
        await self._show_case(row.case_id)

    async def _show_case(self, case_id: int) -> None:
        """Show one case: its input and both sides' stored answers (read with the case in
        one query, so a keypress costs one round trip), drawn at once; a side without a
        stored answer streams one. Its history line follows once the panes are drawn."""
        left, right = self.left, self.right
        assert left is not None and right is not None
        left_pane, right_pane = self.left_pane, self.right_pane
        case, answers = await self.store.answers.case_on_show(
            case_id, [(left.version.id, left_pane.answer_model()),
                      (right.version.id, right_pane.answer_model())])
        if self.current is not None and self.rows and self.rows[self.current].case_id != case_id:
            return  # moved on meanwhile
        # Everything visible changes from here on, after the read and without an await:
        # one frame. A change before the read (the list's cursor) would be drawn on its
        # own, and Textual then holds the next frame back by one or two frame periods.
        if self.current is not None:
            self.case_list.move_cursor_to(self.current)
        self.case = case
        self.query_one("#compare-input", Static).update(Text(case.input))
        for pane, side, (answer, _) in zip((left_pane, right_pane), (left, right), answers):
            run = self._run_answering(case.id, side)
            if answer is None and run is not None:
                # The run answers this case: show its stream rather than call again.
                parts = run.streams.get(case.id)
                pane.follow(case, side.version, "".join(parts or ()),
                            started=parts is not None)
            else:
                pane.show_answer(case, side.version, answer)
        self._show_bar()  # after the panes: a case shown before the list takes its status
        self._show_judgements()
        self.sync_bindings()
        # After the frame that shows the panes: the history read (every answer of the
        # case) must not hold up the answers.
        self.call_after_refresh(self.show_history, case.id)

    def _judgement_of(self, pane: ComparePane) -> Judgement | None:
        """The judge's suggestion for the pane's answer while it is unlabelled."""
        output = pane.output
        if output is None or output.status != OutputStatus.OK or pane.label is not None:
            return None
        return self._judgements.get(output.id)

    def _show_judgements(self) -> None:
        """Give each pane the judge's suggestion for its answer; read the unknown ones."""
        unknown = []
        for pane in (self.left_pane, self.right_pane):
            output = pane.output
            if output is not None and output.id not in self._judgements:
                unknown.append(output.id)
            pane.show_judgement(self._judgement_of(pane))
        if unknown:
            self._load_judgements(unknown)

    @work(group="compare-judgements", exclusive=True, exit_on_error=False)
    async def _load_judgements(self, output_ids: list[int]) -> None:
        found = await self.store.judgements.newest_for_outputs(output_ids)
        for output_id in output_ids:
            self._judgements[output_id] = found.get(output_id)
        if found:
            for pane in (self.left_pane, self.right_pane):
                pane.show_judgement(self._judgement_of(pane))
            self.sync_bindings()

    @work(group="compare-history", exclusive=True, exit_on_error=False)
    async def show_history(self, case_id: int) -> None:
        # The history of the baseline's model: in models mode that is the main model.
        model = self.left.model if self.left is not None else None
        changes = await self.store.answers.verdict_changes(case_id, model)
        if self.case is not None and self.case.id == case_id:
            # One line of fixed height: no layout pass for it.
            self.query_one("#compare-history", Static).update(history_text(changes),
                                                              layout=False)

    def _show_bar(self) -> None:
        """Versions (or models), a run's progress, the counts that matter, the model: in
        that order, because a narrow bar cuts off the end."""
        left, right = self.left, self.right
        scope = Text(no_wrap=True, overflow="ellipsis")
        models_mode = False
        if left is not None and right is not None:
            models_mode = left.version.id == right.version.id and left.model != right.model
            if models_mode:
                scope.append(f"v{right.version.number}: ", style="bold")
                scope.append(f"{left.model} vs {right.model}")
            else:
                scope.append(f"{left.name} → {right.name}", style="bold")
        if self.run_summary is not None:
            run = self.run_summary
            state = "run stopped" if run.halted else (
                "running" if self.run_in_progress() else "run done")
            scope.append(f" · {state} {run.done}/{run.to_run}", style="bold")
            if run.errors:
                scope.append(f" ({run.errors} errors)")
        counts = self._counts
        summary = " ".join(f"{status_label(s).split(' ', 1)[0]}{counts[s]}"
                           for s in (S.REGRESSED, S.CHANGED_UNLABELLED, S.FIXED) if counts.get(s))
        if summary:
            scope.append(f" · {summary}")
        if not models_mode and right is not None and right.model:
            scope.append(f" · {right.model}", style="dim")
        self.query_one("#compare-scope", Static).update(scope, layout=False)  # one line
        badge = self.query_one("#compare-badge", StatusBadge)
        position = self.query_one("#compare-position", Static)
        if self.current is None and self.case is not None and self._sorting:
            badge.status = self._shown_status()
            position.update(f"{self.case.ext_id} · sorting…")
            return
        if self.current is None or not self.rows:
            badge.status = None
            position.update("" if not self._loaded else "no cases")
            return
        row = self.rows[self.current]
        badge.status = row.status
        position.update(f"{row.ext_id} · {self.current + 1}/{len(self.rows)}")

    def _shown_status(self) -> ComparisonStatus:
        """The status of the case on show from the answers its panes show: the same
        decision as the list's (`compare_facts`), for a case shown before the list."""
        facts: list[AnswerFacts | None] = []
        for pane in (self.left_pane, self.right_pane):
            output = pane.output
            if output is not None and self.case is not None and output.case_id == self.case.id:
                facts.append(answer_facts(Answer(output, pane.label)))
            else:
                facts.append(None)
        return compare_facts(facts[0], facts[1])

    def _show_diff(self) -> None:
        left, right = self.left, self.right
        diff = self.query_one("#compare-diff-text", InstructionDiff)
        if left is None or right is None:
            return
        if left.version.id == right.version.id:
            diff.show_diff([], f"Both sides use v{left.version.number}: the instructions are "
                               "the same (comparing models).")
            return
        diff.show_diff(version_diff(left.version, right.version),
                       f"v{left.version.number} and v{right.version.number} have the same "
                       "instructions.")

    # ------------------------------------------------------------------ statuses
    def _update_case(self, case_id: int) -> None:
        """Recompute one case's status from the answers held and redraw its row."""
        if self._sorting:
            self._touched_while_sorting.add(case_id)
        index = self.index_of_case.get(case_id)
        if index is None:
            if self.case is not None and self.case.id == case_id:
                self._show_bar()  # shown before the list was ready: its own status
            return
        status = compare_facts(self.left_answers.get(case_id), self.right_answers.get(case_id))
        row = self.rows[index]
        if row.status != status:
            self.rows[index] = row._replace(status=status)
            counts = self._counts
            counts[row.status] -= 1
            counts[status] = counts.get(status, 0) + 1
            self.case_list.refresh_row(index)
        if index == self.current:
            self._show_bar()

    def on_stream_pane_output_stored(self, event: StreamPane.OutputStored) -> None:
        answer = answer_facts(Answer(event.output, event.label))
        case_id = event.output.case_id
        if event.pane is self.left_pane:
            self.left_answers[case_id] = answer
        elif event.pane is self.right_pane:
            self.right_answers[case_id] = answer
        # The same version on both sides (models mode) or the same model: keep in step.
        self._update_case(case_id)
        self._show_bar()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("label", "rationale", "rerun"):
            pane = self.focused_pane()
            if pane is None or self.case is None:
                return None
            if action == "rerun":
                return True
            out = pane.output
            ok = out is not None and out.status == OutputStatus.OK
            if action == "rationale":
                return True if ok and pane.label is not None else None
            return True if ok else None
        if action == "accept_judge":
            pane = self.focused_pane()
            return True if pane is not None and self._judgement_of(pane) is not None \
                else None
        if action == "judge":
            return True if self.focused_pane() is not None and self._loaded else None
        if action == "step":  # while sorting: says so
            return True if self.rows or (self._sorting and self.case is not None) else None
        if action == "open_case":
            return True if self.rows else None
        if action == "run":
            return True if self.right is not None and self._loaded else None
        return True

    async def action_step(self, delta: int) -> None:
        if not self.rows:
            if self._sorting:
                self.notify("Still sorting the cases (regressions first): j and k work in "
                            "a moment.", timeout=3)
            return
        start = self.current if self.current is not None else -delta
        target = start + delta
        if not 0 <= target < len(self.rows):
            self.notify("first case in the list" if target < 0 else "last case in the list",
                        timeout=2)
            return
        await self._select(target)

    def action_focus_side(self, side: str) -> None:
        pane = self.left_pane if side == "left" else self.right_pane
        pane.focus()

    def action_reload(self) -> None:
        self.load()

    def action_toggle_diff(self) -> None:
        self.toggle_class("-diff")
        if self.has_class("-diff"):
            self._pane_before_diff = self.focused_pane() or self.left_pane
            self.query_one("#compare-diff", VerticalScroll).focus()
        else:
            pane = getattr(self, "_pane_before_diff", None) or self.left_pane
            pane.focus()

    async def action_open_case(self) -> None:
        if self.case is not None:
            await self.open_screen("case_detail", case_id=self.case.id)

    def action_rerun(self) -> None:
        pane = self.focused_pane()
        if pane is not None:
            self._acted_while_sorting |= self._sorting
            pane.rerun()

    def action_label(self, verdict: str) -> None:
        pane = self.focused_pane()
        if pane is None or pane.output is None or pane.output.status != OutputStatus.OK:
            self.notify("no answer to label in this pane yet", severity="warning", timeout=3)
            return
        self._acted_while_sorting |= self._sorting
        chosen, case, asked = Verdict(verdict), self.case, None
        if chosen != Verdict.GOOD and case is not None:  # bad and unsure first ask why
            asked = self.ask(RationaleScreen.for_verdict(
                chosen, case.input, pane.label,
                suggest=self._suggester(pane.output.id, chosen)))
        self.label_answer(pane, chosen, asked)

    def _suggester(self, output_id: int, verdict: Verdict) -> Any:
        """What the rationale dialog calls for the assistant's suggestion."""
        from coevo_tui.assist import rationale

        return partial(rationale.suggest, self.session, output_id, verdict)

    def action_accept_judge(self) -> None:
        pane = self.focused_pane()
        judgement = self._judgement_of(pane) if pane is not None else None
        if pane is None or judgement is None:
            return
        self._acted_while_sorting |= self._sorting
        self.accept_judgement(pane, judgement)

    @work(group="compare-label", exit_on_error=False)
    async def accept_judgement(self, pane: ComparePane, judgement: Judgement) -> None:
        """Label the pane's answer with the judge's verdict (source judge)."""
        output = pane.output
        assert output is not None
        label = await self.store.judgements.accept(judgement.id)
        self._labelled(output, label, [])
        # The label also went to identical answers of the case (carried), which the store
        # does not list here: read the case's answers again, as shown.
        await self._reread_case(output.case_id)
        if self.case is not None and self.case.id == output.case_id:
            await self._show_case(output.case_id)

    def action_judge(self) -> None:
        pane = self.focused_pane()
        side = self.left if pane is self.left_pane else self.right
        if pane is None or side is None:
            return
        start_judge(self.jobs, self.session, side.version, side.model)
        accept = self.key_for("compare.accept_judge", "y")
        self.notify(f"The judge looks at the unlabelled answers of v{side.version.number};"
                    f" its suggestions show here as they come ({accept} accepts one).",
                    timeout=5)

    def action_rationale(self) -> None:
        pane = self.focused_pane()
        if pane is None or pane.output is None or pane.label is None or self.case is None:
            return
        self._acted_while_sorting |= self._sorting
        self.edit_rationale(pane, self.ask(RationaleScreen.for_label(
            pane.label, self.case.input,
            suggest=self._suggester(pane.output.id, pane.label.verdict))))

    @work(group="compare-label", exit_on_error=False)
    async def label_answer(self, pane: ComparePane, verdict: Verdict,
                           asked: Awaitable[str | None] | None = None) -> None:
        """Store a person's label on the pane's answer (the store carries it to identical
        answers), with the rationale `asked` for (`esc` labels without one)."""
        output, case = pane.output, self.case
        assert output is not None and case is not None
        rationale = ((await asked) or "") if asked is not None else ""
        label, carried = await self.store.labels.write(output.id, verdict, rationale)
        self._labelled(output, label, carried)
        if carried:
            self.notify(carried_notice(case.ext_id, verdict, carried), timeout=3)

    @work(group="compare-label", exit_on_error=False)
    async def edit_rationale(self, pane: ComparePane, asked: Awaitable[str | None]) -> None:
        output, label = pane.output, pane.label
        assert output is not None and label is not None
        answer = await asked
        if answer is None or answer == label.rationale:
            return
        # A new label row (the old one stays in history); a carried label so edited
        # becomes the person's own.
        new, carried = await self.store.labels.write(output.id, label.verdict, answer)
        self._labelled(output, new, carried)

    def _labelled(self, output: Output, label: Label, carried: Sequence[Label]) -> None:
        """Reflect a stored label (and the labels it carried) in the panes and statuses."""
        by_output = {label.output_id: label, **{c.output_id: c for c in carried}}
        for pane, answers in ((self.left_pane, self.left_answers),
                              (self.right_pane, self.right_answers)):
            if pane.output is not None and pane.output.id in by_output:
                pane.set_label(by_output[pane.output.id])
            changed = [(case_id, facts) for case_id, facts in answers.items()
                       if facts[FACT_OUTPUT] in by_output]
            for case_id, facts in changed:
                answers[case_id] = with_label_facts(facts, by_output[facts[FACT_OUTPUT]])
        self._update_case(output.case_id)
        self.show_history(output.case_id)
        self.sync_bindings()

    # ------------------------------------------------------------------ choosing sides
    def action_choose_versions(self) -> None:
        if not self.versions or self.left is None or self.right is None:
            return
        self._choose_versions(self.ask(
            VersionPicker(self.versions, self.left.version.number, self.right.version.number)))

    @work(group="compare-choose", exit_on_error=False)
    async def _choose_versions(self, asked: Awaitable[tuple[int, int] | None]) -> None:
        picked = await asked
        if picked is None:
            return
        self._follow_run(None)  # the run (if any) goes on; these sides may not be its
        self.requested = picked
        self.requested_model = None
        self.requested_second_model = None
        self.current = None
        self.load()

    def action_second_model(self) -> None:
        if self.right is None:
            return
        current = self.requested_second_model or ""
        self._second_model(self.ask(ModelPrompt(self.right.version.number, current)))

    @work(group="compare-choose", exit_on_error=False)
    async def _second_model(self, asked: Awaitable[str | None]) -> None:
        answer = await asked
        if answer is None:
            return
        self._follow_run(None)  # the run (if any) goes on; these sides may not be its
        if answer:
            self.requested = (None, self.right.version.number)
            self.requested_second_model = answer
        else:
            self.requested = (None, None)
            self.requested_second_model = None
        self.current = None
        self.load()

    @property
    def list_ready(self) -> bool:
        """Every case's status is known and the list is in navigation order (before
        that, a case is on show but `j`/`k` only say the list is still sorting)."""
        return self._loaded and not self._sorting

    # ------------------------------------------------------------------ running the set
    @property
    def run_summary(self) -> RunSummary | None:
        """The summary of the run followed here (None before one starts)."""
        return self._run.summary if self._run is not None else None

    def run_in_progress(self) -> bool:
        return self._run is not None and self._run.running

    def shows_job(self, job: Job) -> bool:
        """This screen says itself how the run it follows ended (the app stays quiet)."""
        return job is self._run

    def _stop_run(self) -> None:
        if self._run is not None:
            self.jobs.stop(self._run)

    def _follow_run(self, run: TestSetRun | None) -> None:
        """Show `run`'s progress in the bar and its answers in the statuses (None: stop
        following; the run itself goes on)."""
        self._run = run
        if run is not None and run.running and self._run_timer is None:
            self._run_timer = self.set_interval(RUN_REFRESH_S, self._flush_run)
        self._show_bar()

    def _follow_going_run(self) -> None:
        """A run of the revision's version and model already going (started on Label,
        or here before the screen was left): follow it."""
        right = self.right
        if right is None or right.model is None:
            return
        going = self.jobs.running_run(right.version.id, right.model)
        if going is not None and going is not self._run:
            self._follow_run(going)

    def action_run(self) -> None:
        if self.run_in_progress():
            self._stop_run()
            self.notify("run stopped; answers already stored are kept", timeout=4)
            return
        self.run_revision()

    @work(group="compare-run", exclusive=True, exit_on_error=False)
    async def run_revision(self) -> None:
        """Run the revision over every active case, as an app job (it goes on when the
        screen is left); statuses fill in as answers arrive (batched redraws), and the
        panes keep streaming meanwhile (the client serves their calls first)."""
        right = self.right
        assert right is not None
        choice = right.choice or self.session.model_choice()  # UserError: no model
        going = self.jobs.running_run(right.version.id, choice.model)
        if going is None:
            runner = self.session.runner(choice)
            cases = await self.store.cases.all([CaseState.ACTIVE])
            finished = await self.store.outputs.finished_case_ids(right.version.id, choice.model,
                                                          runner.params)
            run = TestSetRun(right.version, choice.model, {c.id for c in cases} - finished)
            going = self.jobs.start(run, runner.run_version(right.version, cases=cases))
        self._follow_run(going)  # type: ignore[arg-type]

    def _run_answering(self, case_id: int, side: Side) -> TestSetRun | None:
        """The run followed here, if it has yet to answer `case_id` for `side`."""
        run = self._run
        if (run is None or not run.running or run.version.id != side.version.id
                or (side.model is not None and run.model != side.model)
                or case_id not in run.pending):
            return None
        return run

    def _on_job_event(self, job_event: JobEvent) -> None:
        """An event of the app's jobs: the run followed here, and the judge's verdicts."""
        if isinstance(job_event.job, AssistJob):
            self._on_assist_event(job_event.event)
            return
        run = self._run
        if job_event.job is not run or run is None or not self.is_attached:
            return
        event = job_event.event
        right = self.right
        if event is JOB_ENDED:
            if self._run_timer is not None:
                self._run_timer.stop()
                self._run_timer = None
            self._flush_run()
            summary = run.summary
            if summary is not None and right is not None:
                self.notify(f"Run of v{run.version.number}: {summary.line()}", timeout=6)
            if self.case is not None and self.case.id in run.pending:
                # Stopped before it answered the case on show: the panes show it again
                # (and a side without an answer asks the model itself).
                self.run_worker(self._show_case(self.case.id), group="compare-reshow",
                                exclusive=True, exit_on_error=False)
            if summary is not None and not summary.halted:
                self.load()  # every status is known now: put the list back in order
            return
        name = type(event).__name__
        case_id = getattr(event, "case_id", None)
        if case_id is not None and self.case is not None and case_id == self.case.id:
            for pane in (self.left_pane, self.right_pane):
                pane.feed(event)  # type: ignore[arg-type]  # a pane following the run
        if name == "RunStarted":
            self._show_bar()
        elif name == "CaseFinished" and right is not None and \
                right.version.id == run.version.id:
            output = event.output  # type: ignore[attr-defined]
            if right.model is None or output.model == right.model:
                self.right_answers[output.case_id] = answer_facts(
                    Answer(output, event.label))  # type: ignore[attr-defined]
                self._run_dirty.add(output.case_id)

    def _on_assist_event(self, event: object) -> None:
        """A judge's verdict on an answer on show appears at once."""
        from coevo_tui.assist.events import Judged

        if isinstance(event, Judged) and self.is_attached:
            self._judgements[event.output_id] = event.judgement
            for pane in (self.left_pane, self.right_pane):
                if pane.output is not None and pane.output.id == event.output_id:
                    pane.show_judgement(self._judgement_of(pane))
            self.sync_bindings()

    def on_unmount(self) -> None:
        run = self._run
        if run is not None and run.running:
            self.app.notify(f"The {run.progress_text()} goes on: X stops it, and Compare "
                            "shows it again.", timeout=5)

    def _flush_run(self) -> None:
        """Redraw the statuses of the cases the run answered since the last flush."""
        dirty, self._run_dirty = self._run_dirty, set()
        for case_id in dirty:
            self._update_case(case_id)
            if self.case is not None and self.case.id == case_id:
                pane = self.right_pane
                if pane.output is None and not pane.is_streaming and self.right is not None:
                    pane.show(self.case, self.right.version, autostream=False)
        self._show_bar()
