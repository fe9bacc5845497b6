"""Replay: plays, pauses, steps, changes speed, and the sliders move at the recorded token."""

import pytest

from emolab.core.engine import Engine
from emolab.core.events import Token
from emolab.core.sampling import Sampling
from emolab.core.session import SessionRecorder, load_session, session_meta
from emolab.tui.replay import ReplayApp
from tests.tui.helpers import wait_until


def recorded_session(tmp_path, model, pack):
    path = tmp_path / "r.json"
    engine = Engine(model, pack, sampling=Sampling(temperature=0, max_tokens=12))
    engine._eos_ids = set()
    recorder = SessionRecorder(path, session_meta(engine, pack.path))
    steered_at = None
    for text in ("hello", "again"):
        recorder.record_note("message", text=text)
        replies = 0
        for event in engine.chat(text):
            recorder.record_event(event)
            if isinstance(event, Token) and event.source == "reply":
                replies += 1
                if text == "again" and replies == 4:
                    engine.steering.set("sad", 1.0)
                    snap = engine.steering.snapshot()
                    recorder.record_steering("sad", 1.0, snap.version, snap.as_dict())
                if event.steering and steered_at is None:
                    steered_at = event.index
    recorder.close()
    data, _ = load_session(path)
    return data, steered_at


def shown_tokens(app):
    return [t.index for turn in app.replay.view.turn_log.turns for t in turn.tokens]


async def test_replay_plays_pauses_steps_and_moves_the_sliders_at_the_recorded_token(tmp_path, tiny_model, tiny_pack):
    data, steered_at = recorded_session(tmp_path, tiny_model, tiny_pack)
    app = ReplayApp(tiny_pack, data, autoplay=False, keymap={})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert shown_tokens(app) == [] and not app.replay.playing
        await pilot.press("right")
        assert shown_tokens(app) == [0]
        await pilot.press("right", "right")
        assert shown_tokens(app) == [0, 1, 2]
        newest = app.replay.view.turn_log.last_token
        assert app.query_one("SignedBars").title == f"token {newest.text!r}"  # a step shows its token at once
        await pilot.press("left")
        await pilot.pause()
        assert shown_tokens(app) == [0, 1]

        # step up to the token just before the steering change: the slider has not moved
        while max(shown_tokens(app)) < steered_at - 1:
            await pilot.press("right")
        assert app.query_one("#slider-sad").value == 0
        await pilot.press("right")
        assert max(shown_tokens(app)) == steered_at
        assert app.query_one("#slider-sad").value == 1.0

        await pilot.press("plus", "plus")
        assert app.replay.speed == 5.0
        await pilot.press("minus")
        assert app.replay.speed == 2.0
        await pilot.press("space")
        await wait_until(pilot, lambda: not app.replay.playing, what="the replay to finish")
        assert shown_tokens(app) == data.columns["index"]


async def test_replay_jumps_to_the_next_turn_and_instant(tmp_path, tiny_model, tiny_pack):
    data, _ = recorded_session(tmp_path, tiny_model, tiny_pack)
    app = ReplayApp(tiny_pack, data, autoplay=False, keymap={})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        first_turn = shown_tokens(app)
        assert first_turn and first_turn[-1] < data.columns["index"][-1]
        await pilot.press("i")
        await pilot.pause()
        assert shown_tokens(app) == data.columns["index"]
        assert [turn.role for turn in app.replay.view.turn_log.turns] == ["prompt", "reply", "prompt", "reply"]


async def test_replay_can_show_any_emotion(tmp_path, tiny_model, tiny_pack):
    data, _ = recorded_session(tmp_path, tiny_model, tiny_pack)
    app = ReplayApp(tiny_pack, data, autoplay=False, keymap={})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.replay.toggle_pin("at ease")
        await pilot.pause()
        assert "at ease" in app.query_one("HeatStrip").rows
        await pilot.press("i")
        await pilot.pause()
        assert len(app.query_one("HeatStrip").history) == data.token_count - 1


def test_play_times_keep_the_recorded_rhythm_but_shorten_long_pauses():
    from types import SimpleNamespace

    from emolab.tui.screens.replay import play_times

    events = [SimpleNamespace(t=t) for t in (10.0, 10.05, 10.1, 40.0, 40.2)]
    assert play_times(events) == pytest.approx([0.0, 0.05, 0.1, 1.6, 1.8])


async def test_replay_has_its_own_keys_and_none_of_the_chats(tmp_path, tiny_model, tiny_pack):
    data, steered_at = recorded_session(tmp_path, tiny_model, tiny_pack)
    app = ReplayApp(tiny_pack, data, autoplay=False, keymap={})
    notices = []
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        app.notify = lambda message, **kwargs: notices.append(message)
        await pilot.press("i")
        await pilot.pause()
        assert app.query_one("#slider-sad").value == 1.0
        await pilot.press("ctrl+l", "ctrl+s")  # chat keys: reset the sliders, save the session
        await pilot.pause()
        assert app.query_one("#slider-sad").value == 1.0
        assert not any("recording" in notice for notice in notices)
        await pilot.press("f1")
        await pilot.pause()
        help_text = app.screen.query_one("#help-text").source.lower()
        assert "next alert" in help_text and "play" in help_text
        assert "reset every slider" not in help_text and "regenerate" not in help_text


def compared_and_branched_session(tmp_path, model, pack):
    """A reply, a compare of it (happy 2.0 against none), then a branch of the compare's side A."""
    from emolab.core.events import LaneEvent

    path = tmp_path / "tree.json"
    engine = Engine(model, pack, sampling=Sampling(temperature=0, max_tokens=8))
    engine._eos_ids = set()
    recorder = SessionRecorder(path, session_meta(engine, pack.path))
    recorder.record_note("message", text="hello")
    for event in engine.chat("hello"):
        recorder.record_event(event)
    engine.steering.set("happy", 2.0)
    side_a = []
    for event in engine.compare():
        recorder.record_event(event)
        if isinstance(event, LaneEvent) and event.lane == 0 and event.event.__class__ is Token:
            if event.event.source == "reply":
                side_a.append(event.event)
    for event in engine.branch_at(side_a[3].position):
        recorder.record_event(event)
    recorder.close()
    data, _ = load_session(path)
    return data, side_a


async def test_replay_shows_a_compare_side_by_side_and_labels_every_branch(tmp_path, tiny_model, tiny_pack):
    from emolab.core.events import CompareFinished

    data, side_a = compared_and_branched_session(tmp_path, tiny_model, tiny_pack)
    app = ReplayApp(tiny_pack, data, autoplay=False, keymap={})
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen = app.replay
        view = screen.view
        end = next(i for i, event in enumerate(screen.events) if isinstance(event, CompareFinished))
        screen._jump(end + 1)
        await pilot.pause()
        compare = view.compare
        assert compare is not None and view.panes.has_class("-open")
        assert [t.index for t in compare.reply_tokens(0)] == [t.index for t in side_a]
        assert len(compare.reply_tokens(1)) == 8
        first = compare.finished.first_difference
        if first is not None:
            assert compare.reply_tokens(0)[first].differs and compare.reply_tokens(1)[first].differs
        assert compare.reply(0).label == "branch 2/4 · compare 1, side A"

        await pilot.press("i")  # the rest: the branch closes the compare into the transcript
        await pilot.pause()
        assert view.compare is None
        replies = [turn for turn in view.turn_log.turns if turn.role == "reply"]
        assert [turn.label for turn in replies] == [
            "branch 1/4",
            "branch 2/4 · compare 1, side A",
            "branch 3/4 · compare 1, side B",
            "branch 4/4",
        ]
        assert replies[3].tokens[:4] == replies[1].tokens[:4]  # the branch shows the tokens it kept
        assert len(replies[3].tokens) == 4 + 8
        await pilot.press("left")  # back a step: the view starts again and replays to there
        await pilot.pause()
        assert len([turn for turn in view.turn_log.turns if turn.role == "reply"]) == 4
