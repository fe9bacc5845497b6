"""The pinned emotions' sliders."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual import on
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from emolab.core.pack_manifest import SliderRange
from emolab.tui.widgets.slider import FloatSlider


def slider_id(emotion: str) -> str:
    return "slider-" + re.sub(r"[^a-z0-9_-]", "_", emotion)


class SteeringPanel(Vertical):
    DEFAULT_CSS = """
    SteeringPanel { height: auto; }
    SteeringPanel > .panel-title { text-style: bold; }
    """

    @dataclass
    class Changed(Message):
        emotion: str
        value: float

    def __init__(self, slider_range: SliderRange, pinned: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.slider_range = slider_range
        self.initial = list(pinned)
        self.sliders: dict[str, FloatSlider] = {}

    def compose(self):
        yield Static("steering  (×mean norm)", classes="panel-title")
        for emotion in self.initial:
            yield self._make(emotion)

    def _make(self, emotion: str, value: float = 0.0) -> FloatSlider:
        r = self.slider_range
        slider = FloatSlider(
            emotion,
            minimum=r.min,
            maximum=r.max,
            step=r.step,
            coarse_step=r.coarse_step,
            value=value,
            id=slider_id(emotion),
        )
        slider.emotion = emotion
        self.sliders[emotion] = slider
        return slider

    @property
    def pinned(self) -> list[str]:
        return list(self.sliders)

    def pin(self, emotion: str, value: float = 0.0) -> FloatSlider:
        if emotion in self.sliders:
            return self.sliders[emotion]
        slider = self._make(emotion, value)
        self.mount(slider)
        return slider

    def unpin(self, emotion: str) -> None:
        slider = self.sliders.pop(emotion, None)
        if slider is not None:
            if slider.value:
                self.post_message(self.Changed(emotion, 0.0))
            slider.remove()

    def set_values(self, values: dict[str, float]) -> None:
        """Show these strengths (pinning emotions as needed); every other slider goes to 0."""
        for emotion in list(self.sliders):
            if emotion not in values:
                self.sliders[emotion].set_value(0.0, announce=False)
        for emotion, value in values.items():
            self.pin(emotion).set_value(value, announce=False)

    def values(self) -> dict[str, float]:
        return {emotion: slider.value for emotion, slider in self.sliders.items() if slider.value}

    @on(FloatSlider.Changed)
    def _announce(self, message: FloatSlider.Changed) -> None:
        message.stop()
        self.post_message(self.Changed(message.slider.emotion, message.value))
