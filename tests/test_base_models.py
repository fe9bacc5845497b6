"""Base models, which ship no chat template: stories from a plain prompt, `build-pack` end to end, and
the console and `run` saying that a plain transcript is used."""

import json

import pytest
from click.testing import CliRunner

from emolab.cli import main
from emolab.core.conversation import PLAIN_TRANSCRIPT_NOTE, prompt_text, render_prompt
from emolab.core.pack import load_pack
from emolab.recipe.corpus import CorpusPlan, generate_replies, story_prompt_format
from tests.tiny import tiny_loaded_model, write_tiny_pack
from tests.tui.helpers import make_app, ready


@pytest.fixture(scope="module")
def base_model():
    return tiny_loaded_model(chat_template=False)


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory, base_model):
    folder = tmp_path_factory.mktemp("base-model")
    base_model.model.save_pretrained(folder, safe_serialization=True)
    base_model.tokenizer.save_pretrained(folder)
    return folder


def plan(**changes) -> CorpusPlan:
    return CorpusPlan(
        model="m",
        weights="w",
        emotions=("happy",),
        topics=("a walk",),
        stories_per_topic=1,
        neutral_tasks=("a recipe",),
        max_new_tokens=6,
        **changes,
    )


def test_a_base_model_gets_its_story_prompts_as_a_plain_transcript(base_model, tiny_model):
    assert story_prompt_format(base_model) == "plain" and story_prompt_format(tiny_model) == "chat"
    text = prompt_text(base_model.tokenizer, [{"role": "user", "content": "Write a story."}])
    assert text == "User: Write a story.\nAssistant:"
    replies = generate_replies(base_model, ["Write a story.", "Write another."], plan(), seed=0)
    assert len(replies) == 2 and all(isinstance(reply, str) for reply in replies)
    # the chat's own prompt for a base model is the same transcript
    assert (
        base_model.tokenizer.decode(
            render_prompt(base_model.tokenizer, [{"role": "user", "content": "Write a story."}]),
            skip_special_tokens=True,
        )
        == text
    )


def test_a_base_models_story_ends_where_it_starts_writing_the_next_turn(base_model, monkeypatch):
    from emolab.recipe import corpus

    monkeypatch.setattr(
        base_model.tokenizer,
        "decode",
        lambda ids, skip_special_tokens: " She ran home.\nUser: now write another\nAssistant: no",
    )
    assert corpus.generate_replies(base_model, ["Write a story."], plan(), seed=0) == ["She ran home."]


def test_build_pack_runs_on_a_model_without_a_chat_template(tmp_path, base_model_dir):
    emotions = tmp_path / "emotions.txt"
    emotions.write_text("happy\nsad\nafraid\ncalm\n")
    out = tmp_path / "pack"
    result = CliRunner().invoke(
        main,
        [
            "build-pack",
            "--model",
            str(base_model_dir),
            "--out",
            str(out),
            "--emotions",
            str(emotions),
            "--topics",
            "5",
            "--stories-per-topic",
            "1",
            "--neutral-per-task",
            "1",
            "--max-new-tokens",
            "6",
            "--layers",
            "1,2",
            "--start-token",
            "2",
            "--batch-size",
            "32",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"{PLAIN_TRANSCRIPT_NOTE} (the story prompts are given as one)" in result.output
    assert (out / "manifest.json").is_file()
    assert load_pack(out).manifest["provenance"]["prompt_format"] == "plain"
    validated = CliRunner().invoke(main, ["validate", str(out), "--out", str(tmp_path / "report")])
    assert validated.exit_code == 0, validated.output


def test_run_says_a_plain_transcript_is_used(tmp_path, base_model, base_model_dir):
    pack = write_tiny_pack(tmp_path / "pack", base_model)
    result = CliRunner().invoke(
        main, ["run", "--vectors", str(pack.path), "--model", str(base_model_dir), "-p", "hi", "--max-tokens", "3"]
    )
    assert result.exit_code == 0, result.output
    assert f") · {PLAIN_TRANSCRIPT_NOTE} · pack tiny" in result.output
    as_json = CliRunner().invoke(
        main,
        ["run", "--vectors", str(pack.path), "--model", str(base_model_dir), "-p", "hi", "--max-tokens", "3", "--json"],
    )
    assert json.loads(as_json.output.splitlines()[0])["prompt_format"] == "plain"


async def test_the_status_bar_says_a_plain_transcript_is_used(base_model, tiny_model, tmp_path):
    for model, expected in ((base_model, True), (tiny_model, False)):
        pack = write_tiny_pack(tmp_path / model.reference, model)
        app = make_app(model, pack)
        async with app.run_test(size=(160, 40)) as pilot:
            await ready(pilot)
            status = app.chat.view.status
            assert (PLAIN_TRANSCRIPT_NOTE in status.model) is expected
            assert (PLAIN_TRANSCRIPT_NOTE in str(status.render())) is expected


REPLY = "I am fine.\nUser: and you?\nAssistant: yes"


def script(tokenizer):
    """A sampler's `choose` that writes REPLY, then EOS: a base model that goes on to write the next turn."""
    ids = iter(tokenizer(REPLY, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
    return lambda self, logits, sampling: next(ids)


def test_a_base_model_reply_ends_where_it_begins_the_next_turn(monkeypatch, tmp_path, base_model):
    from emolab.core.engine import Engine
    from emolab.core.events import TurnFinished
    from emolab.core.sampler import Sampler
    from emolab.core.sampling import Sampling

    engine = Engine(base_model, write_tiny_pack(tmp_path / "pack", base_model), sampling=Sampling(max_tokens=60))
    monkeypatch.setattr(Sampler, "choose", script(base_model.tokenizer))
    finished = [event for event in engine.chat("hi") if isinstance(event, TurnFinished)]
    assert [(event.reason, event.text) for event in finished] == [("eos", "I am fine.")]
    assert engine.conversation.messages[-1]["content"] == "I am fine."


def test_each_side_of_a_base_model_compare_ends_where_it_begins_the_next_turn(monkeypatch, tmp_path, base_model):
    from emolab.core.engine import Engine
    from emolab.core.events import LaneEvent, TurnFinished
    from emolab.core.sampler import Sampler
    from emolab.core.sampling import Sampling

    engine = Engine(base_model, write_tiny_pack(tmp_path / "pack", base_model), sampling=Sampling(max_tokens=60))
    engine.conversation.add("user", "hi")
    lanes = {}

    def choose(self, logits, sampling):  # each lane's own sampler writes REPLY from the start
        return lanes.setdefault(id(self), script(base_model.tokenizer))(self, logits, sampling)

    monkeypatch.setattr(Sampler, "choose", choose)
    ends = [e.event for e in engine.compare() if isinstance(e, LaneEvent) and isinstance(e.event, TurnFinished)]
    assert [(event.reason, event.text) for event in ends] == [("eos", "I am fine.")] * 2
    assert engine.conversation.messages[-1]["content"] == "I am fine."
