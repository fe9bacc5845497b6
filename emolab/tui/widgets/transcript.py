"""The transcript: turns of tokens, each tinted by its dominant emotion or by valence.

One scrolling view drawn line by line (Textual's line API). Each turn is wrapped once, and a
streaming reply wraps only its new tokens: a token costs as much at the end of a long reply as
at its start, and a reply that grows a line scrolls the view instead of laying out the screen.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive, reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from emolab.core.valence import valence
from emolab.tui.turns import TokenView, TurnView
from emolab.tui.widgets.heat_strip import z_colour
from emolab.tui.widgets.row_scrollbar import RowScrollBar
from emolab.tui.widgets.wrapping import WrappedLines

EMOTION_COLOURS = [
    "#e06c75",
    "#98c379",
    "#e5c07b",
    "#61afef",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#be5046",
    "#7ec699",
    "#f08d49",
    "#b392f0",
    "#ffab70",
]
TINT_THRESHOLD = 1.0  # |z| below this stays untinted
SELECTED = Style(reverse=True)
DIFFERS = Style(underline=True, bold=True)
BOLD = Style(bold=True)
LABEL = Style.parse("bold cyan")
MARKER = Style.parse("bold black on yellow")
DIFFERS_MARK = Style.parse("bold white on magenta")
ALERT = Style.parse("bold red")
NOTE = Style.parse("italic bright_black")
EDGE = "█"  # a turn's left edge, as a thick border draws it
INSET = 3  # the edge, and a cell of padding either side of the text
ROWS_PER_SCROLL_STEP = 12  # a view of 43 rows follows the stream 3 lines at a time; under 24 rows, 1

Piece = tuple[str, Style]
PAD = Strip([Segment(" ")])


@dataclass(frozen=True)
class Look:
    base: Style  # the widget's own
    prompt: Style
    edges: dict[str, Strip]  # per role: a turn's left edge and the cell after it
    blank: Strip  # the blank line after each turn (and below the last)
    width: int  # of the text area, which the lines are cropped to


class TurnLines:
    """A turn's pieces as last wrapped, so that a turn that only grew wraps only what it gained."""

    def __init__(self) -> None:
        self.pieces: list[Piece] = []
        self.wrapped = WrappedLines(1)
        self.drawn: dict[int, Strip] = {}  # lines as drawn, with the turn's edge: a scroll redraws them all

    def update(self, pieces: list[Piece], width: int) -> int | None:
        """Wrap `pieces` at `width`; returns the first line that changed (None: none did)."""
        old = self.pieces
        if width == self.wrapped.width and pieces[: len(old)] == old:
            if len(pieces) == len(old):
                return None
            first, new = self.wrapped.count - 1, pieces[len(old) :]
        else:
            self.wrapped, first, new = WrappedLines(width), 0, pieces
        for text, style in new:
            self.wrapped.append(text, style)
        self.pieces = pieces
        self.drawn = {row: strip for row, strip in self.drawn.items() if row < first}
        return first


class Transcript(ScrollView):
    """Draws a TurnLog's turns (a blank line after each); scrolls with the stream unless the user
    has scrolled up."""

    COMPONENT_CLASSES = {"transcript--prompt", "transcript--prompt-edge", "transcript--reply-edge"}
    DEFAULT_CSS = """
    Transcript { height: 1fr; overflow-y: scroll; scrollbar-size-vertical: 1; }
    Transcript > .transcript--prompt { color: $text-muted; }
    Transcript > .transcript--prompt-edge { color: $primary-darken-2; }
    Transcript > .transcript--reply-edge { color: $success-darken-2; }
    """

    @dataclass
    class TokenClicked(Message):
        token: TokenView

    @dataclass
    class TokenHovered(Message):
        token: TokenView | None  # None: the pointer left the tokens

    # A reply that grows a line grows the virtual size. With the scrollbar always shown, that needs
    # no layout of the screen (a widget's default asks for one: 13 ms at 160×48, ui_stall.py), and
    # no repaint of every line in view: _wrap refreshes the lines that changed.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False, repaint=False)
    tint: reactive[str] = reactive("emotion", repaint=False)  # or "valence" or "off"
    smoothed: reactive[bool] = reactive(True, repaint=False)  # tint by smoothed readouts, or each token's own
    selected: reactive[int | None] = reactive(None, repaint=False)  # the index of the selected token

    def __init__(self, emotions: list[str], valence: np.ndarray, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.emotions = emotions
        self.valence = valence  # per emotion: its PC1 coordinate, scaled to [-1, 1]
        self.turns: list[TurnView] = []
        self._lines: dict[TurnView, TurnLines] = {}
        self._starts: list[int] = []  # each turn's first line
        self._following = True
        self._look: Look | None = None

    def watch_tint(self) -> None:
        self.redraw()

    def watch_smoothed(self) -> None:
        self.redraw()

    def watch_selected(self) -> None:
        self.redraw()

    def colour_of(self, emotion_index: int) -> str:
        return EMOTION_COLOURS[emotion_index % len(EMOTION_COLOURS)]

    # -- what a turn says ------------------------------------------------------------------------------

    def pieces(self, turn: TurnView) -> list[Piece]:
        """The turn as styled text: who speaks, its label, its tokens with their marks, its note."""
        pieces = [("you  " if turn.role == "prompt" else "model  ", BOLD)]
        if turn.label:
            pieces.append((f"[{turn.label}]  ", LABEL))
        view = (self.tint, self.smoothed)
        for token in turn.tokens:
            if token.marker:
                pieces.append((f" ⟂{token.marker} ", MARKER))
            if token.differs:
                pieces.append(("≠", DIFFERS_MARK))
            style = token.styles.get(view)
            if style is None:  # compute each token's style once, not on every redraw of its turn
                style = token.styles[view] = self._token_style(token) + Style(meta={"token": token.index})
            if token.differs:
                style += DIFFERS
            if token.index == self.selected:
                style += SELECTED
            pieces.append((token.text, style))
            if token.alert:
                pieces.append((" ⚠", ALERT))
        if turn.note:
            pieces.append((f"  [{turn.note}]", NOTE))
        return pieces

    def text_of(self, turn: TurnView) -> str:
        """The turn as shown, one wrapped line a line."""
        lines = self._lines.get(turn)
        return "\n".join(strip.text for strip in lines.wrapped.lines()) if lines else ""

    def _token_style(self, token: TokenView) -> Style:
        readout = token.readout(self.smoothed)
        if readout is None or self.tint == "off":
            return Style()
        if self.tint == "valence":
            return Style(color=z_colour(float(valence(readout, self.valence)) * 4))
        strongest = int(np.argmax(readout))
        if readout[strongest] < TINT_THRESHOLD:
            return Style()
        return Style(color=self.colour_of(strongest))

    # -- showing turns ------------------------------------------------------------------------------

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """Widget's own property, with a scrollbar that redraws only its changed rows. It builds it as
        Textual 8's Widget.vertical_scrollbar does (hence the version range in pyproject.toml);
        tests/tui/test_transcript.py checks that it draws as Textual's own."""
        if self._vertical_scrollbar is None:
            self._vertical_scrollbar = RowScrollBar(thickness=self.scrollbar_size_vertical)
            self._vertical_scrollbar.display = False
            self.app._start_widget(self, self._vertical_scrollbar)
        return self._vertical_scrollbar

    def watch_virtual_size(self, size: Size) -> None:
        if self.show_vertical_scrollbar:  # the scrollbar's thumb, which a layout would have updated
            self.vertical_scrollbar.window_virtual_size = size.height
            self.vertical_scrollbar.window_size = self.scrollable_content_region.height

    @property
    def following(self) -> bool:
        """Scrolls with the stream: the view is at its end, or on its way there."""
        return self._following

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._following = new >= self.max_scroll_y - 1  # the user scrolled up, or back down

    def show(self, turns: list[TurnView], changed: list[TurnView]) -> None:
        """Show `turns`: those it shares with what is shown keep their lines (a chat only grows at its
        end); `changed` and new turns are wrapped again, each from what it gained where it only grew."""
        shared = 0
        while shared < min(len(self.turns), len(turns)) and self.turns[shared] is turns[shared]:
            shared += 1
        replaced = shared < len(self.turns)
        for turn in self.turns[shared:]:
            self._lines.pop(turn, None)
        self.turns = list(turns)
        self._wrap([*changed, *turns[shared:]], replaced)

    def redraw(self) -> None:
        """The look of the tokens changed (tint, smoothing, selection): wrap every turn again where it differs."""
        self._wrap(self.turns, True)

    def on_resize(self) -> None:
        self._lines.clear()  # a new width: every turn is wrapped again
        self._wrap(self.turns, True)

    def _wrap(self, turns: list[TurnView], repaint_all: bool) -> None:
        width = self._width - INSET  # below 1: not laid out yet, or hidden; the next resize wraps
        position = {turn: at for at, turn in enumerate(self.turns)}
        firsts: dict[TurnView, int] = {}
        for turn in dict.fromkeys(turns):  # a changed turn may also be a new one
            if width >= 1 and turn in position:
                first = self._lines.setdefault(turn, TurnLines()).update(self.pieces(turn), width)
                if first is not None:
                    firsts[turn] = first
        before = self.virtual_size.height  # if the transcript got shorter, its old end is repainted too
        self._starts, total = [], 0
        for turn in self.turns:
            self._starts.append(total)
            total += self._lines[turn].wrapped.count + 1 if turn in self._lines else 0
        self.virtual_size = Size(self._width, self._in_steps(total))
        if repaint_all:
            self.refresh()
        elif firsts:  # from the first changed line to the end
            top = min(self._starts[position[turn]] + first for turn, first in firsts.items())
            self.refresh_lines(top, max(total, before) - top)
        if self._following and width >= 1 and (repaint_all or firsts):
            self.scroll_end(animate=False, immediate=True, x_axis=False)  # in this frame, not one more

    def _in_steps(self, lines: int) -> int:
        """The lines rounded up to whole scroll steps: a reply streaming past the bottom scrolls the view
        a step at a time, since every scroll draws every line in view again (ui_frame_cost.py)."""
        step = max(1, self.scrollable_content_region.height // ROWS_PER_SCROLL_STEP)
        return -(-lines // step) * step

    def line_of(self, turn: TurnView) -> int:
        """The turn's first line, from the top of the transcript."""
        return self._starts[self.turns.index(turn)]

    # -- drawing ------------------------------------------------------------------------------------------

    def _turn_at(self, line: int) -> tuple[TurnView, int] | None:
        """The turn a line of the transcript shows, and which of its lines (past its last: the blank after it)."""
        at = bisect_right(self._starts, line) - 1
        if at < 0 or not self.turns:
            return None
        return self.turns[at], line - self._starts[at]

    @property
    def _width(self) -> int:
        return self.scrollable_content_region.width  # the scrollbar's gutter is kept free (CSS)

    def _drawing(self) -> Look:
        """The styles a line is drawn in: looked up once per style change, not once a line."""
        width = self._width
        if self._look is None or self._look.width != width:
            base = self.rich_style
            edges = {
                role: Strip([Segment(EDGE, self.get_component_rich_style(f"transcript--{role}-edge")), Segment(" ")])
                for role in ("prompt", "reply")
            }
            prompt = self.get_component_rich_style("transcript--prompt")
            self._look = Look(base, prompt, edges, Strip.blank(width, base), width)
        return self._look

    def render_line(self, y: int) -> Strip:
        look = self._drawing()
        found = self._turn_at(self.scroll_offset.y + y)
        lines = self._lines.get(found[0]) if found else None
        if lines is None or found[1] >= lines.wrapped.count:
            return look.blank
        turn, row = found
        strip = lines.drawn.get(row)
        if strip is None:
            width = look.width
            role = "prompt" if turn.role == "prompt" else "reply"
            text = lines.wrapped.line(row).crop_extend(0, max(0, width - INSET), None)
            if role == "prompt":
                text = text.apply_style(look.prompt)
            strip = Strip.join([look.edges[role], text, PAD]).apply_style(look.base).crop(0, width)
            lines.drawn[row] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._look = None
        for lines in self._lines.values():  # a new theme: the same lines, drawn in its colours
            lines.drawn.clear()

    # -- the pointer ----------------------------------------------------------------------------------------

    def _token_under(self, event: events.MouseEvent) -> TokenView | None:
        index = event.style.meta.get("token") if event.style else None
        found = self._turn_at(self.scroll_offset.y + event.y) if index is not None else None
        if found is None:
            return None
        return next((token for token in found[0].tokens if token.index == index), None)

    def on_click(self, event: events.Click) -> None:
        token = self._token_under(event)
        if token is not None:
            self.post_message(self.TokenClicked(token))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self.post_message(self.TokenHovered(self._token_under(event)))

    def on_leave(self, event: events.Leave) -> None:
        self.post_message(self.TokenHovered(None))
