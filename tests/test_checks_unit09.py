"""Lab 09's checkers: correct answers written differently pass; MISTAKES (run in
test_checks.py) are the wrong answers each checker must name; edge cases here."""

import torch
import torch.nn.functional as F

from attention_kit.attention import scaled_dot_product_attention
from attention_kit.checks import (
    check_attend_with_cache,
    check_linear_attention,
    check_online_softmax_update,
    check_sliding_window_mask,
)
from attention_kit.efficient import (
    linear_attention,
    online_softmax_update,
    sliding_window_mask,
)
from attention_kit.positional import apply_rope
from conftest import assert_fails_with, assert_passes

# --- 09.1 attend_with_cache ---------------------------------------------------------------


def cache_step(
    q,
    k,
    v,
    cache_k,
    cache_v,
    position="t",
    rotate_q=True,
    append_v=True,
    axis=-2,
    rotate_v=False,
    attend_first=False,
):
    """The step, with switches for the classic mistakes."""
    t = cache_k.shape[-2] if position == "t" else position
    where = torch.tensor([t])
    q = apply_rope(q, where) if rotate_q else q
    k = apply_rope(k, where)
    v = apply_rope(v, where) if rotate_v else v
    if attend_first:
        out = scaled_dot_product_attention(q, cache_k, cache_v)[0]
    keys = torch.cat([cache_k, k], dim=axis)
    values = torch.cat([cache_v, v], dim=axis) if append_v else cache_v
    if not attend_first:
        out = scaled_dot_product_attention(q, keys, values)[0]
    return out, keys, values


def cache_step_sdpa(q, k, v, cache_k, cache_v):  # correct: PyTorch's SDPA, float32 work
    t = cache_k.shape[-2]
    positions = torch.full((1,), t, dtype=torch.float64)
    keys = torch.cat((cache_k, apply_rope(k, positions)), -2)
    values = torch.cat((cache_v, v), -2)
    out = F.scaled_dot_product_attention(apply_rope(q, positions), keys, values)
    return out, keys, values


def step_keys_not_values(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, append_v=False)


def step_position_zero(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, position=0)


def step_wrong_axis(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, axis=-1)


def step_batch_axis(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, axis=0)


def step_query_unrotated(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, rotate_q=False)


def step_rotates_values(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, rotate_v=True)


def step_attends_before_appending(q, k, v, cache_k, cache_v):
    return cache_step(q, k, v, cache_k, cache_v, attend_first=True)


def step_key_unrotated(q, k, v, cache_k, cache_v):
    t = torch.tensor([cache_k.shape[-2]])
    keys = torch.cat([cache_k, k], dim=-2)
    values = torch.cat([cache_v, v], dim=-2)
    rotated = torch.cat([cache_k, apply_rope(k, t)], dim=-2)
    out = scaled_dot_product_attention(apply_rope(q, t), rotated, values)[0]
    return out, keys, values


def step_recompute_positions(q, k, v, cache_k, cache_v):
    """Rotates the whole cache again by 0..t: the cache already holds rotated keys."""
    t = cache_k.shape[-2]
    keys = apply_rope(torch.cat([cache_k, k], dim=-2))
    values = torch.cat([cache_v, v], dim=-2)
    out = scaled_dot_product_attention(apply_rope(q, torch.tensor([t])), keys, values)[
        0
    ]
    return out, keys, values


def step_rotates_whole_cache(q, k, v, cache_k, cache_v):
    """Rotates the grown cache by the one position t: apply_rope refuses the shapes."""
    where = torch.tensor([cache_k.shape[-2]])
    keys = apply_rope(torch.cat([cache_k, k], dim=-2), where)
    values = torch.cat([cache_v, v], dim=-2)
    return (
        scaled_dot_product_attention(apply_rope(q, where), keys, values)[0],
        keys,
        values,
    )


def step_position_plus_one(q, k, v, cache_k, cache_v):  # positions counted from 1
    return cache_step(q, k, v, cache_k, cache_v, position=cache_k.shape[-2] + 1)


def step_attends_new_only(q, k, v, cache_k, cache_v):  # the new key alone
    where = torch.tensor([cache_k.shape[-2]])
    q, k = apply_rope(q, where), apply_rope(k, where)
    out = scaled_dot_product_attention(q, k, v)[0]
    return out, torch.cat([cache_k, k], dim=-2), torch.cat([cache_v, v], dim=-2)


def step_naive_softmax(q, k, v, cache_k, cache_v):  # exp without the max subtracted
    where = torch.tensor([cache_k.shape[-2]])
    keys = torch.cat([cache_k, apply_rope(k, where)], dim=-2)
    values = torch.cat([cache_v, v], dim=-2)
    scores = apply_rope(q, where) @ keys.transpose(-2, -1) / q.shape[-1] ** 0.5
    weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
    return weights @ values, keys, values


def step_is_causal(q, k, v, cache_k, cache_v):  # PyTorch's mask aligns top-left
    where = torch.tensor([cache_k.shape[-2]])
    keys = torch.cat([cache_k, apply_rope(k, where)], dim=-2)
    values = torch.cat([cache_v, v], dim=-2)
    out = F.scaled_dot_product_attention(
        apply_rope(q, where), keys, values, is_causal=True
    )
    return out, keys, values


def step_float64_inside(q, k, v, cache_k, cache_v):  # correct: float64 work, cast back
    out, keys, values = cache_step(*(t.double() for t in (q, k, v, cache_k, cache_v)))
    return out.to(q.dtype), keys.to(q.dtype), values.to(q.dtype)


def step_float64_out(q, k, v, cache_k, cache_v):  # float64 work, not cast back
    return cache_step(*(t.double() for t in (q, k, v, cache_k, cache_v)))


def test_attend_with_cache_passes_correct_answers(capsys):
    assert_passes(check_attend_with_cache, cache_step, capsys)
    assert_passes(check_attend_with_cache, cache_step_sdpa, capsys)
    assert_passes(check_attend_with_cache, step_float64_inside, capsys)


def test_attend_with_cache_wide_case_overflows_float32():
    from attention_kit.checks.unit09 import _step_cases

    q, k, v, cache_k, cache_v, dtype = list(_step_cases())[-1]
    past = cache_k.shape[-2]
    keys = torch.cat([cache_k, apply_rope(k, torch.tensor([past]))], dim=-2)
    scores = apply_rope(q, torch.tensor([past])) @ keys.transpose(-2, -1) / 8**0.5
    assert dtype == torch.float32 and scores.max() > 89
    assert torch.isinf(scores.to(torch.float32).exp()).any()


# --- 09.2 online_softmax_update -----------------------------------------------------------


def update_with_switches(
    rescale="right", divide=False, shift=True, block_max_only=False
):
    def update(state, scores, values):
        running_max, running_sum, output = state
        block_max = scores.max(dim=-1, keepdim=True).values
        new_max = block_max if block_max_only else torch.maximum(running_max, block_max)
        weights = torch.exp(scores - new_max) if shift else torch.exp(scores)
        factor = {
            "right": torch.exp(running_max - new_max),
            "backwards": torch.exp(new_max - running_max),
            "none": torch.ones_like(new_max),
        }[rescale]
        running_sum = running_sum * factor + weights.sum(dim=-1, keepdim=True)
        output = output * factor + weights @ values
        if divide:
            output = output / running_sum
        return new_max, running_sum, output

    return update


def update_einsum(state, scores, values):  # correct, written with einsum and where
    m, s, o = state
    m_new = torch.where(
        scores.amax(-1, keepdim=True) > m, scores.amax(-1, keepdim=True), m
    )
    p = (scores - m_new).exp()
    alpha = (m - m_new).exp()
    return (
        m_new,
        alpha * s + p.sum(-1, keepdim=True),
        alpha * o + torch.einsum("...nb,...bd->...nd", p, values),
    )


def update_sum_only_rescaled(state, scores, values):
    m, s, o = state
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    return m_new, s * torch.exp(m - m_new) + p.sum(-1, keepdim=True), o + p @ values


def update_in_place(state, scores, values):
    m, s, o = state
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    s.mul_(torch.exp(m - m_new)).add_(p.sum(-1, keepdim=True))
    o.mul_(torch.exp(m - m_new)).add_(p @ values)
    return m_new, s, o


def update_max_kept(state, scores, values):  # returns the old running_max
    return (state[0], *online_softmax_update(state, scores, values)[1:])


def update_own_block_max(state, scores, values):  # new terms against the block's max
    running_max, running_sum, output = state
    block_max = scores.amax(-1, keepdim=True)
    new_max = torch.maximum(running_max, block_max)
    rescale = torch.exp(running_max - new_max)
    weights = torch.exp(scores - block_max)
    return (
        new_max,
        running_sum * rescale + weights.sum(-1, keepdim=True),
        output * rescale + weights @ values,
    )


def update_float64_inside(state, scores, values):  # correct: cast back at the end
    new = online_softmax_update(
        tuple(t.double() for t in state), scores.double(), values.double()
    )
    return tuple(t.to(scores.dtype) for t in new)


def update_float64_out(state, scores, values):  # float64 work, not cast back
    return online_softmax_update(
        tuple(t.double() for t in state), scores.double(), values.double()
    )


def update_new_float32_tensors(state, scores, values):  # fresh tensors in float32
    running_max, running_sum, output = online_softmax_update(state, scores, values)
    return (
        torch.tensor(running_max.tolist()),
        torch.tensor(running_sum.tolist()),
        torch.tensor(output.tolist()),
    )


def test_online_softmax_update_passes_correct_answers(capsys):
    assert_passes(check_online_softmax_update, online_softmax_update, capsys)
    assert_passes(check_online_softmax_update, update_with_switches(), capsys)
    assert_passes(check_online_softmax_update, update_einsum, capsys)
    assert_passes(check_online_softmax_update, update_float64_inside, capsys)


# --- 09.3 sliding_window_mask -------------------------------------------------------------


def band_with(test):
    def mask(n, window):
        i = torch.arange(n)[:, None]
        j = torch.arange(n)[None, :]
        return test(i, j, window)

    return mask


def band_tril_triu(n, window):  # correct, written with tril and triu
    ones = torch.ones(n, n, dtype=torch.bool)
    return ones.tril() & ones.triu(-(window - 1))


band_off_by_one = band_with(lambda i, j, w: (j <= i) & (i - j <= w))
band_one_short = band_with(lambda i, j, w: (j <= i) & (i - j < w - 1))
band_symmetric = band_with(lambda i, j, w: (i - j).abs() < w)
band_float = band_with(lambda i, j, w: ((j <= i) & (i - j < w)).float())
band_not_causal = band_with(lambda i, j, w: i - j < w)
band_inverted = band_with(lambda i, j, w: ~((j <= i) & (i - j < w)))
band_transposed = band_with(lambda i, j, w: (i <= j) & (j - i < w))


def band_all_true_when_wide(n, window):  # window >= n treated as "no restriction"
    if window >= n:
        return torch.ones(n, n, dtype=torch.bool)
    return sliding_window_mask(n, window)


def band_fixed_size(n, window):
    return sliding_window_mask(6, window)


def test_sliding_window_mask_passes_correct_answers(capsys):
    assert_passes(check_sliding_window_mask, sliding_window_mask, capsys)
    assert_passes(check_sliding_window_mask, band_tril_triu, capsys)


def test_sliding_window_mask_other_mistakes():
    assert_fails_with(check_sliding_window_mask, band_transposed, "First difference")
    assert_fails_with(check_sliding_window_mask, band_fixed_size, "shape")


# --- 09.4 linear_attention ----------------------------------------------------------------


def phi(x):
    return F.elu(x) + 1


def linear_quadratic(
    queries, keys, values, causal=False
):  # right values, O(n^2) memory
    similarity = phi(queries) @ phi(keys).transpose(-2, -1)
    if causal:
        n = similarity.shape[-1]
        similarity = similarity * torch.ones(n, n).tril().to(similarity.dtype)
    return similarity @ values / similarity.sum(-1, keepdim=True)


def linear_loop(queries, keys, values, causal=False):  # correct: the RNN form, a loop
    q, k = phi(queries), phi(keys)
    if not causal:
        return linear_attention(queries, keys, values)
    state = torch.zeros(*k.shape[:-2], k.shape[-1], values.shape[-1], dtype=k.dtype)
    z = torch.zeros(*k.shape[:-2], k.shape[-1], dtype=k.dtype)
    rows = []
    for i in range(k.shape[-2]):
        state = state + torch.einsum(
            "...a,...b->...ab", k[..., i, :], values[..., i, :]
        )
        z = z + k[..., i, :]
        numerator = torch.einsum("...a,...ab->...b", q[..., i, :], state)
        rows.append(numerator / (q[..., i, :] * z).sum(-1, keepdim=True))
    return torch.stack(rows, dim=-2)


def linear_with(feature=phi, normalise=True, causal_sums=True):
    def answer(queries, keys, values, causal=False):
        similarity = feature(queries) @ feature(keys).transpose(-2, -1)
        if causal and causal_sums:
            n = similarity.shape[-1]
            similarity = similarity * torch.ones(n, n).tril().to(similarity.dtype)
        out = similarity @ values
        return out / similarity.sum(-1, keepdim=True) if normalise else out

    return answer


def linear_causal_full_normaliser(queries, keys, values, causal=False):
    q, k = phi(queries), phi(keys)
    if not causal:
        return linear_attention(queries, keys, values)
    states = torch.cumsum(k.unsqueeze(-1) * values.unsqueeze(-2), dim=-3)
    numerator = (q.unsqueeze(-2) @ states).squeeze(-2)
    return numerator / (q * k.sum(-2, keepdim=True)).sum(-1, keepdim=True)


def linear_softmax(queries, keys, values, causal=False):
    n = queries.shape[-2]
    mask = torch.ones(n, n, dtype=torch.bool).tril() if causal else None
    return scaled_dot_product_attention(queries, keys, values, mask)[0]


def linear_scaled_queries(queries, keys, values, causal=False):  # 1/sqrt(d_k) habit
    return linear_attention(queries / queries.shape[-1] ** 0.5, keys, values, causal)


def linear_exclusive_sums(queries, keys, values, causal=False):  # j < i when causal
    if not causal:
        return linear_attention(queries, keys, values)
    q, k = phi(queries), phi(keys)
    outer = k.unsqueeze(-1) * values.unsqueeze(-2)
    states = torch.cumsum(outer, dim=-3) - outer
    normalisers = torch.cumsum(k, dim=-2) - k
    numerator = (q.unsqueeze(-2) @ states).squeeze(-2)
    return numerator / (q * normalisers).sum(-1, keepdim=True)


def linear_float64_inside(queries, keys, values, causal=False):  # correct
    out = linear_attention(queries.double(), keys.double(), values.double(), causal)
    return out.to(queries.dtype)


def linear_float32_always(queries, keys, values, causal=False):
    return linear_attention(queries.float(), keys.float(), values.float(), causal)


def test_linear_attention_passes_correct_answers(capsys):
    assert_passes(check_linear_attention, linear_attention, capsys)
    assert_passes(check_linear_attention, linear_loop, capsys)
    assert_passes(check_linear_attention, linear_float64_inside, capsys)


def linear_cumsum_dim_1(q, k, v, causal=False):
    """Running sums along axis 1: right for (batch, n, d), the heads axis for 4-D."""
    q, k = F.elu(q) + 1, F.elu(k) + 1
    if not causal:
        return (q @ (k.transpose(-2, -1) @ v)) / (q * k.sum(-2, keepdim=True)).sum(
            -1, keepdim=True
        )
    states = torch.cumsum(k.unsqueeze(-1) * v.unsqueeze(-2), dim=1)
    sums = torch.cumsum(k, dim=1)
    return (q.unsqueeze(-2) @ states).squeeze(-2) / (q * sums).sum(-1, keepdim=True)


def step_scale_fixed_at_8(q, k, v, cache_k, cache_v):
    """Scores divided by sqrt(8) whatever the head size."""
    where = torch.tensor([cache_k.shape[-2]])
    keys = torch.cat([cache_k, apply_rope(k, where)], dim=-2)
    values = torch.cat([cache_v, v], dim=-2)
    scores = apply_rope(q, where) @ keys.transpose(-2, -1) / 8**0.5
    return torch.softmax(scores, dim=-1) @ values, keys, values


MISTAKES = [
    (check_attend_with_cache, step_keys_not_values, "to the values"),
    (check_attend_with_cache, step_position_zero, "position 0"),
    (check_attend_with_cache, step_wrong_axis, "dim=-2"),
    (check_attend_with_cache, step_batch_axis, "sequence axis"),
    (check_attend_with_cache, step_query_unrotated, "query is not rotated"),
    (check_attend_with_cache, step_rotates_values, "queries and keys only"),
    (check_attend_with_cache, step_attends_before_appending, "BEFORE attending"),
    (check_attend_with_cache, step_key_unrotated, "without its rotation"),
    (check_attend_with_cache, step_recompute_positions, "rotated by its position t"),
    (check_attend_with_cache, step_rotates_whole_cache, "one position per row"),
    (check_attend_with_cache, step_position_plus_one, "positions count from 0"),
    (check_attend_with_cache, step_attends_new_only, "whole grown cache"),
    (check_attend_with_cache, step_naive_softmax, "overflows float32"),
    (check_attend_with_cache, step_is_causal, "top-left"),
    (check_attend_with_cache, step_float64_out, "promises the input's dtype"),
    (check_attend_with_cache, step_scale_fixed_at_8, "head_dim = q_new.shape[-1]"),
    (check_online_softmax_update, update_max_kept, "running maximum is not updated"),
    (check_online_softmax_update, update_own_block_max, "block's own maximum"),
    (check_online_softmax_update, update_with_switches(rescale="none"), "not rescaled"),
    (
        check_online_softmax_update,
        update_sum_only_rescaled,
        "accumulator is not rescaled",
    ),
    (
        check_online_softmax_update,
        update_with_switches(rescale="backwards"),
        "exp(running_max - new_max)",
    ),
    (check_online_softmax_update, update_with_switches(divide=True), "divide once"),
    (
        check_online_softmax_update,
        update_with_switches(shift=False),
        "subtract the running maximum",
    ),
    (
        check_online_softmax_update,
        update_with_switches(block_max_only=True),
        "ALL blocks",
    ),
    (check_online_softmax_update, update_in_place, "in place"),
    (check_online_softmax_update, update_float64_out, "promises the input's dtype"),
    (check_online_softmax_update, update_new_float32_tensors, "has dtype float32"),
    (check_sliding_window_mask, band_off_by_one, "i - j < window"),
    (check_sliding_window_mask, band_one_short, "window - 1 would leave one out"),
    (check_sliding_window_mask, band_symmetric, "symmetric"),
    (check_sliding_window_mask, band_float, "boolean"),
    (check_sliding_window_mask, band_not_causal, "future keys"),
    (check_sliding_window_mask, band_inverted, "True and False are swapped"),
    (check_sliding_window_mask, band_all_true_when_wide, "however long the window"),
    (check_linear_attention, linear_with(normalise=False), "normaliser is missing"),
    (check_linear_attention, linear_with(feature=F.elu), "must be positive"),
    (check_linear_attention, linear_with(feature=torch.relu), "relu"),
    (check_linear_attention, linear_with(causal_sums=False), "j <= i only"),
    (check_linear_attention, linear_causal_full_normaliser, "normaliser of the causal"),
    (check_linear_attention, linear_softmax, "softmax attention"),
    (check_linear_attention, linear_scaled_queries, "no scaling"),
    (check_linear_attention, linear_exclusive_sums, "own key included"),
    (check_linear_attention, linear_quadratic, "never to form"),
    (check_linear_attention, linear_cumsum_dim_1, "wrong axis"),
    (check_linear_attention, linear_float32_always, "promises the input's dtype"),
]


def test_online_softmax_wide_case_overflows_float32():
    from attention_kit.checks.unit09 import _update_cases

    _, scores, _, _ = list(_update_cases())[-1]
    assert scores.dtype == torch.float32 and scores.max() > 89
    assert torch.isinf(scores.exp()).any()
