"""The student edition (`make student-edition`), tested from inside a generated edition;
and no lecture gives away an exercise's answer.

The edition is written into a temporary folder, with the course's ``.venv`` linked into
it, and used as a learner would: ``make lab OPEN=no``, ``make progress`` on one lab, its
own test command on the tests that need ``solutions/``. Needs ``solutions/`` to build
the edition, so it is skipped inside an edition.
"""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import ROOT
from course_tools import edition
from course_tools.book import SOLUTIONS_CAPTION, read_toc, toc_files, without_solutions
from course_tools.release import CODE_BEGIN, CODE_END, MARKDOWN_BEGIN, MARKDOWN_END

pytestmark = pytest.mark.solutions

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> Path:
    out = edition.write_edition(tmp_path_factory.mktemp("edition") / "student-edition")
    # The course's environment stands in for the one `make` would create there.
    (out / ".venv").symlink_to(VENV_BIN.parent)
    return out


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without pytest's own variables (an xdist worker's)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return {**kept, **extra}


def run_make(folder: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess:
    """`make` in ``folder``, with the environment taken as installed (-o)."""
    return subprocess.run(
        ["make", "-o", ".venv/.installed", *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        env=clean_environment(**env),
        timeout=600,
    )


def regions(source: str, begin: str, end: str) -> list[list[str]]:
    """The lines inside each ``begin`` ... ``end`` region of a cell."""
    found, current = [], None
    for line in source.split("\n"):
        if line.strip() == begin:
            current = []
        elif line.strip() == end and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return found


def normalised(line: str) -> str:
    """A line of code without its comment and without any whitespace."""
    if line.lstrip().startswith("#"):
        return ""
    return re.sub(r"\s+", "", line.split("  #", 1)[0])


def files_of(folder: Path) -> list[Path]:
    """Every file under ``folder``, not following the linked .venv."""
    found = []
    for where, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if f != ".venv"]
        found += [Path(where) / name for name in files if name != ".venv"]
    return found


def page_lines(path: Path) -> set[str]:
    """The normalised lines of a page: a notebook's cells, or a markdown file."""
    if path.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    else:
        text = path.read_text(encoding="utf-8")
    return {normalised(x) for x in text.split("\n")}


def outside_regions(paths: list[Path]) -> set[str]:
    """Normalised code lines of the solution notebooks outside any solution region:
    lines the course shows anyway (imports, check calls, signatures)."""
    lines = set()
    for path in paths:
        for cell in nbformat.read(path, as_version=4).cells:
            inside = {
                normalised(x)
                for r in regions(cell.source, CODE_BEGIN, CODE_END)
                for x in r
            }
            lines |= {normalised(x) for x in cell.source.split("\n")} - inside
    return lines


def answers() -> list[tuple[str, list[str]]]:
    """Each code answer's distinctive lines (normalised), named by lab and cell."""
    shown = outside_regions(SOLUTIONS)
    found = []
    for path in SOLUTIONS:
        for cell in nbformat.read(path, as_version=4).cells:
            for region in regions(cell.source, CODE_BEGIN, CODE_END):
                lines = [normalised(x) for x in region]
                lines = [x for x in lines if len(x) >= 8 and x not in shown]
                if lines:
                    found.append((f"{path.stem} cell {cell.get('id')}", lines))
    return found


def written_answers() -> list[str]:
    """Every sentence-long line of the written model answers."""
    found = []
    for path in SOLUTIONS:
        for cell in nbformat.read(path, as_version=4).cells:
            for region in regions(cell.source, MARKDOWN_BEGIN, MARKDOWN_END):
                found += [x.strip() for x in region if len(x.strip()) >= 40]
    return found


# ----------------------------------------------------------------------------------
# No lecture contains an exercise's answer
# ----------------------------------------------------------------------------------


def test_there_are_answers_to_compare_with():
    assert len(answers()) >= 30 and len(written_answers()) >= 9


def leaks(notebook: nbformat.NotebookNode) -> list[str]:
    """The answers whose distinctive lines are, half or more of them (at least two, or
    the only one), in the notebook's code: pasted into the lab, they would pass."""
    code = {
        normalised(line)
        for cell in notebook.cells
        if cell.cell_type == "code"
        for line in cell.source.split("\n")
    }
    found_in = []
    for where, lines in answers():
        found = [x for x in lines if x in code]
        if len(found) >= min(2, len(lines)) and len(found) >= len(lines) / 2:
            found_in.append(f"{where}: {len(found)} of {len(lines)} lines, {found[:3]}")
    return found_in


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_no_lecture_contains_an_exercises_answer(lecture):
    found = leaks(nbformat.read(lecture, as_version=4))
    assert not found, f"{lecture.name} holds answers: {found}"


def test_the_comparison_catches_a_pasted_answer():
    lecture = nbformat.read(LECTURES[0], as_version=4)
    solved = nbformat.read(SOLUTIONS[0], as_version=4)
    answer = next(c for c in solved.cells if CODE_BEGIN in c.source)
    region = regions(answer.source, CODE_BEGIN, CODE_END)[0]
    pasted = "def my_own(x):\n" + "\n".join(region)  # re-indented, comments kept
    lecture.cells.append(nbformat.v4.new_code_cell(pasted.replace("    ", "  ")))
    assert leaks(lecture), "a pasted answer was not found"


# ----------------------------------------------------------------------------------
# The edition, from inside
# ----------------------------------------------------------------------------------


def test_the_edition_holds_the_course_without_its_solutions(student):
    names = {p.name for p in student.iterdir()} - {".venv"}
    wanted = {n for n in edition.INCLUDE if (ROOT / n).exists()}
    assert names == wanted | {"_toc.yml", "README.md"}
    assert not (student / "solutions").exists()
    assert not (student / "CONTRIBUTING.md").exists()
    for folder in ("lectures", "notebooks"):
        for path in (ROOT / folder).glob("*.ipynb"):
            assert (student / folder / path.name).read_bytes() == path.read_bytes()
    archive = student.parent / f"student-edition-{edition.__version__}.zip"
    with zipfile.ZipFile(archive) as packed:
        packed_names = set(packed.namelist())
    on_disk = {str(p.relative_to(student.parent)) for p in files_of(student)}
    assert on_disk <= packed_names, sorted(on_disk - packed_names)[:5]
    assert not [n for n in packed_names if "/solutions/" in n]


def test_no_solution_text_is_in_the_edition(student):
    written = written_answers()
    code_answers = answers()
    for path in files_of(student):
        text = path.read_text(encoding="utf-8", errors="replace")
        relative = path.relative_to(student)
        leaked = [sentence for sentence in written if sentence in text]
        assert not leaked, f"{relative} holds a written answer: {leaked[0][:80]}"
        if relative.parts[0] in ("course_tools", "tests"):
            continue  # the release tool and its tests name the markers
        assert "BEGIN SOLUTION" not in text, relative
        if path.suffix in (".ipynb", ".md"):
            lines = page_lines(path)
            for where, answer in code_answers:
                found = [x for x in answer if x in lines]
                assert len(found) < max(1, len(answer) / 2), (relative, where, found)


def test_the_editions_pages_say_nothing_of_solutions(student):
    toc = yaml.safe_load((student / "_toc.yml").read_text(encoding="utf-8"))
    assert toc == without_solutions(read_toc())
    assert SOLUTIONS_CAPTION not in [part["caption"] for part in toc["parts"]]
    assert "syllabus" in toc_files(toc)
    for entry in toc_files(toc):
        page = next(
            (
                student / f"{entry}{s}"
                for s in (".md", ".ipynb")
                if (student / f"{entry}{s}").exists()
            ),
            None,
        )
        assert page is not None, f"toc entry {entry} is not in the edition"
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bSolutions\b|solutions/", text), (
            f"{entry} mentions the solutions"
        )


def test_make_lab_and_progress_work_in_the_edition(student):
    result = run_make(student, "lab", "OPEN=no")
    assert result.returncode == 0, result.stdout + result.stderr
    labs = sorted(p.name for p in (student / "my_labs").glob("*.ipynb"))
    assert labs == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    where = subprocess.run(
        [
            str(student / ".venv" / "bin" / "python"),
            "-c",
            "import attention_kit, course_tools; "
            "print(attention_kit.__file__); print(course_tools.__file__)",
        ],
        cwd=student,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(p).is_relative_to(student) for p in where), where

    one = student / "one_lab"
    one.mkdir()
    lab = "01_queries_keys_values.ipynb"
    (one / lab).write_bytes((student / "my_labs" / lab).read_bytes())
    result = run_make(student, "progress", "MY_LABS=one_lab", PYTHONPATH=str(student))
    assert result.returncode == 0, result.stdout + result.stderr
    row = [x for x in result.stdout.splitlines() if "01.1" in x]
    assert row and "⏳" in row[0], result.stdout
    assert "Code exercises: 3" in result.stdout, result.stdout


def test_the_editions_tests_skip_what_needs_solutions(student):
    dry = run_make(student, "-n", "test")
    assert dry.returncode == 0 and "solutions" not in dry.stdout, dry.stdout
    result = subprocess.run(
        [
            str(student / ".venv" / "bin" / "python"),
            "-m",
            "pytest",
            "tests/test_notebooks.py",
            "tests/test_nbgrader.py",
            "tests/test_edition.py",
            "-m",
            "not book",
            "-p",
            "no:xdist",
            "-q",
            "-rs",
            "-k",
            "not notebook_is_valid",
        ],
        cwd=student,
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_environment(PYTHONPATH=str(student)),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    skipped = re.findall(r"SKIPPED \[(\d+)\] (\S+?):.*needs solutions/", result.stdout)
    files = {path.split(":")[0] for _, path in skipped}
    assert {
        "tests/test_notebooks.py",
        "tests/test_nbgrader.py",
        "tests/test_edition.py",
    } <= files, result.stdout[-3000:]
    assert " failed" not in result.stdout
