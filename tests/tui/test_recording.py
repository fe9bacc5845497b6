"""The console's session file: written from the first message on, never empty."""

import json

from emolab.core.session import SessionRecorder, load_session
from tests.tui.helpers import make_app, ready, send, settle


def recording_app(tmp_path, tiny_model, tiny_pack, **kwargs):
    path = tmp_path / "sessions" / "chat.json"
    factory = lambda meta: SessionRecorder(path, meta)  # noqa: E731
    return make_app(tiny_model, tiny_pack, recorder_factory=factory, **kwargs), path


async def test_quitting_before_the_first_message_leaves_no_session_file(tmp_path, tiny_model, tiny_pack):
    app, path = recording_app(tmp_path, tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#slider-happy").focus()
        await pilot.press("right")
        await pilot.press("ctrl+q")
    assert not path.exists() and (not path.parent.exists() or not any(path.parent.iterdir()))


async def test_the_first_message_starts_the_file_with_everything_before_it(tmp_path, tiny_model, tiny_pack):
    app, path = recording_app(tmp_path, tiny_model, tiny_pack)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.query_one("#slider-happy").focus()
        await pilot.press("right")  # before the first message: recorded with it
        assert not path.exists()
        await send(pilot, "hello")
        await settle(pilot)
        assert path.exists()
        await pilot.press("ctrl+q")
    data, _ = load_session(path)
    assert [turn["role"] for turn in data.turns] == ["user", "assistant"]
    assert data.steering[0]["emotion"] == "happy"
    pins = [note for note in data.notes if note["kind"] == "pinned"]
    assert pins and pins[-1]["emotions"] == app_pins(tiny_pack)
    assert json.loads(path.read_text())["tokens"]["count"] == data.token_count > 0


def app_pins(pack):
    from emolab.tui.view import DEFAULT_PINNED

    return [name for name in DEFAULT_PINNED if name in pack.emotion_index]
