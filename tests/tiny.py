"""Tiny, real, randomly initialised models and packs for fast tests.

Everything here is the real code path: real architectures (Llama, and Gemma 3, Qwen2 and GPT-2
for the paths that differ), a real byte-level BPE tokenizer with a chat template (or without one,
as a base model), and a real pack written and validated by `write_pack`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from emolab.core.models import LoadedModel
from emolab.core.pack import LayerData, write_pack

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "I am so happy today, the sun is shining and everything is calm.",
    "She was afraid of the dark, her hands shaking as the door creaked.",
    "He slammed the table, furious and hostile, shouting at everyone.",
    "We waited for the train. It was late again. Nothing much happened.",
    "Please write a list of three fruits: apple, banana, cherry.",
    "The report is due on Monday; please check the numbers twice.",
] * 4
EMOTIONS = ["happy", "sad", "afraid", "calm", "desperate", "at ease"]


@lru_cache(maxsize=1)
def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_base_tokenizer():
    """The tiny tokenizer without a chat template, as a base model ships it."""
    import copy

    tokenizer = copy.deepcopy(tiny_tokenizer())
    tokenizer.chat_template = None
    return tokenizer


def tiny_loaded_model(
    *,
    layers: int = 4,
    hidden: int = 32,
    context: int = 256,
    seed: int = 0,
    architecture: str = "llama",
    chat_template: bool = True,
) -> LoadedModel:
    """A tiny random model of one of ARCHITECTURES, with the tiny tokenizer (or, without
    `chat_template`, as a base model without one)."""
    tokenizer = tiny_tokenizer() if chat_template else tiny_base_tokenizer()
    torch.manual_seed(seed)
    model = ARCHITECTURES[architecture](tokenizer, layers=layers, hidden=hidden, context=context).eval()
    model.requires_grad_(False)
    weights = f"sha256:tiny-{seed}" if architecture == "llama" else f"sha256:tiny-{architecture}-{seed}"
    return LoadedModel(
        model,
        tokenizer,
        reference=f"tiny-{architecture}",
        source="local",
        device=torch.device("cpu"),
        dtype=torch.float32,
        known_weights_id=weights,
    )


def _special_ids(tokenizer) -> dict:
    return dict(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )


def _llama(tokenizer, *, layers, hidden, context):
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=context,
            **_special_ids(tokenizer),
        )
    )


# Gemma 3's sliding window, small enough that a short chat fills it
GEMMA_WINDOW = 16


def _gemma3(tokenizer, *, layers, hidden, context):
    """Gemma 3: sliding-window layers (the last one global), its own RMSNorm (scale 1 + w), scaled embeddings."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        query_pre_attn_scalar=hidden // 4,
        max_position_embeddings=context,
        sliding_window=GEMMA_WINDOW,
        layer_types=["sliding_attention"] * (layers - 1) + ["full_attention"],
        **_special_ids(tokenizer),
    )
    model = Gemma3ForCausalLM(config)
    _randomise(model, "norm.weight", 0.3)  # initialised to zero, where 1 + w would hide a wrong norm
    return model


def _qwen2(tokenizer, *, layers, hidden, context):
    """Qwen2: biased q/k/v projections."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=hidden * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=context,
            **_special_ids(tokenizer),
        )
    )
    _randomise(model, "bias", 0.5)  # initialised to zero, which would test nothing
    return model


def _gpt2(tokenizer, *, layers, hidden, context):
    """GPT-2: `transformer.h` blocks, LayerNorms with biases, learned positions, no `model.model`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=hidden,
            n_layer=layers,
            n_head=4,
            n_positions=context,
            **_special_ids(tokenizer),
        )
    )
    _randomise(model, "ln_f.weight", 0.3)
    _randomise(model, "ln_f.bias", 0.3)
    return model


def _randomise(model, suffix: str, spread: float) -> None:
    for name, parameter in model.named_parameters():
        if name.endswith(suffix):
            parameter.data.add_(torch.randn_like(parameter) * spread)


ARCHITECTURES = {"llama": _llama, "gemma3": _gemma3, "qwen2": _qwen2, "gpt2": _gpt2}


def tiny_manifest(loaded: LoadedModel, emotions: list[str], layers: list[int], **overrides) -> dict:
    manifest = {
        "name": "tiny",
        "description": "random directions for tests",
        "emotions": emotions,
        "model": {
            "id": loaded.reference,
            "weights": loaded.weights_id,
            "hidden_size": loaded.hidden_size,
            "num_layers": loaded.num_layers,
            "dtype": "float32",
        },
        "steer_layers": [layers[0]],
        "probe_layer": layers[-1],
        "slider": {"min": -2.0, "max": 2.0, "step": 0.05},
        "geometry": {
            "layer": layers[-1],
            "explained_variance": [0.4, 0.2],
            "coords": {name: [float(i), float(-i)] for i, name in enumerate(emotions)},
        },
        "provenance": {"recipe": "random", "seed": 0},
    }
    manifest.update(overrides)
    return manifest


def tiny_layer_data(loaded: LoadedModel, n_emotions: int, *, seed: int, mean_norm: float = 2.0) -> LayerData:
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(n_emotions, loaded.hidden_size, generator=generator)
    norms = raw.norm(dim=1)
    return LayerData(
        directions=raw / norms[:, None],
        raw_norm=norms,
        neutral_mean=torch.randn(n_emotions, generator=generator) * 0.1,
        neutral_std=torch.rand(n_emotions, generator=generator) + 0.5,
        mean_norm=mean_norm,
    )


def write_tiny_pack(path: Path, loaded: LoadedModel, *, emotions=EMOTIONS, layers=(1, 2), **overrides):
    data = {layer: tiny_layer_data(loaded, len(emotions), seed=layer) for layer in layers}
    return write_pack(path, tiny_manifest(loaded, list(emotions), list(layers), **overrides), data)
