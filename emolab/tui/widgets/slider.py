"""A small float slider: keyboard and mouse, with the value shown beside it.

Textual has no slider, and textual-slider is GPL and integer-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from emolab.tui.widgets.labels import fit_label


class FloatSlider(Widget, can_focus=True):
    DEFAULT_CSS = """
    FloatSlider { height: 1; width: 1fr; }
    FloatSlider:focus { background: $boost; }
    """
    BINDINGS: ClassVar = [
        Binding("left", "step(-1)", "−", show=False, id="slider.down", tooltip="A fine step down"),
        Binding("right", "step(1)", "+", show=False, id="slider.up", tooltip="A fine step up"),
        Binding("shift+left", "coarse(-1)", "−−", show=False, id="slider.down_coarse", tooltip="A coarse step down"),
        Binding("shift+right", "coarse(1)", "++", show=False, id="slider.up_coarse", tooltip="A coarse step up"),
        Binding("0", "reset", "reset", show=False, id="slider.reset", tooltip="Back to 0"),
    ]

    value: reactive[float] = reactive(0.0)

    @dataclass
    class Changed(Message):
        slider: FloatSlider
        value: float

        @property
        def control(self) -> FloatSlider:
            return self.slider

    def __init__(
        self,
        label: str,
        *,
        minimum: float,
        maximum: float,
        step: float,
        coarse_step: float,
        value: float = 0.0,
        label_width: int = 11,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.label = label
        self.minimum, self.maximum = minimum, maximum
        self.step, self.coarse_step = step, coarse_step
        self.label_width = label_width
        self._dragging = False
        self.set_reactive(FloatSlider.value, self._clamp(value))

    def _clamp(self, value: float) -> float:
        snapped = round(round(value / self.step) * self.step, 10)
        return min(self.maximum, max(self.minimum, snapped))

    def set_value(self, value: float, *, announce: bool = True) -> None:
        clamped = self._clamp(value)
        if clamped != self.value:
            self.value = clamped
            if announce:
                self.post_message(self.Changed(self, clamped))

    def action_step(self, direction: int) -> None:
        self.set_value(self.value + direction * self.step)

    def action_coarse(self, direction: int) -> None:
        self.set_value(self.value + direction * self.coarse_step)

    def action_reset(self) -> None:
        self.set_value(0.0)

    # -- drawing ----------------------------------------------------------------------------------

    def _track_geometry(self) -> tuple[int, int]:
        """(start column, width) of the track inside the widget."""
        start = self.label_width + 1
        return start, max(5, self.size.width - start - 7)

    def render(self) -> Text:
        _, width = self._track_geometry()
        span = self.maximum - self.minimum
        knob = round((self.value - self.minimum) / span * (width - 1))
        zero = round((0 - self.minimum) / span * (width - 1)) if self.minimum < 0 < self.maximum else None
        colour = "green" if self.value > 0 else "red" if self.value < 0 else "bright_black"
        text = Text(fit_label(self.label, self.label_width) + " ", style="bold" if self.value else "")
        for column in range(width):
            if column == knob:
                text.append("●", style=f"bold {colour}")
            elif zero is not None and min(zero, knob) <= column <= max(zero, knob):
                text.append("━", style=colour)
            elif column == zero:
                text.append("┼", style="bright_black")
            else:
                text.append("─", style="bright_black")
        text.append(f" {self.value:+.2f}", style=colour)
        return text

    # -- mouse ------------------------------------------------------------------------------------

    def _value_at(self, x: int) -> float:
        start, width = self._track_geometry()
        fraction = min(1.0, max(0.0, (x - start) / max(1, width - 1)))
        return self.minimum + fraction * (self.maximum - self.minimum)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._dragging = True
        self.capture_mouse()
        self.focus()
        self.set_value(self._value_at(event.x))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging:
            self.set_value(self._value_at(event.x))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging:
            self._dragging = False
            self.release_mouse()
