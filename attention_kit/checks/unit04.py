"""Checkers for Lab 04: self-attention."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..attention import SelfAttention, masked_softmax, simple_self_attention
from ..masks import causal_mask
from .core import Checker, exercise, random_generator, scale_mistakes


def _simple_mistakes(x: Tensor) -> list[tuple[Tensor, str]]:
    d, n = x.shape[-1], x.shape[-2]
    scores = x @ x.transpose(-2, -1)
    return [
        *scale_mistakes(scores, d, "d"),
        (
            torch.softmax(scores / math.sqrt(n), dim=-1),
            "you divided by sqrt(n), the number of tokens; d is the LAST dimension, "
            "x.shape[-1].",
        ),
        (
            torch.softmax(scores / math.sqrt(d), dim=-2),
            "the scores are symmetric, so a softmax over dim=-2 gives the transposed "
            "weights: its columns sum to 1, not its rows. Use dim=-1.",
        ),
        (
            masked_softmax(scores / math.sqrt(d), causal_mask(n)),
            "this exercise has no mask: every token attends to every token, "
            "the later ones too (the causal mask comes with SelfAttention's mask "
            "argument).",
        ),
    ]


@exercise("04.1", "simple_self_attention")
def check_simple_self_attention(c: Checker, answer) -> None:
    g = random_generator(401)
    error_hint = (
        "the scores are every token against every token: x @ x.transpose(-2, -1), "
        "shape (batch, n, n); the output is weights @ x."
    )
    cases = [
        ("x of shape (2, 5, 4)", torch.randn(2, 5, 4, generator=g)),
        ("x of shape (1, 3, 6)", torch.randn(1, 3, 6, generator=g)),
        ("a single token, x of shape (2, 1, 4)", torch.randn(2, 1, 4, generator=g)),
        # Long vectors: scores in the hundreds, which a hand-written softmax must survive.
        (
            "x of shape (2, 4, 8) with scores in the hundreds",
            torch.randn(2, 4, 8, generator=g) * 12,
        ),
    ]
    for what, x in cases:
        batch, n, d = x.shape
        output, weights = c.pair(
            c.call(answer, x, error_hint=error_hint), "(output, weights)"
        )
        weights = c.tensor(
            weights,
            f"weights for {what}",
            shape=(batch, n, n),
            shape_hint="One row and one column per token: x @ x.transpose(-2, -1), not "
            "x.transpose(-2, -1) @ x (that is (d, d)).",
            nan_hint="exp overflowed: use torch.softmax (or subtract each row's maximum).",
        )
        output = c.tensor(
            output,
            f"output for {what}",
            shape=(batch, n, d),
            shape_hint="Each token's output is a mixture of the tokens: weights @ x.",
        )
        expected_output, expected_weights = simple_self_attention(x)
        c.expect_close(
            weights,
            expected_weights,
            f"for {what} the weights should be softmax(X X^T / sqrt(d)) over the last "
            "dimension; read d from x.shape[-1].",
            mistakes=_simple_mistakes(x),
        )
        c.expect_close(
            output,
            expected_output,
            f"for {what} the output should be weights @ x.",
            mistakes=[
                (
                    expected_weights.transpose(-2, -1) @ x,
                    "the output uses the transposed weights: row i of the output mixes "
                    "the tokens with row i of the weights, weights @ x.",
                )
            ],
        )


def _mask_error_hint(error: Exception) -> str:
    return (
        "the mask is boolean (True = may attend) and broadcasts against the scores "
        "(batch, n, n) as it is: a causal_mask(n) of shape (n, n) or a padding mask of "
        "shape (batch, 1, n). Pass it on to masked_softmax without adding axes."
    )


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
    scale = math.sqrt(key_dim)

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
        q, k, v = reference.W_q(x), reference.W_k(x), reference.W_v(x)
        raw = q @ k.transpose(-2, -1)
        mistakes = [
            *scale_mistakes(raw, key_dim, "key_dim"),
            (
                torch.softmax(raw / math.sqrt(embed_dim), dim=-1),
                "scale by sqrt(key_dim), the size of the queries and keys, not by "
                "sqrt(embed_dim).",
            ),
            (
                torch.softmax(raw / math.sqrt(value_dim), dim=-1),
                "scale by sqrt(key_dim), the size of the queries and keys, not by "
                "sqrt(value_dim).",
            ),
            (
                torch.softmax(q @ q.transpose(-2, -1) / scale, dim=-1),
                "the keys must come from W_k: you scored the queries against themselves.",
            ),
            (
                torch.softmax(k @ k.transpose(-2, -1) / scale, dim=-1),
                "the queries must come from W_q: you scored the keys against themselves.",
            ),
            (
                torch.softmax(raw.transpose(-2, -1) / scale, dim=-1),
                "the scores are transposed: row i must hold query i against every key, "
                "Q @ K^T, not K @ Q^T.",
            ),
            (
                torch.softmax(raw / scale, dim=-2),
                "the softmax must run over the keys, the last dimension (dim=-1).",
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
        output,
        expected_output,
        "the output should be weights @ V, V = W_v(x).",
        mistakes=[
            (
                expected_weights.transpose(-2, -1) @ v,
                "the output uses the transposed weights: weights @ V.",
            )
        ],
    )

    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, :]
    all_padding = torch.tensor([[True, True, False, True, True], [False] * 5])[
        :, None, :
    ]
    one_token = torch.randn(1, 1, embed_dim, generator=g)
    cases = [
        ("a causal mask of shape (n, n)", x, causal_mask(5)),
        ("a (batch, 1, n) padding mask", x, padding),
        ("a (batch, 1, n) mask where sequence 1 is all padding", x, all_padding),
        ("a single token and no mask", one_token, None),
        ("long inputs (scores in the hundreds) and no mask", x * 25, None),
    ]
    for description, inputs, mask in cases:
        args = (inputs,) if mask is None else (inputs, mask)
        output, weights = c.pair(
            c.call(module, *args, error_hint=_mask_error_hint), "(output, weights)"
        )
        with torch.no_grad():
            expected_output, expected_weights = reference(*args)
            raw = (
                reference.W_q(inputs) @ reference.W_k(inputs).transpose(-2, -1) / scale
            )
        weights = c.tensor(
            weights,
            f"weights with {description}",
            shape=expected_weights.shape,
            nan_hint="NaN: a sequence where no token may be attended must give zero "
            "weights, and scores in the hundreds must not overflow: use masked_softmax "
            "(or subtract each row's maximum before exp).",
        )
        output = c.tensor(
            output, f"output with {description}", shape=expected_output.shape
        )
        mistakes = []
        if mask is not None:
            mistakes = [
                (
                    torch.softmax(raw, dim=-1),
                    "with a mask, the weights of forbidden keys must be exactly 0: pass "
                    "the mask on to masked_softmax (forward(self, x, mask=None)).",
                ),
                (
                    masked_softmax(raw, ~mask),
                    "the mask is inverted: True means 'may attend', so pass it on as it "
                    "is (PyTorch's scaled_dot_product_attention uses the same "
                    "convention).",
                ),
                (
                    torch.softmax(raw.masked_fill(~mask, -1e9), dim=-1),
                    "a sequence where no token may be attended must get all-zero "
                    "weights: a large negative number such as -1e9 instead of -inf "
                    "spreads its weight evenly over the forbidden tokens. Use "
                    "masked_softmax from Lab 02.",
                ),
            ]
        c.expect_close(
            weights,
            expected_weights,
            f"with {description} the weights are wrong.",
            mistakes=mistakes,
        )
        c.expect_close(
            output, expected_output, f"with {description} the output is wrong."
        )
