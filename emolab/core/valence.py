"""Valence of a readout: the pack's PC1 coordinate of each emotion, averaged over what lights up.

A token's valence is the average of the emotions' valence coordinates (scaled to [-1, 1]),
weighted by their positive readouts: the console's valence tint, and the sweep's valence measure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emolab.core.pack_manifest import PackManifest


def valence_axis(pack: PackManifest) -> np.ndarray:
    """[E] (pack: a VectorPack or its PackManifest): each emotion's valence (PC1) coordinate in pack
    order, scaled so the largest |value| is 1."""
    coords = np.array([pack.coords[name][0] for name in pack.emotions])
    return coords / max(1e-6, float(np.abs(coords).max()))


def valence(readouts: np.ndarray, axis: np.ndarray) -> np.ndarray | float:
    """[..., E] readouts → [...] valence in [-1, 1] (0 where nothing reads above zero)."""
    positive = np.clip(readouts, 0, None)
    return positive @ axis / np.maximum(1e-6, positive.sum(axis=-1))
