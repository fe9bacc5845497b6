"""Sampling settings: greedy at temperature 0, else temperature and nucleus (top-p).

No torch here: the console's process holds these too; core/sampler.py chooses the tokens."""

from __future__ import annotations

from dataclasses import dataclass, replace

from emolab.core.errors import EmolabError


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.9
    max_tokens: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and self.temperature <= 5):
            raise EmolabError(f"temperature {self.temperature} is out of range: use 0 (greedy) to 5")
        if not (0 < self.top_p <= 1):
            raise EmolabError(f"top-p {self.top_p} is out of range: use a value in (0, 1]")
        if self.max_tokens < 1:
            raise EmolabError(f"max tokens {self.max_tokens} must be at least 1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_(self, **changes) -> Sampling:
        return replace(self, **changes)
