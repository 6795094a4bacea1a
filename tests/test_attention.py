"""attention_kit.attention against direct formulas and PyTorch's reference attention."""

import pytest
import torch
import torch.nn.functional as F

from attention_kit.attention import nadaraya_watson


@pytest.fixture
def regression_data():
    g = torch.Generator().manual_seed(0)
    keys = torch.rand(9, generator=g, dtype=torch.float64) * 5
    values = torch.randn(9, generator=g, dtype=torch.float64)
    queries = torch.linspace(0, 5, 6, dtype=torch.float64)
    return queries, keys, values


def test_nadaraya_watson_matches_the_kernel_formula(regression_data):
    queries, keys, values = regression_data
    h = 0.8
    predictions, weights = nadaraya_watson(queries, keys, values, h)
    for i, q in enumerate(queries):
        kernel = torch.exp(-((q - keys) ** 2) / (2 * h**2))
        assert torch.allclose(weights[i], kernel / kernel.sum())
        assert torch.isclose(predictions[i], (kernel * values).sum() / kernel.sum())


def test_nadaraya_watson_is_scaled_dot_product_attention(regression_data):
    # -(q - k)^2 / 2h^2 = (q k - k^2 / 2) / h^2 - q^2 / 2h^2, and the last term is the same
    # for every key of a query, so the softmax ignores it: NW is dot-product attention with
    # query [q, 1] and key [k / h^2, -k^2 / 2h^2].
    queries, keys, values = regression_data
    h = 0.8
    q = torch.stack([queries, torch.ones_like(queries)], dim=-1)
    k = torch.stack([keys / h**2, -(keys**2) / (2 * h**2)], dim=-1)
    expected = F.scaled_dot_product_attention(q, k, values[:, None], scale=1.0)[:, 0]
    predictions, _ = nadaraya_watson(queries, keys, values, h)
    assert torch.allclose(predictions, expected)


def test_nadaraya_watson_shapes_and_normalisation(regression_data):
    queries, keys, values = regression_data
    predictions, weights = nadaraya_watson(queries, keys, values, 0.5)
    assert predictions.shape == (6,) and weights.shape == (6, 9)
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(dim=-1), torch.ones(6, dtype=torch.float64))
    vector_values = torch.stack([values, 2 * values], dim=-1)
    vector_predictions, _ = nadaraya_watson(queries, keys, vector_values, 0.5)
    assert vector_predictions.shape == (6, 2)
    assert torch.allclose(vector_predictions[:, 1], 2 * predictions)


def test_nadaraya_watson_limits(regression_data):
    queries, keys, values = regression_data
    nearest = (queries[:, None] - keys[None, :]).abs().argmin(dim=-1)
    narrow, _ = nadaraya_watson(queries, keys, values, 1e-4)
    assert torch.allclose(narrow, values[nearest])
    wide, _ = nadaraya_watson(queries, keys, values, 1e4)
    assert torch.allclose(wide, values.mean().expand(6))


def test_nadaraya_watson_tiny_bandwidth_far_from_the_data_is_finite():
    keys = torch.tensor([0.0, 1.0])
    predictions, weights = nadaraya_watson(
        torch.tensor([50.0]), keys, torch.tensor([3.0, 7.0]), 1e-3
    )
    assert torch.isfinite(weights).all()
    assert predictions.item() == pytest.approx(7.0)


def test_nadaraya_watson_rejects_a_non_positive_bandwidth(regression_data):
    with pytest.raises(ValueError, match="bandwidth"):
        nadaraya_watson(*regression_data, 0.0)
