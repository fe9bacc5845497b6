"""One line: model, device, dtype, pack, speed, context, and the session file."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class StatusBar(Widget):
    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; color: $text-muted; }"

    model: reactive[str] = reactive("loading model…")
    pack: reactive[str] = reactive("")
    speed: reactive[str] = reactive("")
    context: reactive[str] = reactive("")
    session: reactive[str] = reactive("")
    state: reactive[str] = reactive("")
    readouts: reactive[str] = reactive("")  # smoothed (and how much) or raw

    def render(self) -> Text:
        parts = [self.state, self.model, self.pack, self.speed, self.context, self.readouts, self.session]
        return Text("  ·  ".join(part for part in parts if part), no_wrap=True, overflow="ellipsis")
