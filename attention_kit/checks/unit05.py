"""Checkers for Lab 05: multi-head attention."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..attention import MultiHeadAttention, masked_softmax, merge_heads, split_heads
from ..masks import causal_mask
from .core import Checker, exercise, random_generator, scale_mistakes

TRANSPOSE_HINT = (
    "a reshape alone keeps the memory order (position, feature), so each 'head' gets "
    "pieces of several tokens. view(batch, n, heads, head_dim) first, then "
    "transpose(1, 2) to bring the head axis in front of the positions."
)
MERGE_HINT = (
    "a reshape alone keeps the memory order (head, position, feature), so each 'token' "
    "gets pieces of several tokens. transpose(1, 2) back to (batch, n, heads, head_dim) "
    "first, then reshape to (batch, n, heads * head_dim)."
)


SIZES_HINT = (
    "read batch, n and embed_dim from x.shape (never a fixed number), and compute "
    "head_dim = embed_dim // num_heads."
)


def _split_error_hint(error: Exception) -> str:
    return f"the view does not fit this input: {SIZES_HINT}"


def _merge_error_hint(error: Exception) -> str:
    if "view size is not compatible" in str(error):
        return (
            "after transpose the tensor is not contiguous in memory, so .view cannot "
            "reshape it: use .reshape(...), or .contiguous().view(...)."
        )
    return (
        "the reshape does not fit this input: read the sizes from x.shape, "
        "batch, heads, n, head_dim = x.shape."
    )


@exercise("05.1", "split_heads")
def check_split_heads(c: Checker, answer) -> None:
    g = random_generator(501)
    cases = [(2, 5, 12, 3), (1, 4, 8, 2), (3, 1, 6, 6), (2, 3, 4, 1)]
    for batch, n, embed_dim, num_heads in cases:
        head_dim = embed_dim // num_heads
        x = torch.randn(batch, n, embed_dim, generator=g)
        what = f"split_heads(x of shape {tuple(x.shape)}, {num_heads})"
        heads = c.tensor(
            c.call(answer, x, num_heads, error_hint=_split_error_hint),
            what,
            shape=(batch, num_heads, n, head_dim),
            shape_hint="The result is (batch, heads, n, head_dim): the head axis comes "
            "before the positions, so that each head is one (n, head_dim) matrix. Read "
            "batch, n and embed_dim from x.shape; head_dim = embed_dim // num_heads.",
        )
        c.expect_close(
            heads,
            split_heads(x, num_heads),
            f"{what} is wrong: head h should hold features h * head_dim to "
            "(h + 1) * head_dim - 1 of every token. Read batch, n and embed_dim from "
            "x.shape.",
            mistakes=[
                (x.reshape(batch, num_heads, n, head_dim), TRANSPOSE_HINT),
                (
                    x.view(batch, n, head_dim, num_heads).permute(0, 3, 1, 2),
                    "each head must take a consecutive block of head_dim features; "
                    "view(batch, n, head_dim, heads) deals the features out like cards. "
                    "Use view(batch, n, heads, head_dim).",
                ),
            ],
        )


@exercise("05.2", "merge_heads")
def check_merge_heads(c: Checker, answer) -> None:
    g = random_generator(502)
    for batch, num_heads, n, head_dim in [
        (2, 3, 5, 4),
        (1, 2, 3, 2),
        (2, 4, 1, 3),
        (1, 1, 4, 5),
    ]:
        heads = torch.randn(batch, num_heads, n, head_dim, generator=g)
        what = f"merge_heads(heads of shape {tuple(heads.shape)})"
        merged = c.tensor(
            c.call(answer, heads, error_hint=_merge_error_hint),
            what,
            shape=(batch, n, num_heads * head_dim),
            shape_hint="The result is (batch, n, heads * head_dim); read the sizes from "
            "x.shape.",
        )
        c.expect_close(
            merged,
            merge_heads(heads),
            f"{what} is wrong: token i's output should be its head outputs side by "
            "side: head 0's features, then head 1's, and so on.",
            mistakes=[
                (heads.reshape(batch, n, num_heads * head_dim), MERGE_HINT),
                (
                    heads.permute(0, 2, 3, 1).reshape(batch, n, num_heads * head_dim),
                    "the heads' features are interleaved: bring the axes to (batch, n, "
                    "heads, head_dim) with transpose(1, 2) so that each head's block "
                    "stays together.",
                ),
            ],
        )
    x = torch.randn(2, 5, 12, generator=g)
    round_trip = c.tensor(
        c.call(answer, split_heads(x, 3), error_hint=_merge_error_hint),
        "merge_heads(split_heads(x, 3))",
        shape=x.shape,
    )
    c.expect_close(round_trip, x, "merge_heads must undo split_heads exactly.")


def _mha_error_hint(error: Exception) -> str:
    if "positional argument" in str(error) and "__init__" in str(error):
        return "the constructor is MultiHeadAttention(embed_dim, num_heads, bias=True)."
    return (
        "check the mask: a 2-D mask (n, m) broadcasts against the scores (batch, heads, "
        "n, m) as it is; a 3-D mask (batch, n, m) needs a head axis, mask.unsqueeze(1), "
        "so that it becomes (batch, 1, n, m) and is shared by every head. Also check "
        "that query, key and value go through W_q, W_k and W_v respectively."
    )


def _mha_mistakes(
    reference: MultiHeadAttention, query: Tensor, key: Tensor, value: Tensor, mask
) -> tuple[list, list]:
    """(weight mistakes, output mistakes) for the classic multi-head errors."""
    h = reference.num_heads
    batch, n, d = query.shape
    m = key.shape[1]
    head_dim = d // h
    scale = math.sqrt(head_dim)
    head_mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
    q = split_heads(reference.W_q(query), h)
    k = split_heads(reference.W_k(key), h)
    v = split_heads(reference.W_v(value), h)
    raw = q @ k.transpose(-2, -1)
    weights = masked_softmax(raw / scale, head_mask)
    masked_scores = raw / scale
    if head_mask is not None:
        masked_scores = masked_scores.masked_fill(~head_mask, float("-inf"))
    q_bug = reference.W_q(query).reshape(batch, h, n, head_dim)
    k_bug = reference.W_k(key).reshape(batch, h, m, head_dim)
    weight_mistakes = [
        *scale_mistakes(
            raw, head_dim, "head_dim", lambda s: masked_softmax(s, head_mask)
        ),
        (
            masked_softmax(raw / math.sqrt(d), head_mask),
            "scale by sqrt(head_dim) = sqrt(embed_dim // num_heads), the size of the "
            "vectors each head compares, not by sqrt(embed_dim).",
        ),
        (
            weights.mean(dim=1, keepdim=True).expand_as(weights),
            "every head has the same weights, their average over the heads (what "
            "nn.MultiheadAttention returns by default, average_attn_weights=True): "
            "return each head's own weights, (batch, heads, n, m).",
        ),
        (
            torch.softmax(masked_scores, dim=1).nan_to_num(0.0),
            "the softmax ran over the heads (dim=1): each head's weights are a softmax "
            "over the keys, the last dimension (dim=-1).",
        ),
        (
            masked_softmax(
                q @ split_heads(reference.W_q(key), h).transpose(-2, -1) / scale,
                head_mask,
            ),
            "the keys are W_k(key); you used W_q.",
        ),
        (
            masked_softmax(q_bug @ k_bug.transpose(-2, -1) / scale, head_mask),
            "the heads were made by a reshape without a transpose. " + TRANSPOSE_HINT,
        ),
        (
            masked_softmax(
                q @ split_heads(reference.W_k(value), h).transpose(-2, -1) / scale,
                head_mask,
            ),
            "the keys come from the `key` argument: K = W_k(key), not W_k(value).",
        ),
        (
            masked_softmax(
                q @ split_heads(reference.W_v(key), h).transpose(-2, -1) / scale,
                head_mask,
            ),
            "the keys are W_k(key); you used W_v.",
        ),
        (
            masked_softmax(raw.transpose(-2, -1) / scale, head_mask)
            if n == m
            else torch.zeros(0),
            "the scores are transposed: row i is query i against every key, Q K^T.",
        ),
    ]
    if mask is not None:
        weight_mistakes += [
            (
                masked_softmax(raw / scale, None),
                "the weights on masked keys are not zero: pass the mask to the "
                "attention of every head (it broadcasts over the head axis).",
            ),
            (
                masked_softmax(raw / scale, ~head_mask),
                "the mask is inverted: in this course (and in PyTorch's "
                "scaled_dot_product_attention) True means 'may attend'. "
                "nn.MultiheadAttention's boolean mask is the opposite (True = may NOT "
                "attend), so do not negate it here.",
            ),
        ]
    if mask is not None and mask.dim() == 3 and batch == h:
        weight_mistakes.append(
            (
                masked_softmax(raw / scale, mask),
                "a 3-D mask (batch, n, m) was used without a head axis, so it lined up "
                "with the heads instead of the batch: mask.unsqueeze(1) makes it "
                "(batch, 1, n, m), the same for every head.",
            )
        )
    merged = merge_heads(weights @ v)
    output_mistakes = [
        (
            merged,
            "the output is the merged heads without W_o: apply the output projection, "
            "W_o(merge_heads(...)).",
        ),
        (
            reference.W_o((weights @ v).reshape(batch, n, d)),
            "the heads were merged by a reshape without a transpose. " + MERGE_HINT,
        ),
        (
            reference.W_o(merge_heads(weights @ split_heads(reference.W_v(key), h))),
            "the values come from the `value` argument: V = W_v(value), not W_v(key).",
        ),
        (
            reference.W_o(merge_heads(weights @ split_heads(reference.W_k(value), h))),
            "the values are W_v(value); you used W_k.",
        ),
    ]
    return weight_mistakes, output_mistakes


@exercise("05.4", "MultiHeadAttention")
def check_multi_head_attention(c: Checker, answer) -> None:
    g = random_generator(503)
    embed_dim = 12
    layers_hint = (
        "Create W_q, W_k, W_v and W_o, each nn.Linear(embed_dim, embed_dim, bias=bias)."
    )
    for num_heads, bias in [(3, True), (2, False)]:
        reference = MultiHeadAttention(embed_dim, num_heads, bias=bias)
        module = c.module_like(
            answer,
            reference,
            (embed_dim, num_heads, bias),
            layers_hint,
            generator=g,
            scale=0.5,
            bias_hint="pass the constructor's bias argument on to every layer, "
            "nn.Linear(embed_dim, embed_dim, bias=bias).",
            error_hint="the constructor is MultiHeadAttention(embed_dim, num_heads, "
            "bias=True).",
        )
        head_dim = embed_dim // num_heads
        query = torch.randn(2, 4, embed_dim, generator=g)
        key = torch.randn(2, 6, embed_dim, generator=g)
        value = torch.randn(2, 6, embed_dim, generator=g)
        x = torch.randn(num_heads, 5, embed_dim, generator=g)  # batch == heads
        per_sequence = torch.rand(num_heads, 5, 5, generator=g) > 0.5
        per_sequence[..., 0] = True
        padding = torch.tensor([[True] * 6, [True, True, True, True, False, False]])
        all_padding = torch.tensor([[True] * 6, [False] * 6])[:, None, :]
        one = torch.randn(1, 1, embed_dim, generator=g)
        cases = [
            ("query (2, 4, d), key and value (2, 6, d), no mask", (query, key, value)),
            ("mask=None", (query, key, value, None)),
            ("a causal mask (n, n)", (x, x, x, causal_mask(5))),
            (
                "a (batch, n, m) mask with batch == num_heads",
                (x, x, x, per_sequence),
            ),
            (
                "a (batch, 1, m) padding mask",
                (query, key, value, padding[:, None, :]),
            ),
            (
                "a (batch, 1, m) mask where sequence 1 is all padding",
                (query, key, value, all_padding),
            ),
            ("one query and one key (batch 1)", (one, one * 2, one - 1)),
            ("long inputs (scores in the hundreds)", (query * 20, key * 20, value)),
        ]
        for description, args in cases:
            what = f"MultiHeadAttention({embed_dim}, {num_heads}, bias={bias}) with {description}"
            q_in, k_in = args[0], args[1]
            n, m = q_in.shape[1], k_in.shape[1]
            output, weights = c.pair(
                c.call(module, *args, error_hint=_mha_error_hint), "(output, weights)"
            )
            weights = c.tensor(
                weights,
                f"the weights of {what}",
                shape=(q_in.shape[0], num_heads, n, m),
                shape_hint="Return the weights of every head: (batch, heads, n, m).",
                nan_hint="NaN: a sequence where no key is allowed must give zero "
                "weights, and scores in the hundreds must not overflow: use masked_softmax "
                "(or the course's scaled_dot_product_attention).",
            )
            output = c.tensor(
                output,
                f"the output of {what}",
                shape=(q_in.shape[0], n, embed_dim),
                shape_hint="The output has one row per query: (batch, n, embed_dim).",
            )
            with torch.no_grad():
                expected_output, expected_weights = reference(*args)
                weight_mistakes, output_mistakes = _mha_mistakes(
                    reference, *args[:3], args[3] if len(args) > 3 else None
                )
            c.expect_close(
                weights,
                expected_weights,
                f"{what}: each head's weights should be "
                f"softmax(Q_h K_h^T / sqrt(head_dim)), head_dim = {head_dim}.",
                mistakes=weight_mistakes,
            )
            c.expect_close(
                output,
                expected_output,
                f"{what}: the output should be W_o applied to the merged heads, "
                "(batch, n, embed_dim).",
                mistakes=output_mistakes,
            )
