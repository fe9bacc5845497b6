"""The seam between the console and a session recorder.

The console and `emolab run` report everything a replay needs through this interface;
`emolab.core.session.SessionRecorder` writes it to a session file. `NotRecording` is what
`--no-record` gives, and the status bar says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from emolab.core.events import Event


class SessionSink(Protocol):
    path: Path | None

    def record_event(self, event: Event) -> None: ...

    def record_steering(self, emotion: str, strength: float, version: int, state: dict[str, float]) -> None: ...

    def record_note(self, kind: str, **details) -> None: ...  # alerts, presets, stops, regenerations

    def save(self) -> Path | None: ...

    def close(self) -> Path | None: ...


class NotRecording:
    path: Path | None = None

    def record_event(self, event: Event) -> None:
        pass

    def record_steering(self, emotion: str, strength: float, version: int, state: dict[str, float]) -> None:
        pass

    def record_note(self, kind: str, **details) -> None:
        pass

    def save(self) -> Path | None:
        return None

    def close(self) -> Path | None:
        return None
