"""Choosing where the model runs and in what precision."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from emolab.core.errors import EmolabError

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` prefers CUDA, then Apple's MPS, then the CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise EmolabError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EmolabError(f"--device {requested}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise EmolabError(
            f"--device {requested}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
            f"(cuda:0 to cuda:{count - 1})"
        )
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise EmolabError(f"--device {requested}: MPS is not available on this machine")
    return device


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX, and oneDNN able to use it: bf16 matrix products in hardware.
    Elsewhere bf16 products run in software: slower than fp32 for reading, not always for decoding."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    hardware = any(getattr(torch.cpu, check, lambda: False)() for check in checks)
    return hardware and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cuda_has_native_bf16(device: torch.device) -> bool:
    """Compute capability 8.0 (Ampere) or newer on `cuda:N`, or on every visible GPU for plain `cuda`
    (which may spread the model over them). `torch.cuda.is_bf16_supported()` is no guide: it counts
    emulation (True on a T4 or a V100) and asks about the current GPU only."""
    indices = [device.index] if device.index is not None else range(torch.cuda.device_count())
    return all(torch.cuda.get_device_capability(index)[0] >= 8 for index in indices)


def mps_has_bf16() -> bool:
    """MPS runs bf16 from macOS 14 on."""
    try:
        return bool(torch.backends.mps.is_macos_or_newer(14, 0))
    except (AttributeError, RuntimeError):  # an older torch, or no MPS backend
        return False


def pick_dtype(requested: str, device: torch.device, *, decoding: bool = False) -> torch.dtype:
    """`auto` is bf16 on GPUs that do it in hardware, fp16 on older GPUs; on MPS bf16 where macOS
    supports it, else fp32 (fp16 overflows in Gemma and some Qwen models); on the CPU bf16 where the
    CPU does bf16 in hardware (decoding twice as fast as fp32; probe readouts agree at r > 0.9999,
    see BENCHMARKS.md), else fp32.

    decoding: the work is mostly writing a token at a time (chat, run), not reading long texts.
    Then a CPU without bf16 hardware gets bf16 too where it measures faster for that (AVX2 CPUs:
    twice as fast), though it reads prompts slower (3.6x for a long history, BENCHMARKS.md)."""
    if requested == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if cuda_has_native_bf16(device) else torch.float16
        if device.type == "mps":
            return torch.bfloat16 if mps_has_bf16() else torch.float32
        if cpu_has_native_bf16():
            return torch.bfloat16
        from emolab.core.lean_llama import bf16_decodes_faster

        return torch.bfloat16 if decoding and bf16_decodes_faster() else torch.float32
    try:
        return DTYPES[requested]
    except KeyError:
        raise EmolabError(f"unknown dtype {requested!r}: use auto, {', '.join(DTYPES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def threads_beside_a_ui(device: torch.device) -> int | None:
    """Intra-op threads for decoding beside the console's UI in the same process: all cores but one.

    On the CPU, two OpenMP threads on two cores beside a UI thread that takes the GIL half the
    time spend theirs waiting for each other at barriers; one thread on its own core decoded
    faster (benchmarks/ui_stall.py). None off the CPU, or when OMP_NUM_THREADS says what the user wants.
    """
    if device.type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, torch.get_num_threads() - 1)


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to `count` for a block (None: unchanged)."""
    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
