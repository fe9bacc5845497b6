"""The engine's child process, seen from the console: start it, send commands, read its messages.

The console and the child share an anonymous socket pair (POSIX), so nothing listens on a port
or a path. The child's stderr goes to a temporary file: the terminal belongs to the console,
and the file's last line explains a crash.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

import emolab
from emolab.core.events import (
    BranchStarted,
    CompareFinished,
    CompareStarted,
    Event,
    LaneEvent,
    Token,
    TurnFinished,
    TurnStarted,
)
from emolab.process.commands import EngineSpec
from emolab.process.wire import decode, encode


class ChildEngine:
    def __init__(self, spec: EngineSpec) -> None:
        self.spec = spec
        self.process: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.closing = False
        self._log = tempfile.TemporaryFile()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        # The child imports this emolab, whatever the console's sys.path was made of.
        source = str(Path(emolab.__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
        environment = {**os.environ, "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emolab.process.child", str(theirs.fileno()), str(os.getpid())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=environment,
            start_new_session=True,
        )  # its own session: the terminal's signals are the console's
        theirs.close()
        self.connection = Connection(ours.detach())
        self.send({"kind": "spec", "spec": self.spec.to_json()})

    def send(self, header: dict) -> bool:
        """False if the child is gone (its death is reported by `messages`)."""
        try:
            with self._lock:
                self.connection.send_bytes(encode(header))
        except (OSError, ValueError):
            return False
        return True

    def messages(self) -> Iterator[tuple[dict, dict[str, np.ndarray]]]:
        """Every message until the child's end of the socket closes."""
        while True:
            try:
                message = self.connection.recv_bytes()
            except (EOFError, OSError):
                return
            yield decode(message)

    def exit_reason(self) -> str:
        """One line: how the child ended."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the engine process stopped answering"
        if code < 0:
            return f"the engine process was killed by {signal.Signals(-code).name}"
        self._log.seek(0)
        lines = [line for line in self._log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return f"the engine process exited with code {code}" + (f": {lines[-1].strip()}" if lines else "")

    def close(self) -> None:
        """End the child: close the socket (it exits at its end), then make sure."""
        self.closing = True
        if self.connection is not None:
            self.connection.close()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Continuity:
    """A restarted engine's events continue the first one's: token indices, steering versions and
    times go on from where they were, so one session holds both without a clash."""

    def __init__(self) -> None:
        self.next_index = 0
        self.top_version = 0
        self._index_offset = 0
        self._version_offset = 0
        self._t_offset = 0.0
        self.origin: float | None = None  # the first engine's clock start, on this process's clock
        self.last_t = 0.0

    def engine_ready(self, engine_t: float) -> None:
        """A (re)started engine is ready; `engine_t` is its own clock's reading."""
        start = time.perf_counter() - engine_t
        if self.origin is None:
            self.origin = start
            return
        self._index_offset, self._version_offset = self.next_index, self.top_version
        self._t_offset = start - self.origin

    def version(self, version: int) -> int:
        mapped = version + self._version_offset if version else 0  # 0 is no steering in every engine
        self.top_version = max(self.top_version, mapped)
        return mapped

    def event(self, event: Event) -> Event:
        if isinstance(event, LaneEvent):  # a compare's lane: its token or its end, mapped alike
            return LaneEvent(event.lane, self.event(event.event))
        if isinstance(event, Token):
            event = replace(
                event,
                index=event.index + self._index_offset,
                t=event.t + self._t_offset,
                steering_version=self.version(event.steering_version),
            )
            self.next_index = event.index + 1
        elif hasattr(event, "t"):
            event = replace(event, t=event.t + self._t_offset)
        self.last_t = event.t
        return event


def died_mid_reply(pieces: list[str], t: float) -> TurnFinished:
    """The end of a reply whose engine died: what arrived is kept, and the session says why it ends."""
    return TurnFinished("engine_died", "".join(pieces), len(pieces), 0.0, t)


class Streaming:
    """What the engine is writing (a reply, or a compare's two lanes), so that an engine that dies
    mid-generation ends it with what arrived."""

    def __init__(self) -> None:
        self.pieces: dict[int | None, list[str]] | None = None  # lane (None: a plain reply) → its pieces
        self.compare = False

    def started(self) -> None:
        self.pieces, self.compare = {None: []}, False

    def follow(self, events: list[Event]) -> None:
        for wrapped in events:
            lane, event = (wrapped.lane, wrapped.event) if isinstance(wrapped, LaneEvent) else (None, wrapped)
            if isinstance(event, (TurnStarted, BranchStarted)):
                self.pieces = {None: []}
            elif isinstance(event, CompareStarted):
                self.pieces, self.compare = {0: [], 1: []}, True
            elif isinstance(event, Token) and event.source == "reply" and self.pieces is not None:
                self.pieces.setdefault(lane, []).append(event.text)
            elif isinstance(event, TurnFinished) and self.pieces is not None:
                self.pieces.pop(lane, None)
            elif isinstance(event, CompareFinished):
                self.pieces, self.compare = None, False

    def ended(self) -> None:
        self.pieces, self.compare = None, False

    def died(self, t: float) -> list[Event]:
        """The events that end what was being written ([] if nothing was)."""
        if self.pieces is None:
            return []
        ends: list[Event] = [
            died_mid_reply(pieces, t) if lane is None else LaneEvent(lane, died_mid_reply(pieces, t))
            for lane, pieces in self.pieces.items()
        ]
        if self.compare:
            ends.append(CompareFinished(None, (0, 0), 0.0, t))
        self.ended()
        return ends
