"""Lab 03's checker: the reference passes and each mistake is named (stubs: test_checks.py)."""

import pytest
import torch

from attention_kit.checks import check_decoder_step
from conftest import assert_fails_with, assert_passes


def make_step(
    query_axis=True, mask_axis=True, use_mask=True, order="ec", old_state=False
):
    """A decoder step with one thing optionally wrong."""

    def answer(decoder, previous, state, annotations, mask):
        embedded = decoder.embedding(previous)
        query = state.unsqueeze(1) if query_axis else state
        key_mask = mask if use_mask else torch.ones_like(mask)
        key_mask = key_mask.unsqueeze(1) if mask_axis else key_mask
        context, weights = decoder.attention(query, annotations, annotations, key_mask)
        context, weights = context.squeeze(1), weights.squeeze(1)
        parts = [embedded, context] if order == "ec" else [context, embedded]
        new_state = decoder.rnn(torch.cat(parts, dim=-1), state)
        reader = state if old_state else new_state
        logits = decoder.output(torch.cat([reader, context, embedded], dim=-1))
        return logits, new_state, weights

    return answer


def test_reference_passes(capsys):
    assert_passes(check_decoder_step, make_step(), capsys, "decoder_step: 4/4")


@pytest.mark.parametrize(
    "answer, hint",
    [
        (make_step(use_mask=False), "pass the mask"),
        (make_step(query_axis=False), "state.unsqueeze(1)"),
        (make_step(mask_axis=False), "mask.unsqueeze(1)"),
        (make_step(order="ce"), "embedding of the previous character first"),
        (make_step(old_state=True), "NEW state"),
        (lambda *args: make_step()(*args)[::-1], "in that order"),
        (lambda *args: make_step()(*args)[:2], "return 3 values"),
    ],
)
def test_mistakes_fail_with_a_hint_that_names_them(answer, hint):
    assert_fails_with(check_decoder_step, answer, hint)
