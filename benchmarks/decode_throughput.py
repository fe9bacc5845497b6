"""Decode throughput: plain `model.generate` against the emolab engine, in one process.

    (a)  transformers `model.generate`, greedy, fp32: the baseline of issue 6
    (a') the same in the engine's dtype (bf16 where the CPU does bf16 in hardware)
    (b)  the emolab engine, no pack (its lean decoder)
    (bt) the same through transformers' forward and hooks: what the lean decoder saves
    (p)  the engine with the shipped pack: all 171 probes read every token, no steering
    (c)  the engine with the shipped pack, 8 emotions steering, all probes read every token
    (c32) (c) in fp32, to separate the dtype from the loop
    (c32p) (c32) with the fp32 weights packed for oneDNN, whatever this CPU's measurement chose
    (c32u) (c32) on plain fp32 weights (`F.linear`), whatever this CPU's measurement chose
    (l)  llama.cpp on the same Q4_1 GGUF file, 2 threads, if llama-cpp-python is installed
         (`pip install llama-cpp-python` builds it from source); skipped with a note otherwise

Same prompt and greedy settings; runs alternate (a, a', b, p, c, c32, a, …) so that machine
noise hits all alike; the median of each is reported, with the ratios.

    python benchmarks/decode_throughput.py [--tokens 200] [--repeats 3] [--dtype auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import machine, pack_path

from emolab.core import lean_llama
from emolab.core.devices import dtype_name
from emolab.core.engine import Engine
from emolab.core.events import TurnFinished
from emolab.core.models import DEFAULT_BUNDLED, LoadedModel, load_model
from emolab.core.pack import load_pack
from emolab.core.sampling import Sampling

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
STEERING = {
    "desperate": 0.05,
    "calm": 0.05,
    "happy": 0.05,
    "sad": -0.05,
    "afraid": 0.05,
    "angry": -0.05,
    "loving": 0.05,
    "hostile": -0.05,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto", help="the engine's dtype (auto: what emolab chat picks)")
    parser.add_argument("--pack", default=None)
    args = parser.parse_args()

    pack = load_pack(pack_path(args.pack))
    fp32 = load_model(pack.model_id, dtype="float32")
    loaded = load_model(pack.model_id, dtype=args.dtype, decoding=True)  # auto: what chat and run pick
    sampling = Sampling(temperature=0, max_tokens=args.tokens)

    def engine_run(model: LoadedModel, with_pack: bool, steering: bool, decoder: str = "auto") -> float:
        engine = Engine(model, pack if with_pack else None, sampling=sampling, decoder=decoder)
        if steering:
            engine.steering.update(STEERING)
        engine._eos_ids = set()  # always decode the full budget, as generate does below
        for event in engine.chat(PROMPT):
            if isinstance(event, TurnFinished):
                return event.tokens_per_second
        raise RuntimeError("no end event")

    def generate_run(model: LoadedModel) -> float:
        text = model.tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
        )
        prompt_ids = model.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]

        def timed(new_tokens: int) -> float:
            with torch.inference_mode():
                began = time.perf_counter()
                model.model.generate(
                    prompt_ids,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=model.tokenizer.pad_token_id,
                )
                return time.perf_counter() - began

        # the prompt and the first token are excluded, as in the engine's tokens/s
        return (args.tokens - 1) / (timed(args.tokens) - timed(1))

    def llama_cpp_contender():
        """llama.cpp's greedy decode speed, prompt excluded, or None with the reason it is skipped."""
        try:
            from llama_cpp import Llama
        except ImportError:
            return None, "llama-cpp-python is not installed"
        gguf = DEFAULT_BUNDLED.locate()
        if pack.model_id != DEFAULT_BUNDLED.reference or gguf is None:
            return None, "the pack's model is not the bundled GGUF"
        llm = Llama(model_path=str(gguf), n_threads=torch.get_num_threads(), n_ctx=1024, verbose=False)
        text = fp32.tokenizer.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
        )
        no_end = {llm.token_eos(): -1e9}

        def timed(new_tokens: int) -> float:
            llm.reset()
            began = time.perf_counter()
            llm.create_completion(text, max_tokens=new_tokens, temperature=0.0, logit_bias=no_end)
            return time.perf_counter() - began

        return (lambda: (args.tokens - 1) / (timed(args.tokens) - timed(1))), ""

    engine_dtype = dtype_name(loaded.dtype)
    contenders = {
        "a": ("generate, float32", lambda: generate_run(fp32)),
        "a'": (f"generate, {engine_dtype}", lambda: generate_run(loaded)),
        "b": (f"engine, no pack, {engine_dtype}", lambda: engine_run(loaded, False, False)),
        "bt": (
            f"engine, no pack, {engine_dtype}, transformers fwd",
            lambda: engine_run(loaded, False, False, "transformers"),
        ),
        "p": (f"engine, 171 probes, {engine_dtype}", lambda: engine_run(loaded, True, False)),
        "c": (f"engine, probes + 8 steering, {engine_dtype}", lambda: engine_run(loaded, True, True)),
        "c32": ("engine, probes + 8 steering, float32", lambda: engine_run(fp32, True, True)),
    }
    if torch.backends.mkldnn.is_available():
        # each its own weights: packing drops the plain copies, after which a model runs packed only
        packed, plain = (load_model(pack.model_id, dtype="float32") for _ in range(2))
        contenders["c32p"] = ("(c32), fp32 weights packed for oneDNN", lambda: forced_run(packed, True))
        contenders["c32u"] = ("(c32), plain fp32 weights (F.linear)", lambda: forced_run(plain, False))

    def forced_run(model: LoadedModel, pack_weights: bool) -> float:
        chosen = lean_llama.can_prepack
        lean_llama.can_prepack = lambda device, dtype: pack_weights
        try:
            return engine_run(model, True, True)
        finally:
            lean_llama.can_prepack = chosen

    llama_run, skipped = llama_cpp_contender()
    if llama_run is not None:
        contenders["l"] = ("llama.cpp, Q4_1 GGUF", llama_run)
    runs: dict[str, list[float]] = {key: [] for key in contenders}
    engine_run(loaded, True, True)  # warm-up
    generate_run(fp32)
    for _ in range(args.repeats):
        for key, (_, run) in contenders.items():
            runs[key].append(run())
    median = {key: statistics.median(values) for key, values in runs.items()}
    print(f"machine   {machine()}")
    print(f"model     {pack.model_id}, {args.tokens} greedy tokens, {args.repeats} alternating runs each")
    print(f"fp32      weights packed for oneDNN: {lean_llama.onednn_packs(torch.float32)} (measured on this CPU)")
    for key, (label, _) in contenders.items():
        print(
            f"({key}){' ' * max(1, 4 - len(key))}{label:<42} {median[key]:6.1f} tok/s   "
            f"runs {[round(v, 1) for v in runs[key]]}"
        )
    ratio = {key: median[key] / median["a"] for key in median}
    same_dtype = median["c"] / median["a'"]
    print(
        f"b/a {ratio['b']:.2f}   b/bt {median['b'] / median['bt']:.2f}   c/a {ratio['c']:.2f} (target >= 2)   "
        f"c/a' {same_dtype:.2f}   c32/a {ratio['c32']:.2f}"
    )
    if "l" in median:
        print(f"c/llama.cpp {median['c'] / median['l']:.2f} (stretch goal >= 0.5)")
    else:
        print(f"(l)   llama.cpp skipped: {skipped}")
    step_ms = 1000 / median["b"]
    probe_ms, steer_ms = per_token_costs(loaded, pack)
    print(
        f"per step  {step_ms:.1f} ms without a pack; timed alone: reading 171 probes {probe_ms * 1000:.0f} us "
        f"({probe_ms / step_ms:.1%}, target < 2%), adding 8 emotions' steering {steer_ms * 1000:.0f} us "
        f"({steer_ms / step_ms:.1%}, target < 1%)"
    )
    print(
        f"          (differences of the medians above, noisier: probes {1000 / median['p'] - step_ms:+.1f} ms, "
        f"steering {1000 / median['c'] - 1000 / median['p']:+.1f} ms)"
    )


def per_token_costs(model: LoadedModel, pack, calls: int = 2000) -> tuple[float, float]:
    """Milliseconds per token for what a pack adds to a decode step, each timed on its own.

    Reading the probes: one [1, H] residual to 171 z-scores on the CPU. Steering: fetching the
    pre-summed vectors for an unchanged snapshot, and adding them to the residual at each steered layer.
    """
    engine = Engine(model, pack)
    engine.steering.update(STEERING)
    residual = torch.randn(1, 1, model.hidden_size, dtype=model.dtype)

    def timed(work) -> float:
        work()
        began = time.perf_counter()
        for _ in range(calls):
            work()
        return (time.perf_counter() - began) / calls * 1000

    def steer() -> None:
        for vector in engine._vectors.for_snapshot(engine.steering.snapshot()).values():
            residual + vector

    with torch.inference_mode():
        return timed(lambda: engine.probe.read(residual[0])), timed(steer)


if __name__ == "__main__":
    main()
