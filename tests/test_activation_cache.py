"""The activation cache: validate after build reuses the build's reading, and nothing stale is trusted."""

import pytest
import torch

from emolab.recipe import build as build_module
from emolab.recipe.activation_cache import activation_key, cache_file
from emolab.recipe.corpus import CorpusPlan, CorpusTexts

EMOTIONS = ("happy", "sad")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLAB_CACHE", str(tmp_path / "cache"))


def corpus(story_suffix=""):
    plan = CorpusPlan(
        model="tiny", weights="w", emotions=EMOTIONS, topics=("a", "b"), stories_per_topic=1, neutral_tasks=("sorting",)
    )
    texts = CorpusTexts(
        stories={
            "happy": ["The sun came out and she laughed." + story_suffix, "He grinned."],
            "sad": ["She stared at the empty chair.", "The rain kept falling."],
        },
        story_topics={"happy": [0, 1], "sad": [0, 1]},
        neutral=["Human: sort 3 1 2. Assistant: 1 2 3."],
        named={},
        empty=0,
    )
    return plan, texts


def collect(tiny_model, plan, texts):
    return build_module.collect_activations(
        tiny_model, plan.emotions, texts, [1, 2], start_token=1, batch_size=2, progress=lambda *a: None
    )


def counting_reads(monkeypatch):
    """Count whole readings: each reads the neutral texts once."""
    calls = []
    original = build_module.token_activations

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(build_module, "token_activations", counted)
    return calls


def test_the_second_reading_of_the_same_texts_comes_from_the_cache(tiny_model, monkeypatch):
    calls = counting_reads(monkeypatch)
    plan, texts = corpus()
    first = collect(tiny_model, plan, texts)
    second = collect(tiny_model, plan, texts)
    assert len(calls) == 1
    assert torch.equal(first.means, second.means) and torch.equal(first.neutral, second.neutral)
    assert first.labels.tolist() == second.labels.tolist() == [0, 0, 1, 1]


def test_other_texts_or_layers_are_read_again(tiny_model, monkeypatch):
    calls = counting_reads(monkeypatch)
    collect(tiny_model, *corpus())
    collect(tiny_model, *corpus(" Then more."))
    plan, texts = corpus()
    build_module.collect_activations(
        tiny_model, plan.emotions, texts, [1, 3], start_token=1, batch_size=2, progress=lambda *a: None
    )
    assert len(calls) == 3


def test_a_damaged_cache_file_is_read_again_and_replaced(tiny_model, monkeypatch):
    plan, texts = corpus()
    expected = collect(tiny_model, plan, texts)
    stories = [t for e in EMOTIONS for t in texts.stories[e]]
    path = cache_file(activation_key(tiny_model, [*EMOTIONS, "", *stories, "", *texts.neutral], [1, 2], 1))
    assert path.exists()
    path.write_bytes(path.read_bytes()[:100])
    calls = counting_reads(monkeypatch)
    again = collect(tiny_model, plan, texts)
    assert len(calls) == 1 and torch.equal(again.means, expected.means)
    assert len(path.read_bytes()) > 100
    assert not list(path.parent.glob("*.partial"))
