"""A small host app for one widget at a time, and engine events made by hand."""

from __future__ import annotations

import numpy as np
from textual import on
from textual.app import App, ComposeResult
from textual.message import Message

from emolab.core.events import Token, TurnFinished, TurnStarted


class Host(App):
    """Mounts the given widget alone and keeps every message it sends up."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.widget = widget
        self.received: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self.widget

    @on(Message)
    def _keep(self, message: Message) -> None:
        self.received.append(message)

    def of_type(self, kind) -> list:
        return [message for message in self.received if isinstance(message, kind)]


def token(index: int, probe, *, smoothed=None, source="reply", position=None, steering=None, version=0) -> Token:
    probe = np.asarray(probe, dtype=np.float32)
    return Token(
        index=index,
        position=index if position is None else position,
        token_id=index,
        text=f"t{index}",
        source=source,
        probe=probe,
        steering=steering or {},
        steering_version=version,
        t=index / 10,
        smoothed=None if smoothed is None else np.asarray(smoothed, dtype=np.float32),
    )


def a_turn(probes, smoothed=None, *, start: int = 0) -> list:
    """A prompt token (the attention sink, position 0), then one reply token per readout."""
    width = len(probes[0])
    events = [TurnStarted(1, 0, 256, 0.0), token(start, np.zeros(width), source="prompt", position=0)]
    for offset, probe in enumerate(probes, start=1):
        events.append(token(start + offset, probe, smoothed=None if smoothed is None else smoothed[offset - 1]))
    events.append(TurnFinished("eos", "", len(probes), 0.1, 0.2, tokens_per_second=12.5))
    return events
