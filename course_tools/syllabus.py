"""The syllabus page's table of learner time and points, computed from the notebooks.

``syllabus.md`` holds, between ``<!-- BEGIN UNIT TABLE -->`` and
``<!-- END UNIT TABLE -->``, one row per unit: the estimated time for its lecture and its
lab, and the points of its lab under the default grading policy. The times are
*estimates from a formula*, not measurements of learners:

- reading: the words of the markdown cells at ``WORDS_PER_MINUTE`` (slow, because the
  text carries formulas), plus ``MINUTES_PER_CODE_CELL`` for each code cell that is not
  an exercise (run it, read its code and its output or figure);
- each code exercise ``MINUTES_PER_CODE_EXERCISE``, each written answer
  ``MINUTES_PER_WRITTEN_ANSWER``;
- each total rounded up to 5 minutes.

The points: ``CODE_POINTS`` per exercise with a checker, ``WRITTEN_POINTS`` per written
answer (the default of ``make nbgrader``; an instructor's points file may change it).

``python -m course_tools.syllabus`` rewrites the table; ``tests/test_syllabus.py`` fails
when the page and the notebooks disagree. It reads ``lectures/`` and ``notebooks/``
only, so it works in the student edition too.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import nbformat

from course_tools.learner import find_exercises

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "syllabus.md"
BEGIN, END = "<!-- BEGIN UNIT TABLE -->", "<!-- END UNIT TABLE -->"

WORDS_PER_MINUTE = 130
MINUTES_PER_CODE_CELL = 1
MINUTES_PER_CODE_EXERCISE = 15
MINUTES_PER_WRITTEN_ANSWER = 5
CODE_POINTS, WRITTEN_POINTS = 2, 1


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


def reading_minutes(notebook: nbformat.NotebookNode, skip: set[int] = frozenset()):
    """Minutes to read the prose and run the code cells not in ``skip``; cells the book
    leaves out (``remove-cell``, such as speaker notes) do not count."""
    shown = [
        (i, c)
        for i, c in enumerate(notebook.cells)
        if "remove-cell" not in c.metadata.get("tags", [])
    ]
    words = sum(_words(c.source) for _, c in shown if c.cell_type == "markdown")
    code = sum(
        1
        for i, c in shown
        if c.cell_type == "code" and c.source.strip() and i not in skip
    )
    return words / WORDS_PER_MINUTE + code * MINUTES_PER_CODE_CELL


def round_up(minutes: float) -> int:
    return 5 * math.ceil(minutes / 5)


def lecture_minutes(path: Path) -> int:
    return round_up(reading_minutes(nbformat.read(path, as_version=4)))


LAB_TOTAL = re.compile(
    r"Estimated time for this lab: about (?:(\d+) h)? ?(?:(\d+) min)?"
)


def stated_total(notebook: nbformat.NotebookNode) -> int | None:
    """The total the lab itself states (course_tools.estimates), in minutes, if any."""
    found = LAB_TOTAL.search(notebook.cells[0].source) if notebook.cells else None
    if not found or not any(found.groups()):
        return None
    return 60 * int(found.group(1) or 0) + int(found.group(2) or 0)


def lab_summary(path: Path) -> dict:
    """A lab's estimated minutes (the lab's own stated total when it has one, so that the
    page and the lab agree), its code and written exercises, and its points."""
    notebook = nbformat.read(path, as_version=4)
    exercises = find_exercises(notebook)
    code = [e for e in exercises if not e.written]
    written = [e for e in exercises if e.written]
    exercise_cells = {i for e in code for i in e.check_cells}
    minutes = (
        reading_minutes(notebook, exercise_cells)
        + len(code) * MINUTES_PER_CODE_EXERCISE
        + len(written) * MINUTES_PER_WRITTEN_ANSWER
    )
    stated = stated_total(notebook)
    return {
        "minutes": stated if stated is not None else round_up(minutes),
        "code": len(code),
        "written": len(written),
        "points": len(code) * CODE_POINTS + len(written) * WRITTEN_POINTS,
    }


def _hours(minutes: int) -> str:
    return (
        f"{minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"
    )


def unit_table(root: Path = ROOT) -> str:
    """The markdown table of every unit, and a totals row."""
    rows = [
        "| unit | lecture (estimate) | lab (estimate) | lab exercises | lab points |",
        "|---|---|---|---|---|",
    ]
    total_lecture = total_lab = total_points = 0
    for lecture in sorted((root / "lectures").glob("*.ipynb")):
        lab = lab_summary(root / "notebooks" / lecture.name)
        minutes = lecture_minutes(lecture)
        total_lecture += minutes
        total_lab += lab["minutes"]
        total_points += lab["points"]
        title = nbformat.read(lecture, as_version=4).cells[0].source.splitlines()[0]
        name = title.split(":", 1)[1].strip() if ":" in title else lecture.stem
        rows.append(
            f"| {lecture.stem[:2]} {name} | {_hours(minutes)} | {_hours(lab['minutes'])}"
            f" | {lab['code']} checked, {lab['written']} written | {lab['points']} |"
        )
    rows.append(
        f"| all | {_hours(total_lecture)} | {_hours(total_lab)} | | {total_points} |"
    )
    return "\n".join(rows)


def page_with_table(text: str, table: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1")
    args = parser.parse_args(argv)
    text = PAGE.read_text(encoding="utf-8")
    updated = page_with_table(text, unit_table())
    if args.check:
        if updated != text:
            print("syllabus.md is out of date: run python -m course_tools.syllabus")
            return 1
        return 0
    PAGE.write_text(updated, encoding="utf-8")
    print(f"wrote the unit table of {PAGE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
