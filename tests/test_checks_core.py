"""The checker core's shared rules: the promised dtype, and blaming the exercise that is
really wrong when one answer calls another exercise's function."""

import pytest
import torch

from attention_kit.checks import ExerciseFailed
from attention_kit.checks.core import (
    CHECKERS,
    Checker,
    exercise,
    exercises_called_by,
    random_generator,
)
from conftest import assert_fails_with, assert_passes, with_globals


def double(x):
    return 2 * x


def quadruple(x):
    return double(double(x))


@pytest.fixture
def unit99():
    """Two exercises of a made-up unit: 99.2's answer calls 99.1's function."""

    @exercise("99.1", "double")
    def check_double(c: Checker, answer) -> None:
        x = torch.randn(3, 4, generator=random_generator(0))
        out = c.tensor(c.call(answer, x), "double(x)", shape=x.shape, dtype=x.dtype)
        c.expect_close(out, 2 * x, "double(x) should be 2 x")

    @exercise("99.2", "quadruple")
    def check_quadruple(c: Checker, answer) -> None:
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(3, 4, generator=random_generator(1)).to(dtype)
            out = c.tensor(
                c.call(answer, x), "quadruple(x)", shape=x.shape, dtype=dtype
            )
            c.expect_close(out, 4 * x, "quadruple(x) should be 4 x")

    yield check_double, check_quadruple
    del CHECKERS["99.1"], CHECKERS["99.2"]


def test_a_right_answer_passes(unit99, capsys):
    check_double, check_quadruple = unit99
    assert_passes(check_double, double, capsys)
    assert_passes(check_quadruple, quadruple, capsys)


def test_the_promised_dtype_is_checked(unit99):
    check_double, check_quadruple = unit99
    assert_fails_with(
        check_double, lambda x: (2 * x).double(), "promises the input's dtype"
    )
    assert_fails_with(
        check_quadruple, lambda x: 4 * x.float(), "but the input was float64"
    )


def test_computing_in_float64_inside_and_casting_back_passes(unit99, capsys):
    check_double, _ = unit99
    assert_passes(check_double, lambda x: (2 * x.double()).to(x.dtype), capsys)


def test_a_right_answer_calling_a_wrong_dependency_blames_the_dependency(unit99):
    _, check_quadruple = unit99
    answer = with_globals(quadruple, double=lambda x: 3 * x)
    try:
        check_quadruple(answer)
    except ExerciseFailed as failure:
        assert failure.exercise == "99.2"
        assert (
            "your double does not pass Exercise 99.1 yet; fix it first" in failure.hint
        )
        assert "double(x) should be 2 x" in failure.hint
    else:
        raise AssertionError("a wrong dependency went unnoticed")


def test_a_wrong_answer_with_a_right_dependency_gets_its_own_hint(unit99):
    _, check_quadruple = unit99
    assert_fails_with(check_quadruple, lambda x: double(x), "should be 4 x")


def test_an_imported_reference_is_not_blamed(unit99):
    """A dependency that is the kit's own object is not the learner's to fix."""
    from attention_kit.attention import masked_softmax

    answer = with_globals(quadruple, double=masked_softmax)
    assert exercises_called_by(answer, "99.2") == []


def test_dependencies_are_found_through_classes_and_nested_functions(unit99):
    def outer(x):
        def inner(y):
            return double(double(y))

        return inner(x)

    class Quadrupler:
        def __call__(self, x):
            return double(double(x))

    assert [n for n, _ in exercises_called_by(outer, "99.2")] == ["99.1"]
    assert [n for n, _ in exercises_called_by(Quadrupler, "99.2")] == ["99.1"]


def test_the_registry_holds_every_course_checker():
    import attention_kit.checks as checks

    exported = {
        getattr(checks, name).exercise
        for name in dir(checks)
        if name.startswith("check_")
    }
    assert exported <= set(CHECKERS)
    for number in exported:
        assert CHECKERS[number].exercise == number
