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
from emolab.core.events import TurnFinished
from emolab.core.hooks import ResidualHooks
from emolab.core.models import LoadedModel
from emolab.core.pack import VectorPack
from emolab.core.sampling import Sampling
from emolab.core.steering import SteeringVectors
from emolab.recipe.build import StoryActivations, heldout_accuracy, heldout_fit, heldout_topics, read_build_activations
from emolab.recipe.metrics import Norms, correlate_with_norms, logit_lens, nearest_neighbours, pca_coordinates
from emolab.recipe.readout_quality import alert_report, heldout_by_layer, passage_families, test_split

SHOWCASE = ("happy", "desperate", "sad", "afraid", "calm", "angry", "loving", "proud", "nervous", "surprised")
NEIGHBOUR_PROBES = ("afraid", "joyful", "angry", "sad", "calm")
STEERING_EMOTIONS = ("happy", "sad", "afraid", "calm")
STEERING_PROMPT = "Tell me about your weekend."
# name: (goal, at least or at most); the readout scores are the probe's where the pack has one
TARGETS = {
    "pc1_valence_abs_r": (0.85, ">="),
    "arousal_r": (0.5, ">="),
    "top5_over_chance": (8.0, ">="),
    "test_top5_over_chance": (8.0, ">="),
    "hub_max_over_uniform": (3.0, "<="),
    "false_alerts_per_1000": (1.0, "<="),
    "alert_recall_watched": (0.75, ">="),
    "passage_family_accuracy": (0.75, ">="),
}


def target(name: str, value: float | None) -> dict:
    goal, sense = TARGETS[name]
    met = value is not None and (value >= goal if sense == ">=" else value <= goal)
    return {"value": value, "target": goal, "goal": sense, "met": met}


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
def steering_dose_response(
    pack: VectorPack, loaded: LoadedModel, lens: dict, strengths: Sequence[float], max_tokens: int = 40, progress=None
) -> list[dict]:
    """For each emotion and strength: its probe on the reply, and the log-probability mass on its lens words."""
    rows = []
    vectors = SteeringVectors(
        pack, device_of={layer: loaded.layer_device(layer) for layer in pack.steer_layers}, dtype=loaded.dtype
    )
    chosen = [e for e in STEERING_EMOTIONS if e in pack.emotion_index]
    for emotion in chosen:
        lens_ids = sorted(
            {
                i
                for word in lens[emotion]["top"]
                for i in loaded.tokenizer(word, add_special_tokens=False)["input_ids"][:1]
            }
        )
        for strength in strengths:
            engine = Engine(loaded, pack, sampling=Sampling(temperature=0, max_tokens=max_tokens))
            if strength:
                engine.steering.set(emotion, strength)
            everything = list(engine.chat(STEERING_PROMPT))
            said = next(e.text for e in everything if isinstance(e, TurnFinished))  # a base model stops before "User:"
            events = [e for e in everything if hasattr(e, "source")]
            prompt = [e.token_id for e in events if e.source == "prompt"]
            reply = [e for e in events if e.source == "reply"]
            z = float(np.mean([e.probe[pack.emotion_index[emotion]] for e in reply])) if reply else float("nan")
            hooks = ResidualHooks(loaded.blocks, probe_layer=None, steer_layers=pack.steer_layers)
            hooks.additions = vectors.compute({emotion: strength} if strength else {})
            ids = torch.tensor([prompt + [e.token_id for e in reply]], device=loaded.input_device)
            with hooks:
                logits = loaded.model(ids).logits[0, len(prompt) - 1 : -1].float()
            mass = torch.logsumexp(torch.log_softmax(logits, dim=-1)[:, lens_ids], dim=-1).mean() if reply else None
            rows.append(
                {
                    "emotion": emotion,
                    "strength": strength,
                    "probe_z": _finite(z),
                    "lens_logprob": _finite(mass) if mass is not None else None,
                    "reply": said,
                }
            )
            if progress is not None:
                progress("steering dose-response", len(rows), len(chosen) * len(strengths))
    return rows


def story_count_sweep(
    activations: StoryActivations,
    emotions: Sequence[str],
    column: int,
    *,
    norms: Norms | None,
    heldout_every: int,
    denoise_variance: float,
) -> list[dict]:
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
            layer, accuracy = heldout_fit(
                activations,
                emotions,
                column,
                heldout_every=heldout_every,
                denoise_variance=denoise_variance,
                training_topics=training[:count],
            )
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
        accuracy = heldout_accuracy(
            activations,
            emotions,
            column,
            heldout_every=settings.heldout_every,
            denoise_variance=settings.denoise_variance,
        )
        sweep[str(layer)] = {
            "heldout": {**asdict(accuracy), "chance_top1": accuracy.chance_top1, "chance_top5": accuracy.chance_top5},
            **geometry_for(pack.layers[layer].directions, emotions, norms),
        }
    progress("scoring layers", len(layers), len(layers))
    probe = pack.probe_layer
    sweep_by_stories = story_count_sweep(
        activations,
        emotions,
        layers.index(probe),
        norms=norms,
        heldout_every=settings.heldout_every,
        denoise_variance=settings.denoise_variance,
    )
    lens = _logit_lens_table(pack, loaded, probe)
    directions = pack.layers[probe].directions
    neighbours = {
        name: nearest_neighbours(directions, emotions, name) for name in NEIGHBOUR_PROBES if name in pack.emotion_index
    }
    top = pack.slider.max
    strengths = sorted({0.0, round(top * 0.1, 4), round(top * 0.25, 4), round(top * 0.5, 4)})
    steering = steering_dose_response(pack, loaded, lens, strengths, progress=progress)

    progress("scoring readouts", 0, None)
    readouts = heldout_by_layer(
        pack, activations, heldout_every=settings.heldout_every, denoise_variance=settings.denoise_variance
    )
    test, test_readings, test_labels = test_split(pack, loaded, start_token=settings.start_token, progress=progress)
    passages = passage_families(pack, loaded, progress=progress)
    alerts = alert_report(pack, loaded, test_readings, test_labels)

    chosen = sweep[str(probe)]
    shown = "probe" if probe in pack.probes else "steering_directions"  # what the console reads
    verdict = {}
    if norms is not None:
        # a principal component's sign is arbitrary, so the size of r is what counts
        verdict["pc1_valence_abs_r"] = target("pc1_valence_abs_r", round(abs(chosen["pc1_valence"]["pearson"] or 0), 4))
        verdict["arousal_r"] = target(
            "arousal_r", round(max(abs(chosen[key]["pearson"] or 0) for key in ("pc2_arousal", "pc3_arousal")), 4)
        )
    verdict["top5_over_chance"] = target("top5_over_chance", readouts[str(probe)][shown]["top5_over_chance"])
    verdict["test_top5_over_chance"] = target(
        "test_top5_over_chance", test["layers"][str(probe)][shown]["top5_over_chance"]
    )
    verdict["hub_max_over_uniform"] = target(
        "hub_max_over_uniform", readouts[str(probe)][shown]["hubs"]["max_over_uniform"]
    )
    if "false_per_1000" in alerts:
        verdict["false_alerts_per_1000"] = target("false_alerts_per_1000", alerts["false_per_1000"])
        verdict["alert_recall_watched"] = target("alert_recall_watched", alerts["recall_watched"])
    verdict["passage_family_accuracy"] = target("passage_family_accuracy", passages["accuracy"])
    return {
        "pack": pack.name,
        "pack_sha256": pack.sha256,
        "model": loaded.reference,
        "weights": loaded.weights_id,
        "device": loaded.device.type,
        "dtype": dtype_name(loaded.dtype),
        "probe_layer": probe,
        "steer_layers": pack.steer_layers,
        "emotions": len(emotions),
        "stories": int(len(activations.labels)),
        "heldout_every": settings.heldout_every,
        "layers": sweep,
        "readouts": readouts,
        "readout": shown,
        "probes": pack.manifest.get("probes"),
        "test": test,
        "passages": passages,
        "alerts": alerts,
        "stories_sweep": sweep_by_stories,
        "targets": verdict,
        "neighbours": neighbours,
        "logit_lens": lens,
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
    lines = [
        f"# Validation of `{report['pack']}`",
        "",
        f"Model `{report['model']}` ({report['weights'][:23]}…), {report['emotions']} emotions, "
        f"{report['stories']} stories; probe layer {report['probe_layer']}, steering at "
        f"{', '.join(map(str, report['steer_layers']))}; run in {report.get('dtype', 'float32')} on "
        f"{report.get('device', 'cpu')}. This is the paper's recipe on an open model, not Claude's vectors.",
        "",
        "## Targets",
        "",
        "| target | value | goal | met |",
        "|---|---|---|---|",
    ]
    names = {
        "pc1_valence_abs_r": "PC1 vs human valence, abs(r)",
        "arousal_r": "PC2 or PC3 vs human arousal, abs(r)",
        "top5_over_chance": "held-out top-5 accuracy / chance (the console's readout)",
        "test_top5_over_chance": "test-set top-5 accuracy / chance (never used for a choice)",
        "hub_max_over_uniform": "most frequent held-out top-5 emotion / uniform share",
        "false_alerts_per_1000": "false alerts per 1,000 neutral tokens (held-out calibration half)",
        "alert_recall_watched": "watched test stories that alert (desperate, hostile, afraid)",
        "passage_family_accuracy": "passages whose summary names their family (20 families)",
    }
    for key, row in report["targets"].items():
        goal = "≥" if row.get("goal", ">=") == ">=" else "≤"
        lines.append(f"| {names[key]} | {row['value']} | {goal} {row['target']} | {'yes' if row['met'] else 'no'} |")
    lines += render_readouts(report)
    lines += [
        "",
        "## Layers",
        "",
        f"Held-out: directions built without every {report['heldout_every']}th topic, then scored on the "
        "stories of those topics (171-way when all emotions are present). Correlations are Pearson "
        "(Spearman) over the emotion words the norms cover.",
        "",
        "| layer | top-1 | top-5 | chance top-5 | PC1 var | PC2 var | PC1~valence | PC2~arousal | PC3~arousal | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, row in report["layers"].items():
        held = row["heldout"]
        marker = " (default)" if int(layer) == report["probe_layer"] else ""

        def corr(key, row=row):
            value = row.get(key)
            return (
                f"{value['pearson']:+.2f} ({value['spearman']:+.2f})" if value and value["pearson"] is not None else "–"
            )

        n = row.get("pc1_valence", {}).get("n", "–")
        variance = row["explained_variance"]
        lines.append(
            f"| {layer}{marker} | {held['top1']:.3f} | {held['top5']:.3f} | {held['chance_top5']:.3f} | "
            f"{variance[0]:.3f} | {variance[1]:.3f} | {corr('pc1_valence')} | {corr('pc2_arousal')} | "
            f"{corr('pc3_arousal')} | {n} |"
        )
    if report.get("stories_sweep"):
        lines += [
            "",
            f"## Number of stories (layer {report['probe_layer']})",
            "",
            "Directions built from the stories of the first k training topics only; the held-out topics "
            "are the same in every row.",
            "",
            "| topics | stories per emotion | held-out top-5 / chance | PC1~valence abs(r) "
            "| best of PC2, PC3 ~arousal abs(r) |",
            "|---|---|---|---|---|",
        ]
        for row in report["stories_sweep"]:
            if "skipped" in row:
                lines.append(f"| {row['topics']} | {row['stories_per_emotion']} | {row['skipped']} | | |")
                continue
            lines.append(
                f"| {row['topics']} | {row['stories_per_emotion']} | {row['top5_over_chance']} | "
                f"{row.get('pc1_valence_abs_r', '–')} | {row.get('arousal_abs_r', '–')} |"
            )
    lines += ["", "## Nearest neighbours (cosine)", ""]
    for name, pairs in report["neighbours"].items():
        lines.append(f"- **{name}**: " + ", ".join(f"{other} {similarity:.2f}" for other, similarity in pairs))
    lines += ["", "## Logit lens (probe layer)", "", "| emotion | promotes | suppresses |", "|---|---|---|"]
    for name in [n for n in SHOWCASE if n in report["logit_lens"]]:
        row = report["logit_lens"][name]
        lines.append(
            f"| {name} | {', '.join(repr(t) for t in row['top'])} | {', '.join(repr(t) for t in row['bottom'])} |"
        )
    lines += [
        "",
        "All emotions are in the JSON report.",
        "",
        "## Steering dose-response",
        "",
        f'Greedy replies to "{STEERING_PROMPT}" with one emotion steered. `probe z` is that emotion\'s mean '
        "readout over the reply; `lens log-prob` is the mean log-probability mass on its top logit-lens tokens.",
        "",
        "| emotion | strength | probe z | lens log-prob | reply (start) |",
        "|---|---|---|---|---|",
    ]
    for row in report["steering"]:
        reply = row["reply"].replace("\n", " ").replace("|", "/")[:70]
        lines.append(
            f"| {row['emotion']} | {row['strength']:+g} | {row['probe_z']} | {row['lens_logprob']} | {reply} |"
        )
    counts = report.get("counts", {})
    if counts:
        lines += ["", "## Corpus", ""] + [
            f"- {key.replace('_', ' ')}: {value}" for key, value in counts.items() if not isinstance(value, dict)
        ]
    return "\n".join(lines) + "\n"


def render_readouts(report: dict) -> list[str]:
    """The readout sections: probes against steering directions, hubs, test set, passages, alerts."""
    if "readouts" not in report:
        return []
    probes = report.get("probes") or {}
    method = (
        f"{probes['method']}, z against {probes['reference']}"
        f"{', centred over emotions' if probes.get('centre') else ''}"
        if "method" in probes
        else "none: the pack reads with its steering directions"
    )
    lines = [
        "",
        "## Readouts: probes and steering directions",
        "",
        f"Probe method: {method}. Held-out: fitted without the training split's held-out topics and scored on "
        "them (what the build chose with). Test: the pack as built, on the written test split's stories "
        f"({report['test']['stories']}, topics no choice ever saw). Top-5 accuracy / chance, and the most "
        "frequent held-out top-5 emotion's share / uniform (a hub at > 3).",
        "",
        "| layer | steering held-out | probe held-out | steering hub | probe hub | steering test | probe test |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer, row in report["readouts"].items():
        test = report["test"]["layers"].get(layer, {})

        def cell(source, kind, key="top5_over_chance"):
            part = source.get(kind)
            return "–" if part is None else (part["hubs"]["max_over_uniform"] if key == "hub" else part[key])

        marker = " (default)" if int(layer) == report["probe_layer"] else ""
        lines.append(
            f"| {layer}{marker} | {cell(row, 'steering_directions')} | {cell(row, 'probe')} | "
            f"{cell(row, 'steering_directions', 'hub')} | {cell(row, 'probe', 'hub')} | "
            f"{cell(test, 'steering_directions')} | {cell(test, 'probe')} |"
        )
    chosen = report["readouts"][str(report["probe_layer"])][report["readout"]]["hubs"]
    lines += [
        "",
        f"Most frequent held-out top-5 emotions at layer {report['probe_layer']} (uniform share "
        f"{chosen['uniform']}): " + ", ".join(f"{name} {share}" for name, share in chosen["most_frequent"]),
    ]
    passages = report["passages"]
    lines += [
        "",
        "## Passages",
        "",
        f"{passages['correct']} of {passages['passages']} everyday passages ({passages['accuracy']:.0%}; chance "
        f"{passages['chance']:.0%}) get their family from the whole-text summary that `emolab probe` prints "
        "(the mean smoothed readout; the family of the best-scoring member emotion). The passages and "
        "families were written before any result and are used for nothing else.",
        "",
        "| family | named | top three emotions |",
        "|---|---|---|",
    ]
    lines += [
        f"| {row['family']} | {row['guess']}{'' if row['guess'] == row['family'] else ' ✗'} | "
        f"{', '.join(row['top3'])} |"
        for row in passages["rows"]
    ]
    alerts = report["alerts"]
    if "false_per_1000" in alerts:
        lines += [
            "",
            "## Alerts",
            "",
            f"Smoothing half-life {alerts['half_life']:g} tokens and the thresholds in alerts.json, chosen on the "
            "build's neutral texts, the first half of the calibration split and the held-out topics' stories "
            "(recipe/alerts.py). Measured here on data those choices never saw: "
            f"{alerts['false_alerts']} false alerts of desperate, hostile or afraid in {alerts['neutral_tokens']} "
            f"tokens of the second calibration half ({alerts['false_per_1000']} per 1,000); "
            f"{alerts['recall_watched']:.0%} of {alerts['watched_stories']} watched test stories and "
            f"{alerts['recall_all']:.0%} of all {alerts['stories']} test stories alert for their own emotion.",
        ]
    return lines
