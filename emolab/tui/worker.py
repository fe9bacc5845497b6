"""The engine's thread side: loading the model and running generations, posting messages.

Only `post_message` crosses threads (it is thread-safe and never blocks), so a slow
screen never slows the decode loop. Events are batched when they come faster than
the screen needs them (a prompt's tokens arrive all at once).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from textual.message import Message

from emolab.core.errors import EmolabError
from emolab.core.events import Event, Token

BATCH_SECONDS = 0.03


@dataclass
class LoadProgress(Message):
    stage: str
    done: int
    total: int | None


@dataclass
class EngineReady(Message):
    engine: object  # an emolab.core.engine.Engine, handed to the screen's EngineLink


@dataclass
class LoadFailed(Message):
    error: str


@dataclass
class EngineEvents(Message):
    events: list[Event]


@dataclass
class GenerationEnded(Message):
    error: str | None


def load_engine(post: Callable[[Message], object], loader: Callable) -> None:
    """Runs in a thread worker: `loader(progress)` returns a ready Engine."""
    try:
        engine = loader(lambda stage, done, total: post(LoadProgress(stage, done, total)))
    except EmolabError as error:
        post(LoadFailed(str(error)))
    except Exception as error:  # noqa: BLE001 - anything else is a bug: show it rather than hang in "loading"
        post(LoadFailed(f"{type(error).__name__}: {error} ({traceback.format_exc(limit=1).splitlines()[-1]})"))
    else:
        post(EngineReady(engine))


def stream_generation(post: Callable[[Message], object], start: Callable[[], Iterator[Event]]) -> None:
    """Runs in a thread worker: iterate the engine's events and post them in small batches."""
    batch: list[Event] = []
    last_post = time.perf_counter()
    error = None
    try:
        for event in start():
            batch.append(event)
            now = time.perf_counter()
            if not isinstance(event, Token) or now - last_post >= BATCH_SECONDS:
                post(EngineEvents(batch))
                batch, last_post = [], now
    except EmolabError as failure:
        error = str(failure)
    except Exception as failure:  # noqa: BLE001 - a bug: report it in the UI instead of dying silently
        error = f"{type(failure).__name__}: {failure}"
    finally:
        if batch:
            post(EngineEvents(batch))
        post(GenerationEnded(error))
