"""The console's event loop during a streamed reply: the worst stall, and the render rate.

A 5 ms ticker runs on the app's event loop; a stall is how late a tick fires. The render
rate counts repaints of the streaming turn per second. Real bundled model, shipped pack.

    python benchmarks/ui_stall.py [--tokens 120] [--pack PACK] [--size 160x48] [--decode-threads auto]

--decode-threads auto does what `emolab chat` does (all cores but one, see
emolab.core.devices.threads_beside_a_ui); `all` keeps torch's default; a number sets it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import torch

from _common import machine, pack_path

from emolab.core.devices import threads_beside_a_ui
from emolab.core.engine import Engine
from emolab.core.models import load_model
from emolab.core.pack import load_pack
from emolab.core.sampling import Sampling
from emolab.tui.app import EmolabApp
from emolab.tui.widgets.transcript import TurnWidget


async def measure(tokens: int, pack_override: str | None, size: tuple[int, int], decode_threads: str) -> None:
    pack = load_pack(pack_path(pack_override))
    loaded = load_model(pack.model_id)
    if decode_threads == "auto":
        threads = threads_beside_a_ui(loaded.device)
    else:
        threads = None if decode_threads == "all" else int(decode_threads)

    def loader(progress):
        return Engine(loaded, pack, sampling=Sampling(temperature=0, max_tokens=tokens), decode_threads=threads)

    app = EmolabApp(pack, loader, model_label=pack.model_id, thresholds={})
    renders = 0
    original_render = TurnWidget.render

    def counting_render(self):
        nonlocal renders
        renders += 1
        return original_render(self)

    TurnWidget.render = counting_render
    lateness: list[float] = []
    stalls: list[tuple[float, float]] = []  # (seconds since the ticker started, stall)
    async with app.run_test(size=size) as pilot:
        while not app.chat.link.ready:
            await pilot.pause(0.05)
        stop = False

        async def ticker():
            interval = 0.005
            expected = time.perf_counter() + interval
            while not stop:
                await asyncio.sleep(max(0.0, expected - time.perf_counter()))
                now = time.perf_counter()
                lateness.append(now - expected)
                if now - expected > 0.03:
                    stalls.append((now - t0, now - expected))
                expected = now + interval

        t0 = time.perf_counter()
        task = asyncio.get_running_loop().create_task(ticker())
        app.query_one("#prompt").value = "Tell me a story about a lighthouse keeper."
        started = time.perf_counter()
        await pilot.press("enter")  # the submit handler sets `generating` before this returns
        renders = 0
        while app.chat.link.generating:
            await pilot.pause(0.05)
        seconds = time.perf_counter() - started
        speed = app.chat.view.status.speed
        stop = True
        await task
    TurnWidget.render = original_render
    worst = max(lateness) * 1000
    p99 = statistics.quantiles(lateness, n=100)[98] * 1000
    print(f"machine        {machine()}")
    print(f"reply          {tokens} tokens max, {seconds:.1f} s, terminal {size[0]}x{size[1]}")
    print(f"event loop     worst stall {worst:.1f} ms, p99 {p99:.1f} ms, median {statistics.median(lateness) * 1000:.2f} ms "
          f"over {len(lateness)} ticks (target: worst < 50 ms)")
    print(f"render rate    {renders / seconds:.1f} transcript repaints/s")
    print(f"decode speed   {speed} in the console (the engine's own count, prompt excluded), "
          f"decode threads {threads or torch.get_num_threads()} of {torch.get_num_threads()}")
    for at, stall in stalls:
        print(f"  a stall of {stall * 1000:.0f} ms at {at:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--pack", default=None, help="another pack than vectors/sonnet-proxy")
    parser.add_argument("--size", default="160x48", help="terminal size, columns x rows")
    parser.add_argument("--decode-threads", default="auto", help="auto (as emolab chat), all, or a number")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="override sys.setswitchinterval (seconds) to compare GIL hand-over settings")
    arguments = parser.parse_args()
    if arguments.switch_interval is not None:
        sys.setswitchinterval(arguments.switch_interval)
    columns, rows = (int(part) for part in arguments.size.lower().split("x"))
    asyncio.run(measure(arguments.tokens, arguments.pack, (columns, rows), arguments.decode_threads))
