"""Lay out an nbgrader course directory from ``solutions/`` (``make nbgrader``).

nbgrader (https://nbgrader.readthedocs.io, 0.9) reads its instructor versions from
``source/<assignment>/*.ipynb``; each graded cell carries ``metadata.nbgrader``. This
module writes that metadata, so no one sets it by hand and every new lab gets it:

- a code cell with a ``### BEGIN SOLUTION`` region is an **autograded answer**
  (``solution``); its checker calls (lines ``check_<name>(<name>)``) become a new cell
  right after it, a locked **autograder test** (``grade``) that runs
  ``course_tools.graded.grade("NN.k", <name>)``: the checker is taken from the course
  package, not from the notebook, and the course's own answer is refused while it runs
  (see :mod:`course_tools.graded`);
- a markdown cell with a ``<!-- BEGIN SOLUTION -->`` region is a **manually graded
  answer**; nbgrader replaces the region by "_Your answer here._".

Points come from ``points.toml`` in the course directory, which the first run writes with
the default policy (:data:`DEFAULT_POINTS`) and no run overwrites.

Each lab is one assignment named by its stem (``01_queries_keys_values``). The course's
``nbgrader_config.py`` switches the checkers to grading mode
(``ATTENTION_KIT_GRADING=1``): an exercise that was not attempted then *fails* instead
of printing "not attempted yet", so an empty submission scores zero. In the book, the
labs and CI the variable is unset and nothing changes.

This module writes ``nbgrader_config.py``, ``source/`` and (once) ``points.toml``, and
nothing else: the gradebook, ``release/``, ``submitted/``, ``autograded/`` and
``feedback/`` are nbgrader's, and a second run leaves them as they are. The README's
"Grading with nbgrader" walks through a semester.

Usage::

    python -m course_tools.grading nbgrader_course     # make nbgrader
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
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

GRADING_VARIABLE = "ATTENTION_KIT_GRADING"
CHECK_CALL = re.compile(r"^(check_(\w+))\((\w+)\)\s*$")
GRADE_CALL = re.compile(r'^grade\("(\d+\.\d+)", (\w+)\)$')
GRADE_IMPORT = "from course_tools.graded import grade"
COURSE_ID = "attention-step-by-step"
# Seconds per cell: Lab 08's longest training cell took 15 s alone on 2 cores
# (see the README); a class autograded two at a time on a busy machine takes several
# times that, and a cell that never ends must still stop.
CELL_TIMEOUT = 600

DEFAULT_POINTS = """\
# Points per exercise for this nbgrader course directory. `make nbgrader` wrote this
# file once and never overwrites it; it reads it each time it writes source/.
# Change points before `nbgrader generate_assignment` releases a lab: nbgrader records
# the points of a released lab in gradebook.db.

code = 2      # each exercise's automatic check (a locked test cell)
written = 1   # each written answer (graded by a person)

[exercise]    # one exercise's automatic check, by exercise number
# "08.2" = 4

[written_answer]  # each written answer of one exercise, by exercise number
# "08.6" = 2
"""

CONFIG = f'''"""nbgrader settings for the course Attention, Step by Step.

Written by `make nbgrader` (python -m course_tools.grading); it is rewritten each time,
so put your own settings (exchange folder, file names for zip_collect, timeout) in
instructor_config.py beside this file, which is loaded last and never written.
Run nbgrader from this folder: see the README's "Grading with nbgrader".
"""

import os
import warnings
from pathlib import Path

# Grading mode: a checker whose exercise was not attempted fails (instead of printing
# "not attempted yet"), so an empty submission scores zero. Kernels that nbgrader starts
# inherit these variables: no progress bars in feedback, one thread per kernel.
os.environ["{GRADING_VARIABLE}"] = "1"
os.environ["TQDM_DISABLE"] = "1"
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"
# nbgrader 0.9's database code uses SQLAlchemy 1.x names that SQLAlchemy 2 warns about.
warnings.filterwarnings("ignore", message=".*declarative_base.*")
warnings.filterwarnings("ignore", module="sqlalchemy")
warnings.filterwarnings("ignore", module="nbgrader")

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ComputeChecksums,
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    SaveCells,
)

from course_tools.nbgrader_plugins import (  # noqa: E402
    TEMPLATES,
    CourseExport,
    CourseFeedback,
    CourseStubs,
)

HERE = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (nbgrader provides get_config)
c.CourseDirectory.course_id = "{COURSE_ID}"
c.CourseDirectory.root = str(HERE)
c.Exchange.root = str(HERE / "exchange")  # a shared folder on a JupyterHub: see README
c.ClearSolutions.text_stub = "{MARKDOWN_PLACEHOLDER}"
# nbgrader's own list, with the course's stubs in place of ClearSolutions.
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    CourseStubs,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    SaveCells,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
]
c.Execute.timeout = {CELL_TIMEOUT}  # seconds per cell
# The kernels' own log (a warning per notebook about TCP transport) is not for teachers.
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
c.GenerateFeedback.preprocessors = [CourseFeedback, CSSHTMLHeaderPreprocessor]
c.ExportApp.plugin_class = CourseExport  # grades.csv says which points await a person
c.HTMLExporter.template_name = "course_feedback"  # nbgrader's, with MathJax offline
c.HTMLExporter.template_file = "course_index.html.j2"
c.HTMLExporter.extra_template_basedirs = [
    str(TEMPLATES),
    str(Path(__import__("nbgrader").__file__).parent / "server_extensions" / "formgrader"
        / "templates"),
]
# zip_collect: files named <student id>_<lab>.ipynb, e.g. ada_04_self_attention.ipynb
c.FileNameCollectorPlugin.named_regexp = (
    r".*?(?P<student_id>[^/_]+)_(?P<file_id>\\d\\d_\\w+\\.ipynb)$"
)

if (HERE / "instructor_config.py").exists():
    load_subconfig(str(HERE / "instructor_config.py"))  # noqa: F821
'''


@dataclass
class Points:
    """The points policy of a course directory (``points.toml``)."""

    code: float = 2
    written: float = 1
    exercise: dict[str, float] = field(default_factory=dict)
    written_answer: dict[str, float] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Points:
        text = path.read_text(encoding="utf-8") if path.exists() else DEFAULT_POINTS
        data = tomllib.loads(text)
        return cls(
            code=data.get("code", cls.code),
            written=data.get("written", cls.written),
            exercise=dict(data.get("exercise", {})),
            written_answer=dict(data.get("written_answer", {})),
        )

    def for_code(self, exercise: str) -> float:
        return self.exercise.get(exercise, self.code)

    def for_written(self, exercise: str) -> float:
        return self.written_answer.get(exercise, self.written)


def exercise_of_checker(check_name: str) -> str:
    """``04.1`` for ``check_simple_self_attention``, from the course package."""
    import attention_kit.checks as checks

    return getattr(checks, check_name).exercise


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


def grade_cell_source(check_lines: list[str]) -> str:
    """The locked test cell for an answer cell's checker calls."""
    calls = []
    for line in check_lines:
        check_name, _, answer = CHECK_CALL.match(line).groups()
        calls.append(f'grade("{exercise_of_checker(check_name)}", {answer})')
    return "\n".join(
        [
            "# Locked: runs the course's checker on your answer (see course_tools.graded).",
            GRADE_IMPORT,
            "",
            *calls,
        ]
    )


def nbgrader_source(
    solution: nbformat.NotebookNode, name: str, points: Points | None = None
) -> nbformat.NotebookNode:
    """The nbgrader instructor version of one solution notebook."""
    points = points or Points()
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
                    points=points.for_written(exercise),
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
            test = nbformat.v4.new_code_cell(grade_cell_source(checks))
            test.id = f"{cell.id}-check"[:64] if cell.get("id") else test.id
            test.metadata["nbgrader"] = _metadata(
                grading_id(exercise, "_".join(names)),
                solution=False,
                grade=True,
                points=sum(
                    points.for_code(exercise_of_checker(CHECK_CALL.match(c).group(1)))
                    for c in checks
                ),
            )
            cells.append(test)
    notebook.cells = cells
    return notebook


def course_files(
    course: Path, source_dir: Path = ROOT / "solutions"
) -> dict[Path, str]:
    """The text of every file ``make nbgrader`` writes, keyed by its path:
    nbgrader_config.py and source/ (points.toml is written only when missing)."""
    points = Points.read(course / "points.toml")
    files = {course / "nbgrader_config.py": CONFIG}
    for path in sorted(source_dir.glob("*.ipynb")):
        notebook = nbgrader_source(nbformat.read(path, as_version=4), path.name, points)
        files[course / "source" / path.stem / path.name] = render(notebook)
    return files


def write_course(course: Path, source_dir: Path = ROOT / "solutions") -> list[Path]:
    """Write the course directory's config, points policy (once) and source/; return
    the files written. Nothing else in the directory is touched."""
    written = []
    policy = course / "points.toml"
    if not policy.exists():
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(DEFAULT_POINTS, encoding="utf-8")
        written.append(policy)
    for path, text in course_files(course, source_dir).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _cell_seconds(cell: nbformat.NotebookNode) -> float:
    """How long nbgrader's kernel took for one cell (its recorded timing)."""
    from datetime import datetime

    timing = cell.metadata.get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (
        datetime.fromisoformat(timing[key].replace("Z", "+00:00"))
        for key in ("iopub.execute_input", "shell.execute_reply")
    )
    return (end - start).total_seconds()


def measure_autograde(lab: str = "08_mini_transformer") -> list[tuple[str, str, str]]:
    """``make bench autograde``: nbgrader autograde of one solved submission of a lab,
    in a temporary course directory, with this course's nbgrader_config.py."""
    import os
    import shutil
    import subprocess
    import tempfile
    import time

    binaries = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{binaries}{os.pathsep}{os.environ['PATH']}")
    env.pop(GRADING_VARIABLE, None)
    with tempfile.TemporaryDirectory() as folder:
        course, only = Path(folder) / "course", Path(folder) / "solutions"
        only.mkdir()
        shutil.copy(ROOT / "solutions" / f"{lab}.ipynb", only)
        write_course(course, only)
        nbgrader = [str(binaries / "nbgrader")]
        run = {"cwd": course, "env": env, "check": True, "capture_output": True}
        subprocess.run([*nbgrader, "generate_assignment", lab], **run)
        submitted = course / "submitted" / "solved" / lab
        submitted.mkdir(parents=True)
        source = nbformat.read(course / "source" / lab / f"{lab}.ipynb", as_version=4)
        release = nbformat.read(course / "release" / lab / f"{lab}.ipynb", as_version=4)
        answers = {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution")
        }
        for cell in release.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
        nbformat.write(release, submitted / f"{lab}.ipynb")
        start = time.perf_counter()
        subprocess.run([*nbgrader, "autograde", lab], **run)
        seconds = time.perf_counter() - start
        graded = course / "autograded" / "solved" / lab / f"{lab}.ipynb"
        longest = max(map(_cell_seconds, nbformat.read(graded, as_version=4).cells))
    load = os.getloadavg()[0]
    return [
        (
            f"autograde, one solved {lab} submission",
            f"{seconds:.0f} s",
            f"longest cell {longest:.0f} s against the {CELL_TIMEOUT} s per-cell "
            f"timeout (load average {load:.1f} at the end)",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Lay out an nbgrader course directory from solutions/ "
        "(its config, points.toml once, and source/; nothing else is touched)."
    )
    parser.add_argument("course", type=Path, help="the course directory to write")
    parser.add_argument("--source", type=Path, default=ROOT / "solutions")
    args = parser.parse_args(argv)
    for build in {(ROOT / "_build").resolve(), (Path.cwd() / "_build").resolve()}:
        if args.course.resolve().is_relative_to(build):
            parser.error(
                f"{args.course} is inside {build}, which `make clean` deletes with the "
                "grades in it: choose a course directory outside _build"
            )
    written = write_course(args.course, args.source)
    print(f"wrote {len(written)} files into {args.course}: nbgrader_config.py, source/")
    for path in written:
        if path.name == "points.toml":
            print(
                f"wrote {path} (the points per exercise; edit it, it is never rewritten)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
