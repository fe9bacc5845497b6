"""A rolling heat strip: one row per pinned emotion, one cell per recent token, coloured by z."""

from __future__ import annotations

from collections import deque

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

SATURATION_Z = 4.0


LEVELS = 8  # shades per sign: cells are drawn from a small fixed palette, and runs share one style


def z_colour(value: float) -> Color:
    """Red for negative, green for positive, brighter with |z|, dark grey near zero."""
    strength = min(1.0, abs(value) / SATURATION_Z)
    base = 40
    if value >= 0:
        return Color.from_rgb(base, base + (215 - base) * strength, base)
    return Color.from_rgb(base + (215 - base) * strength, base, base)


PALETTE = {level: Style(color=z_colour(level / LEVELS * SATURATION_Z)) for level in range(-LEVELS, LEVELS + 1)}


def z_level(value: float) -> int:
    return int(np.clip(np.rint(value / SATURATION_Z * LEVELS), -LEVELS, LEVELS))


class HeatStrip(Widget):
    DEFAULT_CSS = "HeatStrip { height: auto; }"

    def __init__(self, *, history: int = 240, label_width: int = 11, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[str] = []
        self.indices: list[int] = []  # pack indices of the rows
        self.history: deque[np.ndarray] = deque(maxlen=history)
        self.label_width = label_width

    def set_rows(self, names: list[str], indices: list[int]) -> None:
        self.rows, self.indices = names, indices
        self.refresh(layout=True)

    def push(self, probes: list[np.ndarray]) -> None:
        self.history.extend(probes)
        self.refresh()

    def clear(self) -> None:
        self.history.clear()
        self.refresh()

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> Text:
        width = max(1, self.size.width - self.label_width - 1)
        recent = list(self.history)[-width:]
        text = Text()
        for number, (name, index) in enumerate(zip(self.rows, self.indices)):
            label = name if len(name) <= self.label_width else name[: self.label_width - 1] + "…"
            text.append(f"{label:<{self.label_width}} ")
            levels = [z_level(float(probe[index])) for probe in recent]
            start = 0
            for end in range(1, len(levels) + 1):  # one append per run of equal shade
                if end == len(levels) or levels[end] != levels[start]:
                    text.append("▇" * (end - start), style=PALETTE[levels[start]])
                    start = end
            if number < len(self.rows) - 1:
                text.append("\n")
        return text
