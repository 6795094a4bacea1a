"""Checkers for Lab 07: causal and padding masks, and a test for future leakage."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..masks import causal_mask, padded_causal_mask, padding_mask
from .core import Checker, describe, exercise, random_generator
from .unit06 import lines_run


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


def _fixed_size_hint(value: Any, n: int) -> str:
    shape = tuple(value.shape) if isinstance(value, Tensor) else ()
    if len(shape) == 2 and shape != (n, n) and max(shape) < n:
        return (
            f"For n = {n} your mask is {shape}: it looks cut from a table of a fixed "
            "size. A model meets lengths you did not plan for; build the mask for the n "
            "you are given, e.g. torch.ones(n, n, dtype=torch.bool).tril()."
        )
    return "One row per query and one column per key: (n, n)."


@exercise("07.1", "causal_mask")
def check_causal_mask(c: Checker, answer) -> None:
    for n in (5, 1, 8, 33):
        value, lines = lines_run(c, answer, n)
        mask = _bool_mask(
            c, value, f"causal_mask({n})", (n, n), _fixed_size_hint(value, n)
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
    # Lengths beyond any table a model might keep (GPT-2's 1024, 4096): the answer must
    # build its mask for n. A Python loop over entries takes minutes at 4099, so an answer
    # whose code ran hundreds of lines at n = 33 is tried at 1025 only.
    for n in (1025, 4099) if lines is None or lines < 200 else (1025,):
        value = c.call(answer, n)
        mask = _bool_mask(
            c, value, f"causal_mask({n})", (n, n), _fixed_size_hint(value, n)
        )
        _expect_mask(
            c,
            mask,
            causal_mask(n),
            f"causal_mask({n}) is wrong although the small sizes passed: is part of it "
            "taken from a table of fixed size? Build the whole (n, n) mask for the n you "
            "are given.",
            mistakes=[],
        )
        del value, mask


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


def _padded_error_hint(batch: int, n: int) -> Callable[[Exception], str]:
    def hint(error: Exception) -> str:
        text = str(error)
        sizes = [int(s) for s in re.findall(r"tensor [ab] \((\d+)\)", text)]
        odd = [s for s in sizes if s not in (1, batch, n)]
        if odd:
            return (
                f"part of your mask is {odd[0]} long where the batch is padded to n = {n}: "
                "is it cut from a table of fixed size? Build the causal mask for the n "
                "you are given."
            )
        if "must match the size" in text or "broadcast" in text:
            return (
                "the shapes do not broadcast: the causal mask is (n, n) and the padding "
                "mask (batch, n). Give the padding mask a query axis, padding[:, None, :] "
                "of shape (batch, 1, n): then causal & padding[:, None, :] is "
                "(batch, n, n)."
            )
        return (
            "lengths is a tensor (batch,); compare torch.arange(n) with lengths[:, None] "
            "to get the (batch, n) padding mask."
        )

    return hint


@exercise("07.2", "padded_causal_mask")
def check_padded_causal_mask(c: Checker, answer) -> None:
    cases = [
        (torch.tensor([5, 3, 1, 4]), 5, "a batch of four sequences"),
        (torch.tensor([2, 6, 4]), 7, "n larger than every length"),
        (torch.tensor([3]), 3, "a batch of one sequence, no padding"),
        (torch.tensor([1, 1]), 1, "n = 1"),
        (torch.tensor([3, 0]), 4, "a sequence of length 0"),
        (torch.tensor([4, 2, 3, 1]), 4, "batch == n = 4"),
        (torch.tensor([1000, 37]), 1100, "n = 1100"),
    ]
    for lengths, n, description in cases:
        batch = len(lengths)
        value = c.call(answer, lengths, n, error_hint=_padded_error_hint(batch, n))
        shape_hint = "One (n, n) mask per sequence: (batch, n, n)."
        longest = int(lengths.max())
        shape = tuple(value.shape) if isinstance(value, Tensor) else ()
        if shape == (batch, 1, n, n):
            shape_hint = "Return (batch, n, n), without the head axis."
        elif shape in ((1, n, n), (n, n)) and batch == n:
            shape_hint = (
                f"Your mask is {shape}: with batch == n = {n}, the (batch, n) padding "
                "mask was lined up with the (n, n) causal mask as if it were one more "
                "(n, n) mask, row b of it applied to query b. Give it a query axis, "
                "padding[:, None, :] of shape (batch, 1, n), so that it masks the keys "
                "of every query of sequence b."
            )
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
#
# Every hidden model works row by row: what it computes for one sequence never depends on
# where that sequence sits in the batch, so an answer may stack all its modified copies
# into one call. Each model records the inputs it is called on, so that a wrong verdict
# can be explained: did the answer change the right inputs, or compare the outputs in a
# way that cannot see this model's leak?


class _HiddenModel(nn.Module):
    """One self-attention layer with fixed random weights and a chosen mask rule.

    ``fill`` is what a forbidden score becomes: -inf for a real mask, a finite number for
    a mask that only pushes the future down (a leak of about exp(fill))."""

    def __init__(
        self,
        mask_rule: Callable[[int], Tensor | None],
        seed: int,
        dim: int = 6,
        fill: float = float("-inf"),
    ):
        super().__init__()
        g = random_generator(seed)
        self.mask_rule = mask_rule
        self.fill = fill
        self.w = torch.randn(dim, 3 * dim, generator=g) / math.sqrt(dim)
        self.w_out = torch.randn(dim, dim, generator=g) / math.sqrt(dim)

    def attend(self, x: Tensor, mask: Tensor | None) -> Tensor:
        q, k, v = (x @ self.w.to(x.dtype)).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, self.fill)
        return torch.softmax(scores, dim=-1) @ v

    def forward(self, x: Tensor) -> Tensor:
        out = self.attend(x, self.mask_rule(x.shape[1]))
        return x + out @ self.w_out.to(x.dtype)  # a residual, like a real block


def _with_extra(pairs: list[tuple[int, int]]) -> Callable[[int], Tensor]:
    def rule(n: int) -> Tensor:
        mask = causal_mask(n)
        for i, j in pairs:
            mask[i % n, j % n] = True
        return mask

    return rule


def _cached_for(size: int) -> Callable[[int], Tensor]:
    """A mask built once for ``size`` positions; longer inputs get True beyond it."""
    cached = causal_mask(size)

    def rule(n: int) -> Tensor:
        mask = torch.ones(n, n, dtype=torch.bool)
        k = min(n, size)
        mask[:k, :k] = cached[:k, :k]
        return mask

    return rule


class _SomeSequencesUnmasked(_HiddenModel):
    """Causal, except for the sequences whose first input has a positive first feature:
    those get no mask (like a padding bug that hits some sequences only). Decided by
    the sequence's own content, never by its index in the batch."""

    def __init__(self, seed: int):
        super().__init__(causal_mask, seed)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        unmasked = (x[:, 0, 0] > 0)[:, None, None]  # (batch, 1, 1)
        mask = causal_mask(n) | unmasked  # (batch, n, n)
        return x + self.attend(x, mask) @ self.w_out.to(x.dtype)


class _OneHeadLeaks(_HiddenModel):
    """Two heads: head 0 is causal and writes every output feature but the last; head 1
    has no mask and writes only the last feature."""

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[1]
        good = self.attend(x, causal_mask(n)) @ self.w_out.to(x.dtype)
        leaky = self.attend(x, None) @ self.w_out.to(x.dtype)
        return x + torch.cat([good[..., :-1], leaky[..., -1:]], dim=-1)


class _TurnedByTheFuture(_HiddenModel):
    """Causal attention, then the first three output features of position t turned about
    the axis (1, 1, 1) by an angle that depends on the inputs after t: the sum and the
    norm of each output stay the same (up to rounding), the output does not."""

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        after = x.sum(dim=-1).flip(1).cumsum(1).flip(1) - x.sum(dim=-1)  # sum after t
        angle = 0.1 * after[..., None]  # (batch, n, 1), radians
        v = out[..., :3]
        axis = torch.ones(3, dtype=x.dtype) / math.sqrt(3)
        along = (v * axis).sum(-1, keepdim=True) * axis
        across = v - along
        turned = (
            along
            + across * torch.cos(angle)
            + torch.linalg.cross(axis.expand_as(v), across) * torch.sin(angle)
        )
        return torch.cat([turned, out[..., 3:]], dim=-1)


class _LastFeatureOverSequence(_HiddenModel):
    """Causal attention on inputs whose LAST feature was normalised over the sequence
    axis (dim=1) instead of the feature axis: every position reads the last feature of
    every other position, and nothing else leaks."""

    def __init__(self, seed: int):
        super().__init__(causal_mask, seed)

    def forward(self, x: Tensor) -> Tensor:
        last = x[..., -1:]
        scaled = last / last.norm(dim=1, keepdim=True)
        return super().forward(torch.cat([x[..., :-1], scaled], dim=-1))


class _Scaled(nn.Module):
    """Another model's outputs times ``scale``: a leak of a few millionths of outputs
    near ``scale`` is far below any absolute tolerance."""

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) * self.scale


class _Positionwise(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) * 2 + 1  # no attention at all: nothing leaks


class _SdpaCausal(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(x, x, x, is_causal=True)


class _Recording(nn.Module):
    """Calls ``model`` and keeps a copy of every input it was called on."""

    def __init__(self, model: Callable[[Tensor], Tensor]):
        super().__init__()
        self.model = model
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        if isinstance(x, Tensor):
            self.seen.append(x.detach().clone())
        return self.model(x)


# Kinds of leak that a test with a loose comparison cannot see: the hint for each.
TINY = (
    "its masked scores are -13 instead of -inf, so the future keys keep a weight near "
    "1e-6 and the outputs move by a few millionths"
)
TINY_AND_SMALL = (
    "its outputs are near 1e-3 and its masked scores -13 instead of -inf, so the outputs "
    "move by a few billionths, below any absolute tolerance"
)
ONE_FEATURE = (
    "its leak shows in the last output feature only (one head of two is unmasked)"
)
SUMMARY = (
    "its leak turns the outputs at t without changing their sum, mean or norm (up to "
    "rounding)"
)
SOME_INPUT_FEATURES = "its leak reads only the LAST feature of the inputs after t"


def _hidden_models(n: int, batch: int) -> list[tuple[str, nn.Module, list[int], str]]:
    """(description, model, positions that see the future, how the leak hides) for
    inputs (batch, n, 6) whose sequence 0 starts with a negative first feature and
    sequence 1 (if any) with a positive one."""
    every = list(range(n - 1))
    models = [
        ("a correct causal model", _HiddenModel(causal_mask, 701), [], ""),
        ("PyTorch's SDPA with is_causal=True", _SdpaCausal(), [], ""),
        ("a position-wise model (no attention)", _Positionwise(), [], ""),
        (
            "a mask off by one (tril with diagonal=1)",
            _HiddenModel(lambda m: torch.ones(m, m, dtype=torch.bool).tril(1), 702),
            every,
            "",
        ),
        ("a model with no mask", _HiddenModel(lambda m: None, 703), every, ""),
        (
            "a mask built for length 12 and sliced from the wrong corner",
            _HiddenModel(lambda m: causal_mask(12)[12 - m :, :m], 704),
            every,
            "",
        ),
        (
            "a model where only position n-2 sees position n-1",
            _HiddenModel(_with_extra([(-2, -1)]), 705),
            [n - 2],
            "",
        ),
        (
            "a model where only position 1 sees position 4 (and nothing else leaks)",
            _HiddenModel(_with_extra([(1, 4)]), 706),
            [1],
            "",
        ),
        (
            "a model where the sequences that start with a positive first feature "
            "have no mask",
            _SomeSequencesUnmasked(708),
            every if batch > 1 else [],
            "",
        ),
        (
            "a mask cached for 8 positions (True beyond them)",
            _HiddenModel(_cached_for(8), 709),
            every if n > 8 else [],
            "",
        ),
        (
            "a model whose masked scores are -13 instead of -inf",
            _HiddenModel(causal_mask, 710, fill=-13.0),
            every,
            TINY,
        ),
        (
            "a model with outputs near 1e-3 whose masked scores are -13 instead of -inf",
            _Scaled(_HiddenModel(causal_mask, 714, fill=-13.0), 1e-3),
            every,
            TINY_AND_SMALL,
        ),
        (
            "a model with one unmasked head of two",
            _OneHeadLeaks(causal_mask, 711),
            every,
            ONE_FEATURE,
        ),
        (
            "a model that turns its outputs by an angle read from the future",
            _TurnedByTheFuture(causal_mask, 712),
            every,
            SUMMARY,
        ),
        (
            "a model that normalises its last input feature over the sequence",
            _LastFeatureOverSequence(713),
            every,
            SOME_INPUT_FEATURES,
        ),
    ]
    return models


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


def _future_replaced(seen: list[Tensor], inputs: Tensor, t: int) -> str:
    """How the answer's calls treated the inputs after t. "" when, for every sequence b,
    some call kept inputs[b, :t + 1] and changed every number of inputs[b, t + 1:];
    otherwise the closest it came, for the hint: "not every sequence", "features" (some
    features of the future left as they were), "positions" (some positions after t left
    as they were, t + 1 changed), "later" (only positions after t + 1 changed) or
    "none"."""
    kinds = []
    for b in range(inputs.shape[0]):
        past, future = inputs[b, : t + 1], inputs[b, t + 1 :]
        kind = "none"
        for x in seen:
            if x.dim() != inputs.dim() or x.shape[1:] != inputs.shape[1:]:
                continue
            keeps = (x[:, : t + 1] == past).flatten(1).all(dim=1)  # (rows,)
            changed = (x[keeps, t + 1 :] != future).flatten(2)  # (rows, n - t - 1, -1)
            if not len(changed) or not bool(changed.any()):
                continue
            if bool(changed.flatten(1).all(dim=1).any()):
                kind = ""
                break
            if bool(changed.any(dim=2).all(dim=1).any()):
                kind = "features"
            elif bool(changed[:, 0].any()) and kind != "features":
                kind = "positions"
            elif kind == "none":
                kind = "later"
        kinds.append(kind)
    if all(k == "" for k in kinds):
        return ""
    if "" in kinds:
        return "not every sequence"
    for kind in ("features", "positions", "later"):
        if kind in kinds:
            return kind
    return "none"


FLIP_NOTE = (
    "A flip or a shuffle of the inputs after t can leave some of them where they were "
    "(for t = n - 2 there is only one): use fresh values, "
    "torch.randn(changed[:, t + 1:].shape)."
)


def _missed_hint(
    what: str,
    found: list[int],
    expected: list[int],
    missed: list[int],
    replaced: dict[int, str],
    hides: str,
) -> str:
    """The hint for an answer that did not report the positions ``missed``."""
    start = f"{what} returned {found}, but the positions {expected} see the future. "
    badly = {t: how for t, how in replaced.items() if how}
    if badly:
        t, how = next(iter(badly.items()))
        if how == "not every sequence":
            return start + (
                f"For t = {t} your calls did not change the inputs after t of EVERY "
                "sequence of the batch: change inputs[:, t + 1:] for the whole batch and "
                "compare out[:, t] for every sequence, not only sequence 0."
            )
        if how == "features":
            reason = (
                f" (this model: {SOME_INPUT_FEATURES})"
                if hides == SOME_INPUT_FEATURES
                else ""
            )
            return start + (
                f"For t = {t} your calls changed only some features of the inputs after "
                f"t{reason}. Replace ALL the inputs after t, every position and every "
                "feature: changed[:, t + 1:] = torch.randn(changed[:, t + 1:].shape)."
            )
        if how == "positions":
            return start + (
                f"For t = {t} your calls changed only some of the positions after t. "
                "Change ALL the inputs after t (not just the next one). " + FLIP_NOTE
            )
        if how == "none at the end":
            return start + (
                f"For t = {t} there is one input after t, and none of your calls changed "
                "it while keeping the inputs up to t, though you did so for earlier t. "
                "If your loop stops at a fixed t, run it over range(n - 1) with n = "
                "inputs.shape[1]. " + FLIP_NOTE
            )
        return start + (
            f"Your test never changed the inputs after t = {t} while keeping those up to "
            "t. For EVERY position t from 0 to n - 2, change ALL the inputs after t and "
            "compare the output at t. " + FLIP_NOTE
        )
    reason = f": {hides}" if hides else ""
    return start + (
        f"Your calls changed the right inputs, yet the comparison missed t = {missed[0]} "
        f"on this model{reason}. Compare the whole output at t exactly, "
        "torch.equal(out_changed[:, t], out[:, t]): not allclose with a tolerance, not "
        "a norm, sum, mean or argmax, not one feature, not in half precision."
    )


@exercise("07.3", "leaks_future")
def check_leaks_future(c: Checker, answer) -> None:
    # The learner's test draws its replacements from the global RNG: give it a fixed seed
    # (the same result on every run) and leave the lab's own random state where it was.
    with torch.random.fork_rng():
        torch.manual_seed(703)
        _check_leaks_future(c, answer)


def _leak_inputs(batch: int, n: int, g: torch.Generator) -> Tensor:
    inputs = torch.randn(batch, n, 6, generator=g)
    inputs[:, 0, 0] = inputs[:, 0, 0].abs()
    inputs[0, 0, 0] = -inputs[
        0, 0, 0
    ]  # sequence 0 starts negative, the others positive
    return inputs


def _check_leaks_future(c: Checker, answer) -> None:
    g = random_generator(703)
    for batch, n in ((2, 6), (1, 7), (2, 11)):
        inputs = _leak_inputs(batch, n, g)
        for description, hidden, expected, hides in _hidden_models(n, batch):
            what = f"leaks_future on {description} (inputs {tuple(inputs.shape)})"
            model = _Recording(hidden)
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
            missed = [t for t in expected if t not in found]
            if missed:
                replaced = {t: _future_replaced(model.seen, inputs, t) for t in missed}
                if (
                    n > 2
                    and replaced.get(n - 2) == "none"
                    and _future_replaced(model.seen, inputs, 0) != "none"
                ):
                    replaced[n - 2] = "none at the end"
                c.fail(_missed_hint(what, found, expected, missed, replaced, hides))
            if n - 2 not in expected:
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
