"""Checkers for Lab 03: Bahdanau attention."""

from __future__ import annotations

import torch

from ..masks import padding_mask
from ..models import Decoder
from .core import Checker, exercise, random_generator


def _random_decoder(g: torch.Generator) -> Decoder:
    """A small attention decoder with random weights; embed_dim != annotation_dim so
    that the parts of a concatenation cannot be swapped without an error."""
    decoder = Decoder(
        vocab_size=13, embed_dim=6, hidden_dim=8, annotation_dim=10, attention_dim=9
    )
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=g))
    return decoder


@exercise("03.1", "decoder_step")
def check_decoder_step(c: Checker, answer) -> None:
    g = random_generator(301)
    decoder = _random_decoder(g)
    mask = padding_mask(torch.tensor([7, 4, 6]), 7)
    annotations = torch.randn(3, 7, 10, generator=g) * mask[:, :, None]
    previous = torch.tensor([1, 5, 9])
    state = torch.randn(3, 8, generator=g)

    shape_hint = (
        "the attention module takes a batch of query sequences: give it the state as "
        "(batch, 1, hidden) with state.unsqueeze(1) and the mask as (batch, 1, m) with "
        "mask.unsqueeze(1), then squeeze(1) the context and the weights."
    )
    with torch.no_grad():
        result = c.call(
            answer, decoder, previous, state, annotations, mask, error_hint=shape_hint
        )
        expected_logits, expected_state, expected_weights = decoder.step(
            previous, state, annotations, annotations[:, 0], mask
        )
        embedded = decoder.embedding(previous)
        context = (expected_weights.unsqueeze(1) @ annotations).squeeze(1)
        logits_from_old_state = decoder.output(
            torch.cat([state, context, embedded], -1)
        )

    logits, new_state, weights = c.unpack(result, 3, "(logits, new_state, weights)")
    order_hint = "Return (logits, new_state, weights) in that order."
    logits = c.tensor(
        logits, "logits", shape=(3, 13), shape_hint=f"(batch, vocab). {order_hint}"
    )
    new_state = c.tensor(
        new_state,
        "new_state",
        shape=(3, 8),
        shape_hint=f"(batch, hidden). {order_hint}",
    )
    weights = c.tensor(
        weights,
        "weights",
        shape=(3, 7),
        shape_hint=f"(batch, m): one weight per input position; {shape_hint}",
    )
    c.expect(
        (weights[~mask] == 0).all(),
        "some weight falls on padding positions: pass the mask to the attention module "
        "(as mask.unsqueeze(1)) so that padding gets exactly 0.",
    )
    c.expect_close(
        weights,
        expected_weights,
        "the attention weights are wrong: the query is the PREVIOUS state s_{i-1} "
        "(the `state` argument), and the keys and values are both the annotations.",
    )
    c.expect_close(
        new_state,
        expected_state,
        "the new state is wrong: call decoder.rnn(torch.cat([embedded, context], "
        "dim=-1), state), with the embedding of the previous character first.",
    )
    c.expect_close(
        logits,
        expected_logits,
        "the logits are wrong: decoder.output reads torch.cat([new_state, context, "
        "embedded], dim=-1).",
        mistakes=[
            (
                logits_from_old_state,
                "the logits must come from the NEW state s_i (after the GRU cell), not "
                "from the previous state.",
            ),
        ],
    )
