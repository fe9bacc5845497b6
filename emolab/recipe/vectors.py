"""The math of the recipe, on plain tensors: testable without a model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emolab.core.pack import LayerData


def difference_of_means(per_emotion_means: torch.Tensor) -> torch.Tensor:
    """[E, H] emotion means → each minus the mean across emotions."""
    return per_emotion_means - per_emotion_means.mean(dim=0, keepdim=True)


def principal_components(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Components [k, H] (rows, unit) and explained-variance ratios [k] of centred samples [N, H]."""
    centred = samples.double() - samples.double().mean(dim=0, keepdim=True)
    _, singular, components = torch.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    return components.float(), (variance / variance.sum()).float()


def components_for_variance(samples: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    """The fewest top principal components that together explain at least `fraction` of the variance."""
    components, ratios = principal_components(samples)
    count = int(torch.searchsorted(torch.cumsum(ratios, 0), torch.tensor(fraction)).item()) + 1
    return components[: min(count, len(ratios))]


def project_out(vectors: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """Remove the span of the orthonormal rows of `components` from every row of `vectors`."""
    return vectors - (vectors @ components.T) @ components


def pca_projection(directions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates [E, k] of the rows on their top-k principal components, and those components' variance ratios."""
    components, ratios = principal_components(directions)
    centred = directions - directions.mean(dim=0, keepdim=True)
    return centred @ components[:k].T, ratios[:k]


@dataclass(frozen=True)
class Geometry:
    coords: torch.Tensor  # [E, 2]
    explained: torch.Tensor  # [2]


def pca_geometry(directions: torch.Tensor, emotions: list[str]) -> Geometry:
    """Each emotion's position on the first two PCs of the unit directions.

    PC1 is signed so that 'happy' sits right of 'sad', PC2 so that 'excited' sits above 'calm', when those
    emotions are in the pack: PCA's signs are arbitrary, these make the plot read as valence/arousal.
    """
    coords, ratios = pca_projection(directions, 2)
    index = {name: i for i, name in enumerate(emotions)}
    for axis, (high, low) in enumerate((("happy", "sad"), ("excited", "calm"))):
        if high in index and low in index and coords[index[high], axis] < coords[index[low], axis]:
            coords[:, axis] *= -1
    return Geometry(coords=coords, explained=ratios[:2])


def layer_data(raw_vectors: torch.Tensor, neutral_tokens: torch.Tensor, all_tokens_norm: float) -> LayerData:
    """Unit directions and their statistics for one layer.

    `neutral_tokens` [N, H] are residuals of neutral text at this layer: they give each
    emotion's projection mean and standard deviation (the probe's z-score).
    """
    norms = raw_vectors.norm(dim=1)
    directions = raw_vectors / norms.clamp_min(1e-12)[:, None]
    projections = neutral_tokens @ directions.T
    return LayerData(
        directions=directions,
        raw_norm=norms,
        neutral_mean=projections.mean(dim=0),
        neutral_std=projections.std(dim=0).clamp_min(1e-6),
        mean_norm=float(all_tokens_norm),
    )
