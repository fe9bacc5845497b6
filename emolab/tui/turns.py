"""The turn/token model the transcript renders: engine events in, turns of tokens out.

Plain Python (no Textual): the chat and the replay feed it the same events, and a replay
that jumps back starts a fresh one instead of resetting its fields one by one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from rich.style import Style

from emolab.core.events import BranchStarted, Event, Token, Truncated, TurnFinished, TurnStarted


@dataclass(eq=False)
class TokenView:
    index: int
    text: str
    probe: np.ndarray | None
    smoothed: np.ndarray | None = None
    position: int = 1
    marker: str | None = None  # a steering change that took effect on this token
    alert: str | None = None
    differs: bool = False  # a compare's two replies first differ here
    source: str = "prompt"  # or "reply": the model read this token, or wrote it
    styles: dict[tuple[str, bool], Style] = field(default_factory=dict, repr=False)  # per view, computed once

    def readout(self, smoothed: bool) -> np.ndarray | None:
        """The readout the console shows: smoothed where there is one and it is asked for, else raw."""
        return self.smoothed if smoothed and self.smoothed is not None else self.probe

    @property
    def readable(self) -> bool:
        """Has a readout worth showing: position 0 is an attention sink, far off-scale."""
        return self.probe is not None and self.position > 0


@dataclass(eq=False)  # identity, not contents: the transcript keys its widgets by turn
class TurnView:
    role: str  # "prompt" or "reply"
    tokens: list[TokenView] = field(default_factory=list)
    note: str = ""  # how the turn ended, or a notice
    label: str = ""  # which branch of its message this reply is ("branch 2/3"), or its side of a compare


@dataclass
class Applied:
    """What one batch of events changed."""

    changed: list[TurnView] = field(default_factory=list)  # turns to redraw (new ones included)
    fresh: list[TokenView] = field(default_factory=list)  # new tokens with a readout worth showing
    truncated: list[Truncated] = field(default_factory=list)
    speed: float | None = None  # tokens per second of the reply so far, or of the finished one


def no_kept_tokens(event: BranchStarted) -> list[TokenView]:
    return []


class TurnLog:
    """The conversation as shown: prompt and reply turns, steering markers, the reply's speed.

    A branch's reply starts with the tokens it keeps of the reply it branches: `kept_of(event)`
    gives them (the chat knows which reply it branched; a replay, which reply the session names).
    """

    def __init__(self, kept_of: Callable[[BranchStarted], list[TokenView]] = no_kept_tokens) -> None:
        self.kept_of = kept_of
        self.turns: list[TurnView] = []
        self.current: TurnView | None = None
        self.last_token: TokenView | None = None  # the newest token with a readout
        self._last_version = 0
        self._reply_started = 0.0
        self._reply_tokens = 0

    def tokens(self) -> list[TokenView]:
        """Every shown token that has a readout, in order."""
        return [token for turn in self.turns for token in turn.tokens if token.probe is not None]

    def end_turn(self) -> None:
        """A new generation starts: its first event opens a new turn."""
        self.current = None

    def drop_last_reply(self) -> None:
        if self.turns and self.turns[-1].role == "reply":
            self.turns.pop()
        self.current = None

    def apply(self, events: Iterable[Event]) -> Applied:
        applied = Applied()
        for event in events:
            if isinstance(event, Token):
                token = self._add_token(event, applied)
                if token.readable:
                    applied.fresh.append(token)
            elif isinstance(event, TurnStarted):
                self._open("prompt", applied)
                self._reply_started, self._reply_tokens = time.perf_counter(), 0
            elif isinstance(event, BranchStarted):
                self._open("reply", applied).tokens = list(self.kept_of(event))
                self._reply_started, self._reply_tokens = time.perf_counter(), 0
            elif isinstance(event, Truncated):
                applied.truncated.append(event)
            elif isinstance(event, TurnFinished):
                if self.current is not None:
                    self.current.note = event.reason if event.reason != "eos" else ""
                    self._touch(self.current, applied)
                applied.speed = event.tokens_per_second
        return applied

    def _open(self, role: str, applied: Applied) -> TurnView:
        self.current = TurnView(role)
        self.turns.append(self.current)
        self._touch(self.current, applied)
        return self.current

    @staticmethod
    def _touch(turn: TurnView, applied: Applied) -> None:
        if not applied.changed or applied.changed[-1] is not turn:
            applied.changed.append(turn)

    def _add_token(self, event: Token, applied: Applied) -> TokenView:
        reply = event.source == "reply"
        turn = self.current
        if turn is None or (reply and turn.role != "reply"):
            turn = self._open("reply" if reply else "prompt", applied)
        self._touch(turn, applied)
        token = TokenView(
            event.index, event.text, event.probe, event.smoothed, position=event.position, source=event.source
        )
        if reply and (event.steering_version != self._last_version or (not turn.tokens and event.steering)):
            token.marker = ", ".join(f"{n} {v:+.2f}" for n, v in event.steering.items()) or "steering off"
        self._last_version = event.steering_version
        turn.tokens.append(token)
        if event.probe is not None:
            self.last_token = token
        if reply:
            self._reply_tokens += 1
            seconds = time.perf_counter() - self._reply_started
            if seconds > 0:
                applied.speed = self._reply_tokens / seconds
        return token
