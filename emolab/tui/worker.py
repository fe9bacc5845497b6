"""The messages an engine link posts to its screen, and the in-process link's thread work.

Only `post_message` crosses threads (it is thread-safe and never blocks), so a slow screen
never slows the decode loop. Both links post the same messages.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from textual.message import Message

from emolab.core.errors import EmolabError
from emolab.core.events import Event
from emolab.process.commands import stream


@dataclass
class LoadProgress(Message):
    stage: str
    done: int
    total: int | None


@dataclass
class EngineReady(Message):
    info: dict  # emolab.process.commands.engine_info: the status bar's line, the session's metadata


@dataclass
class LoadFailed(Message):
    error: str


@dataclass
class EngineEvents(Message):
    events: list[Event]


@dataclass
class GenerationEnded(Message):
    error: str | None
    status: dict | None  # engine_status after the generation; None if the engine died
    # The conversation as it goes on from each reply just written (commands.generation_ended).
    histories: list[dict] = field(default_factory=list)


@dataclass
class CommandDone(Message):
    name: str
    result: object
    status: dict


@dataclass
class CommandFailed(Message):
    name: str
    error: str


@dataclass
class EngineDied(Message):
    reason: str  # one line


def load_engine(post: Callable[[Message], object], loader: Callable, ready: Callable[[object], dict]) -> None:
    """Runs in a thread worker: `loader(progress)` returns a ready Engine; `ready(engine)` its info."""
    try:
        engine = loader(lambda stage, done, total: post(LoadProgress(stage, done, total)))
        info = ready(engine)
    except EmolabError as error:
        post(LoadFailed(str(error)))
    except Exception as error:  # noqa: BLE001 - anything else is a bug: show it rather than hang in "loading"
        post(LoadFailed(f"{type(error).__name__}: {error} ({traceback.format_exc(limit=1).splitlines()[-1]})"))
    else:
        post(EngineReady(info))


def stream_generation(
    post: Callable[[Message], object], start: Callable[[], Iterator[Event]], ended: Callable[[], dict]
) -> None:
    """Runs in a thread worker: iterate the engine's events and post them in small batches;
    `ended()` is commands.generation_ended for this generation."""
    error = stream(start, lambda batch: post(EngineEvents(batch)))
    post(GenerationEnded(error, **ended()))
