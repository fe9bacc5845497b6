"""A pack without its tensors: what the console shows and checks, read without torch.

The console's process never imports torch (the engine runs in a child process), yet it needs
the pack's emotions, slider range, geometry and alert thresholds to draw its window at once.
This reads and checks `manifest.json` and `alerts.json`, for the console and for
`core/pack.load_pack` alike; a VectorPack is a PackManifest with the tensors, so the console
takes either.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from emolab.core.documents import check_document
from emolab.core.errors import EmolabError, PackError

FORMAT = "emolab-pack"
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
ALERTS = "alerts.json"
WATCHED_EMOTIONS = ("desperate", "hostile", "afraid")  # the console's alerts, unless told otherwise
FALLBACK_ALERT_Z = 3.0  # their threshold for packs without alerts.json, and the floor for packs with one


@dataclass(frozen=True)
class SliderRange:
    min: float
    max: float
    step: float
    coarse_step: float

    def contains(self, value: float) -> bool:
        return self.min - 1e-12 <= value <= self.max + 1e-12


@dataclass
class PackManifest:
    path: Path
    manifest: dict
    alert_thresholds: dict[str, float] = field(default_factory=dict)  # emotion → z, from alerts.json
    alert_half_life: float | None = None

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def model_id(self) -> str:
        return self.manifest["model"]["id"]

    @property
    def hidden_size(self) -> int:
        return self.manifest["model"]["hidden_size"]

    @property
    def smoothing_half_life(self) -> float:
        from emolab.core.smoothing import DEFAULT_HALF_LIFE

        return self.alert_half_life if self.alert_half_life is not None else DEFAULT_HALF_LIFE

    @cached_property
    def emotions(self) -> list[str]:
        return list(self.manifest["emotions"])

    @cached_property
    def emotion_index(self) -> dict[str, int]:
        return {name: index for index, name in enumerate(self.emotions)}

    @cached_property
    def slider(self) -> SliderRange:
        slider = self.manifest["slider"]
        step = float(slider["step"])
        coarse = float(slider.get("coarse_step", step * 10))
        return SliderRange(float(slider["min"]), float(slider["max"]), step, coarse)

    @cached_property
    def coords(self) -> dict[str, tuple[float, float]]:
        return {name: (float(x), float(y)) for name, (x, y) in self.manifest["geometry"]["coords"].items()}

    def resolve(self, name: str) -> str:
        """The pack's spelling of an emotion, or an error that suggests the closest names."""
        cleaned = " ".join(name.strip().lower().split())
        if cleaned in self.emotion_index:
            return cleaned
        for emotion in self.emotions:
            if emotion.lower() == cleaned:
                return emotion
        close = difflib.get_close_matches(cleaned, self.emotions, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else f"; the pack {self.name} has {len(self.emotions)} emotions, see `emolab pack info`"
        )
        raise EmolabError(f"unknown emotion {name!r}{hint}")

    def check_model(self, hidden_size: int, num_layers: int, model_reference: str) -> None:
        if hidden_size != self.hidden_size:
            raise PackError(
                f"{self.path / MANIFEST}: the pack was built for hidden size {self.hidden_size} "
                f"({self.model_id}), but {model_reference} has hidden size {hidden_size}"
            )
        deepest = max(int(layer) for layer in self.manifest["layers"])
        if deepest >= num_layers:
            raise PackError(
                f"{self.path / MANIFEST}: the pack stores layer {deepest}, but {model_reference} has "
                f"only {num_layers} layers"
            )


def read_pack_manifest(path: str | Path) -> PackManifest:
    """Read and check a pack's manifest and alert thresholds (not its tensors)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise PackError(f"{folder}: no such pack directory")
    manifest = read_manifest(folder / MANIFEST)
    alerts, half_life = read_alerts(folder / ALERTS, manifest) if (folder / ALERTS).exists() else ({}, None)
    return PackManifest(folder, manifest, alerts, half_life)


def read_manifest(path: Path) -> dict:
    if not path.is_file():
        raise PackError(f"{path}: missing")

    def reject_constant(constant: str):
        raise PackError(f"{path}: {constant} is not a number a pack may hold")

    try:
        manifest = json.loads(path.read_text(encoding="utf-8"), parse_constant=reject_constant)
    except UnicodeDecodeError:
        raise PackError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise PackError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    check_document(
        manifest,
        path,
        schema="pack-manifest.schema.json",
        format_name=FORMAT,
        versions=READABLE_VERSIONS,
        error=PackError,
        what="pack manifest",
    )
    _check_consistency(path, manifest)
    return manifest


def read_alerts(path: Path, manifest: dict) -> tuple[dict[str, float], float | None]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda constant: None)
        thresholds = document["z"]
        half_life = document.get("half_life")
        if not isinstance(thresholds, dict) or not (half_life is None or _is_number(half_life) and half_life >= 0):
            raise TypeError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise PackError(f'{path}: not an alert-threshold file (JSON with a "z" object of emotion: z-score)') from None
    emotions = set(manifest["emotions"])
    for name, value in thresholds.items():
        if name not in emotions:
            raise PackError(f"{path}: names {name!r}, which is not one of the pack's emotions")
        if not _is_number(value):
            raise PackError(f"{path}: the threshold of {name!r} is not a finite number")
    return {name: float(value) for name, value in thresholds.items()}, (
        float(half_life) if half_life is not None else None
    )


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_consistency(path: Path, manifest: dict) -> None:
    emotions = manifest["emotions"]
    seen: set[str] = set()
    for name in emotions:
        if name in seen:
            raise PackError(f"{path}: emotion {name!r} is listed twice")
        seen.add(name)
    stored = {int(layer) for layer in manifest["layers"]}
    num_layers = manifest["model"]["num_layers"]
    for layer in stored:
        if layer >= num_layers:
            raise PackError(f"{path}: layer {layer} is stored, but the model has {num_layers} layers")
    for layer in manifest["steer_layers"]:
        if layer not in stored:
            raise PackError(f"{path}: steer layer {layer} is not among the stored layers {sorted(stored)}")
    if manifest["probe_layer"] not in stored:
        raise PackError(
            f"{path}: probe layer {manifest['probe_layer']} is not among the stored layers {sorted(stored)}"
        )
    for layer in manifest.get("probes", {}).get("layers", []):
        if layer not in stored:
            raise PackError(f"{path}: probes are stored for layer {layer}, which is not among the stored layers")
    slider = manifest["slider"]
    if not slider["min"] < slider["max"]:
        raise PackError(f"{path}: slider min {slider['min']} must be below max {slider['max']}")
    if slider["step"] > slider["max"] - slider["min"]:
        raise PackError(f"{path}: slider step {slider['step']} is larger than its range")
    coords = manifest["geometry"]["coords"]
    unknown = sorted(set(coords) - seen)
    if unknown:
        raise PackError(f"{path}: geometry names unknown emotion {unknown[0]!r}")
    missing = [name for name in emotions if name not in coords]
    if missing:
        raise PackError(f"{path}: geometry has no coordinates for {missing[0]!r}")
    for name, values in coords.items():
        if not all(math.isfinite(value) for value in values):
            raise PackError(f"{path}: geometry coordinates of {name!r} are not finite")
