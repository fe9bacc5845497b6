"""How good a pack's readouts are: the probes against the steering directions, hubs, the written
test set, the passage families, and the alerts. Every number here is either a held-out score on
the training corpus's held-out topics (what the build chose with) or a score on data that no choice
ever saw (the test split, the passages, the second half of the calibration split): only reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from emolab.core.models import LoadedModel
from emolab.core.pack import VectorPack
from emolab.core.smoothing import smooth
from emolab.recipe.activations import block_outputs
from emolab.recipe.alerts import alert_rates, split_calibration
from emolab.recipe.assemble import directions_for_layer
from emolab.recipe.build import StoryActivations, heldout_topics
from emolab.recipe.metrics import Accuracy, rank_accuracy
from emolab.recipe.probe_fit import ProbeConfig, fit_probe, hub_shares
from emolab.recipe.written import SHIPPED, read_written


def accuracy_row(accuracy: Accuracy) -> dict:
    return {
        "top1": round(accuracy.top1, 4),
        "top5": round(accuracy.top5, 4),
        "n": accuracy.n,
        "top5_over_chance": round(accuracy.top5 / accuracy.chance_top5, 2),
    }


def scored(z: torch.Tensor, labels: torch.Tensor, emotions: Sequence[str]) -> dict:
    return {**accuracy_row(rank_accuracy(z, labels)), "hubs": hub_shares(z, emotions)}


def probe_config(pack: VectorPack) -> ProbeConfig | None:
    settings = pack.manifest.get("probes")
    if not settings or "method" not in settings:
        return None
    return ProbeConfig(settings["method"], settings["reference"], bool(settings.get("centre", False)))


def heldout_by_layer(
    pack: VectorPack, activations: StoryActivations, *, heldout_every: int, denoise_variance: float
) -> dict[str, dict]:
    """Per stored layer: the steering directions' and the probe's held-out scores, each refitted
    without the held-out topics."""
    held = heldout_topics(activations, heldout_every)
    train = ~held
    config = probe_config(pack)
    rows = {}
    for column, layer in enumerate(activations.layers):
        means, labels = activations.means[:, column], activations.labels
        neutral = activations.neutral[:, column]
        recipe = directions_for_layer(
            means[train], labels[train], pack.emotions, neutral, denoise_variance=denoise_variance
        )
        row = {"steering_directions": scored(recipe.z_scores(means[held]), labels[held], pack.emotions)}
        if config is not None:
            probe = fit_probe(config, means[train], labels[train], len(pack.emotions), neutral, recipe=recipe)
            row["probe"] = scored(probe.z_scores(means[held]), labels[held], pack.emotions)
        rows[str(layer)] = row
    return rows


@dataclass
class TextReadings:
    """What the model made of some texts: means from the start token at every stored layer, and
    per-token readouts at the probe layer (without the first token, an attention sink)."""

    means: torch.Tensor  # [N, L, H]
    tokens: list[np.ndarray]  # N × [T, E]


def read_texts(
    loaded: LoadedModel, pack: VectorPack, texts: Sequence[str], *, start_token: int, batch_size: int = 8
) -> TextReadings:
    layers = sorted(pack.layers)
    readout, column = pack.readout(), layers.index(pack.probe_layer)
    means, tokens = [], []
    for outputs in block_outputs(loaded, texts, layers, batch_size=batch_size):
        count = outputs.shape[1]
        start = start_token if count > start_token else count // 2
        means.append(outputs[:, start:].mean(dim=1))
        tokens.append(readout.z_scores(outputs[column, 1:]).numpy())
    return TextReadings(torch.stack(means), tokens)


def test_split(
    pack: VectorPack, loaded: LoadedModel, *, start_token: int, progress
) -> tuple[dict, TextReadings, torch.Tensor]:
    """The written test stories (topics the training split never uses), scored with the pack as built."""
    corpus = read_written(SHIPPED, "test")
    records = [r for r in corpus.records if r["subject"] in pack.emotion_index]
    labels = torch.tensor([pack.emotion_index[r["subject"]] for r in records])
    progress("reading the test stories", 0, len(records))
    readings = read_texts(loaded, pack, [r["text"] for r in records], start_token=start_token)
    progress("reading the test stories", len(records), len(records))
    rows = {}
    for column, layer in enumerate(sorted(pack.layers)):
        means = readings.means[:, column]
        row = {"steering_directions": scored(pack.layers[layer].z_scores(means), labels, pack.emotions)}
        if layer in pack.probes:
            row["probe"] = scored(pack.probes[layer].z_scores(means), labels, pack.emotions)
        rows[str(layer)] = row
    return {"corpus": corpus.describe(), "stories": len(records), "layers": rows}, readings, labels


def passage_families(pack: VectorPack, loaded: LoadedModel, *, progress) -> dict:
    """Each passage's whole-text summary, as `emolab probe` ranks it (the mean smoothed readout),
    mapped to the family of its best-scoring member emotion: right or wrong."""
    corpus = read_written(SHIPPED, "passages")
    families = {
        name: [m for m in members if m in pack.emotion_index] for name, members in corpus.header["families"].items()
    }
    names = list(families)
    progress("reading the passages", 0, len(corpus.records))
    readings = read_texts(loaded, pack, [r["text"] for r in corpus.records], start_token=0)
    rows, hits = [], 0
    for record, tokens in zip(corpus.records, readings.tokens, strict=True):
        summary = smooth(tokens, pack.smoothing_half_life).mean(axis=0)
        scores = [
            max(summary[pack.emotion_index[m]] for m in families[name]) if families[name] else -np.inf for name in names
        ]
        guess = names[int(np.argmax(scores))]
        hits += guess == record["subject"]
        top = [pack.emotions[i] for i in np.argsort(-summary)[:3]]
        rows.append({"family": record["subject"], "guess": guess, "top3": top})
    progress("reading the passages", len(corpus.records), len(corpus.records))
    return {
        "passages": len(rows),
        "correct": hits,
        "accuracy": round(hits / len(rows), 4),
        "chance": round(1 / len(names), 4),
        "families": len(names),
        "rows": rows,
    }


def alert_report(pack: VectorPack, loaded: LoadedModel, test: TextReadings, test_labels: torch.Tensor) -> dict:
    """Out-of-sample alert rates with the pack's thresholds and smoothing: false alerts on the second
    half of the calibration split, recall on the test stories."""
    if not pack.alert_thresholds:
        return {"skipped": "the pack has no alerts.json"}
    _, reporting = split_calibration([r["text"] for r in read_written(SHIPPED, "calibration").records])
    neutral = read_texts(loaded, pack, reporting, start_token=0).tokens
    thresholds = np.array([pack.alert_thresholds.get(name, np.inf) for name in pack.emotions])
    return {
        "half_life": pack.smoothing_half_life,
        "neutral_texts": len(reporting),
        **alert_rates(neutral, test.tokens, test_labels.tolist(), thresholds, pack.smoothing_half_life, pack.emotions),
    }
