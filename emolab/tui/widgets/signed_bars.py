"""Signed horizontal bars: negative values grow left of the centre line, positive ones right.

ProgressBar and Sparkline cannot show negative values, and probe readouts are signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget


class SignedBars(Widget):
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
        self.refresh(layout=resized)  # a new layout of the side panel per token would stall the screen

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.rows) + (1 if self.title else 0))

    def render(self) -> Text:
        half = max(2, (self.size.width - self.label_width - 8) // 2)
        text = Text()
        if self.title:
            text.append(self.title[: self.size.width] + "\n", style="bold")
        if not self.rows:
            text.append("no readout yet", style="bright_black")
        for number, (name, value) in enumerate(self.rows):
            filled = min(half, round(abs(value) / self.scale * half))
            colour = "green" if value >= 0 else "red"
            label = name if len(name) <= self.label_width else name[: self.label_width - 1] + "…"
            text.append(f"{label:<{self.label_width}} ")
            text.append(" " * (half - filled) if value < 0 else " " * half)
            if value < 0:
                text.append("█" * filled, style=colour)
            text.append("│", style="bright_black")
            if value >= 0:
                text.append("█" * filled, style=colour)
                text.append(" " * (half - filled))
            else:
                text.append(" " * half)
            text.append(f" {value:+5.1f}", style=colour)
            if number < len(self.rows) - 1:
                text.append("\n")
        return text
