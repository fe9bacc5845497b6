"""A cache of a build's story and neutral activations, so `validate` right after `build-pack`
does not read them again (about 11 minutes on a 2-core CPU for the shipped pack).

The key covers everything the activations depend on: the texts themselves, the model's weights,
the layers, the start token and the dtype. Files live under the user cache directory
(`EMOLAB_CACHE`), are written through a temporary file and a rename, and are safetensors, so a
stale, partial or foreign file is never trusted: a damaged one is just read again from the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emolab.core.devices import dtype_name
from emolab.core.models import LoadedModel, cache_root

FIELDS = ("means", "labels", "topics", "neutral")


def activation_key(loaded: LoadedModel, texts: Sequence[str], layers: Sequence[int], start_token: int) -> str | None:
    """None when the weights have no known identity: then nothing is cached."""
    if loaded.weights_id == "unknown":
        return None
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {
                "weights": loaded.weights_id,
                "layers": list(layers),
                "start_token": start_token,
                "dtype": dtype_name(loaded.dtype),
                "format": 1,
            }
        ).encode()
    )
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:32]


def cache_file(key: str) -> Path:
    return cache_root() / "activations" / f"{key}.safetensors"


def cached(
    key: str | None, compute: Callable[[], dict[str, torch.Tensor]], fields: Sequence[str] = FIELDS
) -> dict[str, torch.Tensor]:
    """The tensors stored under `key`, or `compute()`'s, stored for next time."""
    if key is None:
        return compute()
    path = cache_file(key)
    if path.exists():
        try:
            tensors = load_file(path)
            if set(tensors) == set(fields):
                return tensors
        except (SafetensorError, OSError, ValueError):
            pass
    tensors = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        save_file({name: tensors[name].contiguous() for name in fields}, partial)
        os.replace(partial, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return tensors


def forget(key: str | None) -> None:
    if key is not None:
        cache_file(key).unlink(missing_ok=True)
