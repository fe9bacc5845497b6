"""Beyond Llama: Gemma 3 (sliding windows, its own norm), Qwen2 (biases) and GPT-2 (`transformer.h`,
LayerNorm) through the probes, the steering, the chat engine, and `build-pack` and `validate`."""

import json

import pytest
import torch
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.decoders import TransformersDecoder, open_decoder
from emolab.core.engine import Engine
from emolab.core.events import Token, TurnStarted
from emolab.core.sampling import Sampling
from emolab.recipe.activations import block_outputs
from tests.tiny import ARCHITECTURES, GEMMA_WINDOW, tiny_loaded_model, write_tiny_pack

OTHERS = [name for name in ARCHITECTURES if name != "llama"]
GREEDY = Sampling(temperature=0, max_tokens=12)


@pytest.fixture(scope="module", params=OTHERS)
def loaded(request):
    return tiny_loaded_model(architecture=request.param)


def reply_ids(events):
    return [e.token_id for e in events if isinstance(e, Token) and e.source == "reply"]


def test_probes_read_the_block_outputs_that_transformers_calls_hidden_states(loaded):
    ids = [5, 6, 7, 8, 9, 10]
    with torch.inference_mode():
        hidden = loaded.model(torch.tensor([ids]), output_hidden_states=True).hidden_states
    recipe = next(block_outputs(loaded, ["x"], list(range(loaded.num_layers - 1))))  # what a pack is built from
    for layer in range(loaded.num_layers - 1):  # the last entry is after the final norm
        decoder = TransformersDecoder(loaded, probe_layer=layer, steer_layers=())
        with torch.inference_mode(), decoder:
            _, residual = decoder.forward(ids, decoder.new_cache(), {})
        torch.testing.assert_close(residual, hidden[layer + 1][0])
    encoded = loaded.tokenizer("x", add_special_tokens=True)["input_ids"]
    with torch.inference_mode():
        direct = loaded.model(torch.tensor([encoded]), output_hidden_states=True).hidden_states
    for column in range(loaded.num_layers - 1):
        torch.testing.assert_close(recipe[column], direct[column + 1][0])


def test_steering_adds_to_the_residual_stream_after_its_block(loaded):
    """Block L's hook adds exactly what a pre-hook adding to block L+1's input adds, and the probe at L
    reads before it."""
    ids, layer = [5, 6, 7, 8], 1
    push = torch.randn(loaded.hidden_size) * 2
    decoder = TransformersDecoder(loaded, probe_layer=layer, steer_layers=[layer])
    with torch.inference_mode(), decoder:
        plain_logits, plain_residual = decoder.forward(ids, decoder.new_cache(), {})
        logits, residual = decoder.forward(ids, decoder.new_cache(), {layer: push})
    torch.testing.assert_close(residual, plain_residual)  # a slider does not light up its own bar
    assert not torch.allclose(logits, plain_logits)

    def add_to_input(module, args, kwargs):
        if args:
            return (args[0] + push, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] + push}

    handle = loaded.blocks[layer + 1].register_forward_pre_hook(add_to_input, with_kwargs=True)
    try:
        with torch.inference_mode():
            expected = loaded.model(torch.tensor([ids])).logits[0, -1]
    finally:
        handle.remove()
    torch.testing.assert_close(logits, expected)


def test_with_zero_steering_the_engine_equals_transformers_forward(loaded, tmp_path):
    pack = write_tiny_pack(tmp_path / "pack", loaded)
    engine = Engine(loaded, pack, sampling=GREEDY)
    events = list(engine.chat("hello there"))
    prompt = [e.token_id for e in events if isinstance(e, Token) and e.source == "prompt"]
    ours = reply_ids(events)
    with torch.inference_mode():
        ids = prompt + ours
        logits = loaded.model(torch.tensor([ids])).logits[0]
    # every chosen token is the argmax of transformers' forward over the same sequence
    assert ours == [int(logits[len(prompt) - 1 + i].argmax()) for i in range(len(ours))]


def test_a_long_chat_with_regenerations_runs_past_the_sliding_window(loaded, tmp_path):
    pack = write_tiny_pack(tmp_path / "pack", loaded)
    engine = Engine(loaded, pack, sampling=GREEDY)
    replies = []
    for text in ["first question", "second question, a longer one", "third"]:
        replies.append(reply_ids(engine.chat(text)))
    assert engine.context_used > 3 * GEMMA_WINDOW
    for _ in range(2):  # a regenerate shares the prefix: a full sliding window cannot be cropped
        regenerated = list(engine.regenerate())
        assert reply_ids(regenerated) == replies[-1]  # greedy: the same reply again
        assert next(e for e in regenerated if isinstance(e, TurnStarted)).prompt_tokens > GEMMA_WINDOW
    following = reply_ids(engine.chat("fourth"))

    cold = Engine(loaded, pack, sampling=GREEDY)  # the same conversation, read once from the start
    cold.conversation.messages = [dict(m) for m in engine.conversation.messages[:-1]]
    assert reply_ids(cold._reply(None)) == following


def test_the_lean_decoder_runs_qwen2_and_transformers_runs_gemma3_and_gpt2(loaded):
    decoder = open_decoder(loaded, probe_layer=1, steer_layers=[0])
    assert decoder.name == ("lean" if loaded.reference == "tiny-qwen2" else "transformers")


@pytest.mark.parametrize("architecture", OTHERS)
def test_build_pack_and_validate_run_end_to_end(architecture, tmp_path):
    loaded = tiny_loaded_model(architecture=architecture)
    model_dir = tmp_path / "model"
    loaded.model.save_pretrained(model_dir, safe_serialization=True)
    loaded.tokenizer.save_pretrained(model_dir)
    emotions = tmp_path / "emotions.txt"
    emotions.write_text("happy\nsad\nafraid\ncalm\n")
    out = tmp_path / "pack"
    build = CliRunner().invoke(
        main,
        [
            "build-pack",
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--emotions",
            str(emotions),
            "--topics",
            "5",
            "--stories-per-topic",
            "1",
            "--neutral-per-task",
            "1",
            "--max-new-tokens",
            "8",
            "--layers",
            "1,2",
            "--start-token",
            "2",
            "--batch-size",
            "32",
        ],
    )  # seed 0 chooses recipe probes for Gemma 3 and Qwen2
    assert build.exit_code == 0, build.output
    result = CliRunner().invoke(main, ["validate", str(out), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["layers"]) == {"1", "2"}
    assert {row["emotion"] for row in report["steering"]} == {"happy", "sad", "afraid", "calm"}
    assert all(len(row["top"]) == 10 for row in report["logit_lens"].values())
    run = CliRunner().invoke(main, ["run", "--vectors", str(out), "-p", "hi", "--max-tokens", "4", "--json"])
    assert run.exit_code == 0, run.output


def test_a_pack_whose_probes_are_the_recipe_directions_can_be_written(tmp_path, tiny_model):
    from emolab.core.pack import write_pack
    from emolab.recipe.probe_fit import ProbeConfig, fit_probe
    from tests.tiny import EMOTIONS, tiny_layer_data, tiny_manifest

    data = {1: tiny_layer_data(tiny_model, len(EMOTIONS), seed=1)}
    means = torch.randn(12, tiny_model.hidden_size)
    labels = torch.arange(12) % len(EMOTIONS)
    probe = fit_probe(
        ProbeConfig("recipe", "stories", False),
        means,
        labels,
        len(EMOTIONS),
        torch.randn(30, tiny_model.hidden_size),
        recipe=data[1],
    )
    write_pack(tmp_path / "pack", tiny_manifest(tiny_model, EMOTIONS, [1]), data, {1: probe})
