"""Plain-terminal rendering of per-token readouts."""

from __future__ import annotations

import click
import numpy as np


def top_emotions(scores: np.ndarray, emotions: list[str], k: int) -> list[tuple[str, float]]:
    """The k emotions with the largest |z|, strongest first."""
    order = np.argsort(-np.abs(scores), kind="stable")[:k]
    return [(emotions[i], float(scores[i])) for i in order]


def token_line(index: int, text: str, scores: np.ndarray | None, emotions: list[str] | None, k: int) -> str:
    shown = repr(text)[1:-1] or "·"
    line = f"{index:>5}  {shown[:18]:<18}"
    if scores is not None and emotions:
        cells = []
        for name, value in top_emotions(scores, emotions, k):
            cell = f"{name} {value:+.2f}"
            cells.append(click.style(f"{cell:<22}", fg="green" if value > 0 else "red"))
        line += "  " + "".join(cells)
    return line
