"""The `--json` output of `run` and `probe`: one JSON object per line. A stable interface.

See the README, "JSON lines", for every event type and field.
"""

from __future__ import annotations

import json
import math

from emolab.core.events import Event, Token, Truncated, TurnFinished, TurnStarted


def _score(value: float) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def _named(values, emotions: list[str] | None) -> dict:
    return (
        {name: _score(value) for name, value in zip(emotions, values, strict=True)}
        if values is not None and emotions
        else {}
    )


def event_record(event: Event, emotions: list[str] | None) -> dict:
    if isinstance(event, Token):
        record = {
            "type": "token",
            "index": event.index,
            "position": event.position,
            "token_id": event.token_id,
            "text": event.text,
            "source": event.source,
            "t": round(event.t, 4),
        }
        record["probe"] = _named(event.probe, emotions)
        record["smoothed"] = _named(event.smoothed, emotions)
        record["steering"] = dict(event.steering)
        return record
    if isinstance(event, TurnStarted):
        return {
            "type": "turn_start",
            "prompt_tokens": event.prompt_tokens,
            "reused_tokens": event.reused_tokens,
            "context_window": event.context_window,
            "t": round(event.t, 4),
        }
    if isinstance(event, Truncated):
        return {
            "type": "truncated",
            "dropped_messages": event.dropped_messages,
            "prompt_tokens": event.prompt_tokens,
            "context_window": event.context_window,
            "t": round(event.t, 4),
        }
    if isinstance(event, TurnFinished):
        return {
            "type": "end",
            "reason": event.reason,
            "text": event.text,
            "reply_tokens": event.reply_tokens,
            "seconds": round(event.seconds, 4),
            "tokens_per_second": round(event.tokens_per_second, 2),
            "t": round(event.t, 4),
        }
    raise TypeError(f"unknown event {event!r}")


def dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
