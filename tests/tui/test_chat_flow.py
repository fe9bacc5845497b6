"""Typing a message streams tokens into the transcript, with readouts."""

from tests.tui.helpers import engine, make_app, ready, send, settle


async def test_the_app_is_usable_while_the_model_loads(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.query_one("#prompt").disabled or app.chat.link.ready
        await ready(pilot)
        assert not app.query_one("#prompt").disabled
        assert "tiny-llama" in app.chat.view.status.model


async def test_a_message_streams_a_reply_with_readouts(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello there")
        await settle(pilot)
        turns = app.chat.view.turn_log.turns
        assert [turn.role for turn in turns] == ["prompt", "reply"]
        assert turns[1].tokens and all(token.probe is not None for token in turns[1].tokens)
        assert app.query_one("SignedBars").rows
        assert len(app.query_one("HeatStrip").history) == sum(len(t.tokens) for t in turns) - 1  # not position 0
        assert engine(app).conversation.messages[0] == {"role": "user", "content": "hello there"}
        assert "tok/s" in app.chat.view.status.speed


async def test_an_empty_message_does_nothing(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#prompt").value = "   "
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not app.chat.link.generating and not app.chat.view.turn_log.turns


async def test_a_printable_key_outside_a_text_field_types_into_the_message_box(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#slider-happy").focus()
        await pilot.press("right", "escape", "tab")  # as a new user did: a slider, then away from it
        await pilot.press("h", "i")
        prompt = app.query_one("#prompt")
        assert prompt.value == "hi" and app.focused is prompt
        assert app.query_one("#slider-happy").value == 0.05  # the slider kept its own keys
        app.query_one("#slider-happy").focus()
        await pilot.press("0")  # a key a slider binds is the slider's, not the message box's
        assert app.query_one("#slider-happy").value == 0 and prompt.value == "hi"
