"""A widget drawn with Textual's line API from strips it builds once per change.

The side panel redraws on every token, so its widgets build segments directly (no Rich text,
markup or wrapping) and keep them until their data or their size changes.
"""

from __future__ import annotations

from textual.strip import Strip
from textual.widget import Widget


class CachedLines(Widget):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._strips: list[Strip] | None = None

    def redraw(self, *, layout: bool = False) -> None:
        """Call after the data changes: the strips are built again at the next paint."""
        self._strips = None
        self.refresh(layout=layout)

    def on_resize(self) -> None:
        self._strips = None

    def render_line(self, y: int) -> Strip:
        if self._strips is None:
            self._strips = self.draw()
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width, self.rich_style)

    def draw(self) -> list[Strip]:
        """One strip per line, each `self.size.width` cells wide."""
        raise NotImplementedError
