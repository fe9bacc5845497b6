"""The lean decoder computes what transformers' forward computes, with steering and probe reads."""

import pytest
import torch

from emolab.core import lean_llama
from emolab.core.decoders import TransformersDecoder, open_decoder
from emolab.core.lean_llama import LeanLlamaDecoder
from emolab.core.llama_weights import LlamaWeights, module_unsupported_reason
from emolab.core.models import LoadedModel
from tests.tiny import tiny_loaded_model


def tiny_qwen2(*, kv_heads: int) -> LoadedModel:
    """A Qwen2: biased q/k/v projections, and here a choice of grouped or full KV heads."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=128,
    )
    torch.manual_seed(1)
    model = Qwen2ForCausalLM(config).eval()
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):  # random init leaves them zero, which would test nothing
            parameter.data.normal_(0, 0.5)
    return LoadedModel(
        model,
        None,
        reference="tiny-qwen2",
        source="local",
        device=torch.device("cpu"),
        dtype=torch.float32,
        known_weights_id="tiny-qwen2",
    )


def lean_decoder(model, **options) -> LeanLlamaDecoder:
    return LeanLlamaDecoder(LlamaWeights.from_module(model), **options)


MODELS = {
    "llama-gqa": lambda: tiny_loaded_model(),
    "qwen2-bias-gqa": lambda: tiny_qwen2(kv_heads=2),
    "qwen2-bias-mha": lambda: tiny_qwen2(kv_heads=4),
}


def run_turns(decoder, turns, additions):
    """Feed each turn (a prefill, then single tokens) through one cache, cropping where asked."""
    outputs = []
    with torch.inference_mode(), decoder:
        cache = decoder.new_cache()
        for ids, crop_to in turns:
            if crop_to is not None:
                decoder.crop(cache, crop_to)
            outputs.append(decoder.forward(ids, cache, additions))
    return outputs


@pytest.mark.parametrize("prepack", [True, False], ids=["packed", "plain"])
@pytest.mark.parametrize("name", MODELS)
def test_lean_forward_matches_transformers_forward(name, prepack):
    loaded = MODELS[name]()
    probe_layer, steer = 1, {0: torch.randn(32) * 0.5, 1: torch.randn(32) * 0.5}
    vocab = loaded.model.config.vocab_size
    generator = torch.Generator().manual_seed(0)

    def ids(n):
        return torch.randint(3, vocab, (n,), generator=generator).tolist()

    turns = [
        (ids(9), None),
        (ids(1), None),
        (ids(1), None),
        (ids(6), None),  # a prefill behind a cached prefix: the masked path
        (ids(4), 7),  # a cropped cache, then a prefill
        (ids(1), None),
    ]
    reference = run_turns(TransformersDecoder(loaded, probe_layer=probe_layer, steer_layers=steer), turns, steer)
    lean = run_turns(lean_decoder(loaded.model, probe_layer=probe_layer, prepack=prepack), turns, steer)
    for (want_logits, want_residuals), (logits, residuals) in zip(reference, lean, strict=True):
        torch.testing.assert_close(logits, want_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(residuals, want_residuals, rtol=1e-5, atol=1e-5)


def test_steering_changes_the_lean_output_and_the_probe_reads_before_its_own_layer():
    loaded = tiny_loaded_model()
    decoder = lean_decoder(loaded.model, probe_layer=1)
    push = torch.randn(32) * 3
    plain = run_turns(decoder, [([5, 6, 7], None)], {})[0]
    at_probe = run_turns(decoder, [([5, 6, 7], None)], {1: push})[0]
    before_probe = run_turns(decoder, [([5, 6, 7], None)], {0: push})[0]
    torch.testing.assert_close(at_probe[1], plain[1])  # a slider does not light up its own bar
    assert not torch.allclose(at_probe[0], plain[0])
    assert not torch.allclose(before_probe[1], plain[1])


def test_the_cache_grows_in_chunks_and_keeps_what_it_held(monkeypatch):
    monkeypatch.setattr(lean_llama, "CACHE_CHUNK", 4)
    loaded = tiny_loaded_model()
    turns = [([5, 6, 7], None)] + [([8 + i], None) for i in range(10)]
    lean = run_turns(lean_decoder(loaded.model, probe_layer=None), turns, {})
    reference = run_turns(TransformersDecoder(loaded, probe_layer=None, steer_layers=()), turns, {})
    torch.testing.assert_close(lean[-1][0], reference[-1][0], rtol=1e-5, atol=1e-5)


def test_the_cache_refuses_to_grow_past_the_context_window():
    loaded = tiny_loaded_model(context=16)
    decoder = lean_decoder(loaded.model, probe_layer=None)
    with pytest.raises(ValueError, match="at most 16 tokens"):
        run_turns(decoder, [(list(range(3, 20)), None)], {})


def test_auto_picks_lean_for_llama_and_transformers_for_other_architectures():
    from transformers import GPT2Config, GPT2LMHeadModel

    llama = tiny_loaded_model()
    assert isinstance(open_decoder(llama, probe_layer=1, steer_layers=[0]), LeanLlamaDecoder)
    assert isinstance(open_decoder(llama, probe_layer=1, steer_layers=[0], kind="transformers"), TransformersDecoder)

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=50)).eval()
    assert "gpt2" in module_unsupported_reason(gpt2)
    loaded = LoadedModel(
        gpt2,
        None,
        reference="tiny-gpt2",
        source="local",
        device=torch.device("cpu"),
        dtype=torch.float32,
        known_weights_id="tiny-gpt2",
    )
    assert isinstance(open_decoder(loaded, probe_layer=1, steer_layers=[0]), TransformersDecoder)
    with pytest.raises(ValueError, match="cannot run this model"):
        open_decoder(loaded, probe_layer=1, steer_layers=[0], kind="lean")
    with pytest.raises(ValueError, match="unknown decoder"):
        open_decoder(loaded, probe_layer=1, steer_layers=[0], kind="fast")


OTHER_BITS = "oneDNN's packed bf16 kernels round differently from F.linear on this CPU (they agree on AVX512-BF16)"


def tiny_bf16_weights(hidden: int = 64) -> LlamaWeights:
    return LlamaWeights.from_module(tiny_loaded_model(hidden=hidden).model.to(torch.bfloat16))


@pytest.mark.skipif(not lean_llama.onednn_packs(torch.bfloat16), reason="needs oneDNN's bf16 path: AVX512BW+VL+DQ")
def test_where_the_decoder_packs_bfloat16_it_gives_the_plain_path_s_bits():
    weights = tiny_bf16_weights()
    chosen = LeanLlamaDecoder(weights, probe_layer=2)
    if not chosen.prepacked:
        pytest.skip(OTHER_BITS)
    turns = [([5, 6, 7, 8], None), ([9], None), ([10, 11], None)]
    steer = {0: torch.randn(64, dtype=torch.bfloat16)}
    packed = run_turns(chosen, turns, steer)
    plain = run_turns(LeanLlamaDecoder(weights, probe_layer=2, prepack=False), turns, steer)
    for (logits, residuals), (want_logits, want_residuals) in zip(packed, plain, strict=True):
        assert torch.equal(logits, want_logits) and torch.equal(residuals, want_residuals)


@pytest.mark.skipif(not lean_llama.onednn_packs(torch.bfloat16), reason="needs oneDNN's bf16 path: AVX512BW+VL+DQ")
@pytest.mark.parametrize("rounding", [False, True], ids=["same-bits", "other-bits"])
def test_bfloat16_packs_only_where_the_packed_kernels_keep_the_bits(monkeypatch, rounding):
    fused = lean_llama.PackedProjection.fused
    calls = []

    def counted(self, x):
        calls.append(x.shape[1])
        out = fused(self, x)
        return out.nextafter_(x.new_ones(())) if rounding else out  # a CPU whose packed kernels round otherwise

    monkeypatch.setattr(lean_llama.PackedProjection, "fused", counted)
    weights = tiny_bf16_weights()
    exact = lean_llama.packing_keeps_the_bits(weights)
    if not rounding and not exact:
        pytest.skip(OTHER_BITS)
    assert exact is not rounding
    checks = len(calls)
    decoders = [LeanLlamaDecoder(weights, probe_layer=2) for _ in range(2)]
    assert len(calls) == checks  # checked once per weights, not per decoder
    assert all(decoder.matmul == ("plain" if rounding else "packed") for decoder in decoders)
    if not rounding:  # the checked projections are the ones the decoders run, packed once
        qkv = lean_llama.layer_projections(0)["qkv"]
        assert decoders[0]._layers[0].qkv is decoders[1]._layers[0].qkv is weights.prepared[(qkv, True)]


def test_the_bit_check_says_no_without_packing_where_onednn_cannot_pack_bfloat16(monkeypatch):
    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: False)  # an AVX2-only CPU: packing raises
    monkeypatch.setattr(lean_llama, "PackedProjection", None)  # and is never tried
    assert lean_llama.packing_keeps_the_bits(tiny_bf16_weights()) is False


@pytest.mark.skipif(not lean_llama.onednn_packs(torch.bfloat16), reason="needs oneDNN's bf16 path: AVX512BW+VL+DQ")
def test_the_bit_check_after_a_requested_packing_says_packed_without_raising(tiny_model_dir):
    from emolab.core.models import load_model

    weights = load_model(str(tiny_model_dir), dtype="bfloat16").lean_weights
    LeanLlamaDecoder(weights, probe_layer=1, prepack=True)  # drops the plain copies it owns, unchecked
    assert lean_llama.packing_keeps_the_bits(weights) is True
    assert LeanLlamaDecoder(weights, probe_layer=1).prepacked


def test_once_the_plain_copies_are_dropped_every_later_decoder_packs(tiny_model_dir, monkeypatch):
    from emolab.core.models import load_model

    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: True)
    loaded = load_model(str(tiny_model_dir), dtype="float32")
    assert LeanLlamaDecoder(loaded.lean_weights, probe_layer=1).prepacked  # drops the plain copies it owns
    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: False)  # a later answer: plain is faster
    assert LeanLlamaDecoder(loaded.lean_weights, probe_layer=1).prepacked


def test_a_packed_projection_matches_its_linears_with_and_without_biases():
    from emolab.core.lean_llama import PackedProjection

    torch.manual_seed(0)
    with_bias, without_bias = torch.nn.Linear(16, 8), torch.nn.Linear(16, 4, bias=False)
    x = torch.randn(1, 3, 16)
    with torch.inference_mode():
        for linears in [(with_bias, without_bias), (without_bias,), (with_bias,)]:
            outputs = PackedProjection(*((linear.weight, linear.bias) for linear in linears))(x)
            assert len(outputs) == len(linears)
            for output, linear in zip(outputs, linears, strict=True):
                torch.testing.assert_close(output, linear(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_where_the_cpu_cannot_pack_the_lean_decoder_runs_plain_and_matches_transformers(monkeypatch, dtype):
    monkeypatch.setattr(lean_llama, "onednn_packs", lambda dtype: False)  # an AVX2-only CPU, for bf16
    loaded = tiny_loaded_model()
    loaded.model.to(dtype)
    decoder = lean_decoder(loaded.model, probe_layer=1)
    assert not decoder.prepacked and decoder.matmul == "plain"
    turns = [([5, 6, 7, 8], None), ([9], None), ([10, 11, 12], None)]
    lean = run_turns(decoder, turns, {})
    reference = run_turns(TransformersDecoder(loaded, probe_layer=1, steer_layers=()), turns, {})
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    for (logits, residuals), (want_logits, want_residuals) in zip(lean, reference, strict=True):
        torch.testing.assert_close(logits, want_logits, rtol=tolerance, atol=tolerance)
        torch.testing.assert_close(residuals, want_residuals, rtol=tolerance, atol=tolerance)


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="needs oneDNN (mkldnn) in this torch build")
@pytest.mark.parametrize("faster", [True, False], ids=["packing-faster", "plain-faster"])
def test_fp32_weights_are_packed_only_where_packing_measured_faster(monkeypatch, faster):
    monkeypatch.setattr(lean_llama, "packing_is_faster", lambda: faster)
    lean_llama.onednn_packs.cache_clear()
    try:
        assert lean_llama.onednn_packs(torch.float32) is faster
        assert lean_decoder(tiny_loaded_model().model, probe_layer=1).prepacked is faster
    finally:
        lean_llama.onednn_packs.cache_clear()  # later tests measure this machine again


def test_the_capability_check_is_asked_once_per_dtype():
    assert lean_llama.onednn_packs(torch.float32) is lean_llama.onednn_packs(torch.float32)
    assert lean_llama.onednn_packs.cache_info().currsize >= 1
    assert not lean_llama.onednn_packs(torch.float16)


def test_without_grouped_sdpa_the_kv_heads_are_repeated_with_the_same_result(monkeypatch):
    monkeypatch.setattr(lean_llama, "_sdpa_groups_kv", lambda device: False)  # torch < 2.5, or MPS
    loaded = tiny_loaded_model()
    turns = [([5, 6, 7, 8], None), ([9], None), ([10, 11, 12], None)]
    lean = run_turns(lean_decoder(loaded.model, probe_layer=1), turns, {})
    reference = run_turns(TransformersDecoder(loaded, probe_layer=1, steer_layers=()), turns, {})
    for (logits, residuals), (want_logits, want_residuals) in zip(lean, reference, strict=True):
        torch.testing.assert_close(logits, want_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(residuals, want_residuals, rtol=1e-5, atol=1e-5)
