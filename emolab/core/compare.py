"""A compare: one message answered twice, under two steering states, token by token side by side.

The engine runs the two lanes (engine.compare); this module holds what a lane is, how the
decode mode is chosen, and what is compared: where the replies first differ, and how their
mean readouts differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from emolab.core.detokenize import IncrementalDecoder
    from emolab.core.sampler import Sampler
    from emolab.core.smoothing import Smoother
    from emolab.core.steering import SteeringSnapshot

COMPARE_MODES = ("auto", "batched", "interleaved")
# Measured on the 2-core CPU with the bundled model (benchmarks/compare_speed.py, BENCHMARKS.md):
# the auto mode is the faster of the two where the decoder can batch.
AUTO_MODE = "batched"


def choose_mode(mode: str, decoder) -> str:
    """The decode mode to run: batching needs a decoder that runs lanes in one batch."""
    batchable = getattr(decoder, "batched_lanes", False)
    if mode == "auto":
        return AUTO_MODE if batchable else "interleaved"
    if mode == "batched" and not batchable:
        from emolab.core.errors import EmolabError

        raise EmolabError(f"the {decoder.name} decoder cannot batch a compare; use interleaved")
    return mode


@dataclass(eq=False)
class Lane:
    """One side of a compare while it is written: its cache and context, its steering, its sampler."""

    number: int
    cache: Any  # the decoder's own cache type
    ids: list[int]  # the tokens in this lane's cache
    state: SteeringSnapshot  # the steering its reply is written under
    additions: dict[int, torch.Tensor]  # layer → the summed steering vector of `state`
    sampler: Sampler
    smoother: Smoother
    reply: IncrementalDecoder  # of the reply's ids
    logits: torch.Tensor | None = None  # for the lane's next token
    pieces: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def first_difference(first: Sequence[int], second: Sequence[int]) -> int | None:
    """The offset of the first token where two replies differ (one ending earlier is a difference);
    None when they are the same."""
    for offset, (a, b) in enumerate(zip(first, second, strict=False)):
        if a != b:
            return offset
    return None if len(first) == len(second) else min(len(first), len(second))


def mean_difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Each emotion's mean readout over the first reply minus over the second ([tokens, emotions] each)."""
    width = first.shape[1] if first.ndim == 2 else second.shape[1]

    def mean(readouts: np.ndarray) -> np.ndarray:
        return readouts.astype(np.float32).mean(axis=0) if len(readouts) else np.zeros(width, dtype=np.float32)

    return mean(first) - mean(second)
