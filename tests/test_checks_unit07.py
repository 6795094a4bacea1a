"""Lab 07's checkers: references pass; MISTAKES run in test_checks.py; edge cases here."""

import torch

from attention_kit.checks import (
    check_causal_mask,
    check_leaks_future,
    check_padded_causal_mask,
    check_to_mha_mask,
)
from attention_kit.masks import causal_mask, padded_causal_mask, padding_mask
from conftest import assert_fails_with, assert_passes, with_globals

# --- 07.1 causal_mask ------------------------------------------------------------------


def causal_einsum_style(n):  # a correct answer written differently
    i = torch.arange(n)
    return i[None, :] <= i[:, None]


def causal_float(n):
    return torch.ones(n, n).tril()


def causal_triu(n):
    return torch.ones(n, n, dtype=torch.bool).triu()


def causal_mha_convention(n):
    return torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)


def causal_no_diagonal(n):
    return torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1)


def causal_off_by_one(n):
    return torch.ones(n, n, dtype=torch.bool).tril(diagonal=1)


def causal_fixed_size(n):
    return torch.ones(5, 5, dtype=torch.bool).tril()


def causal_cached_16(n):  # a 16 x 16 table, sliced
    return torch.ones(16, 16, dtype=torch.bool).tril()[:n, :n]


def causal_cached_1024(n):  # GPT-2's context length, cached and sliced
    return torch.ones(1024, 1024, dtype=torch.bool).tril()[:n, :n]


def causal_cached_4096_padded(n):  # a 4096 table, True beyond it
    mask = torch.ones(n, n, dtype=torch.bool)
    k = min(n, 4096)
    mask[:k, :k] = torch.ones(4096, 4096, dtype=torch.bool).tril()[:k, :k]
    return mask


def causal_int(n):
    return torch.ones(n, n, dtype=torch.long).tril()


def causal_additive(n):  # the 0 / -inf convention of additive masks
    future = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
    return torch.zeros(n, n).masked_fill(future, float("-inf"))


# --- 07.2 padded_causal_mask -----------------------------------------------------------


def padded_broadcast_style(lengths, n):  # correct, written with torch.where and float64
    positions = torch.arange(n, dtype=torch.float64)
    real = positions[None, :] < lengths[:, None].double()
    causal = torch.where(positions[None, :] <= positions[:, None], True, False)
    return causal[None] & real[:, None, :]


def padded_with_head_axis(lengths, n):
    return padded_causal_mask(lengths, n)[:, None]


def padded_or(lengths, n):
    return causal_mask(n) | padding_mask(lengths, n)[:, None, :]


def padded_on_queries(lengths, n):
    return causal_mask(n) & padding_mask(lengths, n)[:, :, None]


def padded_queries_and_keys(lengths, n):
    keys = padding_mask(lengths, n)
    return causal_mask(n) & keys[:, None, :] & keys[:, :, None]


def padded_max_length(lengths, n):
    longest = int(lengths.max())
    return causal_mask(longest) & padding_mask(lengths, longest)[:, None, :]


def padded_float(lengths, n):
    return padded_causal_mask(lengths, n).float()


def padded_uint8(lengths, n):
    return padded_causal_mask(lengths, n).to(torch.uint8)


def padded_no_padding(lengths, n):
    return causal_mask(n).expand(len(lengths), n, n)


def padded_le_length(lengths, n):
    return causal_mask(n) & (torch.arange(n) <= lengths[:, None])[:, None, :]


def padded_left(lengths, n):  # real tokens in the last lengths[b] columns
    real = torch.arange(n) >= n - lengths[:, None]
    return causal_mask(n) & real[:, None, :]


def padded_keys_inverted(lengths, n):
    return causal_mask(n) & ~padding_mask(lengths, n)[:, None, :]


def padded_all_inverted(lengths, n):
    return ~padded_causal_mask(lengths, n)


def padded_batch_last(lengths, n):  # (n, n, batch)
    return padded_causal_mask(lengths, n).permute(1, 2, 0)


def padded_axis_missing(lengths, n):  # causal[None] & real: no query axis on padding
    return causal_mask(n)[None] & padding_mask(lengths, n)


def padded_no_axis_at_all(lengths, n):
    return causal_mask(n) & padding_mask(lengths, n)


def padded_fixed_table(lengths, n):  # a (1024, 1024) causal table, sliced
    table = torch.ones(1024, 1024, dtype=torch.bool).tril()
    return table[:n, :n] & padding_mask(lengths, n)[:, None, :]


def padded_from_causal(lengths, n):  # right, and calls the learner's causal_mask
    return causal_mask(n) & padding_mask(lengths, n)[:, None, :]


def padded_in_place(lengths, n):
    lengths.clamp_(min=1)  # "a sequence needs at least one token"
    return padded_causal_mask(lengths, n)


# --- 07.3 leaks_future -----------------------------------------------------------------


def leaks_reference(model, inputs):
    """The lab's solution: change everything after t, compare the output at t exactly."""
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        if not torch.equal(model(changed)[:, t], reference[:, t]):
            found.append(t)
    return found


def leaks_equal_tensor(model, inputs):  # correct variant: (a == b).all(), tensor result
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :]) * 3.0 + 1.0
        if not (model(changed)[:, t] == reference[:, t]).all():
            found.append(t)
    return torch.tensor(found, dtype=torch.long)


def leaks_vectorised(model, inputs):  # correct: every modified copy in one model call
    batch, n = inputs.shape[:2]
    copies = [inputs]
    for t in range(n - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        copies.append(changed)
    out = model(torch.cat(copies)).reshape(n, batch, n, -1)
    return [t for t in range(n - 1) if not torch.equal(out[t + 1, :, t], out[0, :, t])]


def leaks_compared_with(compare, replace=None):
    """The lab's solution with another comparison of the outputs at t, or another
    replacement of the future: the wrong answers of the 'exactness' kind."""

    def answer(model, inputs):
        reference = model(inputs)
        found = []
        for t in range(inputs.shape[1] - 1):
            changed = inputs.clone()
            if replace is None:
                changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
            else:
                replace(changed, inputs, t)
            if not compare(model(changed)[:, t], reference[:, t]):
                found.append(t)
        return found

    return answer


def replace_feature_0(changed, inputs, t):
    changed[:, t + 1 :, 0] = torch.randn(changed[:, t + 1 :, 0].shape)


def replace_by_flip(changed, inputs, t):
    changed[:, t + 1 :] = inputs[:, t + 1 :].flip(1)


def replace_first_half_of_features(changed, inputs, t):
    half = inputs.shape[-1] // 2
    changed[:, t + 1 :, :half] = torch.randn(changed[:, t + 1 :, :half].shape)


leaks_allclose = leaks_compared_with(torch.allclose)
leaks_allclose_1e6 = leaks_compared_with(lambda a, b: torch.allclose(a, b, atol=1e-6))
leaks_allclose_1e7 = leaks_compared_with(
    lambda a, b: torch.allclose(a, b, rtol=0, atol=1e-7)
)
leaks_isclose_all = leaks_compared_with(lambda a, b: bool(torch.isclose(a, b).all()))
leaks_abs_max = leaks_compared_with(lambda a, b: (a - b).abs().max() < 1e-6)
leaks_norm = leaks_compared_with(lambda a, b: torch.equal(a.norm(), b.norm()))
leaks_row_norms = leaks_compared_with(
    lambda a, b: torch.equal(a.norm(dim=-1), b.norm(dim=-1))
)
leaks_sum = leaks_compared_with(lambda a, b: torch.equal(a.sum(), b.sum()))
leaks_mean = leaks_compared_with(lambda a, b: bool(a.mean() == b.mean()))
leaks_feature_0 = leaks_compared_with(lambda a, b: torch.equal(a[..., 0], b[..., 0]))
leaks_half = leaks_compared_with(lambda a, b: torch.equal(a.half(), b.half()))
leaks_argmax = leaks_compared_with(lambda a, b: torch.equal(a.argmax(-1), b.argmax(-1)))
leaks_flip = leaks_compared_with(torch.equal, replace_by_flip)
leaks_feature_0_replaced = leaks_compared_with(torch.equal, replace_feature_0)
leaks_half_the_features = leaks_compared_with(
    torch.equal, replace_first_half_of_features
)


def leaks_always(model, inputs):
    return list(range(inputs.shape[1] - 1))


def leaks_only_last(model, inputs):
    t = inputs.shape[1] - 2
    changed = inputs.clone()
    changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
    return [] if torch.equal(model(changed)[:, t], model(inputs)[:, t]) else [t]


def leaks_next_token_only(model, inputs):
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1] = torch.randn(changed[:, t + 1].shape)
        if not torch.equal(model(changed)[:, t], reference[:, t]):
            found.append(t)
    return found


def leaks_whole_output(model, inputs):
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        if not torch.equal(model(changed), reference):
            found.append(t)
    return found


def leaks_prefix(model, inputs):
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        if not torch.equal(model(changed)[:, : t + 1], reference[:, : t + 1]):
            found.append(t)
    return found


def leaks_bool(model, inputs):
    return bool(leaks_reference(model, inputs))


def leaks_change_from_t(model, inputs):  # changes position t itself too
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t:] = torch.randn(changed[:, t:].shape)
        if not torch.equal(model(changed)[:, t], reference[:, t]):
            found.append(t)
    return found


def leaks_descending(model, inputs):
    return leaks_reference(model, inputs)[::-1]


def leaks_once_per_sequence(model, inputs):  # appends t for every sequence that changed
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        out = model(changed)
        found += [
            t for b in range(len(inputs)) if not torch.equal(out[b, t], reference[b, t])
        ]
    return found


def leaks_reports_next(model, inputs):
    return [t + 1 for t in leaks_reference(model, inputs)]


def leaks_batch_index(model, inputs):  # out[t] is sequence t, not position t
    reference = model(inputs)
    found = []
    for t in range(inputs.shape[1] - 1):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        if not torch.equal(model(changed)[t], reference[t]):
            found.append(t)
    return found


def leaks_flags(model, inputs):  # one True/False per position instead of positions
    found = leaks_reference(model, inputs)
    return [t in found for t in range(inputs.shape[1] - 1)]


def leaks_first_sequence_only(model, inputs):  # tests sequence 0 of the batch only
    return leaks_reference(model, inputs[:1])


def leaks_n1_crash(model, inputs):
    if inputs.shape[1] == 1:
        return [0]
    return leaks_reference(model, inputs)


# --- 07.4 to_mha_mask -----------------------------------------------------------------


def mha_reference(mask, num_heads):
    flipped = ~mask
    return flipped.repeat_interleave(num_heads, dim=0) if mask.dim() == 3 else flipped


def mha_expand_style(mask, num_heads):  # correct, written with expand and reshape
    if mask.dim() == 2:
        return torch.logical_not(mask)
    batch, n, m = mask.shape
    return (~mask)[:, None].expand(batch, num_heads, n, m).reshape(-1, n, m)


def mha_not_inverted(mask, num_heads):
    return mask.repeat_interleave(num_heads, dim=0) if mask.dim() == 3 else mask


def mha_repeat(mask, num_heads):
    return (~mask).repeat(num_heads, 1, 1) if mask.dim() == 3 else ~mask


def mha_additive(mask, num_heads):
    return mha_reference(mask, num_heads).float()


def mha_no_heads(mask, num_heads):
    return ~mask


def mha_additive_inf(mask, num_heads):  # works in PyTorch, but is not the boolean mask
    flipped = mha_reference(mask, num_heads)
    return torch.zeros(flipped.shape).masked_fill(flipped, float("-inf"))


def mha_head_axis(mask, num_heads):  # (batch, num_heads, n, m)
    if mask.dim() == 2:
        return ~mask
    return (~mask)[:, None].expand(-1, num_heads, -1, -1)


def mha_uint8(mask, num_heads):
    return mha_reference(mask, num_heads).to(torch.uint8)


def mha_always_3d(mask, num_heads):
    flipped = ~mask if mask.dim() == 3 else (~mask)[None]
    return flipped.repeat_interleave(num_heads, dim=0)


def leaks_fixed_length(model, inputs):
    """Checks t = 0..4 only, as if n were always 6."""
    original, found = model(inputs), []
    for t in range(5):
        changed = inputs.clone()
        changed[:, t + 1 :] = torch.randn(changed[:, t + 1 :].shape)
        if not torch.equal(model(changed)[:, t], original[:, t]):
            found.append(t)
    return found


MISTAKES = [
    (check_causal_mask, causal_float, "float 0/1 mask would be read"),
    (check_causal_mask, causal_int, "boolean"),
    (check_causal_mask, causal_triu, "triu"),
    (check_causal_mask, causal_mha_convention, "nn.MultiheadAttention"),
    (check_causal_mask, causal_no_diagonal, "diagonal is excluded"),
    (check_causal_mask, causal_off_by_one, "NEXT token"),
    (check_causal_mask, causal_fixed_size, "(n, n)"),
    (check_causal_mask, causal_additive, "additive mask"),
    (check_causal_mask, causal_cached_16, "table of a fixed size"),
    (check_causal_mask, causal_cached_1024, "table of a fixed size"),
    (check_causal_mask, causal_cached_4096_padded, "table of fixed size"),
    (check_padded_causal_mask, padded_or, "AND"),
    (check_padded_causal_mask, padded_on_queries, "instead of the keys"),
    (check_padded_causal_mask, padded_queries_and_keys, "keys only"),
    (check_padded_causal_mask, padded_max_length, "longest length"),
    (check_padded_causal_mask, padded_with_head_axis, "without the head axis"),
    (check_padded_causal_mask, padded_float, "dtype"),
    (check_padded_causal_mask, padded_uint8, "integer 0/1 mask is not a boolean"),
    (check_padded_causal_mask, padded_no_padding, "padding is missing"),
    (check_padded_causal_mask, padded_le_length, "j < L"),
    (check_padded_causal_mask, padded_in_place, "in place"),
    (
        check_padded_causal_mask,
        with_globals(padded_from_causal, causal_mask=causal_off_by_one),
        "your causal_mask does not pass Exercise 07.1 yet",
    ),
    (
        check_padded_causal_mask,
        with_globals(padded_from_causal, causal_mask=causal_cached_16),
        "your causal_mask does not pass Exercise 07.1 yet",
    ),
    (check_padded_causal_mask, padded_axis_missing, "padding[:, None, :]"),
    (check_padded_causal_mask, padded_no_axis_at_all, "query axis"),
    (check_padded_causal_mask, padded_fixed_table, "table of fixed size"),
    (check_padded_causal_mask, padded_left, "pads on the right"),
    (check_padded_causal_mask, padded_keys_inverted, "padding part is inverted"),
    (check_padded_causal_mask, padded_all_inverted, "the mask is inverted"),
    (check_padded_causal_mask, padded_batch_last, "One (n, n) mask per sequence"),
    (check_leaks_future, leaks_always, "does not leak"),
    (check_leaks_future, leaks_only_last, "EVERY position"),
    (check_leaks_future, leaks_next_token_only, "ALL the inputs after t"),
    (check_leaks_future, leaks_whole_output, "AT t"),
    (check_leaks_future, leaks_prefix, "earlier output"),
    (check_leaks_future, leaks_bool, "LIST"),
    (check_leaks_future, leaks_change_from_t, "AFTER t"),
    (check_leaks_future, leaks_n1_crash, "n = 1"),
    (check_leaks_future, leaks_descending, "increasing order"),
    (check_leaks_future, leaks_flags, "not a True/False flag"),
    (check_leaks_future, leaks_once_per_sequence, "once per t"),
    (check_leaks_future, leaks_reports_next, "not t + 1"),
    (check_leaks_future, leaks_batch_index, "out[:, t]"),
    (check_leaks_future, leaks_first_sequence_only, "EVERY sequence"),
    (check_leaks_future, leaks_allclose, "not allclose with a tolerance"),
    (check_leaks_future, leaks_allclose_1e6, "-13 instead of -inf"),
    (check_leaks_future, leaks_allclose_1e7, "below any absolute tolerance"),
    (check_leaks_future, leaks_isclose_all, "not allclose with a tolerance"),
    (check_leaks_future, leaks_abs_max, "Compare the whole output at t exactly"),
    (check_leaks_future, leaks_norm, "not a norm, sum, mean or argmax"),
    (check_leaks_future, leaks_row_norms, "not a norm, sum, mean or argmax"),
    (check_leaks_future, leaks_sum, "not a norm, sum, mean or argmax"),
    (check_leaks_future, leaks_mean, "not a norm, sum, mean or argmax"),
    (check_leaks_future, leaks_feature_0, "last output feature only"),
    (check_leaks_future, leaks_half, "not in half precision"),
    (check_leaks_future, leaks_argmax, "the comparison missed"),
    (check_leaks_future, leaks_flip, "there is one input after t"),
    (check_leaks_future, leaks_feature_0_replaced, "ALL the inputs after t"),
    (check_leaks_future, leaks_half_the_features, "LAST feature of the inputs"),
    (check_leaks_future, leaks_fixed_length, "range(n - 1) with n = inputs.shape[1]"),
    (check_to_mha_mask, mha_not_inverted, "not inverted"),
    (check_to_mha_mask, mha_repeat, "repeat_interleave"),
    (check_to_mha_mask, mha_additive, "ADDS"),
    (check_to_mha_mask, mha_no_heads, "batch * num_heads"),
    (check_to_mha_mask, mha_always_3d, "keep (n, m)"),
    (check_to_mha_mask, mha_additive_inf, "BOOLEAN attn_mask"),
    (check_to_mha_mask, mha_head_axis, "no separate head axis"),
    (check_to_mha_mask, mha_uint8, "True = NOT allowed"),
]


def test_reference_answers_pass(capsys):
    assert_passes(check_causal_mask, causal_mask, capsys)
    assert_passes(check_causal_mask, causal_einsum_style, capsys)
    assert_passes(check_padded_causal_mask, padded_causal_mask, capsys)
    assert_passes(check_padded_causal_mask, padded_broadcast_style, capsys)
    assert_passes(check_leaks_future, leaks_reference, capsys)
    assert_passes(check_leaks_future, leaks_equal_tensor, capsys)
    assert_passes(check_leaks_future, leaks_vectorised, capsys)
    assert_passes(check_to_mha_mask, mha_reference, capsys)
    assert_passes(check_to_mha_mask, mha_expand_style, capsys)
    from attention_kit.masks import to_torch_mha_mask

    assert_passes(check_to_mha_mask, to_torch_mha_mask, capsys)


def test_the_kit_leakage_test_agrees_with_the_hidden_models(capsys):
    from attention_kit.masks import leaks_future

    def kit_positions(model, inputs):
        findings = leaks_future(model, inputs, use_gradients=False)
        words = [f.split() for f in findings]
        return sorted({int(w[3]) for w in words if w[3] == w[10]})

    # a finding names (output position s, "after position" t); keep those with s == t
    assert_passes(check_leaks_future, kit_positions, capsys)


def test_length_zero_rows_are_empty_and_give_zero_weights():
    from attention_kit.attention import masked_softmax

    mask = padded_causal_mask(torch.tensor([0, 2]), 3)
    assert not mask[0].any()
    weights = masked_softmax(torch.randn(2, 3, 3), mask)
    assert (weights[0] == 0).all() and not weights.isnan().any()


def test_a_wrong_answer_on_one_edge_case_only_is_caught():
    def wrong_for_n1(n):
        return causal_mask(n) if n > 1 else torch.zeros(1, 1, dtype=torch.bool)

    assert_fails_with(check_causal_mask, wrong_for_n1, "causal_mask(1)")

    def wrong_for_empty(lengths, n):
        mask = padded_causal_mask(lengths, n)
        mask[lengths == 0, :, 0] = True  # "every row needs a key"
        return mask

    assert_fails_with(check_padded_causal_mask, wrong_for_empty, "length 0")


def test_learners_may_treat_the_hidden_models_as_modules(capsys):
    def leaks_with_eval(model, inputs):
        model.eval()  # a learner's habit; the hidden models are nn.Modules
        return leaks_reference(model, inputs)

    assert_passes(check_leaks_future, leaks_with_eval, capsys)

    def leaks_numpy_ints(model, inputs):
        import numpy as np

        return [np.int64(t) for t in leaks_reference(model, inputs)]

    assert_passes(check_leaks_future, leaks_numpy_ints, capsys)

    def leaks_zero_d_tensors(model, inputs):  # e.g. list(torch.nonzero(...).flatten())
        return [torch.tensor(t) for t in leaks_reference(model, inputs)]

    assert_passes(check_leaks_future, leaks_zero_d_tensors, capsys)


def test_the_checkers_leave_the_global_random_state_alone(capsys):
    from attention_kit.masks import to_torch_mha_mask

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    check_leaks_future(leaks_reference)  # calls torch.randn many times inside
    check_to_mha_mask(to_torch_mha_mask)  # builds an nn.MultiheadAttention
    assert torch.rand(1) == before


def test_hidden_models_do_not_depend_on_the_batch_layout():
    """A vectorised test stacks its copies in one call: every hidden model must give a
    sequence the same output wherever it sits in the batch."""
    from attention_kit.checks.unit07 import _hidden_models, _leak_inputs

    x = _leak_inputs(2, 6, torch.Generator().manual_seed(0))
    stacked = torch.cat([x.flip(0), x, x[:1]])
    for description, model, _, _ in _hidden_models(6, 2):
        with torch.no_grad():
            alone, together = model(x), model(stacked)
        assert torch.allclose(together[2:4], alone, atol=1e-6), description
        assert torch.allclose(together[:2], alone.flip(0), atol=1e-6), description
