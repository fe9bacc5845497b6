"""How good a set of emotion directions is: held-out accuracy, geometry against human norms,
neighbours, and the logit lens. Plain tensors in, plain numbers out."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emolab.core.errors import EmolabError
from emolab.recipe.vectors import pca_projection


@dataclass(frozen=True)
class Accuracy:
    top1: float
    top5: float
    n: int
    n_classes: int

    @property
    def chance_top1(self) -> float:
        return 1 / self.n_classes

    @property
    def chance_top5(self) -> float:
        return min(5, self.n_classes) / self.n_classes


def rank_accuracy(scores: torch.Tensor, labels: torch.Tensor) -> Accuracy:
    """scores [N, E], labels [N] → how often the true emotion ranks first, or in the top five."""
    order = scores.argsort(dim=1, descending=True)
    hits = order == labels[:, None]
    return Accuracy(
        top1=float(hits[:, :1].any(dim=1).float().mean()),
        top5=float(hits[:, :5].any(dim=1).float().mean()),
        n=len(labels),
        n_classes=scores.shape[1],
    )


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    a, b = np.asarray(x, float), np.asarray(y, float)
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator else float("nan")


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Average ranks, ties sharing their mean rank (as Spearman's rho needs)."""
    values = np.asarray(values, float)
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(_ranks(x), _ranks(y))


@dataclass(frozen=True)
class Norms:
    valence: dict[str, float]
    arousal: dict[str, float]


def read_norms(path: str | Path) -> Norms:
    """Warriner et al. (2013) style CSV: `Word`, `V.Mean.Sum`, `A.Mean.Sum`."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"Word", "V.Mean.Sum", "A.Mean.Sum"} - set(reader.fieldnames or [])
            if missing:
                raise EmolabError(f"{path}: not a norms file: no column {sorted(missing)[0]!r}")
            valence, arousal = {}, {}
            for row in reader:
                word = row["Word"].strip().lower()
                valence[word] = float(row["V.Mean.Sum"])
                arousal[word] = float(row["A.Mean.Sum"])
    except FileNotFoundError:
        raise EmolabError(f"{path}: no such norms file") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise EmolabError(f"{path}: unreadable norms file ({error})") from None
    return Norms(valence, arousal)


@dataclass(frozen=True)
class Correlation:
    pearson: float
    spearman: float
    n: int


def correlate_with_norms(coords: np.ndarray, emotions: Sequence[str], norms: Mapping[str, float]) -> Correlation:
    """Correlation of one PCA coordinate with a human rating, over the emotions the norms cover."""
    pairs = [(coords[i], norms[name]) for i, name in enumerate(emotions) if name in norms]
    if len(pairs) < 3:
        return Correlation(float("nan"), float("nan"), len(pairs))
    x, y = zip(*pairs, strict=True)
    return Correlation(pearson(x, y), spearman(x, y), len(pairs))


def pca_coordinates(directions: torch.Tensor, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates [E, k] of the unit directions on their top-k principal components, and the variance ratios."""
    coords, ratios = pca_projection(directions, k)
    return coords.numpy(), ratios.numpy()


def nearest_neighbours(
    directions: torch.Tensor, emotions: Sequence[str], name: str, k: int = 5
) -> list[tuple[str, float]]:
    index = list(emotions).index(name)
    similarity = directions @ directions[index]
    similarity[index] = -math.inf
    top = similarity.topk(min(k, len(emotions) - 1))
    return [(emotions[int(i)], float(v)) for v, i in zip(top.values, top.indices, strict=True)]


def logit_lens(
    direction: torch.Tensor, unembedding: torch.Tensor, norm: torch.nn.Module | None, tokenizer, k: int = 10
) -> tuple[list[str], list[str]]:
    """The tokens a direction most promotes and suppresses through the model's final norm and the unembedding.

    The norm is the model's own module, so Gemma's `1 + w` scale and a LayerNorm's centring apply as
    they do in the model; its value at zero (a LayerNorm's bias) is taken away, leaving the direction's part.
    """
    direction = direction.float()
    if norm is not None:
        with torch.no_grad():
            direction = norm(direction[None])[0] - norm(torch.zeros_like(direction)[None])[0]
    logits = unembedding.float() @ direction
    top = [tokenizer.decode([int(i)]) for i in logits.topk(k).indices]
    bottom = [tokenizer.decode([int(i)]) for i in (-logits).topk(k).indices]
    return top, bottom
