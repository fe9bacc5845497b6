"""The transcript: turns of tokens, each tinted by its dominant emotion or by valence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.style import Style
from rich.text import Text
from textual import events
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget

from emolab.core.valence import valence
from emolab.tui.widgets.heat_strip import z_colour

PALETTE = ["#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d19a66", "#be5046",
           "#7ec699", "#f08d49", "#b392f0", "#ffab70"]
TINT_THRESHOLD = 1.0  # |z| below this stays untinted
SELECTED = Style(reverse=True)


@dataclass
class TokenView:
    index: int
    text: str
    probe: np.ndarray | None
    smoothed: np.ndarray | None = None
    marker: str | None = None  # a steering change that took effect on this token
    alert: str | None = None
    styles: dict[tuple[str, bool], Style] = field(default_factory=dict, repr=False)  # per view, computed once

    def readout(self, smoothed: bool) -> np.ndarray | None:
        """The readout the console shows: smoothed where there is one and it is asked for, else raw."""
        return self.smoothed if smoothed and self.smoothed is not None else self.probe


@dataclass
class TurnView:
    role: str  # "prompt" or "reply"
    tokens: list[TokenView] = field(default_factory=list)
    note: str = ""  # how the turn ended, or a notice


class TurnWidget(Widget):
    DEFAULT_CSS = """
    TurnWidget { height: auto; padding: 0 1; margin-bottom: 1; }
    TurnWidget.prompt { color: $text-muted; border-left: thick $primary-darken-2; }
    TurnWidget.reply { border-left: thick $success-darken-2; }
    """

    class TokenClicked(Message):
        def __init__(self, token: TokenView) -> None:
            super().__init__()
            self.token = token

    def __init__(self, turn: TurnView, transcript: "Transcript") -> None:
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

    class TokenHovered(Message):
        def __init__(self, token: TokenView | None) -> None:
            super().__init__()
            self.token = token

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
    """Scrolls with the stream unless the user has scrolled up."""

    DEFAULT_CSS = "Transcript { height: 1fr; }"

    def __init__(self, emotions: list[str], valence: np.ndarray, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.emotions = emotions
        self.valence = valence  # per emotion: its PC1 coordinate, scaled to [-1, 1]
        self.tint = "emotion"  # or "valence" or "off"
        self.smoothed = True  # tint by the smoothed readouts, or by each token's own
        self.selected: int | None = None
        self.turns: list[TurnWidget] = []
        self.hidden_ids: set[int] = set()

    def colour_of(self, emotion_index: int) -> str:
        return PALETTE[emotion_index % len(PALETTE)]

    def render_turn(self, turn: TurnView) -> Text:
        text = Text()
        text.append("you  " if turn.role == "prompt" else "model  ", style="bold")
        for token in turn.tokens:
            if token.marker:
                text.append(f" ⟂{token.marker} ", style="bold black on yellow")
            view = (self.tint, self.smoothed)
            style = token.styles.get(view)
            if style is None:  # a turn is redrawn per token: compute each token's style once, not per redraw
                style = token.styles[view] = self._token_style(token) + Style(meta={"token": token.index})
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

    def start_turn(self, role: str) -> TurnView:
        turn = TurnView(role)
        widget = TurnWidget(turn, self)
        self.turns.append(widget)
        self.mount(widget)
        return turn

    def refresh_turn(self, turn: TurnView) -> None:
        follow = self.following
        for widget in reversed(self.turns):
            if widget.turn is turn:
                widget.repaint()
                break
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)

    def redraw(self) -> None:
        for widget in self.turns:
            widget.refresh()

    def clear_turns(self) -> None:
        for widget in self.turns:
            widget.remove()
        self.turns.clear()
        self.selected = None

    def drop_last_reply(self) -> None:
        if self.turns and self.turns[-1].turn.role == "reply":
            self.turns.pop().remove()

    def all_tokens(self) -> list[TokenView]:
        return [token for widget in self.turns for token in widget.turn.tokens]
