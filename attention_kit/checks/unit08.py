"""Checkers for Lab 08: the feed-forward network, the block, the LM loss, sampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..masks import causal_mask, padding_mask
from ..transformer import Block, FeedForward, filter_logits
from .core import Checker, exercise, random_generator

RANDOMNESS_HINT = (
    "two calls on the same input gave different outputs: something in your module is "
    "random. The checker calls .eval(), which turns nn.Dropout into the identity; "
    "F.dropout(..., training=True) or a random draw in forward stays random. The "
    "statement's network has no dropout: leave it out."
)


def _for_inference(c: Checker, module, *args) -> None:
    """Put the learner's module in eval mode (an nn.Dropout it may hold then does
    nothing) and fail with a hint if two calls on the same input still differ."""
    module.eval()
    with torch.no_grad():
        first, second = (c.call(module, *args) for _ in range(2))
    if isinstance(first, tuple | list) and first:
        first, second = first[0], second[0]
    tensors = isinstance(first, Tensor) and isinstance(second, Tensor)
    if tensors and first.shape == second.shape and not torch.equal(first, second):
        c.fail(RANDOMNESS_HINT)


# --- 08.1 FeedForward -------------------------------------------------------------------


@exercise("08.1", "FeedForward")
def check_feed_forward(c: Checker, answer) -> None:
    g = random_generator(801)
    d_model, d_ff = 6, 10  # d_ff is not 4 * d_model: the width must come from d_ff
    reference = FeedForward(d_model, d_ff)
    module = c.module_like(
        answer,
        reference,
        (d_model, d_ff),
        "Create up = nn.Linear(d_model, d_ff, bias=bias) and down = nn.Linear(d_ff, "
        "d_model, bias=bias): the hidden width is d_ff.",
        generator=g,
        bias_hint="the network has two layers, up and down, and no other parameters "
        "(no LayerNorm or extra layer: the block around it has those).",
    )
    _for_inference(c, module, torch.randn(2, 3, d_model, generator=g))
    up, down = reference.up, reference.down
    for shape in [(2, 5, d_model), (3, d_model), (1, 1, d_model)]:
        x = torch.randn(shape, generator=g)
        out = c.tensor(
            c.call(module, x),
            f"FeedForward(x of shape {shape})",
            shape=shape,
            shape_hint="The network maps every token's d_model features to d_model "
            "features: apply up, then GELU, then down to the last dimension.",
        )
        with torch.no_grad():
            expected = reference(x)
            c.expect_close(
                out,
                expected,
                "the output should be down(gelu(up(x))) for every token.",
                mistakes=[
                    (
                        down(up(x)),
                        "there is no non-linearity between up and down, so the two "
                        "layers are one linear map: apply F.gelu to up(x).",
                    ),
                    (
                        down(F.relu(up(x))),
                        "that is ReLU; this course's network (like GPT-2) uses GELU: "
                        "F.gelu(up(x)).",
                    ),
                    (
                        F.gelu(down(F.gelu(up(x)))),
                        "the non-linearity goes between up and down only, not after "
                        "down: the output is down(gelu(up(x))).",
                    ),
                    (
                        down(torch.tanh(up(x))),
                        "that is tanh; use GELU: F.gelu(up(x)).",
                    ),
                    (
                        down(F.gelu(up(x), approximate="tanh")),
                        "that is GELU's tanh approximation (GPT-2's code uses it); this "
                        "course's network uses the exact GELU: F.gelu(up(x)), without "
                        "approximate=.",
                    ),
                ],
            )
    plain = FeedForward(d_model, d_ff, bias=False)
    module = c.module_like(
        answer,
        plain,
        (d_model, d_ff, False),
        "Pass bias to both nn.Linear layers.",
        generator=g,
        bias_hint="FeedForward(d_model, d_ff, bias=False) must create its layers with "
        "bias=bias.",
    )
    x = torch.randn(2, 3, d_model, generator=g)
    _for_inference(c, module, x)
    out = c.tensor(c.call(module, x), "FeedForward(..., bias=False)(x)", shape=x.shape)
    with torch.no_grad():
        c.expect_close(out, plain(x), "with bias=False: down(gelu(up(x))), no biases.")


# --- 08.2 TransformerBlock --------------------------------------------------------------


def block_variants(
    block: Block, x: Tensor, mask: Tensor | None
) -> list[tuple[Tensor, str]]:
    """The outputs of the classic mistakes in a pre-LN block, each with its hint."""
    attention, ffn, n1, n2 = block.attention, block.ffn, block.norm1, block.norm2

    def attend(h: Tensor, m: Tensor | None = mask) -> Tensor:
        return attention(h, h, h, m)[0]

    post = n1(x + attend(x))
    h = n1(x)
    stream = h + attend(h)
    pre_x = x + attend(n1(x))
    ffn_first = x + ffn(n2(x))
    mistakes = [
        (
            n2(post + ffn(post)),
            "that is post-LN (LayerNorm after the residual addition, as in Vaswani et "
            "al. 2017). Pre-LN normalises the input of each sub-layer: x + "
            "attention(norm1(x)), then x + ffn(norm2(x)).",
        ),
        (
            stream + ffn(n2(stream)),
            "the residual carries norm1(x) instead of x: keep normed = norm1(x) for the "
            "attention's input only and add its output to the un-normalised x.",
        ),
        (
            attend(n1(x)) + ffn(n2(attend(n1(x)))),
            "the residual connection around the attention is missing: x = x + "
            "attention(...), not x = attention(...).",
        ),
        (
            ffn(n2(pre_x)),
            "the residual connection around the feed-forward network is missing: x = x "
            "+ ffn(norm2(x)).",
        ),
        (
            ffn_first + attend(n1(ffn_first)),
            "the feed-forward network comes after the attention, not before: first x + "
            "attention(norm1(x)), then x + ffn(norm2(x)).",
        ),
        (
            pre_x + ffn(n1(pre_x)),
            "norm1 is used twice: the feed-forward network's input is norm2(x), a "
            "LayerNorm with its own scale and shift.",
        ),
        (
            pre_x + ffn(n2(x)),
            "the two sub-layers run in parallel on the same x: in this block they are "
            "in sequence, the feed-forward network reads x after the attention's "
            "residual: x = x + attention(norm1(x)), then x + ffn(norm2(x)).",
        ),
    ]
    mistakes.append(
        (
            x + attend(x) + ffn(n2(x + attend(x))),
            "the attention's input is not normalised: normed = norm1(x), then x + "
            "attention(normed, normed, normed, mask).",
        )
    )
    if mask is not None:
        n = x.shape[-2]
        causal = causal_mask(n)
        if not torch.equal(
            mask & causal, mask.expand(torch.broadcast_shapes(mask.shape, causal.shape))
        ):
            own_hint = (
                "pass the given mask on unchanged: it need not be causal (an encoder "
                "block gets a padding mask alone, for example). The model builds the "
                "causal mask and passes it in; the block adds none of its own."
            )
            mistakes.append(
                (
                    block(x, mask & causal)[0],
                    "the mask is combined with a causal mask of your own: " + own_hint,
                )
            )
            mistakes.append(
                (
                    block(x, causal)[0],
                    "the given mask is replaced by a causal mask of your own: "
                    + own_hint,
                )
            )
        unmasked = block(x, None)[0]
        hint = "the mask is not used: pass it on, self.attention(normed, normed, normed, mask)."
        mistakes.append((unmasked, hint))
        mistakes.append(
            (
                block(x, ~mask)[0],
                "the mask is inverted: in this course (and in SDPA) True means MAY "
                "attend; nn.MultiheadAttention's True means NOT allowed. Pass the mask "
                "on unchanged.",
            )
        )
    else:
        n = x.shape[-2]
        mistakes.append(
            (
                block(x, causal_mask(n))[0],
                "with mask=None there is no mask: pass the given mask on as it is, "
                "do not build a causal mask of your own.",
            )
        )
    return mistakes


@exercise("08.2", "TransformerBlock")
def check_transformer_block(c: Checker, answer) -> None:
    g = random_generator(802)
    d_model, num_heads, d_ff = 8, 2, 12
    reference = Block(d_model, num_heads, d_ff, pre_norm=True)
    module = c.module_like(
        answer,
        reference,
        (d_model, num_heads, d_ff),
        "Keep the given __init__: norm1, attention = MultiHeadAttention(d_model, "
        "num_heads), norm2, ffn = FeedForward(d_model, d_ff).",
        generator=g,
        scale=0.5,
        bias_hint="keep the given __init__: norm1, attention, norm2 and ffn, and no "
        "other layers with parameters.",
    )
    _for_inference(c, module, torch.randn(2, 3, d_model, generator=g), causal_mask(3))
    lengths = torch.tensor([4, 2])
    not_causal = torch.tensor(  # every query may attend to some key, past or future
        [[1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.bool
    )
    cases = [
        (2, 5, causal_mask(5), "causal mask (5, 5)"),
        (2, 4, None, "None"),
        (1, 1, causal_mask(1), "causal mask (1, 1)"),
        (1, 3, causal_mask(3)[None].expand(1, 3, 3), "causal mask (1, 3, 3)"),
        (2, 4, padding_mask(lengths, 4)[:, None, :], "padding mask (2, 1, 4)"),
        (1, 4, not_causal, "a mask (4, 4) that is not causal"),
    ]
    for batch, n, mask, mask_name in cases:
        x = 2 * torch.randn(batch, n, d_model, generator=g) + 1
        what = f"block(x of shape {(batch, n, d_model)}, mask={mask_name})"
        result = c.call(module, x) if mask is None else c.call(module, x, mask)
        out, weights = c.pair(
            result, "(x, weights): the new x and the attention weights"
        )
        out = c.tensor(out, what, shape=(batch, n, d_model))
        weights = c.tensor(
            weights,
            f"the weights of {what}",
            shape=(batch, num_heads, n, n),
            shape_hint="Return the attention's weights as they come: (batch, heads, n, n).",
        )
        with torch.no_grad():
            expected, expected_weights = reference(x, mask)
            mistakes = block_variants(reference, x, mask)
        c.expect_close(
            out,
            expected,
            "the block should compute x + attention(norm1(x)), then x + ffn(norm2(x)).",
            mistakes=mistakes,
        )
        c.expect_close(
            weights,
            expected_weights,
            "return the weights of the block's self-attention on norm1(x), with the mask.",
        )
    x = torch.randn(2, 4, d_model, generator=g, requires_grad=True)
    out, _ = c.pair(c.call(module, x, causal_mask(4)), "(x, weights)")
    (found,) = c.gradients(out, [x], "the gradient of the block's output", "")
    (expected,) = torch.autograd.grad(
        (
            reference(x, causal_mask(4))[0]
            * torch.randn(2, 4, d_model, generator=random_generator(7))
        ).sum(),
        [x],
    )
    c.expect_close(
        found, expected, "the backward pass differs from the reference block."
    )


# --- 08.3 language_model_loss -----------------------------------------------------------


def _cross_entropy(logits: Tensor, targets: Tensor, keep: Tensor) -> Tensor:
    """Per-position cross-entropy, (batch, n'), zero where keep is False."""
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return losses * keep


def reference_lm_loss(logits: Tensor, tokens: Tensor, pad_id: int) -> Tensor:
    targets = tokens[:, 1:]
    keep = targets != pad_id
    return _cross_entropy(logits[:, :-1], targets, keep).sum() / keep.sum()


@exercise("08.3", "language_model_loss")
def check_language_model_loss(c: Checker, answer) -> None:
    g = random_generator(803)
    vocab, pad_id = 7, 3  # not 0: the padding id must come from the argument
    tokens = torch.randint(0, vocab, (3, 6), generator=g)
    tokens[tokens == pad_id] = 0
    tokens[1, 4:] = pad_id  # rows of different lengths, padded on the right
    tokens[2, 2:] = pad_id
    logits = 3 * torch.randn(3, 6, vocab, generator=g)
    for pad in (pad_id, 5):
        value = c.call(answer, logits, tokens, pad)
        loss = c.tensor(
            value,
            "language_model_loss(logits, tokens, pad_id)",
            shape=(),
            shape_hint="Return one number, a 0-dimensional tensor: the mean over every "
            "predicted position.",
        )
        keep = tokens[:, 1:] != pad
        shifted = _cross_entropy(logits[:, :-1], tokens[:, 1:], torch.ones_like(keep))
        everything = _cross_entropy(logits, tokens, tokens != pad)
        backwards = _cross_entropy(logits[:, 1:], tokens[:, :-1], tokens[:, :-1] != pad)
        per_row = (shifted * keep).sum(1) / keep.sum(1)
        keep_inputs = tokens[:, :-1] != pad  # masked by the input, not the target
        c.expect_close(
            loss,
            reference_lm_loss(logits, tokens, pad),
            "the loss should be the mean cross-entropy of logits[:, t] against tokens[:, "
            "t + 1], over the positions whose target is not pad_id.",
            mistakes=[
                (
                    everything.sum() / (tokens != pad).sum(),
                    "there is no shift: position t must predict the NEXT token, so "
                    "compare logits[:, :-1] with tokens[:, 1:].",
                ),
                (
                    backwards.sum() / (tokens[:, :-1] != pad).sum(),
                    "the shift goes the wrong way: logits[:, 1:] against tokens[:, :-1] "
                    "predicts the previous token. Use logits[:, :-1] and tokens[:, 1:].",
                ),
                (
                    shifted.mean(),
                    "the padded positions are in the loss: leave out every target equal "
                    "to pad_id (e.g. ignore_index=pad_id in F.cross_entropy).",
                ),
                (
                    (shifted * keep).sum(),
                    "that is the sum over positions; take the mean over the targets that "
                    "are not padding.",
                ),
                (
                    per_row.mean(),
                    "that is a mean of per-row means, which weighs a short row's tokens "
                    "more; average over all kept targets of the batch at once.",
                ),
                (
                    (shifted * keep_inputs).sum() / keep_inputs.sum(),
                    "the padding is read from the inputs (tokens[:, :-1]); leave out the "
                    "positions whose TARGET tokens[:, 1:] is pad_id: the last real token "
                    "of a padded row has nothing to predict.",
                ),
                (
                    reference_lm_loss(logits, tokens, pad) / math.log(2),
                    "that is the loss in bits (divided by ln 2); return it in nats, as "
                    "F.cross_entropy gives it (bits per character are computed from it "
                    "later).",
                ),
                (
                    (shifted * keep).sum() / keep.numel(),
                    "divide by the number of targets that are not padding, not by all "
                    "positions.",
                ),
            ],
        )
    short = torch.tensor([[2, 4]])  # one sequence of two tokens: a single target
    value = c.call(answer, logits[:1, :2], short, pad_id)
    loss = c.tensor(value, "the loss of a batch of one two-token sequence", shape=())
    c.expect_close(
        loss,
        reference_lm_loss(logits[:1, :2], short, pad_id),
        "with one sequence of two tokens the loss is the cross-entropy of logits[0, 0] "
        "against token 1.",
    )
    # gradients reach the logits, and only through the kept positions
    logits = logits.clone().requires_grad_(True)
    loss = c.call(answer, logits, tokens, pad_id)
    (found,) = c.gradients(
        loss, [logits], "the gradient of the loss", "", weights=torch.ones(())
    )
    (expected,) = torch.autograd.grad(
        reference_lm_loss(logits, tokens, pad_id), [logits]
    )
    c.expect_close(
        found,
        expected,
        "the gradient should be zero at the last position and at positions whose next "
        "token is padding, and the softmax-minus-one-hot elsewhere.",
    )


# --- 08.4 sampling_distribution ---------------------------------------------------------


def _distribution_mistakes(logits: Tensor, temperature: float, top_k: int | None):
    vocab = logits.shape[-1]
    k = vocab if top_k is None else min(top_k, vocab)
    right = torch.softmax(filter_logits(logits, temperature, top_k), -1)
    top = logits.topk(k, -1).indices
    kept = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, top, True)
    probabilities = torch.softmax(logits / temperature, -1)
    mistakes = [
        (
            torch.softmax(filter_logits(logits * temperature, 1.0, top_k), -1),
            "the temperature multiplies the logits; divide by it: a high temperature "
            "flattens the distribution, a low one sharpens it.",
        ),
        (
            probabilities.masked_fill(~kept, 0.0),
            "the probabilities outside the top k were set to 0 but not renormalised: set "
            "the logits to -inf before the softmax (or divide by the new sum).",
        ),
    ]

    def softmax_over(count: int, largest: bool = True) -> Tensor:
        """softmax(logits / temperature) over the ``count`` largest (or smallest)."""
        chosen = logits.topk(count, -1, largest=largest).indices
        keep = torch.zeros_like(kept).scatter(-1, chosen, True)
        return torch.softmax((logits / temperature).masked_fill(~keep, -torch.inf), -1)

    if k < vocab:
        mistakes.append(
            (
                softmax_over(k + 1),
                "k + 1 tokens keep a probability: keep exactly the k largest logits "
                "(everything below the k-th largest becomes -inf).",
            )
        )
        if k > 1:
            mistakes.append(
                (
                    softmax_over(k - 1),
                    "only k - 1 tokens keep a probability: the k-th largest logit "
                    "stays too (remove logits < the k-th largest, not <=).",
                )
            )
        mistakes.append(
            (
                softmax_over(k, largest=False),
                "the k SMALLEST logits were kept: top-k keeps the k largest.",
            )
        )
        mistakes.append(
            (
                torch.softmax(logits / temperature, -1),
                "nothing was filtered: with top_k = k only the k most likely tokens of "
                "each distribution (along the last dimension, the vocabulary) may have "
                "a probability above 0.",
            )
        )
    return right, mistakes


@exercise("08.4", "sampling_distribution")
def check_sampling_distribution(c: Checker, answer) -> None:
    g = random_generator(804)
    cases = [
        (torch.randn(3, 8, generator=g) * 2, 1.0, 3),
        (torch.randn(3, 8, generator=g) * 2, 0.5, 3),
        (torch.randn(2, 8, generator=g) * 2, 2.0, None),
        (torch.randn(2, 6, generator=g) * 60, 0.7, 2),  # spread over 100
        (torch.randn(1, 5, generator=g), 1.3, 1),
        (torch.randn(2, 5, generator=g), 1.0, 9),  # k larger than the vocabulary
        (torch.randn(2, 3, 7, generator=g), 0.8, 4),  # (batch, n, vocab)
        (torch.randn(6, generator=g), 1.0, 2),  # one unbatched distribution
    ]
    for logits, temperature, top_k in cases:
        what = (
            f"sampling_distribution(logits of shape {tuple(logits.shape)}, "
            f"temperature={temperature}, top_k={top_k})"
        )
        probabilities = c.tensor(
            c.call(
                answer,
                logits,
                temperature,
                top_k,
                error_hint="top_k may be at least the vocabulary size: then every "
                "token is kept (topk with k > vocab raises)."
                if top_k is not None and top_k > logits.shape[-1]
                else "",
            ),
            what,
            shape=logits.shape,
            shape_hint="Return one probability per vocabulary entry.",
            nan_hint="Set the filtered LOGITS to -inf, then take torch.softmax over the "
            "last dimension (it subtracts the maximum, so large logits cannot "
            "overflow); -inf in probabilities or exp of a large logit gives inf or NaN, "
            "and so does a row whose logits are ALL -inf (each row keeps its own k "
            "largest: topk(top_k, dim=-1)).",
        )
        right, mistakes = _distribution_mistakes(logits, temperature, top_k)
        if logits.dim() == 3:  # softmax(dim=1): the vocabulary axis only for 2-D logits
            kept = (logits.double() / temperature).masked_fill(right == 0, -math.inf)
            mistakes = [
                *mistakes,
                (
                    torch.softmax(kept, dim=1),
                    f"for logits {tuple(logits.shape)} the softmax ran over the wrong "
                    "axis: the vocabulary is the LAST axis, softmax(..., dim=-1), "
                    "whatever the leading axes.",
                ),
            ]
        c.expect_close(
            probabilities,
            right,
            f"{what} should be softmax(logits / temperature) over the k largest logits, "
            "0 elsewhere.",
            mistakes=mistakes,
            atol=1e-6,
        )


# --- 08.5 sample_next -------------------------------------------------------------------


def _same_token_everywhere(
    c: Checker, answer, logits: Tensor, temperature: float, top_k, what: str
) -> None:
    """Every row of identical logits got one token: greedy decoding (always the most
    likely token) or one random number shared by the whole batch (then other
    generators give other tokens)."""
    most_likely = int(logits[0].argmax())
    seen = set()
    for seed in (2, 3, 4, 5):
        tokens = c.call(
            answer, logits, temperature, top_k, torch.Generator().manual_seed(seed)
        )
        seen |= set(torch.as_tensor(tokens).reshape(-1).tolist())
    if seen == {most_likely}:
        c.fail(
            f"{what} returned the most likely token {logits.shape[0]} times: that is "
            "greedy decoding (argmax). Draw with torch.multinomial(probabilities, 1, "
            "generator=generator)."
        )
    c.fail(
        f"{what} gave every row the same token, although each row is drawn on its own "
        "(the rows here have the same logits, so their tokens should vary): one random "
        "number was shared by the whole batch. torch.multinomial(probabilities, 1, "
        "generator=generator) draws one per row."
    )


@exercise("08.5", "sample_next")
def check_sample_next(c: Checker, answer) -> None:
    vocab, draws = 6, 4000
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, 1.5]]).expand(draws, vocab)
    for temperature, top_k in [(1.0, 3), (2.0, None), (0.5, 4)]:
        what = (
            f"sample_next(logits, temperature={temperature}, top_k={top_k}, generator)"
        )
        tokens = c.call(
            answer, logits, temperature, top_k, torch.Generator().manual_seed(1)
        )
        if not isinstance(tokens, Tensor):
            c.fail(
                f"{what} should return a tensor of token ids, not {type(tokens).__name__}."
            )
        c.expect(
            not tokens.is_floating_point(),
            f"{what} returned floats; return the drawn token ids (torch.multinomial "
            "returns int64), not the probabilities.",
        )
        c.expect(
            tokens.dtype == torch.int64,
            f"{what} returned dtype {tokens.dtype}; the statement asks for int64 "
            "(torch.long) token ids, the dtype torch.multinomial returns: leave them as "
            "they are, or .long().",
        )
        c.expect(
            tuple(tokens.shape) == (draws,),
            f"{what} has shape {tuple(tokens.shape)}, expected ({draws},): one token per "
            "row of logits. torch.multinomial(p, 1) gives (batch, 1): squeeze(-1).",
        )
        c.expect(
            bool(((tokens >= 0) & (tokens < vocab)).all()),
            f"{what} returned ids outside 0..{vocab - 1}.",
        )
        right = torch.softmax(filter_logits(logits[0], temperature, top_k), -1)
        frequencies = torch.bincount(tokens, minlength=vocab).double() / draws
        c.expect(
            bool(frequencies[right == 0].sum() == 0),
            f"{what} drew tokens outside the top {top_k}: draw from the filtered "
            "distribution.",
        )
        if len(set(tokens.tolist())) == 1:
            _same_token_everywhere(c, answer, logits, temperature, top_k, what)
        wrong = torch.softmax(filter_logits(logits[0], 1 / temperature, top_k), -1)
        gap = (frequencies - right).abs().max()
        if temperature != 1.0 and (frequencies - wrong).abs().max() < 0.03 < gap:
            c.fail(
                f"{what}: the frequencies match logits * temperature; divide the logits "
                "by the temperature."
            )
        c.expect(
            gap < 0.03,
            f"{what}: the frequencies of the {draws} draws differ from softmax(logits / "
            f"temperature) over the top k by {gap:.3f} (expected them within 0.03).",
        )
    one_row = c.call(answer, logits[:1], 1.0, 3, torch.Generator().manual_seed(2))
    c.expect(
        isinstance(one_row, Tensor) and tuple(one_row.shape) == (1,),
        "with a batch of one row the result should have shape (1,): squeeze(-1), not "
        "squeeze(), which also drops the batch axis.",
    )
    # every row is drawn from its own distribution: top_k=1 makes each draw certain
    distinct = torch.tensor([[3.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0]])
    rows = c.call(answer, distinct, 1.0, 1, torch.Generator().manual_seed(3))
    c.expect(
        isinstance(rows, Tensor) and torch.equal(rows.long(), torch.tensor([0, 1, 2])),
        "for logits [[3, 0, 1], [0, 2, 1], [1, 0, 4]] with top_k=1 the tokens should be "
        f"[0, 1, 2], got {rows.tolist() if isinstance(rows, Tensor) else rows}: draw "
        "one token from EACH row's distribution (multinomial(probabilities, 1)).",
    )
    # the same generator state gives the same tokens, whatever the global RNG does
    torch.manual_seed(0)
    first = c.call(answer, logits[:50], 1.0, None, torch.Generator().manual_seed(7))
    torch.manual_seed(1)
    second = c.call(answer, logits[:50], 1.0, None, torch.Generator().manual_seed(7))
    c.expect(
        torch.equal(torch.as_tensor(first), torch.as_tensor(second)),
        "two calls with generators in the same state gave different tokens: draw with the "
        "generator you are given (generator=generator), not PyTorch's global random "
        "numbers.",
    )
    given = torch.Generator().manual_seed(8)
    state = given.get_state()
    third = c.call(answer, logits[:50], 1.0, None, given)
    if torch.equal(torch.as_tensor(first), torch.as_tensor(third)):
        if torch.equal(
            given.get_state(), state
        ):  # never used: the draws came elsewhere
            c.fail(
                "generators in different states gave the same 50 tokens, and the "
                "generator you were given was not used: draw with it "
                "(generator=generator), not with one you create yourself."
            )
        c.fail(
            "generators in different states gave the same 50 tokens: you re-seeded the "
            "generator you were given (generator.manual_seed(...)), which throws its "
            "state away, so every call draws the same numbers. Use it as it is: "
            "torch.multinomial(probabilities, 1, generator=generator)."
        )
