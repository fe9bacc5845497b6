"""Steering state: emotion → strength, in the paper's units.

A strength s for emotion e adds `s × mean_norm(L) × direction(e, L)` to the residual stream
at the output of every steered block L. All active emotions are summed into one vector per
layer, once per change of state, never per token.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from emolab.core.errors import EmolabError
from emolab.core.pack import VectorPack


@dataclass(frozen=True)
class SteeringSnapshot:
    """The state in force for one forward pass. `version` grows with every change."""

    version: int
    strengths: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def as_dict(self) -> dict[str, float]:
        return dict(self.strengths)


class SteeringState:
    """Thread-safe steering strengths. A change applies from the next forward pass on."""

    def __init__(self, pack: VectorPack):
        self.pack = pack
        self._lock = threading.Lock()
        self._strengths: dict[str, float] = {}
        self._snapshot = SteeringSnapshot(0)
        self._last_version = 0  # every number handed out, current or not

    def set(self, emotion: str, strength: float) -> str:
        """Set one emotion's strength (0 removes it); returns the pack's spelling of the name."""
        name = self.pack.resolve(emotion)
        self._check_range(name, strength)
        with self._lock:
            if self._strengths.get(name, 0.0) == strength:
                return name  # no change, no new version
            if strength == 0:
                self._strengths.pop(name, None)
            else:
                self._strengths[name] = float(strength)
            self._publish()
        return name

    def update(self, strengths: Mapping[str, float], *, replace: bool = False) -> None:
        """Set several strengths as one change; `replace` clears the others first."""
        resolved = {self.pack.resolve(name): float(value) for name, value in strengths.items()}
        for name, value in resolved.items():
            self._check_range(name, value)
        with self._lock:
            updated = {} if replace else dict(self._strengths)
            for name, value in resolved.items():
                if value == 0:
                    updated.pop(name, None)
                else:
                    updated[name] = value
            if updated != self._strengths:  # no change, no new version
                self._strengths = updated
                self._publish()

    def clear(self) -> None:
        with self._lock:
            if self._strengths:
                self._strengths.clear()
                self._publish()

    def snapshot(self) -> SteeringSnapshot:
        return self._snapshot  # replaced whole under the lock, so reading it needs none

    def numbered(self, strengths: Mapping[str, float]) -> SteeringSnapshot:
        """A state of its own version that does not become the current one (a compare's other side):
        its tokens name a version, as every token does, and no later change reuses the number."""
        resolved = {self.pack.resolve(name): float(value) for name, value in strengths.items() if value}
        for name, value in resolved.items():
            self._check_range(name, value)
        with self._lock:
            self._last_version += 1
            return SteeringSnapshot(self._last_version, MappingProxyType(resolved))

    def _publish(self) -> None:
        self._last_version += 1
        self._snapshot = SteeringSnapshot(self._last_version, MappingProxyType(dict(self._strengths)))

    def _check_range(self, name: str, strength: float) -> None:
        slider = self.pack.slider
        if not slider.contains(strength):
            raise EmolabError(
                f"strength {strength:g} for {name!r} is out of range: the pack {self.pack.name} allows "
                f"{slider.min:g} to {slider.max:g}"
            )


def resolve_steer_layers(pack: VectorPack, requested: Sequence[int] | None = None) -> list[int]:
    """The layers to steer: the pack's own `steer_layers`, or any of its stored layers (sorted, each once)."""
    if requested is None:
        return pack.steer_layers
    layers = sorted(set(requested))
    missing = [layer for layer in layers if layer not in pack.layers]
    if not layers or missing:
        stored = ", ".join(map(str, sorted(pack.layers)))
        what = f"layer {missing[0]} is not stored in" if missing else "no layer given for"
        raise EmolabError(f"{what} the pack {pack.name}; it stores layers {stored}")
    return layers


class SteeringVectors:
    """Turns a snapshot into one summed vector per steered layer, rebuilt only when it changes.

    `layers`: the pack's `steer_layers` unless told otherwise; the same strength goes to each.
    """

    def __init__(
        self,
        pack: VectorPack,
        *,
        device_of: Mapping[int, torch.device],
        dtype: torch.dtype,
        layers: Sequence[int] | None = None,
    ):
        self.pack = pack
        self.layers = resolve_steer_layers(pack, layers)
        self._targets = {layer: (device_of[layer], dtype) for layer in self.layers}
        self._version = -1
        self._vectors: dict[int, torch.Tensor] = {}

    def for_snapshot(self, snapshot: SteeringSnapshot) -> dict[int, torch.Tensor]:
        if snapshot.version != self._version:
            self._vectors = self.compute(snapshot.strengths)
            self._version = snapshot.version
        return self._vectors

    def compute(self, strengths: Mapping[str, float]) -> dict[int, torch.Tensor]:
        if not strengths:
            return {}
        index = self.pack.emotion_index
        rows = torch.tensor([index[name] for name in strengths])
        weights = torch.tensor(list(strengths.values()), dtype=torch.float32)
        vectors = {}
        for layer, (device, dtype) in self._targets.items():
            data = self.pack.layers[layer]
            summed = (weights @ data.directions[rows]) * data.mean_norm  # in fp32, then cast once
            vectors[layer] = summed.to(device=device, dtype=dtype)
        return vectors


def parse_steer_option(text: str) -> tuple[str, float]:
    """`desperate=0.05` (names may contain spaces: `at ease=0.1`)."""
    name, separator, value = text.rpartition("=")
    if not separator or not name.strip():
        raise EmolabError(f"--steer {text!r}: expected EMOTION=STRENGTH, for example desperate=0.05")
    try:
        strength = float(value)
    except ValueError:
        raise EmolabError(f"--steer {text!r}: {value!r} is not a number") from None
    if strength != strength or strength in (float("inf"), float("-inf")):
        raise EmolabError(f"--steer {text!r}: the strength must be a finite number")
    return name.strip(), strength
