"""Checkers for Lab 01: queries, keys and values."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attention import nadaraya_watson
from .core import Checker, exercise, random_generator

BUILT_IN_SOFTMAX = (
    (torch, "softmax"),
    (torch.special, "softmax"),
    (F, "softmax"),
    (torch.Tensor, "softmax"),
)


def _softmax_error_hint(error: Exception) -> str:
    if "Dimension out of range" in str(error):
        return (
            "the scores may have any number of dimensions, (..., m), even just one: "
            "reduce over dim=-1, the last dimension, whatever the shape."
        )
    return (
        "when you reduce over the last dimension (max or sum), pass keepdim=True so the "
        "result still lines up with the scores' rows."
    )


@exercise("01.1", "softmax")
def check_softmax(c: Checker, softmax) -> None:
    g = random_generator(101)

    def run(scores, what, **hints):
        with c.forbidding(
            "write the softmax yourself with torch.exp and a sum; torch.softmax is what "
            "the check compares against.",
            *BUILT_IN_SOFTMAX,
        ):
            output = c.call(softmax, scores, error_hint=_softmax_error_hint)
        return c.tensor(output, what, shape=scores.shape, **hints)

    scores = torch.randn(4, 6, generator=g) * 2
    weights = run(scores, "softmax(scores)")
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
        "the weights are not softmax(scores): each entry should be exp(s_ij) / sum_j "
        "exp(s_ij). If you shift the scores first, subtract one number per row (its "
        "maximum, dim=-1, keepdim=True), which leaves the weights unchanged.",
        mistakes=[
            (
                scores / scores.sum(dim=-1, keepdim=True),
                "you divided the scores by their sum; exponentiate them first.",
            )
        ],
    )

    overflow_hint = (
        "exp(1000) overflows to inf and inf/inf is NaN, while exp(-1000) underflows "
        "to 0 and 0/0 is NaN. Subtract each row's maximum before exponentiating: the "
        "result is the same and the largest exponent becomes exp(0) = 1."
    )
    huge = torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0]])
    weights = run(huge, "softmax of scores near +-1000", nan_hint=overflow_hint)
    c.expect_close(
        weights,
        torch.softmax(huge, dim=-1),
        "the weights for scores near +-1000 are wrong; softmax only depends on score "
        "differences, so [1000, 999, 998] must give the same weights as [2, 1, 0].",
    )

    # Rows that spread over hundreds: a shift by the row's minimum, mean or first entry
    # (rather than its maximum) leaves exponents far above 88, where float32 overflows.
    wide = torch.tensor(
        [[-150.0, 150.0, 0.0, 149.0], [0.0, -300.0, -120.0, 0.5], [5.0, 4.0, 3.0, 2.0]]
    )
    weights = run(
        wide,
        "softmax of rows whose scores spread over 300",
        nan_hint="a row whose scores spread over 300 overflows unless the largest "
        "exponent is exp(0): subtract each row's MAXIMUM (not its minimum, mean or first "
        "entry) before exponentiating.",
    )
    c.expect_close(
        weights,
        torch.softmax(wide, dim=-1),
        "the weights of rows that spread over 300 are wrong: subtract each row's own "
        "maximum, scores.max(dim=-1, keepdim=True).values.",
    )

    batched = torch.randn(2, 3, 5, generator=g) * 3
    batched[1, 2] += 500.0  # one row far above the others: a global shift fails
    weights = run(
        batched,
        "softmax of a (2, 3, 5) batch",
        shape_hint="Keep the input's shape: use keepdim=True when you reduce.",
        nan_hint="one row of this batch has scores near 500 and the others near 0: "
        "subtract each row's own maximum (dim=-1, keepdim=True), not one maximum for "
        "the whole tensor or for the wrong dimension.",
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

    for shape in [(7,), (1, 1), (3, 1)]:
        scores = torch.randn(shape, generator=g) * 4
        weights = run(scores, f"softmax of scores of shape {shape}")
        c.expect_close(
            weights,
            torch.softmax(scores, dim=-1),
            f"for scores of shape {shape} the weights are wrong: the softmax runs over "
            "the last dimension whatever the shape (one key gets weight 1).",
        )


def _pool_error_hint(error: Exception) -> str:
    message = str(error)
    if "einsum" in message:
        return (
            "your einsum names a fixed number of dimensions; with leading batch "
            "dimensions write '...nm,...md->...nd', or use weights @ values."
        )
    if "cannot be multiplied" in message or "size mismatch" in message:
        return (
            "the operands of the matrix product do not line up: weights (n, m) @ values "
            "(m, d_v) gives (n, d_v); values @ weights or a transpose does not."
        )
    if "3D" in message or "3-D" in message:
        return (
            "torch.bmm needs 3-D inputs; the @ operator handles 2-D and batched ones."
        )
    if "2D" in message or "2-D" in message or "must be a matrix" in message:
        return (
            "torch.mm and .T only handle 2-D matrices; the @ operator (torch.matmul) "
            "multiplies the last two dimensions and keeps the batch dimension in front."
        )
    return (
        "weights (n, m) times values (m, d_v) is a matrix product, weights @ values; "
        "an elementwise product (*) does not line the shapes up."
    )


@exercise("01.2", "attention_pool")
def check_attention_pool(c: Checker, attention_pool) -> None:
    g = random_generator(102)
    weights = torch.softmax(torch.randn(5, 7, generator=g), dim=-1)
    values = torch.randn(7, 3, generator=g)
    output = c.call(attention_pool, weights, values, error_hint=_pool_error_hint)
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
            (
                torch.softmax(weights, dim=-1) @ values,
                "you applied a softmax to the weights: they already are a softmax "
                "(each row sums to 1), so use them as they are, weights @ values.",
            ),
        ],
    )

    square_weights = torch.softmax(torch.randn(4, 4, generator=g), dim=-1)
    square_values = torch.randn(4, 4, generator=g)
    output = c.tensor(
        c.call(
            attention_pool, square_weights, square_values, error_hint=_pool_error_hint
        ),
        "attention_pool with 4 queries, 4 keys and values of width 4",
        shape=(4, 4),
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
            ),
            (
                square_values @ square_weights,
                "the order of the product is reversed: weights @ values, not "
                "values @ weights (row i of the output mixes the values with query i's "
                "weights).",
            ),
            (
                square_weights * square_values,
                "an elementwise product (*) only looks right when the shapes happen to "
                "match: the output is the matrix product weights @ values.",
            ),
        ],
    )

    for batch_shape, n, m, d_v in [((2,), 5, 7, 3), ((1,), 1, 6, 2), ((2, 3), 2, 4, 5)]:
        batch_weights = torch.softmax(
            torch.randn(*batch_shape, n, m, generator=g), dim=-1
        )
        batch_values = torch.randn(*batch_shape, m, d_v, generator=g)
        output = c.call(
            attention_pool, batch_weights, batch_values, error_hint=_pool_error_hint
        )
        shape = (*batch_shape, n, d_v)
        output = c.tensor(
            output, f"attention_pool with output shape {shape}", shape=shape
        )
        c.expect_close(
            output,
            batch_weights @ batch_values,
            "with leading batch dimensions each batch item must be pooled separately; "
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

    def run(queries, bandwidth):
        """The learner's (predictions, weights) for these queries and bandwidth."""
        result = c.call(
            nadaraya_watson_answer,
            queries,
            keys,
            values,
            bandwidth,
            error_hint=layout_hint,
        )
        return c.pair(result, "(predictions, weights)")

    predictions, weights = run(queries, bandwidth)
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
                "is the NEGATIVE squared distance, -(q - k)^2 / (2 * bandwidth^2).",
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
                torch.softmax(-(differences**2) * (2 * bandwidth**2), dim=-1),
                "you multiplied by 2 * bandwidth^2; divide by it.",
            ),
            (
                torch.softmax(-(differences**2) / 2 * bandwidth**2, dim=-1),
                "operator precedence: -(q - k)**2 / 2 * bandwidth**2 MULTIPLIES by "
                "bandwidth^2; write -(q - k)**2 / (2 * bandwidth**2).",
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
            ),
            (
                expected_weights @ keys,
                "you averaged the keys: the prediction is the weighted average of the "
                "VALUES, weights @ values.",
            ),
        ],
    )

    # As many queries as keys: an elementwise queries - keys runs without an error.
    square_queries = torch.linspace(0.5, 4.5, 7)
    predictions, weights = run(square_queries, 0.4)
    weights = c.tensor(
        weights,
        "weights for 7 queries and 7 keys",
        shape=(7, 7),
        shape_hint="one row per query, one column per key: queries[:, None] - keys[None, :].",
    )
    expected_predictions, expected_weights = nadaraya_watson(
        square_queries, keys, values, 0.4
    )
    c.expect_close(
        weights,
        expected_weights,
        "with as many queries as keys the weights are wrong: row i holds query i "
        "against every key, queries[:, None] - keys[None, :].",
        mistakes=[
            (
                expected_weights.T,
                "the weights are transposed: rows are queries and columns are keys.",
            )
        ],
    )

    single = torch.tensor([2.2])
    predictions, weights = run(single, bandwidth)
    weights = c.tensor(weights, "weights for a single query", shape=(1, 7))
    predictions = c.tensor(predictions, "predictions for a single query", shape=(1,))
    c.expect_close(
        predictions,
        nadaraya_watson(single, keys, values, bandwidth)[0],
        "for a single query (n = 1) the prediction is wrong; avoid squeeze() and other "
        "steps that depend on n > 1.",
    )

    tiny = 1e-3
    far_queries = torch.tensor([-3.0, 2.5, 9.0])
    predictions, weights = run(far_queries, tiny)
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
