"""Validation metrics on small known inputs."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from emolab.core.errors import EmolabError
from emolab.recipe.metrics import correlate_with_norms, nearest_neighbours, pearson, rank_accuracy, read_norms, spearman

NORMS = Path(__file__).resolve().parents[2] / "shared" / "data" / "warriner2013_vad.csv"


def test_rank_accuracy():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    labels = torch.tensor([0, 1, 1])
    accuracy = rank_accuracy(scores, labels)
    assert (accuracy.top1, accuracy.n, accuracy.n_classes) == (pytest.approx(2 / 3), 3, 3)
    assert accuracy.top5 == 1.0 and accuracy.chance_top1 == pytest.approx(1 / 3)


def test_pearson_and_spearman():
    x = [1, 2, 3, 4, 5]
    assert pearson(x, [2, 4, 6, 8, 10]) == pytest.approx(1.0)
    assert pearson(x, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman(x, [1, 4, 9, 16, 100]) == pytest.approx(1.0)  # monotone, not linear
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # ties share ranks
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_correlation_uses_only_covered_words():
    coords = np.array([1.0, 2.0, 3.0, 4.0])
    result = correlate_with_norms(coords, ["a", "b", "c", "zz"], {"a": 1.0, "b": 2.0, "c": 3.5})
    assert result.n == 3 and result.pearson > 0.98


def test_nearest_neighbours_exclude_self():
    directions = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]]), dim=1)
    pairs = nearest_neighbours(directions, ["afraid", "scared", "calm"], "afraid")
    assert [name for name, _ in pairs] == ["scared", "calm"]


@pytest.mark.skipif(not NORMS.exists(), reason="../shared/data is not beside this checkout")
def test_read_the_shared_norms_covers_126_of_the_171_words():
    from emolab.core.pack import default_emotions

    norms = read_norms(NORMS)
    covered = [word for word in default_emotions() if word in norms.valence]
    assert len(covered) == 126
    assert norms.valence["happy"] > norms.valence["sad"]


def test_norms_errors(tmp_path):
    with pytest.raises(EmolabError, match="no such norms file"):
        read_norms(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Word,Valence\nhappy,8\n")
    with pytest.raises(EmolabError, match="no column 'A.Mean.Sum'"):
        read_norms(bad)
