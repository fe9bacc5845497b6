"""Smoothed readouts and the alert calibration: the math, and the rule."""

import numpy as np
import pytest

from emolab.core.smoothing import Smoother, rising_crossings, smooth, turn_starts, weight
from emolab.recipe.alerts import alert_rates, thresholds_for


def test_the_half_life_halves_an_old_readouts_weight():
    series = np.zeros((9, 1), dtype=np.float32)
    series[0] = 1.0
    smoothed = smooth(series, half_life=4)
    assert smoothed[0, 0] == pytest.approx(weight(4))
    assert smoothed[4, 0] == pytest.approx(smoothed[0, 0] / 2)
    assert smoothed[8, 0] == pytest.approx(smoothed[0, 0] / 4)


def test_no_smoothing_at_half_life_zero_and_a_steady_input_converges_to_itself():
    series = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(smooth(series, 0), series, rtol=1e-6)
    steady = smooth(np.full((200, 2), 2.5, dtype=np.float32), 8)
    np.testing.assert_allclose(steady[-1], [2.5, 2.5], rtol=1e-4)


def test_smoothing_restarts_at_each_turn_like_the_live_smoother():
    series = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    sources = ["prompt"] * 3 + ["reply"] * 3 + ["prompt"] * 2 + ["reply"] * 2
    starts = turn_starts(sources)
    assert starts == [0, 6]
    live, smoother = [], Smoother(4)
    for row in range(10):
        if row in starts:
            smoother.reset()
        live.append(smoother.update(series[row]).copy())
    np.testing.assert_allclose(smooth(series, 4, starts), np.array(live), rtol=1e-6)


def test_an_alert_fires_on_a_sustained_spike_and_not_on_a_one_token_blip():
    calm = np.zeros((40, 1), dtype=np.float32)
    blip, spike = calm.copy(), calm.copy()
    blip[10] = 8.0
    spike[10:22] = 5.0
    threshold = np.array([3.0])
    assert rising_crossings(smooth(blip, 4), threshold).sum() == 0
    assert rising_crossings(smooth(spike, 4), threshold).sum() == 1  # once, on the way up
    assert rising_crossings(smooth(blip, 0), threshold).sum() == 1  # raw readouts alert on the blip


def test_thresholds_sit_at_the_neutral_peaks_never_below_the_floor():
    rng = np.random.default_rng(2)
    neutral = [rng.normal(size=(300, 3)).astype(np.float32) for _ in range(4)]
    neutral[0][50, 1] = 20.0  # one loud neutral token
    thresholds = thresholds_for(neutral, 0)
    assert thresholds[1] == pytest.approx(20.0) and min(thresholds) >= 3.0
    emotions = ["desperate", "calm", "afraid"]
    stories = [np.full((30, 3), 6.0, dtype=np.float32), np.zeros((30, 3), dtype=np.float32)]
    rates = alert_rates(neutral, stories, [0, 2], thresholds, 0, emotions)
    assert rates["false_alerts"] == 0 and rates["neutral_tokens"] == 1200
    assert rates["recall_all"] == 0.5 and rates["recall_watched"] == 0.5
