"""The weights and shapes of a Llama-style decoder, from a loaded module or straight from safetensors.

The lean decoder needs only tensors and a few numbers. Reading them from safetensors without
building transformers' module skips importing transformers' modeling stack, which is most of
the start-up time (about 2 s of imports on a 2-core CPU, against 0.3 s to read the weights).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

SUPPORTED_TYPES = ("llama", "mistral", "qwen2")
HEAD = "lm_head"  # the output projection's checkpoint name

# (x, positions [1, n]) → (cos, sin), each [1, n, head_dim] in x's dtype
Rotary = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def config_unsupported_reason(config) -> str | None:
    """None if the lean decoder computes exactly what transformers does for this config, else why not."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(SUPPORTED_TYPES)}"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return "the model uses sliding-window attention"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"the activation is {config.hidden_act!r}, not silu"
    if getattr(config, "pretraining_tp", 1) != 1:
        return "the model uses tensor-parallel slicing (pretraining_tp)"
    return None


def module_unsupported_reason(model: torch.nn.Module) -> str | None:
    reason = config_unsupported_reason(model.config)
    devices = {parameter.device for parameter in model.parameters()}
    if reason is None and any(device.type == "meta" for device in devices):
        reason = "some weights are offloaded (they wait on meta between calls)"
    if reason is None and len(devices) != 1:
        reason = "the weights are spread over several devices"
    return reason


@dataclass
class LlamaWeights:
    """Shapes, the RoPE table maker, and the tensors by their checkpoint names."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    context_window: int
    rms_eps: float
    rotary: Rotary
    tensors: dict[str, torch.Tensor]  # "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", …
    tie_embeddings: bool
    # True when these tensors were read for the lean decoder alone: once packed, the plain copies of
    # the projections may be dropped (transformers' module, if ever built, reads its own from disk)
    owned: bool = False
    prepared: dict = field(default_factory=dict)  # the decoders' projections, shared by every decoder

    def get(self, name: str) -> torch.Tensor | None:
        return self.tensors.get(name)

    @property
    def head(self) -> torch.Tensor:
        head = self.tensors.get(f"{HEAD}.weight")
        return head if head is not None and not self.tie_embeddings else self.tensors["model.embed_tokens.weight"]

    @classmethod
    def from_config(cls, config, tensors: dict[str, torch.Tensor], rotary: Rotary) -> LlamaWeights:
        heads = config.num_attention_heads
        return cls(
            layers=config.num_hidden_layers,
            heads=heads,
            kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim_of(config),
            context_window=config.max_position_embeddings,
            rms_eps=config.rms_norm_eps,
            rotary=rotary,
            tensors=tensors,
            tie_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        )

    @classmethod
    def from_module(cls, model: Any) -> LlamaWeights:  # a transformers Llama-style model
        """The weights of a loaded transformers model, shared, not copied; its own rotary module."""
        reason = module_unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the lean decoder cannot run this model: {reason}")
        tensors = dict(model.state_dict())
        tensors[f"{HEAD}.weight"] = model.get_output_embeddings().weight  # tied or not, the real head
        return cls.from_config(model.config, tensors, model.model.rotary_emb)


class DefaultRotary:
    """transformers' default RoPE (`rope_type: default`), op for op, so that the tables match bit for bit."""

    def __init__(self, theta: float, head_dim: int, device: torch.device):
        self.inv_freq = (1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))).to(device)

    def __call__(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        table = torch.cat((freqs, freqs), dim=-1)
        return table.cos().to(dtype=x.dtype), table.sin().to(dtype=x.dtype)


def read_config(folder: Path) -> SimpleNamespace | None:
    try:
        return json.loads(
            (folder / "config.json").read_text(encoding="utf-8"), object_hook=lambda d: SimpleNamespace(**d)
        )
    except (OSError, ValueError):
        return None


def rope_theta(config) -> float | None:
    """The base of a default RoPE, or None for any other kind (scaled, dynamic, …)."""
    parameters = getattr(config, "rope_parameters", None)
    if parameters is not None:
        kind = getattr(parameters, "rope_type", "default")
        return float(parameters.rope_theta) if kind == "default" and hasattr(parameters, "rope_theta") else None
    if getattr(config, "rope_scaling", None) is not None:
        return None
    theta = getattr(config, "rope_theta", None)
    return float(theta) if theta is not None else None


def head_dim_of(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def direct_load_unsupported_reason(folder: Path, config) -> str | None:
    """None if `load_llama_weights` can run this checkpoint (and its `read_config`) without transformers' module."""
    if config is None:
        return "no readable config.json"
    if getattr(config, "auto_map", None) is not None:
        return "the model ships its own code"
    reason = config_unsupported_reason(config)
    if reason is None and rope_theta(config) is None:
        reason = "the RoPE is not the default kind"
    if reason is None and not any(folder.glob("*.safetensors")):
        reason = "no safetensors weights"
    return reason


def load_llama_weights(folder: Path, config, *, dtype: torch.dtype, device: torch.device) -> LlamaWeights:
    """Read a checkpoint folder's safetensors into a `LlamaWeights`, cast as transformers would cast them."""
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(path, framework="pt", device=str(device)) as file:
            for name in file.keys():  # cast one at a time, not after reading them all
                tensor = file.get_tensor(name)
                # a copy, never a view of the mapped file, so that dropping a tensor frees its memory
                tensors[name] = tensor.to(dtype, copy=True) if tensor.is_floating_point() else tensor.clone()
    theta = rope_theta(config)
    assert theta is not None  # direct_load_unsupported_reason refuses other RoPE kinds first
    weights = LlamaWeights.from_config(config, tensors, DefaultRotary(theta, head_dim_of(config), device))
    weights.owned = True
    return weights
