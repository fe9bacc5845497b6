"""Plain-terminal rendering of per-token readouts."""

from __future__ import annotations

import click
import numpy as np

from emolab.core.readouts import strongest as top_emotions


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
