"""What a locked nbgrader test cell runs: ``grade("04.1", simple_self_attention)``.

The cells that ``make nbgrader`` writes (see :mod:`course_tools.grading`) do not call the
``check_<name>`` bound in the notebook, which a learner's answer cell could rebind
(``check_x = lambda answer: print("✅")``), but :func:`grade`, which

1. takes the exercise's checker from the course package, by exercise number;
2. in grading mode (``ATTENTION_KIT_GRADING=1``, set by the course's
   ``nbgrader_config.py``), binds the course's answer in place of the learner's function
   of any *other* exercise the answer calls, and says so, so that one mistake costs
   points once (08.5 calls 08.4's ``sampling_distribution``);
3. runs the checker with a guard (:func:`guarded`): while it runs, a call *from the
   learner's code* to the course's answer for this exercise (``reference.SelfAttention``
   for 04.2, ``kit.filter_logits`` for 08.4, see :func:`forbidden_objects`) or to the
   checkers' functions (``unit08.reference_lm_loss``) is refused, and so is running the
   course's class through a learner's subclass of it. The checker's own calls to the
   same reference go through, and so do the objects a checker hands to the answer.
   ``tests/test_nbgrader.py`` runs every lab's solution through this in grading mode.

What this does not stop: a learner runs arbitrary Python in the grading kernel, and
someone who copies the kit's source into the answer, or patches modules on purpose, gets
past it. The guard makes the easy shortcuts fail with a message; reading the code of
surprising submissions stays the instructor's job.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import attention_kit
from attention_kit.checks import core
from attention_kit.checks.core import ExerciseFailed

GRADING_VARIABLE = "ATTENTION_KIT_GRADING"
KIT = Path(attention_kit.__file__).resolve().parent
CHECKS = KIT / "checks"
TOOLS = Path(__file__).resolve().parent

# Kit code that is, line for line, an exercise's answer under another name. Objects whose
# name is the answer's own name (attention_kit.attention.simple_self_attention for 04.1)
# are found without being listed here.
SAME_AS_ANSWER = {
    "03.1": ["attention_kit.models:Decoder.step"],
    "03.2": ["attention_kit.models:seq2seq_loss"],
    "07.4": ["attention_kit.masks:to_torch_mha_mask"],
    "08.2": ["attention_kit.transformer:Block"],
    "08.3": ["attention_kit.transformer:lm_loss"],
    "08.4": [
        "attention_kit.transformer:filter_logits",
        "attention_kit.transformer:next_token",
    ],
    "08.5": ["attention_kit.transformer:next_token"],
}


def kit_modules() -> list[str]:
    """The kit's modules that may hold an answer (every one but the checkers)."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(attention_kit.__path__)
        if info.name != "checks"
    )


# --- the course's answers, bound in place of a learner's other exercises -------------


def reference_decoder_step(decoder, previous, state, annotations, mask):
    """Exercise 03.1 as the kit computes it."""
    return decoder.step(previous, state, annotations, mask)


def reference_sampling_distribution(logits, temperature=1.0, top_k=None):
    """Exercise 08.4 as the kit computes it."""
    from attention_kit.transformer import filter_logits

    return torch.softmax(filter_logits(logits, temperature, top_k), dim=-1)


def _kit(name: str) -> Callable[[], Any]:
    module, attribute = name.split(":")
    return lambda: getattr(importlib.import_module(module), attribute)


# Every exercise whose answer a later exercise of its lab calls (tests/test_nbgrader.py
# finds those calls in solutions/ and checks each reference with its own checker).
REFERENCES = {
    "02.1": _kit("attention_kit.attention:masked_softmax"),
    "03.1": lambda: reference_decoder_step,
    "05.1": _kit("attention_kit.attention:split_heads"),
    "05.2": _kit("attention_kit.attention:merge_heads"),
    "06.3": _kit("attention_kit.positional:apply_rope"),
    "07.1": _kit("attention_kit.masks:causal_mask"),
    "08.4": lambda: reference_sampling_distribution,
}


# --- finding checkers and answers ------------------------------------------------------


def checkers() -> dict[str, Callable]:
    """Exercise number -> checker, from the course package (never from a notebook)."""
    importlib.import_module("attention_kit.checks")  # registers every checker
    return dict(core.CHECKERS)


def other_exercises_called(exercise: str, answer: Any) -> dict[str, str]:
    """Answer name -> exercise number, for the learner's functions of other exercises
    of the same lab that ``answer`` calls by global name."""
    found = core.exercises_called_by(answer, exercise)
    return {
        checkers()[number].answer_name: number
        for number, learner_object in found
        if not _from_course(learner_object)
    }


def _namespace_of(answer: Any) -> dict[str, Any]:
    """The globals the answer's names are looked up in (the notebook's namespace)."""
    if isinstance(answer, types.FunctionType):
        return answer.__globals__
    methods = [f for f in vars(answer).values() if isinstance(f, types.FunctionType)]
    if methods:  # a class: its methods look names up where the class was defined
        return methods[0].__globals__
    module = inspect.getmodule(answer)
    return vars(module) if module is not None else {}


def _from_course(value: Any) -> bool:
    module = getattr(value, "__module__", "") or ""
    return module.split(".")[0] in ("attention_kit", "course_tools")


@contextmanager
def references_in_place_of(answer: Any, calls: dict[str, str]) -> Iterator[list[str]]:
    """Bind the course's answer to each name of ``calls`` in the answer's globals for
    the duration; yields one line per substitution for the learner."""
    namespace = _namespace_of(answer)
    saved, notes = [], []
    for name, number in sorted(calls.items()):
        if number not in REFERENCES:
            continue
        saved.append((name, namespace[name]))
        namespace[name] = REFERENCES[number]()
        notes.append(
            f"ℹ️ graded with the course's {name} (Exercise {number}) in place of yours, "
            f"so that a mistake in Exercise {number} costs points only there"
        )
    try:
        yield notes
    finally:
        for name, value in reversed(saved):
            namespace[name] = value


# --- the guard -------------------------------------------------------------------------


def _resolve(name: str) -> Any:
    module, path = name.split(":")
    value = importlib.import_module(module)
    for part in path.split("."):
        value = getattr(value, part)
    return value


def forbidden_objects(exercise: str) -> list[Any]:
    """The course's answer to ``exercise``: kit functions and classes of the answer's
    name, and the kit code listed in :data:`SAME_AS_ANSWER`."""
    answer_name = checkers()[exercise].answer_name
    found = []
    for module in kit_modules():
        value = getattr(
            importlib.import_module(f"attention_kit.{module}"), answer_name, None
        )
        if value is not None and value not in found:
            found.append(value)
    for name in SAME_AS_ANSWER.get(exercise, []):
        value = _resolve(name)
        if value not in found:
            found.append(value)
    return found


def _codes(value: Any) -> dict[types.CodeType, str]:
    """The code objects of a function, or of every method a class defines."""
    label = f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, type):
        return {
            f.__code__: label
            for f in vars(value).values()
            if isinstance(f, types.FunctionType)
        }
    function = inspect.unwrap(value)
    return {function.__code__: label} if hasattr(function, "__code__") else {}


_LIBRARIES = tuple(
    {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
)


def _is_course(filename: str) -> bool:
    return filename.startswith((str(CHECKS), str(TOOLS)))


def _is_library(filename: str) -> bool:
    return filename.startswith((*_LIBRARIES, str(KIT), "<frozen"))


def _called_by_learner(frame: types.FrameType) -> bool:
    """Whether the nearest caller outside libraries and the kit is the learner's code
    (a notebook cell), not the checker or these tools."""
    caller = frame.f_back
    while caller is not None:
        filename = caller.f_code.co_filename
        if _is_course(filename):
            return False
        if not _is_library(filename):
            return True
        caller = caller.f_back
    return False


def _learners_subclass(frame: types.FrameType, classes: tuple[type, ...]) -> bool:
    """Whether ``frame`` runs a method on an instance of a learner-defined subclass of
    one of ``classes`` (``class SelfAttention(reference.SelfAttention): pass``)."""
    if not classes or not frame.f_code.co_varnames:
        return False
    first = frame.f_code.co_varnames[0]
    instance = frame.f_locals.get(first)
    kind = type(instance)
    return (
        isinstance(instance, classes) and not _from_course(kind) and kind not in classes
    )


def checker_functions() -> dict[types.CodeType, str]:
    """The code of every module-level function of the checkers (the checks and their
    helpers, such as ``unit08.reference_lm_loss``), labelled for messages."""
    codes = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if not name.startswith("attention_kit.checks."):
            continue
        for value in vars(module).values():
            if isinstance(value, types.FunctionType) and value.__module__ == name:
                codes.update(_codes(value))
                codes[value.__code__] = f"{name}.{value.__name__}, the checkers' code"
    return codes


class Refusal:
    """Records the first refused call; ``hint`` says which and why."""

    def __init__(self) -> None:
        self.hint: str | None = None


@contextmanager
def guarded(exercise: str, name: str) -> Iterator[Refusal]:
    """Refuse calls from the learner's code to the course's answer for ``exercise``
    (and to the checkers' module-level functions) while the block runs. Functions and
    objects a checker hands to the learner's code (a model, a hook) stay callable.

    A profile hook (``sys.setprofile``) sees every Python call; for the forbidden code
    it walks back to the nearest caller that is neither a library nor the kit. When that
    is the learner's code, or the call runs a forbidden class's method on a learner's
    subclass, it raises :class:`ExerciseFailed`, and the refusal is recorded so that a
    learner's ``except`` cannot hide it.
    """
    forbidden = forbidden_objects(exercise)
    codes: dict[types.CodeType, str] = {}
    for value in forbidden:
        codes.update(_codes(value))
    classes = tuple(v for v in forbidden if isinstance(v, type))
    codes.update(checker_functions())
    own = REFERENCES[exercise]() if exercise in REFERENCES else None
    if _from_course(own):  # the course's version of this very exercise
        codes.update(_codes(own))
    refusal = Refusal()
    previous = sys.getprofile()

    def refuse(label: str) -> None:
        refusal.hint = (
            f"your {name} uses the course's own answer ({label}); to earn the points, "
            "compute it with your own code (the kit's answer is refused while the "
            "exercise is graded)"
        )
        raise ExerciseFailed(exercise, name, refusal.hint)

    def hook(frame: types.FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code in codes and (
            _called_by_learner(frame) or _learners_subclass(frame, classes)
        ):
            refuse(codes[code])

    sys.setprofile(hook)
    try:
        yield refusal
    finally:
        removed = sys.getprofile() is not hook and refusal.hint is None
        sys.setprofile(previous)
        if removed:
            refusal.hint = (
                f"your {name} switched off the grading guard (sys.setprofile); leave it "
                "in place"
            )


def grade(exercise: str, answer: Any) -> None:
    """Run the course's checker of ``exercise`` on ``answer``, guarded (see the module's
    docstring). Raises :class:`ExerciseFailed` when the answer does not earn the points."""
    checker = checkers()[exercise]
    name = checker.answer_name
    grading = os.environ.get(GRADING_VARIABLE) == "1"
    calls = other_exercises_called(exercise, answer) if grading else {}
    with references_in_place_of(answer, calls) as notes:
        for note in notes:
            print(note)
        refusal = Refusal()
        try:
            with guarded(exercise, name) as refusal:
                checker(answer)
        except ExerciseFailed:
            if refusal.hint is None:
                raise
        if refusal.hint is not None:
            if checker.passed:  # the learner's code caught the refusal and went on
                refusal.hint += " (the ✅ above does not count)"
            raise ExerciseFailed(exercise, name, refusal.hint)
