"""The session recorder: the console's and `emolab run`'s SessionSink, writing a replayable file."""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TextIO

import numpy as np

from emolab import __version__
from emolab.core.events import Event, Token, TurnFinished, Truncated
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
        "sampling": {"temperature": sampling.temperature, "top_p": sampling.top_p,
                     "max_tokens": sampling.max_tokens, "seed": sampling.seed},
        "emotions": list(pack.emotions),
    }


class SessionRecorder:
    """Records everything a replay needs; saves atomically after each turn, journals in between.

    Nothing is written until the first message: what comes before it (slider moves, notes) is
    kept and goes into the file with it, and a session without a message leaves no file.
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
        self._pending = None

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
        if isinstance(event, Token):
            probe = event.probe
            blob = base64.b64encode(probe.astype("<f2").tobytes()).decode("ascii") if probe is not None else ""
            self._append({"k": "tok", "i": event.index, "pos": event.position, "id": event.token_id, "x": event.text,
                          "s": event.source, "t": int(round(event.t * 1000)), "v": event.steering_version,
                          "p": blob})
            version = str(event.steering_version)
            if version not in self.data.states:
                self._append({"k": "state", "version": event.steering_version, "state": dict(event.steering)})
        elif isinstance(event, TurnFinished):
            first = next((i for i, s in zip(reversed(self.data.columns["index"]), reversed(self.data.columns["source"]))
                          if s != "reply"), None)
            self._append({"k": "turn", "role": "assistant", "text": event.text, "t": self._t(), "finish": event.reason,
                          "first_token": first + 1 if first is not None else 0})
            if self._journal is not None:
                self._pending = self._saver.submit(write_atomically, self.path, self.data.copy(), self.seq)
        elif isinstance(event, Truncated):
            self.record_note("truncated", dropped_messages=event.dropped_messages)

    def record_steering(self, emotion: str, strength: float, version: int, state: dict[str, float]) -> None:
        self._append({"k": "steer", "t": self._t(), "emotion": emotion, "strength": strength, "version": version,
                      "state": dict(state)})

    def record_note(self, kind: str, **details) -> None:
        if kind == "message":
            if self._journal is None:
                self._begin()
            self._append({"k": "turn", "role": "user", "text": details["text"], "t": self._t()})
            return
        self._append({"k": "note", "kind": kind, "t": self._t(), **_jsonable(details)})

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
