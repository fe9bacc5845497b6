"""The recipe's math on plain tensors."""

import torch

from emolab.recipe.vectors import (
    components_for_variance,
    difference_of_means,
    layer_data,
    pca_geometry,
    principal_components,
    project_out,
)


def test_difference_of_means_subtracts_the_mean_across_emotions():
    means = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    result = difference_of_means(means)
    torch.testing.assert_close(result, means - torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(result.sum(dim=0), torch.zeros(2))


def test_projection_removes_exactly_the_chosen_subspace():
    torch.manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(16, 3))
    components = basis.T  # 3 orthonormal rows
    vectors = torch.randn(5, 16)
    projected = project_out(vectors, components)
    torch.testing.assert_close(projected @ components.T, torch.zeros(5, 3), atol=1e-5, rtol=0)
    # the orthogonal part is untouched
    orthogonal = torch.randn(5, 16)
    orthogonal = orthogonal - (orthogonal @ components.T) @ components
    torch.testing.assert_close(project_out(orthogonal, components), orthogonal, atol=1e-5, rtol=0)


def test_fifty_percent_cutoff_takes_the_fewest_components_reaching_it():
    torch.manual_seed(1)
    # variances 40, 30, 20, 10 along four axes: 40 < 50 <= 40 + 30, so two components
    scales = torch.tensor([40.0, 30.0, 20.0, 10.0]).sqrt()
    samples = torch.randn(20000, 4) * scales
    components, ratios = principal_components(samples)
    assert abs(float(ratios[0]) - 0.4) < 0.02
    assert components_for_variance(samples, 0.5).shape[0] == 2
    assert components_for_variance(samples, 0.39).shape[0] == 1
    assert components_for_variance(samples, 0.95).shape[0] == 4


def test_layer_data_is_unit_with_neutral_statistics():
    torch.manual_seed(2)
    raw = torch.randn(4, 8) * 3
    neutral = torch.randn(100, 8)
    data = layer_data(raw, neutral, all_tokens_norm=5.0)
    torch.testing.assert_close(data.directions.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(data.raw_norm, raw.norm(dim=1))
    projections = neutral @ data.directions.T
    torch.testing.assert_close(data.neutral_mean, projections.mean(dim=0))
    torch.testing.assert_close(data.neutral_std, projections.std(dim=0))
    assert data.mean_norm == 5.0


def test_geometry_puts_happy_right_of_sad_and_excited_above_calm():
    directions = torch.nn.functional.normalize(
        torch.tensor([[-3.0, 0.1, 0], [3.0, 0.2, 0], [0.0, 1.0, 0.1], [0.1, -1.0, 0]]), dim=1
    )
    geometry = pca_geometry(directions, ["happy", "sad", "calm", "excited"])
    coords = geometry.coords
    assert coords[0, 0] > coords[1, 0]
    assert coords[3, 1] > coords[2, 1]
    assert float(geometry.explained.sum()) <= 1.0 + 1e-6
