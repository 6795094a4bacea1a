"""make bench's table and command line (the measurements themselves run in make bench)."""

import pytest
import torch

from course_tools import bench


def test_table_lines_up_columns(capsys):
    bench.print_table([("a", "bb", "c"), ("dddd", "e", "ff")])
    assert capsys.readouterr().out.splitlines() == ["a     bb  c", "dddd  e   ff"]


def test_unknown_measurement_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["no-such-measurement"])
    assert exit_info.value.code == 2
    assert "choose from" in capsys.readouterr().err


def test_every_measurement_is_documented():
    for name, measure in bench.MEASUREMENTS.items():
        assert measure.__doc__, f"{name} needs a docstring saying what it measures"


def test_most_frequent_value_strategy():
    # k0 v5 k1 v5 k2 v7 | asked k0: v5 is the most frequent value and the answer
    # k0 v5 k1 v6 k2 v7 | asked k2: a three-way tie, right one time in three
    inputs = torch.tensor([[0, 5, 1, 5, 2, 7, 0], [0, 5, 1, 6, 2, 7, 2]])
    targets = torch.tensor([5, 7])
    assert bench.most_frequent_value_accuracy(inputs, targets) == pytest.approx(
        (1 + 1 / 3) / 2
    )


def test_each_recall_row_has_its_own_expectation():
    expectations = [run[-1] for run in bench.RECALL_RUNS]
    assert len(set(expectations)) >= 4
    ablations = [run for run in bench.RECALL_RUNS if run[0].startswith("ablation")]
    assert ablations and not any(">= 99%" in run[-1] for run in ablations)


def test_training_shows_what_runs_and_a_bar_on_stderr(capsys):
    model = torch.nn.Linear(2, 1)
    batches = iter(lambda: (torch.randn(4, 2),), None)
    history = bench._train_with_bar(
        model, lambda m, b: m(b[0]).pow(2).mean(), batches, 3, 1e-2, "tiny run 1/1"
    )
    out, err = capsys.readouterr()
    assert history.steps == 3 and out == ""
    assert "tiny run 1/1" in err and "3/3" in err


def test_agreement_of_a_subject_blind_model_is_chance():
    from attention_kit.data import agreement_corpus, agreement_pairs
    from attention_kit.transformer import MiniTransformer, TransformerConfig

    alphabet = sorted(set(agreement_corpus(200, seed=0)))
    pairs = bench.visible_pairs(agreement_pairs(20, seed=3), 64)
    assert pairs and all(len(p[1].rsplit("\n", 1)[-1]) < 64 for p in pairs)
    torch.manual_seed(0)  # attention on the current token only: blind to the subject
    blind = MiniTransformer(
        TransformerConfig(len(alphabet), 64, 8, 1, 1, positions="rope", window=1)
    )
    singular, plural, preferred = bench.agreement_on_pairs(blind, pairs, alphabet)
    assert singular == pytest.approx(plural, abs=1e-6)
    assert preferred == 0.5
