"""Sliders steer the running generation from the next token on; emotions are added by search."""

import time

from emolab.core.sampling import Sampling
from tests.tui.helpers import engine, make_app, ready, send, settle, wait_until


def slow_and_long(engine):
    """A random model may say EOS at once; this keeps the reply going, a little slower than the UI."""
    engine._eos_ids = set()
    forward = engine._forward

    def throttled(ids, snapshot):
        time.sleep(0.03)
        return forward(ids, snapshot)

    engine._forward = throttled


def has_hits(app):
    from textual.command import CommandList

    lists = app.screen.query(CommandList)
    return bool(lists) and lists.first().option_count > 0


def reply_tokens(app):
    return [t for turn in app.chat.view.turn_log.turns if turn.role == "reply" for t in turn.tokens]


async def test_moving_a_slider_during_generation_steers_the_next_tokens(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=150), engine_hook=slow_and_long)
    recorded = []
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        original = engine(app)._token_event
        engine(app)._token_event = lambda *a, **k: recorded.append(original(*a, **k)) or recorded[-1]
        await send(pilot, "hello")
        await wait_until(pilot, lambda: len(reply_tokens(app)) >= 5, what="some reply tokens")
        slider = app.query_one("#slider-calm")
        slider.focus()
        await pilot.press("right", "right", "right")
        changed_at = max(e.index for e in recorded)
        assert engine(app).steering.snapshot().as_dict() == {"calm": 0.15}
        await settle(pilot)
        marked = [t for t in reply_tokens(app) if t.marker]
    replies = [e for e in recorded if e.source == "reply"]
    later = [e for e in replies if e.index > changed_at + 3]
    assert later and all(dict(e.steering) == {"calm": 0.15} for e in later)
    first_steered = next(e for e in replies if e.steering)
    assert marked and marked[0].index == first_steered.index
    assert "calm" in marked[-1].marker


async def test_slider_keys_fine_coarse_and_reset(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        slider = app.query_one("#slider-happy")
        slider.focus()
        await pilot.press("right")
        assert slider.value == 0.05
        await pilot.press("shift+right")
        assert slider.value == 0.55
        await pilot.press("left")
        assert engine(app).steering.snapshot().as_dict() == {"happy": 0.5}
        await pilot.press("0")
        assert slider.value == 0 and engine(app).steering.snapshot().as_dict() == {}


async def test_reset_all_sliders(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for name in ("#slider-happy", "#slider-sad"):
            app.query_one(name).focus()
            await pilot.press("shift+right")
        assert len(engine(app).steering.snapshot().as_dict()) == 2
        await pilot.press("ctrl+l")
        assert engine(app).steering.snapshot().as_dict() == {}
        assert app.query_one("#slider-happy").value == 0


async def test_add_and_remove_an_emotion_through_fuzzy_search(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert "at ease" not in app.chat.view.side.steering.pinned
        await pilot.press("ctrl+g")
        await pilot.press(*"atea")
        await wait_until(pilot, lambda: has_hits(app), what="search hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "at ease" in app.chat.view.side.steering.pinned, what="the new slider")
        assert app.query_one("HeatStrip").rows[-1] == "at ease"
        await pilot.press("ctrl+g")
        await pilot.press(*"unpin at ease")
        await wait_until(pilot, lambda: has_hits(app), what="search hits")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "at ease" not in app.chat.view.side.steering.pinned, what="the slider to go")
