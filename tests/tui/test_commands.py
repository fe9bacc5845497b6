"""Stop, alerts, help, new chat, regenerate, sampling, presets, token selection, tint, layout sizes."""

import json

from emolab.core.sampling import Sampling
from emolab.tui.screens.forms import SamplingScreen
from emolab.tui.screens.help import HelpScreen
from tests.tui.helpers import engine, make_app, ready, send, settle, wait_until
from tests.tui.test_steering_live import reply_tokens, slow_and_long


async def test_escape_stops_a_generation(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=500), engine_hook=slow_and_long)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "go")
        await wait_until(pilot, lambda: len(reply_tokens(app)) >= 3, what="a few tokens")
        await pilot.press("escape")
        await settle(pilot)
        reply = [turn for turn in app.chat.view.turn_log.turns if turn.role == "reply"][0]
        assert reply.note == "stopped"
        assert len(reply.tokens) < 500


async def test_crossing_a_threshold_raises_a_visible_alert(tiny_model, tiny_pack):
    # a threshold of -100 is crossed by the first readout: the alert path, deterministically
    app = make_app(tiny_model, tiny_pack, thresholds={"afraid": -100.0})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        alerts = app.chat.view.monitor.raised
        assert len(alerts) == 1  # it rose through once, then stayed above
        alert = alerts[0]
        first_written = next(t for t in app.chat.view.turn_log.tokens() if t.source == "reply")
        assert alert.emotion == "afraid" and alert.token_index == first_written.index  # the prompt is not watched
        flagged = [t for turn in app.chat.view.turn_log.turns for t in turn.tokens if t.alert]
        assert [t.index for t in flagged] == [first_written.index]
        assert "afraid" in str(app.query_one("#alerts").render())


async def test_help_screen_opens_and_closes(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_new_chat_and_regenerate(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack, sampling=Sampling(temperature=1.0, max_tokens=8, seed=1))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert [m["role"] for m in engine(app).conversation.messages] == ["user", "assistant"]
        assert [turn.role for turn in app.chat.view.turn_log.turns].count("reply") == 1
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert engine(app).conversation.messages == [] and not app.chat.view.turn_log.turns


async def test_sampling_form_changes_the_engine(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, SamplingScreen)
        app.screen.query_one("#temperature").value = "0.3"
        app.screen.query_one("#seed").value = "42"
        await pilot.click("#apply")
        await pilot.pause()
        assert engine(app).sampling.temperature == 0.3 and engine(app).sampling.seed == 42


async def test_sampling_form_rejects_bad_values(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+o")
        app.screen.query_one("#top_p").value = "7"
        await pilot.click("#apply")
        await pilot.pause()
        assert isinstance(app.screen, SamplingScreen)
        assert "top-p" in str(app.screen.query_one("#error").render())


async def test_presets_save_and_load(tmp_path, tiny_model, tiny_pack):
    preset = tmp_path / "presets" / "mood.json"
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#slider-happy").focus()
        await pilot.press("shift+right")
        app.chat.action_save_preset()
        await pilot.pause()
        app.screen.query_one("#path").value = str(preset)
        await pilot.press("enter")
        await pilot.pause()
        assert json.loads(preset.read_text()) == {"happy": 0.5}
        preset.write_text(json.dumps({"at ease": -0.25, "sad": 1.0}))
        app.chat.action_load_preset()
        await pilot.pause()
        app.screen.query_one("#path").value = str(preset)
        await pilot.press("enter")
        await pilot.pause()
        assert engine(app).steering.snapshot().as_dict() == {"at ease": -0.25, "sad": 1.0}
        assert app.query_one("#slider-happy").value == 0 and app.query_one("#slider-at_ease").value == -0.25


async def test_a_bad_preset_is_a_notice_not_a_crash(tmp_path, tiny_model, tiny_pack):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bliss": 0.1}))
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.chat.action_load_preset()
        await pilot.pause()
        app.screen.query_one("#path").value = str(bad)
        await pilot.press("enter")
        await pilot.pause()
        assert engine(app).steering.snapshot().as_dict() == {}


async def test_selecting_a_token_shows_its_readout_and_tint_cycles(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        await pilot.press("f2")
        transcript = app.chat.view.transcript
        selected = transcript.selected
        assert selected is not None and f"token {selected}" in app.query_one("SignedBars").title
        await pilot.press("f2")
        assert transcript.selected < selected
        await pilot.press("f4")
        assert transcript.selected is None
        await pilot.press("ctrl+t")
        assert transcript.tint == "valence"
        await pilot.press("ctrl+t", "ctrl+t")
        assert transcript.tint == "emotion"


async def test_small_terminal_collapses_the_panel(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.chat.view.has_class("-narrow") and app.chat.view.has_class("-short")
        assert not app.query_one("#va-plane").display
        await pilot.press("ctrl+b")
        assert not app.query_one("#side").display


async def test_clicking_a_token_selects_it_and_hovering_shows_it(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await send(pilot, "hello")
        await settle(pilot)
        transcript = app.chat.view.transcript
        reply = next(turn for turn in transcript.turns if turn.role == "reply")
        transcript.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        at = (10, transcript.line_of(reply))  # "model  " and the first tokens: 10 cells from the edge
        await pilot.hover(transcript, offset=at)
        await pilot.pause()
        assert app.query_one("SignedBars").title.startswith("hover: token")
        await pilot.click(transcript, offset=at)
        await pilot.pause()
        assert app.chat.view.transcript.selected is not None
