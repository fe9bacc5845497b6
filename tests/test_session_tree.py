"""Sessions of format 2: a tree of turns (branches, compares) that round-trips and verifies; format 1 loads."""

import json
from pathlib import Path

import numpy as np
import pytest

from emolab.core.engine import Engine
from emolab.core.events import CompareStarted, LaneEvent, Token, TurnFinished
from emolab.core.sampling import Sampling
from emolab.core.session import SessionRecorder, load_session, session_meta
from emolab.core.session.export import write_markdown
from emolab.core.session.format import FORMAT_VERSION, session_events
from emolab.core.session.verify import verify

# format 1 sessions as emolab recorded them before the tree (the demos of commit ede8e23)
FORMAT_1 = sorted((Path(__file__).resolve().parent / "data").glob("format1-*.json"))


def run(recorder, events):
    events = list(events)
    for event in events:
        recorder.record_event(event)
    return events


def record_tree(path, model, pack, sampling):
    """A chat, a branch at its fourth reply token, a switch back to the original, a second message,
    a compare of it against a preset, and a branch of the compare's first side."""
    engine = Engine(model, pack, sampling=sampling)
    engine._eos_ids = set()
    recorder = SessionRecorder(path, session_meta(engine, pack.path))
    recorder.record_note("message", text="tell me a story")
    first = run(recorder, engine.chat("tell me a story"))
    original = engine.conversation.copy()
    engine.steering.set("happy", 1.5)
    recorder.record_steering("happy", 1.5, engine.steering.snapshot().version, engine.steering.snapshot().as_dict())
    at = [e for e in first if isinstance(e, Token) and e.source == "reply"][3]
    run(recorder, engine.branch_at(at.position))
    engine.use_history(original)
    recorder.record_note("history", reply=0)
    recorder.record_note("message", text="and then?")
    run(recorder, engine.chat("and then?"))
    compared = run(recorder, engine.compare({"sad": 1.0}))
    lane0 = [
        e.event
        for e in compared
        if isinstance(e, LaneEvent) and isinstance(e.event, Token) and e.lane == 0 and e.event.source == "reply"
    ]
    run(recorder, engine.branch_at(lane0[2].position))
    recorder.close()
    return at


@pytest.mark.parametrize(
    "sampling",
    [Sampling(temperature=0, max_tokens=8), Sampling(temperature=1.0, top_p=0.9, max_tokens=8, seed=4)],
    ids=["greedy", "sampled"],
)
def test_the_tree_round_trips_through_the_file_and_through_verify(tmp_path, tiny_model, tiny_pack, sampling):
    path = tmp_path / "tree.json"
    record_tree(path, tiny_model, tiny_pack, sampling)
    document = json.loads(path.read_text())
    assert document["format_version"] == FORMAT_VERSION == 2
    data, _ = load_session(path)
    turns = {turn["id"]: turn for turn in data.turns}
    assistants = [turn for turn in data.turns if turn["role"] == "assistant"]
    original, branch, second, lane0, lane1, compare_branch = assistants
    assert branch["parent"] == original["parent"] == 0 and branch["branch"] == {"of": original["id"], "kept": 4}
    assert turns[second["parent"]]["text"] == "and then?" and turns[second["parent"]]["parent"] == original["id"]
    assert lane0["parent"] == lane1["parent"] == second["parent"]  # a compare answers the same message twice
    assert (lane0["compare"]["lane"], lane1["compare"]["lane"]) == (0, 1)
    assert lane0["compare"]["steering"] == {"happy": 1.5} and lane1["compare"]["steering"] == {"sad": 1.0}
    assert compare_branch["branch"]["of"] == lane0["id"] and compare_branch["parent"] == lane0["parent"]
    assert [turn["id"] for turn in data.branches(second)] == [
        second["id"],
        lane0["id"],
        lane1["id"],
        compare_branch["id"],
    ]
    ids = data.columns["token_id"]
    kept = data.full_reply_rows(branch)[:4]
    assert [ids[row] for row in kept] == [ids[row] for row in data.reply_rows(original)[:4]]
    assert len(data.reply_rows(branch)) == 8 and len(data.full_reply_rows(branch)) == 12
    # each compare side has its own steering recorded on its tokens
    assert {
        data.states[str(data.columns["steering_version"][row])] == {"sad": 1.0} for row in data.reply_rows(lane1)
    } == {True}

    result = verify(data, Engine(tiny_model, tiny_pack))
    assert result.identical, result.divergence
    assert result.matching == data.token_count


def test_replay_events_show_branches_and_compare_lanes(tmp_path, tiny_model, tiny_pack):
    path = tmp_path / "tree.json"
    record_tree(path, tiny_model, tiny_pack, Sampling(temperature=0, max_tokens=8))
    data, _ = load_session(path)
    events = session_events(data, tiny_pack.smoothing_half_life)
    kinds = [type(event).__name__ for event in events if not isinstance(event, (Token, LaneEvent))]
    assert kinds == [
        "TurnStarted",
        "TurnFinished",
        "BranchStarted",
        "TurnFinished",
        "TurnStarted",
        "TurnFinished",
        "CompareStarted",
        "CompareFinished",
        "BranchStarted",
        "TurnFinished",
    ]
    start = next(event for event in events if isinstance(event, CompareStarted))
    assert start.steering == ({"happy": 1.5}, {"sad": 1.0})
    lane_finishes = [
        event for event in events if isinstance(event, LaneEvent) and isinstance(event.event, TurnFinished)
    ]
    assert sorted(event.lane for event in lane_finishes) == [0, 1]


def test_the_markdown_export_shows_the_branches_and_the_compare(tmp_path, tiny_model, tiny_pack):
    path = tmp_path / "tree.json"
    record_tree(path, tiny_model, tiny_pack, Sampling(temperature=0, max_tokens=8))
    data, _ = load_session(path)
    text = write_markdown(data, tmp_path / "tree.md").read_text()
    assert "branch 2/2 of this message" in text and "kept 4 tokens" in text
    assert "compare 1, side A" in text and "compare 1, side B" in text
    assert "first differ at reply token" in text or "the two replies are the same" in text.lower()


@pytest.mark.parametrize("path", FORMAT_1, ids=[path.stem for path in FORMAT_1])
def test_a_format_1_session_still_loads_as_a_tree_without_branches(path):
    document = json.loads(path.read_text())
    assert document["format_version"] == 1
    data, _ = load_session(path, recover=False)
    assistants = [turn for turn in data.turns if turn["role"] == "assistant"]
    for turn in data.turns:
        assert turn["parent"] is None or data.turn(turn["parent"])["role"] != turn["role"]
    indices, sources = document["tokens"]["index"], document["tokens"]["source"]
    for turn in assistants:  # the rows format 1 gave a reply: the run of reply tokens from first_token
        start = indices.index(turn["first_token"])
        end = start
        while end < len(sources) and sources[end] == "reply" and indices[end] == turn["first_token"] + end - start:
            end += 1
        assert data.reply_rows(turn) == list(range(start, end))
    events = session_events(data)
    assert sum(isinstance(event, Token) for event in events) == data.token_count
    assert not np.isnan(np.stack([event.smoothed for event in events if isinstance(event, Token)])).any()
