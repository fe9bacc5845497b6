"""Pilot helpers: the app under test runs a real engine on a tiny model in a thread worker."""

from __future__ import annotations

import time

from emolab.core.engine import Engine
from emolab.core.sampling import Sampling
from emolab.tui.app import EmolabApp


async def wait_until(pilot, predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """One `pilot.pause()` is not enough for worker-driven updates: poll until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def make_app(model, pack, *, sampling: Sampling | None = None, thresholds=None, engine_hook=None, **kwargs) -> EmolabApp:
    def loader(progress):
        progress("loading the tiny model", 1, 1)
        engine = Engine(model, pack, sampling=sampling or Sampling(temperature=0, max_tokens=12))
        if engine_hook:
            engine_hook(engine)
        return engine

    return EmolabApp(pack, loader, model_label="tiny-llama", thresholds=thresholds, **kwargs)


async def ready(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.engine is not None, what="the engine to load")
    await pilot.pause()


async def send(pilot, text: str) -> None:
    app = pilot.app
    app.query_one("#prompt").value = text
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.generating or app.turn is not None, what="generation to start")


async def settle(pilot) -> None:
    await wait_until(pilot, lambda: not pilot.app.generating, what="generation to end")
    await pilot.pause()
