"""`enter` on a case: its full input, tags, note, source, state, dates and outputs."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Header, Static

from coevo_tui.domain.model import Case, Label, Output, PromptVersion
from coevo_tui.screens.base import CoevoScreen, stylesheet
from coevo_tui.widgets.footer import CoevoFooter
from coevo_tui.widgets.jobs_line import JobsLine


def case_text(case: Case) -> Text:
    """The case's fields, one per line, NO_COLOR-safe (bold labels, no colour needed)."""
    text = Text()
    for label, value in (
        ("Id", case.ext_id),
        ("State", case.state.value),
        ("Source", case.source.value
         + (f" (from case {case.origin_case_id})" if case.origin_case_id else "")),
        ("Tags", " ".join(f"#{t}" for t in case.tags) or "-"),
        ("Created", case.created_at),
        ("Updated", case.updated_at),
    ):
        text.append(f"{label:<8}", style="bold")
        text.append(f"{value}\n")
    if case.note:
        text.append("Note    ", style="bold")
        text.append(f"{case.note}\n")
    return text


def outputs_text(outputs: list[Output], labels: dict[int, Label],
                 versions: dict[int, PromptVersion]) -> Text:
    """Each output of the case: version, model, status, label and the text itself."""
    text = Text()
    if not outputs:
        text.append("No outputs yet: run the test set (R) to get some.", style="dim")
        return text
    for output in outputs:
        version = versions.get(output.version_id)
        label = labels.get(output.id)
        head = f"v{version.number if version else '?'}  {output.model}  {output.status.value}"
        if label is not None:
            head += f"  [{label.verdict.value.upper()}]"
            if label.source.value != "human":
                head += f" ({label.source.value})"
        text.append(head + "\n", style="bold")
        body = output.text if output.status.value == "ok" else (output.error or "")
        text.append(body.rstrip() + "\n")
        if label is not None and label.rationale:
            text.append("Rationale: ", style="bold")
            text.append(label.rationale + "\n")
        text.append("\n")
    return text


class CaseDetailScreen(CoevoScreen):
    """One case in full. esc goes back to the table."""

    CSS_PATH = stylesheet("case_detail.tcss")

    BINDINGS = [
        Binding("escape,backspace", "app.pop_screen", "Back", id="case_detail.back"),
        Binding("up,k", "scroll('up')", "Scroll up", show=False, id="case_detail.up"),
        Binding("down,j", "scroll('down')", "Scroll down", show=False, id="case_detail.down"),
    ]

    def __init__(self, case_id: int) -> None:
        super().__init__()
        self.case_id = case_id

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="case-detail-body"):
            yield Static("loading…", id="case-detail-fields")
            yield Static("Input", classes="case-detail-heading")
            yield Static("", id="case-detail-input", classes="case-detail-input")
            yield Static("Outputs", classes="case-detail-heading")
            yield Static("", id="case-detail-outputs")
        yield JobsLine()
        yield CoevoFooter()

    def on_mount(self) -> None:
        self.load()

    @work(group="case-detail", exit_on_error=False)
    async def load(self) -> None:
        case = await self.store.cases.get(self.case_id)
        self.title = f"Case {case.ext_id}"
        self.sub_title = case.state.value
        self.query_one("#case-detail-fields", Static).update(case_text(case))
        self.query_one("#case-detail-input", Static).update(Text(case.input))
        outputs = await self.store.outputs.of_case(self.case_id)
        labels = await self.store.labels.current_by_output(o.id for o in outputs)
        versions = {v.id: v for v in await self.store.versions.all()}
        self.query_one("#case-detail-outputs", Static).update(
            outputs_text(outputs, labels, versions)
        )

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#case-detail-body", VerticalScroll)
        if direction == "up":
            body.scroll_up()
        else:
            body.scroll_down()

