"""Probe readouts: every token's residual read out for every emotion, as z-scores.

z = (h · w_e − mean_e) / std_e, minus its mean over emotions where the pack centres its readouts,
computed for all emotions with one matrix product h @ W + b: the division and the centring are
both linear, so they are folded into W and b once. w_e is the pack's probe direction where it
has one (format 2), else its steering direction with the neutral statistics.
"""

from __future__ import annotations

import numpy as np
import torch

from emolab.core.pack import VectorPack


class Probe:
    def __init__(self, pack: VectorPack, layer: int | None = None, *, device: torch.device | str = "cpu"):
        self.layer = pack.probe_layer if layer is None else layer
        readout = pack.readout(self.layer)
        weight = (readout.weights / readout.std[:, None]).T  # [H, E]
        bias = -readout.mean / readout.std  # [E]
        if readout.centre:
            weight = weight - weight.mean(dim=1, keepdim=True)
            bias = bias - bias.mean()
        self.weight = weight.contiguous().to(device)
        self.bias = bias.to(device)

    def read(self, hidden: torch.Tensor) -> np.ndarray:
        """[..., H] residuals → [..., E] float32 z-scores (as numpy, on the CPU)."""
        flat = hidden.reshape(-1, hidden.shape[-1]).to(self.weight.device, torch.float32)
        scores = torch.addmm(self.bias, flat, self.weight)
        return scores.reshape(*hidden.shape[:-1], -1).cpu().numpy()
