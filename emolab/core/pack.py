"""Vector packs: one unit direction per emotion and layer, plus what is needed to use them.

A pack is a directory with two files:

- `manifest.json`: versioned JSON, described by `emolab/schemas/pack-manifest.schema.json`.
- `vectors.safetensors`: float32 tensors, rows in the manifest's emotion order, for each stored layer L:
  - `layer.L`         [n_emotions, hidden]  unit directions
  - `raw_norm.L`      [n_emotions]          norms of the directions before normalising
  - `neutral_mean.L`  [n_emotions]          mean projection of neutral-text residuals
  - `neutral_std.L`   [n_emotions]          their standard deviation (probe z-scores use both)
  and, from format version 2, optionally for the layers in the manifest's `probes.layers`:
  - `probe.L`         [n_emotions, hidden]  readout weights of their own (a discriminative fit)
  - `probe_mean.L`    [n_emotions]          the readout's reference mean ...
  - `probe_std.L`     [n_emotions]          ... and standard deviation

Steering always uses `layer.L`. Readouts use `probe.L` where the pack has it, else `layer.L` with
the neutral statistics (every version 1 pack).

Loading validates everything and raises `PackError` with one line naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import torch

from emolab.core.errors import PackError
from emolab.core.pack_manifest import (  # noqa: F401 - the manifest's home; these names are re-exported
    ALERTS,
    FALLBACK_ALERT_Z,
    FORMAT,
    MANIFEST,
    WATCHED_EMOTIONS,
    PackManifest,
    SliderRange,
    read_alerts,
    read_manifest,
)

FORMAT_VERSION = 2  # what write_pack writes; pack_manifest.READABLE_VERSIONS what loads
VECTORS = "vectors.safetensors"
UNIT_TOLERANCE = 1e-3
PER_EMOTION_STATS = ("raw_norm", "neutral_mean", "neutral_std")
PROBE_STATS = ("probe_mean", "probe_std")


@dataclass(frozen=True)
class LayerData:
    directions: torch.Tensor  # [E, H], unit rows
    raw_norm: torch.Tensor  # [E]
    neutral_mean: torch.Tensor  # [E]
    neutral_std: torch.Tensor  # [E]
    mean_norm: float  # the steering unit at this layer

    def z_scores(self, residuals: torch.Tensor) -> torch.Tensor:
        """[N, H] residuals → [N, E] z-scores against the neutral statistics (the recipe's form;
        `Probe` folds the same formula into one matrix product)."""
        return (residuals.float() @ self.directions.float().T - self.neutral_mean) / self.neutral_std

    def as_probe(self) -> ProbeData:
        """The readout of a pack without probes of its own: the steering directions, neutral z."""
        return ProbeData(weights=self.directions, mean=self.neutral_mean, std=self.neutral_std, centre=False)


@dataclass(frozen=True)
class ProbeData:
    """A readout: z = (h · w_e − mean_e) / std_e, then minus its mean over emotions if `centre`."""

    weights: torch.Tensor  # [E, H]
    mean: torch.Tensor  # [E]
    std: torch.Tensor  # [E]
    centre: bool = False

    def z_scores(self, residuals: torch.Tensor) -> torch.Tensor:
        z = (residuals.float() @ self.weights.float().T - self.mean) / self.std
        return z - z.mean(dim=-1, keepdim=True) if self.centre else z


@dataclass
class VectorPack(PackManifest):
    """A pack's manifest (PackManifest, readable without torch) with its tensors."""

    layers: dict[int, LayerData] = field(default_factory=dict, repr=False)
    probes: dict[int, ProbeData] = field(default_factory=dict, repr=False)

    def readout(self, layer: int | None = None) -> ProbeData:
        """What the probe reads at a layer (default: the probe layer)."""
        layer = self.probe_layer if layer is None else layer
        return self.probes[layer] if layer in self.probes else self.layers[layer].as_probe()

    @property
    def model_weights(self) -> str:
        return self.manifest["model"].get("weights", "")

    @property
    def steer_layers(self) -> list[int]:
        return list(self.manifest["steer_layers"])

    @property
    def probe_layer(self) -> int:
        return self.manifest["probe_layer"]

    @cached_property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for filename in (MANIFEST, VECTORS):
            digest.update((self.path / filename).read_bytes())
        return digest.hexdigest()

    # -- names -----------------------------------------------------------------------------------

    # -- fit to a model --------------------------------------------------------------------------

    def summary_lines(self) -> list[str]:
        provenance = self.manifest.get("provenance", {})
        slider = self.slider
        return [
            f"pack       {self.name}  ({self.path})",
            f"format     {FORMAT} v{self.manifest['format_version']}",
            f"model      {self.model_id}  hidden {self.hidden_size}, {self.manifest['model']['num_layers']} layers",
            f"weights    {self.model_weights or 'not recorded'}",
            f"emotions   {len(self.emotions)}: {', '.join(self.emotions[:8])}"
            f"{', ...' if len(self.emotions) > 8 else ''}",
            f"layers     {', '.join(str(layer) for layer in sorted(self.layers))}",
            f"steer at   {', '.join(map(str, self.steer_layers))}   probe at {self.probe_layer}",
            f"readouts   {self._describe_readouts()}",
            f"slider     {slider.min:+g} .. {slider.max:+g}, step {slider.step:g}",
            f"built      {provenance.get('created', 'unknown date')} "
            f"with emolab {provenance.get('emolab_version', '?')}",
            f"alerts     {self._describe_alerts()}",
        ]

    def _describe_readouts(self) -> str:
        settings = self.manifest.get("probes", {})
        if self.probe_layer not in self.probes:
            return "the steering directions, z against neutral text (no probes of their own)"
        centre = ", centred over emotions" if settings.get("centre") else ""
        return (
            f"probes of their own ({settings.get('method', '?')}, z against {settings.get('reference', '?')}"
            f"{centre}) at layers {', '.join(map(str, sorted(self.probes)))}"
        )

    def _describe_alerts(self) -> str:
        if not self.alert_thresholds:
            return f"no {ALERTS}: the console alerts at z >= {FALLBACK_ALERT_Z:g}"
        watched = [name for name in WATCHED_EMOTIONS if name in self.alert_thresholds]
        shown = ", ".join(f"{name} z >= {self.alert_thresholds[name]:g}" for name in watched)
        smoothing = f"; smoothed, half-life {self.alert_half_life:g} tokens" if self.alert_half_life is not None else ""
        return f"{len(self.alert_thresholds)} thresholds in {ALERTS}" + (f"; {shown}" if shown else "") + smoothing


def load_pack(path: str | Path) -> VectorPack:
    """Read and validate a pack directory."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise PackError(f"{folder}: no such pack directory")
    manifest = read_manifest(folder / MANIFEST)
    layers, probes = _read_vectors(folder / VECTORS, manifest)
    alerts, half_life = read_alerts(folder / ALERTS, manifest) if (folder / ALERTS).exists() else ({}, None)
    return VectorPack(
        path=folder, manifest=manifest, layers=layers, probes=probes, alert_thresholds=alerts, alert_half_life=half_life
    )


def write_alert_thresholds(
    folder: Path, thresholds: dict[str, float], *, about: str, layer: int, half_life: float | None = None, **details
) -> None:
    """alerts.json: each emotion's default alert threshold, and how it was calibrated."""
    document = {
        "about": about,
        "layer": layer,
        **({"half_life": half_life} if half_life is not None else {}),
        **details,
        "z": {name: round(value, 2) for name, value in thresholds.items()},
    }
    scratch = folder / (ALERTS + ".tmp")
    scratch.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    scratch.replace(folder / ALERTS)


def _read_vectors(path: Path, manifest: dict) -> tuple[dict[int, LayerData], dict[int, ProbeData]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise PackError(f"{path}: missing")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PackError(f"{path}: not a readable safetensors file ({reason})") from None

    n_emotions = len(manifest["emotions"])
    hidden = manifest["model"]["hidden_size"]
    layers: dict[int, LayerData] = {}
    for key, info in manifest["layers"].items():
        layer = int(key)
        directions = _tensor(path, tensors, f"layer.{layer}", (n_emotions, hidden))
        norms = directions.norm(dim=1)
        worst = int((norms - 1).abs().argmax())
        if abs(float(norms[worst]) - 1) > UNIT_TOLERANCE:
            raise PackError(
                f"{path}: layer.{layer} row {worst} ({manifest['emotions'][worst]!r}) has norm "
                f"{float(norms[worst]):.4f}, not 1"
            )
        stats = {name: _tensor(path, tensors, f"{name}.{layer}", (n_emotions,)) for name in PER_EMOTION_STATS}
        if bool((stats["neutral_std"] <= 0).any()):
            raise PackError(f"{path}: neutral_std.{layer} has a value that is not positive")
        layers[layer] = LayerData(directions=directions, mean_norm=float(info["mean_norm"]), **stats)
    probes: dict[int, ProbeData] = {}
    centre = bool(manifest.get("probes", {}).get("centre", False))
    for layer in manifest.get("probes", {}).get("layers", []):
        weights = _tensor(path, tensors, f"probe.{layer}", (n_emotions, hidden))
        mean, std = (_tensor(path, tensors, f"{name}.{layer}", (n_emotions,)) for name in PROBE_STATS)
        if bool((std <= 0).any()):
            raise PackError(f"{path}: probe_std.{layer} has a value that is not positive")
        probes[layer] = ProbeData(weights=weights, mean=mean, std=std, centre=centre)
    return layers, probes


def _tensor(path: Path, tensors: dict[str, torch.Tensor], name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if name not in tensors:
        raise PackError(f"{path}: tensor {name!r} is missing")
    tensor = tensors[name]
    if tuple(tensor.shape) != shape:
        raise PackError(f"{path}: tensor {name!r} has shape {list(tensor.shape)}, expected {list(shape)}")
    if not tensor.is_floating_point():
        raise PackError(f"{path}: tensor {name!r} has dtype {tensor.dtype}, expected float32")
    tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        raise PackError(f"{path}: tensor {name!r} holds NaN or Inf")
    return tensor


def write_pack(
    path: str | Path, manifest: dict, layers: dict[int, LayerData], probes: dict[int, ProbeData] | None = None
) -> VectorPack:
    """Write a pack atomically enough for one writer, then load it back to validate it."""
    from safetensors.torch import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    manifest["layers"] = {
        str(layer): {**manifest.get("layers", {}).get(str(layer), {}), "mean_norm": data.mean_norm}
        for layer, data in sorted(layers.items())
    }
    tensors: dict[str, torch.Tensor] = {}
    for layer, data in sorted(layers.items()):
        tensors[f"layer.{layer}"] = data.directions
        for name in PER_EMOTION_STATS:
            tensors[f"{name}.{layer}"] = getattr(data, name)
    for layer, probe in sorted((probes or {}).items()):
        tensors[f"probe.{layer}"], tensors[f"probe_mean.{layer}"], tensors[f"probe_std.{layer}"] = (
            probe.weights,
            probe.mean,
            probe.std,
        )
    if probes:
        manifest["probes"] = {**manifest.get("probes", {}), "layers": sorted(probes)}
    # each its own storage: safetensors refuses tensors that share memory (probes may be the steering directions)
    tensors = {name: tensor.detach().float().cpu().clone().contiguous() for name, tensor in tensors.items()}
    save_file(tensors, str(folder / (VECTORS + ".tmp")), metadata={"format": FORMAT})
    (folder / (MANIFEST + ".tmp")).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / (VECTORS + ".tmp")).replace(folder / VECTORS)
    (folder / (MANIFEST + ".tmp")).replace(folder / MANIFEST)
    return load_pack(folder)


def default_emotions() -> list[str]:
    """The paper's 171 emotion concepts, in its (alphabetical) order."""
    text = resources.files("emolab").joinpath("data/emotions_171.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
