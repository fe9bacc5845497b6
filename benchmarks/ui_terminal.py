"""The console in a real terminal (tmux) against headless `emolab run`, alternating.

ui_stall.py drives the console through Textual's pilot, whose headless driver writes nothing to a
terminal. This runs `emolab chat` in a detached tmux window of the given size, types the prompt,
waits for the reply, quits, and reads the recorded session; then runs `emolab run --json` with the
same pack, prompt, greedy decoding and token budget. Both speeds are computed the same way, from
the reply tokens' own times: (tokens - 1) / (last token's time - first token's time). tmux parses
the console's output on the same cores, as a local terminal emulator would.

    python benchmarks/ui_terminal.py [--tokens 120] [--rounds 3] [--size 160x48]

Needs tmux. Prints one line a round, then the median ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, STORY_PROMPT, headless_events, machine, pack_path, terminal_size

WINDOW = "emolab-ui-terminal"


def per_second(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


def tmux(*arguments: str) -> str:
    return subprocess.run(["tmux", *arguments], capture_output=True, text=True, check=False).stdout


def wait_for(text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in tmux("capture-pane", "-p", "-t", WINDOW):
            return True
        time.sleep(0.2)
    return False


def console_round(pack: str, tokens: int, size: tuple[int, int], session: Path) -> float:
    session.unlink(missing_ok=True)
    chat = [sys.executable, "-m", "emolab", "chat", "--vectors", pack, "--max-tokens", str(tokens)]
    chat += ["--temperature", "0", "--session", str(session)]
    tmux("kill-session", "-t", WINDOW)
    tmux("new-session", "-d", "-s", WINDOW, "-x", str(size[0]), "-y", str(size[1]), "-c", str(ROOT), *chat)
    try:
        if not wait_for("Message the model", 120):
            raise SystemExit("the console did not become ready within 120 s")
        tmux("send-keys", "-t", WINDOW, STORY_PROMPT, "Enter")
        if not wait_for("[max_tokens]", 300) and not wait_for("[eos]", 1):
            raise SystemExit("the reply did not end within 300 s")
        tmux("send-keys", "-t", WINDOW, "C-q")
        deadline = time.monotonic() + 10
        while WINDOW in tmux("list-sessions") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        tmux("kill-session", "-t", WINDOW)
    recorded = json.loads(session.read_text())["tokens"]
    times = zip(recorded["t_ms"], recorded["source"], strict=True)
    return per_second([t / 1000 for t, source in times if source == "reply"])


def headless_round(pack: str, tokens: int) -> float:
    events = headless_events(pack, STORY_PROMPT, tokens)
    return per_second([event["t"] for event in events if event.get("type") == "token" and event["source"] == "reply"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="160x48", help="terminal size, columns x rows")
    arguments = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("this benchmark needs tmux")
    size = terminal_size(arguments.size)
    pack = str(pack_path())
    print(f"machine        {machine()}")
    print(f"reply          {arguments.tokens} tokens max, greedy, dtype auto, tmux {arguments.size}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for number in range(arguments.rounds):
            console = console_round(pack, arguments.tokens, size, Path(folder) / "session.json")
            headless = headless_round(pack, arguments.tokens)
            ratios.append(console / headless)
            print(
                f"round {number + 1}        console {console:.1f} tok/s, headless {headless:.1f} tok/s "
                f"({ratios[-1]:.0%})"
            )
    print(f"median         console / headless {statistics.median(ratios):.0%} (target >= 90%)")


if __name__ == "__main__":
    main()
