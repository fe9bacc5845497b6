"""The throttle that paces what changes with every token: with the batches when due, else by a timer."""

import time

from textual.widgets import Static

from emolab.tui.throttle import DUE, Throttle
from tests.tui.harness import Host

PERIOD = 0.6  # long enough that a busy machine does not reach DUE between two calls made together


def counted(app: Host) -> tuple[Throttle, list[float]]:
    """A throttle on the app's timers, and when it drew."""
    drawn: list[float] = []
    return Throttle(app, PERIOD, lambda: drawn.append(time.monotonic())), drawn


async def test_the_first_change_draws_at_once_and_the_next_ones_wait_for_the_period():
    app = Host(Static())
    async with app.run_test() as pilot:
        throttle, drawn = counted(app)
        throttle()
        assert len(drawn) == 1
        throttle()
        throttle()
        assert len(drawn) == 1  # soon after: pending
        await pilot.pause(PERIOD * (2 - DUE) + 0.2)
        assert len(drawn) == 2  # the timer drew the latest, once
        await pilot.pause(PERIOD)
        assert len(drawn) == 2  # nothing more was pending


async def test_a_change_that_comes_once_the_period_is_nearly_over_draws_with_it_and_cancels_the_timer():
    app = Host(Static())
    async with app.run_test() as pilot:
        throttle, drawn = counted(app)
        throttle()
        throttle()  # pending, with a timer
        await pilot.pause(PERIOD * DUE + 0.05)
        throttle()  # a batch that is due: drawn now, in its own frame
        assert len(drawn) == 2
        await pilot.pause(PERIOD * (2 - DUE))
        assert len(drawn) == 2  # the timer did not draw again


async def test_flush_draws_a_pending_change_now_and_nothing_otherwise():
    app = Host(Static())
    async with app.run_test():
        throttle, drawn = counted(app)
        throttle.flush()
        assert drawn == []
        throttle()
        throttle()
        throttle.flush()
        assert len(drawn) == 2
