"""The attention mechanisms the labs build, saved for later labs to import.

Shapes: n queries, m keys, rows are items, the last dimension is features.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def nadaraya_watson(
    queries: Tensor, keys: Tensor, values: Tensor, bandwidth: float
) -> tuple[Tensor, Tensor]:
    """Nadaraya-Watson kernel regression with a Gaussian kernel, read as attention: the
    score of key k for query q is -(q - k)^2 / (2 * bandwidth^2), softmax over keys.

    Args:
        queries: ``(n,)`` the points where we predict.
        keys: ``(m,)`` the training inputs.
        values: ``(m,)`` or ``(m, d_v)`` the training targets.
        bandwidth: the kernel width h > 0; small h looks only at the nearest keys.

    Returns:
        predictions ``(n,)`` or ``(n, d_v)`` and weights ``(n, m)`` whose rows sum to 1.
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    differences = queries[:, None] - keys[None, :]  # (n, m)
    scores = -(differences**2) / (2 * bandwidth**2)
    # torch.softmax subtracts the row maximum first, so a tiny bandwidth (scores in
    # the -1e6 range) gives a one-hot row instead of 0/0.
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


def masked_softmax(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax over the last dimension (the keys), ignoring keys the mask forbids.

    Args:
        scores: ``(..., n, m)`` attention scores.
        mask: boolean, broadcastable to ``scores``; True means "may attend". For example
            ``(m,)`` for one key mask shared by all queries, ``(batch, 1, m)`` for padding,
            ``(batch, n, m)`` for a mask per query.

    Returns:
        weights of the shape of ``scores``: exactly 0 where the mask is False, rows
        summing to 1, and all zeros (never NaN) in a row where no key is allowed.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    any_allowed = mask.any(dim=-1, keepdim=True)
    scores = scores.masked_fill(~mask, float("-inf"))
    # A row with no allowed key would be softmax(-inf, ..., -inf) = NaN, in the forward
    # pass and in the gradient. Give it finite scores here; its weights are zeroed below.
    scores = scores.masked_fill(~any_allowed, 0.0)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


def scaled_dot_product_attention(
    queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(d_k)) V, with an optional boolean mask (True = may attend).

    Args:
        queries: ``(..., n, d_k)``; any leading batch or head dimensions.
        keys: ``(..., m, d_k)``.
        values: ``(..., m, d_v)``; d_v may differ from d_k.
        mask: boolean, broadcastable to ``(..., n, m)``.

    Returns:
        output ``(..., n, d_v)`` and weights ``(..., n, m)``.
    """
    d_k = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(d_k)
    weights = masked_softmax(scores, mask)
    return weights @ values, weights


class AdditiveAttention(nn.Module):
    """Additive (Bahdanau) attention: score(q, k) = w_v^T tanh(W_q q + W_k k).

    Queries and keys may have different sizes; both are projected to ``hidden_dim``.
    Bahdanau, Cho & Bengio (2015), arXiv:1409.0473.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.W_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.W_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.w_v = nn.Linear(hidden_dim, 1, bias=False)

    def scores(self, queries: Tensor, keys: Tensor) -> Tensor:
        """queries ``(..., n, query_dim)``, keys ``(..., m, key_dim)`` -> ``(..., n, m)``."""
        # (..., n, 1, hidden) + (..., 1, m, hidden) -> (..., n, m, hidden)
        features = torch.tanh(
            self.W_q(queries).unsqueeze(-2) + self.W_k(keys).unsqueeze(-3)
        )
        return self.w_v(features).squeeze(-1)

    def forward(
        self, queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """queries ``(..., n, query_dim)``, keys ``(..., m, key_dim)``, values
        ``(..., m, d_v)`` -> output ``(..., n, d_v)``, weights ``(..., n, m)``."""
        weights = masked_softmax(self.scores(queries, keys), mask)
        return weights @ values, weights


def simple_self_attention(x: Tensor) -> tuple[Tensor, Tensor]:
    """Self-attention with no parameters: softmax(X X^T / sqrt(d)) X.

    Every token is its own query, key and value. x ``(..., n, d)`` -> output
    ``(..., n, d)`` and weights ``(..., n, n)``.
    """
    return scaled_dot_product_attention(x, x, x)


def attention_mask(
    mask: Tensor | None,
    n: int,
    m: int,
    valid_keys: Tensor | None = None,
    head_axis: bool = False,
) -> Tensor | None:
    """The boolean mask (True = may attend) that the attention layers below apply to
    scores ``(batch, n, m)``, or ``(batch, heads, n, m)`` when ``head_axis``.

    ``mask`` is ``(m,)``, ``(n, m)`` (query x key, e.g. ``causal_mask(n)``) or
    ``(batch, n, m)`` (``(batch, 1, m)`` for padding); with ``head_axis`` a 3-D mask gets
    an axis for the heads, and a 4-D mask is used as given. A 2-D mask always means
    ``(n, m)``: any other 2-D shape is an error, because a ``(batch, m)`` padding mask
    read as ``(n, m)`` would silently give query i the mask of sequence i.
    ``valid_keys`` ``(batch, m)``, True at real keys that may be attended, is the
    explicit way to pass padding; it is combined with ``mask`` by logical and.
    """
    if mask is not None:
        if mask.dim() == 2 and mask.shape[0] not in (1, n):
            raise ValueError(
                f"a 2-D mask means (n, m) = ({n}, {m}), query by key (e.g. "
                f"causal_mask(n)); got shape {tuple(mask.shape)}. For a (batch, m) "
                "padding mask write mask[:, None, :], or pass it as valid_keys."
            )
        if mask.shape[-1] not in (1, m):
            raise ValueError(
                f"the mask's last dimension is the keys, m = {m}; got shape "
                f"{tuple(mask.shape)}."
            )
        if head_axis and mask.dim() == 3:
            mask = mask.unsqueeze(1)  # the same mask for every head
    if valid_keys is not None:
        if valid_keys.dim() != 2 or valid_keys.shape[-1] != m:
            raise ValueError(
                f"valid_keys must be (batch, m) with m = {m}, True at real keys; "
                f"got shape {tuple(valid_keys.shape)}."
            )
        padding = valid_keys[:, None, None, :] if head_axis else valid_keys[:, None, :]
        mask = padding if mask is None else mask & padding
    return mask


class SelfAttention(nn.Module):
    """Single-head self-attention: Q = X W_q, K = X W_k, V = X W_v from one sequence X.

    ``W_q``, ``W_k``: ``Linear(embed_dim, key_dim, bias=False)``; ``W_v``:
    ``Linear(embed_dim, value_dim, bias=False)``.
    """

    def __init__(self, embed_dim: int, key_dim: int, value_dim: int):
        super().__init__()
        self.W_q = nn.Linear(embed_dim, key_dim, bias=False)
        self.W_k = nn.Linear(embed_dim, key_dim, bias=False)
        self.W_v = nn.Linear(embed_dim, value_dim, bias=False)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        valid_keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """x ``(batch, n, embed_dim)`` -> output ``(batch, n, value_dim)`` and weights
        ``(batch, n, n)``.

        ``mask`` (True = may attend) is ``(n,)``, ``(n, n)`` (e.g. ``causal_mask(n)``) or
        ``(batch, n, n)`` / ``(batch, 1, n)``; a 2-D mask always means ``(n, n)``.
        ``valid_keys`` ``(batch, n)`` is True at real tokens (``nn.MultiheadAttention``'s
        ``key_padding_mask`` is its negation: True means "ignore"). See
        :func:`attention_mask`.
        """
        n = x.shape[-2]
        mask = attention_mask(mask, n, n, valid_keys)
        return scaled_dot_product_attention(self.W_q(x), self.W_k(x), self.W_v(x), mask)


def head_size(embed_dim: int, num_heads: int) -> int:
    """``embed_dim // num_heads``; a ValueError unless the heads divide the features."""
    if num_heads < 1 or embed_dim % num_heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by {num_heads} heads")
    return embed_dim // num_heads


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(batch, seq, embed_dim)`` -> ``(batch, heads, seq, head_dim)``: head i takes
    the i-th block of ``head_dim`` consecutive features (view, then transpose)."""
    batch, seq, embed_dim = x.shape
    head_dim = head_size(embed_dim, num_heads)
    return x.view(batch, seq, num_heads, head_dim).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(batch, heads, seq, head_dim)`` -> ``(batch, seq, heads * head_dim)``; undoes
    :func:`split_heads`. ``reshape`` copies here, because the transpose made ``x``
    non-contiguous."""
    batch, heads, seq, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, arXiv:1706.03762).

    Queries, keys and values are projected by ``W_q``, ``W_k``, ``W_v`` (each
    ``Linear(embed_dim, embed_dim)``), split into ``num_heads`` heads of size
    ``embed_dim // num_heads``, attended head by head, merged, and projected by ``W_o``.
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True):
        super().__init__()
        head_size(embed_dim, num_heads)  # fail here, not at the first forward pass
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.W_q = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_k = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_v = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.W_o = nn.Linear(embed_dim, embed_dim, bias=bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        mask: Tensor | None = None,
        *,
        valid_keys: Tensor | None = None,
        positions: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """query ``(batch, n, embed_dim)``, key and value ``(batch, m, embed_dim)``.

        ``mask`` is boolean, True = may attend, and is shared by all heads: shape
        ``(m,)``, ``(n, m)`` or ``(batch, n, m)`` (``(batch, 1, m)`` for padding); a 4-D
        mask ``(batch, heads, n, m)`` is used as given. A 2-D mask always means
        ``(n, m)``, query by key; another 2-D shape raises a ValueError. Pass a
        ``(batch, m)`` padding mask as ``valid_keys`` (True at real keys;
        ``nn.MultiheadAttention``'s ``key_padding_mask`` is its negation) or as
        ``mask[:, None, :]``. See :func:`attention_mask`. ``positions`` is passed on to
        :meth:`transform_queries_keys` (unused here).

        Returns:
            output ``(batch, n, embed_dim)`` and weights ``(batch, heads, n, m)``.
        """
        mask = attention_mask(
            mask, query.shape[-2], key.shape[-2], valid_keys, head_axis=True
        )
        q = split_heads(self.W_q(query), self.num_heads)
        k = split_heads(self.W_k(key), self.num_heads)
        q, k = self.transform_queries_keys(q, k, positions)
        v = split_heads(self.W_v(value), self.num_heads)
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.W_o(merge_heads(heads)), weights

    def transform_queries_keys(
        self, q: Tensor, k: Tensor, positions: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Where a subclass changes the projected queries ``(batch, heads, n, head_dim)``
        and keys ``(batch, heads, m, head_dim)`` before the scores (RoPE rotates them);
        the identity here."""
        return q, k

    @torch.no_grad()
    def load_from_torch(self, reference: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a PyTorch ``nn.MultiheadAttention`` of the same size.

        PyTorch keeps W_q, W_k and W_v stacked in one ``in_proj_weight`` of shape
        ``(3 embed_dim, embed_dim)``, in that order, and W_o in ``out_proj``. The two
        layers must agree on ``embed_dim``, ``num_heads`` and ``bias``; PyTorch's
        ``kdim``/``vdim`` (separate key and value sizes), ``add_bias_kv`` and
        ``add_zero_attn`` have no counterpart here and raise a ValueError.
        ``batch_first`` does not matter: it changes the input layout, not the weights.
        """
        problems = []
        if reference.embed_dim != self.embed_dim:
            problems.append(
                f"embed_dim {reference.embed_dim} (theirs) != {self.embed_dim} (ours)"
            )
        if reference.num_heads != self.num_heads:
            problems.append(
                f"num_heads {reference.num_heads} (theirs) != {self.num_heads} (ours)"
            )
        if (reference.in_proj_bias is not None) != (self.W_q.bias is not None):
            problems.append(
                f"bias={reference.in_proj_bias is not None} (theirs) != "
                f"bias={self.W_q.bias is not None} (ours)"
            )
        if not reference._qkv_same_embed_dim:
            problems.append(
                f"kdim={reference.kdim}, vdim={reference.vdim}: theirs projects keys or "
                "values of another size than embed_dim"
            )
        if reference.bias_k is not None or reference.add_zero_attn:
            problems.append(
                "add_bias_kv / add_zero_attn add keys that ours does not have"
            )
        if problems:
            raise ValueError(
                "load_from_torch needs an nn.MultiheadAttention of the same shape: "
                + "; ".join(problems)
            )
        for mine, theirs in zip(
            (self.W_q, self.W_k, self.W_v),
            reference.in_proj_weight.chunk(3),
            strict=True,
        ):
            mine.weight.copy_(theirs)
        self.W_o.weight.copy_(reference.out_proj.weight)
        if self.W_q.bias is not None:
            for mine, theirs in zip(
                (self.W_q, self.W_k, self.W_v),
                reference.in_proj_bias.chunk(3),
                strict=True,
            ):
                mine.bias.copy_(theirs)
            self.W_o.bias.copy_(reference.out_proj.bias)
        return self
