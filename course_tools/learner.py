"""The self-learner's workflow: a private copy of the labs, and a progress report.

``make lab`` runs ``python -m course_tools.learner setup``, then opens JupyterLab in
``my_labs/``. The setup step

- copies every student lab from ``notebooks/`` into ``my_labs/`` (git-ignored) when it
  is not there yet, and never overwrites a file that is;
- records which course version of each lab it copied, as SHA-256 hashes in
  ``my_labs/.course_versions.json``, so that it can say when the course changes a lab
  the learner already has (and how to get the new version beside theirs);
- writes JupyterLab settings into this project's environment (``.venv``) so that the
  first start asks nothing unrelated to the course (no news prompt).

``make progress`` runs ``python -m course_tools.learner progress``: it executes the
learner's copies headless, one kernel per lab with a time limit per lab, and prints one
table of every exercise's status, read from what the labs' own checkers print:

- ``✅`` done: the checker printed ``✅ name: k/k checks passed``;
- ``⏳`` not attempted: it printed ``⏳ Exercise NN.k not attempted yet ...`` (or that
  the exercise waits for another one);
- ``❌`` wrong: it raised ``ExerciseFailed``; the table shows the first line of its hint;
- ``💥`` the lab stopped with an error before the checker could say anything: the table
  names the cell (counted from 0, as in the notebook file) and the error. When the
  check cell fails only because an earlier cell failed (a NameError, say), the earlier
  cell is the one named.

Written exercises (a markdown answer, no checker) are listed as ``✍️``, answered or not.
The report never writes to the learner's files: the executed notebooks stay in memory,
and the kernel runs in a scratch folder (with ``my_labs/`` on its import path).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from attention_kit.train import course_threads
from course_tools.release import MARKDOWN_PLACEHOLDER

ROOT = Path(__file__).resolve().parents[1]
COURSE_LABS = ROOT / "notebooks"
MY_LABS = ROOT / "my_labs"
MANIFEST = ".course_versions.json"
DEFAULT_TIME_LIMIT = 300.0  # seconds per lab, to stop an endless loop; labs take < 60 s

EXERCISE = re.compile(r"^#{1,6}\s+Exercise\s+(\d+\.\d+)\s*:?\s*(.*?)\s*$", re.MULTILINE)
CHECK_CALL = re.compile(r"^\s*(check_\w+)\s*\(", re.MULTILINE)
NEW_VERSION = re.compile(r"\.new\d*$")  # stem of "<lab>.new.ipynb", "<lab>.new2.ipynb"

# What JupyterLab shows first unless told otherwise: a toast asking whether to fetch
# Jupyter news from the internet (setting "fetchNews", default "none" = ask), and,
# once news is on, update checks. Overrides change the defaults; a learner's own
# choice in Settings still wins.
CALM_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    }
}


# ----------------------------------------------------------------------------------
# 1. The private working copy
# ----------------------------------------------------------------------------------


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(work: Path) -> dict:
    """The record of copied course versions; empty if missing or unreadable."""
    try:
        data = json.loads((work / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"labs": {}}
    if not isinstance(data.get("labs"), dict):
        data["labs"] = {}
    return data


def write_manifest(work: Path, data: dict) -> None:
    data["about"] = (
        "Written by `make lab`: the SHA-256 of the course version of each lab it copied "
        "here ('copied'), and of a newer version it put beside your copy ('offered'). "
        "It lets `make lab` tell you when the course updates a lab you already have."
    )
    data["labs"] = dict(sorted(data["labs"].items()))
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    (work / MANIFEST).write_text(text, encoding="utf-8")


def free_name(work: Path, stem: str) -> Path:
    """``<stem>.new.ipynb``, or ``.new2``, ``.new3``... if that name is taken."""
    for number in range(1, 1000):
        path = work / f"{stem}.new{number if number > 1 else ''}.ipynb"
        if not path.exists():
            return path
    raise FileExistsError(f"too many new versions of {stem} in {work}")


@dataclass
class CopyReport:
    """What ``copy_labs`` did, and what the learner should know."""

    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    changed_upstream: list[str] = field(default_factory=list)
    new_versions: list[Path] = field(default_factory=list)

    def lines(self, work: Path, how_to_fetch: str) -> list[str]:
        shown = _shown(work)
        out = []
        if self.copied:
            out.append(f"Copied {len(self.copied)} lab(s) into {shown}/:")
            out += [f"  {name}" for name in self.copied]
        if self.kept:
            out.append(
                f"Kept your {len(self.kept)} lab(s) in {shown}/ as they are "
                "(make lab never overwrites them)."
            )
        for path in self.new_versions:
            out.append(
                f"Put the course's current version beside yours: {_shown(path)} "
                "(yours is unchanged: move your answers into it, or its new parts "
                "into yours)."
            )
        if self.changed_upstream:
            out.append("")
            out.append(
                "The course has changed these labs since you copied them; your copies "
                "are untouched:"
            )
            out += [f"  {name}" for name in self.changed_upstream]
            stems = " ".join(Path(name).stem for name in self.changed_upstream)
            out.append(
                f"To get the new version beside yours (as <lab>.new.ipynb): "
                f"{how_to_fetch.format(stems=stems)}"
            )
            out.append("What changed in each lab: CHANGELOG.md, at the course's root.")
        return out


def copy_labs(
    course: Path = COURSE_LABS, work: Path = MY_LABS, fetch: tuple[str, ...] = ()
) -> CopyReport:
    """Copy the course's labs into ``work`` without overwriting anything there.

    A lab missing from ``work`` is copied (so deleting your copy and running this
    again gives a fresh one). A lab already there is kept byte for byte; if the
    course's version differs from the one copied then, it is listed in
    ``changed_upstream``, unless that new version was already put beside it.
    ``fetch`` names labs (stems) whose current course version should be written
    beside the learner's copy as ``<stem>.new.ipynb``.
    """
    work.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(work)
    labs = manifest["labs"]
    report = CopyReport()
    today = datetime.date.today().isoformat()
    known = {path.stem for path in course.glob("*.ipynb")}
    unknown = sorted(set(fetch) - known)
    if unknown:
        raise SystemExit(f"not a lab of the course: {', '.join(unknown)}")
    for source in sorted(course.glob("*.ipynb")):
        name, digest = source.name, file_hash(source)
        target = work / name
        entry = labs.setdefault(name, {})
        if not target.exists():
            shutil.copyfile(source, target)
            labs[name] = {"copied": digest, "date": today}
            report.copied.append(name)
            continue
        report.kept.append(name)
        if "copied" not in entry:
            # A copy made before this record existed: its version is unknown, so the
            # course's current one is taken as the baseline from now on.
            entry.update(copied=digest, date=today)
        if source.stem in fetch:
            if digest == entry["copied"] and file_hash(target) == digest:
                continue  # the learner's copy is this very version, untouched
            beside = free_name(work, source.stem)
            shutil.copyfile(source, beside)
            entry["offered"] = digest
            report.new_versions.append(beside)
        elif digest not in (entry["copied"], entry.get("offered")):
            report.changed_upstream.append(name)
    write_manifest(work, manifest)
    return report


def calm_jupyterlab(settings_dir: Path | None = None) -> Path:
    """Merge ``CALM_OVERRIDES`` into JupyterLab's ``overrides.json``; return its path.

    JupyterLab 4 reads ``<app dir>/settings/overrides.json`` (the app dir is
    ``<sys.prefix>/share/jupyter/lab`` in a virtual environment, so this is inside
    ``.venv``, not the learner's home). Keys already set there are kept.
    """
    if settings_dir is None:
        from jupyterlab.commands import get_app_dir

        settings_dir = Path(get_app_dir()) / "settings"
    path = settings_dir / "overrides.json"
    try:
        overrides = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        overrides = {}
    changed = False
    for plugin, values in CALM_OVERRIDES.items():
        current = overrides.setdefault(plugin, {})
        for key, value in values.items():
            if key not in current:
                current[key] = value
                changed = True
    if changed or not path.exists():
        settings_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(overrides, indent=2) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------
# 2. The progress report
# ----------------------------------------------------------------------------------

DONE, WAITING, WRONG, CRASHED, WRITTEN, UNKNOWN = "✅", "⏳", "❌", "💥", "✍️", "❔"


@dataclass
class Exercise:
    """One ``### Exercise NN.k: title`` of a lab and the cells that belong to it."""

    number: str
    title: str
    heading_cell: int
    check_cells: list[int] = field(default_factory=list)
    answer_cells: list[int] = field(default_factory=list)  # markdown, for written ones
    status: str = UNKNOWN
    detail: str = ""
    has_checker: bool = False  # in the course's version, even if not in this copy

    @property
    def written(self) -> bool:
        return not self.check_cells and not self.has_checker


def find_exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """Exercises in order, each with the cells up to the next exercise heading."""
    exercises: list[Exercise] = []
    for index, cell in enumerate(notebook.cells):
        for number, title in EXERCISE.findall(cell.source):
            exercises.append(Exercise(number, title.replace("`", ""), index))
        if not exercises:
            continue
        current = exercises[-1]
        if cell.cell_type == "code" and CHECK_CALL.search(cell.source):
            current.check_cells.append(index)
        elif cell.cell_type == "markdown":
            current.answer_cells.append(index)
    return exercises


def _check_call(source: str) -> str:
    """The line of a cell that calls a checker, as in ``check_softmax(softmax)``."""
    return next(line.strip() for line in source.splitlines() if CHECK_CALL.match(line))


def _first_line(text: str, width: int = 110) -> str:
    line = next((s.strip() for s in str(text).splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _error(cell: nbformat.NotebookNode) -> dict | None:
    return next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream"
    )


def cell_name(notebook: nbformat.NotebookNode, index: int) -> str:
    """A cell as the table names it: its index (from 0) and its first line, which is
    what a learner can find in JupyterLab."""
    first = _first_line(notebook.cells[index].source, 40)
    return f'cell {index}, "{first}"' if first else f"cell {index}"


def _describe_error(error: dict) -> str:
    # A SyntaxError's text names IPython's temporary file: "(2485232417.py, line 3)".
    evalue = re.sub(r"\(\d+\.py, (line \d+)\)", r"(\1)", str(error["evalue"]))
    return f"{error['ename']}: {_first_line(evalue, 80)}".rstrip(": ")


@dataclass
class LabRun:
    """The outcome of executing one lab."""

    notebook: nbformat.NotebookNode
    seconds: float = 0.0
    stopped_at: int | None = None  # the cell where execution stopped, if it did
    stop_reason: str = ""  # why: time limit, dead kernel, ...
    executed: set[int] = field(default_factory=set)


def grade(run: LabRun, course: nbformat.NotebookNode | None = None) -> list[Exercise]:
    """Each exercise's status, from the outputs of an executed lab.

    ``course`` is the course's version of the lab, when there is one: an exercise
    whose check call or heading the learner deleted is then reported as such, not as a
    written exercise or not at all.
    """
    notebook = run.notebook
    exercises = find_exercises(notebook)
    checks_in_course = {
        e.number: _check_call(course.cells[e.check_cells[0]].source)
        for e in (find_exercises(course) if course is not None else [])
        if not e.written
    }
    found = {e.number for e in exercises}
    for number in checks_in_course.keys() - found:
        lost = Exercise(number, "(not found in your copy)", -1, has_checker=True)
        lost.detail = f"its heading '### Exercise {number}: ...' is gone"
        exercises.append(lost)
    exercises.sort(key=lambda e: [int(part) for part in e.number.split(".")])
    failed_cells = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and (error := _error(cell)) is not None
        and error["ename"] != "ExerciseFailed"
    ]
    for exercise in exercises:
        if exercise.heading_cell < 0:
            continue
        if not exercise.check_cells and exercise.number in checks_in_course:
            exercise.has_checker = True
            exercise.detail = (
                f"no check in your copy: add `{checks_in_course[exercise.number]}` "
                "after your answer"
            )
            continue
        if exercise.written:
            answered = all(
                MARKDOWN_PLACEHOLDER not in notebook.cells[i].source
                for i in exercise.answer_cells
            )
            exercise.status = WRITTEN
            exercise.detail = (
                "answered (no checker: compare with the Solutions part of the book)"
                if answered
                else "not answered yet"
            )
            continue
        statuses = [
            grade_check_cell(run, i, failed_cells) for i in exercise.check_cells
        ]
        order = [CRASHED, WRONG, UNKNOWN, WAITING, DONE]
        exercise.status, exercise.detail = min(
            statuses, key=lambda s: order.index(s[0])
        )
    return exercises


def grade_check_cell(
    run: LabRun, index: int, failed_cells: list[int]
) -> tuple[str, str]:
    """The status of one check cell, and the words that go with it."""
    cell = run.notebook.cells[index]
    if index not in run.executed:
        where = run.stopped_at if run.stopped_at is not None else index
        return (
            CRASHED,
            f"{cell_name(run.notebook, where)}: {run.stop_reason or 'not run'}",
        )
    error = _error(cell)
    if error is not None:
        # A name that an earlier, failed cell should have defined: that cell is the
        # cause, whether the name is missing in the check cell itself (NameError) or
        # inside the learner's function (the checker's "your code raised NameError").
        text = f"{error['ename']}: {error['evalue']}"
        missing = re.search(r"NameError\b.*?name '(\w+)' is not defined", text)
        cause = missing and next(
            (
                i
                for i in failed_cells
                if i < index
                and re.search(rf"\b{missing.group(1)}\b", run.notebook.cells[i].source)
            ),
            None,
        )
        if cause is not None:
            why = _describe_error(_error(run.notebook.cells[cause]))
            return (
                CRASHED,
                f"{cell_name(run.notebook, cause)}: {why} (so cell {index} failed too)",
            )
    if error is not None and error["ename"] == "ExerciseFailed":
        hint = re.sub(r"^Exercise \S+ \([^)]*\):\s*", "", error["evalue"])
        return WRONG, _first_line(hint)
    if error is not None:
        return CRASHED, f"{cell_name(run.notebook, index)}: {_describe_error(error)}"
    printed = _stdout(cell)
    lines = [line.strip() for line in printed.splitlines()]
    done = [line for line in lines if line.startswith(DONE)]
    waiting = [line for line in lines if line.startswith(WAITING)]
    if waiting:
        # "⏳ Exercise NN.k not attempted yet: ..." or "... waits for Exercise MM.j: ..."
        waits = re.search(r"waits for Exercise \S+", waiting[0])
        return WAITING, waits.group(0).rstrip(":") if waits else ""
    if done:
        return DONE, ""
    return UNKNOWN, f"cell {index} ran, but its check printed nothing"


def _kernel_manager():
    """A kernel manager that starts this Python's own ipykernel (like nbval's
    --nbval-current-env), whatever kernelspecs the learner has installed elsewhere."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    specs = KernelSpecManager(kernel_dirs=[], ensure_native_kernel=True)
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs)


async def run_lab(
    path: Path, time_limit: float, env: dict[str, str], import_dir: Path
) -> LabRun:
    """Execute a copy of the notebook at ``path`` in memory, continuing after errors,
    within ``time_limit`` seconds for the whole lab."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    notebook = nbformat.read(path, as_version=4)
    run = LabRun(notebook)
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(import_dir), env.get("PYTHONPATH", "")) if p
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="progress-") as scratch:
        client = NotebookClient(
            notebook,
            km=_kernel_manager(),
            allow_errors=True,
            shutdown_kernel="immediate",
            timeout=int(time_limit),
            startup_timeout=120,
            record_timing=False,
        )
        try:
            async with client.async_setup_kernel(
                cwd=scratch,
                env=env,
                cleanup_kc=True,
                stdout=subprocess.DEVNULL,  # outputs arrive as messages; this is noise
                stderr=subprocess.DEVNULL,
            ):
                for index, cell in enumerate(notebook.cells):
                    if cell.cell_type != "code":
                        continue
                    left = time_limit - (time.perf_counter() - start)
                    if left <= 0:
                        raise CellTimeoutError(f"time limit before cell {index}")
                    client.timeout = max(1, int(left))
                    run.stopped_at = index
                    await client.async_execute_cell(cell, index)
                    run.executed.add(index)
                run.stopped_at = None
        except CellTimeoutError:
            run.stop_reason = (
                f"the lab did not finish within its time limit of {time_limit:.0f} s "
                "(an endless loop? raise the limit with TIME_LIMIT=...)"
            )
        except DeadKernelError:
            run.stop_reason = (
                "the kernel died (out of memory, or the code exited Python)"
            )
        except Exception as error:  # a kernel that would not start, for one
            run.stop_reason = f"could not run the lab: {type(error).__name__}: {error}"
            if run.stopped_at is None:
                run.stopped_at = 0
    run.seconds = time.perf_counter() - start
    return run


@dataclass
class LabReport:
    """One row group of the table: a lab found, missing, or not counted."""

    name: str
    exercises: list[Exercise] = field(default_factory=list)
    note: str = ""
    seconds: float | None = None
    missing: bool = False


def course_lab_names(course: Path, work: Path) -> list[str]:
    """The labs the report covers: the course's, plus any lab the manifest recorded."""
    names = {p.name for p in course.glob("*.ipynb")}
    names |= set(read_manifest(work)["labs"])
    return sorted(names)


async def _progress(
    work: Path, course: Path, time_limit: float, jobs: int
) -> list[LabReport]:
    names = course_lab_names(course, work)
    reports = {name: LabReport(name) for name in names}
    for name in names:
        if not (work / name).exists():
            reports[name].missing = True
            reports[name].note = (
                f"{UNKNOWN} not in {_shown(work)}/ (renamed or deleted?): "
                "`make lab` copies it again"
            )
    others = sorted(p.name for p in work.glob("*.ipynb") if p.name not in reports)
    for name in others:
        stem = Path(name).stem
        if NEW_VERSION.search(stem):
            why = f"the course's newer version of {NEW_VERSION.sub('', stem)}.ipynb"
        else:
            why = "not a lab of the course"
            numbers = {
                e.number.split(".")[0]
                for e in find_exercises(nbformat.read(work / name, as_version=4))
            }
            if numbers:
                why += f" (it has Exercise {', '.join(sorted(numbers))}.x)"
        reports[name] = LabReport(name, note=f"not counted: {why}")

    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    # One thread per lab for any JOBS, as the labs' setup cells choose (set_threads):
    # also for copies made before that call was in them, and for code before it.
    env["OMP_NUM_THREADS"] = str(course_threads())
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(name: str) -> None:
        async with slots:
            try:
                run = await run_lab(work / name, time_limit, env, work)
            except Exception as error:  # an unreadable notebook file, for one
                reports[name].note = f"{CRASHED} could not read it: {error}"
                return
            try:
                course_version = nbformat.read(course / name, as_version=4)
            except (OSError, ValueError):
                course_version = None
            reports[name].exercises = grade(run, course_version)
            reports[name].seconds = run.seconds
            stray = [
                i
                for i, cell in enumerate(run.notebook.cells)
                if cell.cell_type == "code"
                and (e := _error(cell)) is not None
                and e["ename"] != "ExerciseFailed"
            ]
            blamed = " ".join(e.detail for e in reports[name].exercises)
            unblamed = [i for i in stray if f"cell {i}," not in blamed]
            if unblamed:
                first = unblamed[0]
                cause = _describe_error(_error(run.notebook.cells[first]))
                reports[name].note = f"{cell_name(run.notebook, first)} failed: {cause}"
            if run.stop_reason and not reports[name].exercises:
                reports[
                    name
                ].note = f"{CRASHED} cell {run.stopped_at}: {run.stop_reason}"

    await asyncio.gather(
        *(one(n) for n in names if (work / n).exists() and reports[n].note == "")
    )
    return [reports[name] for name in sorted(reports)]


def progress(
    work: Path = MY_LABS,
    course: Path = COURSE_LABS,
    time_limit: float = DEFAULT_TIME_LIMIT,
    jobs: int = 2,
) -> list[LabReport]:
    """Execute every lab in ``work`` (never writing to it) and grade its exercises."""
    return asyncio.run(_progress(work, course, time_limit, jobs))


def totals(reports: list[LabReport]) -> dict[str, int]:
    """How many code exercises have each status, and written ones answered or not."""
    counts = dict.fromkeys([DONE, WAITING, WRONG, CRASHED, UNKNOWN], 0)
    counts.update(written=0, answered=0, missing_labs=0)
    for report in reports:
        counts["missing_labs"] += report.missing
        for exercise in report.exercises:
            if exercise.written:
                counts["written"] += 1
                counts["answered"] += exercise.detail.startswith("answered")
            else:
                counts[exercise.status] += 1
    return counts


STATUS_WORDS = {
    DONE: "done",
    WAITING: "not attempted",
    WRONG: "wrong:",
    CRASHED: "error in",
    UNKNOWN: "unknown:",
    WRITTEN: "written answer,",
}  # beside every mark: a screen reader or a terminal without an emoji font needs the words


def format_table(reports: list[LabReport], work: Path = MY_LABS) -> str:
    """The progress table as text, with the totals underneath."""
    rows = []
    for report in reports:
        lab = Path(report.name).stem
        seconds = "" if report.seconds is None else f" ({report.seconds:.0f} s)"
        lab_cell = lab + seconds
        if not report.exercises:
            rows.append((lab_cell, "", report.note))
            continue
        for exercise in report.exercises:
            words = STATUS_WORDS[exercise.status]
            if exercise.detail.startswith("waits"):
                words = ""
            status = " ".join(s for s in (exercise.status, words, exercise.detail) if s)
            rows.append((lab_cell, f"{exercise.number}  {exercise.title}", status))
            lab_cell = ""
        if report.note:
            rows.append(("", "", f"note: {report.note}"))
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(HEADER)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=False)).rstrip()
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        )
    counts = totals(reports)
    code = sum(counts[s] for s in (DONE, WAITING, WRONG, CRASHED, UNKNOWN))
    summary = (
        f"Code exercises: {code}   {DONE} {counts[DONE]} done   "
        f"{WAITING} {counts[WAITING]} not attempted   {WRONG} {counts[WRONG]} wrong   "
        f"{CRASHED} {counts[CRASHED]} stopped"
    )
    if counts[UNKNOWN]:
        summary += f"   {UNKNOWN} {counts[UNKNOWN]} unknown"
    lines += ["", summary]
    lines.append(
        f"Written answers: {counts['answered']} of {counts['written']} filled in "
        "(not checked automatically)."
    )
    if counts["missing_labs"]:
        lines.append(f"Labs missing from {_shown(work)}/: {counts['missing_labs']}.")
    return "\n".join(lines)


HEADER = ("Lab", "Exercise", "Status")


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=COURSE_LABS)
    parser.add_argument("--labs", type=Path, default=MY_LABS, help="your labs' folder")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser(
        "setup", help="copy new labs into your folder; calm JupyterLab settings"
    )
    setup.add_argument(
        "--new",
        default="",
        help="labs (stems, separated by spaces) to get beside your copy as .new.ipynb",
    )
    report = commands.add_parser("progress", help="run your labs and print the table")
    report.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT)
    report.add_argument("--jobs", type=int, default=2, help="labs run at once")
    args = parser.parse_args(argv)

    if args.command == "setup":
        copied = copy_labs(args.course, args.labs, fetch=tuple(args.new.split()))
        how = 'make lab NEW="{stems}"'
        for line in copied.lines(args.labs, how):
            print(line)
        calm_jupyterlab()
        return 0

    if not args.labs.is_dir():
        print(f"There is no {_shown(args.labs)}/ yet: run `make lab` first.")
        return 1
    print(
        f"Running your labs in {_shown(args.labs)}/ headless ({args.jobs} at a time, "
        f"at most {args.time_limit:.0f} s each); your files are not changed...",
        flush=True,
    )
    start = time.perf_counter()
    reports = progress(args.labs, args.course, args.time_limit, args.jobs)
    print()
    print(format_table(reports, args.labs))
    print(f"({time.perf_counter() - start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
