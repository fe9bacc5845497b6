"""The valence/arousal plane of the pack's own PCA, with a marker for the current token."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget


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

    def place(self, probe: np.ndarray) -> None:
        """Put the marker at the z-weighted mean position of the emotions that read positive."""
        weights = np.clip(probe, 0, None)
        if weights.sum() <= 0:
            self.marker, self.label = (0.0, 0.0), ""
        else:
            x, y = (weights[:, None] * self.points).sum(axis=0) / weights.sum()
            self.marker = (float(x), float(y))
            self.label = self.emotions[int(np.argmax(probe))]
        self.refresh()

    def render(self) -> Text:
        width, height = max(9, self.size.width), max(3, self.size.height)
        rows = height - 1
        grid = [[" "] * width for _ in range(rows)]
        middle_row, middle_column = rows // 2, width // 2
        for column in range(width):
            grid[middle_row][column] = "─"
        for row in range(rows):
            grid[row][middle_column] = "│"
        grid[middle_row][middle_column] = "┼"
        text = Text()
        marker_cell = None
        if self.marker is not None:
            x = self.marker[0] / self.extent[0]
            y = self.marker[1] / self.extent[1]
            marker_cell = (round((1 - (y + 1) / 2) * (rows - 1)), round((x + 1) / 2 * (width - 1)))
        for row in range(rows):
            for column in range(width):
                if marker_cell == (row, column):
                    text.append("◉", style="bold yellow")
                else:
                    text.append(grid[row][column], style="bright_black")
            text.append("\n")
        caption = f"−valence  +valence   ↑arousal  {self.label}"
        text.append(caption[:width], style="bright_black")
        return text
