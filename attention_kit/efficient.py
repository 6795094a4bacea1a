"""Efficient attention (Unit 09): a key-value cache, exact tiled attention, sliding
windows and linear attention.

- :func:`generate_cached` extends a prompt with Unit 08's :class:`MiniTransformer`,
  one new token per step, keeping every layer's keys and values in a preallocated
  :class:`KVCache`; :func:`cached_forward` runs the model's own modules on the new
  tokens only, and gives the tokens :func:`attention_kit.transformer.generate` gives.
- :func:`tiled_attention`: exact attention over blocks of keys with an online softmax.
- :func:`sliding_window_mask` and :func:`sliding_window_attention`: a band of keys.
- :func:`linear_attention`: Katharopoulos et al. (2020), non-causal and causal.

Shapes follow the course: queries ``(..., n, d_k)``, keys ``(..., m, d_k)``, values
``(..., m, d_v)``, masks boolean with True = may attend, broadcastable to ``(..., n, m)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .attention import (
    MultiHeadAttention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from .masks import causal_band
from .train import evaluating
from .transformer import MiniTransformer, next_token

# --- the key-value cache ----------------------------------------------------------------


@dataclass
class KVCache:
    """Every layer's keys and values, allocated once: ``keys[l]`` and ``values[l]`` are
    ``(batch, heads, capacity, head_dim)``, of which the first ``length`` positions are
    filled; with RoPE the keys are stored rotated. ``KVCache()`` is empty until
    :func:`cached_forward` allocates it for the model's whole context."""

    keys: list[Tensor] = field(default_factory=list)
    values: list[Tensor] = field(default_factory=list)
    length: int = 0

    @classmethod
    def allocate(
        cls, model: MiniTransformer, batch: int, capacity: int | None = None
    ) -> KVCache:
        """Zeros for ``capacity`` positions (default: the model's context) in every
        layer, in the model's dtype and on its device."""
        config = model.config
        capacity = config.context_length if capacity is None else capacity
        if capacity > config.context_length:
            raise ValueError(
                f"a cache of {capacity} positions, the context is {config.context_length}"
            )
        head_dim = config.d_model // config.num_heads
        shape = (batch, config.num_heads, capacity, head_dim)
        weight = model.output.weight

        def zeros() -> list[Tensor]:
            return [weight.new_zeros(shape) for _ in model.blocks]

        return cls(zeros(), zeros())

    @property
    def capacity(self) -> int:
        """How many positions the cache can hold (0 before it is allocated)."""
        return self.keys[0].shape[-2] if self.keys else 0

    def nbytes(self) -> int:
        """Bytes held by the cached tensors."""
        return sum(t.numel() * t.element_size() for t in self.keys + self.values)


def kv_cache_bytes(
    num_layers: int,
    context: int,
    d_model: int,
    bytes_per_element: int,
    batch: int = 1,
    num_heads: int = 1,
    num_kv_heads: int | None = None,
) -> int:
    """The size of a full key-value cache: layers x 2 (keys and values) x context x
    d_model x bytes per element x batch.

    With grouped-query attention (Ainslie et al. 2023) only ``num_kv_heads`` of the
    ``num_heads`` heads have their own keys and values, so the cache shrinks by
    ``num_kv_heads / num_heads``; multi-query attention (Shazeer 2019) is
    ``num_kv_heads = 1``. None means one key-value head per head (plain multi-head).
    """
    kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    if num_heads % kv_heads:
        raise ValueError(f"{num_heads} heads cannot share {kv_heads} key-value heads")
    kv_width = d_model * kv_heads // num_heads
    return num_layers * 2 * context * kv_width * bytes_per_element * batch


def cached_forward(
    model: MiniTransformer, tokens: Tensor, cache: KVCache
) -> tuple[Tensor, KVCache]:
    """Run ``model`` on new tokens ``(batch, n)`` that follow the ``cache.length``
    tokens in ``cache``: returns logits ``(batch, n, vocab_size)`` and ``cache`` itself,
    with the new keys and values written in place after the old ones.

    The new tokens sit at positions ``past .. past + n - 1`` (past = ``cache.length``);
    the mask is the model's own (causal, windowed if the model has a window).
    """
    past, n = cache.length, tokens.shape[1]
    if not cache.keys:  # KVCache(): allocate it here, for the model's whole context
        empty = KVCache.allocate(model, batch=tokens.shape[0])
        cache.keys, cache.values = empty.keys, empty.values
    if past + n > cache.capacity:
        raise ValueError(f"{past + n} tokens, the cache holds {cache.capacity}")
    if len(tokens) != len(cache.keys[0]):
        raise ValueError(
            f"a batch of {len(tokens)}, the cache holds {len(cache.keys[0])}"
        )
    positions = torch.arange(past, past + n, device=tokens.device)
    mask = model.attention_mask(n, start=past)  # (n, past + n)
    x = model.embed(tokens, positions)
    for block, keys, values in zip(model.blocks, cache.keys, cache.values, strict=True):
        # views of this layer's cache up to the new tokens, which attention fills in
        step = (keys[:, :, : past + n], values[:, :, : past + n], positions, mask)
        if block.pre_norm:
            x = x + attend_with_cache(block.attention, block.norm1(x), *step)
            x = x + block.ffn(block.norm2(x))
        else:
            x = block.norm1(x + attend_with_cache(block.attention, x, *step))
            x = block.norm2(x + block.ffn(x))
    cache.length = past + n
    return model.output(model.final_norm(x)), cache


def attend_with_cache(
    attention: MultiHeadAttention,
    x: Tensor,
    keys: Tensor,
    values: Tensor,
    positions: Tensor,
    mask: Tensor,
) -> Tensor:
    """``attention`` for the new tokens x ``(batch, n, d_model)`` at ``positions``
    ``(n,)``: their keys and values are written into the last n positions of ``keys``
    and ``values`` ``(batch, heads, past + n, head_dim)`` (views of the cache), and
    their queries attend over all past + n with ``mask`` ``(n, past + n)``.
    Returns ``(batch, n, d_model)``."""
    n = x.shape[-2]
    q = split_heads(attention.W_q(x), attention.num_heads)
    k = split_heads(attention.W_k(x), attention.num_heads)
    q, k = attention.transform_queries_keys(q, k, positions)  # RoPE rotates here
    keys[:, :, -n:] = k
    values[:, :, -n:] = split_heads(attention.W_v(x), attention.num_heads)
    heads, _ = scaled_dot_product_attention(q, keys, values, mask)
    return attention.W_o(merge_heads(heads))


@torch.no_grad()
def generate_cached(
    model: MiniTransformer,
    prompt: Tensor,
    num_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """:func:`attention_kit.transformer.generate` with a key-value cache: the prompt
    ``(batch, n)`` is run once, then each step feeds only the newest token.

    Same arguments and the same result (for greedy decoding, and for sampling with the
    same ``generator``), as long as prompt plus new tokens fit in the context.
    Returns ``(batch, n + num_tokens)``.
    """
    if prompt.shape[1] + num_tokens > model.config.context_length:
        raise ValueError(
            f"{prompt.shape[1]} + {num_tokens} tokens do not fit in the context "
            f"of {model.config.context_length}; a cache cannot slide a learned context"
        )
    cache = KVCache.allocate(model, len(prompt), prompt.shape[1] + num_tokens)
    tokens, step_input = prompt, prompt
    with evaluating(model):
        for _ in range(num_tokens):
            logits, cache = cached_forward(model, step_input, cache)
            new = next_token(logits[:, -1], temperature, top_k, greedy, generator)
            tokens = torch.cat([tokens, new], dim=1)
            step_input = new
    return tokens


def grouped_query_attention(
    queries: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Attention where groups of query heads share one key-value head (Ainslie et al.
    2023; one shared head is multi-query attention, Shazeer 2019).

    queries ``(batch, heads, n, d_k)``, keys ``(batch, kv_heads, m, d_k)``, values
    ``(batch, kv_heads, m, d_v)`` with ``heads`` a multiple of ``kv_heads``: query heads
    ``g * heads/kv_heads .. (g+1) * heads/kv_heads - 1`` use key-value head g.
    Returns ``(batch, heads, n, d_v)``.
    """
    group = queries.shape[1] // keys.shape[1]
    if group * keys.shape[1] != queries.shape[1]:
        raise ValueError(
            f"{queries.shape[1]} query heads cannot share {keys.shape[1]} kv heads"
        )
    keys = keys.repeat_interleave(group, dim=1)
    values = values.repeat_interleave(group, dim=1)
    return scaled_dot_product_attention(queries, keys, values, mask)[0]


# --- tiled attention with an online softmax -----------------------------------------------


def online_softmax_update(
    state: tuple[Tensor, Tensor, Tensor], scores: Tensor, values: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Fold a block of scores ``(..., n, b)`` (-inf where not allowed) and values
    ``(..., b, d_v)`` into the state ``(running_max (..., n, 1), running_sum (..., n, 1),
    output (..., n, d_v))``; ``output`` is the sum of exp(score - running_max) * value,
    not yet divided by the sum. A row with no allowed key yet keeps max -inf, sum 0."""
    running_max, running_sum, output = state
    new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
    safe_max = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
    rescale = torch.exp(running_max - safe_max)  # exp(-inf) = 0 for an empty history
    weights = torch.exp(scores - safe_max)  # (..., n, b), unnormalised
    running_sum = running_sum * rescale + weights.sum(dim=-1, keepdim=True)
    output = output * rescale + weights @ values
    return new_max, running_sum, output


def tiled_attention(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    mask: Tensor | None = None,
    block_size: int = 128,
    causal: bool = False,
) -> Tensor:
    """Exact softmax(Q K^T / sqrt(d_k)) V over blocks of ``block_size`` keys with an
    online softmax: at most ``(..., n, block_size)`` scores at a time. It tiles the keys
    only, as Rabe & Staats (2021), "Self-attention Does Not Need O(n^2) Memory",
    arXiv:2112.05682.

    Args:
        queries: ``(..., n, d_k)``; keys ``(..., m, d_k)``; values ``(..., m, d_v)``.
        mask: boolean, True = may attend, broadcastable to ``(..., n, m)``. A row with
            no allowed key gives zeros, as :func:`attention_kit.attention.masked_softmax`.
        block_size: keys per block; the last block may be shorter.
        causal: also apply the causal mask, aligned bottom-right as
            ``torch.nn.attention.bias.causal_lower_right``: query i sees keys
            j <= i + m - n (the queries are the last n positions, as in a decode step).

    Returns:
        output ``(..., n, d_v)``, equal to plain attention up to rounding.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
    n, m = queries.shape[-2], keys.shape[-2]
    scale = 1 / math.sqrt(queries.shape[-1])
    batch_shape = torch.broadcast_shapes(queries.shape[:-2], keys.shape[:-2])
    like = dict(dtype=queries.dtype, device=queries.device)
    state = (
        torch.full((*batch_shape, n, 1), float("-inf"), **like),
        torch.zeros((*batch_shape, n, 1), **like),
        torch.zeros((*batch_shape, n, values.shape[-1]), **like),
    )
    last_key = torch.arange(n, device=queries.device)[:, None] + (m - n)  # (n, 1)
    for start in range(0, m, block_size):
        stop = min(start + block_size, m)
        scores = queries @ keys[..., start:stop, :].transpose(-2, -1) * scale
        allowed = None
        if mask is not None:
            allowed = mask[..., start:stop] if mask.shape[-1] == m else mask
        if causal:
            columns = torch.arange(start, stop, device=queries.device)[None, :]
            below = columns <= last_key
            allowed = below if allowed is None else allowed & below
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        state = online_softmax_update(state, scores, values[..., start:stop, :])
    _, running_sum, output = state
    # A row that never met an allowed key has sum 0 and output 0: divide by 1 there.
    return output / torch.where(
        running_sum > 0, running_sum, torch.ones_like(running_sum)
    )


# --- sliding windows ----------------------------------------------------------------------


def sliding_window_mask(
    n: int, window: int, causal: bool = True, device: torch.device | str | None = None
) -> Tensor:
    """The band mask ``(n, n)``, True = may attend.

    Causal: query i sees keys i - window + 1 .. i (itself and the window - 1 before it,
    the convention of ``TransformerConfig.window``). Not causal: keys with
    |i - j| <= window - 1, window - 1 on each side. ``window >= n`` (causal) is the
    causal mask.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    positions = torch.arange(n, device=device)
    if causal:
        return causal_band(positions, positions, window)
    return (positions[:, None] - positions[None, :]).abs() < window


def sliding_window_attention(
    queries: Tensor, keys: Tensor, values: Tensor, window: int, block_size: int = 128
) -> Tensor:
    """Causal sliding-window self-attention, equal to plain attention with
    ``sliding_window_mask(n, window)``: each block of ``block_size`` queries meets only
    the keys its window reaches, so the cost grows like n * (window + block_size).

    queries, keys ``(..., n, d_k)``, values ``(..., n, d_v)`` -> ``(..., n, d_v)``.
    """
    n = queries.shape[-2]
    outputs = []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        first = max(0, start - window + 1)  # the oldest key query `start` may see
        band = causal_band(
            torch.arange(start, stop, device=queries.device),
            torch.arange(first, stop, device=queries.device),
            window,
        )
        out, _ = scaled_dot_product_attention(
            queries[..., start:stop, :],
            keys[..., first:stop, :],
            values[..., first:stop, :],
            band,
        )
        outputs.append(out)
    return torch.cat(outputs, dim=-2)


# --- linear attention ---------------------------------------------------------------------


def elu_feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1, positive everywhere (Katharopoulos et al. 2020)."""
    return F.elu(x) + 1


def linear_attention(
    queries: Tensor, keys: Tensor, values: Tensor, causal: bool = False
) -> Tensor:
    """Linear attention (Katharopoulos et al. 2020, arXiv:2006.16236):

        out_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j)),

    phi = elu + 1; ``causal`` sums over j <= i only. queries, keys ``(..., n, d_k)``,
    values ``(..., n, d_v)`` -> ``(..., n, d_v)``. The causal form keeps a (d_k, d_v)
    running sum per position, ``(..., n, d_k, d_v)`` in all.
    """
    q, k = elu_feature_map(queries), elu_feature_map(keys)
    if not causal:
        state = k.transpose(-2, -1) @ values  # (..., d_k, d_v)
        normaliser = k.sum(dim=-2)  # (..., d_k)
        numerator = q @ state
        denominator = (q * normaliser.unsqueeze(-2)).sum(dim=-1, keepdim=True)
        return numerator / denominator
    states = torch.cumsum(
        k.unsqueeze(-1) * values.unsqueeze(-2), dim=-3
    )  # (.., n, dk, dv)
    normalisers = torch.cumsum(k, dim=-2)  # (..., n, d_k)
    numerator = (q.unsqueeze(-2) @ states).squeeze(-2)
    denominator = (q * normalisers).sum(dim=-1, keepdim=True)
    return numerator / denominator
