"""Decoders: feed tokens through a model with steering added and the probe residual read.

Both kinds share one small interface, used by the engine:

    with decoder:                                   # hooks installed (if any) for this block
        cache = decoder.new_cache()
        logits, residuals = decoder.forward(ids, cache, additions)   # additions: layer → vector
        logits, _ = decoder.forward(ids, cache, {}, logits_for=k)   # [k, vocab]: after each of the last k
        decoder.crop(cache, keep)                   # drop all but the first `keep` cached tokens;
                                                    # False: this cache cannot, build a new one
        other = decoder.copy_cache(cache)           # an independent copy (a compare's second lane)

The lean decoder also runs lanes in one batch (`batched_lanes`): `stack_caches`, `forward_lanes`,
`lane_cache`.

- `LeanLlamaDecoder` (lean_llama.py): a flat forward pass for Llama-style models, the fast path.
- `TransformersDecoder`: the model's own forward with forward hooks; runs any causal LM.
"""

from __future__ import annotations

import inspect

import torch

from emolab.core.hooks import ResidualHooks
from emolab.core.lean_llama import LeanLlamaDecoder
from emolab.core.llama_weights import LlamaWeights, module_unsupported_reason
from emolab.core.models import LoadedModel

DECODER_CHOICES = ("auto", "lean", "transformers")


class TransformersDecoder:
    name = "transformers"
    matmul = "plain"  # transformers' own linears

    def __init__(self, loaded: LoadedModel, *, probe_layer: int | None, steer_layers):
        self.model = loaded.model
        self.input_device = loaded.input_device
        self._hooks = ResidualHooks(loaded.blocks, probe_layer=probe_layer, steer_layers=steer_layers)
        # transformers 5.x renamed `past_key_values` to `cache` (and warns on the old name)
        parameters = inspect.signature(self.model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def __enter__(self) -> TransformersDecoder:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._hooks.__exit__(*exc_info)

    def new_cache(self):
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def crop(self, cache, keep: int) -> bool:
        """False when a sliding-window layer (Gemma 2 and 3, Mistral v0.1) has filled its window: it
        has dropped the keys that cropping would need, and transformers' `crop` raises."""
        length = cache.get_seq_length()
        if keep >= length:
            return True
        if any(
            getattr(layer, "is_sliding", False) and layer.get_seq_length() >= layer.sliding_window
            for layer in getattr(cache, "layers", ())
        ):
            return False
        cache.crop(keep - length)  # a negative count removes that many
        return True

    batched_lanes = False  # a compare interleaves two caches

    def copy_cache(self, cache):
        import copy

        return copy.deepcopy(cache)

    def forward(self, ids: list[int], cache, additions: dict[int, torch.Tensor], *, logits_for: int | None = None):
        self._hooks.additions = additions
        self._hooks.captured = None
        input_ids = torch.tensor([ids], device=self.input_device)
        output = self.model(
            input_ids=input_ids, use_cache=True, logits_to_keep=logits_for or 1, **{self._cache_argument: cache}
        )
        captured = self._hooks.captured
        logits = output.logits[0, -1] if logits_for is None else output.logits[0]
        return logits, (captured[0] if captured is not None else None)


def open_decoder(loaded: LoadedModel, *, probe_layer: int | None, steer_layers, kind: str = "auto"):
    """The lean decoder where it can run the model exactly, else transformers' forward."""
    if kind not in DECODER_CHOICES:
        raise ValueError(f"unknown decoder {kind!r}; choose one of {', '.join(DECODER_CHOICES)}")
    if kind != "transformers":
        if loaded.lean_weights is not None:
            return LeanLlamaDecoder(loaded.lean_weights, probe_layer=probe_layer)
        if kind == "lean" or module_unsupported_reason(loaded.model) is None:
            return LeanLlamaDecoder(LlamaWeights.from_module(loaded.model), probe_layer=probe_layer)
    return TransformersDecoder(loaded, probe_layer=probe_layer, steer_layers=steer_layers)
