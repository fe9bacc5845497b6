"""Branching a reply from one of its tokens (the KV cache cropped, not recomputed), and compares."""

import pytest

from emolab.core.compare import first_difference, mean_difference
from emolab.core.engine import Engine
from emolab.core.errors import EmolabError
from emolab.core.events import BranchStarted, CompareFinished, CompareStarted, LaneEvent, Token, TurnFinished
from emolab.core.sampling import Sampling

LONG = Sampling(temperature=0, max_tokens=12)


def long_engine(model, pack=None, sampling=LONG):
    engine = Engine(model, pack, sampling=sampling)
    engine._eos_ids = set()  # a random model may say EOS early; these tests need whole replies
    return engine


def replies(events):
    return [e for e in events if isinstance(e, Token) and e.source == "reply"]


def count_forward_positions(engine):
    fed = []
    forward = engine.decoder.forward

    def counting(ids, cache, additions, **options):
        fed.append(len(ids))
        return forward(ids, cache, additions, **options)

    engine.decoder.forward = counting
    return fed


@pytest.mark.parametrize("decoder", ["lean", "transformers"])
def test_a_branch_keeps_the_prefix_and_crops_the_cache_instead_of_recomputing_it(tiny_model, tiny_pack, decoder):
    engine = long_engine(tiny_model, tiny_pack)
    engine.decoder = Engine(tiny_model, tiny_pack, decoder=decoder).decoder
    original = replies(list(engine.chat("tell me a story")))
    sibling = engine.conversation.copy()
    at = original[4]
    fed = count_forward_positions(engine)
    events = list(engine.branch_at(at.position))
    (start,) = [e for e in events if isinstance(e, BranchStarted)]
    assert (start.position, start.kept_tokens, start.message) == (at.position, 5, 1)
    assert start.reused_tokens == at.position  # everything but the last kept token came from the cache
    new = replies(events)
    assert fed == [1] * (1 + len(new)) and len(new) == LONG.max_tokens  # no prefix recompute
    assert [e.position for e in new] == list(range(at.position + 1, at.position + 1 + len(new)))
    branch = engine.conversation.replies[1].ids
    assert list(branch[:5]) == [e.token_id for e in original[:5]]  # the kept tokens, identical
    # the same steering, greedy: the branch writes on exactly as the original did
    assert [e.token_id for e in new[: len(original) - 5]] == [e.token_id for e in original[5:]]
    assert engine.conversation.messages[1]["content"].startswith("".join(e.text for e in original[:5]))
    # the original stays a sibling to go back to
    engine.use_history(sibling)
    assert engine.conversation.replies[1].ids == tuple(e.token_id for e in original)


def test_a_branch_writes_on_with_the_sliders_as_they_are_now(tiny_model, tiny_pack):
    engine = long_engine(tiny_model, tiny_pack)
    original = replies(list(engine.chat("tell me a story")))
    engine.steering.set("happy", 2.0)
    new = replies(list(engine.branch_at(original[2].position)))
    assert new and all(e.steering == {"happy": 2.0} for e in new)
    assert engine.conversation.messages[-1]["role"] == "assistant"


def test_a_branch_of_an_earlier_turn_drops_the_later_ones_and_reuses_the_shared_prefix(tiny_model):
    engine = long_engine(tiny_model)
    first = replies(list(engine.chat("first question")))
    list(engine.chat("second question"))
    fed = count_forward_positions(engine)
    events = list(engine.branch_at(first[3].position))
    assert [m["role"] for m in engine.conversation.messages] == ["user", "assistant"]
    (start,) = [e for e in events if isinstance(e, BranchStarted)]
    # The second turn's prompt held the first reply as re-tokenized text, so the cache shares the
    # context up to where that tokenization differs (if it does); only the rest is fed again.
    assert start.reused_tokens > first[0].position
    assert fed == [first[3].position + 1 - start.reused_tokens] + [1] * len(replies(events))
    followed = list(engine.chat("and a third"))
    assert replies(followed)


def test_branching_outside_a_reply_is_a_clear_error(tiny_model):
    engine = long_engine(tiny_model)
    with pytest.raises(EmolabError, match="not a token of a reply"):
        engine.branch_at(0)
    list(engine.chat("hi"))
    with pytest.raises(EmolabError, match="not a token of a reply"):
        engine.branch_at(1)  # a prompt token


def lanes(events):
    tokens = {0: [], 1: []}
    ends = {}
    for event in events:
        if isinstance(event, LaneEvent):
            if isinstance(event.event, Token) and event.event.source == "reply":
                tokens[event.lane].append(event.event)
            elif isinstance(event.event, TurnFinished):
                ends[event.lane] = event.event
    return tokens, ends


def regenerated(model, pack, steering, sampling):
    """What a compare's lane writes: the reply regenerated under `steering`, the seed restarted."""
    engine = long_engine(model, pack, sampling)
    list(engine.chat("how are you"))
    engine.steering.update(steering)
    engine.sampler.reseed(sampling.seed)
    return [e.token_id for e in replies(engine.regenerate())]


@pytest.mark.parametrize("mode", ["batched", "interleaved"])
@pytest.mark.parametrize(
    "sampling", [LONG, Sampling(temperature=1.0, top_p=0.9, max_tokens=12, seed=3)], ids=["greedy", "sampled"]
)
def test_compare_answers_twice_as_two_regenerations_would(tiny_model, tiny_pack, mode, sampling):
    engine = long_engine(tiny_model, tiny_pack, sampling)
    list(engine.chat("how are you"))
    engine.steering.set("happy", 2.0)
    events = list(engine.compare(mode=mode))
    (start,) = [e for e in events if isinstance(e, CompareStarted)]
    (end,) = [e for e in events if isinstance(e, CompareFinished)]
    assert start.mode == mode and dict(start.steering[0]) == {"happy": 2.0} and dict(start.steering[1]) == {}
    tokens, ends = lanes(events)
    ids = [[e.token_id for e in tokens[lane]] for lane in (0, 1)]
    assert ids[0] == regenerated(tiny_model, tiny_pack, {"happy": 2.0}, sampling)
    assert ids[1] == regenerated(tiny_model, tiny_pack, {}, sampling)
    assert end.first_difference == first_difference(*ids) and end.reply_tokens == (12, 12)
    assert ends[0].text == "".join(e.text for e in tokens[0])
    assert all(e.steering == {} for e in tokens[1]) and all(e.steering == {"happy": 2.0} for e in tokens[0])
    # the conversation goes on with lane 0's reply, its cache reused
    assert engine.conversation.messages[-1]["content"] == ends[0].text
    again = list(engine.chat("and then"))
    assert next(e for e in again if hasattr(e, "reused_tokens")).reused_tokens > len(ids[0])


def test_compare_with_a_second_preset_and_the_first_difference(tiny_model, tiny_pack):
    engine = long_engine(tiny_model, tiny_pack)
    list(engine.chat("how are you"))
    events = list(engine.compare({"sad": 2.0}, steering={"happy": 2.0}))
    tokens, _ = lanes(events)
    end = next(e for e in events if isinstance(e, CompareFinished))
    a, b = ([e.token_id for e in tokens[lane]] for lane in (0, 1))
    if end.first_difference is not None:
        assert (
            a[: end.first_difference] == b[: end.first_difference]
            and a[end.first_difference] != b[end.first_difference]
        )
    versions = {e.steering_version for lane in tokens.values() for e in lane}
    assert len(versions) == 2  # each side's state has a version of its own


def test_compare_errors(tiny_model, tiny_pack):
    with pytest.raises(EmolabError, match="vector pack"):
        Engine(tiny_model).compare()
    with pytest.raises(EmolabError, match="no message"):
        Engine(tiny_model, tiny_pack).compare()
    with pytest.raises(EmolabError, match="cannot batch"):
        Engine(tiny_model, tiny_pack, decoder="transformers").compare(mode="batched")


def test_first_difference_and_mean_difference():
    import numpy as np

    assert first_difference([1, 2, 3], [1, 2, 3]) is None
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([1, 2], [1, 2, 3]) == 2
    diff = mean_difference(np.array([[1.0, 0.0], [3.0, 0.0]]), np.array([[0.0, 1.0]]))
    assert diff.tolist() == [2.0, -1.0]
