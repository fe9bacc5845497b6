"""Probe directions of their own: discriminative readouts fitted on story means.

The recipe's difference of means is the right vector for steering, but as a readout it is
dominated by what all emotional stories share. A discriminative probe (shrinkage LDA, or a
regularised multinomial logistic regression) separates the emotions from each other. Each probe
is a weight matrix W [E, H] with a bias, normalised to z-scores against a reference set:

    z = (h · w_e + b_e − mean_e) / std_e        (then, optionally, minus the mean over emotions)

The method, the reference and the centring are chosen per pack by `choose_probe`, with a rule
fixed here: the best held-out top-5 accuracy among the candidates whose hub share stays within
`HUB_LIMIT` times uniform (all candidates, if none does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from emolab.core.pack import LayerData, ProbeData
from emolab.recipe.metrics import rank_accuracy

HUB_LIMIT = 3.0  # no emotion in more than 3x its uniform share (5/E) of held-out top-5s
METHODS = ("lda", "logreg", "recipe")
REFERENCES = ("neutral", "stories", "mixed")


@dataclass(frozen=True)
class ProbeConfig:
    method: str  # lda (shrinkage, Ledoit-Wolf), logreg (C = 0.05 on standardised inputs), recipe
    reference: str  # what the z-scores are normalised against
    centre: bool  # subtract each readout's mean over emotions

    @property
    def label(self) -> str:
        return f"{self.method}/{self.reference}{'/centred' if self.centre else ''}"


CANDIDATES = tuple(
    ProbeConfig(method, reference, centre) for method in METHODS for reference in REFERENCES for centre in (False, True)
)


def linear_scores(
    means: torch.Tensor, labels: torch.Tensor, n_emotions: int, method: str, recipe: LayerData | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(W [E, H], b [E]) of a linear readout fitted on story means [N, H] with labels [N]."""
    x = means.double().numpy()
    y = labels.numpy()
    if method == "recipe":
        if recipe is None:
            raise ValueError("the recipe method reads the recipe's own directions")
        return recipe.directions.float().clone(), torch.zeros(n_emotions)  # its own storage: a pack writes both
    if method == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(x, y)
        return torch.from_numpy(model.coef_).float(), torch.from_numpy(model.intercept_).float()
    if method == "logreg":
        from sklearn.linear_model import LogisticRegression

        centre, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
        model = LogisticRegression(C=0.05, max_iter=300).fit((x - centre) / scale, y)
        weight = model.coef_ / scale  # back to raw residual units
        bias = model.intercept_ - weight @ centre
        return torch.from_numpy(weight).float(), torch.from_numpy(bias).float()
    raise ValueError(f"unknown probe method {method!r}")


def normalised(
    weight: torch.Tensor,
    bias: torch.Tensor,
    config: ProbeConfig,
    *,
    story_means: torch.Tensor,
    neutral_tokens: torch.Tensor,
) -> ProbeData:
    """The probe with its z-score statistics taken from the configured reference."""

    def stats(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = rows.float() @ weight.T + bias
        return scores.mean(dim=0), scores.std(dim=0)

    if config.reference == "neutral":
        mean, std = stats(neutral_tokens)
    elif config.reference == "stories":
        mean, std = stats(story_means)
    else:  # each set weighs half, however many rows it has
        neutral_mean, neutral_std = stats(neutral_tokens)
        story_mean, story_std = stats(story_means)
        mean = (neutral_mean + story_mean) / 2
        std = ((neutral_std**2 + story_std**2) / 2 + (neutral_mean - story_mean) ** 2 / 4).sqrt()
    return ProbeData(weights=weight, mean=mean - bias, std=std.clamp_min(1e-6), centre=config.centre)


def fit_probe(
    config: ProbeConfig,
    story_means: torch.Tensor,
    labels: torch.Tensor,
    n_emotions: int,
    neutral_tokens: torch.Tensor,
    recipe: LayerData | None = None,
) -> ProbeData:
    weight, bias = linear_scores(story_means, labels, n_emotions, config.method, recipe)
    return normalised(weight, bias, config, story_means=story_means, neutral_tokens=neutral_tokens)


def hub_shares(z: torch.Tensor, emotions: Sequence[str], k: int = 5) -> dict:
    """How often each emotion is in a text's top-k: the five most frequent, and the worst over uniform."""
    k = min(k, len(emotions))
    top = z.topk(k, dim=1).indices
    counts = torch.bincount(top.flatten(), minlength=len(emotions)).double() / len(z)
    order = counts.argsort(descending=True)[:5].tolist()
    uniform = k / len(emotions)
    return {
        "most_frequent": [[emotions[i], round(float(counts[i]), 4)] for i in order],
        "max_share": round(float(counts.max()), 4),
        "uniform": round(uniform, 4),
        "max_over_uniform": round(float(counts.max()) / uniform, 2),
    }


@dataclass(frozen=True)
class CandidateScore:
    config: ProbeConfig
    top1: float
    top5: float
    hub_over_uniform: float

    def as_dict(self) -> dict:
        return {
            **asdict(self.config),
            "label": self.config.label,
            "top1": round(self.top1, 4),
            "top5": round(self.top5, 4),
            "hub_over_uniform": self.hub_over_uniform,
        }


def score_candidates(
    train_means: torch.Tensor,
    train_labels: torch.Tensor,
    held_means: torch.Tensor,
    held_labels: torch.Tensor,
    neutral_tokens: torch.Tensor,
    emotions: Sequence[str],
    recipe: LayerData,
    candidates: Sequence[ProbeConfig] = CANDIDATES,
) -> list[CandidateScore]:
    """Every candidate fitted on the training topics and scored on the held-out ones."""
    fitted: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    scores = []
    for config in candidates:
        if config.method not in fitted:
            fitted[config.method] = linear_scores(train_means, train_labels, len(emotions), config.method, recipe)
        probe = normalised(*fitted[config.method], config, story_means=train_means, neutral_tokens=neutral_tokens)
        z = probe.z_scores(held_means)
        accuracy = rank_accuracy(z, held_labels)
        scores.append(CandidateScore(config, accuracy.top1, accuracy.top5, hub_shares(z, emotions)["max_over_uniform"]))
    return scores


def choose(scores: Sequence[CandidateScore]) -> CandidateScore:
    """The fixed rule: best top-5 (then top-1) among hub-free candidates, or among all if none is."""
    hub_free = [score for score in scores if score.hub_over_uniform <= HUB_LIMIT] or list(scores)
    return max(hub_free, key=lambda score: (score.top5, score.top1))
