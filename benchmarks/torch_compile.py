"""Does `torch.compile` pay back on this machine? A greedy decode loop with a static KV cache,
eager against inductor-compiled, in fp32 and in the engine's dtype, in one process.

Reports the compile time (inductor caches compiled kernels on disk, so a second run of this
script shows the warm-cache time), tokens/s of each, and how many tokens a chat would need to
generate before the compile time is paid back. The engine does not compile unless this says it pays.

    python benchmarks/torch_compile.py [--tokens 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import machine
from transformers import StaticCache

from emolab.core.devices import dtype_name
from emolab.core.models import load_model

PROMPT = "Tell me a story about a lighthouse keeper."
CACHE_LENGTH = 512


def decode(loaded, step, tokens: int) -> tuple[float, list[int]]:
    model = loaded.model
    text = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
    )
    ids = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    cache = StaticCache(config=model.config, max_cache_len=CACHE_LENGTH)  # one shape: no recompiles
    with torch.inference_mode():
        length = ids.shape[1]
        out = model(
            input_ids=ids, past_key_values=cache, cache_position=torch.arange(length), use_cache=True, logits_to_keep=1
        )
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        produced = [int(token)]
        began = time.perf_counter()
        for offset in range(tokens):
            position = torch.tensor([length + offset])
            token = step(token, cache, position)[:, -1].argmax(-1, keepdim=True)
            produced.append(int(token))
        return tokens / (time.perf_counter() - began), produced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine   {machine()}")
    for dtype in dict.fromkeys(["float32", dtype_name(load_model("bundled").dtype)]):
        loaded = load_model("bundled", dtype=dtype)
        model = loaded.model

        def eager(token, cache, position, model=model):
            return model(
                input_ids=token,
                past_key_values=cache,
                cache_position=position,
                position_ids=position[None],
                use_cache=True,
            ).logits

        compiled_forward = torch.compile(model.forward, dynamic=False)

        def compiled(token, cache, position, compiled_forward=compiled_forward):
            return compiled_forward(
                input_ids=token,
                past_key_values=cache,
                cache_position=position,
                position_ids=position[None],
                use_cache=True,
            ).logits

        began = time.perf_counter()
        _, compiled_tokens = decode(loaded, compiled, 4)
        compile_seconds = time.perf_counter() - began
        speeds = {"eager": [], "compiled": []}
        outputs = {}
        for _ in range(args.repeats):
            for name, step in (("eager", eager), ("compiled", compiled)):
                speed, outputs[name] = decode(loaded, step, args.tokens)
                speeds[name].append(speed)
        eager_speed, compiled_speed = (statistics.median(speeds[name]) for name in ("eager", "compiled"))
        saved_per_token = 1 / eager_speed - 1 / compiled_speed
        payback = f"{compile_seconds / saved_per_token:.0f} tokens" if saved_per_token > 0 else "never (slower)"
        same = "identical" if outputs["eager"] == outputs["compiled"] else "DIFFERENT"
        print(
            f"{dtype:<9} compile + first steps {compile_seconds:5.1f} s; eager {eager_speed:5.1f} tok/s "
            f"{[round(v, 1) for v in speeds['eager']]}, compiled {compiled_speed:5.1f} tok/s "
            f"{[round(v, 1) for v in speeds['compiled']]}; ratio {compiled_speed / eager_speed:.2f}; "
            f"pays back after {payback}; greedy tokens {same}"
        )


if __name__ == "__main__":
    main()
