"""Residual-stream activations at the outputs of decoder blocks (hidden_states[L+1])."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from emolab.core.models import LoadedModel


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@torch.inference_mode()
def block_outputs(loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int], *, batch_size: int = 8):
    """Yield, per text, a [len(layers), tokens, hidden] float32 tensor of block outputs."""
    tokenizer = loaded.tokenizer
    for batch in _batches(list(texts), batch_size):
        encoded = [
            list(tokenizer(text, add_special_tokens=True)["input_ids"])[: loaded.context_window] for text in batch
        ]
        longest = max(len(ids) for ids in encoded)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([ids + [pad] * (longest - len(ids)) for ids in encoded], device=loaded.input_device)
        mask = torch.tensor(
            [[1] * len(ids) + [0] * (longest - len(ids)) for ids in encoded], device=loaded.input_device
        )
        # base_model: `model` for Llama, Qwen and Gemma, `transformer` for GPT-2, Falcon and Bloom, `gpt_neox`…
        hidden = loaded.model.base_model(
            input_ids=input_ids, attention_mask=mask, output_hidden_states=True, use_cache=False
        ).hidden_states
        # each layer to the CPU first: under a device_map, layers live on different GPUs
        stacked = torch.stack([hidden[layer + 1].cpu().float() for layer in layers], dim=1)  # [B, L, T, H]
        for row, ids in enumerate(encoded):
            yield stacked[row, :, : len(ids)]


def mean_activations(
    loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int], *, start_token: int, batch_size: int = 8
) -> torch.Tensor:
    """[n_texts, n_layers, hidden]: each text's residual averaged over positions from `start_token` on.

    A text shorter than `start_token` is averaged over its last half instead of being lost.
    """
    means = []
    for outputs in block_outputs(loaded, texts, layers, batch_size=batch_size):
        tokens = outputs.shape[1]
        start = start_token if tokens > start_token else tokens // 2
        means.append(outputs[:, start:].mean(dim=1))
    return torch.stack(means)


def token_activations(
    loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int], *, skip_first: int = 1, batch_size: int = 8
) -> torch.Tensor:
    """[n_tokens, n_layers, hidden]: every token's residual, without the first `skip_first` positions

    (the first position is an attention sink whose norm is far from typical).
    """
    rows = [
        outputs[:, skip_first:].transpose(0, 1)
        for outputs in block_outputs(loaded, texts, layers, batch_size=batch_size)
    ]
    return torch.cat(rows)
