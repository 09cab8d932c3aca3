"""A virtual table: renders only the visible rows, so 100,000 cases cost no more than 20.

Textual's DataTable builds per-row structures and takes seconds to fill with 100,000 rows.
`CaseTable` keeps a reference to a sequence of light rows (tuples), sets its virtual height
to the row count, and produces a Strip per visible line in `render_line`. The header line
stays put while the rows scroll under it.

Columns are data: a `Column` says how to get a cell's text (and optionally a style class)
from a row, so later features add verdict or comparison columns by appending a Column.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Row = TypeVar("Row")

# Control characters would move the terminal's cursor; tabs would break column alignment.
_PRINTABLE = {c: " " for c in [*range(0, 32), 127]}


def cell_text(text: str) -> str:
    """`text` made safe for one table cell (no control characters)."""
    return text.translate(_PRINTABLE)


@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column: `cell(row)` gives the text; `width` 0 means "take the remaining width".

    `style(row)` may name a component class of the table (e.g. "case-table--archived") to
    style that cell; None keeps the row's style.
    """

    key: str
    label: str
    cell: Callable[[Row], str]
    width: int = 0
    min_width: int = 8
    style: Callable[[Row], str | None] | None = None


class CaseTable(ScrollView, Generic[Row], can_focus=True, inherit_bindings=False):
    """A scrolling table over a sequence of rows, with a cursor row and a fixed header."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="table.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="table.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="table.page_down"),
        Binding("home,g", "jump('home')", "First row", show=False, id="table.first"),
        Binding("end,G", "jump('end')", "Last row", show=False, id="table.last"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "case-table--header",
        "case-table--cursor",
        "case-table--empty",
        "case-table--archived",
        "case-table--candidate",
        "case-table--muted",
        "case-table--good",
        "case-table--bad",
        "case-table--unsure",
        "case-table--error",
    }

    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class CursorMoved(Message):
        """The cursor moved to `row` (None when the table is empty)."""

        def __init__(self, table: CaseTable[Any], row: Any | None) -> None:
            self.table = table
            self.row = row
            super().__init__()

        @property
        def control(self) -> CaseTable[Any]:
            return self.table

    def __init__(self, columns: Sequence[Column[Row]], *, row_key: Callable[[Row], Any],
                 empty_message: str = "no rows", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column[Row]] = list(columns)
        self.row_key = row_key
        self._rows: Sequence[Row] = ()
        self._empty_message = empty_message
        self._widths: list[int] = []
        self._widths_for = -1

    # ------------------------------------------------------------------ data
    @property
    def rows(self) -> Sequence[Row]:
        return self._rows

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def current_row(self) -> Row | None:
        """The row under the cursor, or None when the table is empty."""
        if 0 <= self.cursor_row < len(self._rows):
            return self._rows[self.cursor_row]
        return None

    @property
    def empty_message(self) -> str:
        return self._empty_message

    @empty_message.setter
    def empty_message(self, message: str) -> None:
        self._empty_message = message
        if not self._rows:
            self.refresh()

    def set_rows(self, rows: Sequence[Row], *, keep_cursor_on: Any = None) -> None:
        """Show `rows` (kept by reference, not copied). The cursor stays on the row with key
        `keep_cursor_on` if given and present, else on the same index, clamped."""
        self._rows = rows
        index = self.cursor_row
        if keep_cursor_on is not None:
            found = self.index_of(keep_cursor_on)
            if found is not None:
                index = found
        self._update_virtual_size()
        self._move_cursor(index, force_message=True)
        self.refresh()

    def index_of(self, key: Any) -> int | None:
        """The index of the row with `key`. Bisects first (rows in key order, as the Cases
        screen keeps them, make this O(log n)); otherwise falls back to a scan."""
        rows, row_key = self._rows, self.row_key
        try:
            i = bisect_left(rows, key, key=row_key)
        except TypeError:  # keys that do not compare: scan
            i = len(rows)
        if i < len(rows) and row_key(rows[i]) == key:
            return i
        for i, row in enumerate(rows):
            if row_key(row) == key:
                return i
        return None

    def refresh_row(self, index: int) -> None:
        """Repaint one row (after its data changed in place)."""
        y = index - int(self.scroll_y) + 1
        if 1 <= y < self.size.height:
            # refresh_lines takes a line of the whole content (it subtracts the scroll
            # offset itself): row `index` is content line index + 1, under the header.
            self.refresh_lines(index + 1)

    def set_columns(self, columns: Sequence[Column[Row]]) -> None:
        self.columns = list(columns)
        self._widths_for = -1
        self.refresh()

    # ------------------------------------------------------------------ geometry
    @property
    def _page_height(self) -> int:
        """How many rows fit under the header."""
        return max(self.scrollable_content_region.height - 1, 1)

    def _update_virtual_size(self) -> None:
        width = self.scrollable_content_region.width
        self.virtual_size = Size(width, len(self._rows) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._widths_for = -1
        self._scroll_cursor_into_view()

    def _column_widths(self, width: int) -> list[int]:
        if self._widths_for == width:
            return self._widths
        gaps = max(len(self.columns) - 1, 0)
        fixed = sum(c.width for c in self.columns if c.width)
        flexible = [c for c in self.columns if not c.width]
        spare = width - fixed - gaps
        share = max(spare // len(flexible), 0) if flexible else 0
        widths = [c.width or max(share, c.min_width) for c in self.columns]
        # Give the last flexible column what integer division left over.
        if flexible and spare > share * len(flexible):
            last = max(i for i, c in enumerate(self.columns) if not c.width)
            widths[last] += spare - share * len(flexible)
        self._widths, self._widths_for = widths, width
        return widths

    # ------------------------------------------------------------------ cursor
    def _move_cursor(self, index: int, *, force_message: bool = False) -> None:
        count = len(self._rows)
        index = min(max(index, 0), max(count - 1, 0))
        old = self.cursor_row
        if index != old or force_message:
            self.cursor_row = index
            self.refresh_row(old)
            self.refresh_row(index)
            self.post_message(self.CursorMoved(self, self.current_row))
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        page = self._page_height
        index = self.cursor_row
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + page:
            self.scroll_to(y=index - page + 1, animate=False, immediate=True)

    def move_cursor_to(self, index: int) -> None:
        """Put the cursor on row `index` (clamped) and scroll it into view."""
        self._move_cursor(index)

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        page = self._page_height
        self.scroll_to(y=int(self.scroll_y) + direction * page, animate=False, immediate=True)
        self._move_cursor(self.cursor_row + direction * page)

    def action_jump(self, where: str) -> None:
        self._move_cursor(0 if where == "home" else len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move_cursor(int(self.scroll_y) + event.y - 1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        # Scrolling with the wheel moves the view; keep the cursor on screen with it.
        self.call_after_refresh(self._clamp_cursor_to_view)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.call_after_refresh(self._clamp_cursor_to_view)

    def _clamp_cursor_to_view(self) -> None:
        top = int(self.scroll_y)
        bottom = top + self._page_height - 1
        if not top <= self.cursor_row <= bottom:
            self._move_cursor(min(max(self.cursor_row, top), bottom))

    # ------------------------------------------------------------------ rendering
    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._render_header(width, base + self._style("case-table--header"))
        index = int(self.scroll_y) + y - 1
        rows = self._rows
        if not rows:
            if y == 1:
                text = set_cell_size(f" {self._empty_message}", width)
                return Strip([Segment(text, base + self._style("case-table--empty"))], width)
            return Strip.blank(width, base)
        if index >= len(rows):
            return Strip.blank(width, base)
        row = rows[index]
        row_style = base
        if index == self.cursor_row:
            row_style = base + self._style("case-table--cursor")
            if self.app.no_color:  # colours are stripped: reverse video still shows
                row_style += Style(reverse=True)
        return self._render_row(row, width, row_style)

    def _render_header(self, width: int, style: Style) -> Strip:
        widths = self._column_widths(width)
        cells = [set_cell_size(c.label, w) for c, w in zip(self.columns, widths)]
        text = set_cell_size(" ".join(cells), width)
        return Strip([Segment(text, style)], width)

    def _render_row(self, row: Row, width: int, row_style: Style) -> Strip:
        widths = self._column_widths(width)
        segments: list[Segment] = []
        used = 0
        gap = Segment(" ", row_style)
        for number, (column, column_width) in enumerate(zip(self.columns, widths)):
            if number:
                segments.append(gap)
                used += 1
            text = cell_text(column.cell(row))
            if cell_len(text) > column_width:
                text = set_cell_size(text, max(column_width - 1, 0)) + "…"
            else:
                text = set_cell_size(text, column_width)
            style = row_style
            if column.style is not None:
                name = column.style(row)
                if name:
                    style = row_style + self._style(name)
            segments.append(Segment(text, style))
            used += column_width
        strip = Strip(segments, used)
        if used != width:
            strip = strip.adjust_cell_length(width, row_style)
        return strip
