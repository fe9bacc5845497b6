"""The two matrix-vector paths of the lean decoder, on SmolLM2-135M's shapes, without the model.

    python benchmarks/matvec_paths.py

1. Speed: batch-1 products over 64 MB of MLP weights (more than the caches, as a decode step
   streams), `F.linear` on plain weights in fp32, bf16 and fp16, and oneDNN on packed fp32 weights:
   milliseconds per pass and the GB/s that implies.
2. Bits: for each projection shape, the row counts from 1 to 69 (and a few longer prompts) at
   which oneDNN's packed bf16 products differ from `F.linear`'s in any bit, on random inputs;
   skipped where oneDNN cannot pack bf16 at all.

Run it under ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 (an
AVX2-only CPU's kernels) or ONEDNN_MAX_CPU_ISA=AVX512_CORE (AVX512 without bf16) to compare.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F
from _common import machine

MLP = ((1536, 576), (576, 1536))
PROJECTIONS = {
    "q, k, v": (960, 576),
    "o": (576, 576),
    "gate, up": (3072, 576),
    "down": (576, 1536),
    "head": (49152, 576),
}
ROWS = [*range(1, 70), 100, 128, 200, 500]


def pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight, 1)


def packed_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [None], "")


def seconds_per_pass(weights: list[torch.Tensor], linear, dtype: torch.dtype, passes: int = 5) -> float:
    """One batch-1 product per weight, median over passes; the first pass only warms."""
    inputs = {columns: torch.ones(1, 1, columns, dtype=dtype) for _, columns in MLP}
    columns_of = [columns for _ in range(len(weights) // len(MLP)) for _, columns in MLP]
    timings = []
    for _ in range(passes + 1):
        began = time.perf_counter()
        for weight, columns in zip(weights, columns_of, strict=True):
            linear(inputs[columns], weight)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings[1:])


def main() -> None:
    print(f"machine  {machine()}")
    print(f"isa      ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(native)')}")
    pairs = 64 * 2**20 // (4 * sum(rows * columns for rows, columns in MLP))
    fp32 = [torch.empty(shape).uniform_(-1, 1) for _ in range(pairs) for shape in MLP]
    megabytes = sum(w.numel() for w in fp32) * 4 / 2**20
    print(f"speed    batch-1 products over {megabytes:.0f} MB of fp32 weights ({len(fp32)} matrices), median of 5")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        weights = [w.to(dtype) for w in fp32]
        gigabytes = sum(w.numel() * w.element_size() for w in weights) / 2**30
        took = seconds_per_pass(weights, F.linear, dtype)
        print(
            f"  F.linear, {str(dtype).removeprefix('torch.'):<13} {took * 1000:7.2f} ms  {gigabytes / took:5.1f} GB/s"
        )
    if torch.backends.mkldnn.is_available():
        took = seconds_per_pass([pack(w) for w in fp32], packed_linear, torch.float32)
        print(f"  oneDNN packed, float32 {took * 1000:7.2f} ms  {megabytes / 1024 / took:5.1f} GB/s")

    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        print("bits     skipped: oneDNN cannot pack bf16 on this CPU (needs AVX512BW+VL+DQ or AVX-NE-CONVERT)")
        return
    print("bits     row counts at which packed bf16 differs from F.linear in some bit (random inputs)")
    generator = torch.Generator().manual_seed(0)
    for name, shape in PROJECTIONS.items():
        weight = torch.randn(shape, generator=generator).to(torch.bfloat16)
        packed_weight = pack(weight)
        differ = []
        for rows in ROWS:
            x = torch.randn(1, rows, shape[1], generator=generator).to(torch.bfloat16)
            if not torch.equal(F.linear(x, weight), packed_linear(x, packed_weight)):
                differ.append(rows)
        print(f"  {name:<9} {shape[0]:>5} x {shape[1]:<5} {', '.join(map(str, differ)) if differ else 'none'}")


if __name__ == "__main__":
    main()
