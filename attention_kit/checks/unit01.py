"""Checkers for Lab 01: queries, keys and values."""

from __future__ import annotations

import torch

from ..attention import nadaraya_watson
from .core import Checker, exercise, random_generator


@exercise("01.1", "softmax")
def check_softmax(c: Checker, softmax) -> None:
    g = random_generator(101)
    scores = torch.randn(4, 6, generator=g) * 2
    keepdim_hint = (
        "when you reduce over the last dimension (max or sum), pass keepdim=True so the "
        "result still lines up with the scores' rows."
    )
    weights = c.tensor(
        c.call(softmax, scores, error_hint=keepdim_hint),
        "softmax(scores)",
        shape=scores.shape,
    )
    c.expect(
        (weights >= 0).all(),
        "some weights are negative: exponentiate the scores before normalising "
        "(torch.exp makes every score positive).",
    )
    c.expect_close(
        weights.sum(dim=-1),
        torch.ones(4),
        "rows do not sum to 1: did you take the softmax over the keys, the last "
        "dimension (dim=-1)? Each row holds one query's scores.",
        mistakes=[
            (
                torch.exp(scores).sum(dim=-1),
                "rows sum to the total of exp(scores): divide exp(scores) by its "
                "row sum (keepdim=True) to normalise.",
            )
        ],
    )
    c.expect_close(
        weights,
        torch.softmax(scores, dim=-1),
        "the weights are not softmax(scores): each entry should be exp(s_ij) / sum_j exp(s_ij).",
        mistakes=[
            (
                scores / scores.sum(dim=-1, keepdim=True),
                "you divided the scores by their sum; exponentiate them first.",
            )
        ],
    )

    huge = torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0]])
    weights = c.tensor(
        c.call(softmax, huge, error_hint=keepdim_hint),
        "softmax of scores near +-1000",
        shape=huge.shape,
        nan_hint="exp(1000) overflows to inf and inf/inf is NaN, while exp(-1000) underflows "
        "to 0 and 0/0 is NaN. Subtract each row's maximum before exponentiating: the "
        "result is the same and the largest exponent becomes exp(0) = 1.",
    )
    c.expect_close(
        weights,
        torch.softmax(huge, dim=-1),
        "the weights for scores near +-1000 are wrong; softmax only depends on score "
        "differences, so [1000, 999, 998] must give the same weights as [2, 1, 0].",
    )

    batched = torch.randn(2, 3, 5, generator=g)
    weights = c.tensor(
        c.call(softmax, batched),
        "softmax of a (2, 3, 5) batch",
        shape=batched.shape,
        shape_hint="Keep the input's shape: use keepdim=True when you reduce.",
    )
    c.expect_close(
        weights,
        torch.softmax(batched, dim=-1),
        "for a batch (batch, queries, keys) the softmax must still run over the last "
        "dimension: use dim=-1 rather than dim=1.",
        mistakes=[
            (
                torch.softmax(batched, dim=1),
                "for a batch (batch, queries, keys) you normalised over dim=1; use dim=-1, "
                "which is the keys whatever the number of leading dimensions.",
            )
        ],
    )


@exercise("01.2", "attention_pool")
def check_attention_pool(c: Checker, attention_pool) -> None:
    g = random_generator(102)
    shape_error_hint = (
        "weights (n, m) times values (m, d_v) is a matrix product, weights @ values; "
        "an elementwise product does not line the shapes up."
    )
    weights = torch.softmax(torch.randn(5, 7, generator=g), dim=-1)
    values = torch.randn(7, 3, generator=g)
    output = c.call(attention_pool, weights, values, error_hint=shape_error_hint)
    output = c.tensor(
        output,
        "attention_pool(weights, values)",
        shape=(5, 3),
        shape_hint="The output has one row per query (n = 5) and the width of a value (d_v = 3).",
    )
    c.expect_close(
        output,
        weights @ values,
        "the output should be the weighted average of the values, sum_j a_ij v_j, "
        "one row per query.",
        mistakes=[
            (
                (weights @ values) / weights.shape[-1],
                "you divided by the number of keys: the weights already sum to 1, so "
                "sum_j a_ij v_j is already an average.",
            ),
            (
                values.mean(dim=0).expand(5, 3),
                "every row is the plain mean of the values: the weights are not used.",
            ),
        ],
    )

    square_weights = torch.softmax(torch.randn(4, 4, generator=g), dim=-1)
    square_values = torch.randn(4, 2, generator=g)
    output = c.tensor(
        c.call(
            attention_pool, square_weights, square_values, error_hint=shape_error_hint
        ),
        "attention_pool with 4 queries and 4 keys",
        shape=(4, 2),
    )
    c.expect_close(
        output,
        square_weights @ square_values,
        "with as many queries as keys the result is wrong.",
        mistakes=[
            (
                square_weights.T @ square_values,
                "you transposed the weights: row i of the weights belongs to query i, "
                "so the output is weights @ values.",
            )
        ],
    )

    batch_weights = torch.softmax(torch.randn(2, 5, 7, generator=g), dim=-1)
    batch_values = torch.randn(2, 7, 3, generator=g)
    output = c.call(
        attention_pool,
        batch_weights,
        batch_values,
        error_hint="torch.mm and .T only handle 2-D matrices; the @ operator (torch.matmul) "
        "multiplies the last two dimensions and keeps the batch dimension in front.",
    )
    output = c.tensor(output, "attention_pool on a batch of 2", shape=(2, 5, 3))
    c.expect_close(
        output,
        batch_weights @ batch_values,
        "with a leading batch dimension each batch item must be pooled separately; "
        "the @ operator does that for you.",
    )


@exercise("01.3", "nadaraya_watson")
def check_nadaraya_watson(c: Checker, nadaraya_watson_answer) -> None:
    g = random_generator(103)
    keys = torch.sort(torch.rand(7, generator=g) * 5).values
    values = torch.sin(keys) + 0.1 * torch.randn(7, generator=g)
    queries = torch.linspace(0.2, 4.8, 5)
    bandwidth = 0.7
    expected_predictions, expected_weights = nadaraya_watson(
        queries, keys, values, bandwidth
    )

    layout_hint = (
        "rows are queries and columns are keys: build the differences as "
        "queries[:, None] - keys[None, :], shape (n, m), so that weights @ values works."
    )
    predictions, weights = c.pair(
        c.call(
            nadaraya_watson_answer,
            queries,
            keys,
            values,
            bandwidth,
            error_hint=layout_hint,
        ),
        "(predictions, weights)",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(5, 7),
        shape_hint="Rows are queries and columns are keys: build the differences as "
        "queries[:, None] - keys[None, :].",
    )
    predictions = c.tensor(predictions, "predictions", shape=(5,))

    differences = queries[:, None] - keys[None, :]
    c.expect_close(
        weights.sum(dim=-1),
        torch.ones(5),
        "the weights of each query (one row) must sum to 1: take the softmax over the "
        "keys, dim=-1.",
    )
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be softmax over keys of -(q - k)^2 / (2 * bandwidth^2).",
        mistakes=[
            (
                torch.softmax(differences**2 / (2 * bandwidth**2), dim=-1),
                "the weights grow with the distance between query and key: the score "
                "is the NEGATIVE squared distance, -(q - k)^2 / (2 h^2).",
            ),
            (
                torch.softmax(-differences / (2 * bandwidth**2), dim=-1),
                "the score must treat keys on both sides of the query alike: square the "
                "difference, -(q - k)^2.",
            ),
            (
                torch.softmax(-differences.abs() / (2 * bandwidth**2), dim=-1),
                "you used the distance |q - k| (a Laplace kernel); this exercise asks for "
                "the Gaussian kernel, with the squared distance (q - k)^2.",
            ),
            (
                torch.softmax(-(differences**2) / bandwidth**2, dim=-1),
                "the kernel is 2x too narrow: divide by 2 * bandwidth^2, not bandwidth^2.",
            ),
            (
                torch.softmax(-(differences**2) / (2 * bandwidth), dim=-1),
                "the bandwidth must be squared: divide by 2 * bandwidth^2.",
            ),
            (
                torch.softmax(-(differences**2) / 2, dim=-1),
                "the weights do not depend on the bandwidth: divide the squared "
                "distance by 2 * bandwidth^2.",
            ),
        ],
    )
    c.expect_close(
        predictions,
        expected_predictions,
        "the predictions should be the weighted average of the values: weights @ values.",
        mistakes=[
            (
                expected_weights @ values / values.shape[0],
                "you divided by the number of keys: the weights already sum to 1.",
            )
        ],
    )

    tiny = 1e-3
    far_queries = torch.tensor([-3.0, 2.5, 9.0])
    predictions, weights = c.pair(
        c.call(nadaraya_watson_answer, far_queries, keys, values, tiny),
        "(predictions, weights)",
    )
    nan_hint = (
        f"with bandwidth {tiny} and queries far from every key, each exp(score) "
        "underflows to 0 and the normalisation is 0/0. torch.softmax subtracts each row's "
        "maximum first, which avoids this."
    )
    weights = c.tensor(
        weights, "weights for a tiny bandwidth", shape=(3, 7), nan_hint=nan_hint
    )
    predictions = c.tensor(
        predictions, "predictions for a tiny bandwidth", shape=(3,), nan_hint=nan_hint
    )
    expected_predictions, _ = nadaraya_watson(far_queries, keys, values, tiny)
    c.expect_close(
        predictions,
        expected_predictions,
        "as the bandwidth goes to 0 the prediction should become the value of the "
        "nearest key (nearest-neighbour regression).",
    )
