"""Smoothed readouts: an exponential moving average over recent tokens.

A single token's readout is dominated by the token itself ("friend", "sorry"); what a text is
about builds up over several tokens. The average forgets with a half-life in tokens:

    s_t = s_{t-1} + a (z_t - s_{t-1}),   a = 1 - 2 ** (-1 / half_life),   s_{-1} = 0

It starts from zero (the reference mean: no evidence yet) at the start of every turn and every
text read, so the same tokens always give the same smoothed values, live and in a replay.
A half-life of 0 means no smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_HALF_LIFE = 4.0  # tokens; for packs whose alerts.json does not choose one


def weight(half_life: float) -> float:
    return 1.0 if half_life <= 0 else 1.0 - 2.0 ** (-1.0 / half_life)


class Smoother:
    """The running average of one stream of readouts."""

    def __init__(self, half_life: float = DEFAULT_HALF_LIFE):
        self.half_life = half_life
        self._weight = weight(half_life)
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def update(self, readout: np.ndarray) -> np.ndarray:
        if self._state is None:
            self._state = np.zeros_like(readout, dtype=np.float32)
        self._state = self._state + self._weight * (readout.astype(np.float32) - self._state)
        return self._state


def smooth(readouts: np.ndarray, half_life: float, starts: Sequence[int] = (0,)) -> np.ndarray:
    """[T, E] readouts → [T, E] smoothed, restarting from zero at each row index in `starts`."""
    readouts = np.asarray(readouts, dtype=np.float32)
    smoothed = np.empty_like(readouts)
    restart = set(starts)
    smoother = Smoother(half_life)
    for row in range(len(readouts)):
        if row in restart:
            smoother.reset()
        smoothed[row] = smoother.update(readouts[row])
    return smoothed


def turn_starts(sources: Sequence[str]) -> list[int]:
    """Where a recorded stream's turns begin: the first token, and every prompt token after a reply."""
    return [
        row for row, source in enumerate(sources) if row == 0 or (source == "prompt" and sources[row - 1] != "prompt")
    ]


def rising_crossings(smoothed: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """[T, E] → [T, E] booleans: where a readout rises through its threshold (an alert)."""
    above = smoothed > threshold
    before = np.vstack([np.zeros((1, smoothed.shape[1]), dtype=bool), above[:-1]])
    return above & ~before
