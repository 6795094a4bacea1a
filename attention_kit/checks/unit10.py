"""Checkers for Lab 10: the previous-token and induction scores of a head, the loss with
one head removed, and norm-weighted attention (Kobayashi et al. 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from ..masks import causal_mask
from ..reading import (
    AttentionOnlyConfig,
    AttentionOnlyTransformer,
    ablated_loss,
    induction_score,
    norm_weighted_attention,
    previous_token_score,
    repeated_part,
)
from ..transformer import lm_loss
from .core import Checker, exercise, random_generator


def _weights(batch, heads, n, generator, spread=2.0, causal=True, dtype=torch.float64):
    """Random attention weights ``(batch, heads, n, n)`` whose rows sum to 1."""
    scores = spread * torch.randn(batch, heads, n, n, generator=generator)
    if causal:
        scores = scores.masked_fill(~causal_mask(n), float("-inf"))
    return torch.softmax(scores.double(), dim=-1).to(dtype)


def _score_shape_hint(what: str) -> str:
    return (
        f"the {what} is one number per head: average over the batch (dim 0) and over "
        "the query positions, and keep the head axis (dim 1)."
    )


# --- 10.1 previous-token score -----------------------------------------------------------


def _previous_token_cases():
    """(weights, what): several heads; batch 1 with n = 2 (a single pair); one head;
    a long sequence; weights that are not causal (a head may look ahead there)."""
    g = random_generator(1001)
    yield _weights(3, 4, 7, g), "weights (3, 4, 7, 7)"
    yield _weights(1, 2, 2, g), "weights (1, 2, 2, 2), n = 2"
    yield _weights(2, 1, 5, g, spread=30.0), "one head, peaked rows"
    yield _weights(2, 3, 40, g), "n = 40"
    yield _weights(2, 2, 6, g, causal=False), "weights that are not causal"
    yield _weights(2, 3, 5, g, dtype=torch.float32), "float32 weights"
    yield _weights(2, 2, 6, g, dtype=torch.float16), "float16 weights"


def _tolerance(weights: Tensor) -> float:
    """Half precision keeps about 3 digits: compare it with the float64 answer loosely."""
    return 2e-3 if weights.dtype in (torch.float16, torch.bfloat16) else 1e-5


@exercise("10.1", "previous_token_score")
def check_previous_token_score(c: Checker, answer) -> None:
    for weights, what in _previous_token_cases():
        answer_weights = weights
        batch, heads, n, _ = weights.shape
        name = f"previous_token_score({what})"
        score = c.tensor(
            c.call(
                answer,
                weights,
                error_hint="the weight from query t to key t - 1 sits just below the "
                "diagonal: weights.diagonal(offset=-1, dim1=-2, dim2=-1).",
            ),
            name,
            shape=(heads,),
            shape_hint=_score_shape_hint("previous-token score"),
            dtype=weights.dtype,
        )
        weights = weights.double()
        below = weights.diagonal(offset=-1, dim1=-2, dim2=-1)  # (batch, heads, n - 1)
        diagonal = weights.diagonal(dim1=-2, dim2=-1)
        above = weights.diagonal(offset=1, dim1=-2, dim2=-1)
        rows_with_top = (
            weights[..., 1:, :].argmax(dim=-1) == torch.arange(n - 1)
        ).double()
        mistakes = [
            (
                above.mean(dim=(0, 2)),
                "that is A[t, t + 1], the weight on the NEXT token (above the "
                "diagonal): the previous token is key t - 1, offset=-1.",
            ),
            (
                diagonal.mean(dim=(0, 2)),
                "that is A[t, t], the weight a token puts on itself (the diagonal): "
                "the previous token is key t - 1, one below the diagonal (offset=-1).",
            ),
            (
                below.sum(dim=2).mean(dim=0) / n,
                "you divided by n: there are n - 1 pairs (t, t - 1), for t = 1 .. n - 1 "
                "(query 0 has no previous token); take the mean over those.",
            ),
            (
                below.sum(dim=(0, 2)),
                "that is a sum; the score is the MEAN weight over the sequences and the "
                "positions t >= 1.",
            ),
            (
                rows_with_top.mean(dim=(0, 2)),
                "that counts how often key t - 1 has the largest weight; the score is "
                "the mean of the weight itself, A[t, t - 1].",
            ),
        ]
        c.expect_close(
            score,
            previous_token_score(weights),
            f"{name}: each head's score is the mean of A[b, head, t, t - 1] over every "
            "sequence b and every query t >= 1.",
            mistakes=[(m, h) for m, h in mistakes if m.shape == (heads,)],
            atol=_tolerance(answer_weights),
        )


# --- 10.2 induction score -----------------------------------------------------------------


def _induction_cases():
    """(weights, periods, what): periods that differ per sequence; batch 1 with one
    repeated position; period 1; a long sequence; a batch where every period is the
    same except one."""
    g = random_generator(1002)
    yield _weights(3, 2, 9, g), torch.tensor([2, 5, 8]), "periods (2, 5, 8), n = 9"
    yield _weights(1, 3, 4, g), torch.tensor([3]), "batch 1, n = 4, period 3"
    yield _weights(2, 2, 6, g), torch.tensor([1, 4]), "periods (1, 4), n = 6"
    periods = torch.tensor([7, 19, 33, 12])
    yield _weights(4, 4, 50, g), periods, "n = 50, periods (7, 19, 33, 12)"
    yield (
        _weights(3, 2, 10, g, spread=20.0),
        torch.tensor([4, 4, 6]),
        "peaked rows, periods (4, 4, 6)",
    )
    yield _weights(2, 3, 7, g, dtype=torch.float32), torch.tensor([3, 2]), "float32"
    yield _weights(2, 2, 8, g, dtype=torch.float16), torch.tensor([5, 3]), "float16"


def _induction_mistakes(weights: Tensor, periods: Tensor) -> list[tuple[Tensor, str]]:
    batch, heads, n, _ = weights.shape
    t = torch.arange(n)
    repeated = repeated_part(periods, n)

    def picked(offset: int) -> Tensor:
        """A[b, head, t, t - period_b + offset], (batch, heads, n, 1), index clamped."""
        source = (t[None, :] - periods[:, None] + offset).clamp(0, n - 1)
        return weights.gather(-1, source[:, None, :, None].expand(-1, heads, -1, 1))

    def pooled(offset: int, where: Tensor = repeated) -> Tensor:
        """Mean of A[b, head, t, t - period_b + offset] over the (b, t) in ``where``."""
        keep = where[:, None, :, None].double()
        return (picked(offset) * keep).sum(dim=(0, 2, 3)) / keep.sum()

    def per_sequence_mean() -> Tensor:
        keep = repeated[:, None, :, None].double()
        return ((picked(1) * keep).sum(dim=(2, 3)) / keep.sum(dim=(2, 3))).mean(dim=0)

    everywhere = torch.ones_like(repeated)
    first_period = torch.full_like(periods, int(periods[0]))
    mistakes = [
        (
            pooled(0),
            "that is A[t, t - period], the earlier copy of the CURRENT token; an "
            "induction head looks one further, at the token that FOLLOWED that copy: "
            "key t - period + 1.",
        ),
        (
            pooled(2),
            "you looked at key t - period + 2, one too far: the token after the earlier "
            "copy of token t is at t - period + 1.",
        ),
        (
            pooled(1, everywhere),
            "you averaged over every position t, also t < period, where the token has "
            "not appeared before: only the repeated part, t >= period, counts.",
        ),
        (
            per_sequence_mean(),
            "that is a mean of per-sequence means, which weighs a short repeated part "
            "more; pool every (sequence, position) pair of the repeated parts into one "
            "mean.",
        ),
    ]
    mistakes.append(
        (
            previous_token_score(weights),
            "that is the previous-token score (key t - 1, over every t >= 1); the "
            "induction key is t - periods[b] + 1, over the repeated part t >= periods[b].",
        )
    )
    if not (periods == periods[0]).all():
        mistakes.append(
            (
                induction_score(weights, first_period),
                "you used one period for the whole batch (periods[0]); each sequence has "
                "its own period: key t - periods[b] + 1 in sequence b.",
            )
        )
    return mistakes


@exercise("10.2", "induction_score")
def check_induction_score(c: Checker, answer) -> None:
    for weights, periods, what in _induction_cases():
        heads = weights.shape[1]
        name = f"induction_score({what})"
        score = c.tensor(
            c.call(
                answer,
                weights,
                periods,
                error_hint="weights is (batch, heads, n, n) and periods is (batch,): "
                "sequence b's induction key for query t is t - periods[b] + 1. Build the "
                "key indices for every (b, t) at once (torch.arange(n)[None, :] - "
                "periods[:, None] + 1) and pick them with gather, or loop over b.",
            ),
            name,
            shape=(heads,),
            shape_hint=_score_shape_hint("induction score"),
            dtype=weights.dtype,
        )
        tolerance = _tolerance(weights)
        weights = weights.double()
        c.expect_close(
            score,
            induction_score(weights, periods),
            f"{name}: each head's score is the mean of A[b, head, t, t - periods[b] + 1] "
            "over every pair (b, t) with t >= periods[b], all sequences pooled.",
            mistakes=_induction_mistakes(weights, periods),
            atol=tolerance,
        )


# --- 10.3 the loss with one head removed ------------------------------------------------


def _small_model(
    num_layers: int, num_heads: int, seed: int
) -> AttentionOnlyTransformer:
    """A random model whose heads matter: weights drawn large enough that removing
    any head changes the loss."""
    torch.manual_seed(seed)  # restored by the caller's fork_rng
    config = AttentionOnlyConfig(
        11, 8, d_model=4 * num_heads, num_layers=num_layers, num_heads=num_heads
    )
    model = AttentionOnlyTransformer(config).eval()
    with torch.no_grad():
        for layer in model.layers:
            for linear in (layer.W_q, layer.W_k, layer.W_v, layer.W_o):
                linear.weight.mul_(3.0)
                linear.bias.normal_()
    return model


def _direct_path_loss(model, tokens, layer, head) -> Tensor:
    """The mistake of subtracting the head's output from the final stream only."""
    kept = {}
    x = model.embed(tokens)
    for index, block in enumerate(model.layers):
        per_head, _ = block(x)
        kept[index] = per_head
        x = x + per_head.sum(dim=1) + block.W_o.bias
    x = x - kept[layer][:, head]
    return lm_loss(model.unembed(x), tokens)


def _ablate_everywhere(model, tokens, head) -> Tensor:
    def edit(index, per_head):
        keep = torch.ones(per_head.shape[1], 1, 1)
        keep[head] = 0.0
        return per_head * keep

    return lm_loss(model(tokens, edit=edit)[0], tokens)


def _mean_over(axes):
    def edit_for(layer, head):
        def edit(index, per_head):
            if index != layer:
                return per_head
            out = per_head.clone()
            out[:, head] = per_head[:, head].mean(dim=axes, keepdim=True)
            return out

        return edit

    return edit_for


def _without_bias(model, tokens, layer, head) -> Tensor:
    def edit(index, per_head):
        out = per_head.clone()
        if index == layer:
            out[:, head] = 0.0
        return out - model.layers[index].W_o.bias / per_head.shape[1]

    return lm_loss(model(tokens, edit=edit)[0], tokens)


def _ablation_mistakes(model, tokens, layer, head, mode) -> list[tuple[Tensor, str]]:
    num_layers, num_heads = len(model.layers), model.config.num_heads
    with torch.no_grad():
        logits, _ = model(tokens)
        mistakes = [
            (
                lm_loss(logits, tokens),
                "that is the loss of the whole model: nothing was removed. Change head "
                f"{head}'s slice of the per-head outputs (per_head[:, head]) of layer "
                f"{layer} before adding them to the residual stream.",
            ),
            (
                _direct_path_loss(model, tokens, layer, head),
                "you subtracted the head's output from the final residual stream only; "
                "the later layers must see the changed stream too. Remove the head inside "
                "the loop over layers, then run the remaining layers on the new x.",
            ),
            (
                _without_bias(model, tokens, layer, head),
                "the layer's bias W_o.bias is missing: each layer adds "
                "per_head.sum(dim=1) + layer.W_o.bias to x.",
            ),
        ]
        if mode == "mean":
            mistakes += [
                (
                    ablated_loss(model, tokens, layer, head, "zero"),
                    "that is the zero ablation; with mode='mean' replace the head's "
                    "output by its mean over the batch and the positions.",
                ),
                (
                    lm_loss(model(tokens, edit=_mean_over(0)(layer, head))[0], tokens),
                    "you averaged over the batch only; the mean is over the batch AND "
                    "the positions (dims 0 and 1 of per_head[:, head]), one vector of "
                    "d_model numbers.",
                ),
                (
                    lm_loss(model(tokens, edit=_mean_over(1)(layer, head))[0], tokens),
                    "you averaged over the positions of each sequence only; the mean is "
                    "over the batch AND the positions, one vector of d_model numbers.",
                ),
            ]
        if mode == "zero" and num_layers > 1:
            mistakes.append(
                (
                    _ablate_everywhere(model, tokens, head),
                    f"you removed head {head} in every layer; remove it in layer "
                    f"{layer} only.",
                )
            )
        for other_layer in range(num_layers):
            for other_head in range(num_heads):
                if (other_layer, other_head) != (layer, head):
                    mistakes.append(
                        (
                            ablated_loss(model, tokens, other_layer, other_head, mode),
                            f"that is the loss with head {other_head} of layer "
                            f"{other_layer} removed, not head {head} of layer {layer}: "
                            "check which index is the layer and which the head (both "
                            "count from 0).",
                        )
                    )
    return mistakes


@exercise("10.3", "ablated_loss")
def check_ablated_loss(c: Checker, answer) -> None:
    g = random_generator(1003)
    with torch.random.fork_rng():
        cases = [
            (
                _small_model(2, 4, 0),
                (3, 8),
                [(0, 1, "zero"), (1, 3, "zero"), (0, 2, "mean")],
            ),
            (_small_model(2, 2, 1), (1, 5), [(1, 0, "mean"), (0, 1, "zero")]),
            (_small_model(3, 3, 2), (4, 8), [(2, 2, "mean"), (1, 0, "mean")]),
        ]
    for model, shape, ablations in cases:
        tokens = torch.randint(0, model.config.vocab_size, shape, generator=g)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        for layer, head, mode in ablations:
            name = (
                f"ablated_loss(model with {len(model.layers)} layers of "
                f"{model.config.num_heads} heads, tokens {tuple(shape)}, layer={layer}, "
                f"head={head}, mode={mode!r})"
            )
            loss = c.tensor(
                c.call(
                    answer,
                    model,
                    tokens,
                    layer,
                    head,
                    mode,
                    error_hint="run the model by hand: x = model.embed(tokens); for each "
                    "layer, per_head, weights = layer(x) gives (batch, heads, n, "
                    "d_model); change per_head[:, head] in the chosen layer; x = x + "
                    "per_head.sum(dim=1) + layer.W_o.bias; finally lm_loss("
                    "model.unembed(x), tokens).",
                ),
                name,
                shape=(),
                shape_hint="return the loss as one number, a 0-dimensional tensor "
                "(lm_loss gives one).",
            )
            changed = [
                k
                for k, v in model.state_dict().items()
                if not torch.equal(v, before[k])
            ]
            c.expect(
                not changed,
                f"{name} changed the model's parameters {changed}: remove the head "
                "from the per-head outputs of one run, not from the model's weights "
                "(or restore them; other code uses the model afterwards).",
            )
            with torch.no_grad():
                expected = ablated_loss(model, tokens, layer, head, mode)
            c.expect_close(
                loss,
                expected,
                f"{name}: the loss should be lm_loss of the model's logits with head "
                f"{head}'s output in layer {layer} "
                + ("set to 0" if mode == "zero" else "replaced by its mean")
                + ", every later layer run on the changed stream.",
                mistakes=_ablation_mistakes(model, tokens, layer, head, mode),
            )


# --- 10.4 norm-weighted attention ------------------------------------------------------


def _norm_cases():
    """(weights, values, W_o, what): n != m; one query; one key; a wide spread of
    value sizes (the point of the method); more heads than the others."""
    g = random_generator(1004)
    for batch, heads, n, m, head_dim, d_model, value_scale in [
        (2, 3, 4, 5, 4, 6, 1.0),
        (1, 2, 1, 6, 3, 5, 1.0),
        (2, 2, 3, 1, 2, 4, 1.0),
        (1, 4, 6, 6, 2, 8, 0.0),
        (2, 2, 3, 4, 3, 5, 1.0),
    ]:
        dtype = torch.float32 if (n, m) == (3, 4) else torch.float64
        scores = 3 * torch.randn(batch, heads, n, m, generator=g, dtype=torch.float64)
        weights = torch.softmax(scores, dim=-1)
        values = torch.randn(
            batch, heads, m, head_dim, generator=g, dtype=torch.float64
        )
        if value_scale == 0.0:  # some values 100 times longer than others
            sizes = torch.randint(-1, 2, (1, 1, m, 1), generator=g).double()
            values = values * 10.0**sizes
        W_o = torch.randn(heads, head_dim, d_model, generator=g, dtype=torch.float64)
        what = (
            f"weights {tuple(weights.shape)}, values {tuple(values.shape)}, W_o "
            f"{tuple(W_o.shape)}"
        )
        if dtype == torch.float32:
            weights, values, W_o = weights.float(), values.float(), W_o.float()
            what = "float32 " + what
        yield weights, values, W_o, what


def _norm_mistakes(weights, values, W_o) -> list[tuple[Tensor, str]]:
    projected = torch.einsum("bhmk,hkd->bhmd", values, W_o).norm(dim=-1)[:, :, None]
    expected = norm_weighted_attention(weights, values, W_o)
    mistakes = [
        (
            weights * values.norm(dim=-1)[:, :, None, :],
            "you used the length of the value v_j alone; Kobayashi et al. measure the "
            "length of what the head adds to the output, v_j W_o[head]: project each value "
            "with its head's block W_o[head] first.",
        ),
        (
            projected.expand_as(weights),
            "the attention weight is missing: each term of the head's output is "
            "a_tj * (v_j W_o[head]), so its length is a_tj * ||v_j W_o[head]||.",
        ),
        (
            expected**2,
            "that is the squared length; take the norm itself, ||a_tj v_j W_o[head]||.",
        ),
        (
            expected / expected.sum(dim=-1, keepdim=True),
            "you normalised each row to sum to 1; the method compares the raw lengths "
            "||a_tj v_j W_o[head]||, so that a row can show how much the head moves the "
            "output at all.",
        ),
        (
            weights
            * (values.norm(dim=-1) * W_o.norm(dim=(-2, -1))[None, :, None])[:, :, None],
            "that multiplies the length of v_j by the size of W_o[head]; the length of the "
            "product v_j W_o[head] is what counts (einsum('bhmk,hkd->bhmd', values, W_o), "
            "then .norm(dim=-1)).",
        ),
        (
            weights
            * torch.einsum("bhmk,kd->bhmd", values, W_o[0]).norm(dim=-1)[:, :, None],
            "every head used head 0's block W_o[0]; each head's values go through "
            "its own block W_o[head].",
        ),
    ]
    if weights.shape[-2] == weights.shape[-1]:
        mistakes.append(
            (
                weights.transpose(-2, -1) * projected,
                "the weights are transposed: row i of weights[b, h] is query i, and "
                "its entry j multiplies key j's value.",
            )
        )
    return mistakes


@exercise("10.4", "norm_weighted_attention")
def check_norm_weighted_attention(c: Checker, answer) -> None:
    for weights, values, W_o, what in _norm_cases():
        name = f"norm_weighted_attention({what})"
        result = c.tensor(
            c.call(
                answer,
                weights,
                values,
                W_o,
                error_hint="project the values of each head with its own block of W_O: "
                "torch.einsum('bhmk,hkd->bhmd', values, W_o) is (batch, heads, m, "
                "d_model); its norm over the last axis is (batch, heads, m); multiply "
                "by the weights with a query axis added ([:, :, None, :]).",
            ),
            name,
            shape=weights.shape,
            shape_hint="one length per (batch, head, query, key): the shape of the "
            "weights. Take the norm over d_model only, and keep the heads apart.",
            dtype=weights.dtype,
        )
        weights, values, W_o = weights.double(), values.double(), W_o.double()
        c.expect_close(
            result,
            norm_weighted_attention(weights, values, W_o),
            f"{name}: entry (b, head, t, j) should be the length of key j's term in "
            "that head's output at query t, a_tj * ||v_j W_o[head]||.",
            mistakes=_norm_mistakes(weights, values, W_o),
        )
