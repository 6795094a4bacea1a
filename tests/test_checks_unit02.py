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


def exp_times_mask(scores, mask=None):
    exponentials = torch.exp(scores) * (1 if mask is None else mask)
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


def sdpa_with(scale, transpose=lambda k: k.transpose(-2, -1), use_mask=True, dim=-1):
    def answer(queries, keys, values, mask=None):
        scores = queries @ transpose(keys) * scale(queries, values)
        weights = masked_softmax(scores, mask if use_mask else None)
        if dim != -1:
            weights = torch.softmax(scores, dim=dim)
        return weights @ values, weights

    return answer


def sqrt_dk(q, v):
    return 1 / math.sqrt(q.shape[-1])


class AdditiveVariant(nn.Module):
    """AdditiveAttention with one thing changed, for the checker tests."""

    bias = False
    activation = staticmethod(torch.tanh)
    use_mask = True
    broadcast = True

    def __init__(self, query_dim, key_dim, hidden_dim):
        super().__init__()
        self.W_q = nn.Linear(query_dim, hidden_dim, bias=self.bias)
        self.W_k = nn.Linear(key_dim, hidden_dim, bias=self.bias)
        self.w_v = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, queries, keys, values, mask=None):
        q, k = self.W_q(queries), self.W_k(keys)
        if self.broadcast:
            q, k = q.unsqueeze(-2), k.unsqueeze(-3)
        scores = self.w_v(self.activation(q + k)).squeeze(-1)
        weights = masked_softmax(scores, mask if self.use_mask else None)
        return weights @ values, weights


def variant(**changes):
    return type("Variant", (AdditiveVariant,), changes)


REFERENCES = [
    (check_masked_softmax, masked_softmax, "masked_softmax: 8/8"),
    (check_scaled_dot_product_attention, scaled_dot_product_attention, "6/6"),
    (check_scaled_dot_product_attention, sdpa_with(sqrt_dk), "6/6"),
    (check_additive_attention, AdditiveAttention, "AdditiveAttention: 4/4"),
    (check_additive_attention, AdditiveVariant, "4/4"),
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
    (check_masked_softmax, exp_times_mask, "exp(400) overflows"),
    (check_masked_softmax, lambda s, m=None: torch.softmax(s, dim=0), "dim=-1"),
    (check_scaled_dot_product_attention, sdpa_with(lambda q, v: 1.0), "not scaled"),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, v: 1 / q.shape[-1]),
        "you divided by d_k",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, v: 1 / math.sqrt(v.shape[-1])),
        "not d_v",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(lambda q, v: math.sqrt(q.shape[-1])),
        "you multiplied by sqrt(d_k)",
    ),
    (
        check_scaled_dot_product_attention,
        sdpa_with(sqrt_dk, transpose=lambda k: k.T),
        "keys.transpose(-2, -1)",
    ),
    (check_scaled_dot_product_attention, sdpa_with(sqrt_dk, use_mask=False), "masked"),
    (check_scaled_dot_product_attention, sdpa_with(sqrt_dk, dim=-2), "sum to 1"),
    (
        check_scaled_dot_product_attention,
        lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v, mask)[0],
        "return a pair",
    ),
    (check_additive_attention, variant(bias=True), "bias=False"),
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
    (check_additive_attention, variant(use_mask=False), "pass the mask"),
    (check_additive_attention, variant(broadcast=False), "unsqueeze(-2)"),
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
