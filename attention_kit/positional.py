"""Positional information for attention: sinusoidal, learned and rotary (RoPE).

Self-attention without positions treats its input as a set (Unit 04). The three
ways of adding order that the course builds:

- :func:`sinusoidal_encoding`, the fixed table of Vaswani et al. (2017), added to the
  token embeddings;
- :class:`LearnedPositions`, a trained table (an ``nn.Embedding`` of positions);
- :func:`apply_rope`, rotary position embedding (Su et al., 2021), which rotates the
  queries and keys inside attention instead of changing the input;
- a bias on the scores that depends on the distance i - j only: ALiBi's fixed linear
  penalty (:func:`alibi_bias`, Press et al., 2022) and T5's learned bias per distance
  bucket (:class:`T5RelativeBias`, Raffel et al., 2020).

Conventions: positions count from 0; the base is 10000; the frequency of pair ``i``
(dimensions ``2i`` and ``2i+1``) is ``omega_i = 10000 ** (-2i / dim)``. RoPE here uses
the **interleaved** pairing of the RoFormer paper, (0, 1), (2, 3), ..., the same pairs
as the sin/cos columns of the sinusoidal table (Meta's LLaMA reference code pairs the
same way). GPT-NeoX, and Hugging Face's implementation of Llama, use the "rotate-half"
layout, pairing dimension ``i`` with ``i + dim/2``;
:func:`apply_rope_rotate_half` is that layout, a fixed permutation of the dimensions
away (:func:`interleaved_to_halves`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

BASE = 10000.0


def _check_even(dim: int) -> None:
    if dim <= 0 or dim % 2:
        raise ValueError(
            f"dim must be a positive even number (pairs of sin/cos dimensions), got {dim}"
        )


def pair_frequencies(dim: int, base: float = BASE) -> Tensor:
    """``(dim // 2,)`` float64: omega_i = base ** (-2i / dim) for pair i = 0..dim/2-1.

    Pair 0 turns by 1 radian per position (fast); the last pair almost not at all.
    """
    _check_even(dim)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)
    return base ** (-two_i / dim)


def sinusoidal_encoding(
    num_positions: int,
    dim: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """The sinusoidal position table of Vaswani et al. (2017).

    ``PE[t, 2i] = sin(t * omega_i)`` and ``PE[t, 2i+1] = cos(t * omega_i)`` with
    ``omega_i = 10000 ** (-2i / dim)`` and positions ``t = 0 .. num_positions - 1``.

    Args:
        num_positions: how many positions (rows); 0 gives an empty table.
        dim: the model width; must be even (an odd ``dim`` raises ValueError, since the
            last sine would have no cosine partner).

    Returns:
        ``(num_positions, dim)`` in ``dtype`` on ``device``. Computed in float64 and then
        converted, so float32 tables are accurate even for large ``t``.
    """
    if num_positions < 0:
        raise ValueError(f"num_positions must be >= 0, got {num_positions}")
    table = _sinusoids(torch.arange(num_positions), dim)
    return table.to(dtype=dtype, device=device)


def _sinusoids(positions: Tensor, dim: int) -> Tensor:
    """float64 ``(..., dim)`` for positions ``(...)``: sin(t omega_i) in column 2i and
    cos(t omega_i) in column 2i+1, the rows of the sinusoidal table at those positions."""
    frequencies = pair_frequencies(dim).to(positions.device)
    angles = positions.to(torch.float64)[..., None] * frequencies  # (..., dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # interleave


def rotation_matrix(delta: float, dim: int) -> Tensor:
    """``(dim, dim)`` float64: the block-diagonal R_delta with PE[t + delta] = R_delta PE[t].

    Block i acts on (sin, cos) = (PE[t, 2i], PE[t, 2i+1]); by the angle-sum formulas
    sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b,
    it is [[cos b, sin b], [-sin b, cos b]] with b = delta * omega_i. It does not
    depend on t.
    """
    return block_rotation(delta * pair_frequencies(dim))


def block_rotation(angles: Tensor) -> Tensor:
    """``(2k, 2k)`` float64 block-diagonal matrix from ``angles`` ``(k,)``: block i is
    [[cos b_i, sin b_i], [-sin b_i, cos b_i]] on coordinates (2i, 2i+1)."""
    b = angles.to(torch.float64)
    dim = 2 * b.shape[-1]
    matrix = torch.zeros(dim, dim, dtype=torch.float64)
    even = torch.arange(0, dim, 2)
    matrix[even, even] = b.cos()
    matrix[even, even + 1] = b.sin()
    matrix[even + 1, even] = -b.sin()
    matrix[even + 1, even + 1] = b.cos()
    return matrix


def _angles(x: Tensor, positions: Tensor | None, base: float) -> Tensor:
    """Angles ``positions * omega_i`` as float64, shape broadcastable to
    ``x.shape[:-1] + (dim/2,)``."""
    seq, dim = x.shape[-2], x.shape[-1]
    _check_even(dim)
    if positions is None:
        positions = torch.arange(seq, device=x.device)
    if positions.dtype == torch.bool or positions.is_complex():
        raise TypeError(f"positions must be integer or float, got {positions.dtype}")
    positions = positions.to(device=x.device, dtype=torch.float64)
    if positions.shape[-1:] != (seq,) and positions.dim() > 0:
        raise ValueError(
            f"positions has shape {tuple(positions.shape)}; its last axis must be the "
            f"sequence axis of x, of length {seq}"
        )
    frequencies = pair_frequencies(dim, base).to(x.device)
    return positions[..., None] * frequencies  # (..., seq, dim/2)


def apply_rope(
    x: Tensor, positions: Tensor | None = None, base: float = BASE
) -> Tensor:
    """Rotary position embedding (RoPE, Su et al. 2021), interleaved pairs.

    Each pair (x[..., 2i], x[..., 2i+1]) of the vector at position t is rotated by the
    angle t * omega_i, omega_i = base ** (-2i / dim), counter-clockwise:

        out[2i]   = x[2i] cos(t omega_i) - x[2i+1] sin(t omega_i)
        out[2i+1] = x[2i] sin(t omega_i) + x[2i+1] cos(t omega_i)

    which is the complex product (x[2i] + j x[2i+1]) * exp(j t omega_i). Apply it to
    the queries and the keys (after their projections, per head), never to the values
    or to the input: then <R_t q, R_u k> depends on t and u only through t - u.

    Args:
        x: ``(..., seq, dim)``, dim even; e.g. ``(seq, dim)``, ``(batch, seq, dim)`` or
            ``(batch, heads, seq, dim)``.
        positions: the position of each row, integer or float; default
            ``arange(seq)``. Shape ``(seq,)``, or any shape broadcastable against
            ``x.shape[:-1]`` whose last axis is seq, e.g. ``(batch, 1, seq)`` for
            ``(batch, heads, seq, dim)``. With a KV cache, the new tokens' positions
            are ``arange(past, past + seq)``.
        base: the wavelength base, 10000 as in the paper.

    Returns:
        a tensor of the shape, dtype and device of ``x`` with the same norm per row.
    """
    angles = _angles(x, positions, base)
    cos = angles.cos().to(x.dtype)
    sin = angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.flatten(-2)  # back to (..., seq, dim), pairs interleaved again


def apply_rope_rotate_half(
    x: Tensor, positions: Tensor | None = None, base: float = BASE
) -> Tensor:
    """RoPE in the "rotate-half" layout of GPT-NeoX (and of Hugging Face's Llama).

    Dimension i is paired with i + dim/2 (for i < dim/2) and rotated by t * omega_i.
    It equals :func:`apply_rope` up to a fixed permutation of the dimensions:
    ``apply_rope_rotate_half(x[..., p]) == apply_rope(x)[..., p]`` with
    ``p = interleaved_to_halves(dim)``. Same arguments and shapes as apply_rope.
    """
    angles = _angles(x, positions, base)
    cos = angles.cos().to(x.dtype)
    sin = angles.sin().to(x.dtype)
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


def interleaved_to_halves(dim: int) -> Tensor:
    """The permutation ``p = [0, 2, 4, ..., 1, 3, 5, ...]`` of ``dim`` dimensions:
    ``x[..., p]`` moves the interleaved pair (2i, 2i+1) to (i, i + dim/2)."""
    _check_even(dim)
    return torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])


class LearnedPositions(nn.Module):
    """Learned absolute positions: one trained vector per position, added to the input.

    A table of ``max_positions`` rows (an ``nn.Embedding``). Rows of positions never
    seen in training keep their random initial values: the table gives no information
    about them. Positions at or beyond ``max_positions`` raise an IndexError.

    Input ``(..., seq, dim)`` -> output of the same shape: ``x + table[positions]``.
    """

    def __init__(self, max_positions: int, dim: int):
        super().__init__()
        self.max_positions = max_positions
        self.table = nn.Embedding(max_positions, dim)  # initialised N(0, 1)

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        seq = x.shape[-2]
        if positions is None:
            positions = torch.arange(seq, device=x.device)
        if int(positions.max()) >= self.max_positions:
            raise IndexError(
                f"position {int(positions.max())} is beyond the table's "
                f"{self.max_positions} rows: a learned table knows no later positions"
            )
        return x + self.table(positions).to(x.dtype)


class SinusoidalPositions(nn.Module):
    """Adds :func:`sinusoidal_encoding` to the input; nothing to train.

    Input ``(..., seq, dim)`` -> output of the same shape. Works for any length.
    """

    def __init__(self, dim: int):
        super().__init__()
        _check_even(dim)
        self.dim = dim

    def forward(self, x: Tensor, positions: Tensor | None = None) -> Tensor:
        if positions is None:
            positions = torch.arange(x.shape[-2], device=x.device)
        return x + _sinusoids(positions, self.dim).to(dtype=x.dtype, device=x.device)


# --- Positions as a bias on the scores: ALiBi and T5's relative buckets -------------------


def alibi_slopes(num_heads: int) -> Tensor:
    """``(num_heads,)`` float64: ALiBi's head slopes (Press et al., 2022), the geometric
    sequence 2^(-8/h), 2^(-16/h), ..., 2^(-8) for h heads (h a power of two in the
    paper): head k penalises distance by 2^(-8k/h) per position."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")
    k = torch.arange(1, num_heads + 1, dtype=torch.float64)
    return 2.0 ** (-8.0 * k / num_heads)


def alibi_bias(
    query_positions: Tensor, key_positions: Tensor, slopes: Tensor
) -> Tensor:
    """``(heads, n, m)``: ALiBi's bias ``-slope * |i - j|``, ADDED to the scores of the
    query at position i and the key at position j (Press et al., 2022). No vector is
    added to the tokens; the bias grows linearly with distance, for every length."""
    distance = (query_positions[:, None] - key_positions[None, :]).abs()
    return -slopes.to(torch.float64)[:, None, None] * distance.to(torch.float64)


def relative_position_bucket(
    distance: Tensor, num_buckets: int = 32, max_distance: int = 128
) -> Tensor:
    """T5's buckets for a distance ``i - j >= 0`` back to an earlier key (the
    one-directional form, as in a decoder; Raffel et al., 2020).

    Distances below ``num_buckets // 2`` get one bucket each; larger ones share buckets
    whose width grows geometrically up to ``max_distance``, and every distance beyond
    that falls into the last bucket. Returns integer buckets of ``distance``'s shape.
    """
    distance = distance.clamp(min=0)
    exact = num_buckets // 2
    far = distance.to(torch.float64).clamp(min=exact) / exact
    share = torch.log(far) / math.log(max_distance / exact)  # 0 at exact, 1 at max
    log_bucket = exact + (share * (num_buckets - exact)).long()
    log_bucket = log_bucket.clamp(max=num_buckets - 1)
    return torch.where(distance < exact, distance, log_bucket)


class T5RelativeBias(nn.Module):
    """A learned scalar per head and distance bucket, added to the scores (T5).

    ``forward(n, m)`` -> ``(heads, n, m)`` for queries at positions ``m - n .. m - 1``
    (the last n of m keys, as after a KV cache) and keys at ``0 .. m - 1``. Keys after
    the query get bucket 0; mask them with a causal mask.
    """

    def __init__(
        self, num_heads: int = 1, num_buckets: int = 32, max_distance: int = 128
    ):
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bias = nn.Embedding(num_buckets, num_heads)  # initialised N(0, 1)

    def forward(self, n: int, m: int | None = None) -> Tensor:
        m = n if m is None else m
        device = self.bias.weight.device
        i = torch.arange(m - n, m, device=device)[:, None]
        j = torch.arange(m, device=device)[None, :]
        buckets = relative_position_bucket(i - j, self.num_buckets, self.max_distance)
        return self.bias(buckets).permute(2, 0, 1)  # (heads, n, m)
