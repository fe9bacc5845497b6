"""The chat screen's one way to the engine: commands out, events back as messages.

Today the engine lives in this process and runs in thread workers (tui/worker.py), which
post LoadProgress, EngineReady, LoadFailed, EngineEvents and GenerationEnded to the host
screen. A link to an engine in a child process would keep these methods and post the
same messages; nothing else in the console calls the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.dom import DOMNode

from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE
from emolab.core.events import Event
from emolab.core.sampling import Sampling
from emolab.tui.worker import load_engine, stream_generation


@dataclass(frozen=True)
class SteeringChange:
    """The steering state after a change, as the engine numbered it."""

    version: int
    state: dict[str, float]


class EngineLink:
    def __init__(self, host: DOMNode, loader: Callable) -> None:
        self.host = host  # where the workers run and their messages go
        self.loader = loader
        self.engine = None  # set by attach(), once EngineReady arrives
        self.generating = False

    @property
    def ready(self) -> bool:
        return self.engine is not None

    @property
    def idle(self) -> bool:
        """Ready for a command that needs the engine to itself (chat, regenerate, new chat)."""
        return self.engine is not None and not self.generating

    def load(self) -> None:
        self.host.run_worker(partial(load_engine, self.host.post_message, self.loader), thread=True,
                             group="load", exclusive=True)

    def attach(self, engine) -> None:
        self.engine = engine

    # -- generation -------------------------------------------------------------------------------

    def chat(self, text: str) -> None:
        self._generate(lambda: self.engine.chat(text))

    def regenerate(self) -> None:
        self._generate(self.engine.regenerate)

    def branch_at(self, position: int) -> None:
        """Write the reply on from its token at this context position, with the sliders as they are."""
        self._generate(lambda: self.engine.branch_at(position))

    def compare(self, other: dict[str, float] | None = None) -> None:
        """Answer the last message twice: the sliders, and `other` (None: no steering)."""
        self._generate(lambda: self.engine.compare(other))

    def snapshot(self):
        """The conversation as it is now, to come back to with use_history (a branch of the chat)."""
        return self.engine.conversation.copy()

    def compared_snapshot(self):
        """After a compare: the conversation as it would go on with the second side's reply."""
        return self.engine.compared.copy() if self.engine.compared is not None else None

    def use_history(self, conversation) -> None:
        self.engine.use_history(conversation)

    def _generate(self, start: Callable[[], Iterator[Event]]) -> None:
        self.generating = True
        self.host.run_worker(partial(stream_generation, self.host.post_message, start), thread=True,
                             group="generation", exclusive=True)

    def ended(self) -> None:
        """GenerationEnded arrived: the engine is free."""
        self.generating = False

    def stop(self) -> bool:
        """End the reply after the token being computed; False if there is none."""
        if self.engine is None or not self.generating:
            return False
        self.engine.stop()
        return True

    def new_chat(self) -> None:
        self.engine.reset()

    @property
    def has_reply(self) -> bool:
        return any(message["role"] == "assistant" for message in self.engine.conversation.messages)

    # -- settings (any time, also while generating: they apply from the next token) -------------------

    def set_steering(self, emotion: str, strength: float) -> SteeringChange:
        self.engine.steering.set(emotion, strength)
        return self._steering()

    def replace_steering(self, strengths: dict[str, float]) -> SteeringChange:
        self.engine.steering.update(strengths, replace=True)
        return self._steering()

    def _steering(self) -> SteeringChange:
        snapshot = self.engine.steering.snapshot()
        return SteeringChange(snapshot.version, snapshot.as_dict())

    @property
    def sampling(self) -> Sampling:
        return self.engine.sampling

    def set_sampling(self, sampling: Sampling) -> None:
        self.engine.set_sampling(sampling)

    # -- what the status bar shows ------------------------------------------------------------------

    def describe(self) -> str:
        loaded = self.engine.loaded
        plain = f" · {PLAIN_TRANSCRIPT_NOTE}" if loaded.prompt_format == "plain" else ""
        return f"{loaded.reference} · {loaded.device.type} · {str(loaded.dtype).removeprefix('torch.')}{plain}"

    def context(self) -> str:
        return f"context {self.engine.context_used}/{self.engine.loaded.context_window}"
