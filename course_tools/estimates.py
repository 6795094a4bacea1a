"""The time estimates under every exercise heading and in each lab's introduction.

They are first estimates, computed from the length of what a learner reads and writes,
not timings of learners (the course has none yet); correct the rule, not single numbers,
when real timings arrive. The rule, per exercise:

- read the statement at 100 words a minute (technical text with maths);
- a code exercise: 5 minutes to start, plus 2 minutes per line of the model solution
  (code lines between the solution markers, without comments or blank lines), which
  covers writing it, running the check and fixing what the hint points at;
- a written exercise: 5 minutes to think, plus the model answer's length at 25 words a
  minute;

rounded up to the next 5 minutes. A lab's total adds the rest of the lab (every other
markdown word at 100 words a minute, and a minute per code cell to run it and look at
what it prints), rounded up to the next 5 minutes.

``python -m course_tools.estimates`` prints every estimate; ``--write`` puts the line
``*Estimated time: about N min.*`` right below each ``### Exercise NN.k`` heading of the
labs in ``solutions/`` (the heading itself is left alone: the tools parse it), and the
total at the end of the introduction (first cell) of the labs named with ``--totals``.
Then ``make student`` copies them into ``notebooks/``.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course_tools.release import CODE_BEGIN, CODE_END, MARKDOWN_BEGIN, MARKDOWN_END

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
HEADING = re.compile(r"^### Exercise (\d+\.\d+)\b.*$", re.MULTILINE)
ESTIMATE = re.compile(r"^\*Estimated time: about (\d+) min\.\*$")
TOTAL = re.compile(r"^\*Estimated time for this lab: about .*\*$", re.MULTILINE)
READING_WORDS_PER_MINUTE = 100
WRITING_WORDS_PER_MINUTE = 25


@dataclass
class Exercise:
    number: str
    cell: int  # the markdown cell of the heading
    statement_words: int
    solution_lines: int = 0  # a code exercise
    answer_words: int = 0  # a written exercise

    @property
    def minutes(self) -> int:
        reading = self.statement_words / READING_WORDS_PER_MINUTE
        if self.solution_lines:
            doing = 5 + 2 * self.solution_lines
        else:
            doing = 5 + self.answer_words / WRITING_WORDS_PER_MINUTE
        return round_up(reading + doing)


def round_up(minutes: float, step: int = 5) -> int:
    return max(step, step * math.ceil(minutes / step - 1e-9))


def words(text: str) -> int:
    return len(text.split())


def without_estimates(text: str) -> str:
    return "\n".join(
        line
        for line in text.split("\n")
        if not ESTIMATE.match(line) and not TOTAL.match(line)
    )


def solution_lines(source: str) -> int:
    inside, count = False, 0
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == CODE_BEGIN:
            inside = True
        elif stripped == CODE_END:
            inside = False
        elif inside and stripped and not stripped.startswith("#"):
            count += 1
    return count


def written_answer(source: str) -> str:
    return source.split(MARKDOWN_BEGIN, 1)[1].split(MARKDOWN_END, 1)[0]


def find_exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """Every exercise with what its estimate is computed from."""
    cells = notebook.cells
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        for match in HEADING.finditer(cell.source):
            statement = without_estimates(cell.source[match.start() :])
            exercise = Exercise(match.group(1), index, words(statement))
            for later in cells[index:]:
                if later is not cell and HEADING.search(later.source):
                    break
                if later.cell_type == "code" and CODE_BEGIN in later.source:
                    exercise.solution_lines = solution_lines(later.source)
                    break
                if later.cell_type == "markdown" and MARKDOWN_BEGIN in later.source:
                    answer = written_answer(later.source)
                    exercise.answer_words = words(answer)
                    if later is cell:
                        exercise.statement_words -= words(answer)
                    break
                if later is not cell and later.cell_type == "markdown":
                    exercise.statement_words += words(without_estimates(later.source))
            found.append(exercise)
    return found


def lab_minutes(notebook: nbformat.NotebookNode) -> tuple[int, int]:
    """(all exercises, the rest of the lab) in minutes, before rounding the sum."""
    exercises = find_exercises(notebook)
    exercise_minutes = sum(e.minutes for e in exercises)
    counted = sum(e.statement_words + e.answer_words for e in exercises)
    markdown = sum(
        words(without_estimates(c.source))
        for c in notebook.cells
        if c.cell_type == "markdown"
    )
    code_cells = sum(c.cell_type == "code" for c in notebook.cells)
    rest = round_up((markdown - counted) / READING_WORDS_PER_MINUTE + code_cells)
    return exercise_minutes, rest


def estimate_line(minutes: int) -> str:
    return f"*Estimated time: about {minutes} min.*"


def hours(minutes: int) -> str:
    whole, left = divmod(minutes, 60)
    if not whole:
        return f"{left} min"
    return f"{whole} h {left} min" if left else f"{whole} h"


def total_line(notebook: nbformat.NotebookNode) -> str:
    exercise_minutes, rest = lab_minutes(notebook)
    count = len(find_exercises(notebook))
    return (
        f"*Estimated time for this lab: about {hours(exercise_minutes + rest)}: "
        f"{exercise_minutes} min for the {count} exercises and {rest} min to read and run "
        "the rest. These are estimates from the length of the text and of the model "
        "solutions, not timings of learners.*"
    )


def with_estimate(source: str, exercise: Exercise) -> str:
    """``source`` with the estimate line right below the exercise's heading."""
    lines = source.split("\n")
    at = next(
        i
        for i, line in enumerate(lines)
        if (m := HEADING.match(line)) and m.group(1) == exercise.number
    )
    if at + 1 < len(lines) and ESTIMATE.match(lines[at + 1]):
        del lines[at + 1]
    lines.insert(at + 1, estimate_line(exercise.minutes))
    return "\n".join(lines)


def with_total(source: str, line: str) -> str:
    source = TOTAL.sub("", source).rstrip("\n")
    return f"{source}\n\n{line}"


def write(path: Path, totals: bool) -> None:
    notebook = nbformat.read(path, as_version=4)
    for exercise in find_exercises(notebook):
        cell = notebook.cells[exercise.cell]
        cell.source = with_estimate(cell.source, exercise)
    if totals:
        intro = notebook.cells[0]
        intro.source = with_total(intro.source, total_line(notebook))
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the lines")
    parser.add_argument(
        "--totals",
        nargs="*",
        default=None,
        metavar="NN",
        help="labs whose total to write",
    )
    args = parser.parse_args(argv)
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for exercise in find_exercises(notebook):
            print(f"{exercise.number}: {exercise.minutes:3d} min  {exercise}")
        print(f"{path.name}: {total_line(notebook)}\n")
        if args.write:
            unit = path.name[:2]
            write(path, totals=args.totals is None or unit in args.totals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
