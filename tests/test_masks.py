"""Masks against PyTorch's conventions, and the leakage test against leaky models."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attention_kit.attention import masked_softmax, scaled_dot_product_attention
from attention_kit.masks import (
    causal_mask,
    leaks_future,
    padded_causal_mask,
    padding_mask,
    to_additive_mask,
    to_torch_mha_mask,
)


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def tokens(batch, n, vocab=11, seed=0):
    return torch.randint(
        0, vocab, (batch, n), generator=torch.Generator().manual_seed(seed)
    )


# --- models for the leakage test: one self-attention layer whose mask we choose ----------


def correct(n):
    return causal_mask(n)


def off_by_one(n):
    return torch.ones(n, n, dtype=torch.bool).tril(
        diagonal=1
    )  # each query sees one ahead


def no_mask(n):
    return torch.ones(n, n, dtype=torch.bool)


def wrong_length(n):
    # Built once for a maximum length of 16, then sliced from the wrong corner.
    return causal_mask(16)[16 - n :, :n]


def broadcast_wrongly(n):
    # The last row of the causal mask (all True) broadcast over every query.
    return causal_mask(n)[-1][None, :]


def only_last(n):
    mask = causal_mask(n)
    mask[n - 2, n - 1] = True  # position n-2 sees position n-1, nothing else leaks
    return mask


def single_position(n):
    mask = causal_mask(n)
    mask[1, 3] = True  # position 1 sees position 3
    return mask


LEAKY = [
    off_by_one,
    no_mask,
    wrong_length,
    broadcast_wrongly,
    only_last,
    single_position,
]


class FloatModel(nn.Module):
    def __init__(self, make_mask, dim=8):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(dim, 3 * dim)
        self.make_mask = make_mask

    def forward(self, x):
        q, k, v = self.proj(x).chunk(3, dim=-1)
        out, _ = scaled_dot_product_attention(q, k, v, self.make_mask(x.shape[1]))
        return out


class TokenModel(nn.Module):
    def __init__(self, make_mask, vocab=11, dim=8):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, dim)
        self.attend = FloatModel(make_mask, dim)
        self.out = nn.Linear(dim, vocab)

    def forward(self, ids):
        return self.out(self.attend(self.embed(ids)))


def test_a_correct_causal_model_has_no_findings():
    assert leaks_future(FloatModel(correct), random(2, 6, 8)) == []
    assert leaks_future(TokenModel(correct), tokens(2, 6)) == []


def test_pytorch_is_causal_passes_bit_for_bit():
    def model(x):
        return F.scaled_dot_product_attention(x, x, x, is_causal=True)

    assert leaks_future(model, random(3, 7, 4)) == []


@pytest.mark.parametrize("make_mask", LEAKY, ids=lambda f: f.__name__)
def test_leaky_float_models_are_caught_both_ways(make_mask):
    findings = leaks_future(FloatModel(make_mask), random(2, 6, 8))
    assert any(f.startswith("output at position") for f in findings), findings
    assert any(f.startswith("gradient of the output") for f in findings), findings


@pytest.mark.parametrize("make_mask", LEAKY, ids=lambda f: f.__name__)
def test_leaky_token_models_are_caught(make_mask):
    assert leaks_future(TokenModel(make_mask), tokens(2, 6)) != []


def test_the_findings_name_the_leaking_positions():
    findings = leaks_future(FloatModel(single_position), random(1, 6, 8))
    changed = [f for f in findings if f.startswith("output")]
    # Position 1 sees position 3: it changes when anything after 1 or after 2 changes.
    assert [f.split(" changed")[0] for f in changed] == ["output at position 1"] * 2
    assert "after position 1" in changed[0] and "after position 2" in changed[1]
    grads = [f for f in findings if f.startswith("gradient")]
    assert grads == [grads[0]] and "position 1 " in grads[0] and "[3]" in grads[0]
    last = leaks_future(FloatModel(only_last), random(1, 6, 8), use_gradients=False)
    assert (
        len(last) == 1
        and "output at position 4" in last[0]
        and "after position 4" in last[0]
    )


def test_gradients_alone_catch_a_leak():
    findings = [f for f in leaks_future(FloatModel(off_by_one), random(1, 4, 8))]
    assert sum(f.startswith("gradient") for f in findings) == 3  # positions 0, 1, 2


def test_n_equals_one_and_batch_one():
    assert leaks_future(FloatModel(no_mask), random(1, 1, 8)) == []
    assert leaks_future(TokenModel(no_mask), tokens(1, 1)) == []
    assert leaks_future(FloatModel(no_mask), random(1, 2, 8)) != []


def test_tuple_outputs_and_train_mode_are_handled():
    layer = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    layer.train()
    assert leaks_future(layer, random(2, 5, 8)) == []  # position-wise, in both modes
    assert layer.training  # and put back in training mode

    def returns_a_tuple(x):  # like the kit's modules: (output, weights)
        return scaled_dot_product_attention(x, x, x, off_by_one(x.shape[1]))

    assert leaks_future(returns_a_tuple, random(2, 5, 8)) != []

    def dropout_on(x):  # a plain function: the test cannot switch its dropout off
        return layer(x)

    with pytest.raises(ValueError, match="dropout"):
        leaks_future(dropout_on, random(2, 5, 8))


def test_a_nondeterministic_model_is_refused():
    with pytest.raises(ValueError, match="different outputs"):
        leaks_future(lambda x: x + torch.randn(x.shape), random(1, 3, 2))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="batch, n"):
        leaks_future(lambda x: x.sum(dim=1), random(2, 3, 4))
    with pytest.raises(ValueError, match="vocab_size"):
        leaks_future(lambda x: x.float(), torch.zeros(1, 3, dtype=torch.long))
    assert (
        leaks_future(
            lambda x: x.float(), torch.zeros(1, 3, dtype=torch.long), vocab_size=2
        )
        == []
    )


def test_replacement_ids_stay_in_the_vocabulary():
    seen = []

    def model(ids):
        seen.append(ids.clone())
        return ids.float()[..., None]

    assert leaks_future(model, tokens(2, 5, vocab=3), vocab_size=3) == []
    stacked = torch.stack(seen)
    assert stacked.min() >= 0 and stacked.max() <= 2


# --- combining masks ----------------------------------------------------------------------


def test_padded_causal_mask_is_causal_and_padding():
    lengths = torch.tensor([3, 5, 0, 1])
    mask = padded_causal_mask(lengths, 5)
    assert mask.shape == (4, 5, 5) and mask.dtype == torch.bool
    i, j = torch.arange(5)[:, None], torch.arange(5)[None, :]
    for b, length in enumerate(lengths.tolist()):
        assert torch.equal(mask[b], (j <= i) & (j < length))
    assert not mask[2].any()  # length 0: every row empty
    weights = masked_softmax(random(4, 5, 5), mask)
    assert not weights.isnan().any() and (weights[2] == 0).all()
    assert torch.equal(
        padded_causal_mask(torch.tensor([1]), 1), torch.ones(1, 1, 1, dtype=torch.bool)
    )


def test_padded_causal_mask_matches_sdpa_and_mha():
    lengths = torch.tensor([4, 2, 6])
    x = random(3, 6, 8, seed=1)
    mask = padded_causal_mask(lengths, 6)
    ours, _ = scaled_dot_product_attention(x, x, x, mask)
    theirs = F.scaled_dot_product_attention(x, x, x, attn_mask=mask)
    assert torch.allclose(ours, theirs, atol=1e-6)
    # SDPA again with a float mask, and with is_causal plus a padding mask as a float mask
    theirs = F.scaled_dot_product_attention(x, x, x, attn_mask=to_additive_mask(mask))
    assert torch.allclose(ours, theirs, atol=1e-6)

    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    split = lambda t: t.reshape(3, 6, 2, 4).transpose(1, 2)  # noqa: E731
    heads, _ = scaled_dot_product_attention(split(q), split(k), split(v), mask[:, None])
    expected = mha.out_proj(heads.transpose(1, 2).reshape(3, 6, 8))
    for need_weights in (True, False):
        # the same mask three ways: one bool attn_mask per head, a float attn_mask, and
        # a causal attn_mask plus key_padding_mask
        got, _ = mha(
            x, x, x, attn_mask=to_torch_mha_mask(mask, 2), need_weights=need_weights
        )
        assert torch.allclose(got, expected, atol=1e-5)
        additive = to_additive_mask(mask).repeat_interleave(2, dim=0)
        got, _ = mha(x, x, x, attn_mask=additive, need_weights=need_weights)
        assert torch.allclose(got, expected, atol=1e-5)
        got, _ = mha(
            x,
            x,
            x,
            attn_mask=to_torch_mha_mask(causal_mask(6)),
            key_padding_mask=~padding_mask(lengths, 6),
            need_weights=need_weights,
        )
        assert torch.allclose(got, expected, atol=1e-5)


def test_causal_mask_matches_is_causal():
    q, k, v = random(2, 5, 4, seed=1), random(2, 5, 4, seed=2), random(2, 5, 3, seed=3)
    ours, _ = scaled_dot_product_attention(q, k, v, causal_mask(5))
    assert torch.allclose(
        ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6
    )


def test_conversions_refuse_float_masks():
    with pytest.raises(TypeError):
        to_torch_mha_mask(torch.ones(2, 2))
    with pytest.raises(TypeError):
        to_additive_mask(torch.ones(2, 2))
    additive = to_additive_mask(causal_mask(3))
    assert additive.dtype == torch.float32 and torch.equal(
        additive == 0, causal_mask(3)
    )
    assert torch.equal(to_torch_mha_mask(causal_mask(3)), ~causal_mask(3))


def test_what_each_api_returns_for_a_row_with_no_allowed_key():
    """Lecture 07 states these results for the pinned torch; this pins them."""
    x = random(1, 3, 4, seed=5)
    mask = torch.tensor(
        [[True, False, False], [False, False, False], [True, True, True]]
    )
    ours, _ = scaled_dot_product_attention(x, x, x, mask)
    assert (ours[0, 1] == 0).all()
    assert (F.scaled_dot_product_attention(x, x, x, attn_mask=mask)[0, 1] == 0).all()
    additive = to_additive_mask(mask)
    assert (
        F.scaled_dot_product_attention(x, x, x, attn_mask=additive)[0, 1] == 0
    ).all()

    torch.manual_seed(0)
    mha = nn.MultiheadAttention(4, 2, batch_first=True)
    with torch.no_grad():
        mha.out_proj.bias.normal_()
        for kwargs in (
            {"attn_mask": to_torch_mha_mask(mask)},
            {"key_padding_mask": torch.ones(1, 3, dtype=torch.bool)},
        ):
            with_weights, weights = mha(x, x, x, need_weights=True, **kwargs)
            assert with_weights[0, 1].isnan().all() and weights[0, 1].isnan().all()
            without, _ = mha(x, x, x, need_weights=False, **kwargs)
            assert torch.allclose(without[0, 1], mha.out_proj.bias)


def test_causal_band_is_the_rows_of_the_full_mask():
    """causal_band gives a block of queries (or the tokens after a cache) exactly their
    rows and columns of the full causal mask, with and without a window."""
    from attention_kit.efficient import sliding_window_mask
    from attention_kit.masks import causal_band

    n = 9
    everything = torch.arange(n)
    assert torch.equal(causal_band(everything, everything), causal_mask(n))
    for window in (1, 3, n, n + 4):
        full = sliding_window_mask(n, window)
        assert torch.equal(causal_band(everything, everything, window), full)
        block = causal_band(torch.arange(4, 7), torch.arange(2, 7), window)
        assert torch.equal(block, full[4:7, 2:7])
    by_hand = torch.tensor([[True, True, False], [False, True, True]])
    assert torch.equal(
        causal_band(torch.tensor([3, 4]), torch.arange(2, 5), 2), by_hand
    )


class LeaksWhenTraining(nn.Module):
    """Causal in eval mode; in training a "fast path" forgets the mask, with dropout."""

    def __init__(self, dim=8):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(dim, 3 * dim)
        self.dropout = nn.Dropout(0.2)

    def forward(self, x):
        q, k, v = self.proj(x).chunk(3, dim=-1)
        mask = None if self.training else causal_mask(x.shape[1])
        out, _ = scaled_dot_product_attention(q, k, v, mask)
        return self.dropout(out)


def test_a_leak_in_train_mode_only_is_found_and_labelled():
    model = LeaksWhenTraining().eval()
    x = random(2, 5, 8)
    assert leaks_future(model, x, modes=("eval",)) == []
    findings = leaks_future(model, x)
    assert findings and all(f.endswith("(train mode)") for f in findings), findings
    assert not model.training  # found in eval mode, left in eval mode


def test_every_module_gets_its_own_mode_back():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1), nn.Linear(8, 8))
    model.train()
    model[1].eval()  # a frozen part, as in fine-tuning
    assert leaks_future(model, random(1, 4, 8)) == []
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_dropout_in_train_mode_repeats_and_a_causal_model_passes():
    class CausalWithDropout(FloatModel):
        def __init__(self):
            super().__init__(correct)
            self.dropout = nn.Dropout(0.3)

        def forward(self, x):
            return self.dropout(super().forward(x))

    model = CausalWithDropout().train()
    state = torch.random.get_rng_state()
    assert leaks_future(model, random(2, 6, 8)) == []
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG left alone


def test_a_mask_cached_for_a_fixed_length_passes_short_inputs_and_leaks_long_ones():
    cached = causal_mask(8)

    def cached_mask(n):
        mask = torch.ones(n, n, dtype=torch.bool)
        k = min(n, 8)
        mask[:k, :k] = cached[:k, :k]
        return mask

    model = FloatModel(cached_mask)
    assert leaks_future(model, random(2, 6, 8)) == []
    assert leaks_future(model, random(2, 10, 8)) != []


def test_modes_are_checked():
    with pytest.raises(ValueError, match="modes"):
        leaks_future(FloatModel(correct), random(1, 3, 8), modes=("training",))
