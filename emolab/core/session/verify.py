"""Re-running a recorded session: same model, pack, seed, sampling, and the steering timeline
applied at the recorded token indices. Reports token-for-token agreement.

Every branch is followed: the actions run again in their recorded order (messages, regenerations,
branches at their recorded positions, compares with their recorded steering, switches to other
branches), so each reply of the tree is written again where it was written."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emolab.core.conversation import Conversation
from emolab.core.engine import Engine
from emolab.core.events import CompareFinished, LaneEvent, Token, TurnFinished
from emolab.core.sampling import Sampling
from emolab.core.session.format import SessionData

REPLAYED_NOTES = {"regenerate", "new_chat", "sampling", "branch", "compare", "history"}
# Replies that ended before the engine chose to end them: replayed up to their recorded length.
# `engine_died`: the engine's process died mid-reply; the session kept what had arrived, and a
# new chat followed (the restarted engine's), so the token that stop discards does not matter.
CUT_SHORT = {"stopped", "engine_died"}


@dataclass
class Verification:
    recorded: int
    replayed: int
    matching: int  # tokens equal from the start
    max_readout_difference: float
    divergence: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.divergence is None and self.recorded == self.replayed == self.matching


def _actions(data: SessionData) -> list[tuple[float, str, dict]]:
    actions = [(turn["t"], "message", turn) for turn in data.turns if turn["role"] == "user"]
    actions += [(note["t"], note["kind"], note) for note in data.notes if note["kind"] in REPLAYED_NOTES]
    return sorted(actions, key=lambda action: (action[0], action[2].get("seq", 0)))


def _recorded_replies(data: SessionData) -> list[tuple[int, str | None]]:
    """Each assistant turn's own reply length and how it ended, in the order they were recorded."""
    return [(len(data.reply_rows(turn)), turn.get("finish")) for turn in data.turns if turn["role"] == "assistant"]


def hash_warnings(data: SessionData, engine: Engine) -> list[str]:
    pack = engine.pack
    assert pack is not None  # a session is recorded with a pack, and verified with one
    warnings = []
    recorded_model = data.meta["model"]
    if engine.loaded.weights_id != recorded_model["weights"]:
        warnings.append(
            f"model weights differ from the recording ({recorded_model['weights'][:23]} recorded, "
            f"{engine.loaded.weights_id[:23]} now)"
        )
    if pack.sha256 != data.meta["pack"]["sha256"]:
        warnings.append(
            f"pack {pack.name} differs from the recording (sha256 {data.meta['pack']['sha256'][:12]} "
            f"recorded, {pack.sha256[:12]} now)"
        )
    if pack.emotions != data.emotions:
        warnings.append("the pack's emotions differ from the recording's; readouts are not compared")
    return warnings


def verify(data: SessionData, engine: Engine) -> Verification:
    """Replay `data` on a fresh `engine` (built with the recorded model and pack) and compare."""
    meta = data.meta
    engine.set_sampling(Sampling(**meta["sampling"]))
    engine.sampler.reseed(meta["sampling"]["seed"])
    engine.conversation.system = meta.get("system_prompt")
    versions = dict(zip(data.columns["index"], data.columns["steering_version"], strict=True))

    def schedule(index: int):
        version = versions.get(index, versions.get(index - 1))
        return data.states.get(str(version)) if version is not None else None

    engine.schedule = schedule
    try:
        replayed = _replay(data, engine)
    finally:
        engine.schedule = None  # a failed replay must not leave the engine steering by the recording
    return _compare(data, replayed, compare_readouts=engine.pack is not None and engine.pack.emotions == data.emotions)


def _replay(data: SessionData, engine: Engine) -> list[Token]:
    """Send the recorded messages, regenerations, branches, compares, switches, new chats and
    sampling changes again, in order."""
    recorded = _recorded_replies(data)
    snapshots: dict[int, Conversation] = {}  # reply number → the conversation as it went on from that reply
    replayed: list[Token] = []
    finished = 0
    for _, kind, details in _actions(data):
        if kind == "new_chat":
            engine.reset()
            continue
        if kind == "sampling":
            engine.set_sampling(Sampling(**{k: details[k] for k in ("temperature", "top_p", "max_tokens", "seed")}))
            continue
        if kind == "history":
            engine.use_history(snapshots[details["reply"]])
            continue
        lanes = 2 if kind == "compare" else 1
        if finished + lanes > len(recorded):
            break  # the recording ended before this reply finished
        if kind == "message":
            events = engine.chat(details["text"])
        elif kind == "regenerate":
            events = engine.regenerate()
        elif kind == "branch":
            events = engine.branch_at(details["position"])
        else:
            steering = details["steering"]
            events = engine.compare(steering[1], steering=steering[0], mode=details.get("mode") or "auto")
        length, finish = recorded[finished]  # the one reply, or a compare's first to end: stopped alike
        if finish in CUT_SHORT and length == 0:
            engine.stop()
        replies, lane_of = 0, {}
        for event in events:
            lane = None
            if isinstance(event, LaneEvent):
                lane, event = event.lane, event.event
            if isinstance(event, Token):
                replayed.append(event)
                if event.source == "reply" and lane in (None, 0):
                    replies += 1
                    if finish in CUT_SHORT and replies == length:
                        engine.stop()  # the engine then samples and discards one token, as it did live
            elif isinstance(event, TurnFinished):
                lane_of[finished] = lane
                finished += 1
                if lane is None:
                    snapshots[finished - 1] = engine.conversation.copy()
            elif isinstance(event, CompareFinished):
                other = engine.compared
                assert other is not None  # a compare leaves lane 1's conversation beside lane 0's
                for number, lane in lane_of.items():
                    snapshots[number] = engine.conversation.copy() if lane == 0 else other.copy()
    return replayed


def _compare(data: SessionData, replayed: list[Token], *, compare_readouts: bool) -> Verification:
    recorded_ids = data.columns["token_id"]
    probes = data.probe_matrix().astype(np.float32)
    matching, worst, divergence = 0, 0.0, None
    for row, event in enumerate(replayed):
        if row >= len(recorded_ids):
            divergence = f"the replay has more tokens than the recording, from index {event.index}"
            break
        if event.token_id != recorded_ids[row]:
            divergence = (
                f"first divergent token at index {data.columns['index'][row]}: recorded "
                f"{data.columns['text'][row]!r} ({recorded_ids[row]}), replayed {event.text!r} ({event.token_id})"
            )
            break
        if compare_readouts and event.probe is not None:
            again = event.probe.astype(np.float16).astype(np.float32)
            worst = max(worst, float(np.nanmax(np.abs(again - probes[row]))) if len(again) else 0.0)
        matching += 1
    if divergence is None and len(replayed) < len(recorded_ids):
        divergence = f"the replay ended after {len(replayed)} of {len(recorded_ids)} recorded tokens"
    return Verification(
        recorded=len(recorded_ids),
        replayed=len(replayed),
        matching=matching,
        max_readout_difference=worst,
        divergence=divergence,
    )
