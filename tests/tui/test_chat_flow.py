"""Typing a message streams tokens into the transcript, with readouts."""

from tests.tui.helpers import make_app, ready, send, settle


async def test_the_app_is_usable_while_the_model_loads(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.query_one("#prompt").disabled or app.engine is not None
        await ready(pilot)
        assert not app.query_one("#prompt").disabled
        assert "tiny-llama" in app.status.model


async def test_a_message_streams_a_reply_with_readouts(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello there")
        await settle(pilot)
        turns = [widget.turn for widget in app.transcript.turns]
        assert [turn.role for turn in turns] == ["prompt", "reply"]
        assert turns[1].tokens and all(token.probe is not None for token in turns[1].tokens)
        assert app.query_one("SignedBars").rows
        assert len(app.query_one("HeatStrip").history) == sum(len(t.tokens) for t in turns) - 1  # not position 0
        assert app.engine.conversation.messages[0] == {"role": "user", "content": "hello there"}
        assert "tok/s" in app.status.speed


async def test_an_empty_message_does_nothing(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#prompt").value = "   "
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not app.generating and not app.transcript.turns
