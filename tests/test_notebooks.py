"""Notebook hygiene: format, no outputs, kernel, toc, student labs in sync, exercises wired."""

import re
import subprocess
import sys

import nbformat
import pytest

import attention_kit.checks
from conftest import ROOT, all_notebooks
from course_tools.book import read_toc, toc_files
from course_tools.release import CODE_BEGIN, CODE_END, EXERCISE_HEADING, MARKDOWN_BEGIN

NOTEBOOKS = all_notebooks()
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.solutions
def test_there_are_notebooks():
    assert SOLUTIONS and LECTURES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_valid_and_clean(path):
    notebook = read(path)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs: run `make student`"
            assert cell.execution_count is None, f"cell {index} has an execution count"
            assert "http://" not in cell.source and "https://" not in cell.source, (
                f"cell {index} mentions a URL: notebooks must not download anything"
            )


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    entries = toc_files(read_toc())
    pages = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    assert pages <= set(entries), f"not in _toc.yml: {sorted(pages - set(entries))}"
    for entry in entries:
        assert any((ROOT / entry).with_suffix(s).exists() for s in (".ipynb", ".md")), (
            entry
        )


@pytest.mark.solutions
def test_each_unit_has_lecture_lab_and_solution_under_one_stem():
    stems = {
        folder: {p.stem for p in (ROOT / folder).glob("*.ipynb")}
        for folder in ("lectures", "solutions", "notebooks")
    }
    assert stems["lectures"] == stems["solutions"] == stems["notebooks"]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", stem) for stem in stems["lectures"])


@pytest.mark.solutions
def test_student_notebooks_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "-m", "course_tools.release", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def solution_lines(source: str) -> set[str]:
    """The non-blank lines inside solution regions, minus lines that also appear outside."""
    inside, outside, in_region = set(), set(), False
    for line in source.split("\n"):
        marker = line.strip()
        if marker in (CODE_BEGIN, MARKDOWN_BEGIN):
            in_region = True
        elif marker in (CODE_END, "<!-- END SOLUTION -->"):
            in_region = False
        elif marker:
            (inside if in_region else outside).add(marker)
    return inside - outside


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_no_solution_leaks_into_the_student_notebook(path):
    solution, student = read(path), read(ROOT / "notebooks" / path.name)
    assert [c.id for c in solution.cells] == [c.id for c in student.cells]
    for solved, given in zip(solution.cells, student.cells, strict=True):
        assert (
            "BEGIN SOLUTION" not in given.source and "END SOLUTION" not in given.source
        )
        leaked = solution_lines(solved.source) & {
            line.strip() for line in given.source.split("\n")
        }
        assert not leaked, f"solution lines in notebooks/{path.name}: {leaked}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_exercises_are_numbered_by_unit_and_each_has_a_check_or_an_answer(path):
    unit = path.stem[:2]
    exercise, answered, numbers = None, set(), []
    for cell in read(path).cells:
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            numbers += headings
            exercise = headings[-1] if headings else exercise
            if MARKDOWN_BEGIN in cell.source:
                answered.add(exercise)
            continue
        for name in re.findall(r"^(check_\w+)\(", cell.source, flags=re.MULTILINE):
            checker = getattr(attention_kit.checks, name)
            assert checker.exercise == exercise, (
                f"{name} checks {checker.exercise}, under {exercise}"
            )
            answered.add(exercise)
    assert numbers, f"{path.name} has no exercises"
    assert all(n.startswith(f"{unit}.") for n in numbers), numbers
    assert numbers == [f"{unit}.{k}" for k in range(1, len(numbers) + 1)], numbers
    assert set(numbers) == answered, (
        f"exercises without a check or answer: {set(numbers) - answered}"
    )


@pytest.mark.parametrize("path", LECTURES, ids=[p.name for p in LECTURES])
def test_lectures_have_slides_objectives_and_references(path):
    notebook = read(path)
    missing = [i for i, c in enumerate(notebook.cells) if "slideshow" not in c.metadata]
    assert not missing, f"cells without slideshow.slide_type: {missing}"
    text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert text.startswith(f"# Lecture {path.stem[:2]}:")
    for heading in ("objectives", "References"):
        assert re.search(
            rf"^#+ .*{heading}", text, flags=re.MULTILINE | re.IGNORECASE
        ), heading
