"""Checkers for Lab 05: multi-head attention."""

from __future__ import annotations

import math

import torch

from ..attention import MultiHeadAttention, merge_heads, split_heads
from ..masks import causal_mask
from .core import Checker, exercise, random_generator

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


@exercise("05.1", "split_heads")
def check_split_heads(c: Checker, answer) -> None:
    g = random_generator(501)
    x = torch.randn(2, 5, 12, generator=g)
    heads = c.tensor(
        c.call(answer, x, 3),
        "split_heads(x of shape (2, 5, 12), 3)",
        shape=(2, 3, 5, 4),
        shape_hint="The result is (batch, heads, n, head_dim): the head axis comes before "
        "the positions, so that each head is one (n, head_dim) matrix.",
    )
    c.expect_close(
        heads,
        split_heads(x, 3),
        "head h should hold features h * head_dim to (h + 1) * head_dim - 1 of every token.",
        mistakes=[
            (x.reshape(2, 3, 5, 4), TRANSPOSE_HINT),
            (
                x.view(2, 5, 4, 3).permute(0, 3, 1, 2),
                "each head must take a consecutive block of head_dim features; "
                "view(batch, n, head_dim, heads) deals the features out like cards. "
                "Use view(batch, n, heads, head_dim).",
            ),
        ],
    )
    x = torch.randn(1, 4, 8, generator=g)
    heads = c.tensor(
        c.call(answer, x, 2), "split_heads(x of shape (1, 4, 8), 2)", shape=(1, 2, 4, 4)
    )
    c.expect_close(
        heads,
        split_heads(x, 2),
        "with other sizes the split is wrong: read batch, n and embed_dim from x.shape and "
        "compute head_dim = embed_dim // num_heads.",
    )


@exercise("05.2", "merge_heads")
def check_merge_heads(c: Checker, answer) -> None:
    g = random_generator(502)
    heads = torch.randn(2, 3, 5, 4, generator=g)
    merged = c.tensor(
        c.call(
            answer,
            heads,
            error_hint="after transpose the tensor is not contiguous in memory, so .view "
            "cannot reshape it: use .reshape(...), or .contiguous().view(...).",
        ),
        "merge_heads(heads of shape (2, 3, 5, 4))",
        shape=(2, 5, 12),
        shape_hint="The result is (batch, n, heads * head_dim).",
    )
    c.expect_close(
        merged,
        merge_heads(heads),
        "token i's output should be its head outputs side by side: head 0's features, "
        "then head 1's, and so on.",
        mistakes=[
            (heads.reshape(2, 5, 12), MERGE_HINT),
            (
                heads.permute(0, 2, 3, 1).reshape(2, 5, 12),
                "the heads' features are interleaved: bring the axes to (batch, n, heads, "
                "head_dim) with transpose(1, 2) so that each head's block stays together.",
            ),
        ],
    )
    x = torch.randn(2, 5, 12, generator=g)
    round_trip = c.tensor(
        c.call(answer, split_heads(x, 3)),
        "merge_heads(split_heads(x, 3))",
        shape=x.shape,
    )
    c.expect_close(round_trip, x, "merge_heads must undo split_heads exactly.")


@exercise("05.4", "MultiHeadAttention")
def check_multi_head_attention(c: Checker, answer) -> None:
    g = random_generator(503)
    embed_dim, num_heads = 12, 3
    reference = MultiHeadAttention(embed_dim, num_heads)
    module = c.module_like(
        answer,
        reference,
        (embed_dim, num_heads),
        "Create W_q, W_k, W_v and W_o, each nn.Linear(embed_dim, embed_dim, bias=bias).",
        generator=g,
        scale=0.5,
    )

    query = torch.randn(2, 4, embed_dim, generator=g)
    memory = torch.randn(2, 6, embed_dim, generator=g)
    output, weights = c.pair(c.call(module, query, memory, memory), "(output, weights)")
    weights = c.tensor(
        weights,
        "weights",
        shape=(2, num_heads, 4, 6),
        shape_hint="Return the weights of every head: (batch, heads, n, m).",
    )
    output = c.tensor(output, "output", shape=(2, 4, embed_dim))
    with torch.no_grad():
        expected_output, expected_weights = reference(query, memory, memory)
        q = split_heads(reference.W_q(query), num_heads)
        k = split_heads(reference.W_k(memory), num_heads)
        raw = q @ k.transpose(-2, -1)
        q_bug = reference.W_q(query).reshape(2, num_heads, 4, 4)
        k_bug = reference.W_k(memory).reshape(2, num_heads, 6, 4)
    c.expect_close(
        weights,
        expected_weights,
        "each head's weights should be softmax(Q_h K_h^T / sqrt(head_dim)).",
        mistakes=[
            (
                torch.softmax(raw, dim=-1),
                "the scores are not scaled: divide by sqrt(head_dim).",
            ),
            (
                torch.softmax(raw / math.sqrt(embed_dim), dim=-1),
                "scale by sqrt(head_dim) = sqrt(embed_dim // num_heads), the size of the "
                "vectors each head compares, not by sqrt(embed_dim).",
            ),
            (
                torch.softmax(q_bug @ k_bug.transpose(-2, -1) / 2, dim=-1),
                "the heads were made by a reshape without a transpose. "
                + TRANSPOSE_HINT,
            ),
        ],
    )
    c.expect_close(
        output,
        expected_output,
        "the output should be W_o applied to the merged heads, (batch, n, embed_dim).",
    )

    x = torch.randn(2, 5, embed_dim, generator=g)
    output, weights = c.pair(
        c.call(module, x, x, x, causal_mask(5)), "(output, weights)"
    )
    weights = c.tensor(
        weights, "weights with a causal mask", shape=(2, num_heads, 5, 5)
    )
    output = c.tensor(output, "output with a causal mask", shape=(2, 5, embed_dim))
    c.expect(
        (weights[..., ~causal_mask(5)] == 0).all(),
        "with a causal mask no head may look at later tokens: pass the mask to the "
        "attention of every head (it broadcasts over the head axis).",
    )
    with torch.no_grad():
        expected_output, _ = reference(x, x, x, causal_mask(5))
    c.expect_close(output, expected_output, "with a causal mask the output is wrong.")
