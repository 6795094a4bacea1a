"""Checkers for Lab 02: attention scoring functions and the masked softmax."""

from __future__ import annotations

import math

import torch

from ..attention import AdditiveAttention, masked_softmax, scaled_dot_product_attention
from .core import Checker, exercise, random_generator

NEG_INF = float("-inf")


def _mask_cases(g: torch.Generator) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(description, scores, mask) with every row keeping at least one key."""
    scores = torch.randn(2, 3, 5, generator=g) * 3
    key_mask = torch.tensor([True, True, False, True, False])
    per_query = torch.rand(2, 3, 5, generator=g) > 0.4
    per_query[..., 1] = True
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, :]
    return [
        ("a (m,) mask shared by every query", scores, key_mask),
        ("a (batch, 1, m) padding mask", scores, padding),
        ("a (batch, n, m) mask", scores, per_query),
    ]


@exercise("02.1", "masked_softmax")
def check_masked_softmax(c: Checker, answer) -> None:
    g = random_generator(201)
    scores = torch.randn(4, 6, generator=g)
    none_hint = (
        "mask=None means there is no mask: return the plain softmax over dim=-1."
    )
    weights = c.tensor(
        c.call(answer, scores, None, error_hint=none_hint),
        "masked_softmax(scores, None)",
        shape=scores.shape,
    )
    c.expect_close(
        weights,
        torch.softmax(scores, dim=-1),
        "without a mask the result should be torch.softmax(scores, dim=-1).",
        mistakes=[
            (
                torch.softmax(scores, dim=0),
                "the softmax must run over the keys, the last dimension (dim=-1).",
            )
        ],
    )

    broadcast_hint = (
        "the mask may be smaller than the scores, e.g. (m,) or (batch, 1, m): use "
        "scores.masked_fill(~mask, float('-inf')) or torch.where, which broadcast it."
    )
    for description, scores, mask in _mask_cases(g):
        what = f"masked_softmax with {description}"
        weights = c.tensor(
            c.call(answer, scores, mask, error_hint=broadcast_hint),
            what,
            shape=scores.shape,
            shape_hint="The weights have the shape of the scores, whatever the mask's shape.",
        )
        allowed = mask.expand_as(scores)
        plain = torch.softmax(scores, dim=-1)
        c.expect_close(
            weights,
            masked_softmax(scores, mask),
            f"{what}: the weights should be the softmax over the allowed keys only.",
            mistakes=[
                (
                    torch.softmax(scores.masked_fill(allowed, NEG_INF), dim=-1),
                    "the mask is inverted: True means 'may attend', so fill the scores "
                    "where the mask is False (~mask).",
                ),
                (
                    torch.softmax(scores.masked_fill(~allowed, 0.0), dim=-1),
                    "masked keys still get weight: you set their scores to 0, and "
                    "exp(0) = 1. Set them to float('-inf') so that exp gives exactly 0.",
                ),
                (
                    plain * allowed,
                    "the rows no longer sum to 1: you zeroed the weights after the "
                    "softmax. Set masked scores to -inf before the softmax instead.",
                ),
                (
                    plain,
                    "the weights on masked keys are not zero: the mask was not applied.",
                ),
                (
                    torch.softmax(scores.masked_fill(~allowed, NEG_INF), dim=-2),
                    "the softmax must run over the keys, the last dimension (dim=-1).",
                ),
            ],
        )

    # A masked key with a huge score: masking after the softmax (even with
    # renormalising) loses every allowed key to underflow.
    scores = torch.tensor([[0.5, 1.0, 400.0], [2.0, -1.0, 0.0]])
    mask = torch.tensor([True, True, False])
    weights = c.tensor(
        c.call(answer, scores, mask),
        "masked_softmax when a forbidden key has the score 400",
        shape=scores.shape,
        nan_hint="a forbidden key with the score 400 broke the result: exp(400) "
        "overflows, and a key that takes all the weight before the mask removes it "
        "leaves 0/0. Set masked scores to -inf before the softmax, not after it.",
    )
    c.expect_close(
        weights,
        masked_softmax(scores, mask),
        "a forbidden key's score must not matter at all: mask before the softmax.",
    )

    empty_row = torch.tensor([[True, False, True], [False, False, False]])
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    weights = c.tensor(
        c.call(answer, scores, empty_row),
        "masked_softmax with a row where no key is allowed",
        shape=scores.shape,
        nan_hint="a row with no allowed key is softmax(-inf, ..., -inf) = 0/0 = NaN. "
        "Give such rows all-zero weights: find them with mask.any(dim=-1, keepdim=True).",
    )
    c.expect(
        (weights[1] == 0).all(),
        "a row with no allowed key should get all-zero weights (it attends to nothing); "
        f"yours is {weights[1].tolist()}. A large negative number such as -1e9 instead "
        "of -inf spreads the weight evenly over forbidden keys.",
    )
    c.expect_close(
        weights[0],
        masked_softmax(scores, empty_row)[0],
        "handling the empty row must not change the other rows.",
    )

    huge = torch.tensor([[3000.0, 2999.0, -3000.0], [-2000.0, -2001.0, 10.0]])
    mask = torch.tensor([True, True, False])
    weights = c.tensor(
        c.call(answer, huge, mask),
        "masked_softmax of scores in the thousands",
        shape=huge.shape,
        nan_hint="exp overflows for scores in the thousands. torch.softmax subtracts "
        "each row's maximum first; if you exponentiate yourself, do the same.",
    )
    c.expect_close(
        weights,
        masked_softmax(huge, mask),
        "scores of 3000 and 2999 must give the weights of scores 1 and 0.",
    )


@exercise("02.2", "scaled_dot_product_attention")
def check_scaled_dot_product_attention(c: Checker, answer) -> None:
    g = random_generator(202)
    d_k, d_v = 16, 3
    queries = torch.randn(2, 4, d_k, generator=g)
    keys = torch.randn(2, 6, d_k, generator=g)
    values = torch.randn(2, 6, d_v, generator=g)
    transpose_hint = (
        "for batched tensors, swap only the last two dimensions of the keys: "
        "keys.transpose(-2, -1). keys.T reverses every dimension."
    )
    output, weights = c.pair(
        c.call(answer, queries, keys, values, None, error_hint=transpose_hint),
        "(output, weights)",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, 4, 6),
        shape_hint="One row per query, one column per key: (batch, n, m).",
    )
    output = c.tensor(
        output,
        "output",
        shape=(2, 4, d_v),
        shape_hint="One row per query, as wide as a value: (batch, n, d_v) = weights @ values.",
    )
    raw = queries @ keys.transpose(-2, -1)
    c.expect_close(
        weights.sum(dim=-1),
        torch.ones(2, 4),
        "each query's weights must sum to 1: take the softmax over the keys (dim=-1).",
    )
    expected_output, expected_weights = scaled_dot_product_attention(
        queries, keys, values
    )
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be softmax(Q K^T / sqrt(d_k)) over the keys.",
        mistakes=[
            (
                torch.softmax(raw, dim=-1),
                "the scores are not scaled: divide by sqrt(d_k).",
            ),
            (
                torch.softmax(raw / d_k, dim=-1),
                "you divided by d_k; divide by its square root, sqrt(d_k) (the standard "
                "deviation of q.k, not its variance).",
            ),
            (
                torch.softmax(raw / math.sqrt(d_v), dim=-1),
                "the scale uses d_k, the size of queries and keys (queries.shape[-1]), "
                "not d_v, the size of the values.",
            ),
            (
                torch.softmax(raw * math.sqrt(d_k), dim=-1),
                "you multiplied by sqrt(d_k); divide by it.",
            ),
        ],
    )
    c.expect_close(
        output,
        expected_output,
        "the output should be the weights times the values: weights @ values.",
    )

    mask = torch.tensor([[True] * 6, [True, True, True, True, False, False]])[
        :, None, :
    ]
    output, weights = c.pair(
        c.call(answer, queries, keys, values, mask), "(output, weights)"
    )
    weights = c.tensor(weights, "weights with a padding mask", shape=(2, 4, 6))
    output = c.tensor(output, "output with a padding mask", shape=(2, 4, d_v))
    expected_output, expected_weights = scaled_dot_product_attention(
        queries, keys, values, mask
    )
    c.expect(
        (weights[1, :, 4:] == 0).all(),
        "the weights on masked keys are not zero: pass the mask on to your "
        "masked_softmax (or masked_fill the scores with -inf where the mask is False).",
    )
    c.expect_close(
        output,
        expected_output,
        "with a mask, the output should only mix the allowed values.",
    )

    heads = torch.randn(2, 3, 5, 8, generator=g), torch.randn(2, 3, 7, 8, generator=g)
    values = torch.randn(2, 3, 7, 4, generator=g)
    output, _ = c.pair(
        c.call(answer, *heads, values, None, error_hint=transpose_hint),
        "(output, weights)",
    )
    output = c.tensor(
        output, "output for (batch, heads, n, d_k) inputs", shape=(2, 3, 5, 4)
    )
    c.expect_close(
        output,
        scaled_dot_product_attention(*heads, values)[0],
        "with extra leading dimensions (batch, heads, ...) the result is wrong; use "
        "operations on the last two dimensions only (@, transpose(-2, -1), dim=-1).",
    )


@exercise("02.3", "AdditiveAttention")
def check_additive_attention(c: Checker, answer) -> None:
    g = random_generator(203)
    query_dim, key_dim, hidden_dim = 5, 3, 7
    reference = AdditiveAttention(query_dim, key_dim, hidden_dim)
    module = c.module_like(
        answer,
        reference,
        (query_dim, key_dim, hidden_dim),
        "Name the layers W_q = nn.Linear(query_dim, hidden_dim, bias=False), "
        "W_k = nn.Linear(key_dim, hidden_dim, bias=False) and "
        "w_v = nn.Linear(hidden_dim, 1, bias=False).",
        generator=g,
    )

    queries = torch.randn(2, 4, query_dim, generator=g)
    keys = torch.randn(2, 6, key_dim, generator=g)
    values = torch.randn(2, 6, 2, generator=g)
    mask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])[
        :, None, :
    ]
    broadcast_hint = (
        "to score every query against every key, add a key axis to the projected queries "
        "and a query axis to the projected keys: (batch, n, 1, h) + (batch, 1, m, h) "
        "broadcasts to (batch, n, m, h). Use unsqueeze(-2) and unsqueeze(-3)."
    )
    output, weights = c.pair(
        c.call(module, queries, keys, values, mask, error_hint=broadcast_hint),
        "(output, weights)",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, 4, 6),
        shape_hint="Squeeze the last axis of w_v's output: (batch, n, m, 1) -> (batch, n, m).",
    )
    output = c.tensor(output, "output", shape=(2, 4, 2))
    features = reference.W_q(queries).unsqueeze(-2) + reference.W_k(keys).unsqueeze(-3)
    expected_output, expected_weights = reference(queries, keys, values, mask)
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be masked_softmax(w_v(tanh(W_q q + W_k k))) over the keys.",
        mistakes=[
            (
                masked_softmax(reference.w_v(features).squeeze(-1), mask),
                "the tanh is missing: score = w_v(tanh(W_q(q) + W_k(k))).",
            ),
            (
                masked_softmax(reference.w_v(torch.relu(features)).squeeze(-1), mask),
                "Bahdanau's score uses tanh, not ReLU, between the projections and w_v.",
            ),
            (
                torch.softmax(reference.w_v(torch.tanh(features)).squeeze(-1), dim=-1),
                "the weights on masked keys are not zero: pass the mask to masked_softmax.",
            ),
        ],
    )
    c.expect_close(output, expected_output, "the output should be weights @ values.")
