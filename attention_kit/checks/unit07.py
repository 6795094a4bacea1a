"""Checkers for Lab 07: causal and padding masks, and a test for future leakage."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..masks import causal_mask, padded_causal_mask, padding_mask
from .core import Checker, describe, exercise, random_generator


def _bool_mask(
    c: Checker,
    value: Any,
    what: str,
    shape: tuple[int, ...],
    hint: str,
    meaning: str = "a mask in this course is boolean (True = may attend)",
) -> Tensor:
    """Check that ``value`` is a boolean tensor of ``shape``; return it on the CPU.
    ``meaning`` says which boolean convention the mask follows, for the dtype hint."""
    if not isinstance(value, Tensor):
        c.fail(f"{what} should be a torch.Tensor, but it is {describe(value)}.")
    if value.dtype != torch.bool:
        if value.is_floating_point() and bool(torch.isinf(value).any()):
            c.fail(
                f"{what} is a float mask with -inf entries: an additive mask (numbers "
                f"added to the scores) is another convention; {meaning}. Build it with "
                "a comparison or torch.tril on a boolean tensor."
            )
        if value.is_floating_point():
            c.fail(
                f"{what} has dtype {value.dtype}; {meaning}. A float 0/1 mask would be "
                "read as numbers ADDED to the scores by PyTorch. Build it with a "
                "comparison or call .bool() on it."
            )
        c.fail(
            f"{what} has dtype {value.dtype}; {meaning}. An integer 0/1 mask is not a "
            "boolean one (F.scaled_dot_product_attention accepts only bool or float "
            "masks). Build it with a comparison or call .bool() on it."
        )
    if tuple(value.shape) != shape:
        c.fail(f"{what} has shape {tuple(value.shape)}, expected {shape}. {hint}")
    c.passed += 1
    return value.detach().cpu()


def _expect_mask(
    c: Checker,
    actual: Tensor,
    expected: Tensor,
    hint: str,
    mistakes: list[tuple[Tensor, str]],
) -> None:
    """One check: two boolean masks are equal; a known wrong mask gives its own hint."""
    if torch.equal(actual, expected):
        c.passed += 1
        return
    for wrong, mistake_hint in mistakes:
        if wrong.shape == actual.shape and torch.equal(actual, wrong):
            c.fail(mistake_hint)
    index = tuple(int(i) for i in torch.nonzero(actual != expected)[0])
    c.fail(
        f"{hint}\nFirst difference at index {index}: expected {bool(expected[index])}, "
        f"got {bool(actual[index])}."
    )


@exercise("07.1", "causal_mask")
def check_causal_mask(c: Checker, answer) -> None:
    for n in (5, 1, 8):
        mask = _bool_mask(
            c,
            c.call(answer, n),
            f"causal_mask({n})",
            (n, n),
            "One row per query and one column per key: (n, n).",
        )
        ones = torch.ones(n, n, dtype=torch.bool)
        _expect_mask(
            c,
            mask,
            causal_mask(n),
            f"causal_mask({n}): query i (row) may attend to keys j <= i (columns), so the "
            "mask is True on and below the diagonal.",
            mistakes=[]
            if n == 1
            else [
                (
                    ones.triu(diagonal=1),
                    "this is nn.MultiheadAttention's convention (True = NOT allowed, above "
                    "the diagonal). In this course True means 'may attend': on and below "
                    "the diagonal, torch.tril.",
                ),
                (
                    ones.triu(),
                    "you built the upper triangle (triu): that lets query 0 see every "
                    "future key. Keys j <= i are the lower triangle: torch.tril.",
                ),
                (
                    ones.tril(diagonal=-1),
                    "the diagonal is excluded: each token may attend to itself (j = i), "
                    "otherwise token 0 has no key at all. Use tril with diagonal=0.",
                ),
                (
                    ones.tril(diagonal=1),
                    "off by one: with diagonal=1 each query also sees the NEXT token, the "
                    "very token it should predict. Use tril with diagonal=0.",
                ),
                (
                    ~ones.tril(),
                    "the mask is inverted: True means 'may attend' (keys j <= i).",
                ),
                (
                    ones,
                    "every entry is True: this mask lets every token see the future.",
                ),
            ],
        )


def _padded_mistakes(lengths: Tensor, n: int) -> list[tuple[Tensor, str]]:
    causal = causal_mask(n)
    keys = padding_mask(lengths, n)
    return [
        (
            causal | keys[:, None, :],
            "you combined the masks with OR (|): a key must be allowed by BOTH masks, "
            "causal AND padding (&).",
        ),
        (
            causal & keys[:, :, None],
            "the padding mask is applied to the queries (rows) instead of the keys "
            "(columns), which blanks the whole row of every padded query. Mask the keys "
            "only, padding[:, None, :]: a padded query keeps the real keys before it (its "
            "output is ignored anyway).",
        ),
        (
            causal.expand(len(lengths), n, n),
            "the padding is missing: key j of sequence b is allowed only if j < "
            "lengths[b].",
        ),
        (
            keys[:, None, :].expand(len(lengths), n, n),
            "the causal part is missing: query i may only see keys j <= i.",
        ),
        (
            causal & (torch.arange(n) <= lengths[:, None])[:, None, :],
            "off by one in the padding: a sequence of length L has real tokens at "
            "positions 0..L-1, so keep keys j < L (not j <= L).",
        ),
        (
            causal.T & keys[:, None, :],
            "the causal part is transposed (upper triangle): query i may see keys j <= "
            "i, torch.tril.",
        ),
        (
            ~(causal & keys[:, None, :]),
            "the mask is inverted: True means 'may attend', here the keys j <= i with "
            "j < lengths[b].",
        ),
        (
            causal & ~keys[:, None, :],
            "the padding part is inverted: True must mark the REAL keys, j < "
            "lengths[b], the ones that may be attended to.",
        ),
        (
            causal & (torch.arange(n) >= n - lengths[:, None])[:, None, :],
            "you padded on the left (real tokens in the last lengths[b] columns); the "
            "statement pads on the right: the real tokens of sequence b are at "
            "positions 0 .. lengths[b] - 1.",
        ),
    ]


@exercise("07.2", "padded_causal_mask")
def check_padded_causal_mask(c: Checker, answer) -> None:
    cases = [
        (torch.tensor([5, 3, 1, 4]), 5, "a batch of four sequences"),
        (torch.tensor([2, 6, 4]), 7, "n larger than every length"),
        (torch.tensor([3]), 3, "a batch of one sequence, no padding"),
        (torch.tensor([1, 1]), 1, "n = 1"),
        (torch.tensor([3, 0]), 4, "a sequence of length 0"),
    ]
    for lengths, n, description in cases:
        batch = len(lengths)
        value = c.call(
            answer,
            lengths,
            n,
            error_hint="lengths is a tensor (batch,); compare torch.arange(n) with "
            "lengths[:, None] to get the (batch, n) padding mask.",
        )
        shape_hint = "One (n, n) mask per sequence: (batch, n, n)."
        longest = int(lengths.max())
        if isinstance(value, Tensor) and tuple(value.shape) == (batch, 1, n, n):
            shape_hint = "Return (batch, n, n), without the head axis."
        elif (
            isinstance(value, Tensor)
            and tuple(value.shape) == (batch, longest, longest)
            and longest != n
        ):
            shape_hint = (
                "Build the masks with the n you are given, not with the longest length: "
                "the batch is padded to n, which may be longer than every sequence."
            )
        mask = _bool_mask(
            c, value, f"padded_causal_mask for {description}", (batch, n, n), shape_hint
        )
        _expect_mask(
            c,
            mask,
            padded_causal_mask(lengths, n),
            f"padded_causal_mask for {description} (lengths {lengths.tolist()}, n = {n}): "
            "query i of sequence b may attend to key j when j <= i AND j < lengths[b].",
            mistakes=_padded_mistakes(lengths, n),
        )


# --- the leakage test -------------------------------------------------------------


class _HiddenModel(nn.Module):
    """One self-attention layer with fixed random weights and a chosen mask rule."""

    def __init__(
        self, mask_rule: Callable[[int], Tensor | None], seed: int, dim: int = 6
    ):
        super().__init__()
        g = random_generator(seed)
        self.mask_rule = mask_rule
        self.w = torch.randn(dim, 3 * dim, generator=g) / math.sqrt(dim)
        self.w_out = torch.randn(dim, dim, generator=g) / math.sqrt(dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (x @ self.w.to(x.dtype)).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        mask = self.mask_rule(x.shape[1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return x + out @ self.w_out.to(x.dtype)  # a residual, like a real block


def _with_extra(pairs: list[tuple[int, int]]) -> Callable[[int], Tensor]:
    def rule(n: int) -> Tensor:
        mask = causal_mask(n)
        for i, j in pairs:
            mask[i % n, j % n] = True
        return mask

    return rule


class _SecondSequenceUnmasked(_HiddenModel):
    """Causal for every sequence of the batch but the second, which has no mask (like a
    padding bug that hits one sequence only)."""

    def __init__(self, seed: int):
        super().__init__(causal_mask, seed)
        self.unmasked = _HiddenModel(lambda m: None, seed)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [super().forward(x[:1]), self.unmasked(x[1:2]), super().forward(x[2:])]
        )


class _Positionwise(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) * 2 + 1  # no attention at all: nothing leaks


class _SdpaCausal(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(x, x, x, is_causal=True)


def _hidden_models(
    n: int, batch: int
) -> list[tuple[str, Callable[[Tensor], Tensor], list[int]]]:
    """(description, model, positions that see the future) for inputs (batch, n, ...)."""
    every = list(range(n - 1))
    return [
        ("a correct causal model", _HiddenModel(causal_mask, 701), []),
        ("PyTorch's SDPA with is_causal=True", _SdpaCausal(), []),
        ("a position-wise model (no attention)", _Positionwise(), []),
        (
            "a mask off by one (tril with diagonal=1)",
            _HiddenModel(lambda m: torch.ones(m, m, dtype=torch.bool).tril(1), 702),
            every,
        ),
        ("a model with no mask", _HiddenModel(lambda m: None, 703), every),
        (
            "a mask built for length 12 and sliced from the wrong corner",
            _HiddenModel(lambda m: causal_mask(12)[12 - m :, :m], 704),
            every,
        ),
        (
            "a model where only position n-2 sees position n-1",
            _HiddenModel(_with_extra([(-2, -1)]), 705),
            [n - 2],
        ),
        (
            "a model where only position 1 sees position 4 (and nothing else leaks)",
            _HiddenModel(_with_extra([(1, 4)]), 706),
            [1],
        ),
        (
            "a model where only the second sequence of the batch has no mask",
            _SecondSequenceUnmasked(708),
            every if batch > 1 else [],
        ),
    ]


def _positions(c: Checker, value: Any, what: str) -> list[int]:
    if isinstance(value, bool):
        c.fail(
            f"{what} returned {value}; return the LIST of positions t whose output "
            "changes, e.g. [] for a model that does not leak."
        )
    if isinstance(value, Tensor):
        value = value.flatten().tolist()
    if isinstance(value, (list, tuple)):  # 0-d integer tensors, e.g. from torch.nonzero
        value = [
            t.item()
            if isinstance(t, Tensor) and t.numel() == 1 and not t.is_floating_point()
            else t
            for t in value
        ]
    if not isinstance(value, (list, tuple)):
        c.fail(
            f"{what} should return a list of ints (positions), but it returned "
            f"{describe(value)}."
        )
    odd = [
        t for t in value if isinstance(t, bool) or not isinstance(t, numbers.Integral)
    ]
    if odd:
        c.fail(
            f"{what} should return a list of ints (positions), but it returned a "
            f"{type(value).__name__} holding {describe(odd[0])} ({type(odd[0]).__name__}). "
            "Append the position t itself, e.g. found.append(t), not a True/False flag "
            "or a tensor."
        )
    return [int(t) for t in value]


@exercise("07.3", "leaks_future")
def check_leaks_future(c: Checker, answer) -> None:
    # The learner's test draws its replacements from the global RNG: give it a fixed seed
    # (the same result on every run) and leave the lab's own random state where it was.
    with torch.random.fork_rng():
        torch.manual_seed(703)
        _check_leaks_future(c, answer)


def _check_leaks_future(c: Checker, answer) -> None:
    g = random_generator(703)
    for batch, n in ((2, 6), (1, 7)):
        inputs = torch.randn(batch, n, 6, generator=g)
        for description, model, expected in _hidden_models(n, batch):
            what = f"leaks_future on {description} (inputs {tuple(inputs.shape)})"
            found = _positions(
                c,
                c.call(
                    answer,
                    model,
                    inputs,
                    error_hint="inputs and outputs are (batch, n, ...): position t is "
                    "out[:, t] and inputs[:, t + 1:] (out[t] would be sequence t).",
                ),
                what,
            )
            if found == expected:
                c.passed += 1
                continue
            if sorted(set(found)) == expected:
                c.fail(
                    f"{what} returned {found}: the right positions, but return each "
                    "position once, in increasing order (append t once per t, not once "
                    f"per sequence of the batch): {expected}."
                )
            if expected and [t - 1 for t in found] == expected:
                c.fail(
                    f"{what} returned {found}, one too far: report the position t whose "
                    "output changed (out[:, t]), not t + 1, the first input you changed."
                )
            if not expected:
                c.fail(
                    f"{what} returned {found}, but this model does not leak: its outputs "
                    "up to t stay exactly the same whatever comes after t. Change only "
                    "the inputs AFTER t (inputs[:, t + 1:]), compare only the output AT "
                    "t, and run the model on the original inputs for the comparison."
                )
            if not found and isinstance(model, _SecondSequenceUnmasked):
                c.fail(
                    f"{what} found no leak, but the positions {expected} of the second "
                    "sequence see the future. Change the inputs of EVERY sequence "
                    "(inputs[:, t + 1:]) and compare out[:, t] for the whole batch, not "
                    "only sequence 0."
                )
            if not found:
                c.fail(
                    f"{what} found no leak, but the positions {expected} see the future. "
                    "For EVERY position t from 0 to n - 2, change ALL the inputs after t "
                    "(not just the last one, or the next one) and compare the output at t."
                )
            if set(found) < set(expected):
                c.fail(
                    f"{what} returned {found}, but the positions {expected} see the "
                    "future. Test EVERY position t from 0 to n - 2, not only some."
                )
            if set(found) > set(expected) and n - 2 not in expected:
                c.fail(
                    f"{what} returned {found}; only {expected} see the future. Report t "
                    "only when the output AT position t changes (out[:, t]), not when an "
                    "earlier output changes."
                )
            c.fail(
                f"{what} returned {found}; the positions that see the future are "
                f"{expected}. Check every t from 0 to n - 2, change every input after t, "
                "and compare out[:, t] before and after."
            )
    # n = 1: there is no future to change.
    found = _positions(
        c,
        c.call(
            answer, _HiddenModel(lambda m: None, 707), torch.randn(2, 1, 6, generator=g)
        ),
        "leaks_future on inputs of length n = 1",
    )
    c.expect(
        found == [],
        f"with n = 1 there is no position after 0, so nothing can leak: return [] "
        f"(you returned {found}).",
    )


# --- nn.MultiheadAttention's convention ---------------------------------------------


def _mha_cases(g: torch.Generator) -> list[tuple[str, Tensor, int]]:
    per_sequence = torch.rand(3, 4, 5, generator=g) > 0.4
    per_sequence[..., 0] = True  # no empty row: nn.MultiheadAttention gives NaN there
    return [
        ("a causal (n, n) mask, 2 heads", causal_mask(4), 2),
        (
            "a padded causal (batch, n, n) mask, 2 heads",
            padded_causal_mask(torch.tensor([4, 2, 1]), 4),
            2,
        ),
        ("a (batch, n, m) mask with m != n, 3 heads", per_sequence, 3),
        ("a (1, 1, 1) mask, 1 head", torch.ones(1, 1, 1, dtype=torch.bool), 1),
    ]


def _mha_reference(mask: Tensor, num_heads: int) -> Tensor:
    flipped = ~mask
    return flipped.repeat_interleave(num_heads, dim=0) if mask.dim() == 3 else flipped


@exercise("07.4", "to_mha_mask")
def check_to_mha_mask(c: Checker, answer) -> None:
    g = random_generator(704)
    for description, mask, num_heads in _mha_cases(g):
        expected = _mha_reference(mask, num_heads)
        what = f"to_mha_mask for {description}"
        value = c.call(answer, mask, num_heads)
        if isinstance(value, Tensor) and value.is_floating_point():
            if bool(torch.isinf(value).any()):
                c.fail(
                    f"{what} is a float 0/-inf mask: nn.MultiheadAttention would ADD it "
                    "to the scores, which works, but the exercise asks for its BOOLEAN "
                    "attn_mask: True = NOT allowed, e.g. ~mask."
                )
            c.fail(
                f"{what} is a float tensor: nn.MultiheadAttention ADDS a float attn_mask "
                "to the scores (so a 0/1 mask would mask nothing). Return a boolean mask, "
                "True = NOT allowed."
            )
        shape_hint = ""
        if mask.dim() == 3 and isinstance(value, Tensor) and value.dim() == 4:
            shape_hint = (
                "nn.MultiheadAttention takes no separate head axis: merge (batch, "
                "num_heads) into one axis of batch * num_heads, sequence by sequence "
                "(row b * num_heads + h), e.g. with repeat_interleave(num_heads, dim=0)."
            )
        elif mask.dim() == 3 and isinstance(value, Tensor) and value.dim() == 3:
            shape_hint = (
                "nn.MultiheadAttention wants a 3-D attn_mask of shape "
                "(batch * num_heads, n, m): one copy of each sequence's mask per head."
            )
        elif mask.dim() == 2:
            shape_hint = (
                "An (n, m) mask is shared by every sequence and head: keep (n, m)."
            )
        result = _bool_mask(
            c,
            value,
            what,
            tuple(expected.shape),
            shape_hint,
            meaning="nn.MultiheadAttention's attn_mask should be boolean here "
            "(True = NOT allowed)",
        )
        mistakes = [
            (
                mask if mask.dim() == 2 else mask.repeat_interleave(num_heads, dim=0),
                "the mask is not inverted: nn.MultiheadAttention's boolean attn_mask "
                "means True = NOT allowed, the opposite of this course. Use ~mask.",
            ),
        ]
        if mask.dim() == 3 and num_heads > 1:
            mistakes.append(
                (
                    (~mask).repeat(num_heads, 1, 1),
                    "the copies are in the wrong order: row b * num_heads + h must hold "
                    "sequence b's mask (all heads of sequence 0 first). "
                    "repeat(num_heads, 1, 1) puts the sequences first; use "
                    "repeat_interleave(num_heads, dim=0).",
                )
            )
        _expect_mask(
            c,
            result,
            expected,
            f"{what}: invert the mask (True = NOT allowed) and, for a (batch, n, m) mask, "
            "repeat each sequence's mask once per head, sequence by sequence.",
            mistakes,
        )
    # The result must work in nn.MultiheadAttention itself.
    with (
        torch.random.fork_rng()
    ):  # the layer's initialisation must not move the lab's RNG
        torch.manual_seed(0)
        layer = nn.MultiheadAttention(6, 3, batch_first=True)
    x = torch.randn(2, 4, 6, generator=g)
    course_mask = padded_causal_mask(torch.tensor([4, 3]), 4)
    their_mask = c.call(answer, course_mask, 3)
    try:
        with torch.no_grad():
            got, _ = layer(x, x, x, attn_mask=their_mask, need_weights=False)
            expected_out, _ = layer(
                x, x, x, attn_mask=_mha_reference(course_mask, 3), need_weights=False
            )
    except Exception as error:  # whatever PyTorch raises about a bad mask
        c.fail(
            f"nn.MultiheadAttention refused your mask: {type(error).__name__}: {error}"
        )
    c.expect(
        torch.allclose(got, expected_out, atol=1e-6),
        "nn.MultiheadAttention gives different outputs with your mask.",
    )
