"""Start-up, time to first token, long-prompt processing, and peak memory.

    python benchmarks/startup_latency_memory.py [--cold] [--dtype auto]

- start-up: from process start to a ready engine (model and pack loaded), in a fresh process,
  with the model cache warm (and with --cold, once, from an empty cache, GGUF conversion included);
- time to first token for a short prompt, and prompt processing for a 1,000-token history;
- peak RSS of a process that chats 500 tokens with the shipped pack, steering and all probes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, machine, pack_path

CHILD = r"""
import json, resource, sys, time
started = float(sys.argv[1])
sys.path.insert(0, sys.argv[3])
from emolab.core.engine import Engine
from emolab.core.events import Token
from emolab.core.models import load_model
from emolab.core.pack import load_pack
from emolab.core.sampling import Sampling
pack = load_pack(sys.argv[2])
loaded = load_model(pack.model_id, dtype=sys.argv[5], decoding=True)  # auto: what chat and run pick
engine = Engine(loaded, pack, sampling=Sampling(temperature=0, max_tokens=int(sys.argv[4])))
ready = time.time() - started
engine.steering.update({"calm": 0.1, "happy": 0.1, "sad": -0.1, "afraid": 0.05, "angry": -0.05,
                        "loving": 0.05, "hostile": -0.05, "desperate": 0.05})
engine._eos_ids = set()
began = time.perf_counter()
first = None
for event in engine.chat("Hello! Tell me about your day."):
    if isinstance(event, Token) and event.source == "reply" and first is None:
        first = time.perf_counter() - began
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ready": ready, "first_token": first, "peak_mb": peak_mb}))
"""


def child(max_tokens: int, dtype: str, env=None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(time.time()), str(pack_path()), str(ROOT), str(max_tokens), dtype],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def long_prompt_seconds(dtype: str) -> float:
    sys.path.insert(0, str(ROOT))
    from emolab.core.engine import Engine
    from emolab.core.events import TurnStarted
    from emolab.core.models import load_model
    from emolab.core.pack import load_pack
    from emolab.core.sampling import Sampling

    pack = load_pack(pack_path())
    engine = Engine(
        load_model(pack.model_id, dtype=dtype, decoding=True), pack, sampling=Sampling(temperature=0, max_tokens=1)
    )
    history = " ".join(f"Sentence number {i} is about trains, weather and the sea." for i in range(80))
    began = time.perf_counter()
    prompt_tokens = 0
    for event in engine.chat(history):
        if isinstance(event, TurnStarted):
            prompt_tokens = event.prompt_tokens
    return time.perf_counter() - began, prompt_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="also measure one start from an empty cache")
    parser.add_argument("--dtype", default="auto", help="the model's dtype (auto: what emolab chat picks)")
    args = parser.parse_args()
    print(f"machine        {machine()}, dtype {args.dtype}")
    child(1, args.dtype)  # make sure the cache is warm
    warm = [child(1, args.dtype)["ready"] for _ in range(3)]
    print(f"warm start     {min(warm):.2f} s to a ready engine (best of 3: {', '.join(f'{w:.2f}' for w in warm)})")
    if args.cold:
        with tempfile.TemporaryDirectory() as empty:
            cold = child(1, args.dtype, env={**os.environ, "EMOLAB_CACHE": empty})["ready"]
        print(f"cold start     {cold:.1f} s (GGUF conversion included)")
    chat = child(500, args.dtype)
    print(f"first token    {chat['first_token'] * 1000:.0f} ms for a short prompt (8 emotions steering, all probes)")
    seconds, tokens = long_prompt_seconds(args.dtype)
    print(
        f"long prompt    {tokens} tokens processed in {seconds:.2f} s ({tokens / seconds:.0f} tokens/s), "
        "readouts included"
    )
    print(f"peak memory    {chat['peak_mb']:.0f} MB RSS over a 500-token chat")


if __name__ == "__main__":
    main()
