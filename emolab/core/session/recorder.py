"""The session recorder: the console's and `emolab run`'s SessionSink, writing a replayable file."""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

import numpy as np

from emolab import __version__
from emolab.core.events import (
    BranchStarted,
    CompareFinished,
    CompareStarted,
    Event,
    LaneEvent,
    Token,
    Truncated,
    TurnFinished,
    TurnStarted,
)
from emolab.core.session.format import SessionData
from emolab.core.session.store import apply_entry, journal_path, write_atomically


def default_session_path(label: str, directory: str | Path | None = None) -> Path:
    """`sessions/<timestamp>-<slug>.json` under the current directory, or under EMOLAB_SESSIONS."""
    import os

    folder = Path(directory or os.environ.get("EMOLAB_SESSIONS") or "sessions")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "session"
    path = folder / f"{stamp}-{slug}.json"
    number = 2
    while path.exists():
        path = folder / f"{stamp}-{slug}-{number}.json"
        number += 1
    return path


def session_meta(engine, pack_path: str | Path) -> dict:
    loaded, pack, sampling = engine.loaded, engine.pack, engine.sampling
    return {
        "emolab_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"id": loaded.reference, "weights": loaded.weights_id},
        "pack": {"name": pack.name, "path": str(pack_path), "sha256": pack.sha256},
        "device": loaded.device.type,
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "system_prompt": engine.conversation.system,
        "sampling": {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        },
        "emotions": list(pack.emotions),
    }


class SessionRecorder:
    """Records everything a replay needs; saves atomically after each turn, journals in between.

    Nothing is written until the first message: what comes before it (slider moves, notes) is
    kept and goes into the file with it, and a session without a message leaves no file.

    The turns form a tree. The recorder follows the engine's conversation as a path of turn ids
    (user, assistant, ...), from the same events: a regeneration or a compare answers the message
    at the end of the path again, a branch cuts the path at the reply it branches, and a
    `history` note (a switch to another branch) sets the path to the ancestors of a reply.
    """

    def __init__(self, path: str | Path, meta: dict, *, clock=None):
        self.path = Path(path)
        self.data = SessionData(meta=meta)
        self.clock = clock or time.perf_counter
        self.started = self.clock()
        self.seq = 0
        self._journal: TextIO | None = None  # opened with the first message
        # Saving a long session takes milliseconds: after a turn it runs here, off the caller's thread.
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emolab-session-save")
        self._pending: Future | None = None
        self._path: list[int] = []  # the turn ids of the conversation the engine holds
        self._writing: dict[int | None, dict] = {}  # lane (None outside a compare) → the reply being written
        self._compares = 0
        self._lane_reply: int | None = None  # a compare's lane 0 reply, which the path goes on with

    def _begin(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, self.data, self.seq)  # everything so far; the journal holds the rest
        self._journal = journal_path(self.path).open("w", encoding="utf-8")

    def _t(self) -> float:
        return round(self.clock() - self.started, 3)

    def _append(self, entry: dict) -> None:
        self.seq += 1
        entry["n"] = self.seq
        apply_entry(self.data, entry)
        if self._journal is not None:
            self._journal.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
            self._journal.flush()  # in the OS's hands now: a killed process loses nothing

    # -- SessionSink ----------------------------------------------------------------------------

    def record_event(self, event: Event) -> None:
        lane = None
        if isinstance(event, LaneEvent):
            lane, event = event.lane, event.event
        if isinstance(event, Token):
            probe = event.probe
            blob = base64.b64encode(probe.astype("<f2").tobytes()).decode("ascii") if probe is not None else ""
            turn = self._writing.get(lane) or self._open_reply(lane)
            self._append(
                {
                    "k": "tok",
                    "i": event.index,
                    "pos": event.position,
                    "id": event.token_id,
                    "x": event.text,
                    "s": event.source,
                    "t": int(round(event.t * 1000)),
                    "v": event.steering_version,
                    "u": turn["id"],
                    "p": blob,
                }
            )
            if event.source == "reply" and "first_token" not in turn:
                turn["first_token"] = event.index
            version = str(event.steering_version)
            if version not in self.data.states:
                self._append({"k": "state", "version": event.steering_version, "state": dict(event.steering)})
        elif isinstance(event, TurnStarted):
            self._open_reply(None)
        elif isinstance(event, BranchStarted):
            of = self._path[event.message] if event.message < len(self._path) else None
            self.record_note("branch", position=event.position, kept=event.kept_tokens, of=of)
            del self._path[event.message :]
            self._open_reply(None, branch={"of": of, "kept": event.kept_tokens} if of is not None else None)
        elif isinstance(event, CompareStarted):
            self._compares += 1
            steering = [dict(state) for state in event.steering]
            self.record_note("compare", group=self._compares, steering=steering, mode=event.mode)
            for number, state in enumerate(steering):
                self._open_reply(
                    number, compare={"group": self._compares, "lane": number, "steering": state, "mode": event.mode}
                )
        elif isinstance(event, TurnFinished):
            turn = self._writing.get(lane) or self._open_reply(lane)
            self._writing.pop(lane, None)
            self._append(
                {
                    "k": "turn",
                    **turn,
                    "text": event.text,
                    "t": self._t(),
                    "finish": event.reason,
                    "first_token": turn.get("first_token", self._next_index()),
                }
            )
            if lane is None:
                self._path.append(turn["id"])
                self._save_soon()
            elif lane == 0:
                self._lane_reply = turn["id"]
        elif isinstance(event, CompareFinished):
            assert self._lane_reply is not None  # lane 0 finished before the compare did
            self._path.append(self._lane_reply)  # the conversation goes on with lane 0's reply
            self._save_soon()
        elif isinstance(event, Truncated):
            self.record_note("truncated", dropped_messages=event.dropped_messages)

    def _open_reply(self, lane: int | None, **details) -> dict:
        """A new assistant turn for the message at the end of the path (a reply there before is replaced)."""
        if self._path and self._turn_role(self._path[-1]) == "assistant" and not details.get("branch"):
            self._path.pop()  # a regeneration or a compare: the engine dropped that reply
        turn = {
            "id": self._new_turn_id(),
            "parent": self._path[-1] if self._path else None,
            "role": "assistant",
            **{key: value for key, value in details.items() if value is not None},
        }
        self._writing[lane] = turn
        return turn

    def _new_turn_id(self) -> int:
        taken = [turn["id"] for turn in self.data.turns] + [turn["id"] for turn in self._writing.values()]
        return max(taken, default=-1) + 1

    def _turn_role(self, turn_id: int) -> str:
        return next((turn["role"] for turn in self.data.turns if turn["id"] == turn_id), "assistant")

    def _next_index(self) -> int:
        return self.data.columns["index"][-1] + 1 if self.data.token_count else 0

    def _save_soon(self) -> None:
        if self._journal is not None:
            self._pending = self._saver.submit(write_atomically, self.path, self.data.copy(), self.seq)

    def record_steering(self, emotion: str, strength: float, version: int, state: dict[str, float]) -> None:
        self._append(
            {
                "k": "steer",
                "t": self._t(),
                "emotion": emotion,
                "strength": strength,
                "version": version,
                "state": dict(state),
            }
        )

    def record_note(self, kind: str, **details) -> None:
        if kind == "message":
            if self._journal is None:
                self._begin()
            turn_id = self._new_turn_id()
            self._append(
                {
                    "k": "turn",
                    "id": turn_id,
                    "parent": self._path[-1] if self._path else None,
                    "role": "user",
                    "text": details["text"],
                    "t": self._t(),
                }
            )
            self._path.append(turn_id)
            return
        if kind == "new_chat":
            self._path = []
        elif kind == "history":  # the console shows another branch: its reply number `reply`
            replies = [turn for turn in self.data.turns if turn["role"] == "assistant"]
            self._path = self._ancestors(replies[details["reply"]]["id"])
        self._append({"k": "note", "kind": kind, "t": self._t(), **_jsonable(details)})

    def _ancestors(self, turn_id: int | None) -> list[int]:
        """The path from the first turn down to this one."""
        parents = {turn["id"]: turn.get("parent") for turn in self.data.turns}
        path = []
        while turn_id is not None:
            path.append(turn_id)
            turn_id = parents.get(turn_id)
        return path[::-1]

    def save(self) -> Path | None:
        """Write the session now (None before the first message). The journal stays: the file
        records how much of it is included."""
        if self._journal is None:
            return None
        self._saver.submit(write_atomically, self.path, self.data.copy(), self.seq).result()
        return self.path

    def close(self) -> Path | None:
        """Save and end the recording; returns the file, or None if no message ever made one."""
        saved = self.save()
        self._saver.shutdown(wait=True)
        if self._journal is not None:
            self._journal.close()
            journal_path(self.path).unlink(missing_ok=True)
        return saved


def _jsonable(details: dict) -> dict:
    result = {}
    for key, value in details.items():
        if isinstance(value, np.generic):
            value = value.item()
        result[key] = value
    return result
