"""Checkers for Lab 02: attention scoring functions and the masked softmax."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..attention import AdditiveAttention, masked_softmax, scaled_dot_product_attention
from .core import Checker, exercise, loss_weights, random_generator, scale_mistakes

NEG_INF = float("-inf")

BROADCAST_HINT = (
    "the mask may be smaller than the scores, e.g. (m,) or (batch, 1, m): use "
    "scores.masked_fill(~mask, float('-inf')) or torch.where, which broadcast it, and "
    "keepdim=True when you reduce the mask (mask.any(dim=-1, keepdim=True))."
)

GRADIENT_HINT = (
    "a row with no allowed key must give finite gradients too. A softmax of a row of "
    "-inf is NaN, and replacing the NaN after the softmax (nan_to_num, torch.where) "
    "hides it in the forward pass only: the backward pass still goes through it. Give "
    "such rows finite scores BEFORE the softmax (find them with "
    "mask.any(dim=-1, keepdim=True)), and set masked scores with masked_fill or "
    "torch.where, which send no gradient to the entries they replace."
)


def _mask_mistakes(
    scores: Tensor, mask: Tensor, softmax_dim_hint: bool = True
) -> list[tuple[Tensor, str]]:
    """The weights that the classic masking mistakes give, with their hints."""
    allowed = mask.expand_as(scores)
    plain = torch.softmax(scores, dim=-1)
    mistakes = [
        (
            masked_softmax(scores, ~allowed),
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
        (plain, "the weights on masked keys are not zero: the mask was not applied."),
        (
            torch.softmax(scores + allowed.to(scores.dtype), dim=-1),
            "you added the boolean mask to the scores (True counts as 1): a bool mask "
            "says which keys are allowed, it is not an additive mask. Set the scores "
            "of forbidden keys to -inf with scores.masked_fill(~mask, float('-inf')).",
        ),
    ]
    if softmax_dim_hint:
        mistakes.append(
            (
                torch.softmax(scores.masked_fill(~allowed, NEG_INF), dim=-2),
                "the softmax must run over the keys, the last dimension (dim=-1).",
            )
        )
    return mistakes


def _mask_cases(g: torch.Generator) -> list[tuple[str, Tensor, Tensor]]:
    """(description, scores, mask) with every row keeping at least one key."""
    scores = torch.randn(2, 3, 5, generator=g) * 3
    key_mask = torch.tensor([True, True, False, True, False])
    per_query = torch.rand(2, 3, 5, generator=g) > 0.4
    per_query[..., 1] = True
    per_position = torch.rand(3, 5, generator=g) > 0.5
    per_position[:, 3] = True
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, :]
    return [
        ("a (m,) mask shared by every query", scores, key_mask),
        ("a (batch, 1, m) padding mask", scores, padding),
        ("a (batch, n, m) mask", scores, per_query),
        ("an (n, m) mask shared by the batch", scores, per_position),
        ("one query, scores (batch, 1, m)", scores[:, :1], padding),
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
    weights = c.tensor(
        c.call(
            answer,
            scores,
            error_hint="give mask a default, def masked_softmax(scores, mask=None), "
            "so that masked_softmax(scores) works.",
        ),
        "masked_softmax(scores) with the default mask",
        shape=scores.shape,
    )
    c.expect_close(
        weights,
        torch.softmax(scores, dim=-1),
        "masked_softmax(scores) (no mask given) should be the plain softmax.",
    )

    for description, scores, mask in _mask_cases(g):
        what = f"masked_softmax with {description}"
        weights = c.tensor(
            c.call(answer, scores, mask, error_hint=BROADCAST_HINT),
            what,
            shape=scores.shape,
            shape_hint="The weights have the shape of the scores, whatever the mask's shape.",
        )
        c.expect_close(
            weights,
            masked_softmax(scores, mask),
            f"{what}: the weights should be the softmax over the allowed keys only.",
            mistakes=_mask_mistakes(scores, mask),
        )

    # A masked key with a huge score: masking after the softmax (even with
    # renormalising) loses every allowed key to underflow.
    scores = torch.tensor([[0.5, 1.0, 400.0], [2.0, -1.0, 0.0]])
    mask = torch.tensor([True, True, False])
    weights = c.tensor(
        c.call(answer, scores, mask, error_hint=BROADCAST_HINT),
        "masked_softmax when a forbidden key has the score 400",
        shape=scores.shape,
        nan_hint="a forbidden key with the score 400 broke the result: exp(400) "
        "overflows, and a key that takes all the weight before the mask removes it "
        "leaves 0/0. Set masked scores to -inf before the softmax, not after it.",
    )
    c.expect_close(
        weights.sum(dim=-1),
        torch.ones(2),
        "the rows do not sum to 1 when a forbidden key has the score 400: that key took "
        "all the weight (or exp(400) overflowed) before the mask removed it. Set masked "
        "scores to -inf BEFORE the softmax, so that the row's maximum is an allowed key.",
    )
    c.expect_close(
        weights,
        masked_softmax(scores, mask),
        "a forbidden key's score must not matter at all: mask before the softmax.",
    )

    empty_row_hint = (
        "a row with no allowed key is softmax(-inf, ..., -inf) = 0/0 = NaN. "
        "Give such rows all-zero weights: find them with mask.any(dim=-1, keepdim=True)."
    )
    empty_row = torch.tensor([[True, False, True], [False, False, False]])
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    weights = c.tensor(
        c.call(answer, scores, empty_row, error_hint=BROADCAST_HINT),
        "masked_softmax with a row where no key is allowed",
        shape=scores.shape,
        nan_hint=empty_row_hint,
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

    # A broadcast (batch, 1, m) padding mask whose second sequence is all padding,
    # on scores that spread over hundreds; then the backward pass through it.
    scores = (torch.randn(2, 3, 4, generator=g) * 150).requires_grad_()
    padding = torch.tensor([[True, True, False, True], [False] * 4])[:, None, :]
    output = c.call(answer, scores, padding, error_hint=BROADCAST_HINT)
    weights = c.tensor(
        output,
        "masked_softmax with a (batch, 1, m) mask that allows no key in sequence 1",
        shape=scores.shape,
        nan_hint=empty_row_hint + " With a (batch, 1, m) mask, a whole sequence can be "
        "padding.",
    )
    expected = masked_softmax(scores.detach(), padding)
    c.expect_close(
        weights,
        expected,
        "with a (batch, 1, m) mask that allows no key in one sequence, that sequence's "
        "weights are all 0 and the others are the softmax over the allowed keys.",
        mistakes=_mask_mistakes(scores.detach(), padding, softmax_dim_hint=False),
    )
    (gradient,) = c.gradients(
        output,
        [scores],
        "the backward pass of masked_softmax with a row where no key is allowed",
        GRADIENT_HINT,
    )
    reference = scores.detach().clone().requires_grad_()
    (expected_gradient,) = torch.autograd.grad(
        (masked_softmax(reference, padding) * loss_weights(scores.shape)).sum(),
        reference,
    )
    c.expect_close(
        gradient,
        expected_gradient,
        "the gradient of the scores is wrong: masked keys and rows with no allowed key "
        "must get gradient 0 (their weights do not depend on the scores).",
    )

    huge = torch.tensor([[3000.0, 2999.0, -3000.0], [-2000.0, -2001.0, 10.0]])
    mask = torch.tensor([True, True, False])
    weights = c.tensor(
        c.call(answer, huge, mask, error_hint=BROADCAST_HINT),
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


def _sdpa_error_hint(error: Exception) -> str:
    message = str(error)
    if "out of range" in message or "must match" in message:
        return (
            "inputs may be unbatched (n, d_k) or carry several leading dimensions "
            "(batch, heads, n, d_k): count dimensions from the end, "
            "keys.transpose(-2, -1), softmax over dim=-1, d_k = queries.shape[-1]. "
            "keys.T, transpose(1, 2) and shape[2] assume one layout."
        )
    return (
        "for batched tensors, swap only the last two dimensions of the keys: "
        "keys.transpose(-2, -1). keys.T reverses every dimension."
    )


@exercise("02.2", "scaled_dot_product_attention")
def check_scaled_dot_product_attention(c: Checker, answer) -> None:
    g = random_generator(202)
    n, m, d_k, d_v = 4, 6, 16, 3
    queries = torch.randn(2, n, d_k, generator=g)
    keys = torch.randn(2, m, d_k, generator=g)
    values = torch.randn(2, m, d_v, generator=g)
    output, weights = c.pair(
        c.call(answer, queries, keys, values, None, error_hint=_sdpa_error_hint),
        "(output, weights)",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, n, m),
        shape_hint="One row per query, one column per key: (batch, n, m).",
    )
    output = c.tensor(
        output,
        "output",
        shape=(2, n, d_v),
        shape_hint="One row per query, as wide as a value: (batch, n, d_v) = "
        "weights @ values (the values, not the keys).",
    )
    raw = queries @ keys.transpose(-2, -1)
    c.expect_close(
        weights.sum(dim=-1),
        torch.ones(2, n),
        "each query's weights must sum to 1: take the softmax over the keys (dim=-1).",
        mistakes=[
            (
                torch.full((2, n), 1 / math.sqrt(d_k)),
                "each row of weights sums to 1/sqrt(d_k): you divided the weights by "
                "sqrt(d_k) after the softmax. Scale the SCORES before it, "
                "softmax(Q K^T / sqrt(d_k)).",
            )
        ],
    )
    expected_output, expected_weights = scaled_dot_product_attention(
        queries, keys, values
    )
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be softmax(Q K^T / sqrt(d_k)) over the keys.",
        mistakes=[
            *scale_mistakes(raw, d_k, "d_k"),
            (
                torch.softmax(raw / math.sqrt(d_v), dim=-1),
                "the scale uses d_k, the size of queries and keys (queries.shape[-1]), "
                "not d_v, the size of the values.",
            ),
            (
                torch.softmax(raw / math.sqrt(n), dim=-1),
                "you divided by sqrt(n), the number of queries; d_k is the LAST "
                "dimension, queries.shape[-1].",
            ),
            (
                torch.softmax(raw / math.sqrt(m), dim=-1),
                "you divided by sqrt(m), the number of keys; d_k is the LAST "
                "dimension, keys.shape[-1].",
            ),
        ],
    )
    c.expect_close(
        output,
        expected_output,
        "the output should be the weights times the values: weights @ values.",
    )

    output, _ = c.pair(
        c.call(
            answer,
            queries,
            keys,
            values,
            error_hint="give mask a default, mask=None, so that the function works "
            "with three arguments.",
        ),
        "(output, weights)",
    )
    output = c.tensor(output, "output with the default mask", shape=(2, n, d_v))
    c.expect_close(
        output, expected_output, "without a mask argument the output is wrong."
    )

    # Padding: sequence 1 has 4 real keys; then a sequence that is all padding.
    for lengths in ([m, 4], [3, 0]):
        mask = (torch.arange(m)[None, :] < torch.tensor(lengths)[:, None])[:, None, :]
        what = f"a (batch, 1, m) padding mask with {lengths} real keys"
        output, weights = c.pair(
            c.call(answer, queries, keys, values, mask, error_hint=_sdpa_error_hint),
            "(output, weights)",
        )
        weights = c.tensor(
            weights,
            f"weights with {what}",
            shape=(2, n, m),
            nan_hint="a sequence with no allowed key must give zeros, not NaN: use your "
            "masked_softmax from Exercise 02.1.",
        )
        output = c.tensor(output, f"output with {what}", shape=(2, n, d_v))
        expected_output, expected_weights = scaled_dot_product_attention(
            queries, keys, values, mask
        )
        scores = raw / math.sqrt(d_k)
        c.expect_close(
            weights,
            expected_weights,
            f"with {what}, the weights should be the masked softmax of the scaled scores.",
            mistakes=[
                (
                    torch.softmax(scores, dim=-1),
                    "the weights on masked keys are not zero: pass the mask on to your "
                    "masked_softmax.",
                ),
                (
                    masked_softmax(scores, ~mask),
                    "the mask is inverted: True means 'may attend'.",
                ),
                (
                    torch.softmax(scores, dim=-1) * mask,
                    "the rows no longer sum to 1: mask the scores before the softmax "
                    "(your masked_softmax does that).",
                ),
            ],
        )
        c.expect_close(
            output,
            expected_output,
            "with a mask, the output should only mix the allowed values.",
        )

    # (batch, heads, n, d_k), unbatched (n, d_k) and a single query, with wide scores.
    for q_shape, k_shape, v_shape, spread in [
        ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), 1.0),
        ((5, 8), (7, 8), (7, 2), 1.0),
        ((1, 1, 6), (1, 3, 6), (1, 3, 2), 30.0),
    ]:
        q = torch.randn(q_shape, generator=g) * spread
        k = torch.randn(k_shape, generator=g) * spread
        v = torch.randn(v_shape, generator=g)
        shape = (*q_shape[:-1], v_shape[-1])
        output, _ = c.pair(
            c.call(answer, q, k, v, None, error_hint=_sdpa_error_hint),
            "(output, weights)",
        )
        output = c.tensor(
            output,
            f"output for queries {q_shape}, keys {k_shape}, values {v_shape}",
            shape=shape,
        )
        c.expect_close(
            output,
            scaled_dot_product_attention(q, k, v)[0],
            f"for queries {q_shape} the result is wrong; use operations on the last "
            "two dimensions only (@, transpose(-2, -1), dim=-1, shape[-1]).",
        )

    # Backward pass through a sequence that is all padding.
    q = queries.clone().requires_grad_()
    k = keys.clone().requires_grad_()
    v = values.clone().requires_grad_()
    mask = torch.tensor([[True] * m, [False] * m])[:, None, :]
    output, _ = c.pair(c.call(answer, q, k, v, mask), "(output, weights)")
    c.gradients(
        output,
        [q, k, v],
        "the backward pass through a sequence where no key is allowed",
        GRADIENT_HINT,
    )


def _hooks_on(module: nn.Module, names: list[str], seen: dict) -> list:
    """Record the input and output shapes of the named layers while they run."""
    handles = []
    for name in names:
        layer = getattr(module, name, None)
        if not isinstance(layer, nn.Module):
            continue
        handles.append(
            layer.register_forward_pre_hook(
                lambda _, args, name=name: seen.__setitem__(
                    f"{name} in", tuple(args[0].shape)
                )
            )
        )
        handles.append(
            layer.register_forward_hook(
                lambda _, args, out, name=name: seen.__setitem__(
                    f"{name} out", tuple(out.shape)
                )
            )
        )
    return handles


def _additive_diagnosis(seen: dict, expected: dict) -> Callable:
    """An error hint that reads which layers ran, on what, before the error; ``expected``
    holds the right shapes for the current call."""

    def hint(error: Exception) -> str:
        if any(
            f"{name} in" in seen
            and seen[f"{name} in"][-1] != expected[f"{name} in"][-1]
            for name in ("W_q", "W_k")
        ):
            return (
                "W_q projects the queries (query_dim features) and W_k the keys "
                "(key_dim features): self.W_q(queries) and self.W_k(keys)."
            )
        if seen.get("w_v out") == expected["w_v out"]:
            return (
                "w_v gives scores of shape (..., n, m, 1): remove the last axis with "
                "squeeze(-1) before the softmax, so that the scores are (..., n, m) and "
                "the mask and the values line up with them."
            )
        return (
            "to score every query against every key, add a key axis to the projected "
            "queries and a query axis to the projected keys: (..., n, 1, d_a) + "
            "(..., 1, m, d_a) broadcasts to (..., n, m, d_a), d_a = hidden_dim. Count the "
            "axes from the end, "
            "unsqueeze(-2) and unsqueeze(-3), so that inputs with no batch axis or with "
            "extra ones work too."
        )

    return hint


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
    seen: dict = {}
    expected_shapes: dict = {}
    diagnosis = _additive_diagnosis(seen, expected_shapes)

    def run(*args, error_hint=diagnosis):
        seen.clear()
        with torch.no_grad():
            expected_shapes["W_q in"] = tuple(args[0].shape)
            expected_shapes["W_k in"] = tuple(args[1].shape)
            expected_shapes["w_v out"] = (*reference.scores(args[0], args[1]).shape, 1)
        handles = _hooks_on(module, ["W_q", "W_k", "w_v"], seen)
        try:
            return c.call(module, *args, error_hint=error_hint)
        finally:
            for handle in handles:
                handle.remove()

    queries = torch.randn(2, 4, query_dim, generator=g)
    keys = torch.randn(2, 6, key_dim, generator=g)
    values = torch.randn(2, 6, 2, generator=g)
    mask = torch.tensor([[True] * 6, [True, True, True, False, False, False]])[
        :, None, :
    ]
    output, weights = c.pair(run(queries, keys, values, mask), "(output, weights)")
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, 4, 6),
        shape_hint="Squeeze the last axis of w_v's output: (batch, n, m, 1) -> (batch, n, m).",
    )
    output = c.tensor(output, "output", shape=(2, 4, 2))
    with torch.no_grad():
        features = reference.W_q(queries).unsqueeze(-2) + reference.W_k(keys).unsqueeze(
            -3
        )
        expected_output, expected_weights = reference(queries, keys, values, mask)
        scores = reference.scores(queries, keys)
        mistakes = [
            (
                masked_softmax(reference.w_v(features).squeeze(-1), mask),
                "the tanh is missing: score = w_v(tanh(W_q(q) + W_k(k))).",
            ),
            (
                masked_softmax(torch.tanh(reference.w_v(features)).squeeze(-1), mask),
                "the tanh goes between the projections and w_v: "
                "w_v(tanh(W_q(q) + W_k(k))), not tanh(w_v(...)).",
            ),
            (
                masked_softmax(
                    reference.w_v(
                        torch.tanh(reference.W_q(queries)).unsqueeze(-2)
                        + torch.tanh(reference.W_k(keys)).unsqueeze(-3)
                    ).squeeze(-1),
                    mask,
                ),
                "apply tanh once, to the SUM of the projections: "
                "tanh(W_q(q) + W_k(k)), not tanh(W_q(q)) + tanh(W_k(k)).",
            ),
            (
                masked_softmax(reference.w_v(torch.relu(features)).squeeze(-1), mask),
                "Bahdanau's score uses tanh, not ReLU, between the projections and w_v.",
            ),
            (
                masked_softmax(
                    reference.w_v(torch.sigmoid(features)).squeeze(-1), mask
                ),
                "Bahdanau's score uses tanh, not a sigmoid, between the projections and "
                "w_v.",
            ),
            (
                masked_softmax(
                    (
                        torch.tanh(reference.W_q(queries))
                        @ torch.tanh(reference.W_k(keys)).transpose(-2, -1)
                    ),
                    mask,
                ),
                "the score is additive: w_v(tanh(W_q q + W_k k)), not a dot product.",
            ),
            (
                masked_softmax(scores / math.sqrt(hidden_dim), mask),
                "additive attention does not scale its scores: w_v learns their size, "
                "so leave out the / sqrt(d) of dot-product attention.",
            ),
            (
                torch.softmax(scores, dim=-1),
                "the weights on masked keys are not zero: pass the mask to masked_softmax.",
            ),
            (
                masked_softmax(scores, ~mask),
                "the mask is inverted: True means 'may attend'; pass it to "
                "masked_softmax as it is.",
            ),
            (
                torch.softmax(scores.masked_fill(~mask, NEG_INF), dim=-2).nan_to_num(
                    0.0
                ),
                "the softmax must run over the keys, the last dimension (dim=-1).",
            ),
        ]
    c.expect_close(
        weights,
        expected_weights,
        "the weights should be masked_softmax(w_v(tanh(W_q q + W_k k))) over the keys.",
        mistakes=mistakes,
    )
    c.expect_close(output, expected_output, "the output should be weights @ values.")

    none_hint = (
        "mask=None means no mask: pass it on to masked_softmax, which handles None, "
        "rather than using it (~None or None.unsqueeze fail)."
    )
    cases = [
        ("mask=None", (queries, keys, values, None), none_hint),
        ("no mask argument", (queries, keys, values), none_hint),
        (
            "as many queries as keys (n = m = 5), no mask",
            (
                torch.randn(1, 5, query_dim, generator=g),
                torch.randn(1, 5, key_dim, generator=g),
                torch.randn(1, 5, 3, generator=g),
            ),
            diagnosis,
        ),
        (
            "unbatched queries (n, query_dim), keys and values",
            (
                torch.randn(4, query_dim, generator=g),
                torch.randn(6, key_dim, generator=g),
                torch.randn(6, 2, generator=g),
                torch.tensor([True, False, True, True, True, False]),
            ),
            diagnosis,
        ),
        (
            "(batch, heads, n, d) inputs",
            (
                torch.randn(2, 3, 4, query_dim, generator=g),
                torch.randn(2, 3, 6, key_dim, generator=g),
                torch.randn(2, 3, 6, 2, generator=g),
                None,
            ),
            diagnosis,
        ),
        (
            "one query (n = 1) and a (batch, 1, m) mask where sequence 1 is all padding",
            (
                torch.randn(2, 1, query_dim, generator=g),
                keys,
                values,
                torch.tensor([[True] * 6, [False] * 6])[:, None, :],
            ),
            diagnosis,
        ),
    ]
    for description, args, error_hint in cases:
        output, weights = c.pair(run(*args, error_hint=error_hint), "(output, weights)")
        with torch.no_grad():
            expected_output, expected_weights = reference(*args)
        weights = c.tensor(
            weights,
            f"weights with {description}",
            shape=expected_weights.shape,
            shape_hint="Use squeeze(-1), not squeeze(): squeeze() also removes a batch "
            "or query axis of size 1. Count axes from the end (unsqueeze(-2), "
            "unsqueeze(-3)) so that any number of leading axes works.",
        )
        output = c.tensor(
            output, f"output with {description}", shape=expected_output.shape
        )
        c.expect_close(
            weights,
            expected_weights,
            f"with {description} the weights are wrong.",
            mistakes=[
                (
                    expected_weights.transpose(-2, -1),
                    "the weights are transposed: rows are queries. Give the projected "
                    "QUERIES the key axis, unsqueeze(-2), and the projected keys the query "
                    "axis, unsqueeze(-3).",
                )
            ],
        )
        c.expect_close(
            output, expected_output, f"with {description} the output is wrong."
        )
