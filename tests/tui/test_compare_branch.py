"""Compare and branch in the console, through the pilot on the tiny model: two panes side by side,
a branch from a selected token, switching branches, and sessions that verify token for token."""

from __future__ import annotations

import numpy as np

from emolab.core.engine import Engine
from emolab.core.events import CompareFinished, LaneEvent, Token
from emolab.core.session import SessionRecorder, load_session
from emolab.core.session.verify import verify
from emolab.tui.branches import ReplyTree
from emolab.tui.turns import TokenView, TurnView
from tests.test_branch_compare import count_forward_positions
from tests.tui.helpers import engine, make_app, ready, send, settle


def no_eos(engine):
    engine._eos_ids = set()  # a random model may say EOS early; these tests need whole replies


def recording_app(tmp_path, tiny_model, tiny_pack, **kwargs):
    path = tmp_path / "sessions" / "chat.json"
    factory = lambda meta: SessionRecorder(path, meta)  # noqa: E731
    return make_app(tiny_model, tiny_pack, recorder_factory=factory, engine_hook=no_eos, **kwargs), path


def reply_of(turns: list[TurnView]) -> TurnView:
    return [turn for turn in turns if turn.role == "reply"][-1]


def verified(path, tiny_model, tiny_pack):
    data, _ = load_session(path)
    result = verify(data, Engine(tiny_model, tiny_pack))
    assert result.identical, result.divergence
    return data


# -- the tree, without the app --------------------------------------------------------------------


def turns(text: str) -> list[TurnView]:
    return [TurnView("prompt", [TokenView(0, "q", None)]), TurnView("reply", [TokenView(1, text, None)])]


def test_the_reply_tree_shows_one_path_labels_siblings_and_switches():
    tree = ReplyTree()
    first = tree.add(tree.root, turns("a"))
    second = tree.add(first, turns("b"))
    again = tree.add(first, [*second.head(), TurnView("reply", [TokenView(2, "c", None)])])
    assert tree.path() == [first, again] and tree.last() is again
    assert sorted(turn.label for turn in tree.label()) == ["branch 1/2", "branch 2/2"]
    assert tree.label() == []  # nothing changed since
    assert tree.turns(first) == first.turns and tree.turns(tree.root) == []
    assert tree.owner(again.reply_turn.tokens[0]) is again and tree.owner(second.reply_turn.tokens[0]) is None
    assert tree.switch(again, 1) is None
    assert tree.switch(again, -1) is second and tree.path() == [first, second]
    tree.label()
    assert second.reply_turn.label == "branch 1/2" and first.reply_turn.label == ""
    assert tree.deepest_with_siblings() is second


# -- compare ---------------------------------------------------------------------------------------


async def compare_in(app, pilot, path=None):
    await ready(pilot)
    app.query_one("#slider-happy").set_value(2.0)
    await pilot.pause()
    await send(pilot, "how are you")
    await settle(pilot)
    await pilot.press("f6")
    await pilot.pause()
    assert app.chat.view.compare is not None, "the compare view did not open"
    await settle(pilot)


async def test_a_compare_streams_two_panes_marks_the_first_difference_and_the_session_verifies(
    tmp_path, tiny_model, tiny_pack
):
    app, path = recording_app(tmp_path, tiny_model, tiny_pack)
    seen = []
    async with app.run_test(size=(160, 48)) as pilot:
        original = app.chat.view.show
        app.chat.view.show = lambda events: seen.extend(events) or original(events)
        await compare_in(app, pilot)
        view = app.chat.view
        compare = view.compare
        assert view.panes.has_class("-open") and not view.transcript.display
        lanes = [compare.reply_tokens(lane) for lane in (0, 1)]
        assert all(len(tokens) == 12 for tokens in lanes)  # both streamed whole replies
        assert len(view.panes.lane(0).turns) == len(view.panes.lane(1).turns) == 2
        ends = [event for event in seen if isinstance(event, CompareFinished)]
        assert len(ends) == 1
        first = ends[0].first_difference
        assert first is not None, "happy 2.0 against none should change the tiny model's reply"
        assert lanes[0][first].differs and lanes[1][first].differs
        assert not any(token.differs for lane in lanes for token in lane[:first])
        assert [t.text for t in lanes[0][:first]] == [t.text for t in lanes[1][:first]]
        summary = str(view.panes.query_one("#compare-summary").render())
        assert f"first difference at reply token {first}" in summary and "mean readout A − B" in summary
        # every lane token arrived with its own readout
        lane_tokens = [e.event for e in seen if isinstance(e, LaneEvent) and isinstance(e.event, Token)]
        steering = {e.index: dict(e.steering) for e in lane_tokens if e.source == "reply"}
        assert [steering[t.index] for t in lanes[0]] == [{"happy": 2.0}] * 12
        assert [steering[t.index] for t in lanes[1]] == [{}] * 12
        assert "A · the sliders: happy +2.00" in str(view.panes.query_one("#lane-title-0").render())

        await pilot.press("f6")  # closes it: the chat goes on with A's reply, B's a sibling branch
        await pilot.pause()
        assert view.compare is None and view.transcript.display
        shown = reply_of(view.turn_log.turns)
        assert shown.tokens == lanes[0] and shown.label == "branch 2/3"
        assert engine(app).conversation.messages[-1]["content"] == "".join(t.text for t in lanes[0])
        await pilot.press("f9")  # the next branch: B's reply, and the engine goes on from it
        await pilot.pause()
        assert reply_of(view.turn_log.turns).tokens == lanes[1]
        assert reply_of(view.turn_log.turns).label == "branch 3/3"
        assert engine(app).conversation.messages[-1]["content"] == "".join(t.text for t in lanes[1])
        await send(pilot, "and then")
        await settle(pilot)
        await pilot.press("ctrl+q")
    data = verified(path, tiny_model, tiny_pack)
    sides = [turn for turn in data.turns if turn.get("compare")]
    assert [side["compare"]["lane"] for side in sides] == [0, 1]
    assert [len(data.reply_rows(side)) for side in sides] == [12, 12]
    last_user = [turn for turn in data.turns if turn["role"] == "user"][-1]
    assert last_user["parent"] == sides[1]["id"]  # the message after the switch follows B's reply


async def test_a_compare_with_a_preset_sets_lane_b_to_it(tmp_path, tiny_model, tiny_pack):
    from emolab.tui.presets import write_preset

    preset = write_preset(tmp_path / "sad.json", {"sad": 1.5})
    app = make_app(tiny_model, tiny_pack, engine_hook=no_eos)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await send(pilot, "how are you")
        await settle(pilot)
        app.chat.action_compare_preset()
        await pilot.pause()
        app.screen.query_one("Input").value = str(preset)
        await pilot.press("enter")
        await pilot.pause()
        await settle(pilot)
        compare = app.chat.view.compare
        assert dict(compare.started.steering[1]) == {"sad": 1.5} and dict(compare.started.steering[0]) == {}


# -- branch ----------------------------------------------------------------------------------------


async def test_a_branch_from_a_selected_token_keeps_its_prefix_reuses_the_cache_and_switches(
    tmp_path, tiny_model, tiny_pack
):
    app, path = recording_app(tmp_path, tiny_model, tiny_pack)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        view = app.chat.view
        await send(pilot, "tell me a story")
        await settle(pilot)
        original = list(reply_of(view.turn_log.turns).tokens)
        original_text = engine(app).conversation.messages[-1]["content"]
        original_ids = engine(app).conversation.replies[1].ids
        view.select(original[4])
        app.query_one("#slider-sad").set_value(2.0)  # the branch writes on under other steering
        await pilot.pause()
        fed = count_forward_positions(engine(app))
        await pilot.press("f7")
        await pilot.pause()
        await settle(pilot)
        branch = reply_of(view.turn_log.turns)
        assert branch.tokens[:5] == original[:5]  # the text up to the selected token stays
        new = branch.tokens[5:]
        assert len(new) == 12 and fed == [1] * (1 + len(new))  # the prefix came from the cache
        assert [t.position for t in new] == list(range(original[4].position + 1, original[4].position + 13))
        assert branch.label == "branch 2/2"
        assert view.transcript.text_of(branch).startswith("model  [branch 2/2]")
        assert engine(app).conversation.replies[1].ids[:5] == original_ids[:5]

        await pilot.press("f8")  # back to the reply as it was
        await pilot.pause()
        shown = reply_of(view.turn_log.turns)
        assert shown.tokens == original and shown.label == "branch 1/2"
        assert engine(app).conversation.messages[-1]["content"] == original_text
        await send(pilot, "go on")
        await settle(pilot)
        assert engine(app).conversation.messages[1]["content"] == original_text  # it continued the original
        await pilot.press("ctrl+q")
    data = verified(path, tiny_model, tiny_pack)
    replies = [turn for turn in data.turns if turn["role"] == "assistant"]
    assert replies[1]["branch"] == {"of": replies[0]["id"], "kept": 5}
    rows = data.full_reply_rows(replies[1])
    assert [data.columns["token_id"][row] for row in rows[:5]] == [
        data.columns["token_id"][row] for row in data.full_reply_rows(replies[0])[:5]
    ]
    assert replies[2]["parent"] is not None and data.turn(replies[2]["parent"])["parent"] == replies[0]["id"]


async def test_branch_here_without_a_selected_reply_token_says_what_to_do(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        view = app.chat.view
        view.select(view.turn_log.turns[0].tokens[1])  # a prompt token
        await pilot.press("f7")
        await pilot.pause()
        assert not app.chat.link.generating
        assert any("select a token of a reply" in str(n.message) for n in app._notifications)


def test_mean_difference_in_the_summary_orders_by_size():
    from emolab.core.events import CompareStarted
    from emolab.tui.lanes import CompareLog
    from tests.tui.harness import token

    log = CompareLog(CompareStarted(1, 0, ({"happy": 1.0}, {}), "batched", 0.0))
    for lane, probe in ((0, [2.0, 0.0, 1.0]), (1, [0.0, 0.5, 0.0])):
        log.apply(LaneEvent(lane, token(lane + 5, np.array(probe))))
    log.finish(CompareFinished(0, (1, 1), 0.1, 0.2))
    assert (
        log.summary(["a", "b", "c"], 2)
        == "first difference at reply token 0 (≠) · mean readout A − B: a +2.00, c +1.00"
    )
