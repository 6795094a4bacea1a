"""MultiHeadAttention against PyTorch's nn.MultiheadAttention on copied weights."""

import pytest
import torch
from torch import nn

from attention_kit.attention import MultiHeadAttention, merge_heads, split_heads
from attention_kit.masks import causal_mask


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
