"""Signed horizontal bars: negative values grow left of the centre line, positive ones right.

ProgressBar and Sparkline cannot show negative values, and probe readouts are signed.
Drawn with the line API (segments, no Rich text) because it redraws on every token.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from emolab.tui.widgets.cached_lines import CachedLines
from emolab.tui.widgets.labels import fit_label

POSITIVE, NEGATIVE = Style(color="green"), Style(color="red")
AXIS, TITLE, EMPTY = Style(color="bright_black"), Style(bold=True), Style(color="bright_black")


class SignedBars(CachedLines):
    DEFAULT_CSS = "SignedBars { height: auto; min-height: 1; }"

    def __init__(self, *, scale: float = 4.0, label_width: int = 11, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[tuple[str, float]] = []
        self.title = ""
        self.scale = scale  # |value| that fills half the bar
        self.label_width = label_width

    def show(self, rows: Sequence[tuple[str, float]], title: str = "") -> None:
        resized = len(rows) != len(self.rows) or bool(title) != bool(self.title)
        self.rows = list(rows)
        self.title = title
        self.redraw(layout=resized)  # a new layout of the side panel per token would stall the screen

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.rows) + (1 if self.title else 0))

    def draw(self) -> list[Strip]:
        base, width = self.rich_style, self.size.width
        half = max(2, (width - self.label_width - 8) // 2)
        lines: list[list[Segment]] = []
        if self.title:
            lines.append([Segment(self.title[:width], base + TITLE)])
        if not self.rows:
            lines.append([Segment("no readout yet", base + EMPTY)])
        for name, value in self.rows:
            filled = min(half, round(abs(value) / self.scale * half))
            colour = base + (POSITIVE if value >= 0 else NEGATIVE)
            left = " " * (half - filled) + "█" * filled if value < 0 else " " * half
            right = "█" * filled + " " * (half - filled) if value >= 0 else " " * half
            lines.append(
                [
                    Segment(fit_label(name, self.label_width) + " ", base),
                    Segment(left, colour),
                    Segment("│", base + AXIS),
                    Segment(right, colour),
                    Segment(f" {value:+5.1f}", colour),
                ]
            )
        return [Strip(segments).adjust_cell_length(width, base) for segments in lines]
