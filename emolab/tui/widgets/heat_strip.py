"""A rolling heat strip: one row per pinned emotion, one cell per recent token, coloured by z."""

from __future__ import annotations

from collections import deque
from itertools import pairwise

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from emolab.tui.widgets.cached_lines import CachedLines
from emolab.tui.widgets.labels import fit_label

SATURATION_Z = 4.0


LEVELS = 8  # shades per sign: cells are drawn from a small fixed palette, and runs share one style


def z_colour(value: float) -> Color:
    """Red for negative, green for positive, brighter with |z|, dark grey near zero."""
    strength = min(1.0, abs(value) / SATURATION_Z)
    base = 40
    if value >= 0:
        return Color.from_rgb(base, base + (215 - base) * strength, base)
    return Color.from_rgb(base + (215 - base) * strength, base, base)


SHADES = {level: Style(color=z_colour(level / LEVELS * SATURATION_Z)) for level in range(-LEVELS, LEVELS + 1)}


def z_levels(values: np.ndarray) -> np.ndarray:
    """The palette level of each z value."""
    return np.clip(np.rint(values / SATURATION_Z * LEVELS), -LEVELS, LEVELS).astype(int)


class HeatStrip(CachedLines):
    """Each row is a label and one segment per run of equal shade."""

    DEFAULT_CSS = "HeatStrip { height: auto; }"

    def __init__(self, *, history: int = 240, label_width: int = 11, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[str] = []
        self.indices: list[int] = []  # pack indices of the rows
        self.history: deque[np.ndarray] = deque(maxlen=history)
        self.label_width = label_width

    def set_rows(self, names: list[str], indices: list[int]) -> None:
        self.rows, self.indices = names, indices
        self.redraw(layout=True)

    def push(self, probes: list[np.ndarray], *, draw: bool = True) -> None:
        """Add tokens' readouts; `draw=False` leaves the redraw to the caller (a throttled one)."""
        self.history.extend(probes)
        if draw:
            self.redraw()

    def clear(self) -> None:
        self.history.clear()
        self.redraw()

    def get_content_height(self, container, viewport, width: int) -> int:
        return max(1, len(self.rows))

    def draw(self) -> list[Strip]:
        base = self.rich_style
        shades = {level: base + style for level, style in SHADES.items()}
        width = max(1, self.size.width - self.label_width - 1)
        recent = list(self.history)[-width:]
        levels = None
        if recent and self.indices:
            levels = z_levels(np.stack(recent)[:, self.indices].T)  # [rows, tokens]
        strips = []
        for row, name in enumerate(self.rows):
            segments = [Segment(fit_label(name, self.label_width) + " ", base)]
            if levels is not None:
                shade = levels[row]
                bounds = [0, *(np.flatnonzero(np.diff(shade)) + 1).tolist(), len(shade)]
                segments += [Segment("▇" * (end - start), shades[int(shade[start])]) for start, end in pairwise(bounds)]
            strips.append(Strip(segments).adjust_cell_length(self.size.width, base))
        return strips
