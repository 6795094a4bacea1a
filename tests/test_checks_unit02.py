"""Lab 02's checkers: references pass; MISTAKES and stubs run in test_checks.py."""

import math

import pytest
import torch
from torch import nn

from attention_kit.attention import (
    AdditiveAttention,
    masked_softmax,
    scaled_dot_product_attention,
)
from attention_kit.checks import (
    check_additive_attention,
    check_masked_softmax,
    check_scaled_dot_product_attention,
)
from conftest import assert_passes

INF = float("-inf")


def softmax_with(fill):
    """A masked softmax that applies ``fill(scores, mask)`` and then the softmax."""

    def answer(scores, mask=None):
        if mask is None:
            return torch.softmax(scores, dim=-1)
        return torch.softmax(fill(scores, mask), dim=-1)

    return answer


def zero_after_softmax(scores, mask=None):
    weights = torch.softmax(scores, dim=-1)
    return weights if mask is None else weights * mask


def renormalise_after_softmax(scores, mask=None):
    weights = torch.softmax(scores, dim=-1)
    if mask is None:
        return weights
    weights = weights * mask
    return weights / weights.sum(dim=-1, keepdim=True)


def boolean_indexing(scores, mask=None):
    scores = scores.clone()
    if mask is not None:
        scores[~mask] = INF
    return torch.softmax(scores, dim=-1)


def ignores_none(scores, mask=None):
    return torch.softmax(scores.masked_fill(~mask, INF), dim=-1)


def no_default(scores, mask):
    return masked_softmax(scores, mask)


def exp_times_mask(scores, mask=None):
    exponentials = torch.exp(scores) * (1 if mask is None else mask)
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


def nan_to_zero_after(scores, mask=None):
    """Correct forward pass; the NaN of an empty row is replaced after the softmax."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    return torch.softmax(scores.masked_fill(~mask, INF), dim=-1).nan_to_num(0.0)


def additive_mask_nan_to_zero(scores, mask=None):
    """An additive -inf mask: right weights, NaN gradients for an empty row."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    additive = torch.zeros(mask.shape).masked_fill(~mask, INF)
    return torch.softmax(scores + additive, dim=-1).nan_to_num(0.0)


def any_without_keepdim(scores, mask=None):
    if mask is None:
        return torch.softmax(scores, dim=-1)
    empty = ~mask.any(dim=-1)
    weights = torch.softmax(scores.masked_fill(~mask, INF).masked_fill(empty, 0), -1)
    return weights.masked_fill(~mask, 0.0)


def adds_the_bool_mask(scores, mask=None):
    """Treats the bool mask as an additive one: allowed keys get + 1."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    return torch.softmax(scores + mask, dim=-1)


def in_place_masked_softmax(scores, mask=None):
    if mask is not None:
        scores.masked_fill_(~mask, INF)
        scores.masked_fill_(~mask.any(dim=-1, keepdim=True), 0.0)
        return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)
    return torch.softmax(scores, dim=-1)


def shift_by_max_with_masked(scores, mask=None):
    """Hand-written: shifts by the maximum over ALL keys, masked ones included."""
    exponentials = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    if mask is not None:
        exponentials = exponentials * mask
    total = exponentials.sum(dim=-1, keepdim=True)
    return torch.where(total > 0, exponentials / total, 0.0)


def masked_softmax_where(scores, mask=None):
    """Correct, written with torch.where and a float64 detour."""
    if mask is None:
        return torch.softmax(scores.double(), dim=-1)
    allowed = mask.expand(scores.shape)
    any_allowed = allowed.any(dim=-1, keepdim=True)
    safe = torch.where(allowed, scores, INF).where(any_allowed, 0.0)
    return torch.where(allowed, torch.softmax(safe.double(), dim=-1), 0.0)


def sdpa_with(scale, transpose=lambda k: k.transpose(-2, -1), use_mask=True, dim=-1):
    def answer(queries, keys, values, mask=None):
        scores = queries @ transpose(keys) * scale(queries, keys, values)
        weights = masked_softmax(scores, mask if use_mask else None)
        if dim != -1:
            weights = torch.softmax(scores, dim=dim)
        return weights @ values, weights

    return answer


def sqrt_dk(q, k, v):
    return 1 / math.sqrt(q.shape[-1])


def sdpa_einsum(queries, keys, values, mask=None):
    scores = (
        torch.einsum("...nd,...md->...nm", queries, keys) / queries.shape[-1] ** 0.5
    )
    weights = masked_softmax(scores, mask)
    return torch.einsum("...nm,...md->...nd", weights, values), weights


def sdpa_inverted_mask(queries, keys, values, mask=None):
    scores = queries @ keys.mT / math.sqrt(queries.shape[-1])
    weights = masked_softmax(scores, None if mask is None else ~mask)
    return weights @ values, weights


def sdpa_mask_after_softmax(queries, keys, values, mask=None):
    weights = torch.softmax(queries @ keys.mT / math.sqrt(queries.shape[-1]), dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ values, weights


def sdpa_values_are_keys(queries, keys, values, mask=None):
    return scaled_dot_product_attention(queries, keys, keys, mask)


def sdpa_transpose_1_2(queries, keys, values, mask=None):
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    weights = masked_softmax(scores, mask)
    return weights @ values, weights


def sdpa_additive_mask(queries, keys, values, mask=None):
    scores = queries @ keys.mT / math.sqrt(queries.shape[-1])
    weights = additive_mask_nan_to_zero(scores, mask)
    return weights @ values, weights


def sdpa_d_k_from_axis_2(queries, keys, values, mask=None):
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[2])
    weights = masked_softmax(scores, mask)
    return weights @ values, weights


def sdpa_plain_softmax(queries, keys, values, mask=None):
    """-inf fill and torch.softmax instead of masked_softmax: NaN for all padding."""
    scores = queries @ keys.mT / math.sqrt(queries.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, INF)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


def sdpa_scaled_after_softmax(queries, keys, values, mask=None):
    scores = queries @ keys.transpose(-2, -1)
    weights = masked_softmax(scores, mask) / math.sqrt(queries.shape[-1])
    return weights @ values, weights


def sdpa_no_default(queries, keys, values, mask):
    return scaled_dot_product_attention(queries, keys, values, mask)


class AdditiveVariant(nn.Module):
    """AdditiveAttention with one thing changed, for the checker tests."""

    bias = False
    activation = staticmethod(torch.tanh)
    use_mask = True
    invert_mask = False
    query_axis, key_axis = -2, -3
    squeeze = True
    swap_layers = False

    def __init__(self, query_dim, key_dim, hidden_dim):
        super().__init__()
        self.W_q = nn.Linear(query_dim, hidden_dim, bias=self.bias)
        self.W_k = nn.Linear(key_dim, hidden_dim, bias=self.bias)
        self.w_v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, queries, keys, values, mask=None):
        if self.swap_layers:
            q, k = self.W_k(queries), self.W_q(keys)
        else:
            q, k = self.W_q(queries), self.W_k(keys)
        q, k = q.unsqueeze(self.query_axis), k.unsqueeze(self.key_axis)
        scores = self.w_v(self.activation(q + k))
        if self.squeeze:
            scores = scores.squeeze(-1)
        if mask is not None and self.invert_mask:
            mask = ~mask
        weights = masked_softmax(scores, mask if self.use_mask else None)
        return weights @ values, weights


def variant(**changes):
    return type("Variant", (AdditiveVariant,), changes)


class AdditiveWithExtras(AdditiveAttention):
    """Correct, with a buffer, a parameter-free submodule and an einsum."""

    def __init__(self, query_dim, key_dim, hidden_dim):
        super().__init__(query_dim, key_dim, hidden_dim)
        self.register_buffer("offset", torch.zeros(1), persistent=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.activation = nn.Tanh()

    def forward(self, queries, keys, values, mask=None):
        features = self.activation(
            self.W_q(queries)[..., :, None, :] + self.W_k(keys)[..., None, :, :]
        )
        scores = torch.einsum("...h,h->...", features, self.w_v.weight[0])
        weights = masked_softmax(scores + self.offset, mask)
        return torch.einsum("...nm,...md->...nd", weights, values), weights


class AdditiveMaskIgnoresNone(AdditiveAttention):
    def forward(self, queries, keys, values, mask=None):
        scores = self.scores(queries, keys).masked_fill(~mask, INF)
        return torch.softmax(scores, dim=-1) @ values, torch.softmax(scores, dim=-1)


class AdditiveNoMaskDefault(AdditiveAttention):
    def forward(self, queries, keys, values, mask):
        return super().forward(queries, keys, values, mask)


class AdditiveFixedAxes(AdditiveAttention):
    """unsqueeze(2) and unsqueeze(1): right for (batch, n, d) only."""

    def scores(self, queries, keys):
        features = torch.tanh(
            self.W_q(queries).unsqueeze(2) + self.W_k(keys).unsqueeze(1)
        )
        return self.w_v(features).squeeze(-1)


class AdditiveSqueezeAll(AdditiveAttention):
    """squeeze() with no dimension: wrong for one query."""

    def scores(self, queries, keys):
        features = torch.tanh(
            self.W_q(queries).unsqueeze(-2) + self.W_k(keys).unsqueeze(-3)
        )
        return self.w_v(features).squeeze()


class AdditiveDotProduct(AdditiveAttention):
    def scores(self, queries, keys):
        return torch.tanh(self.W_q(queries)) @ torch.tanh(self.W_k(keys)).mT


class AdditiveSoftmaxOverQueries(AdditiveAttention):
    def forward(self, queries, keys, values, mask=None):
        scores = self.scores(queries, keys)
        if mask is not None:
            scores = scores.masked_fill(~mask, INF)
        weights = torch.softmax(scores, dim=-2).nan_to_num(0.0)
        return weights @ values, weights


class AdditiveTanhAfterScore(AdditiveAttention):
    def scores(self, queries, keys):
        features = self.W_q(queries).unsqueeze(-2) + self.W_k(keys).unsqueeze(-3)
        return torch.tanh(self.w_v(features)).squeeze(-1)


class AdditiveTanhPerProjection(AdditiveAttention):
    def scores(self, queries, keys):
        features = torch.tanh(self.W_q(queries)).unsqueeze(-2) + torch.tanh(
            self.W_k(keys)
        ).unsqueeze(-3)
        return self.w_v(features).squeeze(-1)


class AdditiveScaled(AdditiveAttention):
    """Divides by sqrt(hidden_dim), as dot-product attention does."""

    def scores(self, queries, keys):
        return super().scores(queries, keys) / math.sqrt(self.W_q.out_features)


class AdditiveWithBiasedScore(AdditiveAttention):
    def __init__(self, query_dim, key_dim, hidden_dim):
        super().__init__(query_dim, key_dim, hidden_dim)
        self.w_v = nn.Linear(hidden_dim, 1)


def additive_function(query_dim, key_dim, hidden_dim):
    return lambda *args: masked_softmax(args[0])


REFERENCES = [
    (check_masked_softmax, masked_softmax, "masked_softmax: 15/15"),
    (check_masked_softmax, nan_to_zero_after, "15/15"),
    (check_masked_softmax, masked_softmax_where, "15/15"),
    (check_scaled_dot_product_attention, scaled_dot_product_attention, "12/12"),
    (check_scaled_dot_product_attention, sdpa_with(sqrt_dk), "12/12"),
    (check_scaled_dot_product_attention, sdpa_einsum, "12/12"),
    (check_additive_attention, AdditiveAttention, "AdditiveAttention: 16/16"),
    (check_additive_attention, AdditiveVariant, "16/16"),
    (check_additive_attention, AdditiveWithExtras, "16/16"),
]

MISTAKES = [
    (
        check_masked_softmax,
        softmax_with(lambda s, m: s.masked_fill(m, INF)),
        "inverted",
    ),
    (
        check_masked_softmax,
        softmax_with(lambda s, m: s.masked_fill(~m, 0.0)),
        "exp(0) = 1",
    ),
    (check_masked_softmax, softmax_with(lambda s, m: s * m), "exp(0) = 1"),
    (check_masked_softmax, softmax_with(lambda s, m: s), "mask was not applied"),
    (check_masked_softmax, zero_after_softmax, "zeroed the weights after the softmax"),
    (check_masked_softmax, renormalise_after_softmax, "before the softmax, not after"),
    (
        check_masked_softmax,
        softmax_with(lambda s, m: s.masked_fill(~m, INF)),
        "0/0 = NaN",
    ),
    (check_masked_softmax, softmax_with(lambda s, m: s.masked_fill(~m, -1e9)), "-1e9"),
    (check_masked_softmax, boolean_indexing, "which broadcast it"),
    (check_masked_softmax, ignores_none, "mask=None means there is no mask"),
    (check_masked_softmax, no_default, "give mask a default"),
    (check_masked_softmax, exp_times_mask, "exp(400) overflows"),
    (check_masked_softmax, shift_by_max_with_masked, "BEFORE the softmax"),
    (check_masked_softmax, adds_the_bool_mask, "not an additive mask"),
    (check_masked_softmax, lambda s, m=None: torch.softmax(s, dim=0), "dim=-1"),
    (check_masked_softmax, additive_mask_nan_to_zero, "finite gradients"),
    (check_masked_softmax, any_without_keepdim, "keepdim=True"),
    (check_masked_softmax, in_place_masked_softmax, "in place"),
    (check_scaled_dot_product_attention, sdpa_with(lambda q, k, v: 1.0), "not scaled"),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: 1 / q.shape[-1]),
        "you divided by d_k",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: 1 / math.sqrt(v.shape[-1])),
        "not d_v",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: 1 / math.sqrt(q.shape[1])),
        "number of queries",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: 1 / math.sqrt(k.shape[1])),
        "number of keys",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: 1 / 4),
        "shape[-1]",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, k, v: math.sqrt(q.shape[-1])),
        "you multiplied by sqrt(d_k)",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(sqrt_dk, transpose=lambda k: k.T),
        "keys.transpose(-2, -1)",
    ),
    (check_scaled_dot_product_attention, sdpa_transpose_1_2, "transpose(1, 2)"),
    (check_scaled_dot_product_attention, sdpa_d_k_from_axis_2, "shape[-1]"),
    (check_scaled_dot_product_attention, sdpa_plain_softmax, "not NaN"),
    (
        check_scaled_dot_product_attention,
        sdpa_with(sqrt_dk, use_mask=False),
        "pass the mask on",
    ),
    (check_scaled_dot_product_attention, sdpa_inverted_mask, "inverted"),
    (check_scaled_dot_product_attention, sdpa_mask_after_softmax, "no longer sum to 1"),
    (check_scaled_dot_product_attention, sdpa_with(sqrt_dk, dim=-2), "sum to 1"),
    (check_scaled_dot_product_attention, sdpa_values_are_keys, "not the keys"),
    (
        check_scaled_dot_product_attention,
        sdpa_scaled_after_softmax,
        "after the softmax",
    ),
    (check_scaled_dot_product_attention, sdpa_additive_mask, "finite gradients"),
    (check_scaled_dot_product_attention, sdpa_no_default, "mask=None"),
    (
        check_scaled_dot_product_attention,
        lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask)[0],
        "return a pair",
    ),
    (check_additive_attention, variant(bias=True), "bias=False"),
    (check_additive_attention, AdditiveWithBiasedScore, "bias=False"),
    (
        check_additive_attention,
        variant(activation=staticmethod(lambda x: x)),
        "tanh is missing",
    ),
    (
        check_additive_attention,
        variant(activation=staticmethod(torch.relu)),
        "not ReLU",
    ),
    (
        check_additive_attention,
        variant(activation=staticmethod(torch.sigmoid)),
        "not a sigmoid",
    ),
    (check_additive_attention, AdditiveDotProduct, "not a dot product"),
    (check_additive_attention, AdditiveTanhAfterScore, "not tanh(w_v(...))"),
    (check_additive_attention, AdditiveTanhPerProjection, "SUM of the projections"),
    (check_additive_attention, AdditiveScaled, "does not scale its scores"),
    (check_additive_attention, variant(use_mask=False), "pass the mask"),
    (check_additive_attention, variant(invert_mask=True), "inverted"),
    (check_additive_attention, AdditiveSoftmaxOverQueries, "dim=-1"),
    (check_additive_attention, variant(query_axis=-3, key_axis=-2), "unsqueeze(-2)"),
    (check_additive_attention, variant(squeeze=False), "squeeze(-1)"),
    (check_additive_attention, variant(swap_layers=True), "W_q projects the queries"),
    (check_additive_attention, AdditiveFixedAxes, "Count the axes from the end"),
    (check_additive_attention, AdditiveSqueezeAll, "not squeeze()"),
    (check_additive_attention, AdditiveMaskIgnoresNone, "mask=None means no mask"),
    (check_additive_attention, AdditiveNoMaskDefault, "mask=None means no mask"),
    (check_additive_attention, additive_function, "nn.Module"),
    (check_additive_attention, lambda *dims: "not a module", "nn.Module"),
]


@pytest.mark.parametrize("checker, answer, message", REFERENCES)
def test_reference_answers_pass(checker, answer, message, capsys):
    assert_passes(checker, answer, capsys, message)


def test_an_answer_that_calls_another_unfinished_exercise_says_so(capsys):
    def unfinished_masked_softmax(scores, mask=None):
        raise NotImplementedError("Exercise 02.1")

    def sdpa(queries, keys, values, mask=None):
        scores = queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1])
        weights = unfinished_masked_softmax(scores, mask)
        return weights @ values, weights

    check_scaled_dot_product_attention(sdpa)
    assert capsys.readouterr().out.startswith(
        "⏳ Exercise 02.2 waits for Exercise 02.1"
    )


def test_the_additive_mask_answer_is_right_forward_and_wrong_backward():
    """The gradient check is what catches it (the claim the lecture makes)."""
    scores = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, True], [False] * 4])[:, None, :]
    weights = additive_mask_nan_to_zero(scores, mask)
    assert torch.allclose(weights, masked_softmax(scores, mask))
    weights.sum().backward()
    assert torch.isnan(scores.grad).any()
