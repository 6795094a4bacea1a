"""Checkers for Lab 03: Bahdanau attention (one decoder step, the teacher-forced loss,
greedy decoding)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import CharVocab
from ..masks import padding_mask
from ..models import Decoder, Seq2Seq, greedy_decode, seq2seq_loss
from .core import Checker, exercise, random_generator

PAD, BOS, EOS = CharVocab.PAD, CharVocab.BOS, CharVocab.EOS

# ---------------------------------------------------------------------------------------
# Exercise 03.1: one step of the attention decoder
# ---------------------------------------------------------------------------------------


def _randomise(module: torch.nn.Module, g: torch.Generator, scale: float) -> None:
    """Redraw every parameter of ``module`` from N(0, scale^2), from ``g``."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(scale * torch.randn(parameter.shape, generator=g))


def _random_decoder(g: torch.Generator) -> Decoder:
    """A small attention decoder with random weights; embed_dim != annotation_dim so
    that the parts of a concatenation cannot be swapped without an error."""
    decoder = Decoder(
        vocab_size=13, embed_dim=6, hidden_dim=8, annotation_dim=10, attention_dim=9
    )
    _randomise(decoder, g, 0.5)
    return decoder


def _step_inputs(
    g: torch.Generator, lengths: list[int], m: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """previous ``(batch,)``, state ``(batch, 8)``, annotations ``(batch, m, 10)`` (zero at
    padding) and mask ``(batch, m)`` for the decoder of :func:`_random_decoder`."""
    mask = padding_mask(torch.tensor(lengths), m)
    annotations = torch.randn(len(lengths), m, 10, generator=g) * mask[:, :, None]
    previous = torch.randint(0, 13, (len(lengths),), generator=g)
    state = torch.randn(len(lengths), 8, generator=g)
    return previous, state, annotations, mask


SQUEEZE_HINT = (
    "the attention module takes a batch of query sequences: give it the state as "
    "(batch, 1, hidden) with state.unsqueeze(1) and the mask as (batch, 1, m) with "
    "mask.unsqueeze(1), then remove that axis again with squeeze(1) (not squeeze(), "
    "which also removes the batch axis when the batch has one row, and the m axis when "
    "the input has one character)."
)


@exercise("03.1", "decoder_step")
def check_decoder_step(c: Checker, answer) -> None:
    g = random_generator(301)
    decoder = _random_decoder(g)
    previous, state, annotations, mask = _step_inputs(g, [7, 4, 6], 7)

    with torch.no_grad():
        result = c.call(
            answer, decoder, previous, state, annotations, mask, error_hint=SQUEEZE_HINT
        )
        expected_logits, expected_state, expected_weights = decoder.step(
            previous, state, annotations, mask
        )
        query = state.unsqueeze(1)
        _, unmasked = decoder.attention(query, annotations, annotations)
        _, inverted = decoder.attention(query, annotations, annotations, ~mask[:, None])
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
        shape_hint=f"(batch, m): one weight per input position; {SQUEEZE_HINT}",
    )
    c.expect_close(
        weights,
        expected_weights,
        "the attention weights are wrong: the query is the PREVIOUS state s_{i-1} "
        "(the `state` argument), and the keys and values are both the annotations.",
        mistakes=[
            (
                unmasked[:, 0],
                "some weight falls on padding positions: pass the mask to the attention "
                "module (as mask.unsqueeze(1)) so that padding gets exactly 0.",
            ),
            (
                inverted[:, 0],
                "your mask is inverted: the weights sit on the padding and the real "
                "characters get 0. In this course a mask is True where a position MAY "
                "be attended (a real character), so pass `mask` itself, not `~mask`.",
            ),
        ],
    )
    c.expect_close(
        new_state,
        expected_state,
        "the new state is wrong: call decoder.rnn(torch.cat([embedded, context], "
        "dim=-1), state), with the embedding of the previous character first, and "
        "the context the attention module returns (weights @ annotations).",
        mistakes=[
            (
                state,
                "new_state is the state you were given: return what decoder.rnn "
                "computes from it.",
            )
        ],
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
            (
                torch.log_softmax(expected_logits, dim=-1),
                "return the raw scores (logits) of decoder.output, without log_softmax: "
                "the loss (F.cross_entropy) and the argmax work on logits.",
            ),
            (
                torch.softmax(expected_logits, dim=-1),
                "return the raw scores (logits) of decoder.output, without softmax: "
                "the loss (F.cross_entropy) and the argmax work on logits.",
            ),
        ],
    )

    # Edge shapes: one row in the batch, and inputs of one character.
    for lengths, m, what in (
        ([5], 6, "a batch of one date"),
        ([1, 1], 1, "inputs of one character"),
        ([1, 3], 3, "a batch with a one-character input"),
    ):
        previous, state, annotations, mask = _step_inputs(g, lengths, m)
        with torch.no_grad():
            result = c.call(
                answer,
                decoder,
                previous,
                state,
                annotations,
                mask,
                error_hint=f"this failed on {what}. {SQUEEZE_HINT}",
            )
            expected = decoder.step(previous, state, annotations, mask)
        found = c.unpack(result, 3, "(logits, new_state, weights)")
        for value, reference, name in zip(
            found, expected, ("logits", "new_state", "weights"), strict=True
        ):
            value = c.tensor(
                value,
                f"{name} (on {what})",
                shape=reference.shape,
                shape_hint=SQUEEZE_HINT,
            )
            c.expect_close(value, reference, f"{name} is wrong on {what}.")

    # A correct answer works in float64 too (no float32 constants baked in).
    previous, state, annotations, mask = _step_inputs(g, [3, 5], 5)
    double = _random_decoder(g).double()
    with torch.no_grad():
        result = c.call(
            answer,
            double,
            previous,
            state.double(),
            annotations.double(),
            mask,
            error_hint="this failed on a float64 decoder: create no tensor with a "
            "fixed dtype; use the dtype of the inputs.",
        )
        expected = double.step(previous, state.double(), annotations.double(), mask)
    found = c.unpack(result, 3, "(logits, new_state, weights)")
    c.expect(
        all(isinstance(v, Tensor) and v.dtype == torch.float64 for v in found),
        "on a float64 decoder your results are not float64: do not convert to float32.",
    )
    c.expect_close(
        found[0], expected[0], "the logits are wrong on a float64 decoder.", atol=1e-9
    )


# ---------------------------------------------------------------------------------------
# A small random encoder-decoder, for Exercises 03.2 and 03.3
# ---------------------------------------------------------------------------------------

SOURCE_SIZE, TARGET_SIZE = 11, 8  # ids 0-2 are PAD, BOS, EOS; the rest are characters


def _random_model(seed: int, scale: float = 0.6, eos_bias: float = 0.0) -> Seq2Seq:
    """A small attention encoder-decoder with random weights; ``eos_bias`` is added
    to the EOS logit (it sets how soon greedy decoding ends), and PAD and BOS are never
    predicted, as in a trained model."""
    g = random_generator(seed)
    model = Seq2Seq(
        SOURCE_SIZE, TARGET_SIZE, embed_dim=5, hidden_dim=7, attention_dim=6
    )
    _randomise(model, g, scale)
    with torch.no_grad():
        model.encoder.embedding.weight[PAD] = 0
        model.decoder.output.bias[EOS] += eos_bias
        model.decoder.output.bias[[PAD, BOS]] = -50.0
    return model.eval()


def _sources(
    g: torch.Generator, lengths: list[int], width: int
) -> tuple[Tensor, Tensor]:
    """Random source ids ``(batch, width)`` padded with PAD after ``lengths``."""
    lengths_t = torch.tensor(lengths)
    ids = torch.randint(3, SOURCE_SIZE, (len(lengths), width), generator=g)
    return ids.masked_fill(~padding_mask(lengths_t, width), PAD), lengths_t


def _targets(g: torch.Generator, lengths: list[int]) -> Tensor:
    """Random targets ``(batch, max length)``: ``length - 1`` characters, EOS, PAD."""
    width = max(lengths)
    chars = torch.randint(3, TARGET_SIZE, (len(lengths), width), generator=g)
    position = torch.arange(width)
    lengths_t = torch.tensor(lengths)[:, None]
    chars = torch.where(position == lengths_t - 1, EOS, chars)
    return chars.masked_fill(position >= lengths_t, PAD)


# ---------------------------------------------------------------------------------------
# Exercise 03.2: the teacher-forced loss
# ---------------------------------------------------------------------------------------


def _loss_variant(model: Seq2Seq, batch, mistake: str) -> Tensor:
    """The loss with one classic mistake, for the hints."""
    ids, lengths, targets = batch
    annotations, mask, state = model.encode(ids, lengths)
    start = torch.full_like(targets[:, :1], BOS)
    if mistake == "reads the answer":  # step i reads target i: the answer leaks
        inputs = targets
    elif mistake == "starts without bos":
        inputs = torch.cat([targets[:, :1], targets[:, :-1]], dim=1)
    else:
        inputs = torch.cat([start, targets[:, :-1]], dim=1)
    previous, all_logits = start[:, 0], []
    for i in range(targets.shape[1]):
        if mistake != "greedy":
            previous = inputs[:, i]
        logits, state, _ = model.decoder.step(previous, state, annotations, mask)
        all_logits.append(logits)
        previous = logits.argmax(dim=-1)
    logits = torch.stack(all_logits, dim=1)
    if mistake == "softmax":
        logits = logits.softmax(dim=-1)
    flat_logits, flat_targets = logits.flatten(0, 1), targets.flatten()
    if mistake == "nll on logits":
        return F.nll_loss(flat_logits, flat_targets, ignore_index=PAD)
    if mistake == "counts padding":
        return F.cross_entropy(flat_logits, flat_targets)
    losses = F.cross_entropy(flat_logits, flat_targets, reduction="none")
    real = (flat_targets != PAD).to(losses.dtype)
    if mistake == "sum":
        return (losses * real).sum()
    if mistake == "mean per row":
        per_row = (losses * real).view(targets.shape).sum(1) / real.view(
            targets.shape
        ).sum(1)
        return per_row.mean()
    if mistake == "mean over rows":  # divides by the batch size, not the characters
        return (losses * real).sum() / targets.shape[0]
    return (losses * real).sum() / real.sum()


LOSS_HINTS = {
    "reads the answer": "step i reads the character it must predict, so the answer "
    "leaks in: step 0 reads <bos> and step i reads the TRUE previous character "
    "targets[:, i - 1] (the targets shifted one place to the right).",
    "starts without bos": "step 0 must read <bos> (CharVocab.BOS), then step i the true "
    "previous character targets[:, i - 1].",
    "greedy": "this is greedy decoding: teacher forcing feeds the TRUE previous "
    "character targets[:, i - 1], not the model's own guess.",
    "counts padding": "padding counts in your loss: the targets after EOS are PAD and "
    "must be left out, e.g. F.cross_entropy(..., ignore_index=PAD).",
    "softmax": "F.cross_entropy takes the raw logits; it applies the (log-)softmax "
    "itself, so do not apply softmax first.",
    "nll on logits": "F.nll_loss expects log-probabilities, not logits: use "
    "F.cross_entropy on the logits (or F.nll_loss on logits.log_softmax(dim=-1)).",
    "sum": "the loss must be the MEAN over the real (non-PAD) target characters, not "
    "their sum.",
    "mean per row": "average over all real characters of the batch at once (each "
    "character counts the same), not per row and then over the rows.",
    "mean over rows": "divide by the number of real (non-PAD) target characters, not by "
    "the number of rows.",
}

CROSS_ENTROPY_HINT = (
    "stack the logits of all steps into (batch, n, vocab); F.cross_entropy wants logits "
    "(N, vocab) and targets (N,), so flatten both: logits.flatten(0, 1) and "
    "targets.flatten()."
)

FORWARD_HINT = (
    "write the loop yourself: call model.encode and then your decoder_step once per "
    "target character. model(...) would run attention_kit's own loop."
)


def _loss_cases(g: torch.Generator) -> list[tuple[str, tuple[Tensor, Tensor, Tensor]]]:
    """(description, batch) pairs: padded sources and targets of unequal lengths, equal
    lengths as in the dates, one row, and one-character inputs and targets."""
    cases = []
    for what, source_lengths, width, target_lengths in (
        ("sources and targets of unequal lengths", [5, 2, 4], 6, [4, 2, 3]),
        ("targets of equal length, as in the dates", [3, 6], 6, [5, 5]),
        ("a batch of one", [4], 4, [3]),
        ("one-character inputs and a target that is just EOS", [1, 1], 1, [1, 2]),
    ):
        ids, lengths = _sources(g, source_lengths, width)
        cases.append((what, (ids, lengths, _targets(g, target_lengths))))
    return cases


@exercise("03.2", "teacher_forced_loss")
def check_teacher_forced_loss(c: Checker, answer) -> None:
    g = random_generator(302)
    model = _random_model(seed=32)
    parameters = list(model.parameters())
    for number, (what, batch) in enumerate(_loss_cases(g)):
        with c.forbidding(FORWARD_HINT, (Seq2Seq, "forward")):
            loss = c.call(answer, model, batch, error_hint=CROSS_ENTROPY_HINT)
        if isinstance(loss, float):
            c.fail(
                "return the loss tensor itself, not loss.item(): fit calls "
                "loss.backward() on it."
            )
        expected = seq2seq_loss(model, batch)
        found = c.tensor(loss, f"the loss (on {what})", shape=())
        c.expect_close(
            found,
            expected,
            f"the loss is wrong on {what}: step 0 reads <bos>, step i the true "
            "character targets[:, i - 1]; the loss is F.cross_entropy of all steps' "
            "logits against the targets, ignoring PAD.",
            mistakes=[
                (_loss_variant(model, batch, mistake), hint)
                for mistake, hint in LOSS_HINTS.items()
            ],
        )
        if number == 0:  # the gradient reaches every parameter, as fit needs
            found_grads = c.gradients(
                loss,
                parameters,
                "the loss",
                "the loss does not pass gradients back to the model's parameters: no "
                ".detach(), .item() or torch.no_grad() inside the loss.",
                weights=torch.ones(()),
            )
            expected_grads = torch.autograd.grad(expected, parameters)
            c.expect(
                all(
                    torch.allclose(a, b.double(), atol=1e-6, rtol=1e-4)
                    for a, b in zip(found_grads, expected_grads, strict=True)
                ),
                "the loss is right but its gradient is not: does something cut the "
                "graph (.detach() on the state, a tensor rebuilt with torch.tensor)?",
            )

    double = _random_model(seed=33).double()
    what, batch = _loss_cases(g)[0]
    with c.forbidding(FORWARD_HINT, (Seq2Seq, "forward")):
        loss = c.call(
            answer,
            double,
            batch,
            error_hint="this failed on a float64 model: create no tensor with a "
            "fixed floating dtype.",
        )
    c.expect(
        isinstance(loss, Tensor) and loss.dtype == torch.float64,
        "on a float64 model your loss is not float64: do not convert to float32.",
    )
    c.expect_close(
        loss, seq2seq_loss(double, batch), "the loss is wrong on a float64 model."
    )


# ---------------------------------------------------------------------------------------
# Exercise 03.3: greedy decoding
# ---------------------------------------------------------------------------------------


class _TooManySteps(RuntimeError):
    pass


def _count_steps(model: Seq2Seq, limit: int, batch: int):
    """A hook on the decoder's GRU cell that stops a decoding loop that runs on past
    ``limit`` steps (``limit * batch`` calls, so decoding one row at a time is fine)."""
    calls = [0]

    def hook(module, inputs):
        calls[0] += 1
        if calls[0] > limit * batch:
            raise _TooManySteps(
                f"the decoder ran more than max_steps = {limit} steps: stop after "
                "max_steps steps even if some row has not written EOS yet."
            )

    return model.decoder.rnn.register_forward_pre_hook(hook)


@torch.no_grad()
def _decode_variant(
    model: Seq2Seq, ids: Tensor, lengths: Tensor, max_steps: int, mistake: str
) -> Tensor:
    """Greedy decoding with one classic mistake, for the hints."""
    annotations, mask, state = model.encode(ids, lengths)
    previous = torch.full((ids.shape[0],), BOS)
    finished = torch.zeros(ids.shape[0], dtype=torch.bool)
    outputs = [previous] if mistake == "keeps bos" else []
    for _ in range(max_steps):
        logits, state, _ = model.decoder.step(
            BOS * torch.ones_like(previous) if mistake == "no feedback" else previous,
            state,
            annotations,
            mask,
        )
        previous = logits.argmax(dim=-1)
        if mistake not in ("no padding", "never stops"):
            previous = previous.masked_fill(finished, PAD)
        stops = mistake not in ("never stops", "runs on")
        outputs.append(previous)
        finished = finished | (previous == EOS)
        if mistake == "stops at the first eos" and finished.any():
            break
        if stops and finished.all():
            break
    result = torch.stack(outputs, dim=1)
    if mistake == "drops eos":
        result = result.masked_fill(result == EOS, PAD)
    return result


DECODE_HINTS = {
    "never stops": "decoding must stop once every row has written EOS (and write PAD "
    "after a row's EOS): yours always runs max_steps steps.",
    "runs on": "decoding must stop once every row has written EOS, e.g. with "
    "`if finished.all(): break`: yours always runs max_steps steps.",
    "no padding": "after a row has written EOS, its later positions must be PAD: use "
    "a (batch,) boolean `finished` and previous.masked_fill(finished, PAD).",
    "stops at the first eos": "you stop as soon as ONE row has written EOS; stop only "
    "when EVERY row has, e.g. `if finished.all(): break`.",
    "no feedback": "each step must read the previous step's prediction (greedy "
    "decoding feeds back its own output); yours reads <bos> every time.",
    "keeps bos": "do not return the <bos> you start from: the output starts with the "
    "first predicted character.",
    "drops eos": "keep each row's EOS in the output (it says where the row ends); only "
    "the positions AFTER it are PAD.",
}

BATCH_HINT = (
    "decode the whole batch at once: `previous` holds one id per row, the argmax is "
    "over the vocabulary, logits.argmax(dim=-1), and which rows have ended is a "
    "(batch,) boolean tensor such as `finished | (previous == EOS)`, not an `if` on one "
    "value or .item()."
)


def _decode_cases() -> list[tuple[str, Seq2Seq, Tensor, Tensor, int]]:
    """(description, model, ids, lengths, max_steps). The seed and the EOS bias were
    chosen so that the four rows of the first case write EOS at steps 3, 4, 1 and 2;
    tests/test_checks_unit03.py checks that each case covers what it says."""
    g = random_generator(303)
    model = _random_model(seed=70, scale=1.0, eos_bias=0.5)
    ids, lengths = _sources(g, [5, 2, 4, 6], 6)
    short_ids, short_lengths = _sources(g, [1, 1, 1], 1)
    return [
        ("rows that end at different steps", model, ids, lengths, 9),
        ("a row that never writes EOS", model, ids, lengths, 4),
        ("a batch of one", model, ids[1:2], lengths[1:2], 9),
        ("max_steps = 1", model, ids, lengths, 1),
        ("one-character inputs", model, short_ids, short_lengths, 6),
        ("a float64 model", _random_model(70, 1.0, 0.5).double(), ids, lengths, 9),
    ]


@exercise("03.3", "greedy_decode")
def check_greedy_decode(c: Checker, answer) -> None:
    for what, model, ids, lengths, max_steps in _decode_cases():
        handle = _count_steps(model, max_steps, ids.shape[0])
        try:
            with c.forbidding(FORWARD_HINT, (Seq2Seq, "forward")):
                result = c.call(
                    answer,
                    model,
                    ids,
                    lengths,
                    max_steps,
                    error_hint=lambda error: (
                        "" if isinstance(error, _TooManySteps) else BATCH_HINT
                    ),
                )
        finally:
            handle.remove()
        expected = greedy_decode(model, ids, lengths, max_steps)
        if not isinstance(result, Tensor):
            c.fail(
                f"return a tensor of ids (batch, steps); yours is {type(result).__name__}"
                " (torch.stack(outputs, dim=1) turns a list of (batch,) tensors into one)."
            )
        c.expect(
            not result.is_floating_point(),
            "return character ids (an integer tensor, as argmax gives), not floats.",
        )
        c.expect(
            result.dim() == 2 and result.shape[0] == ids.shape[0],
            f"the output should be (batch, steps) = ({ids.shape[0]}, ...), yours is "
            f"{tuple(result.shape)}: stack the steps along dim=1.",
        )
        c.expect(
            result.shape[1] <= max_steps,
            f"your output has {result.shape[1]} steps, more than max_steps = "
            f"{max_steps}: stop after max_steps steps even if some row has not written "
            "EOS yet (and do not return the <bos> you start from).",
        )
        c.expect_close(
            result.double(),
            expected.double(),
            f"the decoded ids are wrong on {what}. Start from <bos>, feed back "
            "logits.argmax(dim=-1), write PAD after a row's EOS, and stop when every "
            "row has written EOS or after max_steps steps.",
            mistakes=[
                (_decode_variant(model, ids, lengths, max_steps, m).double(), hint)
                for m, hint in DECODE_HINTS.items()
            ],
        )
