"""A compare as the console shows it: a TurnLog per lane, where the two replies first differ, and
how their mean readouts differ. Plain Python (no Textual): the chat and the replay feed it alike.
"""

from __future__ import annotations

import numpy as np

from emolab.core.compare import mean_difference
from emolab.core.events import CompareFinished, CompareStarted, LaneEvent, TurnStarted
from emolab.core.readouts import strongest
from emolab.tui.turns import Applied, TokenView, TurnLog, TurnView

SIDES = "AB"


def describe_steering(state) -> str:
    return ", ".join(f"{name} {value:+.2f}" for name, value in state.items()) or "steering off"


class CompareLog:
    def __init__(self, started: CompareStarted) -> None:
        self.started = started
        self.lanes = (TurnLog(), TurnLog())
        self.finished: CompareFinished | None = None
        for log in self.lanes:  # each lane's prompt tokens open its own prompt turn, timed from here
            log.apply([TurnStarted(started.prompt_tokens, started.reused_tokens, 0, started.t)])

    def apply(self, event: LaneEvent) -> Applied:
        return self.lanes[event.lane].apply([event.event])

    def reply(self, lane: int) -> TurnView | None:
        return next((turn for turn in reversed(self.lanes[lane].turns) if turn.role == "reply"), None)

    def reply_tokens(self, lane: int) -> list[TokenView]:
        reply = self.reply(lane)
        return reply.tokens if reply is not None else []

    def finish(self, event: CompareFinished) -> list[tuple[int, TurnView]]:
        """Both lanes ended: mark the first token where they differ, in each lane that has it."""
        self.finished = event
        marked = []
        offset = event.first_difference
        for lane in (0, 1):
            tokens = self.reply_tokens(lane)
            if offset is not None and offset < len(tokens):
                tokens[offset].differs = True
                marked.append((lane, self.reply(lane)))
        return marked

    def title(self, lane: int) -> str:
        what = "the sliders" if lane == 0 else "the other setting"
        return f"{SIDES[lane]} · {what}: {describe_steering(self.started.steering[lane])}"

    def mean_difference(self) -> np.ndarray | None:
        """A − B of the mean readouts over each reply (None while a lane has no readout)."""
        readouts = [[t.probe for t in self.reply_tokens(lane) if t.probe is not None] for lane in (0, 1)]
        if not all(readouts):
            return None
        return mean_difference(np.stack(readouts[0]), np.stack(readouts[1]))

    def summary(self, emotions: list[str], count: int = 4) -> str:
        """One line: where the replies first differ, and the emotions whose mean readouts differ most."""
        if self.finished is None:
            return "comparing: A and B are written side by side…"
        first = self.finished.first_difference
        where = "the two replies are the same" if first is None else f"first difference at reply token {first} (≠)"
        difference = self.mean_difference()
        if difference is None:
            return where
        shown = ", ".join(f"{name} {value:+.2f}" for name, value in strongest(difference, emotions, count))
        return f"{where} · mean readout A − B: {shown}"
