"""Record the demo sessions shipped in this folder, with the bundled model and the shipped pack.

    python sessions/record_demos.py

Each demo is a scripted chat: user messages, and slider moves at given reply tokens, applied
through the engine exactly as the console applies them. Every file verifies with
`emolab replay --verify`. They are recorded in fp32: bf16 products differ between CPUs with and
without oneDNN's bf16 path, fp32 gives the same tokens on both (see the README's sessions section).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emolab.core.engine import Engine  # noqa: E402
from emolab.core.events import Token  # noqa: E402
from emolab.core.models import load_model  # noqa: E402
from emolab.core.pack import load_pack  # noqa: E402
from emolab.core.sampling import Sampling  # noqa: E402
from emolab.core.session import SessionRecorder, session_meta  # noqa: E402

PACK = "vectors/sonnet-proxy"
# name: [(message or "regenerate", {reply token number: {emotion: strength}})]
DEMOS = {
    "desperation-builds": [
        ("My rent is due tomorrow and I can't pay it.", {}),
        ("The bank just said no to a loan. What else can I do?", {}),
        ("I have tried everything. I have nothing left and nobody to ask.", {}),
    ],
    "calm-then-desperate": [
        ("My manager wants to see me at five today. No reason given.", {0: {"calm": 0.4}}),
        ("regenerate", {0: {}, 12: {"desperate": 0.3}, 30: {"desperate": 0.5}}),
    ],
    "sad-story-turns-hopeful": [
        (
            "Write a short story about someone who lost their job.",
            {0: {"sad": 0.4}, 30: {"hopeful": 0.4}, 50: {"hopeful": 0.5}},
        ),
    ],
}


def record(name: str, script, loaded, pack) -> Path:
    path = ROOT / "sessions" / f"demo-{name}.json"
    engine = Engine(loaded, pack, sampling=Sampling(temperature=0.7, top_p=0.9, max_tokens=80, seed=7))
    recorder = SessionRecorder(path, session_meta(engine, PACK))

    def steer(state):
        before = engine.steering.snapshot().as_dict()
        engine.steering.update(state, replace=True)
        snapshot = engine.steering.snapshot()
        for emotion in sorted(set(before) | set(state)):  # one record per slider that moved
            if before.get(emotion, 0.0) != state.get(emotion, 0.0):
                recorder.record_steering(emotion, state.get(emotion, 0.0), snapshot.version, snapshot.as_dict())

    for message, moves in script:
        if 0 in moves:
            steer(moves[0])
        if message == "regenerate":
            recorder.record_note("regenerate")
            events = engine.regenerate()
        else:
            recorder.record_note("message", text=message)
            events = engine.chat(message)
        replies = 0
        for event in events:
            recorder.record_event(event)
            if isinstance(event, Token) and event.source == "reply":
                replies += 1
                if replies in moves:
                    steer(moves[replies])
    recorder.close()
    return path


def main() -> None:
    pack = load_pack(ROOT / PACK)
    loaded = load_model(pack.model_id, dtype="float32")
    for name, script in DEMOS.items():
        print(f"recorded {record(name, script, loaded, pack)}")


if __name__ == "__main__":
    main()
