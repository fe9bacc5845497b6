"""Shared set-up for the benchmarks: the bundled model, a pack, and a machine description."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PACK = ROOT / "vectors" / "sonnet-proxy"
sys.path.insert(0, str(ROOT))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if "torch" in sys.modules:  # not imported for it: ui_stall measures a process that must not hold torch
        torch = sys.modules["torch"]
        library = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    else:
        from importlib.metadata import version

        library = f"torch {version('torch')}"
    return f"{cpu}, {os.cpu_count()} cores, {library}, Python {platform.python_version()}"


def pack_path(override: str | None = None) -> Path:
    if override:
        return Path(override)
    if not SHIPPED_PACK.is_dir():
        raise SystemExit(f"{SHIPPED_PACK} is missing: the benchmarks measure the shipped pack")
    return SHIPPED_PACK
