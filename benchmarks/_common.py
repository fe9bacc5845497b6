"""Shared set-up for the benchmarks: the bundled model, a pack, and a machine description."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PACK = ROOT / "vectors" / "sonnet-proxy"
STORY_PROMPT = "Tell me a story about a lighthouse keeper."  # the console benchmarks' reply: a long one
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


def terminal_size(text: str) -> tuple[int, int]:
    """`--size 160x48`: columns, rows."""
    columns, rows = (int(part) for part in text.lower().split("x"))
    return columns, rows


def headless_events(pack: str, prompt: str, tokens: int, dtype: str = "auto") -> list[dict]:
    """`emolab run --json` in a process of its own, greedy: the events it printed, the end last."""
    command = [
        sys.executable,
        "-m",
        "emolab",
        "run",
        "--vectors",
        pack,
        "--prompt",
        prompt,
        "--max-tokens",
        str(tokens),
    ]
    command += ["--temperature", "0", "--dtype", dtype, "--json"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return [json.loads(line) for line in output.splitlines()]
