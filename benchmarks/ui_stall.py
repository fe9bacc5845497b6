"""The console against the headless engine, on the same machine, in one script, alternating.

Each round runs the real console path (`emolab chat`'s app, the engine in its child process)
through Textual's pilot, then `emolab run --json` headless, with the same pack, prompt, greedy
decoding and token budget. Per round it reports: the decode speed of both (the engine's own
count, prompt excluded), the console's worst event-loop stall, the window-ready and engine-ready
times, the console process's RSS, and
the share of a core the console process used while the reply streamed, and
the latency from a slider key press to the engine's answer (a round trip) and to the forward
pass that reads the new state (the pass in flight at the press finishes first). The slider is
focused 0.3 s before the key press, as a hand would.

A stall is a span in which the event loop does not look for input: from each return of its
selector to the next call (a key pressed then waits for the span's end), or a timer's wait that
ends late (the process was not scheduled). The loop's selector times itself; an earlier version
woke the loop every 5 ms to time a ticker, which cost the console process 3% of a core.

    python benchmarks/ui_stall.py [--tokens 120] [--rounds 3] [--pack PACK] [--dtype auto] [--size 160x48]

This process never imports torch (the console's does not); the machine line names torch's version.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before textual and emolab are imported: the window-ready time counts them

import argparse
import asyncio
import gc
import selectors
import statistics
from functools import partial

import psutil
from _common import STORY_PROMPT, headless_events, machine, pack_path, terminal_size

from emolab.cli.chat import console_app
from emolab.core.events import Token, TurnFinished
from emolab.core.pack_manifest import read_pack_manifest
from emolab.process.commands import EngineSpec

SLIDER = "calm"


class WatchedSelector(selectors.DefaultSelector):
    """The event loop's selector, timing the stalls between its waits while `watching`."""

    def __init__(self) -> None:
        super().__init__()
        self.watching = False
        self.stalls: list[float] = []
        self._returned: float | None = None

    def select(self, timeout: float | None = None):
        called = time.perf_counter()
        if self.watching and self._returned is not None:
            self.stalls.append(called - self._returned)  # busy: no input was read
        ready = super().select(timeout)
        self._returned = time.perf_counter()
        if self.watching and not ready and timeout is not None and timeout > 0:
            self.stalls.append(max(0.0, self._returned - called - timeout))  # woke late
        return ready


async def console_round(
    pack: str, model: str, tokens: int, dtype: str, size: tuple[int, int], first: bool, watch: WatchedSelector
) -> dict:
    spec = EngineSpec(
        pack=pack,
        model=model,
        dtype=dtype,
        sampling={"temperature": 0.0, "top_p": 0.9, "max_tokens": tokens, "seed": 0},
    )
    built = time.perf_counter()
    app = console_app(spec, record=False, thresholds={})
    seen: list = []
    async with app.run_test(size=size) as pilot:
        window = time.perf_counter() - (STARTED if first else built)
        view = app.chat.view
        show = view.show
        view.show = lambda events: seen.extend(events) or show(events)
        link = app.chat.link
        while not link.ready:
            await asyncio.sleep(0.02)
        engine_ready = time.perf_counter() - built
        watch.watching = True
        app.query_one("#prompt").value = STORY_PROMPT
        cpu, wall = time.process_time(), time.perf_counter()
        await pilot.press("enter")
        while sum(1 for event in seen if isinstance(event, Token) and event.source == "reply") < tokens // 3:
            if not link.generating:
                break
            await asyncio.sleep(0.05)  # a poll costs the console's process: not too often
        app.query_one(f"#slider-{SLIDER}").focus()
        await asyncio.sleep(0.3)  # the focus change redraws the footer: the key press is measured on its own
        answered: list[float] = []
        applied = app.chat.steering.applied
        app.chat.steering.applied = lambda change: answered.append(time.perf_counter()) or applied(change)
        pressed = time.perf_counter()
        await pilot.press("right")
        while link.generating:
            await asyncio.sleep(0.05)
        ui_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)
        watch.watching = False
        rss = psutil.Process().memory_info().rss
        child_rss = psutil.Process(link.child.pid).memory_info().rss
        origin = link.continuity.origin
        await pilot.press("ctrl+q")
    finished = next(event for event in reversed(seen) if isinstance(event, TurnFinished))
    return {
        "speed": finished.tokens_per_second,
        "worst": max(watch.stalls) * 1000,
        "p99": statistics.quantiles(watch.stalls, n=100)[98] * 1000,
        "ui_cpu": ui_cpu,
        "window": window,
        "engine": engine_ready,
        "rss": rss,
        "child_rss": child_rss,
        "round_trip": (answered[0] - pressed) * 1000 if answered else float("nan"),
        **steering_latency(seen, pressed, origin),
    }


def steering_latency(events: list, pressed: float, origin: float) -> dict:
    """The engine reads the steering just before each forward pass; the pass fed token k-1 chooses token k,
    whose event carries that state. So token k was chosen when token k-1's event was made (its t), and
    its state was read just after token k-2's. `latency_tokens` counts the tokens chosen after the press
    under the old state: the forward pass in flight at the press cannot change, so 1 is the floor."""
    replies = [event for event in events if isinstance(event, Token) and event.source == "reply"]
    before = next((event.steering_version for event in replies if origin + event.t > pressed), None)
    first = next(
        (k for k, event in enumerate(replies) if origin + event.t > pressed and event.steering_version != before), None
    )
    if first is None or first < 2:
        return {"latency_ms": float("nan"), "latency_tokens": -1}
    read_at = origin + replies[first - 2].t
    stale = sum(1 for k in range(1, first) if origin + replies[k - 1].t > pressed)
    return {"latency_ms": (read_at - pressed) * 1000, "latency_tokens": stale}


def headless_round(pack: str, tokens: int, dtype: str) -> float:
    return headless_events(pack, STORY_PROMPT, tokens, dtype)[-1]["tokens_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pack", default=None, help="another pack than vectors/sonnet-proxy")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--size", default="160x48", help="terminal size, columns x rows")
    arguments = parser.parse_args()
    size = terminal_size(arguments.size)
    pack = str(pack_path(arguments.pack))
    model = read_pack_manifest(pack).model_id
    print(f"machine        {machine()}")
    print(
        f"reply          {arguments.tokens} tokens max, greedy, dtype {arguments.dtype}, terminal {arguments.size}; "
        f"console then headless, alternating, {arguments.rounds} rounds"
    )
    consoles, headless = [], []
    for number in range(arguments.rounds):
        watch = WatchedSelector()
        with asyncio.Runner(loop_factory=partial(asyncio.SelectorEventLoop, watch)) as runner:
            result = runner.run(console_round(pack, model, arguments.tokens, arguments.dtype, size, number == 0, watch))
        consoles.append(result)
        gc.unfreeze()  # the chat froze the heap at engine ready: the last app would stay in the next round's RSS
        gc.collect()
        headless.append(headless_round(pack, arguments.tokens, arguments.dtype))
        print(
            f"round {number + 1}        console {result['speed']:.1f} tok/s, headless {headless[-1]:.1f} tok/s "
            f"({result['speed'] / headless[-1]:.0%}); worst stall {result['worst']:.1f} ms, "
            f"p99 of the loop's turns {result['p99']:.1f} ms; UI process CPU {result['ui_cpu']:.0%} of a core;"
            f" window {result['window']:.2f} s{' (from the script start, imports included)' if number == 0 else ''},"
            f" engine ready {result['engine']:.1f} s; UI RSS {result['rss'] / 2**20:.0f} MB (engine "
            f"{result['child_rss'] / 2**20:.0f} MB); key → engine's reply {result['round_trip']:.1f} ms, "
            f"key → the "
            f"forward pass that reads it {result['latency_ms']:.1f} ms, {result['latency_tokens']} token(s) "
            f"chosen after the press under the old state"
        )
    speed, base = statistics.median(r["speed"] for r in consoles), statistics.median(headless)
    print(f"median         console {speed:.1f} tok/s vs headless {base:.1f} tok/s: {speed / base:.0%} (target >= 90%)")
    print(f"worst stall    {max(r['worst'] for r in consoles):.1f} ms over all rounds (target < 50 ms)")
    print(
        f"window ready   {consoles[0]['window']:.2f} s cold (target < 1 s); UI RSS max "
        f"{max(r['rss'] for r in consoles) / 2**20:.0f} MB (target < 150 MB)"
    )
    print(
        f"key→steering   round trip max {max(r['round_trip'] for r in consoles):.1f} ms; to the forward pass that "
        f"reads it max {max(r['latency_ms'] for r in consoles):.1f} ms, "
        f"max {max(r['latency_tokens'] for r in consoles)} token(s) (target: at most one)"
    )


if __name__ == "__main__":
    main()
