"""Threshold alerts: an emotion's readout crossing a set z-score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from emolab.core.pack_manifest import FALLBACK_ALERT_Z, WATCHED_EMOTIONS


def default_thresholds(pack_thresholds: Mapping[str, float]) -> dict[str, float]:
    """The watched emotions, each at the z its pack's neutral tokens reach one time in a thousand."""
    return {name: max(FALLBACK_ALERT_Z, pack_thresholds.get(name, FALLBACK_ALERT_Z)) for name in WATCHED_EMOTIONS}


@dataclass(frozen=True)
class Alert:
    emotion: str
    z: float
    threshold: float
    token_index: int
    token_text: str

    def describe(self) -> str:
        return f"{self.emotion} z={self.z:+.1f} ≥ {self.threshold:g} at token {self.token_index} {self.token_text!r}"


class Monitor:
    """Raises an alert when a watched emotion rises through its threshold (not while it stays above)."""

    def __init__(self, emotions: list[str], thresholds: dict[str, float]):
        self.emotions = emotions
        self.raised: list[Alert] = []  # every alert so far, oldest first
        self.thresholds: dict[str, float] = {}
        self._above: dict[str, bool] = {}
        for name, value in thresholds.items():
            if name in emotions:
                self.set(name, value)

    def set(self, emotion: str, threshold: float | None) -> None:
        if threshold is None:
            self.thresholds.pop(emotion, None)
            self._above.pop(emotion, None)
        else:
            self.thresholds[emotion] = threshold
            self._above[emotion] = False

    def check(self, probe: np.ndarray, token_index: int, token_text: str) -> list[Alert]:
        alerts = []
        for emotion, threshold in self.thresholds.items():
            value = float(probe[self.emotions.index(emotion)])
            above = value >= threshold
            if above and not self._above[emotion]:
                alerts.append(Alert(emotion, value, threshold, token_index, token_text))
            self._above[emotion] = above
        self.raised += alerts
        return alerts
