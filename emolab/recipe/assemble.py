"""From texts to a pack: activations, the recipe's math, and the manifest."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import torch

from emolab import __version__
from emolab.core.devices import dtype_name
from emolab.core.errors import EmolabError
from emolab.core.models import LoadedModel
from emolab.core.pack import LayerData, ProbeData, VectorPack, write_pack
from emolab.recipe.activations import mean_activations, token_activations
from emolab.recipe.vectors import components_for_variance, difference_of_means, layer_data, pca_geometry, project_out


def directions_for_layer(
    story_means: torch.Tensor,
    labels: torch.Tensor,
    emotions: Sequence[str],
    neutral_tokens: torch.Tensor,
    *,
    denoise_variance: float = 0.5,
) -> LayerData:
    """One layer of the recipe.

    story_means [N, H] (each story's residual averaged from the start token), labels [N] (emotion
    index per story), neutral_tokens [T, H] (per-token residuals of neutral dialogues).
    """
    per_emotion = []
    for index, emotion in enumerate(emotions):
        rows = story_means[labels == index]
        if len(rows) == 0:
            raise EmolabError(f"no usable stories for {emotion!r}: generate more, or check the filter counts")
        per_emotion.append(rows.mean(dim=0))
    raw = difference_of_means(torch.stack(per_emotion))
    if denoise_variance > 0:
        raw = project_out(raw, components_for_variance(neutral_tokens, denoise_variance))
    return layer_data(raw, neutral_tokens, float(neutral_tokens.norm(dim=1).mean()))


def vectors_from_texts(
    loaded: LoadedModel,
    stories: Mapping[str, Sequence[str]],
    neutral: Sequence[str],
    layers: Sequence[int],
    *,
    start_token: int,
    denoise_variance: float = 0.5,
    batch_size: int = 8,
) -> dict[int, LayerData]:
    """Per layer: difference of means over emotions, neutral PCs projected out, unit-normalised."""
    emotions = list(stories)
    texts = [text for emotion in emotions for text in stories[emotion]]
    labels = torch.tensor([index for index, emotion in enumerate(emotions) for _ in stories[emotion]])
    means = mean_activations(loaded, texts, layers, start_token=start_token, batch_size=batch_size)  # [N, L, H]
    neutral_tokens = token_activations(loaded, neutral, layers, batch_size=batch_size)  # [T, L, H]
    return {
        layer: directions_for_layer(
            means[:, column], labels, emotions, neutral_tokens[:, column], denoise_variance=denoise_variance
        )
        for column, layer in enumerate(layers)
    }


def build_pack(
    path,
    loaded: LoadedModel,
    layer_data_by_layer: Mapping[int, LayerData],
    emotions: list[str],
    *,
    name: str,
    steer_layers: list[int],
    probe_layer: int,
    slider: Mapping[str, float],
    provenance: Mapping,
    description: str = "",
    probes: Mapping[int, ProbeData] | None = None,
    probe_settings: Mapping | None = None,
) -> VectorPack:
    geometry = pca_geometry(layer_data_by_layer[probe_layer].directions, emotions)
    manifest = {
        "name": name,
        "description": description,
        "emotions": emotions,
        "model": {
            "id": loaded.reference,
            "weights": loaded.weights_id,
            "hidden_size": loaded.hidden_size,
            "num_layers": loaded.num_layers,
            "dtype": dtype_name(loaded.dtype),
        },
        "steer_layers": steer_layers,
        "probe_layer": probe_layer,
        "slider": dict(slider),
        "geometry": {
            "layer": probe_layer,
            "explained_variance": [round(float(v), 6) for v in geometry.explained],
            "axes": ["valence (PC1)", "arousal (PC2)"],
            "coords": {
                e: [round(float(x), 6), round(float(y), 6)] for e, (x, y) in zip(emotions, geometry.coords, strict=True)
            },
        },
        "provenance": {
            **provenance,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "emolab_version": __version__,
        },
    }
    if probes:
        manifest["probes"] = dict(probe_settings or {})
    return write_pack(path, manifest, dict(layer_data_by_layer), dict(probes) if probes else None)
