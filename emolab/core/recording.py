"""The seam between the console and a session recorder.

The console reports everything a replay needs through this interface; the JSON session
recorder (the sessions issue) implements it. Until then the console runs with
`NotRecording`, and says so in its status bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from emolab.core.events import Event


class SessionSink(Protocol):
    path: Path | None

    def record_event(self, event: Event) -> None: ...

    def record_steering(self, emotion: str, strength: float) -> None: ...

    def record_note(self, kind: str, **details) -> None: ...  # alerts, presets, stops, regenerations

    def save(self) -> Path | None: ...


class NotRecording:
    path: Path | None = None

    def record_event(self, event: Event) -> None:
        pass

    def record_steering(self, emotion: str, strength: float) -> None:
        pass

    def record_note(self, kind: str, **details) -> None:
        pass

    def save(self) -> Path | None:
        return None
