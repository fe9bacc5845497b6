"""Pilot helpers: the app under test runs a real engine on a tiny model, in process (InProcessLink),
so that a test can reach into the engine; tests/tui/test_engine_process.py runs it in a child."""

from __future__ import annotations

import time

from emolab.core.engine import Engine
from emolab.core.sampling import Sampling
from emolab.tui.app import EmolabApp
from emolab.tui.engine_link import in_process


async def wait_until(pilot, predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """For a state in the middle of a worker's work (some tokens in, say): poll until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def workers_done(pilot) -> None:
    """Wait for the app's workers (loading, generating) to end, then for the messages they posted."""
    await pilot.pause()  # a worker just asked for is still pending, and cannot be waited on yet
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def make_app(
    model, pack, *, sampling: Sampling | None = None, thresholds=None, engine_hook=None, **kwargs
) -> EmolabApp:
    def loader(progress):
        progress("loading the tiny model", 1, 1)
        engine = Engine(model, pack, sampling=sampling or Sampling(temperature=0, max_tokens=12))
        if engine_hook:
            engine_hook(engine)
        return engine

    return EmolabApp(
        pack,
        in_process(loader, pack.path),
        model_label="tiny-llama",
        thresholds=thresholds,
        keymap=kwargs.pop("keymap", {}),
        **kwargs,
    )


def engine(app):
    return app.chat.link.engine


async def ready(pilot) -> None:
    await workers_done(pilot)
    assert pilot.app.chat.link.ready, "the engine did not load"


async def send(pilot, text: str) -> None:
    app = pilot.app
    prompt = app.query_one("#prompt")
    prompt.focus()
    prompt.value = text
    await pilot.press("enter")
    await pilot.pause()  # Enter posts Input.Submitted; the screen handles it next
    assert app.chat.link.generating or app.chat.view.turn_log.turns, "the message did not start a generation"


async def settle(pilot) -> None:
    await workers_done(pilot)
    assert not pilot.app.chat.link.generating
