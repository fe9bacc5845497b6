"""The chat screen's one way to the engine: commands out, events and replies back as messages.

Two links keep the same methods and post the same messages (tui/worker.py):

- ChildProcessLink (tui/child_link.py), what `emolab chat` uses: the engine runs in a child
  process (emolab/process/), so this process never imports torch and its UI has a core of its own.
- InProcessLink: the engine in this process, in thread workers (`emolab chat --in-process`,
  and the pilot tests, which reach into the engine).

Every command is an entry of emolab.process.commands.COMMANDS, run the same way by both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import partial

from textual.dom import DOMNode

from emolab.core.errors import EmolabError
from emolab.core.events import Token
from emolab.core.sampling import Sampling
from emolab.process.commands import command, engine_info, engine_status, generation_ended
from emolab.tui.worker import (
    CommandDone,
    CommandFailed,
    load_engine,
    stream_generation,
)

LinkFactory = Callable[[DOMNode], "EngineLink"]


class EngineLink:
    """What both links share: the state the screen reads, and the commands by name."""

    can_restart = False

    def __init__(self, host: DOMNode) -> None:
        self.host = host  # where the messages go (and the workers run)
        self.info: dict | None = None  # set by attach(), once EngineReady arrives
        self.status = {"context_used": 0, "has_reply": False}
        self.sampling: Sampling | None = None
        self.generating = False

    @property
    def ready(self) -> bool:
        return self.info is not None

    @property
    def idle(self) -> bool:
        """Ready for a command that needs the engine to itself (chat, regenerate, new chat)."""
        return self.ready and not self.generating

    def attach(self, info: dict) -> None:
        self.info = info
        self.status = info["status"]
        self.sampling = Sampling(**info["sampling"])

    def update(self, status: dict | None) -> None:
        if status is not None:
            self.status = status

    def saw(self, events) -> None:
        """A batch of events: the context in use grows with the tokens as they arrive."""
        positions = [event.position for event in events if isinstance(event, Token)]
        if positions:
            self.status = {**self.status, "context_used": positions[-1] + 1}

    def ended(self, status: dict | None) -> None:
        """GenerationEnded arrived: the engine is free."""
        self.generating = False
        self.update(status)

    def died(self) -> None:
        self.info = None
        self.generating = False

    # -- commands ---------------------------------------------------------------------------------

    def chat(self, text: str) -> None:
        self.generate("chat", text=text)

    def regenerate(self) -> None:
        self.generate("regenerate")

    def compare(self, other: dict[str, float] | None = None) -> None:
        """The last message answered twice: lane 0 with the sliders, lane 1 with `other` (None: no steering)."""
        self.generate("compare", other=other)

    def branch_at(self, position: int) -> None:
        self.generate("branch_at", position=position)

    def use_history(self, history: dict) -> None:
        """Continue from another branch: a snapshot GenerationEnded brought (`histories`)."""
        self.send("use_history", history=history)

    def generate(self, name: str, **arguments) -> None:
        self.generating = True
        self._generate(name, arguments)

    def stop(self) -> bool:
        """End the reply after the token being computed; False if there is none."""
        if not self.ready or not self.generating:
            return False
        self.send("stop")
        return True

    def new_chat(self) -> None:
        self.send("new_chat")
        self.status = {"context_used": 0, "has_reply": False}

    def set_steering(self, emotion: str, strength: float) -> None:
        """Applies from the next token; CommandDone("set_steering") carries the version and state."""
        self.send("set_steering", emotion=emotion, strength=strength)

    def replace_steering(self, strengths: dict[str, float]) -> None:
        self.send("replace_steering", strengths=strengths)

    def set_sampling(self, sampling: Sampling) -> None:
        self.sampling = sampling
        self.send("set_sampling", **asdict(sampling))

    @property
    def has_reply(self) -> bool:
        return self.status["has_reply"]

    def describe(self) -> str:
        return self.info["model"]

    def context(self) -> str:
        return f"context {self.status['context_used']}/{self.info['context_window']}"

    # -- what each link does ------------------------------------------------------------------------

    def load(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    def send(self, name: str, **arguments) -> None:
        """Run a command that does not generate (at once, also while a reply streams)."""
        raise NotImplementedError

    def _generate(self, name: str, arguments: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Quitting: end the reply after its current token; a child process ends."""
        self.stop()


class InProcessLink(EngineLink):
    def __init__(self, host: DOMNode, loader: Callable, pack_path: str) -> None:
        super().__init__(host)
        self.loader = loader
        self.pack_path = str(pack_path)
        self.engine = None  # the Engine, for the tests that reach into it

    def load(self) -> None:
        def ready(engine) -> dict:
            self.engine = engine
            return engine_info(engine, self.pack_path)

        self.host.run_worker(
            partial(load_engine, self.host.post_message, self.loader, ready), thread=True, group="load", exclusive=True
        )

    def restart(self) -> None:
        self.host.notify("the engine runs in this process (--in-process): there is nothing to restart")

    def send(self, name: str, **arguments) -> None:
        try:
            result = command(name).run(self.engine, **arguments)
        except EmolabError as error:
            self.host.post_message(CommandFailed(name, str(error)))
        else:
            self.host.post_message(CommandDone(name, result, engine_status(self.engine)))

    def _generate(self, name: str, arguments: dict) -> None:
        start = partial(command(name).run, self.engine, **arguments)
        self.host.run_worker(
            partial(stream_generation, self.host.post_message, start, partial(generation_ended, self.engine, name)),
            thread=True,
            group="generation",
            exclusive=True,
        )


def in_process(loader: Callable, pack_path) -> LinkFactory:
    return lambda host: InProcessLink(host, loader, pack_path)
