"""The session file: what it holds, how it is encoded, and how it is read back and checked.

Tokens are stored as columns; every token's readout for every emotion is one float16 row of
a single base64 blob (about 0.5 MB per 1,000 tokens with 171 emotions).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolab.core.documents import check_document
from emolab.core.smoothing import DEFAULT_HALF_LIFE, smooth, turn_starts
from emolab.core.errors import EmolabError

FORMAT = "emolab-session"
FORMAT_VERSION = 1
SCHEMA_ID = "https://emolab.dev/schemas/session-1.json"
TOKEN_COLUMNS = ("index", "position", "token_id", "text", "source", "t_ms", "steering_version")
ALERT_FIELDS = {"emotion", "threshold", "token_index"}


class SessionError(EmolabError):
    """A session file that cannot be read: one line naming the file and the problem."""


@dataclass
class SessionData:
    meta: dict
    turns: list[dict] = field(default_factory=list)
    columns: dict[str, list] = field(default_factory=lambda: {name: [] for name in TOKEN_COLUMNS})
    probes: list[np.ndarray] = field(default_factory=list)  # one float16 row per token
    steering: list[dict] = field(default_factory=list)
    states: dict[str, dict[str, float]] = field(default_factory=lambda: {"0": {}})
    notes: list[dict] = field(default_factory=list)

    @property
    def emotions(self) -> list[str]:
        return self.meta["emotions"]

    def copy(self) -> "SessionData":
        """A snapshot that later appends do not touch (rows and records are never changed in place)."""
        return SessionData(meta=self.meta, turns=list(self.turns),
                           columns={name: list(values) for name, values in self.columns.items()},
                           probes=list(self.probes), steering=list(self.steering), states=dict(self.states),
                           notes=list(self.notes))

    @property
    def token_count(self) -> int:
        return len(self.columns["index"])

    def probe_matrix(self) -> np.ndarray:
        if not self.probes:
            return np.zeros((0, len(self.emotions)), dtype=np.float16)
        return np.stack(self.probes)

    def reply_rows(self, turn: dict) -> list[int]:
        """Rows of an assistant turn's reply tokens: the run of reply tokens from its first_token on."""
        indices, sources = self.columns["index"], self.columns["source"]
        start = turn.get("first_token", 0)
        rows = []
        for row, (index, source) in enumerate(zip(indices, sources)):
            if index < start:
                continue
            if source != "reply" or index != start + len(rows):
                break
            rows.append(row)
        return rows

    def alert_notes(self) -> list[dict]:
        """The recorded alerts that say which emotion crossed which threshold at which token."""
        return [note for note in self.notes if note["kind"] == "alert" and ALERT_FIELDS <= note.keys()]

    def steering_with_first_tokens(self) -> list[dict]:
        """Each change with the index of the first token chosen under it (None if none was)."""
        versions = self.columns["steering_version"]
        indices = self.columns["index"]
        sources = self.columns["source"]
        result = []
        for change in self.steering:
            first = next((indices[i] for i in range(len(indices))
                          if sources[i] == "reply" and versions[i] >= change["version"]), None)
            result.append({**change, "first_token": first})
        return result

    def to_json(self) -> dict:
        blob = self.probe_matrix().astype("<f2").tobytes()
        return {
            "$schema": SCHEMA_ID,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta": self.meta,
            "turns": self.turns,
            "tokens": {"count": self.token_count, **self.columns,
                       "probe_f16": base64.b64encode(blob).decode("ascii")},
            "steering": self.steering_with_first_tokens(),
            "states": self.states,
            "notes": self.notes,
        }


def from_json(document: object, path: Path) -> SessionData:
    """Check a parsed session document completely; every problem is one line naming the file."""
    check_document(document, path, schema="session.schema.json", format_name=FORMAT, versions=(FORMAT_VERSION,),
                   error=SessionError, what="session")
    emotions = document["meta"]["emotions"]
    if len(set(emotions)) != len(emotions):
        raise SessionError(f"{path}: $.meta.emotions lists an emotion twice")
    tokens = document["tokens"]
    count = tokens["count"]
    for name in TOKEN_COLUMNS:
        if len(tokens[name]) != count:
            raise SessionError(f"{path}: $.tokens.{name} has {len(tokens[name])} entries, but count is {count}")
    try:
        blob = base64.b64decode(tokens["probe_f16"], validate=True)
    except (binascii.Error, ValueError):
        raise SessionError(f"{path}: $.tokens.probe_f16 is not valid base64") from None
    expected = count * len(emotions) * 2
    if len(blob) != expected:
        raise SessionError(f"{path}: $.tokens.probe_f16 holds {len(blob)} bytes, expected {expected} "
                           f"({count} tokens × {len(emotions)} emotions × 2)")
    matrix = np.frombuffer(blob, dtype="<f2").reshape(count, len(emotions)) if count else np.zeros((0, len(emotions)))
    for key, state in document["states"].items():
        if not key.isdigit():
            raise SessionError(f"{path}: $.states has a version {key!r} that is not a whole number")
        unknown = [name for name in state if name not in emotions]
        if unknown:
            raise SessionError(f"{path}: $.states.{key} names unknown emotion {unknown[0]!r}")
    for version in set(tokens["steering_version"]):
        if str(version) not in document["states"]:
            raise SessionError(f"{path}: tokens refer to steering version {version}, which $.states lacks")
    return SessionData(
        meta=document["meta"], turns=document["turns"],
        columns={name: list(tokens[name]) for name in TOKEN_COLUMNS},
        probes=[row.astype(np.float16) for row in matrix],
        steering=[{k: v for k, v in change.items() if k != "first_token"} for change in document["steering"]],
        states=document["states"], notes=document["notes"],
    )


def parse(text: str, path: Path) -> object:
    def reject(constant: str):
        raise SessionError(f"{path}: {constant} is not a number a session may hold")

    try:
        return json.loads(text, parse_constant=reject)
    except json.JSONDecodeError as error:
        at_end = error.pos >= len(text.rstrip()) - 1
        what = "truncated" if at_end else "invalid JSON"
        raise SessionError(f"{path}: {what} at line {error.lineno}, column {error.colno}: {error.msg}") from None


def session_events(data: SessionData, half_life: float = DEFAULT_HALF_LIFE) -> list:
    """The recorded stream again, as engine events in order (for replay), smoothed as it was live."""
    from emolab.core.events import Token, TurnStarted

    columns = data.columns
    probes = data.probe_matrix().astype(np.float32)
    smoothed = smooth(probes, half_life, turn_starts(columns["source"])) if len(probes) else probes
    finishes = iter([turn for turn in data.turns if turn["role"] == "assistant"])
    events: list = []
    previous = None
    reply_text: list[str] = []
    for row in range(data.token_count):
        source = columns["source"][row]
        t = columns["t_ms"][row] / 1000
        if source == "prompt" and previous != "prompt":
            if previous == "reply":
                events.append(_finish(next(finishes, {}), reply_text, events))
                reply_text = []
            events.append(TurnStarted(0, 0, 0, t))
        version = columns["steering_version"][row]
        events.append(Token(index=columns["index"][row], position=columns["position"][row],
                            token_id=columns["token_id"][row], text=columns["text"][row], source=source,
                            probe=probes[row], steering=data.states.get(str(version), {}), steering_version=version,
                            t=t, smoothed=smoothed[row]))
        if source == "reply":
            reply_text.append(columns["text"][row])
        previous = source
    if previous == "reply":
        events.append(_finish(next(finishes, {}), reply_text, events))
    return events


def _finish(turn: dict, pieces: list[str], events: list):
    from emolab.core.events import TurnFinished

    t = events[-1].t if events else 0.0
    return TurnFinished(turn.get("finish", "eos"), "".join(pieces), len(pieces), 0.0, t)
