"""Lab 10's checkers: correct answers written differently pass; MISTAKES (run in
test_checks.py) are the wrong answers each checker must name."""

import torch

from attention_kit.checks import (
    check_ablated_loss,
    check_induction_score,
    check_norm_weighted_attention,
    check_previous_token_score,
)
from attention_kit.reading import ablate, induction_score, norm_weighted_attention
from attention_kit.transformer import lm_loss
from conftest import assert_passes

# --- 10.1 previous_token_score ------------------------------------------------------------


def previous_by_loop(weights):  # correct: a loop over positions, float64 inside
    batch, heads, n, _ = weights.shape
    total = torch.zeros(heads, dtype=torch.float64)
    for t in range(1, n):
        total += weights[:, :, t, t - 1].double().sum(dim=0)
    return (total / (batch * (n - 1))).to(weights.dtype)


def previous_by_slices(weights):  # correct: rows 1.. against columns ..n-1
    return torch.einsum("bhii->bhi", weights[:, :, 1:, :-1]).mean(dim=(0, 2))


def previous_above(weights):
    return weights.diagonal(offset=1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def previous_diagonal(weights):
    return weights.diagonal(dim1=-2, dim2=-1).mean(dim=(0, 2))


def previous_over_n(weights):
    below = weights.diagonal(offset=-1, dim1=-2, dim2=-1)
    return below.sum(dim=(0, 2)) / (weights.shape[0] * weights.shape[2])


def previous_sum(weights):
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).sum(dim=(0, 2))


def previous_argmax(weights):
    n = weights.shape[-1]
    hits = weights[..., 1:, :].argmax(dim=-1) == torch.arange(n - 1)
    return hits.to(weights.dtype).mean(dim=(0, 2))


def previous_per_sequence(weights):
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=2)


def previous_all_heads(weights):
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean()


def previous_in_place(weights):
    weights.tril_(diagonal=-1)
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def test_previous_token_score_passes_correct_answers(capsys):
    for answer in (previous_by_loop, previous_by_slices):
        assert_passes(check_previous_token_score, answer, capsys, "7/7")


# --- 10.2 induction_score -----------------------------------------------------------------


def induction_by_loop(weights, periods):  # correct: a loop over sequences, positions
    batch, heads, n, _ = weights.shape
    picked = []
    for b in range(batch):
        period = int(periods[b])
        for t in range(period, n):
            picked.append(weights[b, :, t, t - period + 1])
    return torch.stack(picked).mean(dim=0)


def induction_by_mask(weights, periods):  # correct: a boolean mask of induction keys
    n = weights.shape[-1]
    t = torch.arange(n)
    target = t[None, :, None] - periods[:, None, None] + 1 == t[None, None, :]
    target &= (t >= periods[:, None])[:, :, None]
    chosen = (weights * target[:, None]).sum(dim=-1)  # (batch, heads, n)
    return chosen.sum(dim=(0, 2)) / target.sum()


def induction_offset(offset):
    def answer(weights, periods):
        n = weights.shape[-1]
        picked = []
        for b in range(weights.shape[0]):
            period = int(periods[b])
            for t in range(period, n):
                picked.append(weights[b, :, t, min(max(t - period + offset, 0), n - 1)])
        return torch.stack(picked).mean(dim=0)

    return answer


def induction_every_position(weights, periods):
    n = weights.shape[-1]
    picked = [
        weights[b, :, t, min(max(t - int(periods[b]) + 1, 0), n - 1)]
        for b in range(weights.shape[0])
        for t in range(n)
    ]
    return torch.stack(picked).mean(dim=0)


def induction_per_sequence(weights, periods):
    means = []
    for b in range(weights.shape[0]):
        period = int(periods[b])
        rows = [
            weights[b, :, t, t - period + 1] for t in range(period, weights.shape[-1])
        ]
        means.append(torch.stack(rows).mean(dim=0))
    return torch.stack(means).mean(dim=0)


def induction_is_previous_token(weights, periods):
    return weights.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def induction_first_period(weights, periods):
    return induction_score(weights, periods[:1].expand_as(periods))


def induction_per_batch(weights, periods):
    return torch.stack(
        [
            induction_score(weights[b : b + 1], periods[b : b + 1])
            for b in range(len(periods))
        ]
    )


def induction_fixed_size(weights, periods):
    return induction_by_loop(weights[:, :, :9, :9], periods)


def test_induction_score_passes_correct_answers(capsys):
    for answer in (induction_by_loop, induction_by_mask):
        assert_passes(check_induction_score, answer, capsys, "7/7")


# --- 10.3 ablated_loss ---------------------------------------------------------------------


def ablated_by_hand(model, tokens, layer, head, mode="zero"):  # correct: the lab's way
    x = model.embed(tokens)
    for index, block in enumerate(model.layers):
        per_head, _ = block(x)
        if index == layer:
            output = per_head[:, head]
            if mode == "zero":
                replacement = torch.zeros_like(output)
            else:
                replacement = output.mean(dim=(0, 1)).expand_as(output)
            per_head = per_head.clone()
            per_head[:, head] = replacement
        x = x + per_head.sum(dim=1) + block.W_o.bias
    return lm_loss(model.unembed(x), tokens)


def ablated_by_mask(
    model, tokens, layer, head, mode="zero"
):  # correct: edit= and a mask
    def edit(index, per_head):
        if index != layer:
            return per_head
        keep = torch.ones(per_head.shape[1], 1, 1)
        keep[head] = 0.0
        fill = per_head[:, head].mean(dim=(0, 1)) if mode == "mean" else 0.0
        return per_head * keep + (1 - keep) * fill

    with torch.no_grad():
        return lm_loss(model(tokens, edit=edit)[0], tokens)


def ablated_swapped(model, tokens, layer, head, mode="zero"):
    return ablated_by_hand(model, tokens, head % len(model.layers), layer, mode)


def ablated_nothing(model, tokens, layer, head, mode="zero"):
    return lm_loss(model(tokens)[0], tokens)


def ablated_direct_path(model, tokens, layer, head, mode="zero"):
    x = model.embed(tokens)
    removed = None
    for index, block in enumerate(model.layers):
        per_head, _ = block(x)
        if index == layer:
            removed = per_head[:, head]
        x = x + per_head.sum(dim=1) + block.W_o.bias
    return lm_loss(model.unembed(x - removed), tokens)


def ablated_without_bias(model, tokens, layer, head, mode="zero"):
    x = model.embed(tokens)
    for index, block in enumerate(model.layers):
        per_head, _ = block(x)
        if index == layer:
            per_head = per_head.clone()
            per_head[:, head] = 0.0
        x = x + per_head.sum(dim=1)
    return lm_loss(model.unembed(x), tokens)


def ablated_always_zero(model, tokens, layer, head, mode="zero"):
    return ablated_by_hand(model, tokens, layer, head, "zero")


def ablated_mean_over_batch(model, tokens, layer, head, mode="zero"):
    if mode == "zero":
        return ablated_by_hand(model, tokens, layer, head, mode)

    def edit(index, per_head):
        if index != layer:
            return per_head
        per_head = per_head.clone()
        per_head[:, head] = per_head[:, head].mean(dim=0, keepdim=True)
        return per_head

    return lm_loss(model(tokens, edit=edit)[0], tokens)


def ablated_every_layer(model, tokens, layer, head, mode="zero"):
    def edit(index, per_head):
        return ablate(index, head, mode)(index, per_head)

    return lm_loss(model(tokens, edit=edit)[0], tokens)


def ablated_by_changing_weights(model, tokens, layer, head, mode="zero"):
    size = model.layers[layer].head_dim
    with torch.no_grad():
        model.layers[layer].W_o.weight[:, head * size : (head + 1) * size] = 0.0
    return lm_loss(model(tokens)[0], tokens)


def ablated_unshifted(model, tokens, layer, head, mode="zero"):
    logits, _ = model(tokens, edit=ablate(layer, head, mode))
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), tokens)


def test_ablated_loss_passes_correct_answers(capsys):
    for answer in (ablated_by_hand, ablated_by_mask):
        assert_passes(check_ablated_loss, answer, capsys, "14/14")


# --- 10.4 norm_weighted_attention --------------------------------------------------------


def norms_by_loop(weights, values, W_o):  # correct: head by head, term by term
    batch, heads, n, m = weights.shape
    result = torch.zeros(batch, heads, n, m, dtype=weights.dtype)
    for head in range(heads):
        projected = values[:, head] @ W_o[head]  # (batch, m, d_model)
        terms = weights[:, head, :, :, None] * projected[:, None]  # (batch, n, m, d)
        result[:, head] = terms.norm(dim=-1)
    return result


def norms_in_float64(weights, values, W_o):  # correct, computed in float64, cast back
    out = norm_weighted_attention(weights.double(), values.double(), W_o.double())
    return out.to(weights.dtype)


def norms_always_float64(weights, values, W_o):
    return norm_weighted_attention(weights.double(), values.double(), W_o.double())


def previous_always_float64(weights):
    return weights.double().diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))


def induction_in_float32(weights, periods):
    return induction_score(weights.float(), periods)


def norms_values_only(weights, values, W_o):
    return weights * values.norm(dim=-1)[:, :, None, :]


def norms_without_weights(weights, values, W_o):
    projected = torch.einsum("bhmk,hkd->bhmd", values, W_o).norm(dim=-1)
    return projected[:, :, None, :].expand_as(weights)


def norms_squared(weights, values, W_o):
    return norm_weighted_attention(weights, values, W_o) ** 2


def norms_normalised(weights, values, W_o):
    norms = norm_weighted_attention(weights, values, W_o)
    return norms / norms.sum(dim=-1, keepdim=True)


def norms_product_of_norms(weights, values, W_o):
    sizes = values.norm(dim=-1) * W_o.norm(dim=(-2, -1))[None, :, None]
    return weights * sizes[:, :, None, :]


def norms_head_zero(weights, values, W_o):
    projected = torch.einsum("bhmk,kd->bhmd", values, W_o[0]).norm(dim=-1)
    return weights * projected[:, :, None, :]


def norms_summed_over_heads(weights, values, W_o):
    return norm_weighted_attention(weights, values, W_o).sum(dim=1)


def norms_of_whole_row(weights, values, W_o):
    output = torch.einsum("bhij,bhjk,hkd->bhid", weights, values, W_o)
    return weights * output.norm(dim=-1)[..., None]


def test_norm_weighted_attention_passes_correct_answers(capsys):
    for answer in (norms_by_loop, norms_in_float64):
        assert_passes(check_norm_weighted_attention, answer, capsys, "5/5")


def previous_fixed_pairs(weights):  # wrong: n - 1 = 6 pairs written as a constant
    below = weights.double().diagonal(offset=-1, dim1=-2, dim2=-1)
    return (below.sum(dim=(0, 2)) / (weights.shape[0] * 6)).to(weights.dtype)


def induction_fixed_period(weights, periods):  # wrong: period 3 written as a constant
    return induction_score(weights, torch.full_like(periods, 3))


def ablated_fixed_length(model, tokens, layer, head, mode="zero"):  # wrong: n = 5 fixed
    return ablated_by_hand(model, tokens[:, :5], layer, head, mode)


def norms_fixed_heads(weights, values, W_o):  # wrong: two heads written as a constant
    return norm_weighted_attention(weights[:, :2], values[:, :2], W_o[:2])


MISTAKES = [
    (check_previous_token_score, previous_above, "NEXT token"),
    (check_previous_token_score, previous_diagonal, "itself"),
    (check_previous_token_score, previous_over_n, "n - 1 pairs"),
    (check_previous_token_score, previous_sum, "MEAN"),
    (check_previous_token_score, previous_argmax, "largest weight"),
    (check_previous_token_score, previous_per_sequence, "one number per head"),
    (check_previous_token_score, previous_all_heads, "keep the head axis"),
    (check_previous_token_score, previous_in_place, "in place"),
    (check_induction_score, induction_offset(0), "CURRENT token"),
    (check_induction_score, induction_offset(2), "one too far"),
    (check_induction_score, induction_every_position, "t >= period"),
    (check_induction_score, induction_per_sequence, "per-sequence means"),
    (check_induction_score, induction_first_period, "its own period"),
    (check_induction_score, induction_is_previous_token, "previous-token score"),
    (check_induction_score, induction_per_batch, "one number per head"),
    (check_induction_score, induction_fixed_size, "n = 50"),
    (check_ablated_loss, ablated_swapped, "which index is the layer"),
    (check_ablated_loss, ablated_nothing, "nothing was removed"),
    (check_ablated_loss, ablated_direct_path, "later layers must see"),
    (check_ablated_loss, ablated_without_bias, "W_o.bias"),
    (check_ablated_loss, ablated_always_zero, "zero ablation"),
    (check_ablated_loss, ablated_mean_over_batch, "batch only"),
    (check_ablated_loss, ablated_every_layer, "every layer"),
    (check_ablated_loss, ablated_by_changing_weights, "changed the model's parameters"),
    (check_ablated_loss, ablated_unshifted, "loss should be lm_loss"),
    (check_previous_token_score, previous_always_float64, "promises the input's dtype"),
    (check_induction_score, induction_in_float32, "promises the input's dtype"),
    (check_norm_weighted_attention, norms_always_float64, "promises the input's dtype"),
    (check_norm_weighted_attention, norms_values_only, "v_j alone"),
    (check_norm_weighted_attention, norms_without_weights, "weight is missing"),
    (check_norm_weighted_attention, norms_squared, "squared length"),
    (check_norm_weighted_attention, norms_normalised, "normalised each row"),
    (check_norm_weighted_attention, norms_product_of_norms, "length of the product"),
    (check_norm_weighted_attention, norms_head_zero, "W_o[0]"),
    (check_norm_weighted_attention, norms_summed_over_heads, "keep the heads apart"),
    (check_norm_weighted_attention, norms_of_whole_row, "a_tj * ||v_j W_o[head]||"),
    (check_previous_token_score, previous_fixed_pairs, "n = 2"),
    (check_induction_score, induction_fixed_period, "periods (2, 5, 8)"),
    (check_ablated_loss, ablated_fixed_length, "tokens (3, 8)"),
    (check_norm_weighted_attention, norms_fixed_heads, "keep the heads apart"),
]
