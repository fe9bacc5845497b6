"""`emolab build-pack`: the whole recipe, from an empty folder to a validated pack.

    corpus (resumable) → story and neutral activations → directions per layer
    → held-out check per layer to choose the default layer → the pack

Everything that was decided is recorded in the pack's provenance.
"""

from __future__ import annotations

import gzip
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from emolab.core.errors import EmolabError
from emolab.core.models import LoadedModel
from emolab.core.pack import LayerData, VectorPack, load_pack
from emolab.recipe.activation_cache import activation_key, cached, forget
from emolab.recipe.activations import mean_activations, token_activations
from emolab.recipe.alerts import (
    Calibration,
    calibrate,
    neutral_stream,
    split_calibration,
    token_readouts,
    write_calibration,
)
from emolab.recipe.assemble import build_pack, directions_for_layer
from emolab.recipe.corpus import CorpusPlan, CorpusTexts, build_corpus, package_lines, read_corpus, story_prompt_format
from emolab.recipe.metrics import Accuracy, rank_accuracy
from emolab.recipe.probe_fit import HUB_LIMIT, CandidateScore, choose, fit_probe, score_candidates
from emolab.recipe.written import SHIPPED, read_written

CORPUS = "corpus.jsonl"
# (stage, done, total); total None while unknown
Progress = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class BuildSettings:
    name: str
    emotions: tuple[str, ...]
    topics: int = 20
    stories_per_topic: int = 1
    neutral_per_task: int = 2
    max_new_tokens: int = 160
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int = 0
    layers: tuple[int, ...] | None = None  # None: a sweep around two-thirds depth
    start_token: int = 20
    denoise_variance: float = 0.5
    heldout_every: int = 5  # every fifth topic is held out when choosing the layer
    batch_size: int = 32
    slider_max: float = 1.0
    slider_step: float = 0.01
    corpus: str | None = None  # a written corpus to read (its name or path); None: the model writes its own

    def __post_init__(self) -> None:
        if not 1 <= self.topics <= 100:
            raise EmolabError(f"--topics {self.topics}: choose 1 to 100 (the shipped topic list has 100)")
        if self.stories_per_topic < 1 or self.neutral_per_task < 1:
            raise EmolabError("--stories-per-topic and --neutral-per-task must be at least 1")
        if len(set(self.emotions)) != len(self.emotions):
            duplicate = next(e for e in self.emotions if self.emotions.count(e) > 1)
            raise EmolabError(f"the emotion list names {duplicate!r} twice")
        if len(self.emotions) < 2:
            raise EmolabError("a pack needs at least two emotions: the recipe subtracts their mean")


def writable_folder(folder: Path) -> Path:
    """Create the folder if needed and check that files can be written there, before any long work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".write-test").touch()
        (folder / ".write-test").unlink()
    except OSError as error:
        raise EmolabError(f"{folder}: cannot write there ({error.strerror})") from None
    return folder


def default_layers(num_layers: int) -> tuple[int, ...]:
    """Every third block from one third to five sixths of the depth, plus two-thirds depth."""
    sweep = set(range(num_layers // 3, (num_layers * 5) // 6 + 1, 3))
    sweep.add(round(num_layers * 2 / 3))
    return tuple(sorted(layer for layer in sweep if 0 <= layer < num_layers))


def corpus_plan(loaded: LoadedModel, settings: BuildSettings) -> CorpusPlan:
    return CorpusPlan(
        model=loaded.reference,
        weights=loaded.weights_id,
        emotions=tuple(settings.emotions),
        topics=tuple(package_lines("topics_100.txt")[: settings.topics]),
        stories_per_topic=settings.stories_per_topic,
        neutral_tasks=tuple(package_lines("neutral_tasks.txt")),
        neutral_per_task=settings.neutral_per_task,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
    )


def estimate_seconds(loaded: LoadedModel, plan: CorpusPlan, settings: BuildSettings, probe_tokens: int = 12) -> float:
    """Generation time for the whole plan, from timing one full batch for a few tokens."""
    from dataclasses import replace

    from emolab.recipe.corpus import generate_replies

    jobs = plan.jobs()
    sample = [plan.prompt(job) for job in jobs[-settings.batch_size :]]
    began = time.perf_counter()
    generate_replies(loaded, sample, replace(plan, max_new_tokens=probe_tokens), seed=0)
    per_step = (time.perf_counter() - began) / probe_tokens
    batches = -(-len(jobs) // settings.batch_size)
    return batches * plan.max_new_tokens * per_step


def estimate_reading_seconds(loaded: LoadedModel, texts: CorpusTexts, settings: BuildSettings) -> float:
    """Reading time for a written corpus, from timing one batch of its stories."""
    stories = [text for rows in texts.stories.values() for text in rows]
    size = max(1, settings.batch_size // 2)
    layers = settings.layers or default_layers(loaded.num_layers)
    began = time.perf_counter()
    mean_activations(loaded, stories[:size], layers, start_token=settings.start_token, batch_size=size)
    return (time.perf_counter() - began) / min(size, len(stories)) * (len(stories) + len(texts.neutral))


def corpus_path(out: Path) -> Path:
    """The corpus is kept gzipped in a finished pack; a resumed build unpacks it first."""
    plain = out / CORPUS
    packed = out / (CORPUS + ".gz")
    if not plain.exists() and packed.exists():
        with gzip.open(packed, "rb") as source, plain.open("wb") as target:
            shutil.copyfileobj(source, target)
    return plain


def compress_corpus(out: Path) -> Path:
    plain, packed = out / CORPUS, out / (CORPUS + ".gz")
    with plain.open("rb") as source, gzip.GzipFile(packed, "wb", mtime=0) as target:
        shutil.copyfileobj(source, target)
    plain.unlink()
    return packed


@dataclass
class StoryActivations:
    """Per-story mean residuals [N, L, H] with labels, topics, and neutral per-token residuals [T, L, H]."""

    layers: tuple[int, ...]
    means: torch.Tensor
    labels: torch.Tensor
    topics: torch.Tensor
    neutral: torch.Tensor


def collect_activations(
    loaded: LoadedModel,
    emotions: Sequence[str],
    texts: CorpusTexts,
    layers: Sequence[int],
    *,
    start_token: int,
    batch_size: int,
    progress: Progress,
) -> StoryActivations:
    """Read from the model, or from the activation cache when these very texts were read before.

    Stories are read in chunks, each cached as it is done, so a killed read resumes where it stopped.
    """
    stories, labels, topics = [], [], []
    for index, emotion in enumerate(emotions):
        for topic, text in zip(texts.story_topics[emotion], texts.stories[emotion], strict=True):
            stories.append(text)
            labels.append(index)
            topics.append(topic)
    key = activation_key(loaded, [*emotions, "", *stories, "", *texts.neutral], layers, start_token)
    chunk = max(batch_size, 1) * 4
    chunk_keys = [f"{key}.{start}" if key else None for start in range(0, len(stories), chunk)]

    def read() -> dict[str, torch.Tensor]:
        means = []
        for number, start in enumerate(range(0, len(stories), chunk)):
            part = stories[start : start + chunk]
            means.append(
                cached(
                    chunk_keys[number],
                    lambda part=part: {
                        "means": mean_activations(loaded, part, layers, start_token=start_token, batch_size=batch_size)
                    },
                    fields=("means",),
                )["means"]
            )
            progress("reading story activations", min(start + chunk, len(stories)), len(stories))
        progress("reading neutral activations", 0, len(texts.neutral))
        neutral = token_activations(loaded, texts.neutral, layers, batch_size=batch_size)
        progress("reading neutral activations", len(texts.neutral), len(texts.neutral))
        return {
            "means": torch.cat(means),
            "labels": torch.tensor(labels),
            "topics": torch.tensor(topics),
            "neutral": neutral,
        }

    found = cached(key, read)
    for chunk_key in chunk_keys:
        forget(chunk_key)
    return StoryActivations(tuple(layers), found["means"], found["labels"], found["topics"], found["neutral"])


def heldout_topics(activations: StoryActivations, heldout_every: int) -> torch.Tensor:
    """A mask of the stories whose topic is held out: every `heldout_every`th topic."""
    held = activations.topics % heldout_every == heldout_every - 1
    if not bool(held.any()) or bool(held.all()):
        raise EmolabError(f"cannot hold out every {heldout_every}th topic with this many topics: use more --topics")
    return held


def heldout_fit(
    activations: StoryActivations,
    emotions: Sequence[str],
    column: int,
    *,
    heldout_every: int,
    denoise_variance: float,
    training_topics: Sequence[int] | None = None,
) -> tuple[LayerData, Accuracy]:
    """Directions from the stories of the training topics (all, or just `training_topics`), and their
    accuracy on the stories of the held-out topics."""
    held = heldout_topics(activations, heldout_every)
    train = ~held
    if training_topics is not None:
        train &= torch.isin(activations.topics, torch.tensor(list(training_topics)))
    layer = directions_for_layer(
        activations.means[train, column],
        activations.labels[train],
        emotions,
        activations.neutral[:, column],
        denoise_variance=denoise_variance,
    )
    return layer, rank_accuracy(layer.z_scores(activations.means[held, column]), activations.labels[held])


def heldout_accuracy(
    activations: StoryActivations, emotions: Sequence[str], column: int, *, heldout_every: int, denoise_variance: float
) -> Accuracy:
    """Directions from the stories of most topics, scored on the stories of the held-out topics."""
    return heldout_fit(activations, emotions, column, heldout_every=heldout_every, denoise_variance=denoise_variance)[1]


def source_texts(
    loaded: LoadedModel, settings: BuildSettings, out: Path, progress: Progress
) -> tuple[CorpusTexts, dict, float]:
    """The texts a build reads, what provenance records of them, and the seconds spent writing them:
    a written corpus as it is, or stories the model writes itself (resumable)."""
    if settings.corpus:
        written = read_written(settings.corpus)
        texts = written.texts(settings.emotions)
        if written.name != SHIPPED:  # a pack carries the corpus it was read from, unless emolab ships it
            raw = written.path.read_bytes()
            (out / (CORPUS + ".gz")).write_bytes(raw if raw[:2] == b"\x1f\x8b" else gzip.compress(raw, mtime=0))
        return texts, {"corpus": written.describe()}, 0.0
    plan = corpus_plan(loaded, settings)
    started = time.perf_counter()
    path = corpus_path(out)
    build_corpus(
        loaded,
        plan,
        path,
        batch_size=settings.batch_size,
        progress=lambda done, total: progress("writing stories", done, total),
    )
    source = {"plan": asdict(plan), "prompt_format": story_prompt_format(loaded)}
    return read_corpus(path, plan), source, time.perf_counter() - started


def build(loaded: LoadedModel, settings: BuildSettings, out: Path, progress: Progress) -> tuple[VectorPack, dict]:
    out = writable_folder(Path(out))
    layers = settings.layers or default_layers(loaded.num_layers)
    bad = [layer for layer in layers if not 0 <= layer < loaded.num_layers]
    if bad:
        raise EmolabError(f"--layers: {bad[0]} is not a block of {loaded.reference} (0 to {loaded.num_layers - 1})")

    started = time.perf_counter()
    texts, source, generation_seconds = source_texts(loaded, settings, out, progress)
    emotions = list(settings.emotions)
    activations = collect_activations(
        loaded,
        emotions,
        texts,
        layers,
        start_token=settings.start_token,
        batch_size=max(1, settings.batch_size // 2),
        progress=progress,
    )
    per_layer, quality, candidates = {}, {}, {}
    for column, layer in enumerate(layers):
        progress("computing directions", column, len(layers))
        per_layer[layer] = directions_for_layer(
            activations.means[:, column],
            activations.labels,
            emotions,
            activations.neutral[:, column],
            denoise_variance=settings.denoise_variance,
        )
        accuracy = heldout_accuracy(
            activations,
            emotions,
            column,
            heldout_every=settings.heldout_every,
            denoise_variance=settings.denoise_variance,
        )
        quality[layer] = {
            "heldout_top1": round(accuracy.top1, 4),
            "heldout_top5": round(accuracy.top5, 4),
            "heldout_n": accuracy.n,
        }
        candidates[layer] = heldout_probe_candidates(
            activations,
            emotions,
            column,
            heldout_every=settings.heldout_every,
            denoise_variance=settings.denoise_variance,
        )
    progress("computing directions", len(layers), len(layers))
    steer = max(layers, key=lambda layer: (quality[layer]["heldout_top5"], quality[layer]["heldout_top1"]))
    probe_layer, chosen = max(
        ((layer, choose(candidates[layer])) for layer in layers),
        key=lambda pair: (pair[1].hub_over_uniform <= HUB_LIMIT, pair[1].top5, pair[1].top1),
    )
    progress("fitting probes", 0, len(layers))
    probes = {
        layer: fit_probe(
            chosen.config,
            activations.means[:, column],
            activations.labels,
            len(emotions),
            activations.neutral[:, column],
            recipe=per_layer[layer],
        )
        for column, layer in enumerate(layers)
    }
    progress("fitting probes", len(layers), len(layers))

    counts = {
        "stories_used": int(len(activations.labels)),
        "stories_naming_their_emotion": sum(texts.named.values()),
        "named_by_emotion": dict(sorted(texts.named.items())),
        "empty_replies": texts.empty,
        "neutral_texts": len(texts.neutral),
        "neutral_tokens": int(activations.neutral.shape[0]),
    }
    if "plan" in source:
        plan = source["plan"]
        counts["stories_planned"] = len(plan["emotions"]) * len(plan["topics"]) * plan["stories_per_topic"]
    provenance = {
        "recipe": "Sofroniew et al. 2026 (arXiv 2604.07729): stories, difference of means, neutral PCs explaining "
        "50% of variance projected out, unit-normalised"
        + (
            f"; stories read from the written corpus {source['corpus']['corpus']!r}"
            if "corpus" in source
            else "; stories written by the model itself"
        ),
        **source,
        "settings": {key: value for key, value in asdict(settings).items() if key != "emotions"},
        "layers": list(layers),
        "layer_quality": {str(layer): quality[layer] for layer in layers},
        "layer_choice": f"steering at layer {steer}: the recipe directions' best held-out top-5 accuracy "
        f"(topics held out every {settings.heldout_every})",
        "probe_choice": {
            "rule": f"the best held-out top-5 over layers and candidates, among those whose most frequent top-5 "
            f"emotion stays within {HUB_LIMIT:g}x uniform",
            "layer": probe_layer,
            "chosen": chosen.as_dict(),
            "candidates": {str(layer): [score.as_dict() for score in candidates[layer]] for layer in layers},
        },
        "counts": counts,
        "seconds": {"generation": round(generation_seconds, 1), "total": round(time.perf_counter() - started, 1)},
    }
    pack = build_pack(
        out,
        loaded,
        per_layer,
        emotions,
        name=settings.name,
        steer_layers=[steer],
        probe_layer=probe_layer,
        slider={
            "min": -settings.slider_max,
            "max": settings.slider_max,
            "step": settings.slider_step,
            "coarse_step": round(settings.slider_step * 10, 6),
        },
        provenance=provenance,
        probes=probes,
        probe_settings={
            "method": chosen.config.method,
            "reference": chosen.config.reference,
            "centre": chosen.config.centre,
        },
        description=f"The paper's emotion-vector recipe applied to {loaded.reference}; not Claude's vectors.",
    )
    write_calibrated_alerts(pack, loaded, activations, texts, settings, progress)
    if (out / CORPUS).exists():
        compress_corpus(out)
    return load_pack(out), provenance


def heldout_probe_candidates(
    activations: StoryActivations, emotions: Sequence[str], column: int, *, heldout_every: int, denoise_variance: float
) -> list[CandidateScore]:
    """Every probe candidate, fitted on the training topics and scored on the held-out ones."""
    held = heldout_topics(activations, heldout_every)
    train = ~held
    recipe = directions_for_layer(
        activations.means[train, column],
        activations.labels[train],
        emotions,
        activations.neutral[:, column],
        denoise_variance=denoise_variance,
    )
    return score_candidates(
        activations.means[train, column],
        activations.labels[train],
        activations.means[held, column],
        activations.labels[held],
        activations.neutral[:, column],
        emotions,
        recipe,
    )


def read_build_activations(
    pack: VectorPack, loaded: LoadedModel, progress: Progress
) -> tuple[StoryActivations, BuildSettings, CorpusTexts]:
    """The activations a pack was built from, at its stored layers: from the cache, or read again
    from the corpus beside the pack with the plan and settings its manifest records."""
    provenance = pack.manifest.get("provenance", {})
    if not ("plan" in provenance or "corpus" in provenance) or "settings" not in provenance:
        raise EmolabError(f"{pack.path}: the pack records no build plan, so its corpus cannot be read again")
    settings = BuildSettings(
        emotions=tuple(pack.emotions),
        **{k: tuple(v) if isinstance(v, list) else v for k, v in provenance["settings"].items()},
    )
    if "corpus" in provenance:
        texts = build_corpus_texts(pack, provenance["corpus"], settings.emotions)
        path = None
    else:
        plan = CorpusPlan(**{k: tuple(v) if isinstance(v, list) else v for k, v in provenance["plan"].items()})
        path = corpus_path(pack.path)
        if not path.exists():
            raise EmolabError(f"{pack.path}: no corpus.jsonl(.gz) beside the pack, so its activations cannot be read")
        texts = read_corpus(path, plan)
    activations = collect_activations(
        loaded,
        settings.emotions,
        texts,
        sorted(pack.layers),
        start_token=settings.start_token,
        batch_size=max(1, settings.batch_size // 2),
        progress=progress,
    )
    if path is not None and Path(f"{path}.gz").exists():
        path.unlink()  # the gzipped corpus stays the only copy
    return activations, settings, texts


def build_corpus_texts(pack: VectorPack, recorded: dict, emotions: Sequence[str]) -> CorpusTexts:
    """The written corpus a pack was read from: the shipped one by name, or the copy beside the pack;
    either must still be the very file the build read."""
    source = recorded["corpus"] if recorded["corpus"] == SHIPPED else str(pack.path / (CORPUS + ".gz"))
    if source != SHIPPED and not Path(source).exists():
        source = str(pack.path / CORPUS)
    written = read_written(source)
    if written.sha256 != recorded.get("sha256") and source == SHIPPED:
        raise EmolabError(
            f"{pack.path}: the pack was read from another version of the {SHIPPED!r} corpus "
            f"(sha256 {str(recorded.get('sha256'))[:12]}, this emolab ships {written.sha256[:12]})"
        )
    return written.texts(emotions)


def write_calibrated_alerts(
    pack: VectorPack,
    loaded: LoadedModel,
    activations: StoryActivations,
    texts: CorpusTexts,
    settings: BuildSettings,
    progress: Progress,
) -> Calibration:
    """alerts.json from the build's neutral tokens, the first half of the written calibration split,
    and the held-out topics' stories (recipe/alerts.py has the rule)."""
    calibrating, _ = split_calibration([r["text"] for r in read_written(SHIPPED, "calibration").records])
    progress("calibrating alerts", 0, None)
    neutral = [
        neutral_stream(activations.neutral[:, activations.layers.index(pack.probe_layer)], pack),
        *token_readouts(loaded, pack, calibrating),
    ]
    held = [
        (text, index)
        for index, emotion in enumerate(pack.emotions)
        for text, topic in zip(texts.stories[emotion], texts.story_topics[emotion], strict=True)
        if topic % settings.heldout_every == settings.heldout_every - 1
    ]
    stories = token_readouts(loaded, pack, [text for text, _ in held])
    calibration = calibrate(pack, neutral, stories, [label for _, label in held])
    write_calibration(pack, calibration, neutral_tokens=sum(len(z) for z in neutral), stories=len(held))
    progress("calibrating alerts", 1, 1)
    return calibration
