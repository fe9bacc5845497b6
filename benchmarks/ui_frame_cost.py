"""What the console's own process spends to show a streaming reply, with the engine idle.

`ui_stall.py` measures the console against headless, but its engine and its UI share the CPU, so
the UI's cost there moves with the engine's speed and the machine's noise. This script runs the
real chat screen (`emolab chat`'s app, its engine child loaded and idle) and posts it a recorded
session's events as the child would: one batch every 100 ms, at a chosen token rate. What it
prints is the UI process's CPU: share of a core, per batch, per frame, and where frames went.

    python benchmarks/ui_frame_cost.py [--rate 35] [--rounds 3] [--session sessions/demo-desperation-builds.json]
                                       [--repeat 3] [--size 160x48] [--profile]

The session plays `--repeat` times over, so that the transcript fills and scrolls (a 160×48
transcript holds about 45 lines, the demo about 40).

`--profile` adds a cProfile of the streaming part of the last round (it slows it: read the
shares, not the times).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import math
import pstats
import statistics
import time
from pathlib import Path

from _common import ROOT, machine, pack_path, terminal_size

from emolab.cli.chat import console_app
from emolab.core.events import Token
from emolab.core.pack_manifest import read_pack_manifest
from emolab.core.session import load_session
from emolab.core.session.format import session_events
from emolab.process.commands import BATCH_SECONDS, EngineSpec
from emolab.tui.worker import EngineEvents, GenerationEnded

DEMO = ROOT / "sessions" / "demo-desperation-builds.json"


def batches(events: list, rate: float) -> list[list]:
    """The events cut as the child cuts them: a batch per BATCH_SECONDS, `rate` tokens a second."""
    per_batch = max(1, math.ceil(rate * BATCH_SECONDS))
    out, batch, tokens = [], [], 0
    for event in events:
        batch.append(event)
        if isinstance(event, Token):
            tokens += 1
            if tokens == per_batch:
                out.append(batch)
                batch, tokens = [], 0
    if batch:
        out.append(batch)
    return out


async def stream_round(spec: EngineSpec, events: list, rate: float, size: tuple[int, int], profile: bool) -> dict:
    app = console_app(spec, record=False, thresholds={})
    async with app.run_test(size=size) as pilot:
        while not app.chat.link.ready:
            await asyncio.sleep(0.02)
        await pilot.pause(0.5)
        screen = app.chat
        frames, layouts = [0], [0]  # counted by wrapping two of Textual 8's private Screen methods
        refresh, relayout = screen._compositor_refresh, screen._refresh_layout
        screen._compositor_refresh = lambda: frames.__setitem__(0, frames[0] + 1) or refresh()
        screen._refresh_layout = lambda *a, **k: layouts.__setitem__(0, layouts[0] + 1) or relayout(*a, **k)
        profiler = cProfile.Profile() if profile else None
        cut = batches(events, rate)
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        screen._generating()  # as sending a message does: the prompt's cursor stops blinking
        due = time.perf_counter()
        for batch in cut:
            screen.post_message(EngineEvents(batch))
            due += BATCH_SECONDS
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        screen.post_message(GenerationEnded(None, None))
        await pilot.pause(0.3)  # the throttled draws' last timers
        if profiler:
            profiler.disable()
        used, elapsed = time.process_time() - cpu, time.perf_counter() - wall
        await pilot.press("ctrl+q")
    return {
        "cpu": used / elapsed,
        "per_batch": used / len(cut) * 1000,
        "per_frame": used / max(1, frames[0]) * 1000,
        "batches": len(cut),
        "frames": frames[0],
        "layouts": layouts[0],
        "profile": profiler,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=35.0, help="tokens a second")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--session", default=str(DEMO))
    parser.add_argument("--pack", default=None, help="another pack than vectors/sonnet-proxy")
    parser.add_argument("--repeat", type=int, default=3, help="play the session this many times over")
    parser.add_argument("--size", default="160x48", help="terminal size, columns x rows")
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    size = terminal_size(arguments.size)
    pack = str(pack_path(arguments.pack))
    manifest = read_pack_manifest(pack)
    data, _ = load_session(Path(arguments.session), recover=False)
    events = session_events(data, manifest.smoothing_half_life) * arguments.repeat
    tokens = sum(isinstance(event, Token) for event in events)
    spec = EngineSpec(pack=pack, model=manifest.model_id)
    print(f"machine        {machine()}")
    print(
        f"stream         {Path(arguments.session).name} ×{arguments.repeat}: {tokens} tokens at "
        f"{arguments.rate:g} tok/s, a batch every {BATCH_SECONDS * 1000:.0f} ms; terminal {arguments.size}; "
        "the engine idle"
    )
    results = []
    for number in range(arguments.rounds):
        last = number == arguments.rounds - 1
        result = asyncio.run(stream_round(spec, events, arguments.rate, size, arguments.profile and last))
        results.append(result)
        print(
            f"round {number + 1}        UI process {result['cpu']:.1%} of a core; "
            f"{result['per_batch']:.1f} ms a batch, {result['per_frame']:.1f} ms a frame "
            f"({result['batches']} batches, {result['frames']} frames, {result['layouts']} layouts)"
        )
    print(
        f"median         {statistics.median(r['cpu'] for r in results):.1%} of a core, "
        f"{statistics.median(r['per_batch'] for r in results):.1f} ms a batch"
    )
    profiler = results[-1]["profile"]
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(45)
        print(text.getvalue())


if __name__ == "__main__":
    main()
