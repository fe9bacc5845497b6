"""Keys defined once: a keymap file rebinds them by id, and help and the palette follow."""

import json

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.errors import EmolabError
from emolab.tui.app import known_binding_ids, load_keymap
from tests.tui.helpers import make_app, ready


async def test_a_keymap_rebinds_a_key_and_help_and_the_palette_show_the_new_one(tiny_model, tiny_pack):
    app = make_app(tiny_model, tiny_pack, keymap={"view.tint": "ctrl+y"})
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        transcript = app.chat.view.transcript
        await pilot.press("ctrl+t")
        assert transcript.tint == "emotion"
        await pilot.press("ctrl+y")
        assert transcript.tint == "valence"
        commands = {command.title: command for command in app.get_system_commands(app.chat)}
        tint = next(command for title, command in commands.items() if title.startswith("Tint the tokens"))
        assert tint.help == "Ctrl+Y"
        await tint.callback()
        assert transcript.tint == "off"
        await pilot.press("f1")
        text = app.screen.query_one("#help-text").source
        assert "| Ctrl+Y | Tint the tokens" in text and "Ctrl+T" not in text
        assert "| Esc | Stop the reply" in text and "| ← | A fine step down |" in text


def test_every_binding_has_an_id_a_keymap_can_name():
    ids = known_binding_ids()
    assert {"chat.stop", "view.tint", "replay.play", "slider.reset", "app.help", "app.quit"} <= ids


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"view.tnt": "ctrl+y"}', "no binding has the id 'view.tnt'"),
        ('{"view.tint": 5}', "a keymap is a JSON object of binding id"),
        ("view.tint = ctrl+y", "not a JSON keymap"),
    ],
)
def test_a_bad_keymap_is_one_line(tmp_path, content, message):
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(EmolabError, match=message):
        load_keymap(path)


def test_chat_refuses_a_bad_keymap_before_the_app_opens(tmp_path, tiny_pack, tiny_model_dir):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"chat.shout": "f9"}))
    result = CliRunner().invoke(
        main, ["chat", "--vectors", str(tiny_pack.path), "--model", str(tiny_model_dir), "--keymap", str(path)]
    )
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "no binding has the id 'chat.shout'" in result.output


def test_the_default_keymap_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"replay.play": "p"}))
    monkeypatch.setenv("EMOLAB_KEYMAP", str(path))
    assert load_keymap(None) == {"replay.play": "p"}
