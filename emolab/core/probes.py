"""Probe readouts: every token's residual projected onto every emotion, as z-scores.

z = (h · d_e − neutral_mean_e) / neutral_std_e, computed for all emotions with one matrix
product: h @ W + b with W = D^T / std and b = −mean / std.
"""

from __future__ import annotations

import numpy as np
import torch

from emolab.core.pack import VectorPack


class Probe:
    def __init__(self, pack: VectorPack, layer: int | None = None, *, device: torch.device | str = "cpu"):
        self.layer = pack.probe_layer if layer is None else layer
        data = pack.layers[self.layer]
        self.weight = (data.directions / data.neutral_std[:, None]).T.contiguous().to(device)  # [H, E]
        self.bias = (-data.neutral_mean / data.neutral_std).to(device)  # [E]

    def read(self, hidden: torch.Tensor) -> np.ndarray:
        """[..., H] residuals → [..., E] float32 z-scores (as numpy, on the CPU)."""
        flat = hidden.reshape(-1, hidden.shape[-1]).to(self.weight.device, torch.float32)
        scores = torch.addmm(self.bias, flat, self.weight)
        return scores.reshape(*hidden.shape[:-1], -1).cpu().numpy()
