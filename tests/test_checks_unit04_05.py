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
    scaled_dot_product_attention,
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
from attention_kit.masks import causal_mask
from conftest import assert_passes


def simple_with(scale=True, dim=-1, gram=False, divide_by=None, output_of=None):
    def answer(x):
        scores = x.transpose(-2, -1) @ x if gram else x @ x.transpose(-2, -1)
        if divide_by is not None:
            scores = scores / divide_by(x)
        elif scale:
            scores = scores / math.sqrt(x.shape[-1])
        weights = torch.softmax(scores, dim=dim)
        output = weights @ x if output_of is None else output_of(weights, x)
        return output, weights

    return answer


def simple_hand_softmax(x):
    """Hand-written softmax without the maximum shift: overflows for long vectors."""
    exponentials = torch.exp(x @ x.transpose(-2, -1) / math.sqrt(x.shape[-1]))
    weights = exponentials / exponentials.sum(dim=-1, keepdim=True)
    return weights @ x, weights


def simple_einsum_float64(x):
    x = x.double()
    weights = torch.softmax(torch.einsum("bnd,bmd->bnm", x, x) / x.shape[-1] ** 0.5, -1)
    return torch.einsum("bnm,bmd->bnd", weights, x), weights


def simple_squeezed(x):
    output, weights = simple_self_attention(x)
    return output.squeeze(), weights.squeeze()


def simple_scaled_after_softmax(x):
    weights = torch.softmax(x @ x.transpose(-2, -1), dim=-1) / math.sqrt(x.shape[-1])
    return weights @ x, weights


def simple_causal(x):
    """Masks the later tokens, which this exercise does not ask for."""
    scores = x @ x.transpose(-2, -1) / math.sqrt(x.shape[-1])
    weights = masked_softmax(scores, causal_mask(x.shape[-2]))
    return weights @ x, weights


class SelfAttentionFillsMinus1e9(SelfAttention):
    def forward(self, x, mask=None):
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1)
        scores = scores / math.sqrt(self.W_q.out_features)
        if mask is not None:
            scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, dim=-1)
        return weights @ self.W_v(x), weights


class MultiHeadAveragedWeights(MultiHeadAttention):
    """Returns every head's weights replaced by their mean over the heads."""

    def forward(self, query, key, value, mask=None):
        output, weights = super().forward(query, key, value, mask)
        return output, weights.mean(dim=1, keepdim=True).expand_as(weights)


class SelfAttentionScaledAfterSoftmax(SelfAttention):
    def forward(self, x, mask=None):
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1)
        weights = masked_softmax(scores, mask) / math.sqrt(self.W_q.out_features)
        return weights @ self.W_v(x), weights


class SelfAttentionVariant(SelfAttention):
    """The reference with one step changed by a class attribute."""

    scale_by = "key"
    keys_from = "W_k"
    queries_from = "W_q"
    values_from = "W_v"
    use_mask = True
    invert_mask = False
    transpose_scores = False
    softmax_dim = -1

    def forward(self, x, mask=None):
        q = getattr(self, self.queries_from)(x)
        k = getattr(self, self.keys_from)(x)
        v = getattr(self, self.values_from)(x)
        d = {"key": q.shape[-1], "embed": x.shape[-1], "value": v.shape[-1]}[
            self.scale_by
        ]
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        if self.transpose_scores:
            scores = scores.transpose(-2, -1)
        if mask is not None and self.invert_mask:
            mask = ~mask
        if self.softmax_dim != -1:
            weights = torch.softmax(scores, dim=self.softmax_dim)
        else:
            weights = masked_softmax(scores, mask if self.use_mask else None)
        return weights @ v, weights


class BiasedSelfAttention(SelfAttention):
    def __init__(self, embed_dim, key_dim, value_dim):
        super().__init__(embed_dim, key_dim, value_dim)
        self.W_q = nn.Linear(embed_dim, key_dim)


class SelfAttentionWithBuffers(SelfAttention):
    """Correct, with a cached causal mask (a buffer), a constant and a dropout."""

    def __init__(self, embed_dim, key_dim, value_dim):
        super().__init__(embed_dim, key_dim, value_dim)
        self.register_buffer("cached_mask", torch.ones(16, 16, dtype=torch.bool).tril())
        self.register_buffer("scale", torch.tensor(key_dim**-0.5), persistent=False)
        self.dropout = nn.Dropout(0.0)

    def forward(self, x, mask=None):
        scores = torch.einsum("bnk,bmk->bnm", self.W_q(x), self.W_k(x)) * self.scale
        weights = self.dropout(masked_softmax(scores.double(), mask))
        return weights @ self.W_v(x).double(), weights


class SelfAttentionUnsqueezesMask(SelfAttention):
    def forward(self, x, mask=None):
        if mask is not None:
            mask = mask.unsqueeze(1)
        return scaled_dot_product_attention(self.W_q(x), self.W_k(x), self.W_v(x), mask)


class SelfAttentionTorchMaskConvention(SelfAttention):
    """Uses nn.MultiheadAttention's convention (True = masked) with -inf fill."""

    def forward(self, x, mask=None):
        scores = self.W_q(x) @ self.W_k(x).mT / math.sqrt(self.W_q.out_features)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        return weights @ self.W_v(x), weights


class SelfAttentionNoMaskDefault(SelfAttention):
    def forward(self, x, mask):
        return super().forward(x, mask)


class SelfAttentionPlainSoftmax(SelfAttention):
    """-inf fill and torch.softmax: NaN for a sequence that is all padding."""

    def forward(self, x, mask=None):
        scores = self.W_q(x) @ self.W_k(x).mT / math.sqrt(self.W_q.out_features)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return weights @ self.W_v(x), weights


class SelfAttentionHandSoftmax(SelfAttention):
    """exp without the maximum shift; empty rows handled by where: overflows."""

    def forward(self, x, mask=None):
        scores = self.W_q(x) @ self.W_k(x).mT / math.sqrt(self.W_q.out_features)
        exponentials = torch.exp(scores)
        if mask is not None:
            exponentials = exponentials * mask
        total = exponentials.sum(dim=-1, keepdim=True)
        weights = torch.where(total > 0, exponentials / total, 0.0)
        return weights @ self.W_v(x), weights


class MultiHeadHandSoftmax(MultiHeadAttention):
    def forward(self, query, key, value, mask=None):
        if mask is not None and mask.dim() == 3:
            mask = mask.unsqueeze(1)
        q, k, v = (
            split_heads(layer(x), self.num_heads)
            for layer, x in ((self.W_q, query), (self.W_k, key), (self.W_v, value))
        )
        exponentials = torch.exp(q @ k.mT / math.sqrt(q.shape[-1]))
        if mask is not None:
            exponentials = exponentials * mask
        total = exponentials.sum(dim=-1, keepdim=True)
        weights = torch.where(total > 0, exponentials / total, 0.0)
        return self.W_o(merge_heads(weights @ v)), weights


class MultiHeadVariant(MultiHeadAttention):
    """The reference with one step changed by a class attribute."""

    scale_by_embed = False
    reshape_only = False
    merge_by_reshape = False
    average_heads = False
    head_axis_for_3d_masks = True
    invert_mask = False
    use_mask = True
    keys_from_value = False
    values_from_key = False
    use_output_projection = True
    scale_after_softmax = False
    softmax_over_heads = False
    keys_by_W_q = False

    def forward(self, query, key, value, mask=None):
        b, n, d = query.shape
        m, h = key.shape[1], self.num_heads

        def heads(x, length):
            if self.reshape_only:
                return x.reshape(b, h, length, d // h)
            return split_heads(x, h)

        k_source = value if self.keys_from_value else key
        v_source = key if self.values_from_key else value
        q, k, v = (
            heads(self.W_q(query), n),
            heads((self.W_q if self.keys_by_W_q else self.W_k)(k_source), m),
            heads(self.W_v(v_source), m),
        )
        if mask is not None:
            if mask.dim() == 3 and self.head_axis_for_3d_masks:
                mask = mask.unsqueeze(1)
            if self.invert_mask:
                mask = ~mask
        scale = math.sqrt(d if self.scale_by_embed else d // h)
        scores = q @ k.transpose(-2, -1)
        if not self.scale_after_softmax:
            scores = scores / scale
        weights = masked_softmax(scores, mask if self.use_mask else None)
        if self.scale_after_softmax:
            weights = weights / scale
        if self.softmax_over_heads:
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1).nan_to_num(0.0)
        heads_out = weights @ v
        merged = (
            heads_out.reshape(b, n, d)
            if self.merge_by_reshape
            else merge_heads(heads_out)
        )
        output = self.W_o(merged) if self.use_output_projection else merged
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


class IgnoresBias(MultiHeadVariant):
    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__(embed_dim, num_heads)


class AlwaysWithoutBias(MultiHeadVariant):
    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__(embed_dim, num_heads, bias=False)


class NoBiasArgument(MultiHeadVariant):
    def __init__(self, embed_dim, num_heads):
        super().__init__(embed_dim, num_heads)


class MultiHeadAlwaysUnsqueezes(MultiHeadVariant):
    def forward(self, query, key, value, mask=None):
        if mask is not None:
            mask = mask.unsqueeze(1)
        return super().forward(query, key, value, mask)


class MultiHeadWithExtras(MultiHeadAttention):
    """Correct, with a buffer, a dropout and an einsum."""

    def __init__(self, embed_dim, num_heads, bias=True):
        super().__init__(embed_dim, num_heads, bias)
        self.register_buffer("head_dim", torch.tensor(embed_dim // num_heads))
        self.dropout = nn.Dropout(0.0)

    def forward(self, query, key, value, mask=None):
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]
        q, k, v = (
            split_heads(layer(x), self.num_heads)
            for layer, x in ((self.W_q, query), (self.W_k, key), (self.W_v, value))
        )
        scores = torch.einsum("bhnd,bhmd->bhnm", q, k) / self.head_dim.float().sqrt()
        weights = self.dropout(masked_softmax(scores, mask))
        return self.W_o(merge_heads(weights @ v)), weights


def split_by_unflatten(x, num_heads):
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def merge_by_flatten(x):
    return x.transpose(1, 2).flatten(-2)


REFERENCES = [
    (check_simple_self_attention, simple_self_attention),
    (check_simple_self_attention, simple_einsum_float64),
    (check_self_attention, SelfAttention),
    (check_self_attention, SelfAttentionVariant),
    (check_self_attention, SelfAttentionWithBuffers),
    (check_split_heads, split_heads),
    (check_split_heads, split_by_unflatten),
    (
        check_split_heads,
        lambda x, h: x.view(*x.shape[:2], h, -1).permute(0, 2, 1, 3).contiguous(),
    ),
    (check_merge_heads, merge_heads),
    (check_merge_heads, merge_by_flatten),
    (check_multi_head_attention, MultiHeadAttention),
    (check_multi_head_attention, MultiHeadVariant),
    (check_multi_head_attention, MultiHeadWithExtras),
]

MISTAKES = [
    (check_simple_self_attention, simple_with(scale=False), "not scaled"),
    (check_simple_self_attention, simple_with(dim=-2), "symmetric"),
    (check_simple_self_attention, simple_with(gram=True), "shape (batch, n, n)"),
    (
        check_simple_self_attention,
        simple_with(divide_by=lambda x: x.shape[-1]),
        "you divided by d",
    ),
    (
        check_simple_self_attention,
        simple_with(divide_by=lambda x: math.sqrt(x.shape[1])),
        "number of tokens",
    ),
    (
        check_simple_self_attention,
        simple_with(divide_by=lambda x: 2.0),
        "x.shape[-1]",
    ),
    (
        check_simple_self_attention,
        simple_with(output_of=lambda w, x: w.transpose(-2, -1) @ x),
        "transposed weights",
    ),
    (check_simple_self_attention, simple_hand_softmax, "exp overflowed"),
    (check_simple_self_attention, simple_squeezed, "shape"),
    (check_simple_self_attention, simple_scaled_after_softmax, "after the softmax"),
    (check_simple_self_attention, simple_causal, "no mask"),
    (
        check_simple_self_attention,
        lambda x: simple_self_attention(x)[0],
        "return a pair",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, scale_by="embed"),
        "not by sqrt(embed_dim)",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, scale_by="value"),
        "not by sqrt(value_dim)",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, keys_from="W_q"),
        "scored the queries against themselves",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, queries_from="W_k"),
        "scored the keys against themselves",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, transpose_scores=True),
        "transposed",
    ),
    (check_self_attention, variant(SelfAttentionVariant, softmax_dim=-2), "dim=-1"),
    (check_self_attention, SelfAttentionScaledAfterSoftmax, "after the softmax"),
    (
        check_self_attention,
        variant(SelfAttentionVariant, values_from="W_k"),
        "V = W_v(x)",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, use_mask=False),
        "pass the mask",
    ),
    (
        check_self_attention,
        variant(SelfAttentionVariant, invert_mask=True),
        "inverted",
    ),
    (check_self_attention, SelfAttentionTorchMaskConvention, "inverted"),
    (check_self_attention, SelfAttentionUnsqueezesMask, "without adding axes"),
    (check_self_attention, SelfAttentionNoMaskDefault, "raised TypeError"),
    (check_self_attention, SelfAttentionPlainSoftmax, "must give zero"),
    (check_self_attention, BiasedSelfAttention, "bias=False"),
    (check_self_attention, SelfAttentionHandSoftmax, "must not overflow"),
    (check_self_attention, SelfAttentionFillsMinus1e9, "-1e9"),
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
        check_split_heads,
        lambda x, h: x.view(x.shape[0], x.shape[1], h, 4).transpose(1, 2),
        "head_dim = embed_dim // num_heads",
    ),
    (
        check_split_heads,
        lambda x, h: x.view(*x.shape[:2], h, -1).transpose(1, 2).squeeze(),
        "(batch, heads, n, head_dim)",
    ),
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
    (
        check_merge_heads,
        lambda x: x.transpose(1, 2).reshape(2, 5, 12),
        "read the sizes from",
    ),
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
        variant(MultiHeadVariant, merge_by_reshape=True),
        "merged by a reshape without a transpose",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, average_heads=True),
        "every head",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, keys_from_value=True),
        "K = W_k(key), not W_k(value)",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, values_from_key=True),
        "V = W_v(value), not W_v(key)",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, head_axis_for_3d_masks=False),
        "mask.unsqueeze(1)",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, invert_mask=True),
        "inverted",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, use_mask=False),
        "pass the mask",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, use_output_projection=False),
        "without W_o",
    ),
    (check_multi_head_attention, MultiHeadAlwaysUnsqueezes, "2-D mask (n, m)"),
    (check_multi_head_attention, IgnoresBias, "bias=bias"),
    (check_multi_head_attention, AlwaysWithoutBias, "bias=bias"),
    (check_multi_head_attention, NoBiasArgument, "bias=True"),
    (check_multi_head_attention, MultiHeadHandSoftmax, "must not overflow"),
    (
        check_multi_head_attention,
        MultiHeadAveragedWeights,
        "average_attn_weights=True",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, scale_after_softmax=True),
        "after the softmax",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, softmax_over_heads=True),
        "over the heads",
    ),
    (
        check_multi_head_attention,
        variant(MultiHeadVariant, keys_by_W_q=True),
        "you used W_q",
    ),
]


@pytest.mark.parametrize("checker, answer", REFERENCES)
def test_reference_answers_pass(checker, answer, capsys):
    assert_passes(checker, answer, capsys)
