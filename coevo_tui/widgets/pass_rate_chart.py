"""A horizontal bar chart of pass rates, drawn with block characters.

One line per version: its name, a bar whose filled part is the pass rate, the percentage
and the counts behind it. It needs no plotting library, keeps to the width it is given
(80 columns included), and reads the same without colour: the filled part is `█` (with
eighth blocks for precision) and the rest `░`, so the length says the rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import StyleType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉"
FULL = "█"
EMPTY = "░"
MIN_BAR = 10


@dataclass(frozen=True)
class PassRateBar:
    """One bar: `name` (e.g. "v3"), `good` of `labelled`; `note` follows the counts."""

    name: str
    good: int
    labelled: int
    note: str = ""

    @property
    def rate(self) -> float | None:
        return None if self.labelled == 0 else self.good / self.labelled


def bar_cells(rate: float, width: int) -> str:
    """`width` cells: the rate's share filled (to an eighth of a cell), the rest empty."""
    eighths = round(max(0.0, min(1.0, rate)) * width * 8)
    full, part = divmod(eighths, 8)
    text = FULL * full
    if part and full < width:
        text += _EIGHTHS[part]
    return text + EMPTY * (width - len(text))


def chart_lines(bars: Sequence[PassRateBar], width: int, *, filled: StyleType = "",
                empty: StyleType = "dim") -> list[Text]:
    """The chart as one Text per bar, each at most `width` cells wide; `filled` and
    `empty` style the two parts of a bar."""
    if not bars:
        return [Text("no versions yet", style="italic")]
    name_width = max(len(b.name) for b in bars)
    counts = [f"{b.good}/{b.labelled}" for b in bars]
    counts_width = max(len(c) for c in counts)
    # name, space, bar, space, "100%", space, counts, then the note if room is left
    fixed = name_width + 1 + 1 + 4 + 1 + counts_width
    bar_width = max(MIN_BAR, min(width - fixed, 50))
    lines = []
    for bar, count in zip(bars, counts):
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{bar.name:<{name_width}} ", style="bold")
        rate = bar.rate
        if rate is None:  # the words sit where the bar would be
            line.append(f"{'nothing labelled ':·<{bar_width}}"[:bar_width], style="dim")
            line.append("  n/a", style="dim")
        else:
            cells = bar_cells(rate, bar_width)
            done = len(cells.rstrip(EMPTY))
            line.append(cells[:done], style=filled)
            line.append(cells[done:], style=empty)
            line.append(" ")
            line.append(f"{rate:>4.0%}", style="bold")
            line.append(f" {count:>{counts_width}}")
        if bar.note:
            line.append(f"  {bar.note}", style="dim")
        line.truncate(width, overflow="ellipsis")
        lines.append(line)
    return lines


class PassRateChart(Widget):
    """The pass rate of each version as a bar (see the module docstring).

    Set `bars` to redraw. The filled and empty parts take the component classes
    `pass-rate-chart--filled` and `pass-rate-chart--empty` (colour only; the characters
    already differ).
    """

    COMPONENT_CLASSES = {"pass-rate-chart--filled", "pass-rate-chart--empty"}

    bars: reactive[tuple[PassRateBar, ...]] = reactive((), layout=True)

    def render(self) -> Text:
        width = max(self.content_region.width or self.size.width, 20)
        filled = self.get_component_rich_style("pass-rate-chart--filled", partial=True)
        empty = self.get_component_rich_style("pass-rate-chart--empty", partial=True)
        return Text("\n").join(chart_lines(self.bars, width, filled=filled, empty=empty))

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[override]
        return max(len(self.bars), 1)
