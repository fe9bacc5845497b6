"""A vertical scrollbar that redraws only the rows whose cells changed.

A streaming reply grows the transcript a line at a time, and each line moves the thumb by a
fraction of a cell: one or two rows change. Textual's scrollbar draws every row again for that,
7 ms at 160×48 in a frame that also scrolls the transcript (benchmarks/ui_frame_cost.py).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.scrollbar import ScrollBar
from textual.strip import Strip


class RowScrollBar(ScrollBar):
    def __init__(self, *, thickness: int = 1) -> None:
        super().__init__(vertical=True, name="vertical", thickness=thickness)
        self._rows: list[Strip] = []  # as drawn; a change marks only the rows that differ
        self._strips: dict[tuple, Strip] = {}  # a bar has few distinct rows: track, thumb, its ends

    def _draw(self) -> list[Strip]:
        width, height = self.size
        if not width or not height:
            return []
        console = self.app.console
        lines = Segment.split_lines(console.render(self.render(), console.options.update_dimensions(width, height)))
        base = self.visual_style.rich_style  # under each row, as Textual's drawing of a widget puts it
        if len(self._strips) > 64:
            self._strips.clear()
        return [self._row(base, tuple(line), width) for line in lines]

    def _row(self, base: Style, segments: tuple[Segment, ...], width: int) -> Strip:
        key = (base, segments)
        row = self._strips.get(key)
        if row is None:
            row = self._strips[key] = Strip(segments, width).apply_style(base)
        return row

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False):
        if regions or layout or recompose or not repaint or not self.is_mounted or not self._rows:
            self._rows = []  # anything but a plain repaint: all drawn again at the next paint
            return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        rows = self._draw()
        if len(rows) != len(self._rows):
            self._rows = []
            return super().refresh()
        changed = [y for y, (old, new) in enumerate(zip(self._rows, rows, strict=True)) if old != new]
        self._rows = rows
        for y in changed:
            super().refresh(Region(0, y, self.size.width, 1))
        return self

    def render_line(self, y: int) -> Strip:
        if len(self._rows) != self.size.height:
            self._rows = self._draw()
        return self._rows[y] if y < len(self._rows) else Strip.blank(self.size.width)
