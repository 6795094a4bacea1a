"""The length-generalisation study of Unit 06 (tiny configurations; make bench runs it full)."""

import math

import pytest
import torch

from attention_kit.position_study import (
    IGNORE,
    KINDS,
    PositionStudyModel,
    accuracy_by_position,
    copy_back_task,
    length_generalisation_rows,
    train_copy_back,
)
from course_tools import bench


def test_copy_back_targets():
    tokens, targets = copy_back_task(
        3, 6, offset=2, generator=torch.Generator().manual_seed(0)
    )
    assert (targets[:, :2] == IGNORE).all()
    assert torch.equal(targets[:, 2:], tokens[:, :-2])


@pytest.mark.parametrize("kind", KINDS)
def test_model_shapes_and_causality(kind):
    torch.manual_seed(0)
    model = PositionStudyModel(kind, vocab_size=5, dim=8, max_positions=12)
    tokens = torch.randint(0, 5, (2, 7))
    logits, weights = model(tokens)
    assert logits.shape == (2, 7, 5) and weights.shape == (2, 7, 7)
    assert (weights.triu(1) == 0).all()
    # changing a later token leaves earlier outputs unchanged
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 5
    assert torch.allclose(model(changed)[0][:, :5], logits[:, :5])


def test_no_positions_cannot_tell_order_rope_can():
    """Without positions, the last output depends on the set of earlier tokens only."""
    torch.manual_seed(0)
    tokens = torch.tensor([[1, 2, 3, 4]])
    swapped = torch.tensor([[2, 1, 3, 4]])
    for kind, same in [("none", True), ("rope", False), ("sinusoidal", False)]:
        model = PositionStudyModel(kind, vocab_size=5, dim=8)
        last, last_swapped = model(tokens)[0][0, -1], model(swapped)[0][0, -1]
        assert torch.allclose(last, last_swapped, atol=1e-6) == same, kind


def test_learned_positions_table_has_rows_for_the_longest_test():
    model = PositionStudyModel("learned", max_positions=10)
    model(torch.zeros(1, 10, dtype=torch.long))
    with pytest.raises(IndexError):
        model(torch.zeros(1, 11, dtype=torch.long))


def test_training_runs_and_rope_learns_a_little():
    model = train_copy_back("rope", train_length=8, max_positions=16, steps=40, dim=16)
    per_position = accuracy_by_position(model, 16, num_sequences=50)
    assert per_position.shape == (16,)
    assert math.isnan(per_position[0]) and math.isnan(per_position[1])
    assert per_position[2:].mean() > 1 / 16  # better than chance after 40 steps


def test_bench_rows_tiny_config():
    rows = length_generalisation_rows(
        train_length=6, test_lengths=(6, 12), steps=3, seeds=(0,)
    )
    assert len(rows) == len(KINDS) * 2
    assert all(len(row) == 3 for row in rows)
    assert "positions >= 6" in rows[1][2]
    assert "positions" in bench.MEASUREMENTS


def test_learned_rows_beyond_the_training_length_keep_their_initial_values():
    """What the lab states: Adam never moves rows that never get a gradient."""
    from attention_kit.train import set_seed

    set_seed(3)
    initial = PositionStudyModel("learned", dim=16, max_positions=20)
    model = train_copy_back(
        "learned", train_length=8, max_positions=20, steps=5, dim=16, seed=3
    )
    before, after = initial.positions.table.weight, model.positions.table.weight
    assert torch.equal(after[8:], before[8:])
    assert not torch.equal(after[:8], before[:8])


def test_length_generalisation_passes_offset_to_training_and_testing():
    """offset is one argument used for both: the result is the test accuracy, with that
    offset, of the model trained with it (here one seed, so the mean is that value)."""
    from attention_kit.position_study import accuracy, length_generalisation

    results = length_generalisation(
        train_length=6, test_lengths=(6, 9), steps=3, kinds=("none",), offset=3, dim=8
    )
    model = train_copy_back("none", 6, max_positions=9, steps=3, offset=3, dim=8)
    assert results["none"] == {n: accuracy(model, n, offset=3) for n in (6, 9)}
    assert results["none beyond"] == {9: accuracy(model, 9, offset=3, from_position=6)}


@pytest.mark.parametrize("kind", ["alibi", "t5"])
def test_score_bias_kinds_are_causal_and_shift_invariant(kind):
    from attention_kit.position_study import PositionStudyModel

    torch.manual_seed(0)
    model = PositionStudyModel(kind, vocab_size=5, dim=8)
    tokens = torch.randint(0, 5, (2, 9))
    logits, weights = model(tokens)
    assert (weights.triu(1) == 0).all()
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 5
    assert torch.allclose(model(changed)[0][:, :6], logits[:, :6])
    # the bias depends on i - j only: constant along every diagonal
    bias = model._bias(9)
    for offset in range(-8, 1):
        diagonal = bias.diagonal(offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal))


def test_prefix_majority_is_the_expected_accuracy_of_a_fair_draw():
    from attention_kit.position_study import prefix_majority_by_position

    per_position = prefix_majority_by_position(12, num_sequences=300)
    assert math.isnan(per_position[0]) and math.isnan(per_position[1])
    # at t = 2 the earlier tokens are 0 and 1: the answer (token 0) is a leader, tied
    # with token 1 unless the two are equal, so the fair draw scores 1/2 + (1/16) / 2
    assert abs(per_position[2].item() - (0.5 + 1 / 32)) < 0.06
    assert (per_position[2:] > 1 / 16).all()


def test_bias_bench_rows_tiny_config():
    from attention_kit.position_study import BIAS_KINDS

    rows = length_generalisation_rows(
        train_length=6, test_lengths=(6, 12), steps=3, seeds=(0,), kinds=BIAS_KINDS
    )
    assert [row[0].split(",")[1].strip() for row in rows[::2]] == [
        "alibi positions",
        "t5 positions",
    ]
    assert "position-biases" in bench.MEASUREMENTS


def test_t5_buckets_beyond_the_training_distances_keep_their_initial_values():
    """What Lab 06's answer states: distances >= train_length never occur in training,
    so their buckets get no gradient and keep their random initial biases."""
    from attention_kit.train import set_seed

    set_seed(4)
    initial = PositionStudyModel("t5", dim=16, max_positions=20)
    model = train_copy_back(
        "t5", train_length=8, max_positions=20, steps=5, dim=16, seed=4
    )
    before = initial.score_bias.bias.weight
    after = model.score_bias.bias.weight
    assert torch.equal(after[8:], before[8:]) and not torch.equal(after[:8], before[:8])
