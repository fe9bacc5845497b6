"""The steering controller: the sliders, the engine's steering and the session, kept in step.

Every change of the steering (a slider, a reset, a preset) goes through here, so each one
reaches the engine (from its next token on) and is recorded the same way: a slider's change
when the engine reports the version it numbered it with (the engine may be in another process).
"""

from __future__ import annotations

from emolab.core.errors import EmolabError
from emolab.core.recording import NotRecording, SessionSink
from emolab.tui.engine_link import EngineLink
from emolab.tui.presets import read_preset, write_preset
from emolab.tui.view import ConsoleView


class SteeringController:
    def __init__(self, link: EngineLink, view: ConsoleView) -> None:
        self.link = link
        self.view = view
        self.recorder: SessionSink = NotRecording()  # the chat screen's, once the engine is up

    def slider_moved(self, emotion: str, strength: float) -> None:
        if not self.link.ready:
            self.view.notify("the model is still loading", severity="warning")
            return
        self.link.set_steering(emotion, strength)

    def applied(self, change: dict) -> None:
        """The engine's answer to set_steering: its version and state, from the next token on."""
        self.recorder.record_steering(change["emotion"], change["strength"], change["version"], change["state"])

    def reset(self) -> None:
        self.view.show_steering({})
        if self.link.ready:
            self.link.replace_steering({})
            self.recorder.record_note("steering_reset")

    def record_pins(self) -> None:
        """The pinned emotions are what a default export plots."""
        self.recorder.record_note("pinned", emotions=self.view.side.steering.pinned)

    def save_preset(self, path: str | None) -> None:
        if not path:
            return
        try:
            write_preset(path, self.view.side.steering.values())
        except EmolabError as error:
            self.view.notify(str(error), severity="error")
            return
        self.view.notify(f"saved preset {path}")

    def load_preset(self, path: str | None) -> None:
        if not path:
            return
        try:
            values = read_preset(path, self.view.pack)
            if self.link.ready:
                self.link.replace_steering(values)
        except EmolabError as error:
            self.view.notify(str(error), severity="error")
            return
        self.view.show_steering(values)
        self.recorder.record_note("preset", path=path, values=values)
        self.view.notify(f"loaded preset {path}")
