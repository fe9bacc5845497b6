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
        """`logits`: [vocab] for the next position."""
        if sampling.greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float().cpu() / sampling.temperature, dim=-1)
        if sampling.top_p < 1:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            outside = cumulative - sorted_probs > sampling.top_p  # keep the token that crosses top_p
            sorted_probs[outside] = 0
            choice = torch.multinomial(sorted_probs, 1, generator=self.generator)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=self.generator))
