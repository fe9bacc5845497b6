"""The throttle that paces what changes with every token: with the batches when due, else by a timer."""

from textual.widgets import Static

from emolab.tui.throttle import DUE, Throttle, latest
from tests.tui.harness import Host

PERIOD = 0.6


class Clock:
    """A clock the test moves: the throttle's choices, without the machine's timing."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counted(app: Host, clock=None) -> tuple[Throttle, list[float]]:
    """A throttle on the app's timers, and when it drew."""
    drawn: list[float] = []
    clock = clock or Clock()
    return Throttle(app, PERIOD, lambda: drawn.append(clock()), clock=clock), drawn


async def test_the_first_change_draws_at_once_and_the_next_ones_wait_for_the_timer():
    app = Host(Static())
    async with app.run_test() as pilot:
        throttle, drawn = counted(app)
        throttle()
        assert len(drawn) == 1
        throttle()
        throttle()
        assert len(drawn) == 1 and throttle.waiting  # soon after: pending
        await pilot.pause(latest(PERIOD) + 0.2)
        assert len(drawn) == 2 and not throttle.waiting  # the timer drew the latest, once
        await pilot.pause(PERIOD)
        assert len(drawn) == 2  # nothing more was pending


async def test_a_change_that_comes_once_the_period_is_nearly_over_draws_with_it_and_stops_the_timer():
    app = Host(Static())
    async with app.run_test():
        clock = Clock()
        throttle, drawn = counted(app, clock)
        throttle()
        clock.now += PERIOD * DUE / 2
        throttle()
        assert len(drawn) == 1 and throttle.waiting
        clock.now += PERIOD * DUE / 2 + 0.01  # a batch that is due: drawn now, in its own frame
        throttle()
        assert len(drawn) == 2 and not throttle.waiting


async def test_flush_draws_a_pending_change_now_and_nothing_otherwise():
    app = Host(Static())
    async with app.run_test():
        throttle, drawn = counted(app)
        throttle.flush()
        assert drawn == []
        throttle()
        throttle()
        throttle.flush()
        assert len(drawn) == 2 and not throttle.waiting
