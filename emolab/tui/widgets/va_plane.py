"""The valence/arousal plane of the pack's own PCA, with a marker for the current token."""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from emolab.tui.widgets.cached_lines import CachedLines

DIM = Style(color="bright_black")
MARKER = Style(color="yellow", bold=True)


class ValenceArousalPlane(CachedLines):
    DEFAULT_CSS = "ValenceArousalPlane { height: 7; }"

    def __init__(self, coords: dict[str, tuple[float, float]], emotions: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.emotions = emotions
        points = np.array([coords[name] for name in emotions], dtype=float)
        self.points = points
        self.extent = np.abs(points).max(axis=0).clip(min=1e-6) if len(points) else np.ones(2)
        self.marker: tuple[float, float] | None = None
        self.label = ""
        self._drawn: tuple | None = None  # the marker's cell and label as last drawn

    def place(self, probe: np.ndarray) -> None:
        """Put the marker at the z-weighted mean position of the emotions that read positive."""
        weights = np.clip(probe, 0, None)
        if weights.sum() <= 0:
            self.marker, self.label = (0.0, 0.0), ""
        else:
            x, y = (weights[:, None] * self.points).sum(axis=0) / weights.sum()
            self.marker = (float(x), float(y))
            self.label = self.emotions[int(np.argmax(probe))]
        if (self._cell(), self.label) != self._drawn:  # most tokens move the marker within its cell
            self.redraw()

    def _grid(self) -> tuple[int, int]:
        """The plane's columns and rows (the caption's line below them)."""
        return max(9, self.size.width), max(3, self.size.height) - 1

    def _cell(self) -> tuple[int, int] | None:
        """The marker's row and column."""
        if self.marker is None:
            return None
        columns, rows = self._grid()
        x, y = self.marker[0] / self.extent[0], self.marker[1] / self.extent[1]
        return round((1 - (y + 1) / 2) * (rows - 1)), round((x + 1) / 2 * (columns - 1))

    def draw(self) -> list[Strip]:
        base, width = self.rich_style, self.size.width
        columns, rows = self._grid()
        middle = columns // 2
        axis = "─" * middle + "┼" + "─" * (columns - middle - 1)
        blank = " " * middle + "│" + " " * (columns - middle - 1)
        cell = self._cell()
        self._drawn = (cell, self.label)
        dim, marker = base + DIM, base + MARKER
        lines = []
        for row in range(rows):
            line = axis if row == rows // 2 else blank
            if cell is not None and cell[0] == row:
                lines.append([Segment(line[: cell[1]], dim), Segment("◉", marker), Segment(line[cell[1] + 1 :], dim)])
            else:
                lines.append([Segment(line, dim)])
        lines.append([Segment(f"−valence  +valence   ↑arousal  {self.label}"[:columns], dim)])
        return [Strip(segments).adjust_cell_length(width, base) for segments in lines]
