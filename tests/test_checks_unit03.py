"""Lab 03's checkers: correct answers pass, written in several ways, and each mistake is
named (stubs: test_checks.py, which also runs the MISTAKES list below)."""

import pytest
import torch
import torch.nn.functional as F

from attention_kit.checks import (
    check_decoder_step,
    check_greedy_decode,
    check_teacher_forced_loss,
    unit03,
)
from attention_kit.data import CharVocab
from attention_kit.models import greedy_decode as kit_greedy_decode
from conftest import assert_fails_with, assert_passes

PAD, BOS, EOS = CharVocab.PAD, CharVocab.BOS, CharVocab.EOS

# ---------------------------------------------------------------------------------------
# 03.1 decoder_step
# ---------------------------------------------------------------------------------------


def make_step(
    query_axis=True,
    mask_axis=True,
    use_mask=True,
    invert_mask=False,
    order="ec",
    old_state=False,
    squeeze_all=False,
    finish=None,
    return_old_state=False,
):
    """A decoder step with one thing optionally wrong."""

    def answer(decoder, previous, state, annotations, mask):
        embedded = decoder.embedding(previous)
        query = state.unsqueeze(1) if query_axis else state
        key_mask = ~mask if invert_mask else mask
        key_mask = key_mask if use_mask else torch.ones_like(mask)
        key_mask = key_mask.unsqueeze(1) if mask_axis else key_mask
        context, weights = decoder.attention(query, annotations, annotations, key_mask)
        if squeeze_all:
            context, weights = context.squeeze(), weights.squeeze()
        else:
            context, weights = context.squeeze(1), weights.squeeze(1)
        parts = [embedded, context] if order == "ec" else [context, embedded]
        new_state = decoder.rnn(torch.cat(parts, dim=-1), state)
        reader = state if old_state else new_state
        logits = decoder.output(torch.cat([reader, context, embedded], dim=-1))
        if finish is not None:
            logits = finish(logits)
        return logits, state if return_old_state else new_state, weights

    return answer


def step_with_einsum(decoder, previous, state, annotations, mask):
    """Right, written without the module's forward: scores, softmax and einsum."""
    attention = decoder.attention
    scores = attention.scores(state[:, None, :], annotations)[:, 0]  # (batch, m)
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    context = torch.einsum("bm,bmd->bd", weights, annotations)
    embedded = decoder.embedding(previous)
    new_state = decoder.rnn(torch.cat([embedded, context], dim=-1), state)
    logits = decoder.output(torch.cat([new_state, context, embedded], dim=-1))
    return logits, new_state, weights


# ---------------------------------------------------------------------------------------
# 03.2 teacher_forced_loss
# ---------------------------------------------------------------------------------------


def make_loss(
    shift=1,
    ignore_padding=True,
    feed="truth",
    detach_state=False,
    criterion=F.cross_entropy,
):
    """A teacher-forced loss with one thing optionally wrong; it uses the learner's
    step (the right one of make_step)."""
    step = make_step()

    def answer(model, batch):
        ids, lengths, targets = batch
        annotations, mask, state = model.encode(ids, lengths)
        start = torch.full_like(targets[:, :1], BOS)
        inputs = torch.cat([start, targets], dim=1)[:, 1 - shift :]
        previous, all_logits = start[:, 0], []
        for i in range(targets.shape[1]):
            if feed == "truth":
                previous = inputs[:, i]
            logits, state, _ = step(model.decoder, previous, state, annotations, mask)
            if detach_state:
                state = state.detach()
            all_logits.append(logits)
            previous = logits.argmax(dim=-1)
        logits = torch.stack(all_logits, dim=1)
        return criterion(
            logits.flatten(0, 1),
            targets.flatten(),
            ignore_index=PAD if ignore_padding else -100,
        )

    return answer


def loss_by_hand(model, batch):
    """Right, written differently: log_softmax, gather, and a masked mean."""
    ids, lengths, targets = batch
    annotations, mask, state = model.encode(ids, lengths)
    decoder_inputs = torch.cat([torch.full_like(targets[:, :1], BOS), targets], dim=1)
    log_probs = []
    for i in range(targets.shape[1]):
        logits, state, _ = model.decoder.step(
            decoder_inputs[:, i], state, annotations, mask
        )
        log_probs.append(logits.log_softmax(dim=-1))
    picked = torch.stack(log_probs, dim=1).gather(2, targets[..., None])[..., 0]
    real = targets != PAD
    return -(picked * real).sum() / real.sum()


def loss_sum(model, batch):
    return make_loss()(model, batch) * (batch[2] != PAD).sum()


def loss_item(model, batch):
    return make_loss()(model, batch).item()


def loss_via_forward(model, batch):
    ids, lengths, targets = batch
    logits, _ = model(ids, lengths, targets)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)


def loss_logits_unflattened(model, batch):
    """cross_entropy on (batch, n, vocab) treats n as the classes."""
    ids, lengths, targets = batch
    annotations, mask, state = model.encode(ids, lengths)
    inputs = torch.cat([torch.full_like(targets[:, :1], BOS), targets[:, :-1]], 1)
    all_logits = []
    for i in range(targets.shape[1]):
        logits, state, _ = model.decoder.step(inputs[:, i], state, annotations, mask)
        all_logits.append(logits)
    return F.cross_entropy(torch.stack(all_logits, 1), targets, ignore_index=PAD)


# ---------------------------------------------------------------------------------------
# 03.3 greedy_decode
# ---------------------------------------------------------------------------------------


def make_decode(stop="all", pad=True, feed=True, dim=-1, keep_bos=False, limit=True):
    """Greedy decoding with one thing optionally wrong, on the learner's step."""
    step = make_step()

    @torch.no_grad()
    def answer(model, ids, lengths, max_steps):
        annotations, mask, state = model.encode(ids, lengths)
        previous = torch.full((ids.shape[0],), BOS)
        finished = torch.zeros(ids.shape[0], dtype=torch.bool)
        outputs = [previous] if keep_bos else []
        steps = 0
        while steps < max_steps or not limit:
            steps += 1
            given = previous if feed else torch.full_like(previous, BOS)
            logits, state, _ = step(model.decoder, given, state, annotations, mask)
            previous = logits.argmax(dim=dim)
            if pad:
                previous = previous.masked_fill(finished, PAD)
            outputs.append(previous)
            finished = finished | (previous == EOS)
            if stop == "all" and finished.all():
                break
            if stop == "any" and finished.any():
                break
        return torch.stack(outputs, dim=1)

    return answer


@torch.no_grad()
def decode_one_row_at_a_time(model, ids, lengths, max_steps):
    """Not batch-aware: `if previous == EOS` works only for a batch of one."""
    annotations, mask, state = model.encode(ids, lengths)
    previous, outputs = torch.full((ids.shape[0],), BOS), []
    for _ in range(max_steps):
        logits, state, _ = model.decoder.step(previous, state, annotations, mask)
        previous = logits.argmax(dim=-1)
        outputs.append(previous)
        if previous == EOS:
            break
    return torch.stack(outputs, dim=1)


@torch.no_grad()
def decode_list_of_lists(model, ids, lengths, max_steps):
    return kit_greedy_decode(model, ids, lengths, max_steps).tolist()


@torch.no_grad()
def decode_floats(model, ids, lengths, max_steps):
    return kit_greedy_decode(model, ids, lengths, max_steps).float()


def decode_row_by_row(model, ids, lengths, max_steps):
    """Right, written differently: one row at a time, then padded to one tensor."""
    rows = []
    for b in range(ids.shape[0]):
        annotations, mask, state = model.encode(ids[b : b + 1], lengths[b : b + 1])
        previous, row = torch.tensor([BOS]), []
        for _ in range(max_steps):
            with torch.no_grad():
                logits, state, _ = make_step()(
                    model.decoder, previous, state, annotations, mask
                )
            previous = logits.argmax(dim=-1)
            row.append(int(previous))
            if row[-1] == EOS:
                break
        rows.append(row)
    width = max(len(row) for row in rows)
    return torch.tensor([row + [PAD] * (width - len(row)) for row in rows])


MISTAKES = [
    # 03.1
    (check_decoder_step, make_step(use_mask=False), "pass the mask"),
    (check_decoder_step, make_step(invert_mask=True), "inverted"),
    (check_decoder_step, make_step(query_axis=False), "state.unsqueeze(1)"),
    (check_decoder_step, make_step(mask_axis=False), "mask.unsqueeze(1)"),
    (check_decoder_step, make_step(squeeze_all=True), "not squeeze()"),
    (check_decoder_step, make_step(order="ce"), "embedding of the previous character"),
    (check_decoder_step, make_step(old_state=True), "NEW state"),
    (check_decoder_step, make_step(return_old_state=True), "the state you were given"),
    (
        check_decoder_step,
        make_step(finish=lambda x: x.log_softmax(-1)),
        "without log_softmax",
    ),
    (check_decoder_step, make_step(finish=lambda x: x.softmax(-1)), "without softmax"),
    (check_decoder_step, make_step(finish=lambda x: x.float()), "float64"),
    (check_decoder_step, lambda *args: make_step()(*args)[::-1], "in that order"),
    (check_decoder_step, lambda *args: make_step()(*args)[:2], "return 3 values"),
    # 03.2
    (check_teacher_forced_loss, make_loss(shift=0), "answer leaks"),
    (check_teacher_forced_loss, make_loss(ignore_padding=False), "ignore_index"),
    (check_teacher_forced_loss, make_loss(feed="own"), "TRUE previous"),
    (check_teacher_forced_loss, make_loss(detach_state=True), "gradient"),
    (check_teacher_forced_loss, loss_sum, "MEAN"),
    (check_teacher_forced_loss, loss_item, "not loss.item()"),
    (check_teacher_forced_loss, loss_via_forward, "write the loop yourself"),
    (check_teacher_forced_loss, loss_logits_unflattened, "flatten"),
    (check_teacher_forced_loss, make_loss(criterion=F.nll_loss), "log-probabilities"),
    # 03.3
    (check_greedy_decode, make_decode(stop="never"), "must stop once every row"),
    (check_greedy_decode, make_decode(pad=False), "must be PAD"),
    (check_greedy_decode, make_decode(stop="never", pad=False), "(and write PAD"),
    (check_greedy_decode, make_decode(stop="any"), "EVERY row"),
    (check_greedy_decode, make_decode(feed=False), "feeds back its own output"),
    (check_greedy_decode, make_decode(dim=0), "argmax is over the vocabulary"),
    (check_greedy_decode, make_decode(keep_bos=True), "<bos>"),
    (check_greedy_decode, make_decode(limit=False), "more than max_steps"),
    (check_greedy_decode, decode_one_row_at_a_time, "whole batch"),
    (check_greedy_decode, decode_list_of_lists, "return a tensor of ids"),
    (check_greedy_decode, decode_floats, "integer tensor"),
]


@pytest.mark.parametrize(
    "checker, answer, message",
    [
        (check_decoder_step, make_step(), "decoder_step: "),
        (check_decoder_step, step_with_einsum, "decoder_step: "),
        (check_teacher_forced_loss, make_loss(), "teacher_forced_loss: "),
        (check_teacher_forced_loss, loss_by_hand, "teacher_forced_loss: "),
        (check_greedy_decode, make_decode(), "greedy_decode: "),
        (check_greedy_decode, decode_row_by_row, "greedy_decode: "),
        (check_greedy_decode, kit_greedy_decode, "greedy_decode: "),
    ],
)
def test_right_answers_pass(checker, answer, message, capsys):
    assert_passes(checker, answer, capsys, message)
    assert checker.passed


def test_passed_turns_false_again_after_a_wrong_answer(capsys):
    assert_passes(check_greedy_decode, make_decode(), capsys)
    assert check_greedy_decode.passed
    assert_fails_with(check_greedy_decode, make_decode(feed=False), "feeds back")
    assert not check_greedy_decode.passed


def test_the_loss_waits_for_the_decoder_step(capsys):
    def step_stub(*args):
        raise NotImplementedError("Exercise 03.1")

    def loss_on_the_stub(model, batch):
        ids, lengths, targets = batch
        annotations, mask, state = model.encode(ids, lengths)
        return step_stub(model.decoder, targets[:, 0], state, annotations, mask)

    check_teacher_forced_loss(loss_on_the_stub)
    assert "waits for Exercise 03.1" in capsys.readouterr().out
    assert not check_teacher_forced_loss.passed


def test_decode_cases_cover_what_they_say():
    cases = {what: case for what, *case in unit03._decode_cases()}
    model, ids, lengths, max_steps = cases["rows that end at different steps"]
    out = kit_greedy_decode(model, ids, lengths, max_steps)
    ends = [row.index(EOS) for row in out.tolist()]
    assert ends == [3, 4, 1, 2] and out.shape[1] < max_steps
    model, ids, lengths, max_steps = cases["a row that never writes EOS"]
    out = kit_greedy_decode(model, ids, lengths, max_steps)
    assert [EOS in row for row in out.tolist()].count(False) == 1
    assert out.shape[1] == max_steps
    # every mistake changes the output of the first case; all but running on to
    # max_steps (which is right when a row never ends) change the second
    for what in ("rows that end at different steps", "a row that never writes EOS"):
        args = cases[what]
        out = kit_greedy_decode(*args)
        for mistake in unit03.DECODE_HINTS:
            wrong = unit03._decode_variant(*args, mistake)
            differs = wrong.shape != out.shape or not torch.equal(wrong, out)
            assert differs or (what, mistake) == (
                "a row that never writes EOS",
                "runs on",
            )


def test_loss_cases_have_padding_and_edge_shapes():
    cases = dict(unit03._loss_cases(unit03.random_generator(0)))
    ids, lengths, targets = cases["sources and targets of unequal lengths"]
    assert (targets == PAD).any() and (ids == PAD).any()
    assert cases["a batch of one"][0].shape[0] == 1
    ids, lengths, targets = cases["one-character inputs and a target that is just EOS"]
    assert ids.shape[1] == 1 and targets[0].tolist() == [EOS, PAD]
