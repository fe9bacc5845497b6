"""The transcript: turns of tokens, each tinted by its dominant emotion or by valence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from emolab.core.valence import valence
from emolab.tui.turns import TokenView, TurnView
from emolab.tui.widgets.heat_strip import z_colour

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


class TurnWidget(Widget):
    DEFAULT_CSS = """
    TurnWidget { height: auto; padding: 0 1; margin-bottom: 1; }
    TurnWidget.prompt { color: $text-muted; border-left: thick $primary-darken-2; }
    TurnWidget.reply { border-left: thick $success-darken-2; }
    """

    @dataclass
    class TokenClicked(Message):
        token: TokenView

    @dataclass
    class TokenHovered(Message):
        token: TokenView | None  # None: the pointer left the tokens

    def __init__(self, turn: TurnView, transcript: Transcript) -> None:
        super().__init__(classes=turn.role)
        self.turn = turn
        self.transcript = transcript

    def render(self) -> Text:
        return self.transcript.render_turn(self.turn)

    def repaint(self) -> None:
        """Redraw the turn; lay the screen out again only when its height changed.

        A layout reflows and repaints the whole screen (about 50 ms here), so one per
        token stalled the event loop; most tokens do not start a new line.
        """
        self.refresh()
        width = self.content_size.width
        if not width or self.get_content_height(self.size, self.size, width) != self.content_size.height:
            self.refresh(layout=True)

    def _token_at(self, event) -> TokenView | None:
        index = event.style.meta.get("token") if event.style else None
        if index is None:
            return None
        return next((token for token in self.turn.tokens if token.index == index), None)

    def on_click(self, event: events.Click) -> None:
        token = self._token_at(event)
        if token is not None:
            self.post_message(self.TokenClicked(token))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self.post_message(self.TokenHovered(self._token_at(event)))

    def on_leave(self, event: events.Leave) -> None:
        self.post_message(self.TokenHovered(None))


class Transcript(VerticalScroll):
    """Renders a TurnLog's turns; scrolls with the stream unless the user has scrolled up."""

    DEFAULT_CSS = "Transcript { height: 1fr; }"

    tint: reactive[str] = reactive("emotion", repaint=False)  # or "valence" or "off"
    smoothed: reactive[bool] = reactive(True, repaint=False)  # tint by smoothed readouts, or each token's own
    selected: reactive[int | None] = reactive(None, repaint=False)  # the index of the selected token

    def __init__(self, emotions: list[str], valence: np.ndarray, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.emotions = emotions
        self.valence = valence  # per emotion: its PC1 coordinate, scaled to [-1, 1]
        self.widgets: dict[TurnView, TurnWidget] = {}  # in turn order

    def watch_tint(self) -> None:
        self.redraw()

    def watch_smoothed(self) -> None:
        self.redraw()

    def watch_selected(self) -> None:
        self.redraw()

    def colour_of(self, emotion_index: int) -> str:
        return EMOTION_COLOURS[emotion_index % len(EMOTION_COLOURS)]

    def render_turn(self, turn: TurnView) -> Text:
        text = Text()
        text.append("you  " if turn.role == "prompt" else "model  ", style="bold")
        if turn.label:
            text.append(f"[{turn.label}]  ", style="bold cyan")
        view = (self.tint, self.smoothed)
        for token in turn.tokens:
            if token.marker:
                text.append(f" ⟂{token.marker} ", style="bold black on yellow")
            if token.differs:
                text.append("≠", style="bold white on magenta")
            style = token.styles.get(view)
            if style is None:  # a turn is redrawn per token: compute each token's style once, not per redraw
                style = token.styles[view] = self._token_style(token) + Style(meta={"token": token.index})
            if token.differs:
                style += DIFFERS
            if token.index == self.selected:
                style += SELECTED
            text.append(token.text, style=style)
            if token.alert:
                text.append(" ⚠", style="bold red")
        if turn.note:
            text.append(f"  [{turn.note}]", style="italic bright_black")
        return text

    def _token_style(self, token: TokenView) -> Style:
        style = Style()
        readout = token.readout(self.smoothed)
        if readout is None or self.tint == "off":
            return style
        if self.tint == "valence":
            value = float(valence(readout, self.valence))
            return style + Style(color=z_colour(value * 4))
        strongest = int(np.argmax(readout))
        if readout[strongest] < TINT_THRESHOLD:
            return style
        return style + Style(color=self.colour_of(strongest))

    @property
    def following(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def show(self, turns: list[TurnView], changed: list[TurnView]) -> None:
        """Match the widgets to `turns`: keep those of the prefix they share (a chat only grows at
        its end), rebuild the rest (another branch is shown), redraw `changed`."""
        follow = self.following
        shown = list(self.widgets)
        shared = 0
        while shared < min(len(shown), len(turns)) and shown[shared] is turns[shared]:
            shared += 1
        for turn in shown[shared:]:
            self.widgets.pop(turn).remove()
        new = [TurnWidget(turn, self) for turn in turns[shared:]]
        for widget in new:
            self.widgets[widget.turn] = widget
        if new:
            self.mount_all(new)
        for turn in changed:
            widget = self.widgets.get(turn)
            if widget is not None:
                widget.repaint()
        if follow and (new or changed):
            self.call_after_refresh(self.scroll_end, animate=False)

    def redraw(self) -> None:
        for widget in self.widgets.values():
            widget.refresh()
