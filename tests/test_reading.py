"""Unit 10's kit (attention_kit.reading): the attention-only model against PyTorch, the
repeated-segment data, the head scores, ablation, norm-weighted attention, rollout,
gradient x input and the faithfulness measurement, each against its definition."""

import pytest
import torch
from torch import nn

from attention_kit.masks import causal_mask
from attention_kit.reading import (
    AttentionOnlyConfig,
    AttentionOnlyTransformer,
    ablate,
    ablated_loss,
    attention_rollout,
    attribution_scores,
    copy_weight,
    faithfulness,
    gradient_times_input,
    induction_score,
    layer_norm_weighted,
    next_token_accuracy,
    norm_weighted_attention,
    one_query_per_sequence,
    previous_token_score,
    removal_effect,
    repeated_part,
    repeated_segments,
    swap_copies,
)
from attention_kit.transformer import lm_loss


def small_model(seed=0, positions="learned", vocab=20, n=12):
    torch.manual_seed(seed)
    config = AttentionOnlyConfig(vocab, n, d_model=16, num_heads=4, positions=positions)
    return AttentionOnlyTransformer(config).eval()


def random_weights(batch, heads, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, heads, n, n, generator=g)
    return torch.softmax(scores.masked_fill(~causal_mask(n), float("-inf")), dim=-1)


def test_heads_sum_to_pytorch_multihead_attention():
    model = small_model()
    layer = model.layers[0]
    x = torch.randn(3, 7, 16)
    torch_mha = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(
            torch.cat([layer.W_q.weight, layer.W_k.weight, layer.W_v.weight])
        )
        torch_mha.in_proj_bias.copy_(
            torch.cat([layer.W_q.bias, layer.W_k.bias, layer.W_v.bias])
        )
        torch_mha.out_proj.weight.copy_(layer.W_o.weight)
        torch_mha.out_proj.bias.copy_(layer.W_o.bias)
    normed = layer.norm(x)
    expected, expected_weights = torch_mha(
        normed, normed, normed, attn_mask=~causal_mask(7), average_attn_weights=False
    )
    per_head, weights = layer(x)
    assert per_head.shape == (3, 4, 7, 16) and weights.shape == (3, 4, 7, 7)
    torch.testing.assert_close(per_head.sum(dim=1) + layer.W_o.bias, expected)
    torch.testing.assert_close(weights, expected_weights)


def test_given_weights_replace_the_layers_own():
    model = small_model()
    tokens = torch.randint(0, 20, (2, 9))
    logits, weights = model(tokens)
    same, _ = model(tokens, weights={1: weights[1]})
    torch.testing.assert_close(same, logits)
    other, returned = model(tokens, weights={1: random_weights(2, 4, 9)})
    assert not torch.allclose(other, logits)
    torch.testing.assert_close(returned[1], random_weights(2, 4, 9))


def test_model_refuses_longer_input_and_unknown_positions():
    with pytest.raises(ValueError, match="context"):
        small_model(n=4)(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        AttentionOnlyConfig(10, 4, positions="rope")


def test_without_positions_the_model_ignores_where_tokens_are():
    model = small_model(positions="none")
    assert not hasattr(model, "position_embedding")
    tokens = torch.tensor([[3, 3, 3, 3]])
    logits, _ = model(tokens)
    torch.testing.assert_close(logits[0, 0], logits[0, 3])  # same token, same past


def test_repeated_segments_repeat_a_segment_of_distinct_tokens():
    tokens, periods = repeated_segments(200, 30, 40, 4, 12, seed=3)
    assert tokens.shape == (200, 30) and periods.shape == (200,)
    assert periods.min() >= 4 and periods.max() <= 12 and len(periods.unique()) == 9
    for row, period in zip(tokens, periods, strict=True):
        p = int(period)
        assert len(row[:p].unique()) == p  # distinct within the segment
        assert torch.equal(row[p:], row[: 30 - p])  # then it repeats
    again, _ = repeated_segments(200, 30, 40, 4, 12, seed=3)
    assert torch.equal(tokens, again)
    _, fixed = repeated_segments(50, 30, 40, 7, 7)
    assert (fixed == 7).all()
    with pytest.raises(ValueError):
        repeated_segments(5, 10, 40, 4, 12)


def test_repeated_part_starts_at_the_period():
    part = repeated_part(torch.tensor([2, 4]), 5)
    assert part.tolist() == [
        [False, False, True, True, True],
        [False, False, False, False, True],
    ]


def test_accuracy_splits_first_occurrence_from_repeat():
    tokens = torch.tensor([[0, 1, 2, 0, 1, 2]])
    perfect = torch.nn.functional.one_hot(tokens.roll(-1, dims=1), 3).float() * 10
    result = next_token_accuracy(perfect, tokens, torch.tensor([3]))
    assert result["repeated"] == 1.0 and result["first"] == 1.0  # 0->1, 1->2, 2->0
    assert result["repeated loss"] < 1e-3


def test_previous_token_score_by_definition():
    weights = random_weights(3, 2, 6)
    loop = torch.stack(
        [
            torch.stack(
                [weights[b, h, t, t - 1] for b in range(3) for t in range(1, 6)]
            ).mean()
            for h in range(2)
        ]
    )
    torch.testing.assert_close(previous_token_score(weights), loop)
    perfect = torch.zeros(1, 1, 5, 5)
    perfect[0, 0, 0, 0] = 1.0
    perfect[0, 0, 1:] = torch.eye(5)[:4]  # row t puts all its weight on key t - 1
    assert previous_token_score(perfect).item() == 1.0


def test_induction_score_by_definition_with_periods_per_sequence():
    weights = random_weights(3, 2, 9, seed=1)
    periods = torch.tensor([2, 5, 8])
    picked = [
        weights[b, :, t, t - int(periods[b]) + 1]
        for b in range(3)
        for t in range(int(periods[b]), 9)
    ]
    torch.testing.assert_close(
        induction_score(weights, periods), torch.stack(picked).mean(dim=0)
    )
    perfect = torch.zeros(1, 1, 6, 6)
    for t in range(6):
        perfect[0, 0, t, t - 3 + 1 if t >= 3 else 0] = 1.0
    assert induction_score(perfect, torch.tensor([3])).item() == 1.0


def test_zero_ablation_equals_zeroing_the_heads_rows_of_W_O():
    model = small_model()
    tokens = torch.randint(0, 20, (2, 8))
    with torch.no_grad():
        ablated, _ = model(tokens, edit=ablate(0, 2))
        model.layers[0].W_o.weight[:, 8:12] = (
            0.0  # head 2's columns of weight = rows of W_O
        )
        expected, _ = model(tokens)
    torch.testing.assert_close(ablated, expected)


def test_mean_ablation_replaces_the_head_by_one_vector():
    model = small_model()
    tokens = torch.randint(0, 20, (3, 8))
    kept = {}

    def record(index, per_head):
        kept[index] = per_head
        return per_head

    with torch.no_grad():
        model(tokens, edit=record)
    edit = ablate(1, 3, "mean")
    mean_edited = edit(1, kept[1])
    head = mean_edited[:, 3]
    torch.testing.assert_close(head, kept[1][:, 3].mean(dim=(0, 1)).expand_as(head))
    torch.testing.assert_close(mean_edited[:, :3], kept[1][:, :3])
    assert edit(0, kept[1]) is kept[1]  # other layers untouched
    with pytest.raises(ValueError):
        ablate(0, 0, "random")


def test_ablated_loss_recomputes_later_layers():
    model = small_model()
    tokens = torch.randint(0, 20, (2, 8))
    with torch.no_grad():
        plain = lm_loss(model(tokens)[0], tokens)
        assert ablated_loss(model, tokens, 0, 1).item() != pytest.approx(plain.item())
        model.layers[0].W_o.weight[:, 4:8] = 0.0
        expected = lm_loss(model(tokens)[0], tokens)
        torch.testing.assert_close(ablated_loss(model, tokens, 0, 1), expected)


def test_norm_weighted_attention_is_the_length_of_each_term():
    g = torch.Generator().manual_seed(4)
    weights = random_weights(2, 3, 5, seed=2)
    values = torch.randn(2, 3, 5, 4, generator=g)
    W_o = torch.randn(3, 4, 6, generator=g)
    found = norm_weighted_attention(weights, values, W_o)
    for b, h, i, j in [(0, 0, 4, 1), (1, 2, 3, 3), (1, 1, 0, 0)]:
        term = weights[b, h, i, j] * values[b, h, j] @ W_o[h]
        torch.testing.assert_close(found[b, h, i, j], term.norm())
    # the terms add up to the head's output, whose length the norms bound
    output = torch.einsum("bhij,bhjk,hkd->bhid", weights, values, W_o)
    assert (output.norm(dim=-1) <= found.sum(dim=-1) + 1e-5).all()


def test_model_norm_maps_match_the_layers():
    model = small_model()
    tokens = torch.randint(0, 20, (2, 6))
    maps = layer_norm_weighted(model, tokens)
    assert [m.shape for m in maps] == [(2, 4, 6, 6)] * 2
    assert (maps[1][..., ~causal_mask(6)] == 0).all()


def test_rollout_of_one_layer_and_rows_summing_to_one():
    a, b = random_weights(2, 3, 5, seed=5), random_weights(2, 3, 5, seed=6)
    eye = torch.eye(5)
    torch.testing.assert_close(attention_rollout([a]), 0.5 * a.mean(1) + 0.5 * eye)
    two = attention_rollout([a, b])
    torch.testing.assert_close(
        two, (0.5 * b.mean(1) + 0.5 * eye) @ (0.5 * a.mean(1) + 0.5 * eye)
    )
    torch.testing.assert_close(two.sum(-1), torch.ones(2, 5))


def test_gradient_times_input_sees_no_later_position():
    model = small_model()
    tokens = torch.randint(0, 20, (2, 8))
    scores = gradient_times_input(
        model, tokens, torch.tensor([4, 6]), torch.tensor([1, 2])
    )
    assert scores.shape == (2, 8)
    assert (scores[0, 5:] == 0).all() and (scores[0, :5] != 0).all()
    assert (scores[1, 7:] == 0).all() and (scores[1, :7] != 0).all()


def test_queries_lie_in_the_second_copy_and_sources_hold_the_next_token():
    tokens, periods = repeated_segments(100, 24, 30, 3, 12, seed=4)
    queries, sources = one_query_per_sequence(periods, seed=1)
    assert ((queries >= periods) & (queries <= 2 * periods - 2)).all()
    rows = torch.arange(100)
    assert torch.equal(tokens[rows, sources], tokens[rows, queries + 1])
    for b in range(100):  # the only earlier position holding the next token
        before = tokens[b, : queries[b] + 1]
        assert (before == tokens[b, queries[b] + 1]).sum() == 1


def test_removal_effect_and_faithfulness_table():
    model = small_model(vocab=30, n=24)
    tokens, periods = repeated_segments(20, 24, 30, 3, 12, seed=4)
    queries, sources = one_query_per_sequence(periods)
    effect = removal_effect(model, tokens, queries)
    assert effect.shape == (20, 24)
    rows = torch.arange(20)
    # removing a key that comes after the query changes nothing (causal)
    later = torch.arange(24)[None, :] > queries[:, None]
    assert effect[later].abs().max() < 1e-5
    assert effect[rows, 0].abs().max() > 0
    scores = attribution_scores(model, tokens, queries)
    assert all((s[rows, queries] == float("-inf")).all() for s in scores.values())
    table = faithfulness(model, tokens, queries, sources)
    assert set(table) == {
        "last layer's weights",
        "attention rollout",
        "norm-weighted",
        "gradient x input",
        "ablation",
    }
    assert all(0.0 <= v <= 1.0 for v in table.values())


def test_swapping_the_latest_and_the_earlier_copy():
    weights = random_weights(2, 3, 10, seed=8)
    periods = torch.tensor([3, 6])
    swapped = swap_copies(weights, periods)
    torch.testing.assert_close(swapped.sum(-1), torch.ones(2, 3, 10))
    torch.testing.assert_close(swapped[1], weights[1])  # 2 * 6 > 9: nothing moves
    torch.testing.assert_close(swapped[0, :, :6], weights[0, :, :6])
    for t in range(6, 10):
        torch.testing.assert_close(swapped[0, :, t, t - 2], weights[0, :, t, t - 5])
        torch.testing.assert_close(swapped[0, :, t, t - 5], weights[0, :, t, t - 2])
    torch.testing.assert_close(swap_copies(swapped, periods), weights)


def test_copy_weight_counts_every_earlier_copy():
    weights = random_weights(2, 2, 9, seed=9)
    periods = torch.tensor([2, 4])
    expected = []
    for b in range(2):
        p = int(periods[b])
        for t in range(p, 9):
            columns = [j for j in range(t + 1) if (t + 1 - j) % p == 0]
            expected.append(weights[b, :, t, columns].sum(dim=-1))
    torch.testing.assert_close(
        copy_weight(weights, periods), torch.stack(expected).mean(dim=0)
    )
    assert (copy_weight(weights, periods) >= induction_score(weights, periods)).all()


def test_the_saved_checkpoint_is_what_training_gives():
    """The lecture reads attention_kit/trained/induction.pt; training again with the
    course's own code (course_tools.checkpoints) must give the same weights."""
    from attention_kit.reading import CHECKPOINT
    from course_tools.checkpoints import induction_checkpoint

    saved = torch.load(CHECKPOINT, weights_only=True)
    fresh = induction_checkpoint()
    assert set(saved) == set(fresh)
    assert CHECKPOINT.stat().st_size < 1_000_000
    for name in ("varying", "fixed"):
        torch.testing.assert_close(
            fresh[f"{name} losses"], saved[f"{name} losses"], atol=1e-4, rtol=1e-4
        )
        for key, value in saved[name].items():
            torch.testing.assert_close(fresh[name][key], value, atol=1e-4, rtol=1e-4)


def test_helpers_give_the_model_back_in_the_mode_it_had():
    model = small_model(vocab=30, n=24).train()
    tokens, periods = repeated_segments(4, 24, 30, 3, 12, seed=4)
    queries, _ = one_query_per_sequence(periods)
    ablated_loss(model, tokens, 0, 1)
    attribution_scores(model, tokens, queries)
    assert all(module.training for module in model.modules())
