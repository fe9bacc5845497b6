"""The session file: what it holds, how it is encoded, and how it is read back and checked.

Tokens are stored as columns; every token's readout for every emotion is one float16 row of
a single base64 blob (about 0.5 MB per 1,000 tokens with 171 emotions).

Format 2 makes the turns a tree: every turn has an `id` and a `parent` (the turn before it on
its path), every token names the assistant turn it belongs to (its prompt and its reply), a
branch reply names the reply it branches (`branch`: `of`, and the `kept` tokens it shares with
it), and the two replies of a compare each carry their side (`compare`: `group`, `lane`,
`steering`). Format 1 files load as a tree without branches.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolab.core.documents import check_document
from emolab.core.errors import EmolabError
from emolab.core.smoothing import DEFAULT_HALF_LIFE, smooth

FORMAT = "emolab-session"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
SCHEMA_ID = "https://emolab.dev/schemas/session-2.json"
TOKEN_COLUMNS = ("index", "position", "token_id", "text", "source", "t_ms", "steering_version", "turn")
TURN_FIELDS = ("id", "parent", "role", "text", "t", "finish", "first_token", "branch", "compare")
# Format 2 turns and notes keep their journal number, `seq`: the order they happened in, where two share a time.
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

    def copy(self) -> SessionData:
        """A snapshot that later appends do not touch (rows and records are never changed in place)."""
        return SessionData(
            meta=self.meta,
            turns=list(self.turns),
            columns={name: list(values) for name, values in self.columns.items()},
            probes=list(self.probes),
            steering=list(self.steering),
            states=dict(self.states),
            notes=list(self.notes),
        )

    @property
    def token_count(self) -> int:
        return len(self.columns["index"])

    def probe_matrix(self) -> np.ndarray:
        if not self.probes:
            return np.zeros((0, len(self.emotions)), dtype=np.float16)
        return np.stack(self.probes)

    def reply_rows(self, turn: dict) -> list[int]:
        """Rows of the reply tokens an assistant turn wrote itself (a branch: those after the kept ones)."""
        owner, sources = self.columns["turn"], self.columns["source"]
        return [
            row
            for row, (turn_id, source) in enumerate(zip(owner, sources, strict=True))
            if turn_id == turn["id"] and source == "reply"
        ]

    def full_reply_rows(self, turn: dict) -> list[int]:
        """Rows of the whole reply as shown: a branch's kept tokens (its sibling's) and then its own."""
        branch = turn.get("branch")
        head = self.full_reply_rows(self.turn(branch["of"]))[: branch["kept"]] if branch else []
        return head + self.reply_rows(turn)

    def turn(self, turn_id: int) -> dict:
        return next(turn for turn in self.turns if turn["id"] == turn_id)

    def branches(self, turn: dict) -> list[dict]:
        """The replies to the same message as this one (itself included), in the order they were written."""
        return [
            other for other in self.turns if other["role"] == "assistant" and other.get("parent") == turn.get("parent")
        ]

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
            first = next(
                (indices[i] for i in range(len(indices)) if sources[i] == "reply" and versions[i] >= change["version"]),
                None,
            )
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
            "tokens": {"count": self.token_count, **self.columns, "probe_f16": base64.b64encode(blob).decode("ascii")},
            "steering": self.steering_with_first_tokens(),
            "states": self.states,
            "notes": self.notes,
        }


def from_json(document: object, path: Path) -> SessionData:
    """Check a parsed session document completely; every problem is one line naming the file."""
    check_document(
        document,
        path,
        schema="session.schema.json",
        format_name=FORMAT,
        versions=READ_VERSIONS,
        error=SessionError,
        what="session",
    )
    assert isinstance(document, dict)  # check_document has checked it against the schema
    if document["format_version"] == 1:
        document = _upgrade_v1(document)
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
        raise SessionError(
            f"{path}: $.tokens.probe_f16 holds {len(blob)} bytes, expected {expected} "
            f"({count} tokens × {len(emotions)} emotions × 2)"
        )
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
    ids = [turn["id"] for turn in document["turns"]]
    if len(set(ids)) != len(ids):
        raise SessionError(f"{path}: $.turns has two turns with the same id")
    for turn in document["turns"]:
        for key, target in (("parent", turn.get("parent")), ("branch.of", (turn.get("branch") or {}).get("of"))):
            if target is not None and target not in ids:
                raise SessionError(f"{path}: turn {turn['id']}'s {key} is {target}, which no turn has as id")
    return SessionData(
        meta=document["meta"],
        turns=document["turns"],
        columns={name: list(tokens[name]) for name in TOKEN_COLUMNS},
        probes=[row.astype(np.float16) for row in matrix],
        steering=[{k: v for k, v in change.items() if k != "first_token"} for change in document["steering"]],
        states=document["states"],
        notes=document["notes"],
    )


def _upgrade_v1(document: dict) -> dict:
    """A format 1 session as format 2: turns numbered in order, each reply the child of the message
    before it, and every token given the reply it belongs to (a prompt, the reply after it)."""
    turns = [{**turn, "id": number} for number, turn in enumerate(document["turns"])]
    last = {"user": None, "assistant": None}
    for turn in turns:
        turn["parent"] = last["user"] if turn["role"] == "assistant" else last["assistant"]
        last[turn["role"]] = turn["id"]
    tokens = document["tokens"]
    owner = [-1] * tokens["count"]
    row_of = {index: row for row, index in enumerate(tokens["index"])}
    for turn in turns:
        if turn["role"] != "assistant":
            continue
        row = row_of.get(turn.get("first_token", 0))
        if row is None:
            continue
        while row < tokens["count"] and tokens["source"][row] == "reply" and owner[row] == -1:
            owner[row] = turn["id"]
            row += 1
        row = row_of[turn.get("first_token", 0)] - 1
        while row >= 0 and tokens["source"][row] == "prompt" and owner[row] == -1:
            owner[row] = turn["id"]
            row -= 1
    return {**document, "format_version": FORMAT_VERSION, "turns": turns, "tokens": {**tokens, "turn": owner}}


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
    """The recorded stream again, as engine events in order (for replay), smoothed as it was live:
    a branch starts with BranchStarted, and a compare's tokens come as LaneEvents of its two lanes."""
    from emolab.core.events import BranchStarted, CompareStarted, LaneEvent, Token, TurnStarted

    columns = data.columns
    probes = data.probe_matrix().astype(np.float32)
    smoothed = _smoothed_per_turn(data, probes, half_life)
    turns = {turn["id"]: turn for turn in data.turns}
    finished: set[int] = set()
    events: list = []
    open_turn = None  # the plain or branch reply being shown
    compare_open: dict | None = None  # group → lanes still writing

    def finish(turn_id: int) -> None:
        finished.add(turn_id)
        turn = turns.get(turn_id, {})
        finish_event = _finish(turn, [columns["text"][row] for row in data.reply_rows(turn)] if turn else [], events)
        lane = (turn.get("compare") or {}).get("lane")
        events.append(finish_event if lane is None else LaneEvent(lane, finish_event))

    def close(reply: int | None, compare: dict | None) -> None:
        """End the reply being shown, and a compare's lanes still writing, where the recording did not."""
        if reply is not None and reply not in finished and turns.get(reply):
            finish(reply)
        if compare is not None:
            for lane_turn in compare["turns"]:
                if lane_turn not in finished:
                    finish(lane_turn)
            events.append(_compare_finished(data, compare, events))

    for row in range(data.token_count):
        owner = columns["turn"][row]
        turn = turns.get(owner, {})
        source = columns["source"][row]
        t = columns["t_ms"][row] / 1000
        compare = turn.get("compare")
        if owner != open_turn and not (
            compare and compare_open is not None and compare["group"] == compare_open["group"]
        ):
            close(open_turn, compare_open)
            open_turn, compare_open = None, None
            if compare:
                group = [
                    other["id"] for other in data.turns if (other.get("compare") or {}).get("group") == compare["group"]
                ]
                compare_open = {"group": compare["group"], "turns": group}
                lanes = sorted(group, key=lambda turn_id: turns[turn_id]["compare"]["lane"])
                steering = tuple(turns[turn_id]["compare"].get("steering", {}) for turn_id in lanes)
                events.append(CompareStarted(0, 0, steering, turns[lanes[0]]["compare"].get("mode", ""), t))
            elif turn.get("branch"):
                branch = turn["branch"]
                events.append(BranchStarted(0, 0, branch["kept"], 0, t))
                open_turn = owner
            else:
                events.append(TurnStarted(0, 0, 0, t))
                open_turn = owner
        version = columns["steering_version"][row]
        token = Token(
            index=columns["index"][row],
            position=columns["position"][row],
            token_id=columns["token_id"][row],
            text=columns["text"][row],
            source=source,
            probe=probes[row],
            steering=data.states.get(str(version), {}),
            steering_version=version,
            t=t,
            smoothed=smoothed[row],
        )
        events.append(token if not compare else LaneEvent(compare["lane"], token))
        if compare and source == "reply" and row == data.reply_rows(turn)[-1] and owner not in finished:
            finish(owner)
    close(open_turn, compare_open)
    return events


def _smoothed_per_turn(data: SessionData, probes: np.ndarray, half_life: float) -> np.ndarray:
    """Each turn's tokens smoothed from zero at their first, as the engine smooths each reply (a
    compare's two lanes each on their own, though their tokens alternate)."""
    smoothed = np.empty_like(probes)
    rows_of: dict[int, list[int]] = {}
    for row, owner in enumerate(data.columns["turn"]):
        rows_of.setdefault(owner, []).append(row)
    for rows in rows_of.values():
        smoothed[rows] = smooth(probes[rows], half_life, [0])
    return smoothed


def _finish(turn: dict, pieces: list[str], events: list):
    from emolab.core.events import TurnFinished

    t = events[-1].t if events and hasattr(events[-1], "t") else 0.0
    return TurnFinished(turn.get("finish", "eos"), "".join(pieces), len(pieces), 0.0, t)


def _compare_finished(data: SessionData, group: dict, events: list):
    from emolab.core.compare import first_difference
    from emolab.core.events import CompareFinished

    lanes = sorted(group["turns"], key=lambda turn_id: data.turn(turn_id)["compare"]["lane"])
    replies = [[data.columns["token_id"][row] for row in data.reply_rows(data.turn(turn_id))] for turn_id in lanes]
    while len(replies) < 2:
        replies.append([])
    t = next((event.t for event in reversed(events) if hasattr(event, "t")), 0.0)
    return CompareFinished(first_difference(*replies[:2]), (len(replies[0]), len(replies[1])), 0.0, t)
