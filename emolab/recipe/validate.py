"""`emolab validate`: is a pack any good? Held-out accuracy, logit lens, geometry against human
norms, neighbours, and a steering dose-response. Writes REPORT.md and machine-readable JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from emolab.core.devices import dtype_name
from emolab.core.engine import Engine
from emolab.core.errors import EmolabError
from emolab.core.hooks import ResidualHooks
from emolab.core.models import LoadedModel
from emolab.core.pack import VectorPack
from emolab.core.sampling import Sampling
from emolab.core.steering import SteeringVectors
from emolab.recipe.build import (StoryActivations, heldout_accuracy, heldout_fit, heldout_topics,
                                 read_build_activations)
from emolab.recipe.metrics import Norms, correlate_with_norms, logit_lens, nearest_neighbours, pca_coordinates

SHOWCASE = ("happy", "desperate", "sad", "afraid", "calm", "angry", "loving", "proud", "nervous", "surprised")
NEIGHBOUR_PROBES = ("afraid", "joyful", "angry", "sad", "calm")
STEERING_EMOTIONS = ("happy", "sad", "afraid", "calm")
STEERING_PROMPT = "Tell me about your weekend."
TARGETS = {"pc1_valence_abs_r": 0.80, "arousal_r": 0.5, "top5_over_chance": 8.0}


def _finite(value: float) -> float | None:
    return round(float(value), 4) if math.isfinite(float(value)) else None


def geometry_for(directions: torch.Tensor, emotions: Sequence[str], norms: Norms | None) -> dict:
    coords, ratios = pca_coordinates(directions, k=3)
    result = {"explained_variance": [_finite(r) for r in ratios]}
    if norms is not None:
        for axis, name in enumerate(("pc1", "pc2", "pc3")):
            for rating, table in (("valence", norms.valence), ("arousal", norms.arousal)):
                c = correlate_with_norms(coords[:, axis], emotions, table)
                result[f"{name}_{rating}"] = {"pearson": _finite(c.pearson), "spearman": _finite(c.spearman), "n": c.n}
    return result


def _logit_lens_table(pack: VectorPack, loaded: LoadedModel, layer: int) -> dict[str, dict[str, list[str]]]:
    import copy

    from emolab.core.models import final_norm

    # to the CPU before the fp32 copy: an 8B model's unembedding is 2 GB in fp32
    unembedding = loaded.model.get_output_embeddings().weight.detach().cpu().float()
    norm = final_norm(loaded.model)
    norm = copy.deepcopy(norm).cpu().float() if norm is not None else None
    table = {}
    for index, emotion in enumerate(pack.emotions):
        top, bottom = logit_lens(pack.layers[layer].directions[index], unembedding, norm, loaded.tokenizer)
        table[emotion] = {"top": top, "bottom": bottom}
    return table


@torch.inference_mode()
def steering_dose_response(pack: VectorPack, loaded: LoadedModel, lens: dict, strengths: Sequence[float],
                           max_tokens: int = 40, progress=None) -> list[dict]:
    """For each emotion and strength: its probe on the reply, and the log-probability mass on its lens words."""
    rows = []
    vectors = SteeringVectors(pack, device_of={layer: loaded.layer_device(layer) for layer in pack.steer_layers},
                              dtype=loaded.dtype)
    chosen = [e for e in STEERING_EMOTIONS if e in pack.emotion_index]
    for emotion in chosen:
        lens_ids = sorted({i for word in lens[emotion]["top"]
                           for i in loaded.tokenizer(word, add_special_tokens=False)["input_ids"][:1]})
        for strength in strengths:
            engine = Engine(loaded, pack, sampling=Sampling(temperature=0, max_tokens=max_tokens))
            if strength:
                engine.steering.set(emotion, strength)
            events = [e for e in engine.chat(STEERING_PROMPT) if hasattr(e, "source")]
            prompt = [e.token_id for e in events if e.source == "prompt"]
            reply = [e for e in events if e.source == "reply"]
            z = float(np.mean([e.probe[pack.emotion_index[emotion]] for e in reply])) if reply else float("nan")
            hooks = ResidualHooks(loaded.blocks, probe_layer=None, steer_layers=pack.steer_layers)
            hooks.additions = vectors.compute({emotion: strength} if strength else {})
            ids = torch.tensor([prompt + [e.token_id for e in reply]], device=loaded.input_device)
            with hooks:
                logits = loaded.model(ids).logits[0, len(prompt) - 1:-1].float()
            mass = torch.logsumexp(torch.log_softmax(logits, dim=-1)[:, lens_ids], dim=-1).mean() if reply else None
            rows.append({"emotion": emotion, "strength": strength, "probe_z": _finite(z),
                         "lens_logprob": _finite(mass) if mass is not None else None,
                         "reply": "".join(e.text for e in reply)})
            if progress is not None:
                progress("steering dose-response", len(rows), len(chosen) * len(strengths))
    return rows


def story_count_sweep(activations: StoryActivations, emotions: Sequence[str], column: int, *, norms: Norms | None,
                      heldout_every: int, denoise_variance: float) -> list[dict]:
    """Quality against the number of stories: directions from the first k training topics only.

    The held-out topics stay the same for every k, so the rows compare like with like.
    """
    held = heldout_topics(activations, heldout_every)
    training = sorted(set(activations.topics[~held].tolist()))
    rows = []
    for count in sorted({max(1, round(len(training) * share)) for share in (0.25, 0.5, 0.75, 1.0)}):
        used = int((~held & torch.isin(activations.topics, torch.tensor(training[:count]))).sum())
        row: dict = {"topics": count, "stories": used, "stories_per_emotion": round(used / len(emotions), 1)}
        try:
            layer, accuracy = heldout_fit(activations, emotions, column, heldout_every=heldout_every,
                                          denoise_variance=denoise_variance, training_topics=training[:count])
        except EmolabError:  # an emotion with no usable story among so few topics
            rows.append({**row, "skipped": "an emotion has no usable story"})
            continue
        row["top5_over_chance"] = round(accuracy.top5 / accuracy.chance_top5, 2)
        row["top1"], row["top5"] = round(accuracy.top1, 4), round(accuracy.top5, 4)
        geometry = geometry_for(layer.directions, emotions, norms)
        if norms is not None:
            row["pc1_valence_abs_r"] = _rounded_abs(geometry["pc1_valence"]["pearson"])
            row["arousal_abs_r"] = max(_rounded_abs(geometry[key]["pearson"]) for key in ("pc2_arousal", "pc3_arousal"))
        rows.append(row)
    return rows


def _rounded_abs(value: float | None) -> float:
    return round(abs(value or 0.0), 4)


def validate(pack: VectorPack, loaded: LoadedModel, *, norms: Norms | None, progress) -> dict:
    activations, settings, texts = read_build_activations(pack, loaded, progress)
    layers = sorted(pack.layers)
    emotions = pack.emotions

    sweep = {}
    for column, layer in enumerate(layers):
        progress("scoring layers", column, len(layers))
        accuracy = heldout_accuracy(activations, emotions, column, heldout_every=settings.heldout_every,
                                    denoise_variance=settings.denoise_variance)
        sweep[str(layer)] = {"heldout": {**asdict(accuracy), "chance_top1": accuracy.chance_top1,
                                         "chance_top5": accuracy.chance_top5},
                             **geometry_for(pack.layers[layer].directions, emotions, norms)}
    progress("scoring layers", len(layers), len(layers))
    probe = pack.probe_layer
    sweep_by_stories = story_count_sweep(activations, emotions, layers.index(probe), norms=norms,
                                         heldout_every=settings.heldout_every,
                                         denoise_variance=settings.denoise_variance)
    lens = _logit_lens_table(pack, loaded, probe)
    directions = pack.layers[probe].directions
    neighbours = {name: nearest_neighbours(directions, emotions, name) for name in NEIGHBOUR_PROBES
                  if name in pack.emotion_index}
    top = pack.slider.max
    strengths = sorted({0.0, round(top * 0.1, 4), round(top * 0.25, 4), round(top * 0.5, 4)})
    steering = steering_dose_response(pack, loaded, lens, strengths, progress=progress)

    chosen = sweep[str(probe)]
    verdict = {}
    if norms is not None:
        valence = abs(chosen["pc1_valence"]["pearson"] or 0)
        # a principal component's sign is arbitrary, so the size of r is what counts
        arousal = max(abs(chosen[key]["pearson"] or 0) for key in ("pc2_arousal", "pc3_arousal"))
        verdict["pc1_valence_abs_r"] = {"value": round(valence, 4), "target": TARGETS["pc1_valence_abs_r"],
                                        "met": valence >= TARGETS["pc1_valence_abs_r"]}
        verdict["arousal_r"] = {"value": round(arousal, 4), "target": TARGETS["arousal_r"],
                                "met": arousal >= TARGETS["arousal_r"]}
    ratio = chosen["heldout"]["top5"] / chosen["heldout"]["chance_top5"]
    verdict["top5_over_chance"] = {"value": round(ratio, 2), "target": TARGETS["top5_over_chance"],
                                   "met": ratio >= TARGETS["top5_over_chance"]}
    return {
        "pack": pack.name, "pack_sha256": pack.sha256, "model": loaded.reference, "weights": loaded.weights_id,
        "device": loaded.device.type, "dtype": dtype_name(loaded.dtype),
        "probe_layer": probe, "steer_layers": pack.steer_layers, "emotions": len(emotions),
        "stories": int(len(activations.labels)), "heldout_every": settings.heldout_every,
        "layers": sweep, "stories_sweep": sweep_by_stories, "targets": verdict, "neighbours": neighbours, "logit_lens": lens,
        "steering": steering,
        "counts": pack.manifest["provenance"].get("counts", {}),
    }


def write_report(report: dict, path: Path) -> tuple[Path, Path]:
    import json

    markdown = path.with_suffix(".md")
    data = path.with_suffix(".json")
    data.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown.write_text(render_markdown(report), encoding="utf-8")
    return markdown, data


def render_markdown(report: dict) -> str:
    lines = [f"# Validation of `{report['pack']}`", "",
             f"Model `{report['model']}` ({report['weights'][:23]}…), {report['emotions']} emotions, "
             f"{report['stories']} stories; probe layer {report['probe_layer']}, steering at "
             f"{', '.join(map(str, report['steer_layers']))}; run in {report.get('dtype', 'float32')} on "
             f"{report.get('device', 'cpu')}. This is the paper's recipe on an open model, not Claude's vectors.", "", "## Targets", "", "| target | value | goal | met |", "|---|---|---|---|"]
    names = {"pc1_valence_abs_r": "PC1 vs human valence, abs(r)", "arousal_r": "PC2 or PC3 vs human arousal, abs(r)",
             "top5_over_chance": "held-out top-5 accuracy / chance"}
    for key, row in report["targets"].items():
        lines.append(f"| {names[key]} | {row['value']} | ≥ {row['target']} | {'yes' if row['met'] else 'no'} |")
    lines += ["", "## Layers", "",
              f"Held-out: directions built without every {report['heldout_every']}th topic, then scored on the "
              "stories of those topics (171-way when all emotions are present). Correlations are Pearson "
              "(Spearman) over the emotion words the norms cover.", "",
              "| layer | top-1 | top-5 | chance top-5 | PC1 var | PC2 var | PC1~valence | PC2~arousal | PC3~arousal | n |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for layer, row in report["layers"].items():
        held = row["heldout"]
        marker = " (default)" if int(layer) == report["probe_layer"] else ""

        def corr(key):
            value = row.get(key)
            return f"{value['pearson']:+.2f} ({value['spearman']:+.2f})" if value and value["pearson"] is not None else "–"

        n = row.get("pc1_valence", {}).get("n", "–")
        variance = row["explained_variance"]
        lines.append(f"| {layer}{marker} | {held['top1']:.3f} | {held['top5']:.3f} | {held['chance_top5']:.3f} | "
                     f"{variance[0]:.3f} | {variance[1]:.3f} | {corr('pc1_valence')} | {corr('pc2_arousal')} | "
                     f"{corr('pc3_arousal')} | {n} |")
    if report.get("stories_sweep"):
        lines += ["", f"## Number of stories (layer {report['probe_layer']})", "",
                  "Directions built from the stories of the first k training topics only; the held-out topics "
                  "are the same in every row.", "",
                  "| topics | stories per emotion | held-out top-5 / chance | PC1~valence abs(r) | best of PC2, PC3 ~arousal abs(r) |",
                  "|---|---|---|---|---|"]
        for row in report["stories_sweep"]:
            if "skipped" in row:
                lines.append(f"| {row['topics']} | {row['stories_per_emotion']} | {row['skipped']} | | |")
                continue
            lines.append(f"| {row['topics']} | {row['stories_per_emotion']} | {row['top5_over_chance']} | "
                         f"{row.get('pc1_valence_abs_r', '–')} | {row.get('arousal_abs_r', '–')} |")
    lines += ["", "## Nearest neighbours (cosine)", ""]
    for name, pairs in report["neighbours"].items():
        lines.append(f"- **{name}**: " + ", ".join(f"{other} {similarity:.2f}" for other, similarity in pairs))
    lines += ["", "## Logit lens (probe layer)", "", "| emotion | promotes | suppresses |", "|---|---|---|"]
    for name in [n for n in SHOWCASE if n in report["logit_lens"]]:
        row = report["logit_lens"][name]
        lines.append(f"| {name} | {', '.join(repr(t) for t in row['top'])} | {', '.join(repr(t) for t in row['bottom'])} |")
    lines += ["", "All emotions are in the JSON report.", "", "## Steering dose-response", "",
              f"Greedy replies to \"{STEERING_PROMPT}\" with one emotion steered. `probe z` is that emotion's mean "
              "readout over the reply; `lens log-prob` is the mean log-probability mass on its top logit-lens tokens.",
              "", "| emotion | strength | probe z | lens log-prob | reply (start) |", "|---|---|---|---|---|"]
    for row in report["steering"]:
        reply = row["reply"].replace("\n", " ").replace("|", "/")[:70]
        lines.append(f"| {row['emotion']} | {row['strength']:+g} | {row['probe_z']} | {row['lens_logprob']} | {reply} |")
    counts = report.get("counts", {})
    if counts:
        lines += ["", "## Corpus", ""] + [f"- {key.replace('_', ' ')}: {value}" for key, value in counts.items()
                                          if not isinstance(value, dict)]
    return "\n".join(lines) + "\n"
