"""End to end on the real bundled SmolLM2-135M-Instruct, with a pack built here from real activations."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from emolab.cli import main
from emolab.core import lean_llama
from emolab.core.engine import Engine
from emolab.core.events import Token
from emolab.core.sampling import Sampling
from emolab.recipe.assemble import build_pack, vectors_from_texts

pytestmark = pytest.mark.slow

STORIES = {
    "happy": [
        "She opened the letter and laughed out loud, dancing around the kitchen with the good news.",
        "The whole family cheered and hugged when the puppy finally came home with them.",
        "He grinned all day long; the sun was warm and his best friend had come to visit.",
    ],
    "sad": [
        "She sat alone by the window, tears running down her face as the rain kept falling.",
        "He packed his late father's coat into a box and could not stop crying.",
        "The empty room felt cold and silent after everyone she loved had gone away.",
    ],
    "afraid": [
        "Her heart pounded as footsteps came closer in the dark alley behind her.",
        "He froze, trembling, when the floor creaked upstairs in the empty house.",
        "She gripped the seat, shaking, as the plane dropped suddenly through the storm.",
    ],
    "calm": [
        "He sat by the quiet lake, breathing slowly, watching the still water at dusk.",
        "She sipped her tea on the porch, relaxed, listening to the soft wind in the trees.",
        "The afternoon was slow and peaceful, and he drifted easily through his book.",
    ],
}
NEUTRAL = [
    "User: List three prime numbers. Assistant: 2, 3 and 5.",
    "User: Convert 10 kilometres to miles. Assistant: 10 kilometres is about 6.2 miles.",
    "User: What is the capital of France? Assistant: The capital of France is Paris.",
    "User: Sort these words: pear, apple, fig. Assistant: apple, fig, pear.",
]


@pytest.fixture(scope="module")
def real_pack(tmp_path_factory, bundled_model):
    layers = [10, 20]
    data = vectors_from_texts(bundled_model, STORIES, NEUTRAL, layers, start_token=4, batch_size=4)
    return build_pack(
        tmp_path_factory.mktemp("packs") / "mini",
        bundled_model,
        data,
        list(STORIES),
        name="mini",
        steer_layers=[10],
        probe_layer=20,
        slider={"min": -1.0, "max": 1.0, "step": 0.01},
        provenance={"recipe": "integration test", "stories_per_emotion": 3},
    )


def test_the_built_pack_is_valid_and_fits_the_model(real_pack, bundled_model):
    real_pack.check_model(bundled_model.hidden_size, bundled_model.num_layers, bundled_model.reference)
    assert real_pack.model_id == "bundled:smollm2-135m-instruct"
    assert real_pack.layers[20].mean_norm > 0
    assert real_pack.coords["happy"][0] > real_pack.coords["sad"][0]


def test_probes_separate_held_out_happy_and_sad_text(real_pack, bundled_model):
    engine = Engine(bundled_model, real_pack)
    happy = real_pack.emotion_index["happy"]
    sad = real_pack.emotion_index["sad"]

    def mean_scores(text):
        return np.mean([t.probe for t in engine.read_text(text)][3:], axis=0)

    joyful = mean_scores("They won the prize and everyone laughed and celebrated together all night.")
    grieving = mean_scores("At the funeral she wept quietly, lost without him, her heart heavy with grief.")
    assert joyful[happy] - joyful[sad] > grieving[happy] - grieving[sad]


@pytest.mark.parametrize("decoder", ["lean", "transformers"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_greedy_engine_reply_equals_generate(bundled_cache, real_pack, dtype, decoder):
    from emolab.core.models import load_model

    model = load_model("bundled", dtype=dtype)
    engine = Engine(
        model,
        real_pack,
        sampling=Sampling(temperature=0, max_tokens=48),  # all probes read
        decoder=decoder,
    )
    events = list(engine.chat("Name three colours."))
    prompt = [e.token_id for e in events if isinstance(e, Token) and e.source == "prompt"]
    reply = [e.token_id for e in events if isinstance(e, Token) and e.source == "reply"]
    with torch.inference_mode():
        generated = model.model.generate(
            torch.tensor([prompt]), max_new_tokens=48, do_sample=False, eos_token_id=sorted(engine._eos_ids)
        )
    assert reply == generated[0, len(prompt) :].tolist()[: len(reply)]
    assert len(reply) > 0


def test_emolab_run_streams_a_steered_reply_with_readouts(real_pack):
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--vectors",
            str(real_pack.path),
            "-p",
            "hello",
            "--steer",
            "happy=0.3",
            "--max-tokens",
            "12",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert records[0]["model"] == "bundled:smollm2-135m-instruct"
    replies = [r for r in records if r["type"] == "token" and r["source"] == "reply"]
    assert replies and all(r["steering"] == {"happy": 0.3} for r in replies)
    assert all(set(r["probe"]) == set(STORIES) for r in replies)
    assert records[-1]["type"] == "end" and records[-1]["text"]


def test_steering_changes_the_greedy_reply(real_pack, bundled_model):
    def reply(strength):
        engine = Engine(bundled_model, real_pack, sampling=Sampling(temperature=0, max_tokens=20))
        if strength:
            engine.steering.set("sad", strength)
        return [e.token_id for e in engine.chat("Tell me about your day.") if getattr(e, "source", "") == "reply"]

    assert reply(0.0) != reply(0.8)


def test_lean_and_transformers_decoders_agree_over_a_steered_two_turn_chat(real_pack, bundled_model):
    def chat(decoder):
        engine = Engine(bundled_model, real_pack, sampling=Sampling(temperature=0, max_tokens=24), decoder=decoder)
        engine.steering.set("happy", 0.4)
        tokens = [
            e for text in ("Hi!", "What should I cook tonight?") for e in engine.chat(text) if isinstance(e, Token)
        ]
        return [t.token_id for t in tokens], np.stack([t.probe for t in tokens])

    lean_ids, lean_probe = chat("lean")
    reference_ids, reference_probe = chat("transformers")
    assert lean_ids == reference_ids
    np.testing.assert_allclose(lean_probe, reference_probe, atol=1e-3)


PROMPTS = [
    "Explain how a bicycle works.",
    "My dog died yesterday and I feel terrible.",
    "List ten ideas for a birthday party.",
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_lean_decoder_keeps_the_greedy_tokens_of_generate_over_longer_replies(bundled_cache, dtype):
    """Whichever path this CPU chose: in fp32 packed kernels sum in another order than MKL, in bf16
    they pack only where they keep the bits; greedy tokens must not move either way."""
    from emolab.core.models import load_model

    model = load_model("bundled", dtype=dtype)
    engine = Engine(model, sampling=Sampling(temperature=0, max_tokens=96))
    keeps_bits = dtype == "float32" or lean_llama.packing_keeps_the_bits(model.lean_weights)
    assert engine.decoder.prepacked == (lean_llama.onednn_packs(model.dtype) and keeps_bits)
    assert_greedy_equals_generate(engine, model)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_where_the_cpu_cannot_pack_the_greedy_tokens_still_equal_generate(bundled_cache, monkeypatch, dtype):
    """The AVX2-only path, run on every machine: plain F.linear on the same weights."""
    from emolab.core.models import load_model

    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: False)
    model = load_model("bundled", dtype=dtype)
    engine = Engine(model, sampling=Sampling(temperature=0, max_tokens=96))
    assert engine.decoder.name == "lean" and engine.decoder.matmul == "plain"
    assert_greedy_equals_generate(engine, model)


def assert_greedy_equals_generate(engine, model):
    for prompt_text in PROMPTS:
        engine.reset()
        events = list(engine.chat(prompt_text))
        prompt = [e.token_id for e in events if isinstance(e, Token) and e.source == "prompt"]
        reply = [e.token_id for e in events if isinstance(e, Token) and e.source == "reply"]
        with torch.inference_mode():
            generated = model.model.generate(
                torch.tensor([prompt]), max_new_tokens=96, do_sample=False, eos_token_id=sorted(engine._eos_ids)
            )
        assert reply == generated[0, len(prompt) :].tolist()[: len(reply)], prompt_text
        assert len(reply) > 20
