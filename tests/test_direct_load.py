"""Loading a Llama checkpoint's weights alone, for the lean decoder, without transformers' module."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from emolab.core.engine import Engine
from emolab.core.events import Token
from emolab.core.llama_weights import DefaultRotary, direct_load_unsupported_reason, read_config
from emolab.core.models import load_model
from emolab.core.sampling import Sampling

GREEDY = Sampling(temperature=0, max_tokens=16)


def reply_ids(events):
    return [e.token_id for e in events if isinstance(e, Token) and e.source == "reply"]


def test_a_local_llama_folder_loads_without_building_the_module(tiny_model_dir, tiny_model):
    loaded = load_model(str(tiny_model_dir), dtype="float32")
    assert loaded.lean_weights is not None and not loaded.model_is_built
    assert (loaded.hidden_size, loaded.num_layers, loaded.context_window) == (
        tiny_model.hidden_size,
        tiny_model.num_layers,
        tiny_model.context_window,
    )
    assert loaded.end_token_ids() == tiny_model.end_token_ids()
    torch.testing.assert_close(
        loaded.lean_weights.tensors["model.layers.1.mlp.up_proj.weight"],
        tiny_model.model.model.layers[1].mlp.up_proj.weight,
        rtol=0,
        atol=0,
    )

    lean_reply = reply_ids(Engine(loaded, sampling=GREEDY).chat("hello there"))
    assert not loaded.model_is_built  # chatting never needs it
    module_reply = reply_ids(Engine(loaded, sampling=GREEDY, decoder="transformers").chat("hello there"))
    assert loaded.model_is_built  # built on first use, from the same folder
    assert lean_reply == module_reply == reply_ids(Engine(tiny_model, sampling=GREEDY).chat("hello there"))


def test_chatting_on_a_direct_load_imports_no_transformers_modeling(tiny_model_dir):
    script = (
        "import sys\n"
        "from emolab.core.engine import Engine\n"
        "from emolab.core.models import load_model\n"
        "from emolab.core.sampling import Sampling\n"
        f"engine = Engine(load_model({str(tiny_model_dir)!r}), sampling=Sampling(temperature=0, max_tokens=4))\n"
        "list(engine.chat('hello'))\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.startswith('transformers.models.') or m == 'transformers.modeling_utils'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_default_rotary_table_is_bit_identical_to_transformers(tiny_model, dtype):
    config = tiny_model.model.config
    head_dim = config.hidden_size // config.num_attention_heads
    ours = DefaultRotary(config.rope_parameters["rope_theta"], head_dim, torch.device("cpu"))
    theirs = tiny_model.model.model.rotary_emb
    x = torch.zeros(1, dtype=dtype)
    for start, count in [(0, 1), (0, 37), (4000, 1), (8190, 2)]:
        positions = torch.arange(start, start + count).unsqueeze(0)
        for mine, reference in zip(ours(x, positions), theirs(x, positions), strict=True):
            assert torch.equal(mine, reference)


def rewrite_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}}, "RoPE is not the default"),
        ({"auto_map": {"AutoModelForCausalLM": "modeling.Model"}}, "ships its own code"),
        ({"model_type": "gpt2"}, "model type 'gpt2'"),
        ({"hidden_act": "gelu"}, "activation"),
    ],
)
def test_checkpoints_the_lean_path_cannot_run_exactly_are_loaded_whole(tmp_path, tiny_model_dir, changes, reason):
    folder = tmp_path / "variant"
    shutil.copytree(tiny_model_dir, folder)
    rewrite_config(folder, **changes)
    assert reason in direct_load_unsupported_reason(folder, read_config(folder))


def test_a_scaled_rope_model_still_loads_whole_and_chats(tmp_path, tiny_model_dir):
    folder = tmp_path / "scaled"
    shutil.copytree(tiny_model_dir, folder)
    rewrite_config(folder, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    loaded = load_model(str(folder), dtype="float32")
    assert loaded.lean_weights is None and loaded.model_is_built
    lean = reply_ids(Engine(loaded, sampling=GREEDY).chat("hello"))  # the lean decoder, on the module's rotary
    assert lean == reply_ids(Engine(loaded, sampling=GREEDY, decoder="transformers").chat("hello"))


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN (mkldnn) in this torch build")
def test_engines_on_one_direct_load_share_packed_weights_and_hold_the_model_once(tiny_model_dir, monkeypatch):
    from emolab.core import lean_llama
    from emolab.core.lean_llama import LeanLlamaDecoder

    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: True)  # fp32 packs where it is faster
    loaded = load_model(str(tiny_model_dir), dtype="float32")
    first, second = Engine(loaded, sampling=GREEDY), Engine(loaded, sampling=GREEDY)
    assert first.decoder.prepacked and first.decoder._layers[0].qkv is second.decoder._layers[0].qkv
    assert not any(name.endswith("proj.weight") for name in loaded.lean_weights.tensors)  # only packed copies
    assert "model.embed_tokens.weight" in loaded.lean_weights.tensors  # the tied head's source stays
    assert reply_ids(first.chat("hello there")) == reply_ids(second.chat("hello there"))
    with pytest.raises(ValueError, match="only the packed copy"):
        LeanLlamaDecoder(loaded.lean_weights, probe_layer=None, prepack=False)


def _truncate_weights(folder):
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:1000])


def _drop_config_key(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["num_attention_heads"]
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_truncate_weights, "SafetensorError"),
        (_drop_config_key, "num_attention_heads"),
        (lambda folder: (folder / "tokenizer.json").unlink(), "tokenizer"),
    ],
)
def test_a_damaged_model_folder_is_a_one_line_error(tmp_path, tiny_model_dir, damage, reason):
    from click.testing import CliRunner

    from emolab.cli import main

    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, folder)
    damage(folder)
    result = CliRunner().invoke(main, ["run", "--model", str(folder), "-p", "hi", "--max-tokens", "2"])
    assert result.exit_code == 2, result.output
    assert f"model {folder}: cannot be loaded" in result.output and reason in result.output
    assert "Traceback" not in result.output
