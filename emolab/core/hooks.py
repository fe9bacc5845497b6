"""Forward hooks on decoder blocks: read the probe residual, then add steering.

Block L's output is `hidden_states[L + 1]` in transformers, so a direction extracted from
`hidden_states[L + 1]` is added by a hook on block L. At the probe layer the residual is
read *before* that layer's own steering is added, so that a slider does not simply light
up its own bar. Steering at earlier layers still reaches the probe: that is its real effect.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class ResidualHooks:
    """A context manager that installs the hooks and removes them on exit.

    Set `additions` (layer → vector) before each forward pass; read `captured` after it.
    """

    def __init__(self, blocks: torch.nn.ModuleList, *, probe_layer: int | None, steer_layers: Iterable[int]):
        self.blocks = blocks
        self.probe_layer = probe_layer
        self.steer_layers = sorted(set(steer_layers))
        self.additions: dict[int, torch.Tensor] = {}
        self.captured: torch.Tensor | None = None
        self._handles: list = []

    def __enter__(self) -> ResidualHooks:
        layers = set(self.steer_layers)
        if self.probe_layer is not None:
            layers.add(self.probe_layer)
        for layer in sorted(layers):
            self._handles.append(self.blocks[layer].register_forward_hook(self._hook(layer)))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, layer: int):
        def hook(module, inputs, output):
            hidden = output[0] if isinstance(output, tuple) else output
            if layer == self.probe_layer:
                self.captured = hidden.detach()
            vector = self.additions.get(layer)
            if vector is None:
                return None
            hidden = hidden + vector
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        return hook
