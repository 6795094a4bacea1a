"""Grade the written answers of a lab from the command line (nbgrader 0.9's gradebook).

``nbgrader autograde`` scores the checks; each written answer waits for a person
(``needs_manual_grade``) and counts 0 until it is graded. Run from the course directory::

    python -m course_tools.written 04_self_attention                 # list them
    python -m course_tools.written 04_self_attention --student ada \\
        --answer ex04_3_answer1 --points 1 --comment "Right: slope 2."

The listing shows, for every submission, each written answer's grade id, its points,
whether it is graded, and the learner's text (from ``autograded/``). Giving ``--points``
records the manual score (and comment) in ``gradebook.db``, as formgrader would; run
``nbgrader generate_feedback`` afterwards so the feedback shows it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook


def _answers(course: Path, lab: str, student: str, notebook: str) -> dict[str, str]:
    path = course / "autograded" / student / lab / f"{notebook}.ipynb"
    if not path.exists():
        return {}
    cells = nbformat.read(path, as_version=4).cells
    return {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade_id")
    }


def written_grades(gradebook: Gradebook, lab: str):
    """(student, notebook, grade) for every written answer of ``lab``'s submissions."""
    for submission in gradebook.assignment_submissions(lab):
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.cell.cell_type == "markdown":
                    yield submission.student.id, notebook.name, grade


def listing(course: Path, lab: str) -> str:
    lines = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student, notebook, grade in sorted(
            written_grades(gradebook, lab),
            key=lambda item: (not item[2].needs_manual_grade, item[0], item[2].name),
        ):
            state = (
                "awaits grading"
                if grade.needs_manual_grade
                else f"graded {grade.score:g}/{grade.max_score:g}"
            )
            text = _answers(course, lab, student, notebook).get(grade.name, "")
            lines.append(
                f"{student}  {grade.name}  ({grade.max_score:g} points): {state}"
            )
            lines.append(textwrap.indent(text.strip() or "(empty)", "    | "))
    return "\n".join(lines) if lines else f"no submission of {lab} is autograded yet"


def mark(
    course: Path, lab: str, student: str, answer: str, points: float, comment: str
) -> str:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(lab, lab, student)
        grade = next((g for g in notebook.grades if g.name == answer), None)
        if grade is None:
            names = ", ".join(g.name for g in notebook.grades)
            raise SystemExit(f"{lab} has no answer {answer!r}; its grade ids: {names}")
        if not 0 <= points <= grade.max_score:
            raise SystemExit(f"{answer} is worth 0 to {grade.max_score:g} points")
        grade.manual_score = points
        grade.needs_manual_grade = False
        if comment:
            found = gradebook.find_comment(answer, lab, lab, student)
            found.manual_comment = comment
        gradebook.db.commit()
        return f"{student} {answer}: {points:g}/{grade.max_score:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lab", help="the assignment, e.g. 04_self_attention")
    parser.add_argument("--course", type=Path, default=Path.cwd())
    parser.add_argument("--student")
    parser.add_argument("--answer", help="the grade id, e.g. ex04_3_answer1")
    parser.add_argument("--points", type=float)
    parser.add_argument("--comment", default="")
    args = parser.parse_args(argv)
    if args.points is None:
        print(listing(args.course, args.lab))
        return 0
    if not (args.student and args.answer):
        parser.error("--points needs --student and --answer")
    print(
        mark(
            args.course, args.lab, args.student, args.answer, args.points, args.comment
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
