"""The engine's commands, in one table that both links use: the console's own process or a child.

Adding a command is one entry in COMMANDS: a function of the engine and the command's JSON
arguments. A command that `generates` returns the engine's event iterator and needs the engine
to itself (the child runs it on its main thread, the in-process link in a thread worker); any
other runs at once, also while a reply streams (stop, steering, sampling), and returns a
JSON-able result. No torch here: the console's process imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from emolab.core.errors import EmolabError
from emolab.core.events import Event, Token
from emolab.core.sampling import Sampling

BATCH_SECONDS = 0.1  # events that come faster are sent (and shown) together: the console draws about 10 frames a second


@dataclass(frozen=True)
class Command:
    run: Callable[..., Any]  # run(engine, **arguments)
    generates: bool = False


def _steering(engine) -> dict:
    snapshot = engine.steering.snapshot()
    return {"version": snapshot.version, "state": snapshot.as_dict()}


def _set_steering(engine, emotion: str, strength: float) -> dict:
    name = engine.steering.set(emotion, strength)
    return {"emotion": name, "strength": strength, **_steering(engine)}


def _replace_steering(engine, strengths: dict[str, float]) -> dict:
    engine.steering.update(strengths, replace=True)
    return _steering(engine)


def _use_history(engine, history: dict) -> None:
    from emolab.core.conversation import Conversation

    engine.use_history(Conversation.from_json(history))


COMMANDS: dict[str, Command] = {
    "chat": Command(lambda engine, text: engine.chat(text), generates=True),
    "regenerate": Command(lambda engine: engine.regenerate(), generates=True),
    # other: lane 1's strengths (None: no steering); lane 0 holds the sliders as they are.
    "compare": Command(lambda engine, other=None: engine.compare(other), generates=True),
    "branch_at": Command(lambda engine, position: engine.branch_at(position), generates=True),
    "use_history": Command(_use_history),  # a snapshot from generation_ended: continue from that branch
    "stop": Command(lambda engine: engine.stop()),
    "new_chat": Command(lambda engine: engine.reset()),
    "set_steering": Command(_set_steering),
    "replace_steering": Command(_replace_steering),
    "set_sampling": Command(lambda engine, **settings: engine.set_sampling(Sampling(**settings))),
}


def command(name: str) -> Command:
    try:
        return COMMANDS[name]
    except KeyError:
        raise EmolabError(f"the engine has no command {name!r}") from None


def engine_status(engine) -> dict:
    """What the console shows of the engine between commands."""
    return {
        "context_used": engine.context_used,
        "has_reply": any(message["role"] == "assistant" for message in engine.conversation.messages),
    }


def generation_ended(engine, name: str) -> dict:
    """What the console learns as a generation ends: the engine's status, and the conversation as it
    goes on from each reply just written (a compare wrote two), to come back to that branch later."""
    histories = [engine.conversation.to_json()]
    if name == "compare" and engine.compared is not None:
        histories.append(engine.compared.to_json())
    return {"status": engine_status(engine), "histories": histories}


def engine_info(engine, pack_path: str) -> dict:
    """What the console needs once the engine is ready: the status bar, the session's metadata."""
    from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE
    from emolab.core.session import session_meta

    loaded = engine.loaded
    plain = f" · {PLAIN_TRANSCRIPT_NOTE}" if loaded.prompt_format == "plain" else ""
    model = f"{loaded.reference} · {loaded.device.type} · {str(loaded.dtype).removeprefix('torch.')}{plain}"
    return {
        "model": model,
        "context_window": loaded.context_window,
        "meta": session_meta(engine, pack_path),
        "sampling": asdict(engine.sampling),
        "status": engine_status(engine),
        "t": engine.elapsed(),
    }


def stream(start: Callable[[], Iterator[Event]], emit: Callable[[list[Event]], object]) -> str | None:
    """Run a generation and hand its events to `emit` in small batches; returns the error that ended it."""
    batch: list[Event] = []
    last = time.perf_counter()
    try:
        for event in start():
            batch.append(event)
            now = time.perf_counter()
            if not isinstance(event, Token) or now - last >= BATCH_SECONDS:
                emit(batch)
                batch, last = [], now
    except EmolabError as failure:
        return str(failure)
    except Exception as failure:  # noqa: BLE001 - a bug: report it in the console instead of dying silently
        return f"{type(failure).__name__}: {failure}"
    finally:
        if batch:
            emit(batch)
    return None


@dataclass(frozen=True)
class EngineSpec:
    """What the engine is made of; JSON, so that a child process (or one day a server) can build it."""

    pack: str
    model: str
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    sampling: dict = field(default_factory=lambda: asdict(Sampling()))
    system: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> EngineSpec:
        return cls(**document)


def open_engine(spec: EngineSpec, progress, *, ui_in_this_process: bool = False):
    """Load the model and the pack and build the engine (in whichever process runs it).

    In its own process the engine decodes with every core: the console's UI, in another process,
    takes about a tenth of a core while a reply streams. Beside a UI in this process (whose thread
    takes the GIL) it leaves that UI a core (devices.threads_beside_a_ui). benchmarks/ui_stall.py
    measured both on two cores."""
    from emolab.cli.options import load_checked
    from emolab.core.devices import threads_beside_a_ui
    from emolab.core.engine import Engine
    from emolab.core.pack import load_pack

    pack = load_pack(spec.pack)
    loaded = load_checked(
        pack,
        spec.model,
        device=spec.device,
        dtype=spec.dtype,
        trust_remote_code=spec.trust_remote_code,
        progress=progress,
        decoding=True,  # a chat writes far more than it reads
    )
    return Engine(
        loaded,
        pack,
        sampling=Sampling(**spec.sampling),
        system_prompt=spec.system,
        decode_threads=threads_beside_a_ui(loaded.device) if ui_in_this_process else None,
    )
