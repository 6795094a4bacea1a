"""Checkers for Lab 04: self-attention."""

from __future__ import annotations

import math

import torch

from ..attention import SelfAttention, masked_softmax, simple_self_attention
from ..masks import causal_mask
from .core import Checker, exercise, random_generator


@exercise("04.1", "simple_self_attention")
def check_simple_self_attention(c: Checker, answer) -> None:
    g = random_generator(401)
    x = torch.randn(2, 5, 4, generator=g)
    output, weights = c.pair(
        c.call(
            answer,
            x,
            error_hint="the scores are every token against every token: "
            "x @ x.transpose(-2, -1), shape (batch, n, n).",
        ),
        "(output, weights)",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, 5, 5),
        shape_hint="One row and one column per token: x @ x.transpose(-2, -1), not "
        "x.transpose(-2, -1) @ x (that is (d, d)).",
    )
    output = c.tensor(output, "output", shape=(2, 5, 4))
    expected_output, expected_weights = simple_self_attention(x)
    scores = x @ x.transpose(-2, -1)
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be softmax(X X^T / sqrt(d)) over the last dimension.",
        mistakes=[
            (
                torch.softmax(scores, dim=-1),
                "the scores are not scaled: divide by sqrt(d).",
            ),
            (
                torch.softmax(scores / x.shape[-1], dim=-1),
                "you divided by d; divide by sqrt(d).",
            ),
            (
                torch.softmax(scores / math.sqrt(x.shape[-1]), dim=-2),
                "the scores are symmetric, so a softmax over dim=-2 gives the transposed "
                "weights: its columns sum to 1, not its rows. Use dim=-1.",
            ),
        ],
    )
    c.expect_close(output, expected_output, "the output should be weights @ x.")


@exercise("04.2", "SelfAttention")
def check_self_attention(c: Checker, answer) -> None:
    g = random_generator(402)
    embed_dim, key_dim, value_dim = 6, 4, 3
    reference = SelfAttention(embed_dim, key_dim, value_dim)
    module = c.module_like(
        answer,
        reference,
        (embed_dim, key_dim, value_dim),
        "Create W_q = nn.Linear(embed_dim, key_dim, bias=False), W_k likewise, and "
        "W_v = nn.Linear(embed_dim, value_dim, bias=False).",
        generator=g,
    )

    x = torch.randn(2, 5, embed_dim, generator=g)
    output, weights = c.pair(c.call(module, x), "(output, weights)")
    weights = c.tensor(weights, "weights", shape=(2, 5, 5))
    output = c.tensor(
        output,
        "output",
        shape=(2, 5, value_dim),
        shape_hint="The output rows are mixtures of values V = W_v(x): (batch, n, value_dim).",
    )
    with torch.no_grad():
        expected_output, expected_weights = reference(x)
        q, k = reference.W_q(x), reference.W_k(x)
        raw = q @ k.transpose(-2, -1)
        mistakes = [
            (
                torch.softmax(raw, dim=-1),
                "the scores are not scaled: divide by sqrt(key_dim).",
            ),
            (
                torch.softmax(raw / math.sqrt(embed_dim), dim=-1),
                "scale by sqrt(key_dim), the size of the queries and keys, not by "
                "sqrt(embed_dim).",
            ),
            (
                torch.softmax(q @ q.transpose(-2, -1) / 2, dim=-1),
                "the keys must come from W_k: you scored the queries against themselves.",
            ),
            (
                torch.softmax(raw.transpose(-2, -1) / 2, dim=-1),
                "the scores are transposed: row i must hold query i against every key, "
                "Q @ K^T, not K @ Q^T.",
            ),
        ]
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be softmax(Q K^T / sqrt(key_dim)) with Q = W_q(x), "
        "K = W_k(x).",
        mistakes=mistakes,
    )
    c.expect_close(
        output, expected_output, "the output should be weights @ V, V = W_v(x)."
    )

    mask = causal_mask(5)
    output, weights = c.pair(c.call(module, x, mask), "(output, weights)")
    weights = c.tensor(weights, "weights with a causal mask", shape=(2, 5, 5))
    with torch.no_grad():
        expected_weights = masked_softmax(raw / 2, mask)
    c.expect(
        (weights[:, ~mask] == 0).all(),
        "with a mask, the weights of forbidden keys must be exactly 0: pass the mask on "
        "to masked_softmax (forward(self, x, mask=None)).",
    )
    c.expect_close(
        weights, expected_weights, "with a causal mask the weights are wrong."
    )
