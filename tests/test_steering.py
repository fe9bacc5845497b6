"""Steering: units, layer indexing, and a change that lands on exactly the next token."""

import threading

import pytest
import torch

from emolab.core.engine import Engine
from emolab.core.errors import EmolabError
from emolab.core.hooks import ResidualHooks
from emolab.core.sampling import Sampling
from emolab.core.steering import SteeringState, SteeringVectors, parse_steer_option


def expected_vector(pack, layer, strengths):
    data = pack.layers[layer]
    total = torch.zeros(data.directions.shape[1])
    for name, strength in strengths.items():
        total += strength * data.mean_norm * data.directions[pack.emotion_index[name]]
    return total


def test_vectors_are_strength_times_mean_norm_times_direction_summed(tiny_pack):
    state = SteeringState(tiny_pack)
    state.update({"happy": 0.5, "sad": -1.25, "at ease": 0.1})
    vectors = SteeringVectors(tiny_pack, device_of={1: torch.device("cpu")}, dtype=torch.float32)
    got = vectors.for_snapshot(state.snapshot())
    assert set(got) == {1}
    torch.testing.assert_close(got[1], expected_vector(tiny_pack, 1, {"happy": 0.5, "sad": -1.25, "at ease": 0.1}))


def test_vectors_are_rebuilt_only_when_the_state_changes(tiny_pack):
    state = SteeringState(tiny_pack)
    state.set("happy", 1.0)
    vectors = SteeringVectors(tiny_pack, device_of={1: torch.device("cpu")}, dtype=torch.float32)
    first = vectors.for_snapshot(state.snapshot())
    assert vectors.for_snapshot(state.snapshot()) is first
    state.set("happy", 0.5)
    assert vectors.for_snapshot(state.snapshot()) is not first


def test_block_L_hook_changes_hidden_states_L_plus_1_and_nothing_before(tiny_model, tiny_pack):
    """A direction read from hidden_states[L+1] must be added by the hook on block L.

    The residual that reaches block L+1 is read with a pre-hook: in transformers 5,
    `output_hidden_states` records block outputs before later forward hooks run.
    """
    layer = 1
    vector = torch.randn(tiny_model.hidden_size)
    ids = torch.tensor([[1, 5, 9, 12, 40]])
    base = tiny_model.model(ids, output_hidden_states=True).hidden_states
    residuals = []
    handles = [
        block.register_forward_pre_hook(lambda m, args: residuals.append(args[0].clone()))
        for block in tiny_model.blocks
    ]
    hooks = ResidualHooks(tiny_model.blocks, probe_layer=layer, steer_layers=[layer])
    hooks.additions = {layer: vector}
    try:
        with hooks:
            tiny_model.model(ids)
    finally:
        for handle in handles:
            handle.remove()
    # residuals[i] is the input of block i, which is hidden_states[i]
    for index in range(layer + 1):
        torch.testing.assert_close(residuals[index], base[index], rtol=0, atol=0)
    torch.testing.assert_close(
        residuals[layer + 1] - base[layer + 1], vector.expand_as(base[layer + 1]), rtol=0, atol=1e-5
    )
    assert not torch.allclose(residuals[layer + 2], base[layer + 2])
    # the probe's capture at block L is hidden_states[L+1], before the addition
    torch.testing.assert_close(hooks.captured, base[layer + 1], rtol=0, atol=0)


def test_hooks_are_removed_on_exit(tiny_model):
    ids = torch.tensor([[1, 5, 9]])
    base = tiny_model.model(ids).logits
    hooks = ResidualHooks(tiny_model.blocks, probe_layer=None, steer_layers=[0])
    hooks.additions = {0: torch.ones(tiny_model.hidden_size)}
    with hooks:
        assert not torch.allclose(tiny_model.model(ids).logits, base)
    torch.testing.assert_close(tiny_model.model(ids).logits, base, rtol=0, atol=0)


class ResidualRecorder:
    """Records block L's raw output (before emolab's hook) and the steered residual after it."""

    def __init__(self, loaded, layer):
        self.raw, self.steered = [], []
        blocks = loaded.blocks
        self.handles = [
            blocks[layer].register_forward_hook(lambda m, i, o: self.raw.append(o.clone()), prepend=True),
            blocks[layer + 1].register_forward_pre_hook(lambda m, args: self.steered.append(args[0].clone())),
        ]

    def remove(self):
        for handle in self.handles:
            handle.remove()


def test_a_change_between_two_decode_steps_moves_the_next_residual_by_exactly_the_vector(tiny_model, tiny_pack):
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=8))
    layer = tiny_pack.steer_layers[0]
    recorder = ResidualRecorder(tiny_model, layer)
    try:
        events = engine.chat("hello there")
        replies = []
        for event in events:
            if getattr(event, "source", None) == "reply":
                replies.append(event)
                if len(replies) == 3:
                    engine.steering.set("afraid", 1.5)  # between decode steps 3 and 4
    finally:
        recorder.remove()
    # forward 0 is the prompt; forward k (k >= 1) fed reply token k-1
    deltas = [steered - raw for raw, steered in zip(recorder.raw, recorder.steered, strict=True)]
    for delta in deltas[:4]:  # the prompt, and the forwards that fed reply tokens 0..2
        assert float(delta.abs().max()) == 0.0
    want = expected_vector(tiny_pack, layer, {"afraid": 1.5})
    for delta in deltas[4:]:
        torch.testing.assert_close(delta[0, -1], want, rtol=0, atol=1e-5)
    # the token chosen by the first steered forward reports the new state
    assert [dict(event.steering) for event in replies[:4]] == [{}, {}, {}, {}]
    assert all(dict(event.steering) == {"afraid": 1.5} for event in replies[4:])


def test_a_change_from_another_thread_lands_on_a_later_token_and_stays(tiny_model, tiny_pack):
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=40))
    changed = threading.Event()
    seen = []
    for event in engine.chat("hello"):
        if getattr(event, "source", None) != "reply":
            continue
        seen.append(dict(event.steering))
        if len(seen) == 5:
            worker = threading.Thread(target=lambda: (engine.steering.set("calm", -1.0), changed.set()))
            worker.start()
            worker.join()
    assert changed.is_set()
    first = next(i for i, state in enumerate(seen) if state)
    assert first >= 5
    assert all(state == {"calm": -1.0} for state in seen[first:])


def test_unknown_emotion_suggests_close_names(tiny_pack):
    state = SteeringState(tiny_pack)
    with pytest.raises(EmolabError, match="did you mean happy"):
        state.set("hapy", 0.1)


def test_out_of_range_strength_gives_the_range(tiny_pack):
    state = SteeringState(tiny_pack)
    with pytest.raises(EmolabError, match="-2 to 2"):
        state.set("happy", 3.0)


def test_zero_removes_and_names_resolve_case_and_spaces(tiny_pack):
    state = SteeringState(tiny_pack)
    assert state.set("  At   Ease ", 0.2) == "at ease"
    state.set("at ease", 0)
    assert state.snapshot().as_dict() == {}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("desperate=0.05", ("desperate", 0.05)),
        ("at ease=-0.1", ("at ease", -0.1)),
        ("calm = 1e-2", ("calm", 0.01)),
    ],
)
def test_parse_steer_option(text, expected):
    assert parse_steer_option(text) == expected


@pytest.mark.parametrize("text", ["desperate", "=0.1", "calm=abc", "calm=nan", "calm=inf"])
def test_parse_steer_option_rejects(text):
    with pytest.raises(EmolabError):
        parse_steer_option(text)


def test_other_stored_layers_can_be_steered_each_at_the_full_strength(tiny_pack):
    cpu = torch.device("cpu")
    vectors = SteeringVectors(tiny_pack, device_of={1: cpu, 2: cpu}, dtype=torch.float32, layers=[2, 1, 2])
    assert vectors.layers == [1, 2]
    got = vectors.compute({"happy": 0.5})
    for layer in (1, 2):
        torch.testing.assert_close(got[layer], expected_vector(tiny_pack, layer, {"happy": 0.5}))


@pytest.mark.parametrize("layers, message", [([3], "layer 3 is not stored"), ([], "no layer given")])
def test_steering_a_layer_the_pack_does_not_store_is_refused(tiny_pack, layers, message):
    with pytest.raises(EmolabError, match=message) as error:
        SteeringVectors(tiny_pack, device_of={}, dtype=torch.float32, layers=layers)
    assert "it stores layers 1, 2" in str(error.value)


def test_both_decoders_steer_the_layers_the_engine_is_given(tiny_model, tiny_pack):
    def reply(decoder, layers):
        engine = Engine(
            tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=8), decoder=decoder, steer_layers=layers
        )
        engine.steering.set("happy", 2.0)
        return [e.token_id for e in engine.chat("hello") if getattr(e, "source", None) == "reply"]

    assert reply("lean", [2]) == reply("transformers", [2])  # the hooks reach a layer outside steer_layers
    assert reply("lean", [1, 2]) == reply("transformers", [1, 2])
    assert reply("lean", [1, 2]) != reply("lean", None)  # None: the pack's own [1]
