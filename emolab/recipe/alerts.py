"""Default alert thresholds and the console's smoothing, calibrated together.

An alert fires when an emotion's smoothed readout rises through its threshold. The rule, fixed
here before any pack is calibrated:

- for each candidate half-life, each emotion's threshold is the highest smoothed readout that
  any calibration neutral token reaches (the build's neutral texts and the first half of the
  written `calibration` split), never below `FALLBACK_ALERT_Z`: no false alert in sample;
- the half-life chosen is the one under which most held-out stories (the training corpus's
  held-out topics) raise an alert for their own emotion; ties go to the shorter half-life.

The second half of the calibration split and the test stories are never used to choose; `validate`
reports the false alerts per 1,000 neutral tokens and the recall on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emolab.core.models import LoadedModel
from emolab.core.pack import FALLBACK_ALERT_Z, WATCHED_EMOTIONS, VectorPack, write_alert_thresholds
from emolab.core.smoothing import rising_crossings, smooth
from emolab.recipe.activations import block_outputs

HALF_LIVES = (0.0, 2.0, 4.0, 8.0, 16.0)


def token_readouts(
    loaded: LoadedModel, pack: VectorPack, texts: Sequence[str], *, batch_size: int = 8
) -> list[np.ndarray]:
    """Each text's raw per-token readouts [T, E] at the probe layer, without the first token
    (an attention sink, as the build's neutral tokens are read)."""
    readout = pack.readout()
    return [
        readout.z_scores(outputs[0, 1:]).numpy()
        for outputs in block_outputs(loaded, texts, [pack.probe_layer], batch_size=batch_size)
    ]


def split_calibration(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """The first half calibrates, the second half only reports."""
    middle = len(texts) // 2
    return list(texts[:middle]), list(texts[middle:])


def thresholds_for(neutral: Sequence[np.ndarray], half_life: float) -> np.ndarray:
    peaks = np.max([smooth(z, half_life).max(axis=0) for z in neutral], axis=0)
    return np.maximum(peaks, FALLBACK_ALERT_Z)


def alert_rates(
    neutral: Sequence[np.ndarray],
    stories: Sequence[np.ndarray],
    labels: Sequence[int],
    thresholds: np.ndarray,
    half_life: float,
    emotions: Sequence[str],
) -> dict:
    """False alerts per 1,000 neutral tokens (any emotion watched by default), and the share of
    stories that alert for their own emotion: all of them, and those of the watched emotions."""
    watched = [emotions.index(name) for name in WATCHED_EMOTIONS if name in emotions]
    tokens = sum(len(z) for z in neutral)
    false = sum(int(rising_crossings(smooth(z, half_life)[:, watched], thresholds[watched]).sum()) for z in neutral)
    hits = [
        bool(rising_crossings(smooth(z, half_life)[:, [label]], thresholds[[label]]).any())
        for z, label in zip(stories, labels, strict=True)
    ]
    watched_hits = [hit for hit, label in zip(hits, labels, strict=True) if label in watched]
    return {
        "neutral_tokens": tokens,
        "false_alerts": false,
        "false_per_1000": round(1000 * false / tokens, 3) if tokens else None,
        "recall_all": round(float(np.mean(hits)), 4) if hits else None,
        "stories": len(hits),
        "recall_watched": round(float(np.mean(watched_hits)), 4) if watched_hits else None,
        "watched_stories": len(watched_hits),
    }


@dataclass(frozen=True)
class Calibration:
    half_life: float
    thresholds: dict[str, float]
    candidates: list[dict]  # per half-life: the in-sample rates that chose it


def calibrate(
    pack: VectorPack, neutral: Sequence[np.ndarray], stories: Sequence[np.ndarray], labels: Sequence[int]
) -> Calibration:
    emotions = pack.emotions
    candidates, best = [], None
    for half_life in HALF_LIVES:
        thresholds = thresholds_for(neutral, half_life)
        rates = alert_rates(neutral, stories, labels, thresholds, half_life, emotions)
        candidates.append({"half_life": half_life, **rates})
        if best is None or rates["recall_all"] > best[0]["recall_all"]:
            best = (rates, half_life, thresholds)
    _, half_life, thresholds = best
    return Calibration(
        half_life, {name: float(value) for name, value in zip(emotions, thresholds, strict=True)}, candidates
    )


def write_calibration(pack: VectorPack, calibration: Calibration, *, neutral_tokens: int, stories: int) -> None:
    write_alert_thresholds(
        pack.path,
        calibration.thresholds,
        layer=pack.probe_layer,
        half_life=calibration.half_life,
        about=f"each emotion's smoothed readout (half-life {calibration.half_life:g} tokens) that no one of "
        f"{neutral_tokens} calibration neutral tokens reached, never below z = {FALLBACK_ALERT_Z:g}: the "
        "console's default alert thresholds. The half-life is the one under which most of "
        f"{stories} held-out stories alert for their own emotion (emolab/recipe/alerts.py).",
        neutral_tokens=neutral_tokens,
        candidates=calibration.candidates,
    )


def neutral_stream(tokens: torch.Tensor, pack: VectorPack) -> np.ndarray:
    """The build's neutral tokens [T, H] at the probe layer as readouts, one stream."""
    return pack.readout().z_scores(tokens).numpy()
