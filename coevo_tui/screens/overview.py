"""The Overview screen (`o`): how every version did, at a glance.

Top to bottom: which cases and model are counted; a bar chart of the pass rate per
version (good / labelled); a table with one row per version (pass rate, verdict counts,
errors, cases not run yet, the main statuses against the parent version, cost and mean
latency); then, for the version under the cursor, every status count against its parent,
its note, and the cases and rationales that motivated it (its provenance).

Counted: the active cases, and per version the newest answer of one model (mixing models
would compare a model with another, not a version with another). That model is the one
configured for the project when it has answers, else the one with the most answers; `m`
cycles through the models that have answers. `enter` compares the version under the
cursor with its parent.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Header, Static

from coevo_tui.domain.errors import UserError
from coevo_tui.domain.status import ComparisonStatus, VersionSummary
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.services.overview import (
    VersionRow,
    pick_model,
    read_motivations,
    version_rows_from_facts,
)
from coevo_tui.widgets.case_table import CaseTable, Column
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.jobs_line import JobsLine
from coevo_tui.widgets.pass_rate_chart import PassRateBar, PassRateChart
from coevo_tui.widgets.provenance import provenance_text
from coevo_tui.widgets.status_badge import status_label

S = ComparisonStatus


# ---------------------------------------------------------------------- plain data
def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def latency_text(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def cost_text(summary: VersionSummary) -> str:
    if summary.ok + summary.errors == 0:
        return "-"
    return f"${summary.cost:.4f}" if summary.cost < 100 else f"${summary.cost:,.0f}"


def _count(summary: VersionSummary, *statuses: ComparisonStatus) -> int:
    return sum(summary.statuses.get(s, 0) for s in statuses)


def _status_cell(row: VersionRow, *statuses: ComparisonStatus) -> str:
    if row.parent_number is None:
        return "-"
    return str(_count(row.summary, *statuses))


def version_columns() -> list[Column[VersionRow]]:
    """The version table's columns (they fit 80 columns)."""
    def n(value: int) -> str:
        return str(value)

    return [
        Column("version", "Ver", lambda r: f"v{r.version.number}", width=4),
        Column("pass", "Pass", lambda r: percent(r.summary.pass_rate).rjust(4), width=4),
        Column("good", "Good", lambda r: n(r.summary.good).rjust(4), width=4,
               style=lambda r: "case-table--good" if r.summary.good else None),
        Column("bad", " Bad", lambda r: n(r.summary.bad).rjust(4), width=4,
               style=lambda r: "case-table--bad" if r.summary.bad else None),
        Column("unsure", "Uns.", lambda r: n(r.summary.unsure).rjust(4), width=4,
               style=lambda r: "case-table--unsure" if r.summary.unsure else None),
        Column("unlabelled", "Unl.", lambda r: n(r.summary.unlabelled).rjust(4), width=4),
        Column("errors", "Err", lambda r: n(r.summary.errors).rjust(3), width=3,
               style=lambda r: "case-table--error" if r.summary.errors else None),
        Column("missing", "Todo", lambda r: n(r.summary.missing).rjust(4), width=4,
               style=lambda r: "case-table--muted"),
        Column("fixed", "▲fix", lambda r: _status_cell(r, S.FIXED).rjust(4), width=4),
        Column("regressed", "▼reg", lambda r: _status_cell(r, S.REGRESSED).rjust(4), width=4,
               style=lambda r: "case-table--bad" if _count(r.summary, S.REGRESSED) else None),
        Column("changed", "?chg",
               lambda r: _status_cell(r, S.CHANGED_UNLABELLED).rjust(4), width=4),
        Column("cost", "    Cost", lambda r: cost_text(r.summary).rjust(8), width=8),
        Column("latency", "Latency", lambda r: latency_text(r.summary.mean_latency_ms).rjust(7),
               width=7),
    ]


def status_counts_text(row: VersionRow, width: int = 10_000) -> Text:
    """Every status count of a version against its parent, most worth a look first,
    wrapped to `width` between two counts (never inside one)."""
    text = Text()
    if row.parent_number is None:
        text.append(f"v{row.version.number} is the first version: nothing to compare with.",
                    style="italic")
        return text
    text.append(f"v{row.version.number} against v{row.parent_number}:", style="bold")
    parts = [(s, row.summary.statuses[s]) for s in ComparisonStatus if row.summary.statuses.get(s)]
    if not parts:
        text.append(" no cases", style="italic")
    used = text.cell_len
    for number, (status, count) in enumerate(parts):
        part = f"{status_label(status)} {count}"
        separator = " · " if number else " "
        if used + len(separator) + cell_len(part) > width and used > 0:
            text.append("\n")
            separator, used = "", 0
        text.append(separator)
        style = "bold" if status in (S.REGRESSED, S.CHANGED_UNLABELLED, S.FIXED) else ""
        text.append(part, style=style)
        used += len(separator) + cell_len(part)
    return text


class StatusCounts(Widget):
    """`status_counts_text` of one version, wrapped to the widget's width."""

    row: reactive[VersionRow | None] = reactive(None, layout=True)

    def render(self) -> Text:
        if self.row is None:
            return Text("")
        return status_counts_text(self.row, max(self.content_region.width, 20))


def _row_key(row: VersionRow) -> int:
    return row.version.number


# ---------------------------------------------------------------------- the screen
class OverviewScreen(CoevoScreen):
    """Pass rate per version (a chart), counts by status, cost, latency, provenance."""

    CSS_PATH = stylesheet("overview.tcss")
    AUTO_FOCUS = "#overview-versions"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="overview.back"),
        Binding("enter", "compare", "Compare with parent", id="overview.compare",
                tooltip="Compare the version under the cursor with its parent version"),
        Binding("m", "next_model", "Model", id="overview.model",
                tooltip="Count the answers of another model"),
        Binding("ctrl+r", "reload", "Reload", id="overview.reload", show=False),
    ]

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.requested_model = model
        self.model: str | None = None
        self.models: list[str] = []
        self.rows: list[VersionRow] = []

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("loading…", id="overview-scope")
        with VerticalScroll(id="overview-body"):
            yield Static("Pass rate (good / labelled) per version", classes="overview-heading")
            yield PassRateChart(id="overview-chart")
            yield Static("Versions", classes="overview-heading")
            yield CaseTable(version_columns(), row_key=_row_key, empty_message="loading…",
                            id="overview-versions")
            yield StatusCounts(id="overview-statuses")
            yield Static("", id="overview-provenance")
        yield JobsLine()
        yield CoevoFooter()

    @property
    def table(self) -> CaseTable[VersionRow]:
        return self.query_one("#overview-versions", CaseTable)

    def on_mount(self) -> None:
        self.title = self.app.title
        self.sub_title = "Overview"
        self.load()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "compare":
            row = self.table.current_row
            return None if row is None or row.parent_number is None else True
        if action == "next_model":
            return True if len(self.models) > 1 else None
        return True

    # ------------------------------------------------------------------ loading
    def _configured_model(self) -> str | None:
        if self.requested_model:
            return self.requested_model
        try:
            return self.session.model_choice().model
        except UserError:
            return None

    @work(group="overview-load", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        """Read versions, active cases and each version's answers; build the rows."""
        store = self.store
        versions = await store.versions.all()
        active = await store.cases.active_ids()
        totals: dict[str, int] = {}
        for version in versions:
            for model, count in (await store.outputs.cases_per_model(version.id)).items():
                totals[model] = totals.get(model, 0) + count
        self.models = sorted(totals)
        if self.model is None or self.model not in totals:
            self.model = pick_model(self._configured_model(), totals)
        facts = {v.id: await store.answers.facts_per_case(v.id, self.model) for v in versions}
        motivations = await read_motivations(store, versions)
        # 100,000 cases x versions: seconds of counting, off the event loop.
        self.rows = await asyncio.to_thread(version_rows_from_facts, versions, active, facts,
                                            motivations)
        self._show(len(active))

    def _show(self, active: int) -> None:
        if self.model is None:
            model = "no answers yet"
        elif not self.models:
            model = f"model {self.model} (no answers yet)"
        else:
            model = f"model {self.model}"
        others = f" (m: {len(self.models)} models)" if len(self.models) > 1 else ""
        self.query_one("#overview-scope", Static).update(
            f"{active:,} active cases · {model}{others}")
        chart = self.query_one(PassRateChart)
        chart.bars = tuple(
            PassRateBar(f"v{r.version.number}", r.summary.good, r.summary.labelled)
            for r in self.rows
        )
        table = self.table
        table.empty_message = "no versions"
        keep = table.current_row.version.number if table.current_row is not None else (
            self.rows[-1].version.number if self.rows else None)
        table.set_rows(self.rows, keep_cursor_on=keep)
        self._show_selected()
        self.refresh_bindings()

    def _show_selected(self) -> None:
        row = self.table.current_row
        statuses = self.query_one("#overview-statuses", StatusCounts)
        provenance = self.query_one("#overview-provenance", Static)
        statuses.row = row
        if row is None:
            provenance.update("")
            return
        provenance.update(provenance_text(row))

    def on_case_table_cursor_moved(self, event: CaseTable.CursorMoved) -> None:
        if event.table is self.table:
            self._show_selected()
            self.refresh_bindings()

    # ------------------------------------------------------------------ actions
    async def action_compare(self) -> None:
        row = self.table.current_row
        if row is None or row.parent_number is None:
            return
        app: Any = self.app
        await app.open_screen("compare", baseline=row.parent_number,
                              revision=row.version.number, model=self.model)

    def action_next_model(self) -> None:
        if len(self.models) < 2:
            return
        index = self.models.index(self.model) if self.model in self.models else -1
        self.model = self.models[(index + 1) % len(self.models)]
        self.load()

    def action_reload(self) -> None:
        self.load()

