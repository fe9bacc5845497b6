"""The console view on its own: events in, turns, readouts and alerts out; smoothed or raw."""

import numpy as np

from emolab.tui.throttle import latest
from emolab.tui.turns import TurnLog
from emolab.tui.view import LIVE_PANEL_SECONDS, ConsoleView
from tests.tui.harness import Host, a_turn, token

PANEL_DRAWN = latest(LIVE_PANEL_SECONDS) + 0.1  # a pending live draw has happened by then


def emotions_of(pack):
    return pack.emotions  # happy, sad, afraid, calm, desperate, at ease


def readout(pack, **values):
    row = np.zeros(len(pack.emotions), dtype=np.float32)
    for name, value in values.items():
        row[pack.emotion_index[name.replace("_", " ")]] = value
    return row


def test_a_turn_log_builds_turns_marks_steering_changes_and_times_the_reply():
    log = TurnLog()
    first = log.apply(a_turn([[1.0], [2.0]]))
    assert [turn.role for turn in log.turns] == ["prompt", "reply"]
    assert [t.index for t in first.fresh] == [1, 2]  # the sink at position 0 has no readout worth showing
    assert first.speed == 12.5 and log.last_token.index == 2
    log.end_turn()
    steered = log.apply(
        [token(3, [0.5], steering={"calm": 0.3}, version=1), token(4, [0.5], steering={"calm": 0.3}, version=1)]
    )
    reply = log.turns[-1]
    assert reply.role == "reply" and len(log.turns) == 3 and steered.changed == [reply]
    assert [t.marker for t in reply.tokens] == ["calm +0.30", None]  # marked once, where it took effect
    log.drop_last_reply()
    assert [turn.role for turn in log.turns] == ["prompt", "reply"]


async def test_the_view_shows_raw_or_smoothed_readouts_but_alerts_on_smoothed_only(tiny_pack):
    view = ConsoleView(tiny_pack, thresholds={"afraid": 3.0})
    app = Host(view)
    raw = [readout(tiny_pack, afraid=5.0), readout(tiny_pack, afraid=1.0), readout(tiny_pack, afraid=0.5)]
    smooth = [readout(tiny_pack, afraid=1.0), readout(tiny_pack, afraid=3.5), readout(tiny_pack, afraid=2.0)]
    async with app.run_test(size=(120, 40)) as pilot:
        alerts = view.show(a_turn(raw, smooth))
        await pilot.pause()
        assert [(a.emotion, a.token_index) for a in alerts] == [("afraid", 2)]  # raw 5.0 at token 1 is no alert
        assert "afraid" in str(view.query_one("#alerts").render())
        assert view.status.readouts.startswith("smooth h=")
        strip = view.side.strip
        np.testing.assert_array_equal(np.stack(strip.history), np.stack(smooth))
        assert dict(view.query_one("SignedBars").rows)["afraid"] == 2.0  # the live token, smoothed

        view.smoothed = False  # Ctrl+E
        await pilot.pause()
        assert view.status.readouts == "raw" and not view.transcript.smoothed
        np.testing.assert_array_equal(np.stack(strip.history), np.stack(raw))
        assert dict(view.query_one("SignedBars").rows)["afraid"] == 0.5

        more = view.show(a_turn([readout(tiny_pack, afraid=9.0)], [readout(tiny_pack, afraid=0.0)], start=10))
        assert more == []  # raw shown, smoothed still decides
        view.step_selection(-1)
        assert view.transcript.selected == 11
        assert dict(view.query_one("SignedBars").rows)["afraid"] == 9.0
        view.follow_live()
        assert view.transcript.selected is None

        view.clear()
        await pilot.pause()
        assert not view.turn_log.turns and not view.transcript.turns and not strip.history
        assert view.show(a_turn(raw, smooth))  # the alerts are armed again


async def test_a_stream_of_batches_draws_the_live_panel_a_few_times_a_second_and_ends_on_the_newest(tiny_pack):
    view = ConsoleView(tiny_pack)
    app = Host(view)
    async with app.run_test(size=(120, 40)) as pilot:
        view.show(a_turn([readout(tiny_pack, afraid=1.0)]))
        bars = view.query_one("SignedBars")
        assert dict(bars.rows)["afraid"] == 1.0  # the first batch draws at once
        view.show([token(5, readout(tiny_pack, afraid=2.0)), token(6, readout(tiny_pack, afraid=3.0))])
        assert dict(bars.rows)["afraid"] == 1.0 and len(view.side.strip.history) == 3  # kept, drawn later
        await pilot.pause(PANEL_DRAWN)
        assert dict(bars.rows)["afraid"] == 3.0  # the newest, once the batches pause


async def test_a_pending_live_draw_keeps_a_selection_and_forgets_a_cleared_chat(tiny_pack):
    view = ConsoleView(tiny_pack)
    app = Host(view)
    async with app.run_test(size=(120, 40)) as pilot:
        bars = view.query_one("SignedBars")
        view.show(a_turn([readout(tiny_pack, afraid=1.0), readout(tiny_pack, afraid=1.5)]))  # drawn at once
        view.show([token(5, readout(tiny_pack, afraid=2.0))])  # waits
        view.step_selection(-1)  # selects the newest: token 5
        chosen = bars.title
        assert chosen.startswith("token 5") and "F4" in chosen
        await pilot.pause(PANEL_DRAWN)
        assert bars.title == chosen  # the timed draw left the selection alone
        view.follow_live()
        view.show([token(6, readout(tiny_pack, afraid=4.0))])  # waits again
        view.clear()
        await pilot.pause(PANEL_DRAWN)
        assert dict(bars.rows)["afraid"] != 4.0  # a cleared chat's token is not drawn later
