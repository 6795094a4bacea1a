"""Labs 04-05's checkers: references pass; MISTAKES and stubs run in test_checks.py."""

import math

import pytest
import torch
from torch import nn

from attention_kit.attention import (
    MultiHeadAttention,
    SelfAttention,
    masked_softmax,
    merge_heads,
    simple_self_attention,
    split_heads,
)
from attention_kit.checks import (
    check_merge_heads,
    check_multi_head_attention,
    check_self_attention,
    check_simple_self_attention,
    check_split_heads,
)
from conftest import assert_passes


def simple_with(scale=True, dim=-1, gram=False):
    def answer(x):
        scores = x.transpose(-2, -1) @ x if gram else x @ x.transpose(-2, -1)
        if scale:
            scores = scores / math.sqrt(x.shape[-1])
        weights = torch.softmax(scores, dim=dim)
        return weights @ x, weights

    return answer


class SelfAttentionVariant(SelfAttention):
    """The reference with one step changed by a class attribute."""

    scale_by_embed = False
    keys_from_queries = False
    use_mask = True

    def forward(self, x, mask=None):
        q, v = self.W_q(x), self.W_v(x)
        k = q if self.keys_from_queries else self.W_k(x)
        d = x.shape[-1] if self.scale_by_embed else q.shape[-1]
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        weights = masked_softmax(scores, mask if self.use_mask else None)
        return weights @ v, weights


class BiasedSelfAttention(SelfAttention):
    def __init__(self, embed_dim, key_dim, value_dim):
        super().__init__(embed_dim, key_dim, value_dim)
        self.W_q = nn.Linear(embed_dim, key_dim)


class MultiHeadVariant(MultiHeadAttention):
    """The reference with one step changed by a class attribute."""

    scale_by_embed = False
    reshape_only = False
    average_heads = False

    def forward(self, query, key, value, mask=None):
        b, n, d = query.shape
        m, h = key.shape[1], self.num_heads

        def heads(x, length):
            if self.reshape_only:
                return x.reshape(b, h, length, d // h)
            return split_heads(x, h)

        q, k, v = (
            heads(self.W_q(query), n),
            heads(self.W_k(key), m),
            heads(self.W_v(value), m),
        )
        scale = math.sqrt(d if self.scale_by_embed else d // h)
        weights = masked_softmax(q @ k.transpose(-2, -1) / scale, mask)
        output = self.W_o(merge_heads(weights @ v))
        return output, weights.mean(dim=1) if self.average_heads else weights


def variant(base, **changes):
    return type("Variant", (base,), changes)


class WithoutOutputProjection(nn.Module):
    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.W_q = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_k = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_v = nn.Linear(embed_dim, embed_dim, bias=bias)


REFERENCES = [
    (check_simple_self_attention, simple_self_attention),
    (check_self_attention, SelfAttention),
    (check_self_attention, SelfAttentionVariant),
    (check_split_heads, split_heads),
    (check_merge_heads, merge_heads),
    (check_multi_head_attention, MultiHeadAttention),
    (check_multi_head_attention, MultiHeadVariant),
]

MISTAKES = [
    (check_simple_self_attention, simple_with(scale=False), "not scaled"),
    (check_simple_self_attention, simple_with(dim=-2), "symmetric"),
    (
        check_simple_self_attention,
        simple_with(gram=True),
        "shape (batch, n, n)",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, scale_by_embed=True),
        "key_dim",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, keys_from_queries=True),
        "W_k",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, use_mask=False),
        "pass the mask",
    ),
    (check_self_attention, BiasedSelfAttention, "bias=False"),
    (
        check_split_heads,
        lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
        "transpose",
    ),
    (
        check_split_heads,
        lambda x, h: x.view(*x.shape[:2], -1, h).permute(0, 3, 1, 2),
        "consecutive block",
    ),
    (
        check_split_heads,
        lambda x, h: x.view(*x.shape[:2], h, -1),
        "head axis comes before",
    ),
    (check_split_heads, lambda x, h: x.view(2, 5, 3, 4).transpose(1, 2), "x.shape"),
    (
        check_merge_heads,
        lambda x: x.reshape(x.shape[0], x.shape[2], -1),
        "transpose(1, 2)",
    ),
    (
        check_merge_heads,
        lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], -1),
        ".contiguous().view",
    ),
    (
        check_merge_heads,
        lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
        "interleaved",
    ),
    (check_merge_heads, lambda x: x.transpose(1, 2), "(batch, n, heads * head_dim)"),
    (check_multi_head_attention, WithoutOutputProjection, "W_o"),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, scale_by_embed=True),
        "head_dim",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, reshape_only=True),
        "transpose",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, average_heads=True),
        "every head",
    ),
]


@pytest.mark.parametrize("checker, answer", REFERENCES)
def test_reference_answers_pass(checker, answer, capsys):
    assert_passes(checker, answer, capsys)
