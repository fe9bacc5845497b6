"""A lean forward pass for Llama-style decoders (Llama, SmolLM2, Mistral, Qwen2).

transformers' forward spends about a fifth of a CPU decode step in per-layer Python: kwargs
plumbing, mask building, cache bookkeeping, module hooks. This module runs the same ops on the
same weights in one flat loop, with a preallocated KV cache, and adds steering and reads the
probe residual inline instead of through hooks. Every op mirrors transformers' own (RMSNorm in
float32, the model's RoPE table or a bit-identical copy of the default one, SDPA with the same
GQA and mask choices), so greedy tokens match `generate`; tests check that.

On the CPU the projection weights are also packed once into oneDNN's blocked layout, with q, k
and v in one product and gate and up in another. A batch-1 decode step is a chain of small
matrix-vector products, and in bfloat16 the packed, fused kernels run it about 1.5x faster than
`F.linear` on plain weights. bf16 packs only where that gives `F.linear`'s bits, checked on the
model's own shapes (`packing_keeps_the_bits`): on some CPUs oneDNN's packed kernels round
differently, and greedy tokens then leave `generate`'s within a few dozen. In float32 packing wins
on some CPUs and loses on others (BENCHMARKS.md), so it is timed once per process; where it packs,
results differ from MKL's in the last bits (oneDNN sums in another order), which fp32 absorbs.

Anything else (other architectures, weights split over devices, sliding windows) uses
`TransformersDecoder`; `llama_weights.module_unsupported_reason` says why.
"""

from __future__ import annotations

import functools
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from emolab.core.llama_weights import HEAD, LlamaWeights

CACHE_CHUNK = 256  # the KV cache grows in steps of this many tokens


@functools.cache
def onednn_packs(dtype: torch.dtype) -> bool:
    """May the lean decoder pack linear weights of this dtype for oneDNN here? Asked once per process.

    bf16 needs AVX512BW/VL/DQ or AVX-NE-CONVERT: an AVX2-only CPU has neither, and packing raises
    there; where it can, `packing_keeps_the_bits` decides. fp32 packs where it is faster.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    if dtype == torch.bfloat16:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return dtype == torch.float32 and packing_is_faster()


PACKING_MARGIN = 1.1  # packed fp32 must win by this much; near a tie the plain path, transformers' own, stays
BF16_MARGIN = 1.2  # bf16 must win by this much to be chosen for decoding on a CPU without bf16 hardware
MLP_SHAPES = ((1536, 576), (576, 1536))  # SmolLM2-135M's


def packing_is_faster() -> bool:
    """Whether oneDNN's packed fp32 matrix-vector products beat `F.linear` on this CPU.

    Packed decodes 1.5x faster on an AMD EPYC and 1.35x slower on a Sapphire Rapids Xeon, so it is
    measured (`_faster`); about 0.2 s, once per process.
    """
    plain = _streamed_weights(torch.float32)
    packed = [torch.ops.mkldnn._reorder_linear_weight(weight, 1) for weight in plain]
    return _faster((packed, _packed_linear), (plain, F.linear), torch.float32, PACKING_MARGIN)


@functools.cache
def bf16_decodes_faster() -> bool:
    """Whether batch-1 bf16 products beat fp32's (packed where the decoder would pack) on this CPU.

    Without bf16 hardware bf16 still halves the bytes a decode step streams, and torch's own bf16
    matrix-vector kernel (vectorised for AVX2, summing in fp32) decoded twice as fast as fp32 under
    AVX2's kernels; through oneDNN's emulation (AVX512 without bf16) it is slower. So it is measured.
    """
    fp32 = _streamed_weights(torch.float32)
    bf16 = [weight.to(torch.bfloat16) for weight in fp32]
    if onednn_packs(torch.float32):
        packed = [torch.ops.mkldnn._reorder_linear_weight(weight, 1) for weight in fp32]
        return _faster((bf16, F.linear), (packed, _packed_linear), torch.bfloat16, BF16_MARGIN, torch.float32)
    return _faster((bf16, F.linear), (fp32, F.linear), torch.bfloat16, BF16_MARGIN, torch.float32)


def _streamed_weights(dtype: torch.dtype, megabytes: int = 64) -> list[torch.Tensor]:
    """MLP weights well past the CPU's caches, as a decode step streams them: with weights that fit
    in the cache the paths tie, and a timing's answer is noise."""
    pairs = max(1, megabytes * 2**20 // (4 * sum(rows * columns for rows, columns in MLP_SHAPES)))
    return [torch.empty(shape, dtype=dtype).uniform_(-1, 1) for _ in range(pairs) for shape in MLP_SHAPES]


def _packed_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [None], "")


def _faster(candidate, incumbent, dtype, margin: float, against_dtype=None, rounds: int = 3) -> bool:
    """Whether `candidate` (weights, linear) runs a pass of batch-1 products `margin` times faster
    than `incumbent`; passes alternate, medians compared."""

    def seconds(path, path_dtype, passes: int = 2) -> float:
        weights, linear = path
        inputs = {columns: torch.ones(1, 1, columns, dtype=path_dtype) for _, columns in MLP_SHAPES}
        columns = [columns for _ in range(len(weights) // len(MLP_SHAPES)) for _, columns in MLP_SHAPES]

        def one_pass() -> None:
            for weight, width in zip(weights, columns, strict=True):
                linear(inputs[width], weight)

        one_pass()  # warm
        began = time.perf_counter()
        for _ in range(passes):
            one_pass()
        return time.perf_counter() - began

    timings = [(seconds(candidate, dtype), seconds(incumbent, against_dtype or dtype)) for _ in range(rounds)]
    return statistics.median(t for t, _ in timings) * margin < statistics.median(t for _, t in timings)


def can_prepack(device: torch.device, dtype: torch.dtype) -> bool:
    return device.type == "cpu" and onednn_packs(dtype)


LAYER_ROWS = (1, 2, 3, 5, 31, 128)  # a decode step, a compare's two lanes, prompts of a few lengths
HEAD_ROWS = (1, 2, 3, 5, 31)  # the head scores the last token of each lane, or a scored text


def packing_keeps_the_bits(weights: LlamaWeights) -> bool:
    """Whether packed bf16 products give `F.linear`'s bits on these weights' shapes, on this CPU.

    On an AVX512-BF16 CPU they do. With AVX512 but no bf16 hardware (as under
    `ONEDNN_MAX_CPU_ISA=AVX512_CORE`) oneDNN rounds some rows differently, depending on the shape
    and the row count, and greedy tokens leave `generate`'s. Checked once per weights, on layer 0's
    projections and the head, for a few row counts: a check, not a proof for every prompt length.
    Where it passes, the checked packed projections are kept for the decoder.
    """
    key = "packing_keeps_the_bits"
    embed = weights.tensors["model.embed_tokens.weight"]
    if not can_prepack(embed.device, embed.dtype):
        return False  # oneDNN cannot pack these at all here (packing would raise)
    if key in weights.prepared:
        return weights.prepared[key]
    if only_packed_copies_left(weights):
        return True  # packed on request, unchecked; no plain copies are left to check against
    generator = torch.Generator().manual_seed(0)
    checked = {}
    with torch.inference_mode():
        groups = [(names, LAYER_ROWS) for names in layer_projections(0).values()] + [((HEAD,), HEAD_ROWS)]
        for names, row_counts in groups:
            linears = _linears(weights, names)
            packed, plain = PackedProjection(*linears), PlainProjection(*linears)
            weight = linears[0][0]
            for rows in row_counts:
                x = torch.randn(1, rows, weight.shape[1], generator=generator).to(weight.dtype)
                if not torch.equal(packed.fused(x), plain.fused(x)):
                    weights.prepared[key] = False
                    return False
            checked[names] = packed
    for names, packed in checked.items():
        _keep(weights, names, packed)
    weights.prepared[key] = True
    return True


def only_packed_copies_left(weights: LlamaWeights) -> bool:
    """A decoder packed these weights and dropped the plain copies: every later one must pack too."""
    return any(f"{name}.weight" not in weights.tensors for name in layer_projections(0)["qkv"])


Linear = tuple[torch.Tensor, "torch.Tensor | None"]  # (weight [out, in], bias [out] or None)


class PackedProjection:
    """Linears that share an input (q, k and v; gate and up), run as one product on weights packed once.

    oneDNN sums each output the same way whatever the weight's height, so the fused product gives
    bit-identical outputs (tested), with one kernel call instead of several.
    """

    def __init__(self, *linears: Linear):
        weight = torch.cat([linear_weight for linear_weight, _ in linears])
        self.bias = None
        if any(bias is not None for _, bias in linears):  # a missing bias is a zero one
            self.bias = torch.cat(
                [bias if bias is not None else weight.new_zeros(part.shape[0]) for part, bias in linears]
            )
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, 1)  # tuned for batch 1
        self.sizes = [linear_weight.shape[0] for linear_weight, _ in linears]

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        """All outputs side by side, [..., sum of sizes]."""
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [None], "")

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.fused(x).split(self.sizes, -1)


class PlainProjection:
    """The same interface on plain weights: one `F.linear` per linear, as transformers runs them."""

    def __init__(self, *linears: Linear):
        self.linears = linears

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self(x)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(F.linear(x, weight, bias) for weight, bias in self.linears)


Projection = PackedProjection | PlainProjection


def layer_projections(index: int) -> dict[str, tuple[str, ...]]:
    """A block's projections as the lean decoder runs them: linears that share an input, together."""
    block = f"model.layers.{index}"
    return {
        "qkv": tuple(f"{block}.self_attn.{name}" for name in ("q_proj", "k_proj", "v_proj")),
        "o": (f"{block}.self_attn.o_proj",),
        "gate_up": (f"{block}.mlp.gate_proj", f"{block}.mlp.up_proj"),
        "down": (f"{block}.mlp.down_proj",),
    }


@dataclass
class _Layer:
    input_norm: torch.Tensor
    qkv: Projection
    o: Projection
    post_norm: torch.Tensor
    gate_up: Projection
    down: Projection


def shared_projection(weights: LlamaWeights, names: tuple[str, ...], *, packed: bool) -> Projection:
    """The projection of these linears, made once per weights and shared by every decoder on them."""
    if (names, packed) not in weights.prepared:
        _keep(weights, names, (PackedProjection if packed else PlainProjection)(*_linears(weights, names)))
    return weights.prepared[(names, packed)]


def _linears(weights: LlamaWeights, names: tuple[str, ...]) -> list[Linear]:
    if names == (HEAD,):  # maybe tied to the embedding, which stays
        return [(weights.head, weights.get(f"{HEAD}.bias"))]
    if any(f"{name}.weight" not in weights.tensors for name in names):
        raise ValueError(
            f"{names[0]}: only the packed copy of these weights is kept; load the model again to run it unpacked"
        )
    return [(weights.tensors[f"{name}.weight"], weights.get(f"{name}.bias")) for name in names]


def _keep(weights: LlamaWeights, names: tuple[str, ...], projection: Projection) -> None:
    """Share a projection. Packing copies the weights: where they were read for the lean decoder alone
    (`owned`), the plain copies are dropped once packed, so that the model is held once, not twice."""
    packed = isinstance(projection, PackedProjection)
    weights.prepared[(names, packed)] = projection
    if packed and weights.owned and names != (HEAD,):
        for name in names:
            del weights.tensors[f"{name}.weight"]


class LeanKVCache:
    """Keys and values for every layer, preallocated and grown in chunks; `length` tokens are valid.

    One row per lane (dimension 1): a chat has one, a batched compare two, all at the same length."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, *, limit: int, dtype, device, lanes: int = 1):
        self.limit = limit
        self.length = 0
        shape = (layers, lanes, kv_heads, 0, head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)

    def crop(self, keep: int) -> None:
        self.length = min(self.length, keep)

    def _with(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> LeanKVCache:
        cache = object.__new__(LeanKVCache)
        cache.limit, cache.length, cache.keys, cache.values = self.limit, length, keys, values
        return cache

    def copy(self) -> LeanKVCache:
        return self._with(self.keys.clone(), self.values.clone(), self.length)

    @staticmethod
    def stack(caches: list[LeanKVCache]) -> LeanKVCache:
        """Lanes of the same length side by side, as one cache."""
        length = caches[0].length
        if any(cache.length != length for cache in caches):
            raise ValueError("only caches of the same length stack")
        keys = torch.cat([cache.keys[:, :, :, :length] for cache in caches], dim=1)
        values = torch.cat([cache.values[:, :, :, :length] for cache in caches], dim=1)
        return caches[0]._with(keys, values, length)

    def lane(self, lane: int) -> LeanKVCache:
        """One lane's keys and values, as a cache of its own."""
        rows = slice(lane, lane + 1)
        return self._with(self.keys[:, rows].clone(), self.values[:, rows].clone(), self.length)

    def reserve(self, length: int) -> None:
        capacity = self.keys.shape[3]
        if length <= capacity:
            return
        if length > self.limit:
            raise ValueError(f"the KV cache holds at most {self.limit} tokens, not {length}")
        grown = min(self.limit, -(-length // CACHE_CHUNK) * CACHE_CHUNK)
        for name in ("keys", "values"):
            old = getattr(self, name)
            new = old.new_empty((*old.shape[:3], grown, old.shape[4]))
            new[:, :, :, : self.length] = old[:, :, :, : self.length]
            setattr(self, name, new)


class LeanLlamaDecoder:
    """Feed tokens, get next-token logits; steering added and the probe residual read on the way.

    Block L's output is `hidden_states[L + 1]`. The probe layer's residual is read before that
    layer's own steering is added, exactly as `ResidualHooks` does for the transformers path.
    """

    name = "lean"
    batched_lanes = True  # forward_lanes runs a compare's two lanes in one batch

    def __init__(self, weights: LlamaWeights, *, probe_layer: int | None, prepack: bool | None = None):
        """prepack: pack the projection weights for oneDNN (None: wherever this CPU can; elsewhere
        plain `F.linear` on the same weights, slower but the same ops as transformers')."""
        self.probe_layer = probe_layer
        embed = weights.tensors["model.embed_tokens.weight"]
        self.device, self.dtype = embed.device, embed.dtype
        if prepack is None:
            prepack = only_packed_copies_left(weights) or (
                can_prepack(self.device, self.dtype)
                and (self.dtype != torch.bfloat16 or packing_keeps_the_bits(weights))
            )
        self.prepacked = prepack

        def projection(*names: str) -> Projection:
            return shared_projection(weights, names, packed=self.prepacked)

        self._embed = embed
        self._rotary = weights.rotary
        self._final_norm = weights.tensors["model.norm.weight"]
        self._head = projection(HEAD)
        self.eps = weights.rms_eps
        self.heads, self.kv_heads, self.head_dim = weights.heads, weights.kv_heads, weights.head_dim
        self.scale = self.head_dim**-0.5
        self._grouped_sdpa = _sdpa_groups_kv(self.device)
        self.context_window = weights.context_window
        self._layers = []
        for index in range(weights.layers):
            block = f"model.layers.{index}"
            projections = {field: projection(*names) for field, names in layer_projections(index).items()}
            self._layers.append(
                _Layer(
                    input_norm=weights.tensors[f"{block}.input_layernorm.weight"],
                    post_norm=weights.tensors[f"{block}.post_attention_layernorm.weight"],
                    **projections,
                )
            )

    @property
    def matmul(self) -> str:
        """ "packed" (oneDNN's blocked weights) or "plain" (`F.linear`), for a slow machine to explain itself."""
        return "packed" if self.prepacked else "plain"

    def __enter__(self) -> LeanLlamaDecoder:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def new_cache(self) -> LeanKVCache:
        return LeanKVCache(
            len(self._layers),
            self.kv_heads,
            self.head_dim,
            limit=self.context_window,
            dtype=self.dtype,
            device=self.device,
        )

    def crop(self, cache: LeanKVCache, keep: int) -> bool:
        cache.crop(keep)
        return True

    def copy_cache(self, cache: LeanKVCache) -> LeanKVCache:
        return cache.copy()

    def stack_caches(self, caches: list[LeanKVCache]) -> LeanKVCache:
        return LeanKVCache.stack(caches)

    def lane_cache(self, cache: LeanKVCache, lane: int) -> LeanKVCache:
        return cache.lane(lane)

    def forward(
        self, ids: list[int], cache: LeanKVCache, additions: dict[int, torch.Tensor], *, logits_for: int | None = None
    ):
        """Logits for the token after `ids` ([vocab]) and the probe layer's residuals ([n, H] or None).

        logits_for=k: the logits after each of the last k tokens instead ([k, vocab]), to score a text."""
        logits, captured = self._run(torch.tensor([ids], device=self.device), cache, additions, logits_for or 1)
        return (logits[0, -1] if logits_for is None else logits[0]), (captured[0] if captured is not None else None)

    def forward_lanes(self, ids: list[int], cache: LeanKVCache, additions: list[dict[int, torch.Tensor]]):
        """One token for each lane of a stacked cache, each lane steered by its own additions, in one
        batch: the logits [lanes, vocab] and the probe residuals [lanes, H] (or None)."""
        stacked = {}
        for layer in sorted(set().union(*additions)):
            rows = [lane.get(layer) for lane in additions]
            zero = torch.zeros_like(next(row for row in rows if row is not None))
            stacked[layer] = torch.stack([zero if row is None else row for row in rows])[:, None, :]
        logits, captured = self._run(torch.tensor(ids, device=self.device)[:, None], cache, stacked, 1)
        return logits[:, -1], (captured[:, -1] if captured is not None else None)

    def _run(self, tokens: torch.Tensor, cache: LeanKVCache, additions: dict[int, torch.Tensor], scored: int):
        """tokens [lanes, n]: the logits after each of the last `scored` ([lanes, scored, vocab]) and
        the probe layer's residuals ([lanes, n, H], or None)."""
        lanes, count = tokens.shape
        start = cache.length
        end = start + count
        cache.reserve(end)
        x = F.embedding(tokens, self._embed)
        positions = torch.arange(start, end, device=self.device).unsqueeze(0)
        cos, sin = self._rotary(x, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        mask = _offset_causal_mask(count, start, self.device) if count > 1 and start > 0 else None
        captured = None
        qk_heads = self.heads + self.kv_heads
        qk_width = qk_heads * self.head_dim
        for index, layer in enumerate(self._layers):
            h = _rms_norm(x, layer.input_norm, self.eps)
            # q and k side by side get RoPE in one pass: the same elementwise ops, half the op calls
            qkv = layer.qkv.fused(h)
            qk = qkv[..., :qk_width].view(lanes, count, qk_heads, self.head_dim).transpose(1, 2)
            qk = qk * cos + _rotate_half(qk) * sin
            q, k = qk[:, : self.heads], qk[:, self.heads :]
            v = qkv[..., qk_width:].view(lanes, count, self.kv_heads, self.head_dim).transpose(1, 2)
            cache.keys[index, :, :, start:end] = k
            cache.values[index, :, :, start:end] = v
            x = x + layer.o.fused(self._attend(q, cache.keys[index, :, :, :end], cache.values[index, :, :, :end], mask))
            h = _rms_norm(x, layer.post_norm, self.eps)
            gate, up = layer.gate_up(h)
            x = x + layer.down.fused(F.silu(gate) * up)
            if index == self.probe_layer:
                captured = x
            addition = additions.get(index)
            if addition is not None:
                x = x + addition
        cache.length = end
        last = _rms_norm(x[:, -scored:], self._final_norm, self.eps)
        return self._head.fused(last), captured

    def _attend(self, q, keys, values, mask):
        """Attention as transformers' SDPA path computes it, so that the numbers match."""
        count = q.shape[2]
        grouped = self.heads != self.kv_heads
        if mask is None and (not grouped or self._grouped_sdpa):
            out = F.scaled_dot_product_attention(
                q, keys, values, scale=self.scale, is_causal=count > 1, **({"enable_gqa": True} if grouped else {})
            )
        else:  # with a mask (or no GQA in this SDPA) transformers repeats the KV heads
            groups = self.heads // self.kv_heads
            keys = keys.repeat_interleave(groups, dim=1) if groups > 1 else keys
            values = values.repeat_interleave(groups, dim=1) if groups > 1 else values
            if mask is None and count > 1:
                mask = _offset_causal_mask(count, keys.shape[2] - count, q.device)
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=self.scale)
        return out.transpose(1, 2).reshape(q.shape[0], count, -1)


def _sdpa_groups_kv(device: torch.device) -> bool:
    """Whether SDPA takes grouped KV heads (`enable_gqa`, torch 2.5) on this device, as transformers uses it."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    return version >= (2, 5) and device.type in ("cpu", "cuda")


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # transformers' LlamaRMSNorm, op for op: the statistics in float32, the weight applied after the cast back
    wide = x.to(torch.float32)
    wide = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return weight * wide.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _offset_causal_mask(count: int, start: int, device) -> torch.Tensor:
    """[count, start + count] booleans: new token i sees every cached token and new tokens up to i."""
    rows = torch.arange(count, device=device)[:, None] + start
    return torch.arange(start + count, device=device)[None, :] <= rows
