"""Probes: one matrix product, neutral z-scores, read before same-layer steering."""

import numpy as np
import torch

from emolab.core.engine import Engine
from emolab.core.probes import Probe
from emolab.core.sampling import Sampling
from tests.tiny import write_tiny_pack


def test_probe_is_the_neutral_z_score_of_the_projection(tiny_pack):
    probe = Probe(tiny_pack)
    data = tiny_pack.layers[tiny_pack.probe_layer]
    hidden = torch.randn(7, data.directions.shape[1])
    want = ((hidden @ data.directions.T) - data.neutral_mean) / data.neutral_std
    np.testing.assert_allclose(probe.read(hidden), want.numpy(), rtol=1e-5, atol=1e-5)


def test_probe_keeps_leading_dimensions(tiny_pack):
    probe = Probe(tiny_pack)
    hidden = torch.randn(2, 3, tiny_pack.hidden_size)
    assert probe.read(hidden).shape == (2, 3, len(tiny_pack.emotions))


def test_every_prompt_and_reply_token_gets_a_readout_for_every_emotion(tiny_model, tiny_pack):
    engine = Engine(tiny_model, tiny_pack, sampling=Sampling(temperature=0, max_tokens=5))
    tokens = [event for event in engine.chat("hi") if hasattr(event, "probe")]
    assert {event.source for event in tokens} == {"prompt", "reply"}
    assert all(event.probe.shape == (len(tiny_pack.emotions),) for event in tokens)
    assert [event.position for event in tokens] == list(range(len(tokens)))


def prompt_readouts(model, pack, strength):
    engine = Engine(model, pack, sampling=Sampling(temperature=0, max_tokens=1))
    if strength:
        engine.steering.set("happy", strength)
    return np.stack([e.probe for e in engine.chat("hello") if getattr(e, "source", None) == "prompt"])


def test_probe_reads_before_steering_at_its_own_layer(tmp_path, tiny_model):
    """With steering only at the probe layer, the prompt's readouts must not move."""
    pack = write_tiny_pack(tmp_path / "same-layer", tiny_model, layers=(2,))
    assert pack.steer_layers == [2] and pack.probe_layer == 2
    np.testing.assert_array_equal(prompt_readouts(tiny_model, pack, 0.0), prompt_readouts(tiny_model, pack, 2.0))


def test_steering_at_an_earlier_layer_reaches_the_probe(tiny_model, tiny_pack):
    assert tiny_pack.steer_layers == [1] and tiny_pack.probe_layer == 2
    assert not np.allclose(prompt_readouts(tiny_model, tiny_pack, 0.0), prompt_readouts(tiny_model, tiny_pack, 2.0))
