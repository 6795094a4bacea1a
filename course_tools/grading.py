"""Lay out an nbgrader course directory from ``solutions/`` (``make nbgrader``).

nbgrader (https://nbgrader.readthedocs.io, 0.9) reads its instructor versions from
``source/<assignment>/*.ipynb``; each graded cell carries ``metadata.nbgrader``. This
module writes that metadata, so no one sets it by hand and every new lab gets it:

- a code cell with a ``### BEGIN SOLUTION`` region is an **autograded answer**
  (``solution``); the checker calls in it (lines ``check_<name>(<name>)``) move into a
  new cell right after it, a locked **autograder test** (``grade``) worth
  ``CODE_POINTS``. nbgrader replaces the solution region by its stub, and the test cell,
  which the learner cannot edit, runs the checker on what was written;
- a markdown cell with a ``<!-- BEGIN SOLUTION -->`` region is a **manually graded
  answer** worth ``WRITTEN_POINTS``; nbgrader replaces the region by "_Your answer here._".

Each lab is one assignment named by its stem (``01_queries_keys_values``). The course's
``nbgrader_config.py`` switches the checkers to grading mode
(``ATTENTION_KIT_GRADING=1``): an exercise that was not attempted then *fails* instead
of printing "not attempted yet", so an empty submission scores zero. In the book, the
labs and CI the variable is unset and nothing changes.

Usage::

    python -m course_tools.grading _build/nbgrader     # make nbgrader
    cd _build/nbgrader
    nbgrader generate_assignment 01_queries_keys_values   # release/ for the learners
    nbgrader autograde 01_queries_keys_values             # grades submitted/*/...
    nbgrader generate_feedback 01_queries_keys_values     # feedback/*/.../*.html
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from course_tools.release import (
    CODE_BEGIN,
    EXERCISE_HEADING,
    MARKDOWN_BEGIN,
    MARKDOWN_PLACEHOLDER,
    ROOT,
    clear_outputs,
    render,
)

CODE_POINTS = 2
WRITTEN_POINTS = 1
GRADING_VARIABLE = "ATTENTION_KIT_GRADING"
CHECK_CALL = re.compile(r"^(check_(\w+))\(.*\)\s*$")

CONFIG = f'''"""nbgrader settings for the course Attention, Step by Step.

Written by `make nbgrader` (python -m course_tools.grading); regenerate, do not edit.
Run nbgrader from this folder: see the README's "For instructors".
"""

import os

# Grading mode: a checker whose exercise was not attempted fails (instead of printing
# "not attempted yet"), so an empty submission scores zero. Kernels that nbgrader starts
# inherit this variable.
os.environ["{GRADING_VARIABLE}"] = "1"

c = get_config()  # noqa: F821 (nbgrader provides get_config)
c.ClearSolutions.text_stub = "{MARKDOWN_PLACEHOLDER}"
c.Execute.timeout = 300  # seconds per cell; a lab runs in under 60 s in all
'''


def _metadata(grade_id: str, *, solution: bool, grade: bool, points: int = 0) -> dict:
    data = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": grade and not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        data["points"] = points
    return data


def grading_id(exercise: str, what: str) -> str:
    """An nbgrader cell id such as ``ex01_1_softmax``, from ``01.1`` and a name."""
    return "ex" + exercise.replace(".", "_") + "_" + what


def nbgrader_source(
    solution: nbformat.NotebookNode, name: str
) -> nbformat.NotebookNode:
    """The nbgrader instructor version of one solution notebook."""
    notebook = nbformat.from_dict(solution)  # a deep copy
    clear_outputs(notebook)
    cells, exercise, written = [], None, 0
    for index, cell in enumerate(notebook.cells):
        cells.append(cell)
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            exercise = headings[-1] if headings else exercise
            if MARKDOWN_BEGIN in cell.source:
                if exercise is None:
                    raise ValueError(
                        f"{name}, cell {index}: answer before any exercise"
                    )
                written += 1
                cell.metadata["nbgrader"] = _metadata(
                    grading_id(exercise, f"answer{written}"),
                    solution=True,
                    grade=True,
                    points=WRITTEN_POINTS,
                )
            continue
        if cell.cell_type != "code" or CODE_BEGIN not in cell.source:
            continue
        if exercise is None:
            raise ValueError(f"{name}, cell {index}: solution before any exercise")
        lines = cell.source.split("\n")
        checks = [line for line in lines if CHECK_CALL.match(line)]
        answer = [line for line in lines if not CHECK_CALL.match(line)]
        while answer and not answer[-1].strip():
            answer.pop()
        cell.source = "\n".join(answer)
        names = [CHECK_CALL.match(line).group(2) for line in checks]
        cell.metadata["nbgrader"] = _metadata(
            grading_id(exercise, "code_" + ("_".join(names) or str(index))),
            solution=True,
            grade=False,
        )
        if checks:
            test = nbformat.v4.new_code_cell("\n".join(checks))
            test.id = f"{cell.id}-check"[:64] if cell.get("id") else test.id
            test.metadata["nbgrader"] = _metadata(
                grading_id(exercise, "_".join(names)),
                solution=False,
                grade=True,
                points=CODE_POINTS * len(checks),
            )
            cells.append(test)
    notebook.cells = cells
    return notebook


def course_files(
    course: Path, source_dir: Path = ROOT / "solutions"
) -> dict[Path, str]:
    """The text of every file of the course directory, keyed by its path."""
    files = {course / "nbgrader_config.py": CONFIG}
    for path in sorted(source_dir.glob("*.ipynb")):
        notebook = nbgrader_source(nbformat.read(path, as_version=4), path.name)
        files[course / "source" / path.stem / path.name] = render(notebook)
    return files


def write_course(course: Path, source_dir: Path = ROOT / "solutions") -> list[Path]:
    """Write the course directory; return the files written."""
    written = []
    for path, text in course_files(course, source_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Lay out an nbgrader course directory from solutions/."
    )
    parser.add_argument("course", type=Path, help="the course directory to write")
    parser.add_argument("--source", type=Path, default=ROOT / "solutions")
    args = parser.parse_args(argv)
    for path in write_course(args.course, args.source):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
