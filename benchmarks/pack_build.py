"""Pack-build speed: batched story generation and activation reading against a per-story loop.

Both sides run the same jobs of the shipped recipe (the real prompts, the real chat template, the
same sampling settings) in one process, so the ratio is what batching buys on this machine.

    python benchmarks/pack_build.py [--stories 32] [--new-tokens 96] [--batch-size 32] [--dtype auto]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from _common import machine

from emolab.core.models import load_model
from emolab.recipe.activations import mean_activations
from emolab.recipe.build import BuildSettings, corpus_plan, default_layers
from emolab.recipe.corpus import generate_replies, package_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=96, help="shorter than a real build's 160, to keep it quick")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    loaded = load_model("bundled", dtype=args.dtype)
    settings = BuildSettings(name="bench", emotions=tuple(package_lines("emotions_171.txt")), topics=20)
    plan = replace(corpus_plan(loaded, settings), max_new_tokens=args.new_tokens)
    jobs = [job for job in plan.jobs() if job.kind == "story"][: args.stories]
    prompts = [plan.prompt(job) for job in jobs]
    print(f"machine   {machine()}")
    print(f"model     {loaded.describe()}; {len(prompts)} stories of up to {args.new_tokens} new tokens")

    generate_replies(loaded, prompts[:2], replace(plan, max_new_tokens=4), seed=0)  # warm-up
    began = time.perf_counter()
    batched = []
    for start in range(0, len(prompts), args.batch_size):
        batched += generate_replies(loaded, prompts[start : start + args.batch_size], plan, seed=start)
    batched_seconds = time.perf_counter() - began
    began = time.perf_counter()
    single = [generate_replies(loaded, [prompt], plan, seed=number)[0] for number, prompt in enumerate(prompts)]
    single_seconds = time.perf_counter() - began
    print(
        f"generation, batches of {args.batch_size:<3} {len(prompts) / batched_seconds:6.2f} stories/s  "
        f"({batched_seconds:.1f} s)"
    )
    print(f"generation, one story at a time {len(prompts) / single_seconds:6.2f} stories/s  ({single_seconds:.1f} s)")
    print(f"batched / per-story             {single_seconds / batched_seconds:6.2f}x  (target >= 4)")

    stories = [text for text in batched + single if text.strip()]
    tokens = sum(len(loaded.tokenizer(text)["input_ids"]) for text in stories)
    layers = default_layers(loaded.num_layers)
    timings = {}
    for batch_size in (args.batch_size // 2, 1):
        began = time.perf_counter()
        mean_activations(loaded, stories, layers, start_token=settings.start_token, batch_size=batch_size)
        timings[batch_size] = time.perf_counter() - began
    for batch_size, seconds in timings.items():
        print(
            f"activations, batches of {batch_size:<3}  {tokens / seconds:7.0f} tokens/s  ({len(stories)} stories, "
            f"{len(layers)} layers, {seconds:.1f} s)"
        )
    print(f"batched / per-story             {timings[1] / timings[args.batch_size // 2]:6.2f}x")


if __name__ == "__main__":
    main()
