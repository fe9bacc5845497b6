"""The GPU and offload paths, tested on a CPU-only machine: FakeTensor "GPUs" (tensors that carry a
CUDA device and a shape but no data), accelerate's real offload hooks, monkeypatched device queries,
and a `layer_device` that returns another device than the input's."""

import pytest
import torch
from click.testing import CliRunner
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from emolab.core import devices, models
from emolab.core.decoders import TransformersDecoder
from emolab.core.devices import pick_device, pick_dtype
from emolab.core.engine import Engine
from emolab.core.errors import EmolabError, ModelNotFoundError
from emolab.core.events import Token
from emolab.core.models import LoadedModel, module_device
from emolab.core.sampler import Sampler
from emolab.core.sampling import Sampling
from tests.tiny import GEMMA_WINDOW, tiny_loaded_model, write_tiny_pack

GREEDY = Sampling(temperature=0, max_tokens=8)


class DeviceLog(TorchDispatchMode):
    """Every op with the devices and dtypes of its tensor outputs."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, (tuple, list)) else [result]
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        self.ops.append(
            (
                func.__name__.split(".")[0],
                [t.device.type for t in inputs],
                [(t.device.type, t.dtype, t.numel()) for t in outputs if isinstance(t, torch.Tensor)],
            )
        )
        return result


def fake_cuda(tensor: torch.Tensor, index: int, mode: FakeTensorMode) -> torch.Tensor:
    with mode:
        return mode.from_tensor(tensor).to(f"cuda:{index}")


# 1 and 6 ------------------------------------------------------------------------------------------


def test_block_outputs_of_layers_on_different_gpus_are_gathered_on_the_cpu(monkeypatch):
    """Under a device_map, hidden states live on different GPUs; stacking them there raises."""
    from emolab.recipe.activations import block_outputs

    loaded = tiny_loaded_model()
    base = loaded.model.base_model
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    real_forward = base.forward

    def on_two_gpus(*args, **kwargs):
        output = real_forward(*args, **kwargs)
        output.hidden_states = tuple(fake_cuda(h, 0 if i <= 2 else 1, mode) for i, h in enumerate(output.hidden_states))
        return output

    monkeypatch.setattr(base, "forward", on_two_gpus)
    rows = list(block_outputs(loaded, ["one text", "and another, longer text"], [1, 2, 3]))
    assert [row.device.type for row in rows] == ["cpu", "cpu"]
    assert rows[0].shape[0] == 3 and rows[0].dtype == torch.float32


def test_block_outputs_use_the_base_model_so_gpt2_families_work():
    from emolab.recipe.activations import block_outputs

    loaded = tiny_loaded_model(architecture="gpt2")
    assert not hasattr(loaded.model, "model")  # GPT-2, NeoX, Falcon, Bloom: no `model.model`
    [row] = list(block_outputs(loaded, ["a text"], [0, 1]))
    assert row.shape[0] == 2


# 2 ------------------------------------------------------------------------------------------------


def test_validate_places_steering_vectors_on_each_layers_device(monkeypatch, tmp_path):
    from emolab.recipe import validate

    loaded = tiny_loaded_model()
    pack = write_tiny_pack(tmp_path / "pack", loaded, layers=(1, 2))
    # A CPU-only machine has one device; cpu:0 stands in for a block's GPU, cpu for the embedding's.
    monkeypatch.setattr(LoadedModel, "layer_device", lambda self, layer: torch.device("cpu", 0))
    asked = []

    class Recording(validate.SteeringVectors):
        def __init__(self, pack, *, device_of, dtype):
            asked.append(dict(device_of))
            super().__init__(pack, device_of=device_of, dtype=dtype)

    monkeypatch.setattr(validate, "SteeringVectors", Recording)
    lens = validate._logit_lens_table(pack, loaded, pack.probe_layer)
    validate.steering_dose_response(pack, loaded, lens, [0.0, 0.5], max_tokens=2)
    assert asked == [{layer: torch.device("cpu", 0) for layer in pack.steer_layers}]


# 3 ------------------------------------------------------------------------------------------------


def offloaded(tmp_path, embed: str = "disk"):
    """The tiny Llama with accelerate's real offload hooks: blocks 1 and 2 and the embedding on disk."""
    from accelerate import dispatch_model

    loaded = tiny_loaded_model(seed=3)
    device_map = {
        "model.embed_tokens": embed,
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "disk",
        "model.layers.3": "cpu",
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    dispatch_model(loaded.model, device_map=device_map, offload_dir=str(tmp_path / "offload"), main_device="cpu")
    return loaded


def test_offloaded_blocks_report_their_execution_device_not_meta(tmp_path):
    loaded = offloaded(tmp_path)
    assert next(loaded.blocks[1].parameters()).device.type == "meta"  # where the weights wait
    assert loaded.layer_device(1) == torch.device("cpu") and loaded.layer_device(3) == torch.device("cpu")
    assert loaded.input_device == torch.device("cpu")


def test_an_offload_hooks_execution_device_is_where_a_block_runs():
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    loaded = tiny_loaded_model()
    block = loaded.blocks[2]
    add_hook_to_module(block, AlignDevicesHook(execution_device="cpu", io_same_device=False))
    block.to("meta")  # where offloaded weights wait between calls
    block._hf_hook.execution_device = 1  # accelerate's way of naming GPU 1
    assert loaded.layer_device(2) == torch.device("cuda", 1)
    assert module_device(loaded.blocks[0]) == torch.device("cpu")


def test_an_offloaded_model_chats_and_probes_as_the_whole_one_does(tmp_path):
    whole = tiny_loaded_model(seed=3)
    pack = write_tiny_pack(tmp_path / "pack", whole, layers=(1, 2))
    expected = [
        (e.token_id, e.probe.tolist())
        for e in Engine(whole, pack, sampling=GREEDY).chat("hello")
        if isinstance(e, Token)
    ]
    loaded = offloaded(tmp_path)
    engine = Engine(loaded, pack, sampling=GREEDY)
    assert isinstance(engine.decoder, TransformersDecoder)  # the lean decoder cannot read offloaded weights
    events = [e for e in engine.chat("hello") if isinstance(e, Token)]
    assert [e.token_id for e in events] == [token for token, _ in expected]
    for event, (_, probe) in zip(events, expected, strict=True):
        assert event.probe.tolist() == pytest.approx(probe, abs=1e-4)


# 4 ------------------------------------------------------------------------------------------------


@pytest.fixture
def two_gpus(monkeypatch):
    """What torch reports on a machine with two 16 GB GPUs, `free` bytes free on the current one."""
    state = {"free": 16 << 30}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=None: (state["free"], 16 << 30))
    return state


def test_plain_cuda_puts_a_model_that_fits_on_one_gpu_and_spreads_one_that_does_not(two_gpus, tiny_model_dir):
    size = models.weights_bytes(str(tiny_model_dir), torch.float32, False)
    assert size == sum(p.numel() * 4 for p in tiny_loaded_model().model.parameters())
    cuda = torch.device("cuda")
    assert models.cuda_placement(str(tiny_model_dir), cuda, torch.float32, False) == {"device_map": {"": 0}}
    two_gpus["free"] = size  # the weights fit, with no room to run them
    assert models.cuda_placement(str(tiny_model_dir), cuda, torch.float32, False) == {"device_map": "auto"}
    assert models.cuda_placement(str(tiny_model_dir), torch.device("cuda:1"), torch.float32, False) == {
        "device_map": {"": 1}
    }


def test_plain_cuda_loads_a_small_model_on_one_gpu(two_gpus, tiny_model_dir, monkeypatch):
    """What `_load_module` asks transformers for (the load itself then happens on the CPU)."""
    from transformers import AutoModelForCausalLM

    asked = {}
    real = AutoModelForCausalLM.from_pretrained

    def recording(source, **kwargs):
        asked.update(kwargs)
        kwargs.pop("device_map", None)
        return real(source, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", recording)
    models._load_module(str(tiny_model_dir), device=torch.device("cuda"), dtype=torch.float32, trust_remote_code=False)
    assert asked["device_map"] == {"": 0}


# 5 ------------------------------------------------------------------------------------------------


def test_a_full_sliding_window_cache_asks_to_be_rebuilt_instead_of_cropped():
    loaded = tiny_loaded_model(architecture="gemma3")
    decoder = TransformersDecoder(loaded, probe_layer=None, steer_layers=())
    with torch.inference_mode(), decoder:
        cache = decoder.new_cache()
        decoder.forward(list(range(5, 5 + GEMMA_WINDOW - 4)), cache, {})
        assert decoder.crop(cache, 6)  # within the window: cropped
        assert cache.get_seq_length() == 6
        decoder.forward(list(range(5, 5 + GEMMA_WINDOW)), cache, {})
        assert not decoder.crop(cache, 10)  # transformers' crop would raise here
        assert decoder.crop(cache, cache.get_seq_length())  # keeping everything needs no crop


# 7 and 8 ------------------------------------------------------------------------------------------


def test_cuda_dtype_follows_each_gpus_compute_capability(monkeypatch, two_gpus):
    capabilities = {0: (8, 0), 1: (7, 5)}  # an A100 and a T4, which "supports" bf16 by emulation
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capabilities[index])
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_dtype("auto", torch.device("cuda:0")) == torch.bfloat16
    assert pick_dtype("auto", torch.device("cuda:1")) == torch.float16
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16  # may spread over both
    capabilities[1] = (9, 0)
    assert pick_dtype("auto", torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float32)])
def test_mps_dtype_is_bf16_where_macos_has_it_else_fp32_never_fp16(monkeypatch, bf16, expected):
    monkeypatch.setattr(devices, "mps_has_bf16", lambda: bf16)
    assert pick_dtype("auto", torch.device("mps")) == expected


# 9 ------------------------------------------------------------------------------------------------


def test_replay_verifies_on_the_recorded_device_even_where_a_gpu_is_there(
    tmp_path, tiny_model, tiny_model_dir, monkeypatch
):
    from emolab.cli import main

    pack = write_tiny_pack(tmp_path / "pack", tiny_model)
    session = tmp_path / "s.json"
    recorded = CliRunner().invoke(
        main,
        [
            "run",
            "--vectors",
            str(pack.path),
            "--model",
            str(tiny_model_dir),
            "-p",
            "hi",
            "--max-tokens",
            "5",
            "--device",
            "cpu",
            "--session",
            str(session),
        ],
    )
    assert recorded.exit_code == 0, recorded.output
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU box: `auto` would pick CUDA
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    result = CliRunner().invoke(main, ["replay", "--verify", str(session)])
    assert result.exit_code == 0, result.output
    assert "reproduces the recording exactly" in result.output


def test_replay_of_a_gpu_session_on_a_machine_without_one_says_to_pass_device(tmp_path, tiny_model, tiny_model_dir):
    import json

    from emolab.cli import main

    pack = write_tiny_pack(tmp_path / "pack", tiny_model)
    session = tmp_path / "s.json"
    CliRunner().invoke(
        main,
        [
            "run",
            "--vectors",
            str(pack.path),
            "--model",
            str(tiny_model_dir),
            "-p",
            "hi",
            "--max-tokens",
            "3",
            "--session",
            str(session),
        ],
    )
    data = json.loads(session.read_text())
    data["meta"]["device"] = "cuda"
    session.write_text(json.dumps(data))
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = CliRunner().invoke(main, ["replay", "--verify", str(session)])
    assert result.exit_code == 2 and "recorded on cuda" in result.output and "--device" in result.output


# 10 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["gemma3", "gpt2", "llama"])
def test_the_logit_lens_goes_through_the_models_own_final_norm(architecture, tmp_path):
    from emolab.recipe.validate import _logit_lens_table

    loaded = tiny_loaded_model(architecture=architecture)
    pack = write_tiny_pack(tmp_path / "pack", loaded)
    if architecture == "gemma3":
        norm = loaded.model.model.norm
        scaled = lambda d: d * (1 + norm.weight)  # noqa: E731  Gemma scales by 1 + w
    elif architecture == "gpt2":
        norm = loaded.model.transformer.ln_f
        scaled = lambda d: (d - d.mean()) * norm.weight  # noqa: E731  a LayerNorm centres, then scales
    else:
        norm = loaded.model.model.norm
        scaled = lambda d: d * norm.weight  # noqa: E731
    table = _logit_lens_table(pack, loaded, pack.probe_layer)
    unembedding = loaded.model.get_output_embeddings().weight
    for index, emotion in enumerate(pack.emotions):
        logits = unembedding @ scaled(pack.layers[pack.probe_layer].directions[index])
        assert table[emotion]["top"] == [loaded.tokenizer.decode([int(i)]) for i in logits.topk(10).indices]


def test_the_logit_lens_makes_no_fp32_copy_on_the_gpu(tmp_path, monkeypatch):
    from emolab.recipe import validate

    loaded = tiny_loaded_model()
    pack = write_tiny_pack(tmp_path / "pack", loaded)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    head = torch.nn.Linear(loaded.hidden_size, len(loaded.tokenizer), bias=False)
    head.weight = torch.nn.Parameter(fake_cuda(head.weight.detach().to(torch.bfloat16), 0, mode), requires_grad=False)
    monkeypatch.setattr(loaded.model, "get_output_embeddings", lambda: head)
    seen = []
    monkeypatch.setattr(
        validate,
        "logit_lens",
        lambda direction, unembedding, norm, tokenizer: (
            seen.append((unembedding.device.type, unembedding.dtype)) or ([], [])
        ),
    )
    with DeviceLog() as log:
        validate._logit_lens_table(pack, loaded, pack.probe_layer)
    assert set(seen) == {("cpu", torch.float32)}
    made_on_gpu = [output for _, _, outputs in log.ops for output in outputs if output[0] == "cuda"]
    assert all(dtype == torch.bfloat16 for _, dtype, _ in made_on_gpu), made_on_gpu


# 11 -----------------------------------------------------------------------------------------------


def test_out_of_memory_is_not_reported_as_a_model_missing_from_the_hub(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(models, "_from_pretrained", out_of_memory)
    with pytest.raises(EmolabError, match="does not fit in the memory of cpu") as raised:
        models.load_model("some-org/some-model", device="cpu")
    assert not isinstance(raised.value, ModelNotFoundError) and "hub" not in str(raised.value)

    def missing(*args, **kwargs):
        raise OSError("some-org/some-model is not a local folder and is not a valid model identifier")

    monkeypatch.setattr(models, "_from_pretrained", missing)
    with pytest.raises(ModelNotFoundError, match="not available from"):
        models.load_model("some-org/some-model", device="cpu")

    def a_bug(*args, **kwargs):
        raise KeyError("a real bug")

    monkeypatch.setattr(models, "_from_pretrained", a_bug)
    with pytest.raises(KeyError):  # not hidden behind "not available from the hub"
        models.load_model("some-org/some-model", device="cpu")


def test_a_cuda_index_past_the_last_gpu_is_a_clear_error(two_gpus):
    assert pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(EmolabError, match=r"--device cuda:7: this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        pick_device("cuda:7")


# 12 -----------------------------------------------------------------------------------------------


def test_sampling_runs_on_the_logits_device_and_only_the_draw_on_the_cpu():
    """`meta` stands in for the GPU: its ops run (shapes only), and reading a value back raises."""
    logits = torch.randn(50_000, device="meta")
    with DeviceLog() as log, pytest.raises((NotImplementedError, RuntimeError), match="meta"):
        Sampler(0).choose(logits, Sampling(temperature=0.7, top_p=0.9))
    heavy = {name: inputs for name, inputs, outputs in log.ops if outputs and outputs[0][2] >= 50_000}
    assert heavy["_softmax"] == ["meta"] and heavy["sort"] == ["meta"] and heavy["cumsum"] == ["meta"]
    on_cpu = [name for name, inputs, outputs in log.ops if outputs and outputs[0][0] == "cpu"]
    assert set(on_cpu) <= {"empty", "exponential_"}, on_cpu  # the random numbers, from the CPU generator


def test_seeded_sampling_draws_what_torch_multinomial_drew():
    """Sessions recorded before sampling moved to the device still reproduce token for token."""
    generator = torch.Generator().manual_seed(0)
    for seed in range(20):
        logits = torch.randn(3000, generator=generator) * 3
        for sampling in (Sampling(temperature=0.7, top_p=0.9), Sampling(temperature=1.0, top_p=1.0)):
            reference = torch.Generator().manual_seed(seed)
            probs = torch.softmax(logits / sampling.temperature, dim=-1)
            if sampling.top_p < 1:
                sorted_probs, order = torch.sort(probs, descending=True)
                sorted_probs[torch.cumsum(sorted_probs, dim=-1) - sorted_probs > sampling.top_p] = 0
                expected = int(order[torch.multinomial(sorted_probs, 1, generator=reference)])
            else:
                expected = int(torch.multinomial(probs, 1, generator=reference))
            assert Sampler(seed).choose(logits, sampling) == expected
