"""MultiHeadAttention against PyTorch's nn.MultiheadAttention on copied weights."""

import pytest
import torch
from torch import nn

from attention_kit.attention import (
    MultiHeadAttention,
    SelfAttention,
    head_size,
    merge_heads,
    split_heads,
)
from attention_kit.masks import causal_mask, padding_mask


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def pair(embed_dim=16, num_heads=4, bias=True):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True)
    # PyTorch initialises the biases to zero; make them matter.
    if bias:
        with torch.no_grad():
            theirs.in_proj_bias.normal_()
            theirs.out_proj.bias.normal_()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias).load_from_torch(theirs)
    return ours, theirs


def compare(ours, theirs, query, key, value, mask=None):
    out, weights = ours(query, key, value, mask)
    # PyTorch's boolean attn_mask means "may NOT attend": the opposite of ours.
    torch_mask = None if mask is None else ~mask
    expected, expected_weights = theirs(
        query, key, value, attn_mask=torch_mask, average_attn_weights=False
    )
    assert out.shape == expected.shape and weights.shape == expected_weights.shape
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_matches_pytorch(bias):
    ours, theirs = pair(bias=bias)
    x = random(2, 5, 16, seed=1)
    compare(ours, theirs, x, x, x)


def test_cross_attention_matches_pytorch():
    ours, theirs = pair()
    query, memory = random(2, 3, 16, seed=1), random(2, 7, 16, seed=2)
    compare(ours, theirs, query, memory, memory)


def test_causal_self_attention_matches_pytorch():
    ours, theirs = pair()
    x = random(2, 6, 16, seed=3)
    compare(ours, theirs, x, x, x, causal_mask(6))
    _, weights = ours(x, x, x, causal_mask(6))
    assert (weights.triu(diagonal=1) == 0).all()


def test_cross_attention_with_a_key_mask_matches_pytorch():
    ours, theirs = pair()
    query, memory = random(2, 3, 16, seed=1), random(2, 7, 16, seed=2)
    mask = torch.tensor([True, True, False, True, True, False, True]).expand(3, 7)
    compare(ours, theirs, query, memory, memory, mask)


def test_per_batch_masks_apply_to_every_head():
    ours, _ = pair()
    x = random(2, 4, 16, seed=4)
    mask = torch.ones(2, 4, 4, dtype=torch.bool)
    mask[1, :, 2:] = False
    _, weights = ours(x, x, x, mask)
    assert weights.shape == (2, 4, 4, 4)
    assert (weights[1, :, :, 2:] == 0).all() and (weights[0] > 0).all()


def test_parameter_count_of_a_768_wide_12_head_layer():
    layer = MultiHeadAttention(768, 12)
    assert (
        sum(p.numel() for p in layer.parameters()) == 4 * (768 * 768 + 768) == 2_362_368
    )
    torch_layer = nn.MultiheadAttention(768, 12)
    assert sum(p.numel() for p in torch_layer.parameters()) == 2_362_368
    # the same count as one attention head of width 768
    assert sum(p.numel() for p in MultiHeadAttention(768, 1).parameters()) == 2_362_368


def test_split_and_merge_heads():
    x = random(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(
        heads[1, 2, 4], x[1, 4, 8:12]
    )  # head h holds features h*4..h*4+3
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(x, 5)


def test_reshape_without_transpose_mixes_positions():
    x = random(1, 4, 6)
    wrong = x.reshape(1, 2, 4, 3)  # "heads" made of reshaped memory, not of features
    assert not torch.equal(wrong, split_heads(x, 2))


def test_a_two_d_mask_of_another_shape_than_n_by_m_is_an_error():
    ours, _ = pair()
    query, memory = random(3, 4, 16, seed=1), random(3, 7, 16, seed=2)
    padding = torch.ones(3, 7, dtype=torch.bool)  # (batch, m), batch != n
    with pytest.raises(ValueError, match=r"mask\[:, None, :\]"):
        ours(query, memory, memory, padding)
    with pytest.raises(ValueError, match="valid_keys"):
        SelfAttention(16, 8, 8)(random(3, 5, 16), torch.ones(3, 5, dtype=torch.bool))


def test_a_two_d_mask_always_means_query_by_key_even_when_batch_equals_n():
    # the ambiguous case: batch == n. The documented meaning is (n, m): row i is query i's
    # mask, in every sequence of the batch.
    ours, _ = pair()
    x = random(4, 4, 16, seed=3)
    mask = causal_mask(4)
    _, weights = ours(x, x, x, mask)
    assert (weights[..., ~mask] == 0).all()
    assert (
        weights[:, :, 0, 0] == 1
    ).all()  # query 0 sees key 0 only, in every sequence


@pytest.mark.parametrize("with_causal", [False, True])
def test_valid_keys_is_the_negation_of_pytorchs_key_padding_mask(with_causal):
    ours, theirs = pair()
    x = random(3, 5, 16, seed=4)
    real = padding_mask(torch.tensor([5, 3, 1]), 5)  # True at real tokens
    causal = causal_mask(5) if with_causal else None
    out, weights = ours(x, x, x, causal, valid_keys=real)
    expected, expected_weights = theirs(
        x,
        x,
        x,
        attn_mask=None if causal is None else ~causal,
        key_padding_mask=~real,  # PyTorch: True = ignore this key
        average_attn_weights=False,
    )
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)
    same, _ = ours(
        x, x, x, real[:, None, :] if causal is None else causal & real[:, None, :]
    )
    assert torch.allclose(out, same)


def test_self_attention_valid_keys_equals_a_broadcast_mask():
    torch.manual_seed(0)
    layer = SelfAttention(8, 4, 6)
    x = random(2, 5, 8, seed=5)
    real = padding_mask(torch.tensor([5, 2]), 5)
    out, weights = layer(x, valid_keys=real)
    expected, expected_weights = layer(x, real[:, None, :])
    assert torch.equal(out, expected) and torch.equal(weights, expected_weights)
    assert (weights[1, :, 2:] == 0).all()
    with pytest.raises(ValueError, match=r"\(batch, m\)"):
        layer(x, valid_keys=real[0])


@pytest.mark.parametrize(
    "theirs, message",
    [
        (lambda: nn.MultiheadAttention(16, 2, batch_first=True), "num_heads 2"),
        (lambda: nn.MultiheadAttention(8, 4, batch_first=True), "embed_dim 8"),
        (lambda: nn.MultiheadAttention(16, 4, bias=False), "bias=False"),
        (lambda: nn.MultiheadAttention(16, 4, kdim=8, vdim=8), "kdim=8"),
        (lambda: nn.MultiheadAttention(16, 4, add_bias_kv=True), "add_bias_kv"),
        (lambda: nn.MultiheadAttention(16, 4, add_zero_attn=True), "add_zero_attn"),
    ],
)
def test_load_from_torch_refuses_a_layer_of_another_shape(theirs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(16, 4).load_from_torch(theirs())


def test_load_from_torch_ignores_batch_first():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, batch_first=False)
    ours = MultiHeadAttention(16, 4).load_from_torch(theirs)
    x = random(2, 5, 16, seed=6)
    expected, _ = theirs(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1))
    assert torch.allclose(ours(x, x, x)[0], expected.transpose(0, 1), atol=1e-5)


def test_the_divisibility_error_comes_from_one_place():
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        MultiHeadAttention(16, 3)
    with pytest.raises(ValueError, match="not divisible by 0 heads"):
        head_size(16, 0)
    assert head_size(12, 3) == 4


def test_what_pytorch_2_13_returns_for_a_row_with_no_allowed_key():
    """The claims of the lectures and of tests/test_attention.py's comment."""
    torch.manual_seed(0)
    q, k, v = random(1, 2, 4, seed=1), random(1, 3, 4, seed=2), random(1, 3, 4, seed=3)
    allowed = torch.tensor([[True, True, False], [False, False, False]])
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    assert torch.equal(sdpa[0, 1], torch.zeros(4))
    theirs = nn.MultiheadAttention(4, 1, batch_first=True)
    with_weights, _ = theirs(q, k, v, attn_mask=~allowed, need_weights=True)
    without_weights, _ = theirs(q, k, v, attn_mask=~allowed, need_weights=False)
    assert torch.isnan(with_weights[0, 1]).all()
    assert torch.equal(without_weights[0, 1], torch.zeros(4))
