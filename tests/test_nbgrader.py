"""nbgrader: the course directory `make nbgrader` writes, and the real pipeline on a lab.

The pipeline test runs nbgrader itself in a temporary course directory:
``generate_assignment``, then ``autograde`` on three submissions of Lab 01 (the release
untouched, the solutions filled in, one known wrong answer) and ``generate_feedback``.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from attention_kit.checks import ExerciseFailed, check_softmax
from conftest import ROOT
from course_tools.grading import (
    CHECK_CALL,
    CODE_POINTS,
    GRADING_VARIABLE,
    WRITTEN_POINTS,
    course_files,
    nbgrader_source,
    write_course,
)
from course_tools.release import CODE_BEGIN, EXERCISE_HEADING, MARKDOWN_BEGIN

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LAB = "01_queries_keys_values"
BIN = Path(sys.executable).parent


def grades(notebook: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, dict]]:
    return [
        (c, c.metadata["nbgrader"]) for c in notebook.cells if "nbgrader" in c.metadata
    ]


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_exercise_of_every_lab_is_graded(path):
    solution = nbformat.read(path, as_version=4)
    source = nbgrader_source(solution, path.name)
    nbformat.validate(source)
    graded = grades(source)
    ids = [meta["grade_id"] for _, meta in graded]
    assert len(ids) == len(set(ids)), f"grade ids repeat: {ids}"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids), ids
    exercises = EXERCISE_HEADING.findall("\n".join(c.source for c in solution.cells))
    for number in exercises:
        prefix = "ex" + number.replace(".", "_") + "_"
        points = [
            m.get("points", 0) for _, m in graded if m["grade_id"].startswith(prefix)
        ]
        assert points and sum(points) > 0, f"Exercise {number} carries no points"
    for cell, meta in graded:
        if cell.cell_type == "markdown":
            assert MARKDOWN_BEGIN in cell.source
            assert meta["solution"] and meta["grade"]
            assert meta["points"] == WRITTEN_POINTS
        elif meta[
            "solution"
        ]:  # the learner's answer: a solution region, no checker call
            assert (
                CODE_BEGIN in cell.source and not meta["grade"] and not meta["locked"]
            )
            assert not any(CHECK_CALL.match(line) for line in cell.source.split("\n"))
        else:  # the autograder test: only checker calls, locked, with points
            lines = cell.source.split("\n")
            assert lines and all(CHECK_CALL.match(line) for line in lines), cell.source
            assert meta["grade"] and meta["locked"]
            assert meta["points"] == CODE_POINTS * len(lines)
    # Nothing of the solution is lost: every line is in the source, in order.
    kept = "\n".join(c.source for c in source.cells).split("\n")
    for line in "\n".join(c.source for c in solution.cells).split("\n"):
        if line.strip():
            assert line in kept, f"lost line {line!r}"


def test_make_nbgrader_lays_out_a_course_for_every_lab(tmp_path):
    files = course_files(tmp_path)
    assert tmp_path / "nbgrader_config.py" in files
    for path in SOLUTIONS:
        assert tmp_path / "source" / path.stem / path.name in files
    config = files[tmp_path / "nbgrader_config.py"]
    assert f'os.environ["{GRADING_VARIABLE}"] = "1"' in config
    compile(config, "nbgrader_config.py", "exec")


def not_attempted(scores):
    raise NotImplementedError


def test_grading_mode_fails_an_unattempted_exercise(monkeypatch, capsys):
    monkeypatch.delenv(GRADING_VARIABLE, raising=False)
    check_softmax(not_attempted)
    assert "not attempted yet" in capsys.readouterr().out
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    with pytest.raises(ExerciseFailed, match="not attempted"):
        check_softmax(not_attempted)


def calls_an_unattempted_exercise(scores):
    raise NotImplementedError("Exercise 01.9")  # the stub of another exercise


def test_grading_mode_names_the_exercise_an_answer_waits_for(monkeypatch):
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    with pytest.raises(
        ExerciseFailed,
        match=r"waits for Exercise 01\.9, which was not attempted, so it",
    ):
        check_softmax(calls_an_unattempted_exercise)


def nbgrader(course: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop(GRADING_VARIABLE, None)  # nbgrader_config.py must set it
    result = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert "ERROR" not in log, log[-6000:]
    return log


def submit(course: Path, student: str, notebook: nbformat.NotebookNode) -> None:
    folder = course / "submitted" / student / LAB
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{LAB}.ipynb")


def fill_in(release: nbformat.NotebookNode, source: nbformat.NotebookNode):
    """The released notebook with every answer cell as in the instructor's source."""
    answers = {m["grade_id"]: c.source for c, m in grades(source) if m["solution"]}
    filled = nbformat.from_dict(release)
    for cell, meta in grades(filled):
        if meta["solution"]:
            cell.source = answers[meta["grade_id"]]
    return filled


def test_generate_autograde_and_feedback_with_nbgrader(tmp_path):
    course = tmp_path / "course"
    only_lab = tmp_path / "solutions"
    only_lab.mkdir()
    (only_lab / f"{LAB}.ipynb").write_bytes(
        (ROOT / "solutions" / f"{LAB}.ipynb").read_bytes()
    )
    write_course(course, only_lab)
    nbgrader(course, "generate_assignment", LAB, "--force")
    release = nbformat.read(course / "release" / LAB / f"{LAB}.ipynb", as_version=4)
    source = nbformat.read(course / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in release.cells)

    solved = fill_in(release, source)
    wrong = fill_in(release, source)
    softmax_cell = next(
        c for c, m in grades(wrong) if m["grade_id"] == "ex01_1_code_softmax"
    )
    stable = "shifted = scores - scores.max(dim=-1, keepdim=True).values"
    assert stable in softmax_cell.source
    softmax_cell.source = softmax_cell.source.replace(stable, "shifted = scores")
    submit(course, "untouched", release)
    submit(course, "solved", solved)
    submit(course, "wrong", wrong)
    nbgrader(course, "autograde", LAB, "--force")
    nbgrader(course, "generate_feedback", LAB, "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {
            student: {
                g.name: (g.auto_score, g.max_score)
                for g in gradebook.find_submission_notebook(LAB, LAB, student).grades
            }
            for student in ("untouched", "solved", "wrong")
        }
    code = [name for name in scores["solved"] if "answer" not in name]
    assert sorted(code) == [
        "ex01_1_softmax",
        "ex01_2_attention_pool",
        "ex01_3_nadaraya_watson",
    ]
    for name in code:
        assert scores["untouched"][name] == (0, CODE_POINTS), scores["untouched"]
        assert scores["solved"][name] == (CODE_POINTS, CODE_POINTS), scores["solved"]
        expected = 0 if name == "ex01_1_softmax" else CODE_POINTS
        assert scores["wrong"][name] == (expected, CODE_POINTS), scores["wrong"]

    feedback = course / "feedback" / "{}" / LAB / f"{LAB}.html"
    wrong_page = Path(str(feedback).format("wrong")).read_text(encoding="utf-8")
    assert "Subtract each row&#39;s maximum" in wrong_page or (
        "Subtract each row's maximum" in wrong_page
    ), "the hint for the overflowing softmax is not in the feedback"
    untouched_page = Path(str(feedback).format("untouched")).read_text(encoding="utf-8")
    assert "not attempted, so it scores no points" in untouched_page
