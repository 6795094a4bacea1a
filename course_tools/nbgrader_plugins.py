"""nbgrader preprocessors the course's ``nbgrader_config.py`` plugs in (nbgrader 0.9).

- :class:`CourseStubs` replaces nbgrader's ``ClearSolutions`` in ``generate_assignment``:
  a code solution region becomes the course's stub,
  ``raise NotImplementedError("Exercise NN.k")``, as in ``notebooks/``, so that the
  checkers can say "waits for Exercise 08.4" and not "not attempted" when 08.5 calls an
  unfinished 08.4. The exercise number is read from the cell's grade id (``ex08_4_...``).
- :class:`CourseFeedback` replaces ``GetGrades`` in ``generate_feedback``: it adds a note
  at the top of the page with the points that still await a person (written answers
  not graded yet) and one under each such answer, and puts MathJax beside the page, so
  that the maths renders offline (the page's template loads ``mathjax/tex-svg.js``);
  figures get the text alternative the book gives them (``mystnb.image.alt``).

- :class:`CourseExport` is ``nbgrader export``'s CSV with one more column,
  ``points_awaiting_person``: the points of written answers not graded yet.

Only the nbgrader process imports this module; the labs never do.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.plugins import CsvExportPlugin
from nbgrader.preprocessors import ClearSolutions, GetGrades

from course_tools.slides import mathjax_folder

GRADE_ID = re.compile(r"^ex(\d+)_(\d+)_")
MATHJAX = "mathjax/tex-svg.js"
TEMPLATES = Path(__file__).resolve().parent / "feedback-templates"


def exercise_of(grade_id: str) -> str | None:
    """``08.4`` from a grade id such as ``ex08_4_code_sampling_distribution``."""
    match = GRADE_ID.match(grade_id)
    return f"{match.group(1)}.{match.group(2)}" if match else None


class CourseStubs(ClearSolutions):
    """ClearSolutions with the course's stub: ``raise NotImplementedError("Exercise NN.k")``."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        exercise = exercise_of(grade_id)
        if cell.cell_type != "code" or exercise is None:
            return super().preprocess_cell(cell, resources, cell_index)
        saved = self.code_stub
        self.code_stub = {
            language: f'raise NotImplementedError("Exercise {exercise}")'
            for language in saved
        }
        try:
            return super().preprocess_cell(cell, resources, cell_index)
        finally:
            self.code_stub = saved


def _points(value: float | None) -> str:
    return "0" if not value else f"{value:g}"


class CourseFeedback(GetGrades):
    """GetGrades, plus notes on the points that await a person, and offline MathJax."""

    def _get_score(self, cell, resources):
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(
            cell.metadata["nbgrader"]["grade_id"],
            self.notebook_id,
            self.assignment_id,
            self.student_id,
        )
        cell.metadata.nbgrader["awaits_person"] = bool(grade.needs_manual_grade)

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        cells, waiting = [], 0.0
        for cell in nb.cells:
            cells.append(cell)
            # The book's text alternative of a figure, where nbconvert reads one.
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt")
            if alt and "alt" not in cell.metadata:
                cell.metadata["alt"] = alt
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("awaits_person"):
                waiting += meta.get("points") or 0
                cells.append(
                    nbformat.v4.new_markdown_cell(
                        f"⏳ **Awaits your teacher:** this answer "
                        f"({_points(meta.get('points'))} points) has not been graded "
                        "yet; the score counts it as 0 until it is."
                    )
                )
        if waiting:
            total = resources["nbgrader"]["max_score"]
            cells.insert(
                0,
                nbformat.v4.new_markdown_cell(
                    f"⏳ **{_points(waiting)} of the {_points(total)} points await your "
                    "teacher** (written answers not graded yet): the score above is "
                    "not final."
                ),
            )
        nb.cells = cells
        outputs = resources.setdefault("outputs", {})
        outputs[MATHJAX] = (mathjax_folder() / Path(MATHJAX).name).read_bytes()
        return nb, resources


class CourseExport(CsvExportPlugin):
    """grades.csv with ``points_awaiting_person``: a score is final only at 0 there."""

    def export(self, gradebook):
        super().export(gradebook)
        path = Path(self.to or "grades.csv")
        with path.open(newline="") as table:
            rows = list(csv.DictReader(table))
        for row in rows:
            try:
                submission = gradebook.find_submission(
                    row["assignment"], row["student_id"]
                )
            except MissingEntry:
                waiting = 0.0
            else:
                waiting = sum(
                    grade.max_score
                    for notebook in submission.notebooks
                    for grade in notebook.grades
                    if grade.needs_manual_grade
                )
            row["points_awaiting_person"] = _points(waiting)
        fields = [*(rows[0] if rows else []), "points_awaiting_person"]
        with path.open("w", newline="") as table:
            writer = csv.DictWriter(table, fieldnames=list(dict.fromkeys(fields)))
            writer.writeheader()
            writer.writerows(rows)
