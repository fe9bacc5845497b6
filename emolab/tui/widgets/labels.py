"""Emotion names in a fixed-width column."""

from __future__ import annotations


def fit_label(name: str, width: int) -> str:
    """`name` padded to `width` cells, or cut to fit with an ellipsis."""
    return f"{name if len(name) <= width else name[: width - 1] + '…':<{width}}"
