"""The marks that checkers and `make progress` print (✅ ⏳ ❌ 💥 ✍️ ❔) never stand alone.

A screen reader reads ✅ as "check mark button" (or skips it), and a terminal without an
emoji font shows an empty box, so every line that carries a mark also says in words what
it means: "checks passed", "not attempted yet", "waits for", "failed", "done", "wrong",
"error", "written answer", "unknown". Each message path is tried here.
"""

import pytest
import torch

from attention_kit.checks import ExerciseFailed, check_softmax
from attention_kit.checks.core import NotAttempted, exercise
from course_tools import learner
from course_tools.learner import (
    CRASHED,
    DONE,
    UNKNOWN,
    WAITING,
    WRITTEN,
    WRONG,
    Exercise,
    LabReport,
)

MARKS = (DONE, WAITING, WRONG, CRASHED, WRITTEN, UNKNOWN)


def words_after(mark: str, line: str) -> str:
    """The text of ``line`` after ``mark``, which must be there."""
    assert mark in line, line
    return line.split(mark, 1)[1].strip()


def stub(scores):
    raise NotImplementedError("Exercise 01.1")


def softmax(scores):
    shifted = (scores - scores.max(dim=-1, keepdim=True).values).exp()
    return shifted / shifted.sum(dim=-1, keepdim=True)


def test_the_checkers_lines_say_in_words_what_their_mark_means(capsys):
    check_softmax(softmax)
    assert words_after("✅", capsys.readouterr().out).startswith("softmax: ")
    check_softmax(stub)
    assert "not attempted yet" in words_after("⏳", capsys.readouterr().out)
    with pytest.raises(ExerciseFailed) as failure:
        check_softmax(torch.exp)
    first = failure.value._render_traceback_()[0]
    assert words_after("❌", first).startswith("Exercise 01.1 (softmax) failed: ")


def test_waiting_and_grading_mode_say_it_in_words(capsys, monkeypatch):
    @exercise("99.2", "later")
    def check_later(c, answer):
        raise NotAttempted(depends_on="99.1")

    check_later(lambda: None)
    assert "waits for Exercise 99.1" in words_after("⏳", capsys.readouterr().out)
    monkeypatch.setenv("ATTENTION_KIT_GRADING", "1")
    with pytest.raises(ExerciseFailed) as failure:
        check_softmax(stub)
    first = failure.value._render_traceback_()[0]
    assert "failed: not attempted, so it scores no points" in words_after("❌", first)


@pytest.mark.parametrize("mark", MARKS)
def test_every_status_of_the_progress_table_has_words(mark):
    row = Exercise("01.1", "softmax", 0, check_cells=[1], status=mark, has_checker=True)
    row.detail = {
        WRONG: "rows do not sum to 1",
        CRASHED: 'cell 3, "x = 1": NameError',
        WRITTEN: "not answered yet",
        UNKNOWN: "its heading '### Exercise 01.1: ...' is gone",
    }.get(mark, "")
    if mark == WRITTEN:
        row.check_cells, row.has_checker = [], False
    table = learner.format_table([LabReport("01_lab.ipynb", [row])])
    line = next(line for line in table.splitlines() if "01.1" in line)
    meaning = {
        DONE: "done",
        WAITING: "not attempted",
        WRONG: "wrong",
        CRASHED: "error",
        WRITTEN: "written answer",
        UNKNOWN: "unknown",
    }[mark]
    assert words_after(mark, line).startswith(meaning), line
