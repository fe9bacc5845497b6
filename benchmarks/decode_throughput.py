"""Decode throughput: plain `model.generate` against the emolab engine, in one process.

    (a) transformers `model.generate`, greedy
    (b) the emolab engine, no pack
    (c) the emolab engine, shipped pack, 8 emotions steering, all probes read every token

Same model, prompt and greedy settings; runs alternate (a, b, c, a, b, c, …) so that machine
noise hits all three alike; the median of each is reported, with the ratios b/a and c/a.

    python benchmarks/decode_throughput.py [--tokens 200] [--repeats 3] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import machine, pack_path

from emolab.core.engine import Engine
from emolab.core.events import TurnFinished
from emolab.core.models import load_model
from emolab.core.pack import load_pack
from emolab.core.sampling import Sampling

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
STEERING = {"desperate": 0.05, "calm": 0.05, "happy": 0.05, "sad": -0.05, "afraid": 0.05, "angry": -0.05,
            "loving": 0.05, "hostile": -0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--pack", default=None)
    args = parser.parse_args()

    pack = load_pack(pack_path(args.pack))
    loaded = load_model(pack.model_id, dtype=args.dtype)
    sampling = Sampling(temperature=0, max_tokens=args.tokens)

    def engine_run(with_pack: bool) -> tuple[float, int]:
        engine = Engine(loaded, pack if with_pack else None, sampling=sampling)
        if with_pack:
            engine.steering.update(STEERING)
        engine._eos_ids = set()  # always decode the full budget, as generate does below
        for event in engine.chat(PROMPT):
            if isinstance(event, TurnFinished):
                return event.tokens_per_second, event.reply_tokens
        raise RuntimeError("no end event")

    prompt_ids = None

    def generate_run() -> tuple[float, int]:
        nonlocal prompt_ids
        if prompt_ids is None:
            text = loaded.tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}],
                                                        add_generation_prompt=True, tokenize=False)
            prompt_ids = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        def timed(new_tokens: int) -> float:
            with torch.inference_mode():
                began = time.perf_counter()
                loaded.model.generate(prompt_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                      do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
                return time.perf_counter() - began

        # the prompt and the first token are excluded, as in the engine's tokens/s
        seconds = timed(args.tokens) - timed(1)
        return (args.tokens - 1) / seconds, args.tokens

    runs = {"a": [], "b": [], "c": []}
    engine_run(True)  # warm-up
    for _ in range(args.repeats):
        runs["a"].append(generate_run()[0])
        runs["b"].append(engine_run(False)[0])
        runs["c"].append(engine_run(True)[0])
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"machine   {machine()}")
    print(f"model     {loaded.describe()}, {args.tokens} greedy tokens, {args.repeats} alternating runs each")
    print(f"(a) generate                         {median['a']:6.1f} tok/s   runs {[round(v, 1) for v in runs['a']]}")
    print(f"(b) engine, no pack                  {median['b']:6.1f} tok/s   runs {[round(v, 1) for v in runs['b']]}")
    print(f"(c) engine, pack, 8 steering, probes {median['c']:6.1f} tok/s   runs {[round(v, 1) for v in runs['c']]}")
    print(f"b/a {median['b'] / median['a']:.2f}   c/a {median['c'] / median['a']:.2f}")


if __name__ == "__main__":
    main()
