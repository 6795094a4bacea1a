"""The exercise mechanism: run a learner's answer, compare it, explain the first mistake.

A checker is written as a function ``body(c, answer)`` decorated with
``@exercise("NN.k", "name")``. Inside, ``c`` (a :class:`Checker`) calls the
learner's code safely and records each passed check. The decorated checker

- prints ``✅ name: k/k checks passed`` when every check passes;
- prints ``⏳ Exercise NN.k not attempted yet`` when the answer raises
  ``NotImplementedError`` (the stub that the student notebook ships with);
- raises :class:`ExerciseFailed` with one hint at the first failed check.

Anything the learner's code does (raise, return the wrong type or shape, return
NaN, overwrite its inputs) turns into an ``ExerciseFailed`` with a message, never a
crash inside here.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import math
import os
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import Tensor, nn

_KIT_FOLDER = str(Path(__file__).resolve().parents[1])


class ExerciseFailed(AssertionError):
    """The answer to an exercise is wrong; ``hint`` says what to look at."""

    def __init__(self, exercise: str, name: str, hint: str):
        self.exercise = exercise
        self.name = name
        self.hint = hint
        super().__init__(f"Exercise {exercise} ({name}): {hint}")

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback through the checker.
        # "failed" beside the mark: a screen reader or an emoji-less terminal needs words.
        return f"❌ Exercise {self.exercise} ({self.name}) failed: {self.hint}".splitlines()


class NotAttempted(Exception):
    """The answer still raises NotImplementedError; ``depends_on`` names another
    exercise when it is that exercise's stub that raised."""

    def __init__(self, depends_on: str | None = None):
        super().__init__(depends_on)
        self.depends_on = depends_on


def describe(value: Any) -> str:
    """A short description of a value for messages: type and shape, not contents."""
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, (int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def _where_in_learner_code(error: BaseException) -> str:
    """The last line of the learner's own code in the traceback, if there is one."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [
        f
        for f in frames
        if not f.filename.startswith(_KIT_FOLDER)
        and "site-packages" not in f.filename
        and f.line
    ]
    return f" at `{own[-1].line.strip()}`" if own else ""


def _copy(value: Any) -> Any:
    """A copy of an input for the learner's code; the checker keeps the original, so it
    can tell whether the answer wrote into its arguments."""
    if isinstance(value, Tensor):
        return value.clone()
    return value


def _unchanged(copy: Tensor, original: Tensor) -> bool:
    """Whether the learner's copy of an input still equals the original (NaN = NaN)."""
    copy, original = copy.detach(), original.detach()
    if copy.shape != original.shape or copy.dtype != original.dtype:
        return False
    same = copy == original
    if copy.is_floating_point():
        same |= copy.isnan() & original.isnan()
    return bool(same.all())


def _argument_names(answer: Callable, count: int) -> list[str]:
    """The names of the first ``count`` parameters of ``answer`` (of ``forward`` for a
    module), for messages; ``argument k`` where they cannot be read."""
    target = answer.forward if isinstance(answer, nn.Module) else answer
    try:
        names = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        names = []
    return [
        f"`{names[i]}`" if i < len(names) else f"argument {i + 1}" for i in range(count)
    ]


# Errors whose message says more than any exercise-specific hint could.
KNOWN_ERRORS = (
    (
        "torch.return_types",
        "max(dim=...) and min(dim=...) return a pair (values, indices): take .values, as "
        "in scores.max(dim=-1, keepdim=True).values.",
    ),
)

IN_PLACE_HINT = (
    "operations ending in an underscore (exp_, sub_, masked_fill_), `x -= ...` and "
    "`x[...] = ...` write into the caller's tensor, which the caller may still need. "
    "Compute a new tensor instead (x - m, x.masked_fill(...)), or clone() first."
)


class Checker:
    """Runs the checks of one exercise and counts the ones that passed."""

    def __init__(self, exercise: str, name: str):
        self.exercise = exercise
        self.name = name
        self.passed = 0

    def fail(self, hint: str) -> NoReturn:
        raise ExerciseFailed(self.exercise, self.name, hint)

    def call(
        self,
        answer: Callable,
        *args: Any,
        error_hint: str | Callable[[Exception], str] = "",
    ) -> Any:
        """Call the learner's function or class on copies of ``args``.

        NotImplementedError means "not attempted"; any other exception becomes a
        failure that names the error, where it happened, and what it was called on,
        followed by ``error_hint`` (or ``error_hint(error)`` when it is a function that
        reads the error). An answer that changes one of its tensor arguments in place
        fails too.
        """
        given = [_copy(a) for a in args]
        try:
            result = answer(*given)
        except NotImplementedError as error:
            stub_of = re.search(r"Exercise (\d+\.\d+)", str(error))
            other = (
                stub_of.group(1)
                if stub_of and stub_of.group(1) != self.exercise
                else None
            )
            raise NotAttempted(other) from error
        except ExerciseFailed:
            raise
        except Exception as error:  # anything the learner's code can raise
            called_on = ", ".join(describe(a) for a in args)
            message = (
                f"your code raised {type(error).__name__}{_where_in_learner_code(error)}: "
                f"{error}\n(called {self.name}({called_on}))"
            )
            known = [hint for text, hint in KNOWN_ERRORS if text in str(error)]
            if known:
                error_hint = known[0]
            elif callable(error_hint):
                error_hint = error_hint(error)
            self.fail(f"{message}\nHint: {error_hint}" if error_hint else message)
        names = _argument_names(answer, len(args))
        for name, original, copy in zip(names, args, given, strict=True):
            if isinstance(original, Tensor) and not _unchanged(copy, original):
                self.fail(
                    f"your {self.name} changed its input {name} in place: "
                    + IN_PLACE_HINT
                )
        return result

    @contextlib.contextmanager
    def forbidding(self, hint: str, *functions: tuple[object, str]) -> Iterator[None]:
        """Inside the block, calling any of ``functions`` (given as (owner, attribute
        name), e.g. ``(torch, "softmax")``) fails the check with ``hint``: for
        exercises that ask the learner to write something PyTorch already has."""
        missing = object()
        saved = [
            (owner, name, vars(owner).get(name, missing)) for owner, name in functions
        ]

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            self.fail(hint)

        for owner, name, _ in saved:
            setattr(owner, name, refuse)
        try:
            yield
        finally:
            for owner, name, original in saved:
                if original is missing:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)

    def tensor(
        self,
        value: Any,
        what: str,
        shape: Sequence[int] | None = None,
        shape_hint: str = "",
        nan_hint: str = "",
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Check that ``value`` is a floating tensor of ``shape`` with no NaN or inf (and,
        with ``dtype``, exactly that dtype: for statements that promise the input's
        dtype); return it detached, on the CPU, in float64 for comparisons."""
        if isinstance(value, np.ndarray):
            self.fail(
                f"{what} is a numpy array; return a torch.Tensor. Use torch operations "
                "(torch.exp, torch.softmax, @) or convert with torch.from_numpy."
            )
        if not isinstance(value, Tensor):
            self.fail(f"{what} should be a torch.Tensor, but it is {describe(value)}.")
        if not (value.is_floating_point() or value.is_complex()):
            self.fail(
                f"{what} has integer dtype {value.dtype}; it should hold real numbers."
            )
        if shape is not None and tuple(value.shape) != tuple(shape):
            message = f"{what} has shape {tuple(value.shape)}, expected {tuple(shape)}."
            self.fail(f"{message} {shape_hint}" if shape_hint else message)
        if dtype is not None and value.dtype != dtype:
            self.fail(dtype_hint(what, value.dtype, dtype))
        value = value.detach().cpu().to(torch.float64)
        if not torch.isfinite(value).all():
            bad = "NaN" if torch.isnan(value).any() else "inf"
            message = f"{what} contains {bad}."
            self.fail(f"{message} {nan_hint}" if nan_hint else message)
        return value

    def pair(self, value: Any, what: str) -> tuple[Any, Any]:
        """Check that ``value`` is a pair, as in ``return output, weights``."""
        return self.unpack(value, 2, what)

    def unpack(self, value: Any, count: int, what: str) -> tuple[Any, ...]:
        """Check that ``value`` is a tuple of ``count`` items, described by ``what``."""
        if not isinstance(value, (tuple, list)) or len(value) != count:
            kind = "a pair" if count == 2 else f"{count} values"
            self.fail(
                f"return {kind} {what}; your function returned {describe(value)}."
            )
        return tuple(value)

    def module_like(
        self,
        answer: Callable,
        reference: nn.Module,
        args: tuple,
        layers_hint: str,
        generator: torch.Generator,
        scale: float = 1.0,
        bias_hint: str = "create the layers with bias=False.",
        error_hint: str = "",
    ) -> nn.Module:
        """Build the learner's module ``answer(*args)`` and give it the weights of
        ``reference`` (first redrawn at random from ``generator``, times ``scale``), so
        that both compute the same thing if the learner's forward pass is right.

        Fails unless the module has exactly the reference's parameter names and shapes;
        ``layers_hint`` says how to create the layers, ``bias_hint`` what to do about
        biases the reference does not have. The weights are copied parameter by
        parameter, by name: buffers (a cached mask, a constant) and submodules without
        parameters are the learner's own business and stay as they are.
        """
        module = self.call(answer, *args, error_hint=error_hint)
        if not isinstance(module, nn.Module):
            self.fail(
                f"{self.name}(...) should create an nn.Module: class {self.name}(nn.Module)."
            )
        expected = {name: tuple(p.shape) for name, p in reference.named_parameters()}
        found = {name: tuple(p.shape) for name, p in module.named_parameters()}
        extra_biases = sorted(
            n for n in set(found) - set(expected) if n.endswith("bias")
        )
        self.expect(
            not extra_biases,
            f"your module has {extra_biases}, which it should not have: {bias_hint}",
        )
        self.expect(
            found == expected,
            f"the parameters should be {expected}, yours are {found}. {layers_hint}",
        )
        theirs = dict(module.named_parameters())
        with torch.no_grad():
            for name, parameter in reference.named_parameters():
                parameter.copy_(
                    scale * torch.randn(parameter.shape, generator=generator)
                )
                theirs[name].copy_(parameter)
        return module

    def gradients(
        self,
        output: Any,
        inputs: Sequence[Tensor],
        what: str,
        hint: str,
        weights: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        """One check: the backward pass from ``output`` to ``inputs`` (tensors that
        require gradients) gives finite gradients. Returns them, in float64.

        The loss is ``(output * weights).sum()`` with fixed random ``weights`` unless
        given, so that no gradient vanishes by symmetry (the sum of a softmax row is
        constant, so its gradient is 0 whatever the code does).
        """
        if not isinstance(output, Tensor) or not output.requires_grad:
            self.fail(
                f"{what}: no gradient reaches the inputs. Stay with torch operations on "
                "the tensors you are given (no .detach(), .item(), .numpy() or "
                "torch.tensor(...) around them)."
            )
        if weights is None:
            weights = loss_weights(output.shape)
        try:
            loss = (output * weights.to(output.dtype)).sum()
            found = torch.autograd.grad(loss, list(inputs), allow_unused=True)
        except RuntimeError as error:
            self.fail(f"{what}: the backward pass raised RuntimeError: {error}")
        found = tuple(
            torch.zeros_like(x) if g is None else g
            for x, g in zip(inputs, found, strict=True)
        )
        finite = all(torch.isfinite(g).all() for g in found)
        self.expect(finite, f"{what}: the gradient contains NaN or inf. {hint}")
        return tuple(g.detach().to(torch.float64) for g in found)

    def expect(self, condition: bool | Tensor, hint: str) -> None:
        """One check: ``condition`` must hold, otherwise fail with ``hint``."""
        if not bool(condition):
            self.fail(hint)
        self.passed += 1

    def expect_close(
        self,
        actual: Tensor,
        expected: Tensor,
        hint: str,
        mistakes: Sequence[tuple[Tensor, str]] = (),
        atol: float = 1e-5,
        rtol: float = 1e-4,
    ) -> None:
        """One check: ``actual`` must equal ``expected`` up to rounding.

        ``mistakes`` pairs the output of a known wrong answer with the hint for it;
        when the learner's output matches one, that hint is given. Otherwise the
        general ``hint`` is given with the first entry that differs.
        """
        actual = actual.detach().to(torch.float64)
        expected = expected.detach().to(torch.float64)
        if actual.shape == expected.shape and torch.allclose(
            actual, expected, rtol, atol
        ):
            self.passed += 1
            return
        for wrong, mistake_hint in mistakes:
            wrong = wrong.detach().to(torch.float64)
            if wrong.shape == actual.shape and torch.allclose(
                actual, wrong, rtol, atol
            ):
                self.fail(mistake_hint)
        if actual.shape != expected.shape:
            self.fail(
                f"{hint} (shape {tuple(actual.shape)}, expected {tuple(expected.shape)})"
            )
        self.fail(f"{hint}\n{first_difference(actual, expected)}")


def dtype_hint(what: str, found: torch.dtype, promised: torch.dtype) -> str:
    """The hint for an output whose dtype is not the input's, as a statement promised."""
    short = str(promised).removeprefix("torch.")
    return (
        f"{what} has dtype {str(found).removeprefix('torch.')}, but the input was {short} "
        f"and the statement promises the input's dtype. Computing in float64 inside is "
        f"fine; return the result in the input's dtype (`.to(x.dtype)`), and create new "
        f"tensors with `dtype=x.dtype` (torch.arange and torch.tensor default to other "
        f"dtypes)."
    )


def scale_mistakes(
    scores: Tensor,
    size: int,
    name: str,
    softmax: Callable[[Tensor], Tensor] = lambda s: torch.softmax(s, dim=-1),
) -> list[tuple[Tensor, str]]:
    """The weights of the classic scaling mistakes of ``softmax(scores / sqrt(size))``,
    with their hints, for :meth:`Checker.expect_close`. ``scores`` are unscaled, ``name``
    is the size as the statement writes it (``d_k``), ``softmax`` may apply a mask."""
    root = math.sqrt(size)
    return [
        (softmax(scores), f"the scores are not scaled: divide by sqrt({name})."),
        (
            softmax(scores / size),
            f"you divided by {name}; divide by its square root, sqrt({name}): a dot "
            f"product of {name} unit-variance terms has standard deviation sqrt({name}) "
            f"(its variance is {name}).",
        ),
        (softmax(scores * root), f"you multiplied by sqrt({name}); divide by it."),
        (
            softmax(scores) / root,
            f"you divided the weights by sqrt({name}) after the softmax, so rows no "
            "longer sum to 1: scale the SCORES before it.",
        ),
    ]


def first_difference(actual: Tensor, expected: Tensor) -> str:
    """Where two tensors of one shape first differ, as a line for a message."""
    gap = (actual - expected).abs() > 1e-5 + 1e-4 * expected.abs()
    index = tuple(int(i) for i in torch.nonzero(gap)[0])
    want, got = expected[index].item(), actual[index].item()
    # Enough digits to show the gap, which can be small (a GELU approximation, float16).
    return (
        f"First difference at index {index}: "
        f"expected {want:.7g}, got {got:.7g} (off by {abs(got - want):.2g})."
    )


# Every checker, by exercise number ("06.3"), as the ``exercise`` decorator made it.
CHECKERS: dict[str, Callable[[Any], None]] = {}

# Exercises whose check is running, so that checking a dependency never recurses.
_RUNNING: set[str] = set()


def _code_objects(answer: Any) -> Iterator[Any]:
    """The code of a function, or of every function defined in a class's own body (and
    in its learner-defined bases), with the code of functions nested inside them."""
    if inspect.isclass(answer):
        functions = [
            member
            for klass in answer.__mro__
            if not klass.__module__.startswith(("torch", "builtins", "attention_kit"))
            for member in vars(klass).values()
            if inspect.isfunction(member)
        ]
    else:
        functions = [answer] if inspect.isfunction(answer) else []
    pending = [f.__code__ for f in functions]
    while pending:
        code = pending.pop()
        yield code
        pending.extend(c for c in code.co_consts if inspect.iscode(c))


def _answer_globals(answer: Any) -> dict[str, Any]:
    """The namespace the answer's global names are looked up in (the notebook's)."""
    if inspect.isfunction(answer):
        return answer.__globals__
    module = inspect.getmodule(answer)
    return vars(module) if module is not None else {}


def exercises_called_by(answer: Any, number: str) -> list[tuple[str, Any]]:
    """The other exercises of the same unit whose function or class ``answer`` calls by
    its global name, as (exercise number, the learner's object bound to that name),
    earliest first. Objects that are the kit's own (an imported reference) are left out."""
    unit = number.split(".")[0]
    names = {name for code in _code_objects(answer) for name in code.co_names}
    namespace = _answer_globals(answer)
    found = []
    for other, checker in sorted(CHECKERS.items()):
        if other == number or other.split(".")[0] != unit:
            continue
        if checker.answer_name not in names:
            continue
        learner_object = namespace.get(checker.answer_name)
        module = getattr(learner_object, "__module__", "") or ""
        if learner_object is None or module.startswith("attention_kit"):
            continue
        found.append((other, learner_object))
    return found


def failing_dependency(answer: Any, number: str) -> str | None:
    """When ``answer`` calls the learner's function of another exercise that fails its
    own check, the message that blames it (with that check's hint); else None."""
    for other, learner_object in exercises_called_by(answer, number):
        if other in _RUNNING:
            continue
        checker = CHECKERS[other]
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                checker(learner_object)
        except ExerciseFailed as failure:
            return (
                f"your {checker.answer_name} does not pass Exercise {other} yet; fix it "
                f"first (this exercise calls it). Its check says: {failure.hint}"
            )
    return None


def exercise(number: str, name: str) -> Callable:
    """Turn ``body(checker, answer)`` into the checker a lab calls as ``check_x(answer)``."""

    def decorate(body: Callable[[Checker, Any], None]) -> Callable[[Any], None]:
        @functools.wraps(body)
        def check(answer: Any) -> None:
            checker = Checker(number, name)
            check.passed = False
            if not callable(answer):
                checker.fail(
                    f"pass the function itself, check_{name}({name}), not {describe(answer)} "
                    "(no brackets after its name)."
                )
            _RUNNING.add(number)
            try:
                body(checker, answer)
            except NotAttempted as waiting:
                _report_not_attempted(checker, waiting)
                return
            except ExerciseFailed as failure:
                # A correct answer that calls an earlier exercise's wrong function is
                # told so, not given this exercise's hint.
                blame = failing_dependency(answer, number)
                if blame is not None:
                    raise ExerciseFailed(number, name, blame) from failure
                raise
            finally:
                _RUNNING.discard(number)
            print(f"✅ {name}: {checker.passed}/{checker.passed} checks passed")
            check.passed = True

        check.exercise = number
        check.answer_name = name
        check.passed = False  # True once the latest answer checked passed every check
        CHECKERS[number] = check
        return check

    return decorate


def _report_not_attempted(checker: Checker, waiting: NotAttempted) -> None:
    """Print the ⏳ line; in grading mode, fail as well."""
    number, name = checker.exercise, checker.name
    if waiting.depends_on:
        print(
            f"⏳ Exercise {number} waits for Exercise {waiting.depends_on}: "
            f"your {name} calls it, and it is not done yet"
        )
    else:
        print(f"⏳ Exercise {number} not attempted yet: fill in {name} and run again")
    # Grading mode (set by nbgrader_config.py, see course_tools.grading): an
    # unattempted exercise fails, so that an empty submission scores nothing.
    # An answer that only waits for another exercise's stub says so.
    if os.environ.get("ATTENTION_KIT_GRADING") == "1":
        checker.fail(
            f"waits for Exercise {waiting.depends_on}, which was not "
            "attempted, so it scores no points"
            if waiting.depends_on
            else "not attempted, so it scores no points"
        )


def loss_weights(shape: Sequence[int]) -> Tensor:
    """The fixed random weights of the loss that :meth:`Checker.gradients` differentiates:
    use them to compute the reference's gradients for comparison."""
    return torch.randn(tuple(shape), generator=random_generator(7))


def random_generator(seed: int = 0) -> torch.Generator:
    """A private random stream for test inputs, so checks never move the lab's own seed."""
    return torch.Generator().manual_seed(seed)
