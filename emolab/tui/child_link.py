"""The link to an engine in a child process (emolab/process/), what `emolab chat` uses: commands
go out over the socket, and a reader thread turns the child's messages into the screen's."""

from __future__ import annotations

from functools import partial

from textual.dom import DOMNode

from emolab.process.commands import EngineSpec, command
from emolab.process.wire import WireError, decode_events
from emolab.tui.engine_link import EngineLink, LinkFactory
from emolab.tui.worker import (
    CommandDone,
    CommandFailed,
    EngineDied,
    EngineEvents,
    EngineReady,
    GenerationEnded,
    LoadFailed,
    LoadProgress,
)


class ChildProcessLink(EngineLink):
    can_restart = True

    def __init__(self, host: DOMNode, spec: EngineSpec) -> None:
        from emolab.process.parent import Continuity, Streaming

        super().__init__(host)
        self.spec = spec
        self.child = None
        self.continuity = Continuity()
        self.streaming = Streaming()  # what arrived of the reply being written, kept if the engine dies

    def load(self) -> None:
        from emolab.process.parent import ChildEngine

        self.child = ChildEngine(self.spec)
        self.child.start()
        self.host.run_worker(partial(self._read, self.child), thread=True, group="engine", exclusive=True)

    def restart(self) -> None:
        if self.child is not None and self.child.process.poll() is None:
            self.host.notify("the engine is running")
            return
        self.load()

    def send(self, name: str, **arguments) -> None:
        command(name)  # an unknown name is a bug here, not in the child
        self.child.send({"kind": "command", "name": name, "arguments": arguments})

    def _generate(self, name: str, arguments: dict) -> None:
        self.streaming.started()
        self.send(name, **arguments)

    def close(self) -> None:
        if self.child is not None:
            self.child.close()

    def _read(self, child) -> None:
        """Runs in a thread worker for the child's whole life: its messages become the screen's."""
        post, continuity, streaming = self.host.post_message, self.continuity, self.streaming
        load_failed = False
        try:
            for header, arrays in child.messages():
                kind = header["kind"]
                if kind == "events":
                    events = [continuity.event(event) for event in decode_events(header, arrays)]
                    streaming.follow(events)
                    post(EngineEvents(events))
                elif kind == "ended":
                    streaming.ended()
                    post(GenerationEnded(header["error"], header["status"], header.get("histories", [])))
                elif kind == "done":
                    result = header["result"]
                    if isinstance(result, dict) and "version" in result:
                        result = {**result, "version": continuity.version(result["version"])}
                    post(CommandDone(header["name"], result, header["status"]))
                elif kind == "failed":
                    post(CommandFailed(header["name"], header["error"]))
                elif kind == "progress":
                    post(LoadProgress(header["stage"], header["done"], header["total"]))
                elif kind == "ready":
                    continuity.engine_ready(header["info"]["t"])
                    post(EngineReady(header["info"]))
                elif kind == "load_failed":
                    load_failed = True
                    post(LoadFailed(header["error"]))
        except (WireError, KeyError) as error:
            child.close()
            post(EngineDied(f"the engine sent a message this console cannot read ({error})"))
            return
        if child.closing or load_failed:
            return
        ends = streaming.died(continuity.last_t)
        if ends:  # the child died mid-reply: end the turn (or both lanes) with what arrived
            post(EngineEvents(ends))
            post(GenerationEnded(None, None))
        post(EngineDied(child.exit_reason()))


def child_process(spec: EngineSpec) -> LinkFactory:
    return lambda host: ChildProcessLink(host, spec)
