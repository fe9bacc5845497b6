"""The wire between the console and its engine: one message is a JSON header, then raw arrays.

    {"kind": "events", ..., "arrays": [["probe", "<f4", [12, 171]], ...]}\\n<the arrays' bytes>

The header is one line of JSON (json.dumps escapes every newline); the arrays it lists follow
in order as little-endian bytes, so 171 readouts per token travel as 684 bytes, not as text.
Messages are framed by multiprocessing.connection (send_bytes/recv_bytes). Nothing is ever
unpickled: a header is JSON, an array is numpy.frombuffer of a dtype from a short list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import fields
from types import MappingProxyType

import numpy as np

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

ARRAY_DTYPES = {"<f4", "<f2"}
EVENT_TYPES = {
    "turn_started": TurnStarted,
    "truncated": Truncated,
    "turn_finished": TurnFinished,
    "branch_started": BranchStarted,
    "compare_started": CompareStarted,
    "compare_finished": CompareFinished,
}
EVENT_NAMES = {kind: name for name, kind in EVENT_TYPES.items()}


class WireError(ValueError):
    """A message that does not follow the format: the other side is not an emolab engine of this version."""


def encode(header: dict, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    arrays = {
        name: np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")) for name, array in (arrays or {}).items()
    }
    header = {**header, "arrays": [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()]}
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"\n".join([head, b"".join(array.tobytes() for array in arrays.values())])


def decode(message: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    head, newline, body = message.partition(b"\n")
    try:
        header = json.loads(head)
        described = header.pop("arrays")
    except (ValueError, KeyError, AttributeError) as error:
        raise WireError(f"not a message header ({error})") from None
    arrays, offset = {}, 0
    for name, dtype, shape in described:
        if dtype not in ARRAY_DTYPES or not all(isinstance(size, int) and size >= 0 for size in shape):
            raise WireError(f"array {name!r}: dtype {dtype!r} or shape {shape!r} is not allowed")
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if offset + size > len(body):
            raise WireError(f"array {name!r} is cut short")
        arrays[name] = np.frombuffer(body, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
        offset += size
    if offset != len(body) or (not newline and described):
        raise WireError("the arrays do not fill the message")
    return header, arrays


def _plain(value):
    """A field as JSON: mappings become objects and tuples lists (a compare's two steering states)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    return value


def encode_events(events: list[Event]) -> bytes:
    """A batch of engine events; each token's readouts become one row of the `probe` and `smoothed` arrays.
    A compare's lane event is the record of the event it wraps, with its `lane`."""
    records, states, probes, smoothed = [], {}, [], []
    for wrapped in events:
        lane, event = (wrapped.lane, wrapped.event) if isinstance(wrapped, LaneEvent) else (None, wrapped)
        if isinstance(event, Token):
            record = {
                "type": "token",
                "index": event.index,
                "position": event.position,
                "token_id": event.token_id,
                "text": event.text,
                "source": event.source,
                "t": event.t,
                "version": event.steering_version,
            }
            states[str(event.steering_version)] = dict(event.steering)
            if event.probe is not None:
                record["row"] = len(probes)
                probes.append(event.probe)
                smoothed.append(event.smoothed if event.smoothed is not None else event.probe)
        else:
            record = {
                "type": EVENT_NAMES[type(event)],
                **{spec.name: _plain(getattr(event, spec.name)) for spec in fields(event)},
            }
        if lane is not None:
            record["lane"] = lane
        records.append(record)
    arrays = {"probe": np.stack(probes).astype("<f4"), "smoothed": np.stack(smoothed).astype("<f4")} if probes else {}
    return encode({"kind": "events", "events": records, "states": states}, arrays)


def decode_events(header: dict, arrays: dict[str, np.ndarray]) -> list[Event]:
    states = {version: MappingProxyType(state) for version, state in header["states"].items()}
    probes, smoothed = arrays.get("probe"), arrays.get("smoothed")
    events: list[Event] = []
    try:
        for record in header["events"]:
            kind, lane = record.pop("type"), record.pop("lane", None)
            if kind != "token":
                # a JSON list is a tuple of the event (a compare's two steering states, its two lengths)
                event = EVENT_TYPES[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in record.items()})
                events.append(event if lane is None else LaneEvent(lane, event))
                continue
            row = record.get("row")
            token = Token(
                index=record["index"],
                position=record["position"],
                token_id=record["token_id"],
                text=record["text"],
                source=record["source"],
                t=record["t"],
                steering_version=record["version"],
                steering=states[str(record["version"])],
                probe=probes[row] if row is not None else None,
                smoothed=smoothed[row] if row is not None else None,
            )
            events.append(token if lane is None else LaneEvent(lane, token))
    except (KeyError, TypeError, IndexError) as error:
        raise WireError(f"not a batch of events ({type(error).__name__}: {error})") from None
    return events
