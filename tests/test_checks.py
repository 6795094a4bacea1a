"""Each checker passes the reference, stays quiet on a stub, and names realistic mistakes."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attention_kit.checks
from attention_kit.attention import nadaraya_watson
from attention_kit.checks import (
    ExerciseFailed,
    check_attention_pool,
    check_nadaraya_watson,
    check_softmax,
)
from conftest import assert_fails_with, assert_passes


def stub(*args):
    raise NotImplementedError("Exercise NN.k")


def softmax_shifted_by(shift, dim=-1):
    """A hand-written softmax over ``dim`` that subtracts ``shift(scores)`` first."""

    def answer(scores):
        exponentials = torch.exp(scores - shift(scores))
        return exponentials / exponentials.sum(dim=dim, keepdim=True)

    return answer


def row_max(scores):
    return scores.max(dim=-1, keepdim=True).values


stable_softmax = softmax_shifted_by(row_max)
naive_softmax = softmax_shifted_by(lambda s: 0.0)


def softmax_without_keepdim(scores):
    shifted = torch.exp(scores - scores.max(dim=-1).values)
    return shifted / shifted.sum(dim=-1, keepdim=True)


def softmax_without_values(scores):
    shifted = torch.exp(scores - scores.max(dim=-1, keepdim=True))
    return shifted / shifted.sum(dim=-1, keepdim=True)


def in_place_softmax(scores):
    scores.sub_(scores.max(dim=-1, keepdim=True).values).exp_()
    return scores.div_(scores.sum(dim=-1, keepdim=True))


def softmax_over_dim_1(scores):
    shifted = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
    return shifted / shifted.sum(dim=1, keepdim=True)


def softmax_2d_only(scores):
    shifted = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
    return shifted / shifted.sum(dim=1, keepdim=True)


def softmax_by_logsumexp(scores):
    return torch.exp(scores - torch.logsumexp(scores, dim=-1, keepdim=True))


def softmax_in_float64(scores):
    scores = scores.double()
    shifted = torch.exp(scores - scores.amax(dim=-1, keepdim=True))
    return shifted / shifted.sum(dim=-1, keepdim=True)


def nw_scores(score):
    """A Nadaraya-Watson answer with the given score(differences, bandwidth)."""

    def answer(queries, keys, values, bandwidth):
        weights = torch.softmax(
            score(queries[:, None] - keys[None, :], bandwidth), dim=-1
        )
        return weights @ values, weights

    return answer


def nw_naive(queries, keys, values, bandwidth):
    kernel = torch.exp(-((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2))
    weights = kernel / kernel.sum(dim=-1, keepdim=True)
    return weights @ values, weights


def nw_over_queries(queries, keys, values, bandwidth):
    scores = -((queries[:, None] - keys[None, :]) ** 2) / (2 * bandwidth**2)
    weights = torch.softmax(scores, dim=0)
    return weights @ values, weights


def nw_keys_by_queries(queries, keys, values, bandwidth):
    scores = -((queries[None, :] - keys[:, None]) ** 2) / (2 * bandwidth**2)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights


def nw_transposed(queries, keys, values, bandwidth):
    predictions, weights = nadaraya_watson(queries, keys, values, bandwidth)
    return predictions, weights.T


def nw_averages_keys(queries, keys, values, bandwidth):
    weights = nadaraya_watson(queries, keys, values, bandwidth)[1]
    return weights @ keys, weights


def nw_squeezed(queries, keys, values, bandwidth):
    predictions, weights = nadaraya_watson(queries, keys, values, bandwidth)
    return predictions.squeeze(), weights.squeeze()


def nw_in_place(queries, keys, values, bandwidth):
    queries -= 0  # harmless so far
    differences = queries[:, None] - keys[None, :]
    differences.pow_(2)
    weights = torch.softmax(-differences / (2 * bandwidth**2), dim=-1)
    values.mul_(1.0)
    keys.sub_(keys.mean())
    return weights @ values, weights


def nw_einsum(queries, keys, values, bandwidth):
    differences = queries.double()[:, None] - keys.double()[None, :]
    weights = torch.softmax(-differences.square() / (2 * bandwidth**2), dim=-1)
    return torch.einsum("nm,m->n", weights, values.double()), weights


REFERENCES = [
    (check_softmax, stable_softmax, "softmax: 9/9"),
    (check_softmax, softmax_by_logsumexp, "9/9"),
    (check_softmax, softmax_in_float64, "9/9"),
    (
        check_softmax,
        lambda s: torch.exp(s - row_max(s)).div(
            torch.exp(s - row_max(s)).sum(-1, keepdim=True)
        ),
        "9/9",
    ),
    (check_attention_pool, lambda w, v: w @ v, "attention_pool: 5/5"),
    (
        check_attention_pool,
        lambda w, v: torch.einsum("...nm,...md->...nd", w, v),
        "5/5",
    ),
    (check_attention_pool, lambda w, v: torch.matmul(w.double(), v.double()), "5/5"),
    (
        check_attention_pool,
        lambda w, v: (w.unsqueeze(-1) * v.unsqueeze(-3)).sum(dim=-2),
        "5/5",
    ),
    (check_nadaraya_watson, nadaraya_watson, "nadaraya_watson: 6/6"),
    (check_nadaraya_watson, nw_einsum, "6/6"),
]

MISTAKES = [
    # (checker, wrong answer, words the hint must contain)
    (check_softmax, naive_softmax, "Subtract each row's maximum"),
    (check_softmax, in_place_softmax, "changed its input `scores` in place"),
    (
        check_softmax,
        softmax_shifted_by(lambda s: s.max()),
        "Subtract each row's maximum",
    ),
    (
        check_softmax,
        softmax_shifted_by(lambda s: s.min(dim=-1, keepdim=True).values),
        "MAXIMUM (not its minimum",
    ),
    (
        check_softmax,
        softmax_shifted_by(lambda s: s.mean(dim=-1, keepdim=True)),
        "MAXIMUM (not its minimum",
    ),
    (check_softmax, softmax_shifted_by(lambda s: s[..., :1]), "MAXIMUM"),
    (
        check_softmax,
        softmax_shifted_by(lambda s: s.amax(dim=-2, keepdim=True)),
        "one number per row",
    ),
    (check_softmax, softmax_shifted_by(row_max, dim=0), "over the keys, the last"),
    (check_softmax, torch.exp, "divide exp(scores) by its row sum"),
    (check_softmax, softmax_without_keepdim, "keepdim=True"),
    (check_softmax, softmax_without_values, ".values"),
    (check_softmax, lambda s: s / s.sum(dim=-1, keepdim=True), "negative"),
    (check_softmax, softmax_over_dim_1, "you normalised over dim=1"),
    (check_softmax, softmax_2d_only, "dim=1"),
    (check_softmax, lambda s: torch.softmax(s, dim=-1), "write the softmax yourself"),
    (check_softmax, lambda s: s.softmax(-1), "write the softmax yourself"),
    (check_softmax, lambda s: F.softmax(s, dim=-1), "write the softmax yourself"),
    (check_softmax, lambda s: nn.Softmax(dim=-1)(s), "write the softmax yourself"),
    (check_softmax, lambda s: stable_softmax(s).numpy(), "numpy array"),
    (
        check_softmax,
        lambda s: stable_softmax(s).tolist(),
        "should be a torch.Tensor",
    ),
    (
        check_softmax,
        lambda s: stable_softmax(s).squeeze(),
        "shape",
    ),
    (check_attention_pool, lambda w, v: w * v, "elementwise"),
    (check_attention_pool, lambda w, v: w.T @ v, "do not line up"),
    (check_attention_pool, lambda w, v: v @ w, "values @ weights"),
    (
        check_attention_pool,
        lambda w, v: torch.softmax(w, dim=-1) @ v,
        "they already are a softmax",
    ),
    (
        check_attention_pool,
        lambda w, v: (w @ v) / w.shape[-1],
        "divided by the number of keys",
    ),
    (
        check_attention_pool,
        lambda w, v: v.mean(dim=0).expand(w.shape[0], -1),
        "not used",
    ),
    (check_attention_pool, torch.mm, "torch.mm"),
    (
        check_attention_pool,
        lambda w, v: torch.einsum("nm,md->nd", w, v),
        "'...nm,...md->...nd'",
    ),
    (check_attention_pool, torch.bmm, "torch.bmm needs 3-D"),
    (
        check_attention_pool,
        lambda w, v: w @ v if w.dim() == 2 else torch.bmm(w, v),
        "torch.bmm needs 3-D",
    ),
    (check_attention_pool, lambda w, v: v.T @ w.T, "shape (3, 5), expected (5, 3)"),
    (check_nadaraya_watson, nw_scores(lambda d, h: d**2 / (2 * h**2)), "NEGATIVE"),
    (
        check_nadaraya_watson,
        nw_scores(lambda d, h: -d / (2 * h**2)),
        "square the difference",
    ),
    (check_nadaraya_watson, nw_scores(lambda d, h: -d.abs() / (2 * h**2)), "Laplace"),
    (check_nadaraya_watson, nw_scores(lambda d, h: -(d**2) / h**2), "2x too narrow"),
    (
        check_nadaraya_watson,
        nw_scores(lambda d, h: -(d**2) / (2 * h)),
        "must be squared",
    ),
    (check_nadaraya_watson, nw_scores(lambda d, h: -(d**2) / 2 * h**2), "precedence"),
    (
        check_nadaraya_watson,
        nw_scores(lambda d, h: -(d**2) / 2),
        "do not depend on the bandwidth",
    ),
    (check_nadaraya_watson, nw_over_queries, "must sum to 1"),
    (check_nadaraya_watson, nw_transposed, "Rows are queries"),
    (check_nadaraya_watson, nw_keys_by_queries, "queries[:, None] - keys[None, :]"),
    (check_nadaraya_watson, nw_naive, "underflows to 0"),
    (check_nadaraya_watson, nw_averages_keys, "VALUES"),
    (check_nadaraya_watson, nw_squeezed, "single query"),
    (check_nadaraya_watson, nw_in_place, "in place"),
    (
        check_nadaraya_watson,
        lambda q, k, v, h: nadaraya_watson(q, k, v, h)[0],
        "return a pair",
    ),
    (
        check_nadaraya_watson,
        lambda q, k, v, h: nadaraya_watson(q, k, v, h)[::-1],
        "weights",
    ),
    (
        check_nadaraya_watson,
        lambda q, k, v, h: (
            nadaraya_watson(q, k, v, h)[0] / k.shape[0],
            nadaraya_watson(q, k, v, h)[1],
        ),
        "divided by the number of keys",
    ),
]


@pytest.mark.parametrize("checker, answer, message", REFERENCES)
def test_reference_answers_pass(checker, answer, message, capsys):
    assert_passes(checker, answer, capsys, message)


def registered_mistakes() -> list[tuple]:
    """Every ``MISTAKES`` list of every ``tests/test_checks*.py`` module, this one too.

    The convention (CONTRIBUTING.md, "The rule for every checker"): a unit's checker
    tests live in ``tests/test_checks_unitNN.py`` with a module-level list
    ``MISTAKES = [(checker, wrong_answer, "words the hint must contain"), ...]``.
    This module runs them all and counts them per checker.
    """
    found = []
    for path in sorted(Path(__file__).parent.glob("test_checks*.py")):
        module = (
            sys.modules[__name__]
            if path.stem == __name__
            else importlib.import_module(path.stem)
        )
        found += [(path.stem, *entry) for entry in getattr(module, "MISTAKES", [])]
    return found


ALL_MISTAKES = registered_mistakes()


@pytest.mark.parametrize(
    "module, checker, answer, hint",
    ALL_MISTAKES,
    ids=[f"{m}-{c.__name__}-{i}" for i, (m, c, _, _) in enumerate(ALL_MISTAKES)],
)
def test_mistakes_fail_with_a_hint_that_names_them(module, checker, answer, hint):
    assert_fails_with(checker, answer, hint)


class StubModule(nn.Module):
    """What a student notebook holds before a module exercise is solved."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError("Exercise NN.k")


ALL_CHECKERS = [
    getattr(attention_kit.checks, name) for name in attention_kit.checks.__all__
]
ALL_CHECKERS = [checker for checker in ALL_CHECKERS if hasattr(checker, "exercise")]


MINIMUM_MISTAKES = 3


@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: c.__name__)
def test_every_checker_is_tested_on_at_least_three_wrong_answers(checker):
    hints = [
        hint
        for _, registered, _, hint in ALL_MISTAKES
        if registered is checker and hint.strip()
    ]
    assert len(hints) >= MINIMUM_MISTAKES, (
        f"{checker.__name__} (Exercise {checker.exercise}) has {len(hints)} wrong "
        f"answers with hint words in a MISTAKES list of tests/test_checks*.py; "
        f"the rule is at least {MINIMUM_MISTAKES}"
    )


@pytest.mark.parametrize("stub_answer", [stub, StubModule], ids=["function", "class"])
@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: c.__name__)
def test_every_checker_leaves_a_stub_unattempted(checker, stub_answer, capsys):
    checker(stub_answer)
    assert capsys.readouterr().out.startswith(
        f"⏳ Exercise {checker.exercise} not attempted yet"
    )


def test_an_exception_in_the_learners_code_is_reported_with_its_line():
    def broken_softmax(scores):
        return torch.exp(scores) / torch.exp(scores).sum(dim=7)

    with pytest.raises(ExerciseFailed) as failure:
        check_softmax(broken_softmax)
    hint = failure.value.hint
    assert "raised IndexError" in hint
    assert "torch.exp(scores).sum(dim=7)" in hint
    assert "a tensor of shape (4, 6)" in hint


def test_nan_and_integer_outputs_are_explained():
    with pytest.raises(ExerciseFailed, match="contains NaN"):
        check_softmax(lambda s: torch.full_like(s, float("nan")))
    with pytest.raises(ExerciseFailed, match="integer dtype"):
        check_softmax(lambda s: torch.zeros(s.shape, dtype=torch.long))


def test_passing_a_value_instead_of_a_function_is_explained():
    with pytest.raises(ExerciseFailed, match="pass the function itself"):
        check_softmax(torch.zeros(3))
    with pytest.raises(ExerciseFailed, match="pass the function itself"):
        check_attention_pool(np.zeros(3))


def test_failure_renders_as_one_short_message_in_ipython():
    with pytest.raises(ExerciseFailed) as failure:
        check_softmax(torch.exp)
    lines = failure.value._render_traceback_()
    assert lines[0].startswith("❌ Exercise 01.1 (softmax) failed: ")
    assert not any("Traceback" in line or "File " in line for line in lines)
    assert isinstance(failure.value, AssertionError)


def test_checks_do_not_move_the_global_random_state(capsys):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    check_nadaraya_watson(nadaraya_watson)
    assert torch.rand(1) == before


def test_a_module_with_buffers_and_parameter_free_submodules_passes(capsys):
    from attention_kit.attention import AdditiveAttention
    from attention_kit.checks import check_additive_attention

    class WithExtras(AdditiveAttention):
        def __init__(self, query_dim, key_dim, hidden_dim):
            super().__init__(query_dim, key_dim, hidden_dim)
            self.register_buffer("cached", torch.ones(3))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            self.dropout = nn.Dropout(0.0)
            self.activation = nn.Tanh()

    assert_passes(check_additive_attention, WithExtras, capsys)


class EmptyModule(nn.Module):
    """A module class with no layers whose forward returns nonsense."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, *args, **kwargs):
        return None


def raises_value_error(*args, **kwargs):
    raise ValueError("something the learner's code got wrong")


JUNK_ANSWERS = {
    "returns None": lambda *args, **kwargs: None,
    "returns a string": lambda *args, **kwargs: "weights",
    "returns a pair of None": lambda *args, **kwargs: (None, None),
    "returns a scalar tensor": lambda *args, **kwargs: torch.tensor(1.0),
    "returns integer tensors": lambda *args, **kwargs: (
        (torch.zeros(2, dtype=torch.long),) * 3
    ),
    "raises ValueError": raises_value_error,
    "an empty module": EmptyModule,
}


@pytest.mark.parametrize("junk", JUNK_ANSWERS.values(), ids=list(JUNK_ANSWERS))
@pytest.mark.parametrize("checker", ALL_CHECKERS, ids=lambda c: c.__name__)
def test_no_checker_crashes_on_a_nonsense_answer(checker, junk):
    """Whatever the answer does, the learner gets an ExerciseFailed with a message."""
    with pytest.raises(ExerciseFailed) as failure:
        checker(junk)
    assert failure.value.hint.strip()


def test_first_difference_shows_a_small_gap():
    from attention_kit.checks.core import first_difference

    expected = torch.tensor([1.0, -1.0310])
    actual = torch.tensor([1.0, -1.0312])
    line = first_difference(actual, expected)
    assert "index (1,)" in line and "-1.031" in line and "-1.0312" in line, line
    assert "off by 0.0002" in line, line
