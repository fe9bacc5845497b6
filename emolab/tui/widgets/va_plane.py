"""The valence/arousal plane of the pack's own PCA, with a marker for the current token."""

from __future__ import annotations

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

DIM = Style(color="bright_black")
MARKER = Style(color="yellow", bold=True)


class ValenceArousalPlane(Widget):
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
            self.refresh()

    def _cell(self) -> tuple[int, int] | None:
        """The marker's row and column."""
        if self.marker is None:
            return None
        width, rows = max(9, self.size.width), max(3, self.size.height) - 1
        x, y = self.marker[0] / self.extent[0], self.marker[1] / self.extent[1]
        return round((1 - (y + 1) / 2) * (rows - 1)), round((x + 1) / 2 * (width - 1))

    def render(self) -> Text:
        width, height = max(9, self.size.width), max(3, self.size.height)
        rows = height - 1
        middle_row, middle_column = rows // 2, width // 2
        axis = "─" * middle_column + "┼" + "─" * (width - middle_column - 1)
        blank = " " * middle_column + "│" + " " * (width - middle_column - 1)
        marker_cell = self._cell()
        self._drawn = (marker_cell, self.label)
        text = Text(no_wrap=True, overflow="crop")
        for row in range(rows):
            line = axis if row == middle_row else blank
            if marker_cell and marker_cell[0] == row:
                column = marker_cell[1]
                text.append(line[:column], style=DIM)
                text.append("◉", style=MARKER)
                text.append(line[column + 1 :], style=DIM)
            else:
                text.append(line, style=DIM)
            text.append("\n")
        caption = f"−valence  +valence   ↑arousal  {self.label}"
        text.append(caption[:width], style=DIM)
        return text
