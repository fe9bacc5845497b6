"""One line: model, device, dtype, pack, speed, context, and the session file."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from emolab.tui.throttle import Throttle

LIVE_SECONDS = 1.0  # how often values that change with every token are drawn


class StatusBar(Widget):
    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; color: $text-muted; }"

    model: reactive[str] = reactive("loading model…")
    pack: reactive[str] = reactive("")
    speed: reactive[str] = reactive("")
    context: reactive[str] = reactive("")
    session: reactive[str] = reactive("")
    state: reactive[str] = reactive("")
    readouts: reactive[str] = reactive("")  # smoothed (and how much) or raw

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._draw_live = Throttle(self, LIVE_SECONDS, self.refresh)

    def show_live(self, **parts: str) -> None:
        """Set parts that change with every token (speed, context): drawn about once a second, so
        that the status line does not widen every frame of a streaming reply to the whole screen."""
        for name, value in parts.items():
            self.set_reactive(getattr(StatusBar, name), value)
        self._draw_live()

    def render(self) -> Text:
        parts = [self.state, self.model, self.pack, self.speed, self.context, self.readouts, self.session]
        return Text("  ·  ".join(part for part in parts if part), no_wrap=True, overflow="ellipsis")
