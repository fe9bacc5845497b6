"""What the engine yields while it works. Consumers (CLI, TUI, recorder) only read these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """A reply is about to be generated for the prompt built from the conversation."""

    prompt_tokens: int  # the whole prompt, in tokens
    reused_tokens: int  # how many of them came from the KV cache
    context_window: int
    t: float


@dataclass(frozen=True, slots=True)
class Truncated:
    """The oldest messages were dropped so that the prompt fits the context window."""

    dropped_messages: int
    prompt_tokens: int
    context_window: int
    t: float


@dataclass(frozen=True, slots=True)
class Token:
    """One processed token: part of a prompt (`source="prompt"`) or of the reply (`"reply"`).

    `probe` holds z-scores for every emotion of the pack, in pack order (None without a pack);
    `smoothed` the same readouts averaged over the turn's recent tokens (core/smoothing.py).
    `steering` is the state in force when this token was produced: for a reply token, the
    state of the forward pass that chose it; for a prompt token, the state it was read under.
    """

    index: int  # counts every token event of the engine, never rewinds
    position: int  # position in the context window (KV cache)
    token_id: int
    text: str
    source: str
    probe: np.ndarray | None
    steering: Mapping[str, float]
    steering_version: int
    t: float
    smoothed: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """The reply ended: `eos`, `max_tokens`, `stopped` or `context_full`."""

    reason: str
    text: str
    reply_tokens: int
    seconds: float
    t: float
    tokens_per_second: float = field(default=0.0)


@dataclass(frozen=True, slots=True)
class BranchStarted:
    """A reply continues from one of its own tokens (Engine.branch_at) instead of a new prompt.

    The branch's reply is the first `kept_tokens` tokens of the message it branches (not sent
    again), then the tokens that follow this event. `message` is that reply's index in the
    conversation; `reused_tokens` of the context came from the KV cache (all but one, usually).
    """

    message: int
    position: int  # the context position of the last kept token
    kept_tokens: int
    reused_tokens: int
    t: float


@dataclass(frozen=True, slots=True)
class CompareStarted:
    """The last user message is answered twice, once per lane; `steering` holds each lane's state."""

    prompt_tokens: int
    reused_tokens: int
    steering: tuple[Mapping[str, float], Mapping[str, float]]
    mode: str  # "batched" (one batch of 2 per step) or "interleaved" (two caches, one step each)
    t: float


@dataclass(frozen=True, slots=True)
class LaneEvent:
    """An event of one side of a compare: lane 0 (the sliders) or lane 1 (the other settings)."""

    lane: int
    event: Token | TurnFinished


@dataclass(frozen=True, slots=True)
class CompareFinished:
    """Both lanes ended. `first_difference`: the reply offset of the first token where they differ
    (None when both replies are the same)."""

    first_difference: int | None
    reply_tokens: tuple[int, int]
    seconds: float
    t: float
    tokens_per_second: float = field(default=0.0)  # both lanes' tokens together


Event = TurnStarted | Truncated | Token | TurnFinished | BranchStarted | CompareStarted | LaneEvent | CompareFinished
