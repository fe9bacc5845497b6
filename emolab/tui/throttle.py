"""Drawing what changes with every token at most about once a period, the latest state winning.

A streaming reply arrives in batches (process/commands.py: BATCH_SECONDS), and Textual draws one
frame per batch. A widget that redraws on every batch widens each frame's dirty area, and Textual
renders every widget inside that area. A throttled draw runs with a batch that comes once the
period has nearly passed, so it shares that batch's frame instead of taking one of its own; a
timer draws what is left when the batches stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer

DUE = 0.75  # a call this far into the period draws: batches come a little early or late


def latest(period: float) -> float:
    """How long after a draw a pending change is drawn at the latest: after the period, and after
    the batch due by then."""
    return period * (2 - DUE)


class Throttle:
    def __init__(
        self, owner: MessagePump, period: float, draw: Callable[[], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.owner = owner  # whose timer draws the last change
        self.period = period
        self.draw = draw
        self.clock = clock
        self._drawn = float("-inf")
        self._pending = False
        self._timer: Timer | None = None

    @property
    def waiting(self) -> bool:
        """A timer is set to draw a pending change."""
        return self._timer is not None

    def __call__(self) -> None:
        """Something changed: draw now if the period has (nearly) passed, else soon."""
        self._pending = True
        since = self.clock() - self._drawn
        if since >= self.period * DUE:
            self.flush()
        elif self._timer is None:
            self._timer = self.owner.set_timer(latest(self.period) - since, self._expired)

    def flush(self) -> None:
        """Draw a pending change now (a user's action waits for no period)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._pending:
            self._pending = False
            self._drawn = self.clock()
            self.draw()

    def _expired(self) -> None:
        self._timer = None
        self.flush()
