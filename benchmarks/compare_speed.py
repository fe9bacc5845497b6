"""Compare speed: one message answered twice (sliders vs no steering), batched against interleaved.

    (s) one reply, for reference: a compare done as two regenerations in a row runs at this speed
    (b) a compare, batched: both lanes in one forward pass of batch 2 per step
    (i) a compare, interleaved: two KV caches, one batch-1 forward pass each per step

The bundled model with the shipped pack, greedy, every lane writing the full budget (EOS off),
all 171 probes read per token. Runs alternate (s, b, i, s, …); the median of each is reported as
tokens per second, both lanes' tokens counted.

    python benchmarks/compare_speed.py [--tokens 100] [--repeats 3] [--dtype auto] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import machine, pack_path

from emolab.core.devices import dtype_name
from emolab.core.engine import Engine
from emolab.core.events import CompareFinished, TurnFinished
from emolab.core.models import load_model
from emolab.core.pack import load_pack
from emolab.core.sampling import Sampling

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100, help="per lane")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="decode threads (default: the process's)")
    parser.add_argument("--pack", default=None)
    args = parser.parse_args()

    pack = load_pack(pack_path(args.pack))
    loaded = load_model(pack.model_id, dtype=args.dtype, decoding=True)  # auto: what chat and run pick
    engine = Engine(loaded, pack, sampling=Sampling(temperature=0, max_tokens=args.tokens), decode_threads=args.threads)
    engine._eos_ids = set()
    engine.steering.update({"happy": 0.1, "calm": 0.05})
    list(engine.chat(PROMPT))  # warm up, and a reply to answer again

    def single() -> float:
        return next(e.tokens_per_second for e in engine.regenerate() if isinstance(e, TurnFinished))

    def compare(mode: str) -> float:
        return next(e.tokens_per_second for e in engine.compare(mode=mode) if isinstance(e, CompareFinished))

    runs = {"single reply": [], "compare, batched": [], "compare, interleaved": []}
    for _ in range(args.repeats):
        runs["single reply"].append(single())
        runs["compare, batched"].append(compare("batched"))
        runs["compare, interleaved"].append(compare("interleaved"))

    print(machine())
    print(
        f"model {loaded.reference} · {dtype_name(loaded.dtype)} · decoder {engine.decoder.name} "
        f"({engine.decoder.matmul}) · {args.tokens} tokens per lane · decode threads "
        f"{args.threads or torch.get_num_threads()} · median of {args.repeats}"
    )
    single_speed = statistics.median(runs["single reply"])
    for name, speeds in runs.items():
        median = statistics.median(speeds)
        print(
            f"  {name:<22} {median:6.1f} tok/s   ({median / single_speed:.2f}× one reply; "
            f"runs {', '.join(f'{s:.1f}' for s in speeds)})"
        )


if __name__ == "__main__":
    main()
