"""attention_kit.attention against direct formulas and PyTorch's reference attention."""

import pytest
import torch
import torch.nn.functional as F

from attention_kit.attention import (
    AdditiveAttention,
    masked_softmax,
    nadaraya_watson,
    scaled_dot_product_attention,
)


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


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_masked_softmax_without_mask_is_softmax():
    scores = random(2, 3, 5)
    assert torch.allclose(masked_softmax(scores), torch.softmax(scores, dim=-1))


@pytest.mark.parametrize("mask_shape", [(5,), (2, 1, 5), (2, 3, 5), (3, 5)])
def test_masked_softmax_zeroes_masked_keys_and_renormalises(mask_shape):
    scores = random(2, 3, 5)
    mask = random(*mask_shape, seed=1) > -0.3
    mask[..., 0] = True  # every row keeps at least one key
    weights = masked_softmax(scores, mask)
    full_mask = mask.expand(2, 3, 5)
    assert (weights[~full_mask] == 0).all()
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 3))
    kept = torch.exp(scores) * full_mask
    assert torch.allclose(weights, kept / kept.sum(dim=-1, keepdim=True))


def test_masked_softmax_row_without_keys_is_zero_in_value_and_gradient():
    scores = random(2, 4).requires_grad_()
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[1], torch.zeros(4))
    (weights * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_masked_softmax_is_stable_for_huge_scores():
    scores = torch.tensor([[1e4, 1e4 - 1.0, -1e4], [-5e3, -5e3 - 2.0, 3e4]])
    mask = torch.tensor([True, True, False])
    weights = masked_softmax(scores, mask)
    expected = torch.softmax(torch.tensor([[1.0, 0.0], [2.0, 0.0]]), dim=-1)
    assert torch.allclose(weights[:, :2], expected)
    assert (weights[:, 2] == 0).all()


def test_masked_softmax_rejects_a_non_boolean_mask():
    with pytest.raises(TypeError, match="boolean"):
        masked_softmax(random(2, 3), torch.ones(3))


@pytest.mark.parametrize("with_mask", [False, True])
def test_scaled_dot_product_attention_matches_pytorch(with_mask):
    q, k, v = (
        random(2, 4, 6, 8, seed=1),
        random(2, 4, 7, 8, seed=2),
        random(2, 4, 7, 3, seed=3),
    )
    mask = None
    if with_mask:
        mask = random(2, 1, 6, 7, seed=4) > 0
        # every row keeps a key, so the comparison does not depend on what PyTorch does
        # with an empty row (torch 2.13: SDPA returns zeros; nn.MultiheadAttention returns
        # NaN with need_weights=True, its default, and zeros with need_weights=False)
        mask[..., 0] = True
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == (2, 4, 6, 3) and weights.shape == (2, 4, 6, 7)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 4, 6))


def test_scaled_dot_product_attention_without_batch_dimensions():
    q, k, v = random(3, 4, seed=1), random(5, 4, seed=2), random(5, 2, seed=3)
    out, _ = scaled_dot_product_attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)


def test_scaled_dot_product_attention_with_an_empty_row_gives_zeros():
    q, k, v = random(1, 2, 4, seed=1), random(1, 3, 4, seed=2), random(1, 3, 2, seed=3)
    mask = torch.tensor([[[True, True, False], [False, False, False]]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(out[0, 1], torch.zeros(2)) and torch.equal(
        weights[0, 1], torch.zeros(3)
    )
    assert torch.isfinite(out).all()


def test_additive_attention_parameters_and_formula():
    torch.manual_seed(0)
    attention = AdditiveAttention(query_dim=5, key_dim=3, hidden_dim=7)
    shapes = {name: tuple(p.shape) for name, p in attention.named_parameters()}
    assert shapes == {"W_q.weight": (7, 5), "W_k.weight": (7, 3), "w_v.weight": (1, 7)}
    queries, keys, values = (
        random(2, 4, 5, seed=1),
        random(2, 6, 3, seed=2),
        random(2, 6, 2),
    )
    mask = torch.tensor([True, True, True, False, True, False])
    out, weights = attention(queries, keys, values, mask)
    assert out.shape == (2, 4, 2) and weights.shape == (2, 4, 6)
    for b in range(2):
        for i in range(4):
            scores = torch.stack(
                [
                    attention.w_v.weight[0]
                    @ torch.tanh(
                        attention.W_q.weight @ queries[b, i]
                        + attention.W_k.weight @ keys[b, j]
                    )
                    for j in range(6)
                ]
            )
            expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
            assert torch.allclose(weights[b, i], expected, atol=1e-6)
            assert torch.allclose(out[b, i], expected @ values[b], atol=1e-6)


def test_a_plain_softmax_of_a_fully_masked_row_poisons_only_the_values_gradient():
    """Lecture 02's claim: softmax(masked_fill(-inf)) of a row with no allowed key is NaN;
    in the backward pass the values' gradient is NaN, while masked_fill's backward sends
    zeros to every entry it filled, so the scores' gradient stays finite."""
    scores = random(2, 3, seed=1).requires_grad_()
    values = random(3, 2, seed=2).requires_grad_()
    mask = torch.tensor([[True, False, True], [False, False, False]])
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    assert torch.isnan(weights[1]).all() and torch.isfinite(weights[0]).all()
    (weights @ values).sum().backward()
    assert torch.isnan(values.grad).all()
    assert torch.isfinite(scores.grad).all() and (scores.grad[1] == 0).all()
    # the course's masked_softmax: zeros forward, finite gradients for both
    scores.grad, values.grad = None, None
    (masked_softmax(scores, mask) @ values).sum().backward()
    assert torch.isfinite(values.grad).all() and torch.isfinite(scores.grad).all()
