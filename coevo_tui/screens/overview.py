"""The Overview screen (`o`): how every version did, at a glance.

Top to bottom: which cases and model are counted; a bar chart of the pass rate per
version (good / labelled); a table with one row per version (pass rate, verdict counts,
errors, cases not run yet, the main statuses against the parent version, cost and mean
latency); then, for the version under the cursor, every status count against its parent,
its note, and the cases and rationales that motivated it (its provenance). Below: how
far the judge agrees with the user, per version (percent, Cohen's kappa or why it is
undefined, and the 3x3 confusion of the version under the cursor), and the policy
coverage of the newest version: per rule, the active cases that probe it, the candidates
waiting and the pass rate, a rule without cases marked `!` (no colour needed). `J` and
`P` scroll to those two.

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
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Header, Static

from coevo_tui.domain.agreement import VERDICTS, Agreement
from coevo_tui.domain.coverage import RuleCoverage, coverage
from coevo_tui.domain.errors import UserError
from coevo_tui.domain.model import PromptVersion
from coevo_tui.domain.status import FACT_VERDICT, ComparisonStatus, VersionSummary
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.services.judging import agreement_per_version
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


def agreement_text(rows: list[VersionRow], agreements: dict[int, Agreement],
                   selected: VersionRow | None) -> Group:
    """Judge-human agreement: one line per version (percent and kappa, or why kappa is
    undefined), then the 3x3 confusion of `selected` (rows: the user's verdict, columns:
    the judge's)."""
    lines = Text()
    for number, row in enumerate(rows):
        found = agreements.get(row.version.id)
        if number:
            lines.append("\n")
        lines.append(f"v{row.version.number} ", style="bold")
        lines.append(found.line() if found is not None else "not read yet",
                     style="" if found is not None and found.n else "italic")
    parts: list[object] = [lines]
    found = agreements.get(selected.version.id) if selected is not None else None
    if selected is not None and found is not None and found.n:
        parts.append(Text(f"\nConfusion under v{selected.version.number} (rows: your "
                          "label, columns: the judge's)", style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        for _ in VERDICTS:
            grid.add_column(justify="right")
        grid.add_row("", *[Text(f"judge {v.value}", style="italic") for v in VERDICTS])
        for human in VERDICTS:
            grid.add_row(Text(f"you {human.value}", style="italic"), *[
                Text(str(found.confusion[(human, judge)]),
                     style="bold" if human == judge else "")
                for judge in VERDICTS])
        parts.append(grid)
    return Group(*parts)


def coverage_text(version: PromptVersion | None, rules: list[RuleCoverage]) -> Table | Text:
    """The policy coverage of `version`: per rule, the active cases, the candidates
    waiting and the pass rate; a rule with no active case is marked `!` and says so."""
    if version is None:
        return Text("no versions", style="italic")
    if not rules or all(r.number is None for r in rules):
        return Text(f"v{version.number}'s rules are not extracted yet: G (on Cases or "
                    "Candidates) extracts them when it asks for new cases.", style="italic")
    table = Table.grid(padding=(0, 1))
    table.add_column(width=1)  # the marker
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    for _ in range(3):
        table.add_column(justify="right")
    table.add_column(no_wrap=True)
    table.add_row("", Text("Rule", style="bold"), Text("Cases", style="bold"),
                  Text("Waiting", style="bold"), Text("Pass", style="bold"), "")
    for rule in rules:
        name = rule.title if rule.number is None else f"{rule.number} {rule.title}"
        gap = rule.number is not None and rule.uncovered
        table.add_row(Text("!", style="bold") if gap else "",
                      Text(name, style="bold" if gap else ""),
                      str(rule.active_cases), str(rule.candidates_waiting),
                      percent(rule.pass_rate),
                      Text("no cases", style="bold") if gap else "")
    return table


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
        Binding("J", "scroll_to('overview-agreement-heading')", "Judge agreement",
                id="overview.agreement", show=False,
                tooltip="Scroll to how far the judge agrees with your labels"),
        Binding("P", "scroll_to('overview-coverage-heading')", "Policy coverage",
                id="overview.coverage", show=False,
                tooltip="Scroll to the rules of the newest version and the cases per rule"),
        Binding("ctrl+r", "reload", "Reload", id="overview.reload", show=False),
    ]

    def __init__(self, model: str | None = None) -> None:
        super().__init__()
        self.requested_model = model
        self.model: str | None = None
        self.models: list[str] = []
        self.rows: list[VersionRow] = []
        self.agreements: dict[int, Agreement] = {}
        self.coverage: list[RuleCoverage] = []
        self.newest: PromptVersion | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon="")
        yield Static("loading…", id="overview-scope")
        with VerticalScroll(id="overview-body"):
            yield Static("Pass rate (good / labelled) per version", classes="overview-heading")
            yield PassRateChart(id="overview-chart")
            yield Static("Versions", classes="overview-heading", id="overview-versions-heading")
            yield CaseTable(version_columns(), row_key=_row_key, empty_message="loading…",
                            id="overview-versions")
            yield StatusCounts(id="overview-statuses")
            yield Static("", id="overview-provenance")
            yield Static("Judge agreement (the judge's suggestions against your labels)",
                         classes="overview-heading", id="overview-agreement-heading")
            yield Static("", id="overview-agreement")
            yield Static("Policy coverage", classes="overview-heading",
                         id="overview-coverage-heading")
            yield Static("", id="overview-coverage")
        yield JobsLine()
        yield CoevoFooter()

    @property
    def table(self) -> CaseTable[VersionRow]:
        return self.query_one("#overview-versions", CaseTable)

    def on_mount(self) -> None:
        self.title = self.app.title
        self.sub_title = "Overview"
        agreement = self.key_for("overview.agreement", "J")
        coverage = self.key_for("overview.coverage", "P")
        self.query_one("#overview-versions-heading", Static).update(Text.assemble(
            ("Versions", "bold"), (f"  (below: {agreement} judge agreement, {coverage} policy "
                                   "coverage)", "dim")))
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
        self.agreements = await agreement_per_version(store, self.model)
        self.newest = versions[-1] if versions else None
        self.coverage = []
        rules = await store.rules.for_version(self.newest.id) if self.newest else []
        if self.newest is not None and rules:
            # As services.coverage.policy_coverage counts, from the answers read above
            # (reading every case's label again costs ~0.4 s at 100,000 cases).
            verdicts = {case_id: fact[FACT_VERDICT]
                        for case_id, fact in facts.get(self.newest.id, {}).items()}
            case_rules = [(case_id, rule, state)
                          for case_id, rule, state, _ in await store.cases.rule_states()]
            self.coverage = coverage(rules, case_rules, verdicts, include_unassigned=True)
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
        self.query_one("#overview-agreement", Static).update(
            agreement_text(self.rows, self.agreements, row))
        heading = "Policy coverage" + (f" of v{self.newest.number} (! marks a rule no case "
                                       "probes)" if self.newest is not None else "")
        self.query_one("#overview-coverage-heading", Static).update(heading)
        self.query_one("#overview-coverage", Static).update(
            coverage_text(self.newest, self.coverage))
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

    def action_scroll_to(self, widget_id: str) -> None:
        self.query_one(f"#{widget_id}").scroll_visible(top=True, animate=False)

    def action_reload(self) -> None:
        self.load()

