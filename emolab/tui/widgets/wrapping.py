"""Styled text wrapped into lines as it streams in: each append touches only the last line.

Greedy word wrap, as Rich's: a line breaks after the last space that fits; a word longer than
the line is folded; spaces that would overflow a line are dropped; "\\n" ends a line. A word
may arrive in pieces (tokens), so a piece that overflows the line carries the start of its
word, from earlier pieces, to the next line.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from rich.cells import get_character_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip


class WrappedLines:
    """Lines of at most `width` cells, built from (text, style) pieces appended in order."""

    def __init__(self, width: int) -> None:
        self.width = max(1, width)
        self.done: list[Strip] = []  # finished lines
        self._line: list[tuple[str, Style]] = []  # the open line, a character each
        self._cells = 0  # its width
        self._break = 0  # where a new line may start in it: after its last space (0: nowhere)
        self._wrapped = False  # the open line began where a line was broken
        self._open: Strip | None = None  # the open line as a strip, until it changes

    @property
    def count(self) -> int:
        """Lines, the open one included."""
        return len(self.done) + 1

    def line(self, y: int) -> Strip:
        if y < len(self.done):
            return self.done[y]
        if self._open is None:
            self._open = strip_of(self._line)
        return self._open

    def lines(self) -> list[Strip]:
        return [*self.done, self.line(len(self.done))]

    def append(self, text: str, style: Style) -> None:
        self._open = None
        for character in text.replace("\t", "    ").replace("\r", ""):
            self._add(character, style)

    def _add(self, character: str, style: Style) -> None:
        if character == "\n":
            self._end_line(len(self._line), wrapped=False)
            return
        cells = get_character_cell_size(character)
        if character.isspace():
            if self._wrapped and not self._line:
                return  # the spaces a line broke at are not drawn
            if self._cells + cells > self.width:
                self._end_line(len(self._line))
                return
            self._put(character, style, cells)
            self._break = len(self._line)
            return
        if self._line and self._cells + cells > self.width:
            # the word so far goes down with this character, unless it fills the line alone
            self._end_line(self._break if self._break else len(self._line))
            if self._line and self._cells + cells > self.width:  # the word is longer than a line: fold it
                self._end_line(len(self._line))
        self._put(character, style, cells)

    def _put(self, character: str, style: Style, cells: int) -> None:
        self._line.append((character, style))
        self._cells += cells

    def _end_line(self, at: int, *, wrapped: bool = True) -> None:
        """Finish the open line at character `at`; what follows starts the next line."""
        head, rest = self._line[:at], self._line[at:]
        while wrapped and head and head[-1][0].isspace():
            head.pop()  # a wrapped line's trailing spaces
        self.done.append(strip_of(head))
        self._line = rest
        self._cells = sum(get_character_cell_size(character) for character, _ in rest)
        self._break = 0
        self._wrapped = wrapped


def strip_of(characters: list[tuple[str, Style]]) -> Strip:
    """A line of styled characters as a strip, one segment per run of one style."""
    runs = groupby(characters, key=itemgetter(1))
    return Strip([Segment("".join(character for character, _ in run), style) for style, run in runs])
