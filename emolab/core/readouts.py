"""Reading a readout: which emotions of a token's z-scores stand out (numpy only, no torch)."""

from __future__ import annotations

import numpy as np


def strongest(readout: np.ndarray, emotions: list[str], k: int) -> list[tuple[str, float]]:
    """The k emotions with the largest |z|, strongest first (ties keep the pack's order)."""
    order = np.argsort(-np.abs(readout), kind="stable")[:k]
    return [(emotions[i], float(readout[i])) for i in order]
