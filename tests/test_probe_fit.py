"""Probe directions of their own: fits with known answers on synthetic clusters."""

import numpy as np
import torch

from emolab.core.pack import ProbeData
from emolab.recipe.assemble import directions_for_layer
from emolab.recipe.metrics import rank_accuracy
from emolab.recipe.probe_fit import (
    CANDIDATES,
    HUB_LIMIT,
    CandidateScore,
    ProbeConfig,
    choose,
    fit_probe,
    hub_shares,
    score_candidates,
)

EMOTIONS = [f"e{i}" for i in range(8)]


def clusters(per_class: int, seed: int, *, hidden: int = 24, hub: float = 0.0):
    """Class means on random directions, isotropic noise, plus a shared nuisance direction with a
    class-dependent size: a 'hub' that the difference of means mistakes for an emotion."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(len(EMOTIONS), hidden, generator=generator) * 1.5
    nuisance = torch.randn(hidden, generator=generator)
    noisy = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(EMOTIONS)).repeat_interleave(per_class)
    # correlated noise along the nuisance direction, which LDA should learn to ignore
    noise = (
        torch.randn(len(labels), hidden, generator=noisy) + torch.randn(len(labels), 1, generator=noisy) * 4 * nuisance
    )
    return centres[labels] + noise + hub * nuisance, labels


def test_lda_recovers_held_out_labels_where_correlated_noise_confuses_the_difference_of_means():
    train, train_labels = clusters(20, seed=1)
    held, held_labels = clusters(10, seed=2)
    neutral = torch.randn(200, 24, generator=torch.Generator().manual_seed(3))
    recipe = directions_for_layer(train, train_labels, EMOTIONS, neutral, denoise_variance=0)
    lda = fit_probe(ProbeConfig("lda", "stories", False), train, train_labels, len(EMOTIONS), neutral)
    lda_accuracy = rank_accuracy(lda.z_scores(held), held_labels)
    recipe_accuracy = rank_accuracy(recipe.z_scores(held), held_labels)
    assert lda_accuracy.top1 > 0.9
    assert lda_accuracy.top1 > recipe_accuracy.top1 + 0.2


def test_logistic_regression_weights_are_in_raw_units():
    train, labels = clusters(20, seed=1)
    probe = fit_probe(ProbeConfig("logreg", "stories", False), train, labels, len(EMOTIONS), train)
    assert rank_accuracy(probe.z_scores(clusters(10, seed=4)[0]), clusters(10, seed=4)[1]).top1 > 0.8


def test_each_reference_standardises_its_own_rows():
    train, labels = clusters(20, seed=1)
    neutral = torch.randn(300, 24, generator=torch.Generator().manual_seed(5)) + 3
    for reference, rows in [("stories", train), ("neutral", neutral)]:
        probe = fit_probe(ProbeConfig("lda", reference, False), train, labels, len(EMOTIONS), neutral)
        z = probe.z_scores(rows)
        torch.testing.assert_close(z.mean(0), torch.zeros(len(EMOTIONS)), atol=1e-3, rtol=0)
        torch.testing.assert_close(z.std(0), torch.ones(len(EMOTIONS)), atol=1e-3, rtol=0)
    mixed = fit_probe(ProbeConfig("lda", "mixed", False), train, labels, len(EMOTIONS), neutral)
    halves = [mixed.z_scores(train), mixed.z_scores(neutral)]  # each set weighs half
    torch.testing.assert_close(
        (halves[0].mean(0) + halves[1].mean(0)) / 2, torch.zeros(len(EMOTIONS)), atol=1e-3, rtol=0
    )
    second_moment = (halves[0].pow(2).mean(0) + halves[1].pow(2).mean(0)) / 2
    torch.testing.assert_close(second_moment, torch.ones(len(EMOTIONS)), atol=0.02, rtol=0)


def test_centred_readouts_sum_to_zero_over_emotions():
    probe = ProbeData(weights=torch.randn(5, 7), mean=torch.randn(5), std=torch.rand(5) + 0.5, centre=True)
    z = probe.z_scores(torch.randn(9, 7))
    torch.testing.assert_close(z.sum(dim=1), torch.zeros(9), atol=1e-5, rtol=0)


def test_hub_shares_count_top5_membership():
    z = torch.zeros(10, 20)
    z[:, 3] = 5.0  # emotion 3 tops every text
    shares = hub_shares(z, [f"x{i}" for i in range(20)])
    assert shares["most_frequent"][0] == ["x3", 1.0]
    assert shares["uniform"] == 0.25 and shares["max_over_uniform"] == 4.0


def test_the_rule_prefers_hub_free_candidates_then_top5():
    config = ProbeConfig("lda", "neutral", False)
    hubby = CandidateScore(config, top1=0.5, top5=0.9, hub_over_uniform=HUB_LIMIT + 1)
    good = CandidateScore(ProbeConfig("lda", "stories", False), top1=0.3, top5=0.6, hub_over_uniform=1.5)
    better = CandidateScore(ProbeConfig("lda", "stories", True), top1=0.2, top5=0.7, hub_over_uniform=2.0)
    assert choose([hubby, good, better]) is better
    assert choose([hubby]) is hubby  # none hub-free: the best of all


def test_a_hub_in_the_reference_is_removed_by_story_normalisation():
    train, labels = clusters(20, seed=1, hub=0.0)
    held, held_labels = clusters(10, seed=2, hub=0.0)
    neutral = torch.randn(300, 24, generator=torch.Generator().manual_seed(5)) * 0.1  # far from any story
    recipe = directions_for_layer(train, labels, EMOTIONS, neutral, denoise_variance=0)
    scores = {
        s.config.label: s
        for s in score_candidates(train, labels, held, held_labels, neutral, EMOTIONS, recipe, CANDIDATES)
    }
    assert len(scores) == len(CANDIDATES)
    assert scores["lda/stories"].top5 >= scores["recipe/neutral"].top5
    assert all(np.isfinite(s.hub_over_uniform) for s in scores.values())
