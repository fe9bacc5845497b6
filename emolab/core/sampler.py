"""Choosing the next token by the Sampling settings, with a seeded generator."""

from __future__ import annotations

import torch

from emolab.core.sampling import Sampling


class Sampler:
    """Holds the random generator, so a seeded session reproduces token for token."""

    def __init__(self, seed: int):
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def choose(self, logits: torch.Tensor, sampling: Sampling) -> int:
        """`logits`: [vocab] for the next position.

        The softmax, the nucleus sort and the choice run where the logits are (a GPU's vocabulary is
        128k to 152k entries). Only the random numbers come from the CPU generator, so a seed draws the
        same on every device: one exponential per token, the draw `torch.multinomial` makes for one
        sample (argmax of p / q, q ~ Exp(1)), so sessions recorded with it still reproduce.
        """
        if sampling.greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
        order = None
        if sampling.top_p < 1:
            probs, order = torch.sort(probs, descending=True)
            outside = torch.cumsum(probs, dim=-1) - probs > sampling.top_p  # keep the token that crosses top_p
            probs = probs.masked_fill(outside, 0)
        noise = torch.empty(probs.shape, dtype=probs.dtype).exponential_(1, generator=self.generator)
        choice = torch.argmax(probs / noise.to(probs.device))
        return int(order[choice]) if order is not None else int(choice)
