"""Checkers for Lab 09: a cached decoding step, the online-softmax update, the band
mask of sliding-window attention, and linear attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..attention import scaled_dot_product_attention
from ..efficient import linear_attention, online_softmax_update, sliding_window_mask
from ..measure import peak_memory
from ..positional import apply_rope
from .core import IN_PLACE_HINT, Checker, describe, exercise, random_generator

# --- 09.1 the cached decoding step ------------------------------------------------------


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _cached_step(q, k, v, cache_k, cache_v, position=None, rotate_q=True):
    """The reference step; ``position`` overrides the new token's position (mistakes)."""
    t = cache_k.shape[-2] if position is None else position
    where = torch.tensor([t])
    q = apply_rope(q, where) if rotate_q else q
    keys = torch.cat([cache_k, apply_rope(k, where)], dim=-2)
    values = torch.cat([cache_v, v], dim=-2)
    return scaled_dot_product_attention(q, keys, values)[0], keys, values


def _step_cases():
    """(q, k, v, cache_k, cache_v, dtype): an empty cache, batch 1, one past token, and
    float32 queries whose largest scores lie beyond 89, where exp overflows float32
    (softmax without subtracting the maximum gives inf / inf = NaN). The tensors are
    float64 holding values that ``dtype`` represents exactly; the learner gets them in
    ``dtype``, the reference computes in float64."""
    g = random_generator(91)
    dtype = torch.float64
    for batch, heads, past, d, scale, given in [
        (2, 3, 5, 4, 1.0, torch.float64),
        (1, 1, 0, 2, 1.0, torch.float32),
        (1, 2, 1, 6, 1.0, torch.float64),
        (2, 2, 9, 8, 120.0, torch.float32),
    ]:
        q = scale * torch.randn(batch, heads, 1, d, generator=g, dtype=dtype)
        k = torch.randn(batch, heads, 1, d, generator=g, dtype=dtype)
        v = torch.randn(batch, heads, 1, d, generator=g, dtype=dtype)
        positions = torch.arange(past)
        cache_k = apply_rope(
            torch.randn(batch, heads, past, d, generator=g, dtype=dtype), positions
        )
        cache_v = torch.randn(batch, heads, past, d, generator=g, dtype=dtype)
        tensors = (q, k, v, cache_k, cache_v)
        yield (*(t.to(given).to(dtype) for t in tensors), given)


@exercise("09.1", "attend_with_cache")
def check_attend_with_cache(c: Checker, answer) -> None:
    for q, k, v, cache_k, cache_v, dtype in _step_cases():
        batch, heads, past, d = cache_k.shape
        what = f"attend_with_cache with {past} cached tokens ({_dtype_name(dtype)})"
        result = c.call(
            answer,
            *(t.to(dtype) for t in (q, k, v, cache_k, cache_v)),
            error_hint="the caches are (batch, heads, t, head_dim) and the new token is "
            "(batch, heads, 1, head_dim): append along the sequence axis, dim=-2, to "
            "the keys AND to the values. apply_rope(x, positions) needs one position "
            "per row of x: rotate only the new (1-row) query and key, with "
            "torch.tensor([t]); the cached keys are already rotated.",
        )
        out, new_k, new_v = c.unpack(result, 3, "(output, cache_k, cache_v)")
        grown = (batch, heads, past + 1, d)
        axis_hint = (
            "each cache grows by one row per token: torch.cat([cache, new], dim=-2) "
            "(the sequence axis), not the batch, head or feature axis."
        )
        new_k = c.tensor(
            new_k,
            f"{what}: the new cache_k",
            grown,
            shape_hint=axis_hint,
            dtype=dtype,
        )
        new_v = c.tensor(
            new_v,
            f"{what}: the new cache_v",
            grown,
            shape_hint=axis_hint + " Did you append the new value to cache_v too?",
            dtype=dtype,
        )
        expected_out, expected_k, expected_v = _cached_step(q, k, v, cache_k, cache_v)
        key_mistakes = [
            (
                torch.cat([cache_k, k], dim=-2),
                "the new key is cached without its rotation (or rotated as if at "
                "position 0): cached keys are stored rotated, so rotate k_new by its "
                "position t = cache_k.shape[-2] first.",
            ),
            (
                torch.cat([apply_rope(k, torch.tensor([past])), cache_k], dim=-2),
                "the new key goes AFTER the cached ones: "
                "torch.cat([cache_k, key], dim=-2).",
            ),
        ]
        for off_by in (1, -1):
            if past + off_by >= 0:
                key_mistakes.append(
                    (
                        _cached_step(q, k, v, cache_k, cache_v, position=past + off_by)[
                            1
                        ],
                        f"the new key is rotated by position t {'+-'[off_by < 0]} 1: positions "
                        "count from 0, so with t tokens in the cache the new one is at "
                        "position t = cache_k.shape[-2] exactly.",
                    )
                )
        if past > 0:
            key_mistakes.append(
                (
                    _cached_step(q, k, v, cache_k, cache_v, position=0)[1],
                    "the new key is rotated as if it were at position 0: the new token "
                    "is at position t = cache_k.shape[-2] (the number of cached tokens), "
                    "so pass positions=torch.tensor([t]) to apply_rope.",
                )
            )
        c.expect_close(
            new_k,
            expected_k,
            f"{what}: the new cache_k should be the old keys followed by the new key "
            "rotated by its position t.",
            mistakes=key_mistakes,
        )
        c.expect_close(
            new_v,
            expected_v,
            f"{what}: the new cache_v should be the old values followed by the new "
            "value (values are never rotated).",
            mistakes=[
                (
                    torch.cat([cache_v, apply_rope(v, torch.tensor([past]))], dim=-2),
                    "you rotated the value: RoPE rotates queries and keys only.",
                )
            ],
        )
        largest = (
            float(
                (
                    apply_rope(q, torch.tensor([past])) @ expected_k.transpose(-2, -1)
                ).max()
            )
            / d**0.5
        )
        out = c.tensor(
            out,
            f"{what}: the output",
            (batch, heads, 1, d),
            shape_hint="one output row for the one new query.",
            dtype=dtype,
            nan_hint=f"the largest score here is {largest:.0f}, and exp overflows "
            "float32 beyond 89: take the softmax over the keys after subtracting the "
            "row maximum (the kit's scaled_dot_product_attention and "
            "torch.softmax do this).",
        )
        mistakes = [
            (
                _cached_step(q, k, v, cache_k, cache_v, rotate_q=False)[0],
                "the query is not rotated: rotate q_new by the same position t as the "
                "new key.",
            ),
        ]
        if past > 0:
            mistakes += [
                (
                    _cached_step(q, k, v, cache_k, cache_v, position=0)[0],
                    "the new token is rotated as if it were at position 0: with a cache "
                    "it is at position t = cache_k.shape[-2]; rotate the query and the "
                    "key with positions=torch.tensor([t]).",
                ),
                (
                    scaled_dot_product_attention(
                        apply_rope(q, torch.tensor([past])), cache_k, cache_v
                    )[0],
                    "the new token does not see itself: append its key and value to "
                    "the caches BEFORE attending.",
                ),
            ]
            only_new = apply_rope(k, torch.tensor([past]))
            mistakes.append(
                (
                    scaled_dot_product_attention(
                        apply_rope(q, torch.tensor([past])), only_new, v
                    )[0],
                    "the new query attends to its own key only: attend over the whole "
                    "grown cache (the cached keys and values AND the new ones).",
                )
            )
            mistakes.append(
                (
                    expected_v[..., :1, :],
                    "the new query sees only the first key: is_causal=True (or a causal "
                    "mask) aligns the mask top-left, so the one query is treated as "
                    "position 0 and sees key 0 alone. The newest token may see every "
                    "cached key: attend with no mask.",
                )
            )
        c.expect_close(
            out,
            expected_out,
            f"{what}: the output should be softmax(q K^T / sqrt(head_dim)) V over the "
            "cached keys and the new one, with q and the new key rotated by position t "
            f"(head_dim = q_new.shape[-1] = {out.shape[-1]} here).",
            mistakes=mistakes,
        )


# --- 09.2 the online-softmax update -------------------------------------------------------


def _wrong_updates(state, scores, values) -> list[tuple[tuple[Tensor, ...], str]]:
    running_max, running_sum, output = state
    new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
    weights = torch.exp(scores - new_max)
    block_sum = weights.sum(-1, keepdim=True)
    rescale = torch.exp(running_max - new_max)
    backwards = torch.exp(new_max - running_max)
    own = torch.exp(scores - scores.amax(dim=-1, keepdim=True))  # the block's own max
    right_sum = running_sum * rescale + block_sum
    right_out = output * rescale + weights @ values
    return [
        (
            (new_max, running_sum + block_sum, right_out),
            "the running sum is not rescaled: when the maximum grows from running_max to "
            "new_max, the old sum was taken relative to running_max, so multiply it by "
            "exp(running_max - new_max).",
        ),
        (
            (new_max, right_sum, output + weights @ values),
            "the output accumulator is not rescaled: its terms were taken relative to "
            "the old maximum, so multiply it by exp(running_max - new_max) like the "
            "running sum.",
        ),
        (
            (
                new_max,
                running_sum * backwards + block_sum,
                output * backwards + weights @ values,
            ),
            "you rescaled by exp(new_max - running_max), which is >= 1; the factor is "
            "exp(running_max - new_max) "
            "(old minus new), <= 1.",
        ),
        (
            (new_max, right_sum, right_out / right_sum),
            "the output is divided by the running sum inside the update: keep it "
            "unnormalised (the sum of exp(score - running_max) * value) and divide "
            "once, after the last block.",
        ),
        (
            (
                new_max,
                running_sum * rescale + torch.exp(scores).sum(-1, keepdim=True),
                output * rescale + torch.exp(scores) @ values,
            ),
            "subtract the running maximum inside exp: the new terms are "
            "exp(scores - new_max), so that every term of the state is relative to new_max "
            "(and exp cannot overflow).",
        ),
        (
            (running_max, right_sum, right_out),
            "the running maximum is not updated: return new_max = "
            "torch.maximum(running_max, the block's maximum) as the new running_max.",
        ),
        (
            (
                new_max,
                running_sum * rescale + own.sum(-1, keepdim=True),
                output * rescale + own @ values,
            ),
            "the new terms are taken relative to the block's own maximum: use "
            "exp(scores - new_max), the same maximum the old terms are rescaled to.",
        ),
        (
            (scores.amax(dim=-1, keepdim=True), right_sum, right_out),
            "the running maximum must be the maximum over ALL blocks so far: "
            "torch.maximum(running_max, block maximum), not the block's maximum.",
        ),
    ]


def _update_cases():
    """(state, scores, values, empty state): a state after one block, then a block that
    raises, keeps or lowers the maximum; batch shapes (2,), (1,) and none; block widths
    1 to 7; float64 and float32; one float32 block whose scores lie beyond 89 (exp
    overflows float32 there). Every score is finite: the exercise leaves masked keys
    (score -inf, and NaN from exp(-inf + inf) in a fully masked block) to the kit's
    version, and its statement says so."""
    g = random_generator(92)
    for rows, width, dv, shift, scale, dtype in [
        ((2, 3), 4, 5, 3.0, 2.0, torch.float64),
        ((1, 1), 1, 2, 2.0, 2.0, torch.float64),
        ((4,), 7, 3, -2.0, 2.0, torch.float32),
        ((2, 6), 5, 4, 150.0, 60.0, torch.float32),
    ]:
        like = {"dtype": dtype}
        empty = (
            torch.full((*rows, 1), float("-inf"), **like),
            torch.zeros((*rows, 1), **like),
            torch.zeros((*rows, dv), **like),
        )
        first = torch.randn(*rows, width, generator=g).to(dtype)
        first_values = torch.randn(*rows[:-1], width, dv, generator=g).to(dtype)
        state = online_softmax_update(empty, first, first_values)
        scores = (shift + scale * torch.randn(*rows, width, generator=g)).to(dtype)
        values = torch.randn(*rows[:-1], width, dv, generator=g).to(dtype)
        yield state, scores, values, empty


@exercise("09.2", "online_softmax_update")
def check_online_softmax_update(c: Checker, answer) -> None:
    names = ("running_max", "running_sum", "output")
    cases = list(_update_cases())
    # every single update first (their mistakes have hints), then the folds
    for state, scores, values, _ in cases:
        given = tuple(t.clone() for t in state)
        result = c.call(answer, given, scores, values)
        if not all(torch.equal(a, b) for a, b in zip(given, state, strict=True)):
            c.fail(
                "your online_softmax_update changed the state it was given in place: "
                + IN_PLACE_HINT
            )
        found = c.unpack(result, 3, "(running_max, running_sum, output)")
        expected = online_softmax_update(state, scores, values)
        mistakes = _wrong_updates(state, scores, values)
        spread = float((scores.amax(-1) - scores.amin(-1)).max())
        for index, name in enumerate(names):
            value = c.tensor(
                found[index],
                f"the new {name}",
                tuple(expected[index].shape),
                shape_hint="keep the state's shapes: (..., n, 1), (..., n, 1) and "
                "(..., n, d_v); use keepdim=True in max and sum.",
                dtype=scores.dtype,
                nan_hint="subtract the running maximum before exp (scores here spread "
                f"over {spread:.0f}), and rescale by exp(old max - new max).",
            )
            c.expect_close(
                value,
                expected[index],
                f"the new {name} is wrong: new_max = max(running_max, block max), "
                "then running_sum * exp(running_max - new_max) + sum of exp(scores - "
                "new_max), and the same for output with the values.",
                mistakes=[(wrong[index], hint) for wrong, hint in mistakes],
            )
    # from the empty state (max -inf, sum 0, output 0), block by block, to the end
    for _, scores, values, empty in cases:
        keys = values.shape[-2]
        state = empty
        for start in range(0, keys, 2):
            stop = min(start + 2, keys)
            result = c.call(
                answer, state, scores[..., start:stop], values[..., start:stop, :]
            )
            state = c.unpack(result, 3, "(running_max, running_sum, output)")
        output = c.tensor(
            state[2],
            "the output after the last block",
            dtype=scores.dtype,
            nan_hint=(
                "from the empty state the old maximum is -inf: exp(-inf - new_max) = 0 is "
                "fine, but exp(new_max - (-inf)) is inf."
            ),
        )
        total = c.tensor(
            state[1], "the running sum after the last block", dtype=scores.dtype
        )
        c.expect_close(
            output / total,
            torch.softmax(scores, dim=-1) @ values,
            "folding the blocks one after another from (max -inf, sum 0, output 0) and "
            "dividing output by running_sum at the end should give softmax(scores) @ "
            "values.",
        )


# --- 09.3 the band mask -------------------------------------------------------------------


@exercise("09.3", "sliding_window_mask")
def check_sliding_window_mask(c: Checker, answer) -> None:
    for n, window in [(6, 3), (1, 1), (5, 1), (4, 9), (8, 2)]:
        what = f"sliding_window_mask({n}, {window})"
        mask = c.call(answer, n, window)
        if not isinstance(mask, Tensor):
            c.fail(f"{what} should be a torch.Tensor, but it is {describe(mask)}.")
        if mask.dtype != torch.bool:
            c.fail(
                f"{what} has dtype {mask.dtype}; masks in this course are boolean (True "
                "= may attend). A float 0/1 mask is read by PyTorch as numbers ADDED to "
                "the scores. Build it from comparisons, which give booleans."
            )
        if tuple(mask.shape) != (n, n):
            c.fail(f"{what} has shape {tuple(mask.shape)}, expected ({n}, {n}).")
        expected = sliding_window_mask(n, window)
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        mistakes = [
            (
                (j <= i) & (i - j <= window),
                "off by one: the window counts the token itself, so query i sees keys "
                "i - window + 1 .. i (window keys in all): i - j < window.",
            ),
            (
                (j <= i) & (i - j < window - 1),
                "off by one: query i should see window keys, itself and the window - 1 "
                "before it: i - j < window (window - 1 would leave one out).",
            ),
            (
                (i - j).abs() < window,
                "this band is symmetric: it lets query i see keys up to window - 1 "
                "AHEAD of it. For a decoder the band is causal: also require j <= i.",
            ),
            (
                i - j < window,
                "without j <= i the mask lets every query see all future keys; the "
                "band is the causal mask AND i - j < window.",
            ),
            (
                ~((j <= i) & (i - j < window)),
                "True and False are swapped: in this course (and in SDPA) True means "
                "MAY attend, so the band near the diagonal is True. (True = NOT allowed "
                "is nn.MultiheadAttention's convention.)",
            ),
            (
                (j <= i) & (i - j >= window),
                "the band is inverted: True (may attend) should be on the window "
                "near the diagonal.",
            ),
        ]
        mask = mask.detach().cpu()
        if torch.equal(mask, expected):
            c.passed += 1
            continue
        if n > 1 and bool(mask.all()):
            c.fail(
                f"{what} is all True, so every query may see the keys after it. The "
                "band stays causal however long the window: query i may attend to key "
                "j only when j <= i (with window >= n the band is the causal mask)."
            )
        for wrong, hint in mistakes:
            if torch.equal(mask, wrong):
                c.fail(f"{what}: {hint}")
        row, column = (int(x) for x in torch.nonzero(mask != expected)[0])
        c.fail(
            f"{what}: query i may attend to key j when 0 <= i - j < window. First "
            f"difference at query {row}, key {column}: expected "
            f"{bool(expected[row, column])}, got {bool(mask[row, column])}."
        )


# --- 09.4 linear attention ----------------------------------------------------------------

MEMORY_LENGTH = 2048  # n for the memory check: the (n, n) matrix is 16.8 MB in float32


def _phi(x: Tensor) -> Tensor:
    return F.elu(x) + 1


def _linear_mistakes(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> list:
    def explicit(
        phi_q, phi_k, normalise=True, causal_numerator=causal, causal_sum=causal
    ):
        similarity = phi_q @ phi_k.transpose(-2, -1)
        n = similarity.shape[-1]
        lower = torch.ones(n, n, dtype=torch.bool).tril()
        numerator = (
            similarity.masked_fill(~lower, 0) if causal_numerator else similarity
        ) @ v
        if not normalise:
            return numerator
        denominator = (
            similarity.masked_fill(~lower, 0) if causal_sum else similarity
        ).sum(-1, keepdim=True)
        return numerator / denominator

    pq, pk = _phi(q), _phi(k)
    d_k = q.shape[-1]
    mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
    mistakes = [
        (
            explicit(pq, pk, normalise=False),
            "the normaliser is missing: divide phi(q_i)^T U by phi(q_i)^T z, where z is "
            "the sum of phi(k_j) over the keys the query may see.",
        ),
        (
            explicit(F.elu(q), F.elu(k)),
            "the feature map must be positive: phi(x) = elu(x) + 1. elu alone is "
            "negative for x < 0, so the similarities (and the normaliser) can be <= 0.",
        ),
        (
            explicit(torch.relu(q), torch.relu(k)),
            "the feature map is phi(x) = elu(x) + 1 (Katharopoulos et al.); relu gives "
            "zeros, and a query with no positive feature gets a zero normaliser.",
        ),
        (
            scaled_dot_product_attention(q, k, v, mask if causal else None)[0],
            "this is softmax attention: linear attention replaces exp(q.k / sqrt(d_k)) "
            f"by phi(q).phi(k) with phi = elu + 1 (no 1/sqrt({d_k}) needed).",
        ),
    ]
    root = d_k**0.5
    for scaled_q, scaled_k, which in [
        (_phi(q / root), pk, "the queries"),
        (_phi(q / root), _phi(k / root), "the queries and keys"),
    ]:
        mistakes.append(
            (
                explicit(scaled_q, scaled_k),
                f"{which} are divided by sqrt(d_k) = sqrt({d_k}), a habit from softmax "
                "attention: linear attention uses phi(q).phi(k) on the raw queries and "
                "keys, with no scaling.",
            )
        )
    if causal:
        mistakes += [
            (
                explicit(pq, pk, causal_numerator=False, causal_sum=False),
                "with causal=True the sums run over j <= i only (a running sum, "
                "cumsum over positions): you used the sums over all the keys.",
            ),
            (
                explicit(pq, pk, causal_sum=False),
                "the normaliser of the causal version must be a running sum too: "
                "z_i = sum of phi(k_j) for j <= i, not over all keys.",
            ),
            (
                explicit(pq, pk, causal_numerator=False),
                "the numerator of the causal version must be a running sum too: "
                "U_i = sum of phi(k_j) v_j^T for j <= i.",
            ),
        ]
        if q.dim() == 4:
            # cumsum(dim=1), right for (batch, n, d) but the heads axis here
            states = torch.cumsum(pk.unsqueeze(-1) * v.unsqueeze(-2), dim=1)
            sums = torch.cumsum(pk, dim=1)
            mistakes.append(
                (
                    (pq.unsqueeze(-2) @ states).squeeze(-2)
                    / (pq * sums).sum(-1, keepdim=True),
                    f"the running sums run along the wrong axis for queries "
                    f"{tuple(q.shape)}: the positions are axis -2 of phi(K) "
                    "(torch.cumsum(..., dim=-2), and dim=-3 for the (..., n, d_k, d_v) "
                    "products), whatever the leading axes.",
                )
            )
    return mistakes


@exercise("09.4", "linear_attention")
def check_linear_attention(c: Checker, answer) -> None:
    g = random_generator(94)
    for shape, n, d_k, d_v, dtype in [
        ((2,), 7, 4, 3, torch.float32),
        ((2, 3), 5, 6, 2, torch.float64),
        ((1,), 1, 4, 4, torch.float32),
        ((), 9, 2, 5, torch.float64),
    ]:
        q = torch.randn(*shape, n, d_k, generator=g, dtype=dtype)
        k = torch.randn(*shape, n, d_k, generator=g, dtype=dtype) + 0.5
        v = torch.randn(*shape, n, d_v, generator=g, dtype=dtype)
        for causal in (False, True):
            what = f"linear_attention(queries {tuple(q.shape)}, causal={causal})"
            out = c.tensor(
                c.call(answer, q, k, v, causal),
                what,
                (*shape, n, d_v),
                shape_hint="one output row per query, of the values' width d_v.",
                dtype=dtype,
                nan_hint="with phi = elu + 1 every similarity is positive, so the "
                "normaliser cannot be 0"
                + (
                    " unless a sum is empty: the causal sums run over j <= i, the "
                    "query's own key included (position 0 sees key 0)."
                    if causal
                    else "."
                ),
            )
            expected = linear_attention(q, k, v, causal)
            mistakes = [] if n == 1 else _linear_mistakes(q, k, v, causal)
            c.expect_close(
                out,
                expected,
                f"{what}: out_i = phi(q_i)^T U / phi(q_i)^T z with U the sum of "
                "phi(k_j) v_j^T and z the sum of phi(k_j) over the keys query i may see "
                "(all keys, or j <= i when causal), phi(x) = elu(x) + 1.",
                mistakes=mistakes,
                atol=1e-5 if dtype == torch.float32 else 1e-9,
            )
    _check_linear_memory(c, answer)


def _check_linear_memory(c: Checker, answer) -> None:
    """The point of the exercise is the regrouping: phi(K)^T V and the sum of phi(K)
    first, so that no (n, n) matrix exists. At n = 2048 (d_k = d_v = 8, float32) that
    matrix takes 16.8 MB; the regrouped form needs well under 1 MB, and the budget is a
    quarter of the matrix. (This n is small enough that the quadratic form is still
    quick: the check measures, it does not allocate more than such an answer would.)"""
    g = random_generator(941)
    n, d = MEMORY_LENGTH, 8
    q, k, v = (torch.randn(1, n, d, generator=g) for _ in range(3))
    matrix = n * n * q.element_size()
    for causal in (False, True):
        with torch.no_grad():
            peak = peak_memory(lambda causal=causal: c.call(answer, q, k, v, causal))
        c.expect(
            peak < matrix / 4,
            f"linear_attention(queries (1, {n}, {d}), causal={causal}) used "
            f"{peak / 1e6:.1f} MB at its peak, as much as the ({n}, {n}) matrix of "
            f"similarities ({matrix / 1e6:.1f} MB): the values are right, but the point "
            "of linear attention is never to form phi(Q) phi(K)^T. Compute U = "
            "phi(K)^T V and z = the sum of phi(K) first (running sums with torch.cumsum "
            "when causal), then combine them with phi(Q).",
        )
