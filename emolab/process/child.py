"""The engine's own process: `python -m emolab.process.child FD PARENT_PID`, started by the console.

FD is this end of a socket pair with the console. The console sends the EngineSpec first, then
commands; this process loads the model and the pack, decodes on the main thread with every core,
and sends progress, readiness, batches of events and replies. Commands are read on a thread of
their own, so a slider change reaches the engine while a reply streams, from the next token on.

It ends when the console does: at the end of the socket (the console quit, or was killed, and
the kernel closed its end), or when its parent process is gone.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from multiprocessing.connection import Connection

from emolab.core.errors import EmolabError
from emolab.process.commands import (
    EngineSpec,
    command,
    engine_info,
    engine_status,
    generation_ended,
    open_engine,
    stream,
)
from emolab.process.wire import decode, encode, encode_events

PARENT_CHECK_SECONDS = 0.5


class Channel:
    """The socket to the console; the main thread (events) and the command thread (replies) both send."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def send(self, header: dict) -> None:
        self.send_bytes(encode(header))

    def send_bytes(self, message: bytes) -> None:
        with self._lock:
            self.connection.send_bytes(message)


def watch_parent(parent: int) -> None:
    """A parent-death check: if the console is gone (reparented), so is the engine."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="emolab-parent-watch", daemon=True).start()


def serve(connection: Connection) -> None:
    channel = Channel(connection)
    try:
        spec = EngineSpec.from_json(decode(connection.recv_bytes())[0]["spec"])
    except (EOFError, OSError):
        return
    ready = threading.Event()
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    box: dict = {}
    threading.Thread(
        target=read_commands, args=(connection, channel, jobs, ready, box), name="emolab-commands", daemon=True
    ).start()
    try:
        engine = open_engine(
            spec,
            lambda stage, done, total: channel.send({"kind": "progress", "stage": stage, "done": done, "total": total}),
        )
    except EmolabError as error:
        channel.send({"kind": "load_failed", "error": str(error)})
        return
    except Exception as error:  # noqa: BLE001 - a bug: show it in the console rather than hang in "loading"
        channel.send({"kind": "load_failed", "error": f"{type(error).__name__}: {error}"})
        return
    box["engine"] = engine
    ready.set()
    channel.send({"kind": "ready", "info": engine_info(engine, spec.pack)})
    while True:
        name, arguments = jobs.get()
        error = stream(
            lambda: command(name).run(engine, **arguments),  # noqa: B023 - run before the loop moves on
            lambda batch: channel.send_bytes(encode_events(batch)),
        )
        channel.send({"kind": "ended", "error": error, **generation_ended(engine, name)})


def read_commands(
    connection: Connection, channel: Channel, jobs: queue.SimpleQueue, ready: threading.Event, box: dict
) -> None:
    """Runs on its own thread: generations go to the main thread, every other command runs here at once."""
    while True:
        try:
            header, _ = decode(connection.recv_bytes())
        except (EOFError, OSError):
            os._exit(0)  # the console is gone: nothing here needs saving
        name, arguments = header.get("name", ""), header.get("arguments", {})
        try:
            entry = command(name)
            if entry.generates:
                jobs.put((name, arguments))
                continue
            if not ready.is_set():
                raise EmolabError("the model is still loading")
            engine = box["engine"]
            result = entry.run(engine, **arguments)
        except EmolabError as error:
            channel.send({"kind": "failed", "name": name, "error": str(error)})
        except Exception as error:  # noqa: BLE001 - a bug in one command must not end the engine
            channel.send({"kind": "failed", "name": name, "error": f"{type(error).__name__}: {error}"})
        else:
            channel.send({"kind": "done", "name": name, "result": result, "status": engine_status(engine)})


def main(argv: list[str]) -> None:
    descriptor, parent = int(argv[1]), int(argv[2])
    # A command waits for the GIL while the decode loop runs Python: at most 1 ms, not the default
    # 5 ms, so that a slider change is read by the next forward pass (only a waiting thread switches).
    sys.setswitchinterval(0.001)
    watch_parent(parent)
    serve(Connection(descriptor))  # returns only if the load failed: the console has the reason, and this ends


if __name__ == "__main__":
    main(sys.argv)
