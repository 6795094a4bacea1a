"""Checkers for Lab 06: positional encoding (sinusoidal table, rotation identity, RoPE)."""

from __future__ import annotations

import math
import os
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..positional import (
    apply_rope,
    block_rotation,
    rotation_matrix,
    sinusoidal_encoding,
)
from .core import Checker, exercise, random_generator

# ---------------------------------------------------------------------------------------
# Wrong versions of the reference, one mistake each, to recognise a learner's answer.


def _angles(positions: Tensor, dim: int, exponent: str, base: float) -> Tensor:
    """``(len(positions), dim/2)`` angles, or ``(len, dim)`` for ``exponent="per-dim"``."""
    positions = positions.to(torch.float64)[:, None]
    if exponent == "times":  # multiplied by base^(2i/d) instead of divided
        return positions * base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    if exponent == "i from 1":  # pairs counted from 1: 2, 4, ..., dim
        return positions * base ** (
            -torch.arange(2, dim + 1, 2, dtype=torch.float64) / dim
        )
    if exponent == "2i/d":
        return positions * base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    if (
        exponent == "tiled"
    ):  # (len, dim): the pair angles tiled, column j gets pair j % (d/2)
        pairs = positions * base ** (
            -torch.arange(0, dim, 2, dtype=torch.float64) / dim
        )
        return torch.cat([pairs, pairs], dim=-1)
    if exponent == "i/d":
        return positions * base ** (-torch.arange(dim // 2, dtype=torch.float64) / dim)
    # "per-dim": dimension j gets its own frequency base^(-j/d), pairs ignored
    return positions * base ** (-torch.arange(dim, dtype=torch.float64) / dim)


def table_variant(
    num_positions: int,
    dim: int,
    swap: bool = False,
    exponent: str = "2i/d",
    base: float = 10000.0,
    start: int = 0,
    halves: bool = False,
) -> Tensor:
    """The sinusoidal table with one mistake (the defaults give the right table)."""
    positions = torch.arange(start, start + num_positions)
    angles = _angles(positions, dim, exponent, base)
    if exponent == "per-dim":
        table = torch.empty(num_positions, dim, dtype=torch.float64)
        first, second = (
            (angles.cos(), angles.sin()) if swap else (angles.sin(), angles.cos())
        )
        table[:, 0::2] = first[:, 0::2]
        table[:, 1::2] = second[:, 1::2]
        return table
    first, second = (
        (angles.cos(), angles.sin()) if swap else (angles.sin(), angles.cos())
    )
    if halves:
        return torch.cat([first, second], dim=-1)
    return torch.stack([first, second], dim=-1).reshape(num_positions, dim)


def rope_variant(
    x: Tensor,
    positions: Tensor,
    sign: float = 1.0,
    halves: bool = False,
    exponent: str = "2i/d",
    base: float = 10000.0,
    interleave: bool = True,
) -> Tensor:
    """apply_rope with one mistake (the defaults give the right rotation), in float64."""
    x = x.to(torch.float64)
    dim = x.shape[-1]
    angles = sign * _angles(positions, dim, exponent, base)
    if exponent in ("per-dim", "tiled"):
        # cos/sin per dimension j, with the interleaved partner (-x[2i+1], x[2i])
        partner = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
        return x * angles.cos() + partner * angles.sin()
    cos, sin = angles.cos(), angles.sin()
    if halves:
        a, b = x[..., : dim // 2], x[..., dim // 2 :]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    if not interleave:
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


# ---------------------------------------------------------------------------------------

TABLE_MISTAKES = [
    (
        {"swap": True},
        "sin and cos are swapped: PE[t, 2i] (even columns) is the sine, PE[t, 2i+1] "
        "(odd columns) the cosine. Row 0 should read 0, 1, 0, 1, ...",
    ),
    (
        {"exponent": "i/d"},
        "the exponent is 2i/d, where i counts pairs (i = 0 .. dim/2 - 1): pair i uses "
        "10000 ** (2 * i / dim). You used i / dim, so the wavelengths grow too slowly.",
    ),
    (
        {"exponent": "per-dim"},
        "the frequency belongs to the pair, not to the column: columns 2i and 2i+1 share "
        "10000 ** (2 * i / dim). You gave column j its own 10000 ** (j / dim), so the "
        "cosine of a pair runs at a different speed from its sine.",
    ),
    (
        {"start": 1},
        "positions count from 0: row 0 is t = 0 (sin 0 = 0, cos 0 = 1). Use "
        "torch.arange(num_positions), not arange(1, num_positions + 1).",
    ),
    (
        {"base": 1000.0},
        "the base is 10000 (ten thousand), not 1000.",
    ),
    (
        {"halves": True},
        "you put all the sines in the first half and all the cosines in the second. "
        "The statement interleaves them: column 2i is sin, column 2i+1 is cos.",
    ),
    (
        {"exponent": "times"},
        "the angle is t * w_i = t / 10000 ** (2i / dim): DIVIDE by the power of 10000 "
        "(or multiply by 10000 ** (-2i / dim)), so that later pairs turn more slowly.",
    ),
    (
        {"exponent": "i from 1"},
        "pairs count from i = 0: pair 0 (columns 0 and 1) has w_0 = 1, so PE[t, 0] = "
        "sin(t). Use torch.arange(0, dim, 2) for 2i, not arange(2, dim + 1, 2).",
    ),
]


TABLE_MISTAKES_BY_NAME = [
    (wrong.get("exponent", ""), hint) for wrong, hint in TABLE_MISTAKES
]


# Code that is not the learner's: its lines are not counted by ``lines_run``.
_LIBRARY_DIRS = tuple(
    os.path.realpath(d)
    for d in {
        os.path.dirname(torch.__file__),
        os.path.dirname(np.__file__),
        os.path.dirname(os.path.dirname(__file__)),  # attention_kit
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
    }
)


def _is_library(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def lines_run(c: Checker, answer: Callable, *args: Any) -> tuple[Any, int | None]:
    """``(answer(*args), how many lines of the learner's code ran)``, through ``c.call``.

    Only lines outside torch, numpy, the standard library and attention_kit count, so a
    vectorised answer runs the same number of lines at every size and a Python loop
    runs more as the table grows. The count is ``None`` when another tracer (a debugger,
    coverage) is active: the rule is then not checked rather than fought over.
    """
    if sys.gettrace() is not None:
        return c.call(answer, *args), None
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame, event, arg):
        return None if _is_library(frame.f_code.co_filename) else local

    sys.settrace(tracer)
    try:
        result = c.call(answer, *args)
    finally:
        sys.settrace(None)
    return result, count


NO_LOOP_HINT = (
    "the statement asks for no Python loop, and yours runs more lines of code for a "
    "bigger table ({small} lines for {small_size}, {big} for {big_size}): build every "
    "angle at once, t = torch.arange(num_positions)[:, None] times the frequencies "
    "10000 ** (-torch.arange(0, dim, 2) / dim) (shape (1, dim / 2)), then fill the "
    "even columns with their sine and the odd ones with their cosine."
)


@exercise("06.1", "sinusoidal_encoding")
def check_sinusoidal_encoding(c: Checker, answer) -> None:
    _check_sinusoidal_values(c, answer)
    sizes = [(4, 2), (48, 32)]
    counts = [lines_run(c, answer, *size)[1] for size in sizes]
    if None not in counts:
        small, big = counts
        c.expect(
            big <= small + 4,
            NO_LOOP_HINT.format(
                small=small, big=big, small_size=sizes[0], big_size=sizes[1]
            ),
        )


def _check_sinusoidal_values(c: Checker, answer) -> None:
    for num_positions, dim in [(50, 16), (1, 2), (7, 2), (3, 6)]:
        what = f"sinusoidal_encoding({num_positions}, {dim})"
        table = c.tensor(
            c.call(answer, num_positions, dim),
            what,
            shape=(num_positions, dim),
            shape_hint="One row per position and one column per dimension: "
            "(num_positions, dim), with no batch axis in front.",
        )
        expected = sinusoidal_encoding(num_positions, dim, dtype=torch.float64)
        mistakes = [
            (table_variant(num_positions, dim, **wrong), hint)
            for wrong, hint in TABLE_MISTAKES
        ]
        # Multiplying by 10000 ** (2i / dim) gives angles in the thousands, whose sine
        # float32 rounds far beyond atol: recognise that mistake with a loose tolerance.
        times = table_variant(num_positions, dim, exponent="times")
        if (
            not torch.allclose(table, expected, atol=1e-5)
            and not torch.allclose(times, expected, atol=5e-2)
            and torch.allclose(table, times, atol=5e-2)
        ):
            c.fail(dict(TABLE_MISTAKES_BY_NAME)["times"])
        c.expect_close(
            table,
            expected,
            f"{what} is wrong: PE[t, 2i] = sin(t / 10000 ** (2i / dim)), "
            "PE[t, 2i+1] = cos(the same angle), t from 0.",
            mistakes=mistakes,
            atol=1e-5,
        )


# ---------------------------------------------------------------------------------------


@exercise("06.2", "offset_rotation")
def check_offset_rotation(c: Checker, answer) -> None:
    for delta, dim in [(3, 8), (1, 2), (0, 4), (-5, 6), (40, 16)]:
        what = f"offset_rotation({delta}, {dim})"
        matrix = c.tensor(
            c.call(answer, delta, dim),
            what,
            shape=(dim, dim),
            shape_hint="R_delta acts on a row of the table, a vector of dim entries: "
            "it is (dim, dim).",
        )
        table = sinusoidal_encoding(80, dim, dtype=torch.float64)
        t = torch.arange(max(0, -delta), 80 - max(0, delta))
        moved = table[t] @ matrix.T  # R @ PE[t] for every t at once
        expected = rotation_matrix(delta, dim)
        c.expect_close(
            matrix,
            expected,
            f"{what} does not map PE[t] to PE[t + delta]. Block i acts on "
            "(sin a, cos a) with a = t * w_i, b = delta * w_i: sin(a + b) = "
            "sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b.",
            mistakes=_rotation_mistakes(delta, dim, expected),
            atol=1e-6,
        )
        c.expect_close(
            moved,
            table[t + delta],
            f"{what}: R @ PE[t] should equal PE[t + delta] for every t.",
            atol=1e-6,
        )


def _rotation_mistakes(delta: int, dim: int, expected: Tensor) -> list:
    if delta < 0:
        # The offsets 3, 1 and 0 passed: a matrix for -delta now is a sign slip.
        backwards = (
            expected.T,
            f"for delta = {delta} your matrix is R_{-delta}: it moves forwards by "
            f"{-delta} instead of backwards. Your blocks are right for positive offsets; "
            "use delta with its sign (b = delta * w_i is negative here), not abs(delta) "
            "or a loop over range(delta).",
        )
    else:
        backwards = (
            expected.T,
            f"for delta = {delta} your matrix moves backwards: R @ PE[t] gives "
            "PE[t - delta]. Rows 2i and 2i+1 of block i are [cos b, sin b] and "
            "[-sin b, cos b] (the pair is (sin, cos), in that order).",
        )
    mistakes = [
        backwards,
        (
            _block_matrix(delta, dim, base=1000.0),
            "the base is 10000 (ten thousand), not 1000.",
        ),
        (
            _block_matrix(delta, dim, exponent="i/d"),
            "pair i turns at w_i = 10000 ** (-2i / dim), with i counting pairs; "
            "you used 10000 ** (-i / dim).",
        ),
    ]
    mistakes += [
        (
            _block_matrix(delta, dim, exponent="times"),
            "block i turns by b = delta * w_i = delta / 10000 ** (2i / dim): divide by "
            "the power of 10000, do not multiply.",
        ),
        (
            _block_matrix(delta, dim, exponent="i from 1"),
            "pairs count from i = 0: block 0 (rows and columns 0, 1) turns by b = delta "
            "* w_0 = delta.",
        ),
        (
            _halves_matrix(expected),
            "block i sits on rows and columns 2i and 2i+1 (neighbours), where the table "
            "keeps pair i; you put it on i and i + dim/2.",
        ),
    ]
    if delta != 0 and dim > 2:
        mistakes.append(
            (
                _block_matrix(delta, dim, exponent="same"),
                "every block turns by b = delta, the angle of pair 0; block i must turn "
                "by delta * w_i, w_i = 10000 ** (-2i / dim).",
            )
        )
    if delta < 0:
        mistakes.insert(
            0,
            (
                torch.eye(dim, dtype=torch.float64),
                f"for delta = {delta} your matrix is the identity, though the positive "
                "offsets passed: a loop over range(delta) runs no step for a negative "
                "offset. Compute each block's angle b = delta * w_i directly.",
            ),
        )
    elif delta != 0:
        mistakes.append(
            (
                torch.eye(dim, dtype=torch.float64),
                "the identity maps PE[t] to itself; R_delta must rotate pair i by the "
                "angle delta * w_i.",
            )
        )
    return mistakes


def _halves_matrix(expected: Tensor) -> Tensor:
    """The right blocks, moved to rows and columns (i, i + dim/2)."""
    dim = expected.shape[0]
    order = torch.cat([torch.arange(0, dim, 2), torch.arange(1, dim, 2)])
    return expected[order][:, order]


def _block_matrix(
    delta: float, dim: int, exponent: str = "2i/d", base=10000.0
) -> Tensor:
    if exponent == "same":
        b = torch.full((dim // 2,), float(delta), dtype=torch.float64)
    else:
        b = _angles(torch.tensor([delta]), dim, exponent, base)[0]
    return block_rotation(b)


# ---------------------------------------------------------------------------------------

ROPE_MISTAKES = [
    (
        {"sign": -1.0},
        "you rotate by -theta (clockwise). The statement's rotation is "
        "out[2i] = x[2i] cos - x[2i+1] sin, out[2i+1] = x[2i] sin + x[2i+1] cos.",
    ),
    (
        {"halves": True},
        "you paired dimension i with i + dim/2 (the rotate-half layout of GPT-NeoX and "
        "Hugging Face's Llama). The statement pairs neighbours: (x[2i], x[2i+1]), "
        "i.e. x[..., 0::2] with x[..., 1::2], and writes the results back interleaved.",
    ),
    (
        {"exponent": "i/d"},
        "pair i turns at w_i = 10000 ** (-2i / dim), with i counting pairs; you used "
        "10000 ** (-i / dim).",
    ),
    (
        {"exponent": "per-dim"},
        "the angle belongs to the pair: x[2i] and x[2i+1] turn by the same "
        "t * w_i = t * 10000 ** (-2i / dim). You gave dimension j its own frequency "
        "10000 ** (-j / dim), which is not a rotation.",
    ),
    (
        {"base": 1000.0},
        "the base is 10000 (ten thousand), not 1000.",
    ),
    (
        {"exponent": "times"},
        "the angle is positions[t] * w_i = positions[t] / 10000 ** (2i / dim): divide "
        "by the power of 10000, do not multiply.",
    ),
    (
        {"exponent": "tiled"},
        "x[2i] and x[2i+1] must turn by the same angle, that of pair i: repeat each "
        "pair's cos and sin twice side by side (repeat_interleave(2, dim=-1)), not the "
        "whole row twice (torch.cat([theta, theta]), the layout of rotate-half).",
    ),
    (
        {"interleave": False},
        "you rotated the right pairs but wrote the results as two halves (torch.cat). "
        "Put them back interleaved: out[2i] and out[2i+1] are the rotated pair i, "
        "torch.stack([...], dim=-1).flatten(-2).",
    ),
]


@exercise("06.3", "apply_rope")
def check_apply_rope(c: Checker, answer) -> None:
    g = random_generator(603)
    cases = [
        ((2, 5, 8), torch.arange(5), "x (2, 5, 8), positions 0..4"),
        (
            (2, 3, 4, 8),
            torch.arange(5, 9),
            "x (batch 2, heads 3, 4, 8), positions 5..8",
        ),
        (
            (4, 6),
            torch.tensor([0, 3, 7, 2]),
            "unbatched x (4, 6), positions [0, 3, 7, 2]",
        ),
        ((1, 1, 2), torch.tensor([9]), "x (1, 1, 2), positions [9]"),
    ]
    for shape, positions, what in cases:
        x = torch.randn(*shape, generator=g)
        raw = c.call(
            answer,
            x,
            positions,
            error_hint="x may have any number of leading axes: (seq, dim), "
            "(batch, seq, dim), (batch, heads, seq, dim). Read dim as x.shape[-1], "
            "the sequence as x.shape[-2], and slice with x[..., 0::2].",
        )
        out = c.tensor(
            raw,
            f"apply_rope on {what}",
            shape=shape,
            shape_hint="RoPE rotates each vector in place: the output has the shape of x.",
            dtype=x.dtype,
        )
        dim = shape[-1]
        # 10000 ** (-2i / 8) is 10000 ** (dim / 8) to the power -2i / dim; checked first
        # because at dim = 6 it equals base 1000, whose hint would mislead.
        mistakes = (
            []
            if dim == 8
            else [
                (
                    rope_variant(x, positions, base=10000.0 ** (dim / 8)),
                    f"x has dim = {dim} here, but your frequencies look built for dim = 8: "
                    "read dim as x.shape[-1] and use 10000 ** (-2i / dim).",
                )
            ]
        )
        mistakes += [
            (rope_variant(x, positions, **w), hint) for w, hint in ROPE_MISTAKES
        ]
        mistakes += [
            (
                rope_variant(x, torch.arange(len(positions))),
                "use the positions you are given: row t is rotated by positions[t] * w_i, "
                "not by t (with a KV cache the new rows sit at positions 5, 6, ...).",
            ),
            (
                rope_variant(x, positions + 1),
                "positions count from 0 and are given: rotate row t by positions[t], "
                "not positions[t] + 1.",
            ),
            (
                x.to(torch.float64),
                "the output equals the input: rotate each pair by positions[t] * w_i.",
            ),
        ]
        c.expect_close(
            out.norm(dim=-1),
            x.double().norm(dim=-1),
            f"apply_rope on {what} changes the length of vectors; a rotation keeps it. "
            "Each pair becomes (a cos - b sin, a sin + b cos).",
            mistakes=[(wrong.norm(dim=-1), hint) for wrong, hint in mistakes],
        )
        c.expect_close(
            out,
            apply_rope(x.double(), positions),
            f"apply_rope on {what} is wrong: rotate pair (x[2i], x[2i+1]) of row t "
            "by positions[t] * 10000 ** (-2i / dim).",
            mistakes=mistakes,
        )
    x = torch.randn(3, 4, 8, generator=g, dtype=torch.float64)
    raw = c.call(answer, x, torch.arange(4))
    out = c.tensor(raw, "apply_rope on float64 x", shape=x.shape, dtype=x.dtype)
    c.expect_close(
        out,
        apply_rope(x, torch.arange(4)),
        "apply_rope on a float64 x is wrong.",
    )
    _check_rope_half_precision(c, answer, g)
    x = torch.randn(2, 3, 8, generator=g, requires_grad=True)
    out = c.call(answer, x, torch.arange(3))
    c.gradients(
        out,
        [x],
        "apply_rope's backward pass",
        "RoPE sits inside a trained model, so gradients must flow through it.",
    )


def _check_rope_half_precision(c: Checker, answer, g: torch.Generator) -> None:
    """Half-precision x at large positions: the angles must be computed in float32 or
    float64. bfloat16 keeps 8 bits of mantissa, so 8191 * w_0 is rounded to 8192 and
    the angles of later pairs are off by up to a radian or more."""
    positions = torch.tensor([1000, 2047, 4095, 8191])
    for dtype, tolerance in ((torch.bfloat16, 0.06), (torch.float16, 0.02)):
        x = torch.randn(2, 4, 8, generator=g).to(dtype)
        what = f"apply_rope on a {dtype} x at positions {positions.tolist()}"
        raw = c.call(answer, x, positions)
        out = c.tensor(raw, what, shape=x.shape, dtype=dtype)
        expected = apply_rope(x.double(), positions)
        gap = (out - expected).abs().max().item()
        c.expect(
            gap <= tolerance,
            f"{what} is off by up to {gap:.2g} (rounding x's dtype explains at most "
            f"{tolerance}). Compute the angles positions * w_i in float32 or float64 "
            f"whatever x's dtype, and cast only cos and sin to x.dtype: in {dtype} the "
            "position 8191 itself is not representable, and an angle of thousands of "
            "radians rounded to 8 or 11 bits is wrong by whole radians.",
        )


# ---------------------------------------------------------------------------------------


def _attention_variant(
    x: Tensor,
    W_q: Tensor,
    W_k: Tensor,
    W_v: Tensor,
    rotate: str = "qk",
    scale_by: int | None = None,
    softmax_dim: int = -1,
    causal: bool = False,
) -> tuple[Tensor, Tensor]:
    """RoPE self-attention with one mistake; ``rotate`` names what gets rotated."""
    x, W_q, W_k, W_v = (t.double() for t in (x, W_q, W_k, W_v))
    positions = torch.arange(x.shape[-2])
    if "x" in rotate:
        x = apply_rope(x, positions)
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    if "q" in rotate:
        q = apply_rope(q, positions)
    if "k" in rotate:
        k = apply_rope(k, positions)
    if "v" in rotate:
        v = apply_rope(v, positions)
    scale = math.sqrt(scale_by if scale_by is not None else W_q.shape[-1])
    scores = q @ k.transpose(-2, -1) / scale
    if causal:
        n = scores.shape[-1]
        future = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim)
    return weights @ v, weights


@exercise("06.4", "rope_self_attention")
def check_rope_self_attention(c: Checker, answer) -> None:
    g = random_generator(604)
    dim, d_k, d_v = 6, 4, 2
    W_q, W_k, W_v = (torch.randn(dim, d, generator=g) for d in (d_k, d_k, d_v))
    cases = [
        (torch.randn(2, 5, dim, generator=g), "x of shape (2, 5, 6)"),
        (torch.randn(5, dim, generator=g), "unbatched x of shape (5, 6)"),
        (torch.randn(1, 1, dim, generator=g), "x of shape (1, 1, 6)"),
        # float64 (inputs and weights), so that rounding cannot decide near-ties
        (
            8 * torch.randn(1, 7, dim, generator=g, dtype=torch.float64),
            "float64 x with scores spread over > 300",
        ),
    ]
    for x, what in cases:
        if x.dtype == torch.float64:
            W_q, W_k, W_v = W_q.double(), W_k.double(), W_v.double()
        n = x.shape[-2]
        output, weights = c.pair(
            c.call(answer, x, W_q, W_k, W_v), f"(output, weights) for {what}"
        )
        weights = c.tensor(
            weights,
            f"weights for {what}",
            shape=(*x.shape[:-1], n),
            shape_hint="One row per query and one column per key: (..., seq, seq).",
            dtype=x.dtype,
        )
        output = c.tensor(
            output,
            f"output for {what}",
            shape=(*x.shape[:-1], d_v),
            shape_hint="The output has one row per token and d_v = W_v.shape[1] columns.",
            dtype=x.dtype,
        )
        expected_output, expected_weights = _attention_variant(x, W_q, W_k, W_v)
        wrong = [
            (
                "x",
                "rotate the queries and keys after the projections, not the input x: "
                "(R x) W_q is not R (x W_q), so the scores would not depend on t - u alone.",
            ),
            ("q", "rotate the keys too: only <R_t q, R_u k> depends on t - u alone."),
            (
                "k",
                "rotate the queries too: only <R_t q, R_u k> depends on t - u alone.",
            ),
            ("", "no rotation: apply apply_rope to the queries and the keys."),
        ]
        mistakes = [(_attention_variant(x, W_q, W_k, W_v, r)[1], h) for r, h in wrong]
        mistakes.append(
            (
                _attention_variant(x, W_q, W_k, W_v, scale_by=dim)[1],
                "scale by sqrt(d_k), the size of the queries and keys (W_q.shape[1]), "
                "not by sqrt of the input width.",
            )
        )
        mistakes.append(
            (
                _attention_variant(x, W_q, W_k, W_v, scale_by=1)[1],
                "the scores are not scaled: divide by sqrt(d_k).",
            )
        )
        mistakes.append(
            (
                _attention_variant(x, W_q, W_k, W_v, scale_by=d_v)[1],
                "scale by sqrt(d_k), the size of the queries and keys (W_q.shape[1]), "
                "not by sqrt(d_v) (W_v.shape[1]).",
            )
        )
        if n > 1:
            mistakes += [
                (
                    _attention_variant(x, W_q, W_k, W_v, softmax_dim=-2)[1],
                    "the softmax runs over the keys, the last axis (dim=-1): each "
                    "query's row of weights sums to 1.",
                ),
                (
                    expected_weights.transpose(-2, -1),
                    "the weights are transposed: row i holds query i's weights over the "
                    "keys (softmax over dim=-1); return them as they were before you "
                    "multiplied by the values, not .T.",
                ),
                (
                    _attention_variant(x, W_q, W_k, W_v, causal=True)[1],
                    "this exercise has no mask: every query sees every key. (The "
                    "position study below adds a causal mask; Lab 07 builds it.)",
                ),
            ]
        c.expect_close(
            weights,
            expected_weights,
            f"the weights for {what} should be softmax(R q . R k / sqrt(d_k)) with "
            "q = x W_q, k = x W_k rotated by their positions 0..seq-1.",
            mistakes=mistakes,
        )
        c.expect_close(
            output,
            expected_output,
            f"the output for {what} should be weights @ (x W_v), the values unrotated.",
            mistakes=[
                (
                    _attention_variant(x, W_q, W_k, W_v, "qkv")[0],
                    "rotate only the queries and the keys, not the values: the values "
                    "are what gets averaged, and rotating them tells the scores nothing.",
                ),
                (
                    apply_rope(expected_output, torch.arange(n)),
                    "do not rotate the output: only the queries and keys are rotated, "
                    "before the scores.",
                ),
            ],
        )
