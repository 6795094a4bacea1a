"""Lab 06's checkers: right answers written differently pass; MISTAKES (run in
test_checks.py) are the wrong answers learners write, with the words of their hint."""

import math

import torch

from attention_kit.checks import (
    check_apply_rope,
    check_offset_rotation,
    check_rope_self_attention,
    check_sinusoidal_encoding,
)
from attention_kit.positional import apply_rope, rotation_matrix
from conftest import assert_passes, with_globals

# --- 06.1 sinusoidal_encoding ----------------------------------------------------------


def table(
    num_positions, dim, swap=False, exponent=2, base=10000, start=0, halves=False
):
    """A learner's table, with the usual slips as switches."""
    t = torch.arange(start, start + num_positions, dtype=torch.float32)[:, None]
    i = torch.arange(dim // 2, dtype=torch.float32)[None, :]
    angle = t / base ** (exponent * i / dim)
    first, second = (angle.cos(), angle.sin()) if swap else (angle.sin(), angle.cos())
    if halves:
        return torch.cat([first, second], dim=1)
    pe = torch.zeros(num_positions, dim)
    pe[:, 0::2] = first
    pe[:, 1::2] = second
    return pe


def table_loops(num_positions, dim):
    pe = torch.zeros(num_positions, dim, dtype=torch.float64)
    for t in range(num_positions):
        for i in range(dim // 2):
            pe[t, 2 * i] = math.sin(t / 10000 ** (2 * i / dim))
            pe[t, 2 * i + 1] = math.cos(t / 10000 ** (2 * i / dim))
    return pe


def table_outer(num_positions, dim):
    inv = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2) / dim)
    angle = torch.outer(torch.arange(num_positions).double(), inv.double())
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)


def table_per_column(num_positions, dim):
    t = torch.arange(num_positions, dtype=torch.float32)[:, None]
    j = torch.arange(dim, dtype=torch.float32)[None, :]
    angle = t / 10000 ** (j / dim)
    pe = angle.sin()
    pe[:, 1::2] = angle[:, 1::2].cos()
    return pe


def table_times(num_positions, dim):  # multiplies by 10000 ** (2i / dim), in float32
    t = torch.arange(num_positions, dtype=torch.float32)[:, None]
    angle = t * 10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)


def table_pairs_from_one(num_positions, dim):  # 2i runs over 2, 4, ..., dim
    t = torch.arange(num_positions, dtype=torch.float32)[:, None]
    angle = t / 10000 ** (torch.arange(2, dim + 1, 2, dtype=torch.float32) / dim)
    return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)


def table_integer(num_positions, dim):
    pe = torch.zeros(num_positions, dim, dtype=torch.long)
    pe[:, 1::2] = 1
    return pe


def table_row_loop(num_positions, dim):  # vectorised over pairs, a loop over rows
    pe = torch.zeros(num_positions, dim)
    frequencies = 10000 ** (-torch.arange(0, dim, 2) / dim)
    for t in range(num_positions):
        pe[t, 0::2] = torch.sin(t * frequencies)
        pe[t, 1::2] = torch.cos(t * frequencies)
    return pe


def table_comprehension(num_positions, dim):  # a loop written as a comprehension
    rows = [
        [
            math.sin(t / 10000 ** (j // 2 * 2 / dim))
            if j % 2 == 0
            else math.cos(t / 10000 ** (j // 2 * 2 / dim))
            for j in range(dim)
        ]
        for t in range(num_positions)
    ]
    return torch.tensor(rows)


def _column_of(t, i, dim):  # a helper: the loop hides in another function
    return math.sin(t / 10000 ** (2 * i / dim)), math.cos(t / 10000 ** (2 * i / dim))


def table_helper_loop(num_positions, dim):
    pe = torch.zeros(num_positions, dim)
    for t in range(num_positions):
        for i in range(dim // 2):
            pe[t, 2 * i], pe[t, 2 * i + 1] = _column_of(t, i, dim)
    return pe


def table_float64_inside(num_positions, dim):  # correct: float64 inside, no loop
    angle = torch.arange(num_positions, dtype=torch.float64)[:, None] * torch.pow(
        10000.0, -torch.arange(0, dim, 2, dtype=torch.float64) / dim
    )
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(num_positions, dim)


def test_sinusoidal_right_answers_pass(capsys):
    assert_passes(check_sinusoidal_encoding, table, capsys)
    assert_passes(check_sinusoidal_encoding, table_outer, capsys)
    assert_passes(check_sinusoidal_encoding, table_float64_inside, capsys)


# --- 06.2 offset_rotation --------------------------------------------------------------


def rotation(delta, dim, transpose=False, base=10000, exponent=2):
    blocks = []
    for i in range(dim // 2):
        b = delta / base ** (exponent * i / dim)
        block = torch.tensor([[math.cos(b), math.sin(b)], [-math.sin(b), math.cos(b)]])
        blocks.append(block.T if transpose else block)
    return torch.block_diag(*blocks)


def rotation_angle(delta, dim, angle):
    """Blocks with the right layout and a wrong angle(delta, i, dim)."""
    blocks = []
    for i in range(dim // 2):
        b = angle(delta, i, dim)
        blocks.append(
            torch.tensor([[math.cos(b), math.sin(b)], [-math.sin(b), math.cos(b)]])
        )
    return torch.block_diag(*blocks)


def rotation_on_halves(delta, dim):  # block i on rows/columns (i, i + dim/2)
    right, half = rotation(delta, dim), dim // 2
    moved = torch.zeros(dim, dim)
    for i in range(half):
        for r, rr in ((0, i), (1, i + half)):
            for k, kk in ((0, i), (1, i + half)):
                moved[rr, kk] = right[2 * i + r, 2 * i + k]
    return moved


def rotation_blocks_only(delta, dim):
    return rotation(delta, dim).reshape(dim // 2, 2, dim)[:, :, :2]


def rotation_abs(delta, dim):  # right for delta >= 0, R_|delta| for negative offsets
    return rotation(abs(delta), dim)


def rotation_repeated(delta, dim):  # R_1 multiplied delta times: range(-5) is empty
    R = torch.eye(dim)
    for _ in range(delta):
        R = R @ rotation(1, dim)
    return R


def test_offset_rotation_right_answers_pass(capsys):
    assert_passes(check_offset_rotation, rotation, capsys)
    assert_passes(check_offset_rotation, lambda d, n: rotation_matrix(d, n), capsys)


# --- 06.3 apply_rope -------------------------------------------------------------------


def rope(x, positions, sign=1, halves=False, exponent=2, base=10000, shift=0):
    dim = x.shape[-1]
    theta = (
        sign
        * (positions[:, None] + shift)
        / base ** (exponent * torch.arange(dim // 2) / dim)
    )
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    if halves:
        a, b = x[..., : dim // 2], x[..., dim // 2 :]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    out = torch.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * cos - x[..., 1::2] * sin
    out[..., 1::2] = x[..., 0::2] * sin + x[..., 1::2] * cos
    return out


def rope_complex(x, positions):
    dim = x.shape[-1]
    z = torch.view_as_complex(
        x.double().reshape(*x.shape[:-1], dim // 2, 2).contiguous()
    )
    theta = positions[:, None].double() * 10000.0 ** (-torch.arange(0, dim, 2) / dim)
    return (
        torch.view_as_real(z * torch.polar(torch.ones_like(theta), theta))
        .flatten(-2)
        .to(x.dtype)
    )


def rope_via_rotate_half(x, positions):
    """The rotate-half layout, applied after moving the pairs to the halves and back."""
    dim = x.shape[-1]
    order = torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])
    rotated = rope(x[..., order], positions, halves=True)
    return rotated[..., torch.argsort(order)]


def rope_times(x, positions):  # multiplies by 10000 ** (2i / dim)
    dim = x.shape[-1]
    theta = positions[:, None] * 10000 ** (torch.arange(0, dim, 2) / dim)
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)


def rope_cat(x, positions):  # the right pairs, written back as two halves
    dim = x.shape[-1]
    theta = positions[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    return torch.cat([even * cos - odd * sin, even * sin + odd * cos], dim=-1)


def rope_tiled_angles(x, positions):  # cos/sin tiled with cat, pairs interleaved
    dim = x.shape[-1]
    theta = positions[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
    theta = torch.cat([theta, theta], dim=-1).to(x.dtype)
    partner = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    return x * theta.cos() + partner * theta.sin()


def rope_every_two(x, positions, cast_angles=False):  # GPT-J's rotate_every_two
    dim = x.shape[-1]
    theta = positions[:, None] / 10000 ** (torch.arange(0, dim, 2) / dim)
    theta = theta.repeat_interleave(2, dim=-1)
    if (
        cast_angles
    ):  # rounds the angles themselves to x's dtype: wrong in half precision
        theta = theta.to(x.dtype)
    partner = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    return x * theta.cos().to(x.dtype) + partner * theta.sin().to(x.dtype)


def rope_three_axes_only(x, positions):  # "x is (batch, seq, dim)"
    batch, seq, dim = x.shape
    return rope(x, positions)


def rope_per_dim(x, positions):
    dim = x.shape[-1]
    theta = positions[:, None] / 10000 ** (torch.arange(dim) / dim)
    partner = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    return x * theta.cos() + partner * theta.sin()


def rope_float32(x, positions):
    return rope(x.float(), positions)


def rope_float64_out(x, positions):  # computes in float64 and forgets to cast back
    return rope(x.double(), positions)


def rope_angles_in_x_dtype(x, positions):  # angles rounded to x's dtype (bf16, fp16)
    dim = x.shape[-1]
    theta = positions.to(x.dtype)[:, None] * 10000 ** (
        -torch.arange(0, dim, 2, dtype=x.dtype) / dim
    )
    even, odd = x[..., 0::2], x[..., 1::2]
    cos, sin = theta.cos(), theta.sin()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)


def rope_detached(x, positions):
    return rope(x, positions).detach()


def rope_not_a_rotation(x, positions):
    theta = positions[:, None] / 10000 ** (2 * torch.arange(x.shape[-1]) / x.shape[-1])
    return x * theta.cos() + x * theta.sin()


def test_apply_rope_right_answers_pass(capsys):
    assert_passes(check_apply_rope, rope, capsys)
    assert_passes(check_apply_rope, apply_rope, capsys)
    assert_passes(check_apply_rope, rope_complex, capsys)
    assert_passes(check_apply_rope, rope_via_rotate_half, capsys)
    assert_passes(check_apply_rope, rope_every_two, capsys)


# --- 06.4 rope_self_attention ----------------------------------------------------------


def attention(x, W_q, W_k, W_v, rotate="qk", scale=None, rotate_output=False, start=0):
    positions = torch.arange(start, start + x.shape[-2])
    if "x" in rotate:
        x = apply_rope(x, positions)
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    q = apply_rope(q, positions) if "q" in rotate else q
    k = apply_rope(k, positions) if "k" in rotate else k
    v = apply_rope(v, positions) if "v" in rotate else v
    scores = q @ k.transpose(-2, -1) / math.sqrt(scale or W_q.shape[1])
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    return (apply_rope(out, positions) if rotate_output else out), weights


def attention_variant(x, W_q, W_k, W_v, scale=None, softmax_dim=-1, causal=False):
    positions = torch.arange(x.shape[-2])
    q = apply_rope(x @ W_q, positions)
    k = apply_rope(x @ W_k, positions)
    scores = q @ k.transpose(-2, -1) / math.sqrt(scale or W_q.shape[1])
    if causal:
        n = x.shape[-2]
        allowed = torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim)
    return weights @ (x @ W_v), weights


def attention_einsum(x, W_q, W_k, W_v):  # float64 inside, cast back to x's dtype
    dtype, x = x.dtype, x.double()
    positions = torch.arange(x.shape[-2])
    q = apply_rope(torch.einsum("...nd,dk->...nk", x, W_q.double()), positions)
    k = apply_rope(torch.einsum("...nd,dk->...nk", x, W_k.double()), positions)
    scores = torch.einsum("...nk,...mk->...nm", q, k) / math.sqrt(q.shape[-1])
    weights = scores.softmax(-1)
    out = weights @ (x @ W_v.double())
    return out.to(dtype), weights.to(dtype)


def attention_in_float64(x, W_q, W_k, W_v):  # right numbers, but float64 for float32
    return attention(x.double(), W_q.double(), W_k.double(), W_v.double())


def attention_float64_cast_back(x, W_q, W_k, W_v):  # correct: float64 inside, cast back
    out, weights = attention_in_float64(x, W_q, W_k, W_v)
    return out.to(x.dtype), weights.to(x.dtype)


def attention_weights_transposed(x, W_q, W_k, W_v):
    out, weights = attention(x, W_q, W_k, W_v)
    return out, weights.transpose(-2, -1)


def test_rope_self_attention_right_answers_pass(capsys):
    assert_passes(check_rope_self_attention, attention, capsys)
    assert_passes(check_rope_self_attention, attention_einsum, capsys)
    assert_passes(check_rope_self_attention, attention_float64_cast_back, capsys)
    # positions from 5 (say, after a cache) give the same scores: only t - u matters
    assert_passes(check_rope_self_attention, lambda *a: attention(*a, start=5), capsys)


def rope_dim_fixed_at_8(x, positions):
    """Frequencies built for dim = 8 whatever x's dim (at dim 6 they equal base 1000's)."""
    return rope(x, positions, base=10000.0 ** (x.shape[-1] / 8))


MISTAKES = [
    # 06.1
    (check_sinusoidal_encoding, table_loops, "no Python loop"),
    (check_sinusoidal_encoding, table_row_loop, "no Python loop"),
    (check_sinusoidal_encoding, table_comprehension, "no Python loop"),
    (check_sinusoidal_encoding, table_helper_loop, "no Python loop"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d, swap=True), "swapped"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d, exponent=1), "2i/d"),
    (check_sinusoidal_encoding, table_per_column, "belongs to the pair"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d, start=1), "count from 0"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d, base=1000), "not 1000"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d, halves=True), "interleaves"),
    (check_sinusoidal_encoding, table_integer, "integer dtype"),
    (check_sinusoidal_encoding, table_times, "DIVIDE by the power"),
    (check_sinusoidal_encoding, table_pairs_from_one, "pairs count from i = 0"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d)[None], "no batch axis"),
    (check_sinusoidal_encoding, lambda n, d: table(n, d).T, "One row per position"),
    # 06.2
    (check_offset_rotation, lambda d, n: rotation(d, n, transpose=True), "backwards"),
    (check_offset_rotation, lambda d, n: rotation(d, n, base=1000), "not 1000"),
    (
        check_offset_rotation,
        lambda d, n: rotation(d, n, exponent=1),
        "i counting pairs",
    ),
    (check_offset_rotation, lambda d, n: torch.eye(n), "identity"),
    (check_offset_rotation, rotation_blocks_only, "(dim, dim)"),
    (
        check_offset_rotation,
        lambda d, n: rotation_angle(d, n, lambda d, i, dim: d),
        "angle of pair 0",
    ),
    (
        check_offset_rotation,
        lambda d, n: rotation_angle(d, n, lambda d, i, dim: d * 10000 ** (2 * i / dim)),
        "do not multiply",
    ),
    (
        check_offset_rotation,
        lambda d, n: rotation_angle(
            d, n, lambda d, i, dim: d / 10000 ** (2 * (i + 1) / dim)
        ),
        "pairs count from i = 0",
    ),
    (check_offset_rotation, rotation_on_halves, "i and i + dim/2"),
    (check_offset_rotation, rotation_abs, "abs(delta)"),
    (check_offset_rotation, rotation_repeated, "delta = -5"),
    # 06.3
    (check_apply_rope, lambda x, p: rope(x, p, sign=-1), "-theta"),
    (check_apply_rope, lambda x, p: rope(x, p, halves=True), "rotate-half"),
    (check_apply_rope, lambda x, p: rope(x, p, exponent=1), "i counting pairs"),
    (check_apply_rope, rope_per_dim, "angle belongs to the pair"),
    (check_apply_rope, lambda x, p: rope(x, p, base=1000), "not 1000"),
    (
        check_apply_rope,
        lambda x, p: rope(x, torch.arange(len(p))),
        "positions you are given",
    ),
    (check_apply_rope, lambda x, p: rope(x, p, shift=1), "not positions[t] + 1"),
    (check_apply_rope, lambda x, p: x.clone(), "equals the input"),
    (check_apply_rope, rope_float32, "dtype float32, but the input was float64"),
    (check_apply_rope, rope_float64_out, "promises the input's dtype"),
    (check_apply_rope, rope_angles_in_x_dtype, "in float32 or float64"),
    (
        check_apply_rope,
        lambda x, p: rope_every_two(x, p, cast_angles=True),
        "cast only cos and sin",
    ),
    (check_apply_rope, rope_detached, "no gradient"),
    (check_apply_rope, rope_not_a_rotation, "length"),
    (check_apply_rope, rope_times, "do not multiply"),
    (check_apply_rope, rope_cat, "interleaved"),
    (check_apply_rope, rope_tiled_angles, "repeat_interleave(2"),
    (check_apply_rope, rope_three_axes_only, "any number of leading axes"),
    (check_apply_rope, rope_dim_fixed_at_8, "read dim as x.shape[-1]"),
    # 06.4
    (
        check_rope_self_attention,
        lambda *a: attention(*a, rotate="qkv"),
        "not the values",
    ),
    (
        check_rope_self_attention,
        lambda *a: attention(*a, rotate="x"),
        "not the input x",
    ),
    (check_rope_self_attention, lambda *a: attention(*a, rotate="q"), "keys too"),
    (check_rope_self_attention, lambda *a: attention(*a, rotate="k"), "queries too"),
    (check_rope_self_attention, lambda *a: attention(*a, rotate=""), "no rotation"),
    (check_rope_self_attention, lambda *a: attention(*a, scale=6), "sqrt(d_k)"),
    (check_rope_self_attention, lambda *a: attention(*a, scale=1), "not scaled"),
    (check_rope_self_attention, lambda *a: attention_variant(*a, scale=2), "sqrt(d_v)"),
    (check_rope_self_attention, attention_weights_transposed, "weights are transposed"),
    (check_rope_self_attention, attention_in_float64, "promises the input's dtype"),
    (
        check_rope_self_attention,
        lambda *a: attention_variant(*a, softmax_dim=-2),
        "over the keys",
    ),
    (
        check_rope_self_attention,
        lambda *a: attention_variant(*a, causal=True),
        "no mask",
    ),
    (
        check_rope_self_attention,
        lambda *a: attention(*a, rotate_output=True),
        "do not rotate the output",
    ),
    # 06.4 calls the learner's apply_rope: a wrong one is blamed, not 06.4's answer
    (
        check_rope_self_attention,
        with_globals(attention, apply_rope=lambda x, p: rope(x, p, sign=-1)),
        "your apply_rope does not pass Exercise 06.3 yet",
    ),
    (
        check_rope_self_attention,
        with_globals(attention, apply_rope=lambda x, p: rope(x.double(), p)),
        "your apply_rope does not pass Exercise 06.3 yet",
    ),
]


def rope_angles_in_float32(x, positions):
    """Angles computed in float32 even for a float64 x: right to float32 precision."""
    dim = x.shape[-1]
    theta = positions[:, None].float() * 10000 ** (
        -torch.arange(0, dim, 2).float() / dim
    )
    cos, sin = theta.cos().to(x.dtype), theta.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], -1).flatten(-2)


def test_apply_rope_float32_angles_pass(capsys):
    assert_passes(check_apply_rope, rope_angles_in_float32, capsys)
