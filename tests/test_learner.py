"""The learner's workflow (course_tools.learner): make lab's private copy of the labs,
JupyterLab's calm first start, and make progress's table.

The copy step and the settings run without starting anything. The progress tests first
use small notebooks written here (a few seconds each: every status, the blame for a
cell that fails because an earlier one did, the time limit, a dead kernel), then the
course's real labs, found in notebooks/ and solutions/ when the test runs: once as
fresh copies with one wrong answer and one syntax error in them, and once with every
exercise solved, which also measures the time against the labs' budget.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import ROOT
from course_tools import learner
from course_tools.learner import CRASHED, DONE, UNKNOWN, WAITING, WRITTEN, WRONG
from course_tools.release import CODE_BEGIN, CODE_END

COURSE = ROOT / "notebooks"
SOLUTIONS = ROOT / "solutions"
LAB_BUDGET = 60.0  # seconds per lab, the course's budget on 2 cores

# ----------------------------------------------------------------------------------
# make lab: the copy step
# ----------------------------------------------------------------------------------


@pytest.fixture
def course(tmp_path):
    """A copy of the course's student labs that a test may change."""
    folder = tmp_path / "course"
    shutil.copytree(COURSE, folder)
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_first_run_copies_every_lab_and_records_its_version(course, tmp_path):
    work = tmp_path / "my_labs"
    report = learner.copy_labs(course, work)
    labs = sorted(p.name for p in course.glob("*.ipynb"))
    assert labs and report.copied == labs and report.kept == []
    for name in labs:
        assert (work / name).read_bytes() == (course / name).read_bytes()
    manifest = json.loads((work / learner.MANIFEST).read_text(encoding="utf-8"))
    for name in labs:
        digest = hashlib.sha256((course / name).read_bytes()).hexdigest()
        assert manifest["labs"][name]["copied"] == digest


def test_second_run_keeps_an_edited_copy_byte_for_byte(course, tmp_path):
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    lab = sorted(work.glob("*.ipynb"))[0]
    edited = lab.read_bytes() + b"\n  my own bytes, not even JSON any more\n"
    lab.write_bytes(edited)
    before = snapshot(work)
    report = learner.copy_labs(course, work)
    assert report.copied == [] and report.changed_upstream == []
    assert lab.read_bytes() == edited
    after = snapshot(work)
    assert {k: v for k, v in after.items() if k != learner.MANIFEST} == {
        k: v for k, v in before.items() if k != learner.MANIFEST
    }


def test_a_new_lab_in_the_course_is_added_and_the_rest_kept(course, tmp_path):
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    first = sorted(work.glob("*.ipynb"))[0]
    first.write_text("my answers", encoding="utf-8")
    new_lab = course / "99_new_unit.ipynb"
    shutil.copyfile(sorted(course.glob("*.ipynb"))[0], new_lab)
    report = learner.copy_labs(course, work)
    assert report.copied == ["99_new_unit.ipynb"]
    assert (work / "99_new_unit.ipynb").read_bytes() == new_lab.read_bytes()
    assert first.read_text(encoding="utf-8") == "my answers"


def test_a_deleted_copy_comes_back_fresh(course, tmp_path):
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    lab = sorted(work.glob("*.ipynb"))[-1]
    lab.unlink()
    assert learner.copy_labs(course, work).copied == [lab.name]
    assert lab.read_bytes() == (course / lab.name).read_bytes()


def test_a_lab_changed_upstream_is_reported_and_fetched_beside_the_copy(
    course, tmp_path
):
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    name = sorted(p.name for p in course.glob("*.ipynb"))[0]
    stem = Path(name).stem
    (work / name).write_text("my answers", encoding="utf-8")
    notebook = nbformat.read(course / name, as_version=4)
    notebook.cells.append(new_markdown_cell("A paragraph the course added later."))
    nbformat.write(notebook, course / name)

    report = learner.copy_labs(course, work)
    assert report.changed_upstream == [name] and report.copied == []
    text = "\n".join(report.lines(work, 'make lab NEW="{stems}"'))
    assert name in text and f'make lab NEW="{stem}"' in text
    assert "untouched" in text
    assert (work / name).read_text(encoding="utf-8") == "my answers"
    # Said again on every run until the learner takes the new version...
    assert learner.copy_labs(course, work).changed_upstream == [name]

    report = learner.copy_labs(course, work, fetch=(stem,))
    assert report.new_versions == [work / f"{stem}.new.ipynb"]
    assert (work / f"{stem}.new.ipynb").read_bytes() == (course / name).read_bytes()
    assert (work / name).read_text(encoding="utf-8") == "my answers"
    # ...and then not any more, until the course changes the lab once again.
    assert learner.copy_labs(course, work).changed_upstream == []
    notebook.cells.append(new_markdown_cell("And another one."))
    nbformat.write(notebook, course / name)
    assert learner.copy_labs(course, work).changed_upstream == [name]
    report = learner.copy_labs(course, work, fetch=(stem,))
    assert report.new_versions == [work / f"{stem}.new2.ipynb"]  # never overwritten
    assert (work / f"{stem}.new.ipynb").read_bytes() != (course / name).read_bytes()


def test_setup_command_copies_and_names_an_unknown_lab(course, tmp_path, monkeypatch):
    settings = tmp_path / "lab-settings"
    calm = learner.calm_jupyterlab
    monkeypatch.setattr(learner, "calm_jupyterlab", lambda: calm(settings))
    work = tmp_path / "my_labs"
    args = ["--course", str(course), "--labs", str(work), "setup"]
    assert learner.main(args) == 0
    assert sorted(p.name for p in work.glob("*.ipynb")) == sorted(
        p.name for p in course.glob("*.ipynb")
    )
    assert (settings / "overrides.json").exists()
    with pytest.raises(SystemExit, match="not a lab of the course: 00_nothing"):
        learner.main([*args, "--new", "00_nothing"])


# ----------------------------------------------------------------------------------
# make lab: a calm first start
# ----------------------------------------------------------------------------------


def test_jupyterlab_reads_the_calm_settings_from_the_project_environment(tmp_path):
    from jupyterlab.commands import get_app_dir
    from jupyterlab.labapp import LabApp
    from jupyterlab_server.settings_utils import _get_overrides, get_settings

    # Where JupyterLab 4 looks for overrides.json: <app dir>/settings, and the app
    # dir of this environment is inside it (.venv), not in the learner's home.
    assert Path(LabApp().app_settings_dir) == Path(get_app_dir()) / "settings"
    assert Path(get_app_dir()).is_relative_to(Path(sys.prefix))

    settings = tmp_path / "settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(
        json.dumps(
            {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}
        )
    )
    assert learner.calm_jupyterlab(settings) == settings / "overrides.json"
    learner.calm_jupyterlab(settings)  # a second run changes nothing
    overrides, error = _get_overrides(str(settings))
    assert error == ""
    assert overrides["@jupyterlab/apputils-extension:themes"] == {
        "theme": "JupyterLab Dark"
    }
    # JupyterLab's own settings code: the defaults it will serve to the browser.
    notification, _ = get_settings(
        str(settings),
        str(Path(get_app_dir()) / "schemas"),
        str(tmp_path / "user-settings"),
        schema_name="@jupyterlab/apputils-extension:notification",
        overrides=overrides,
    )
    defaults = notification["schema"]["properties"]
    # "none" would make JupyterLab ask "Would you like to get notified about
    # official Jupyter news?" on the first start.
    assert defaults["fetchNews"]["default"] == "false"
    assert defaults["checkForUpdates"]["default"] is False


def test_the_learners_own_choice_in_overrides_is_kept(tmp_path):
    path = tmp_path / "overrides.json"
    path.write_text(
        json.dumps(
            {"@jupyterlab/apputils-extension:notification": {"fetchNews": "true"}}
        )
    )
    learner.calm_jupyterlab(tmp_path)
    notification = json.loads(path.read_text())[
        "@jupyterlab/apputils-extension:notification"
    ]
    assert notification == {"fetchNews": "true", "checkForUpdates": False}


# ----------------------------------------------------------------------------------
# make progress on small notebooks written here
# ----------------------------------------------------------------------------------

KERNEL = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
}


def small_lab(*cells) -> nbformat.NotebookNode:
    notebook = new_notebook(metadata=KERNEL)
    notebook.cells = [
        new_markdown_cell(c[3:]) if c.startswith("md:") else new_code_cell(c)
        for c in cells
    ]
    return notebook


def rows(reports) -> dict[str, tuple[str, str]]:
    return {
        e.number: (e.status, e.detail) for report in reports for e in report.exercises
    }


def test_progress_reads_every_status_and_changes_no_file(tmp_path):
    work = tmp_path / "my_labs"
    work.mkdir()
    lab = small_lab(
        "import torch\nfrom attention_kit.checks import check_softmax",
        "md:Some words.\n\n### Exercise 01.1: right\n\nWrite softmax.",
        "def softmax(s):\n    m = s.max(-1, keepdim=True).values\n"
        "    e = (s - m).exp()\n    return e / e.sum(-1, keepdim=True)\n\n"
        "check_softmax(softmax)",
        "md:### Exercise 01.2: not attempted",
        'def softmax(s):\n    raise NotImplementedError("Exercise 01.1")\n\n'
        "check_softmax(softmax)",
        "md:### Exercise 01.3: wrong",
        "def softmax(s):\n    return s.exp()\n\ncheck_softmax(softmax)",
        "md:### Exercise 01.4: a syntax error",
        "def softmax(s)\n    return s\n\ncheck_softmax(softmax)",
        "helper = 1 / 0  # a cell that fails, outside any check",
        "md:### Exercise 01.5: fails because the cell above did",
        "check_softmax(lambda s: helper * s)",
        "md:### Exercise 01.6: written, answered",
        "md:Because the exponent is shifted.",
        "md:### Exercise 01.7: written, not answered",
        "md:_Your answer here._",
        "md:### Exercise 01.8: a NameError of its own, after an unrelated failure",
        "check_softmax(lambda s: undefined_name * s)",
    )
    nbformat.write(lab, work / "01_small.ipynb")
    nbformat.write(small_lab("x = 1"), work / "01_small.new.ipynb")
    course = tmp_path / "course"
    course.mkdir()
    nbformat.write(small_lab("x = 1"), course / "01_small.ipynb")
    before = snapshot(work)

    reports = learner.progress(work, course, time_limit=120, jobs=1)

    assert snapshot(work) == before and sorted(os.listdir(work)) == sorted(before)
    status = rows(reports)
    assert status["01.1"] == (DONE, "")
    assert status["01.2"] == (WAITING, "")
    from attention_kit.checks import ExerciseFailed, check_softmax

    with pytest.raises(ExerciseFailed) as wrong:
        check_softmax(lambda s: s.exp())
    assert status["01.3"] == (WRONG, wrong.value.hint.splitlines()[0])
    assert status["01.4"][0] == CRASHED
    assert status["01.4"][1] == (
        "cell 8, \"def softmax(s)\": SyntaxError: expected ':' (line 1)"
    )
    assert status["01.5"] == (
        CRASHED,
        'cell 9, "helper = 1 / 0  # a cell that fails, ou…": '
        "ZeroDivisionError: division by zero (so cell 11 failed too)",
    )
    assert status["01.6"] == (WRITTEN, status["01.6"][1])
    assert status["01.6"][1].startswith("answered")
    assert status["01.7"] == (WRITTEN, "not answered yet")
    assert status["01.8"][0] == WRONG and "undefined_name" in status["01.8"][1]
    assert learner.totals(reports) == {
        DONE: 1,
        WAITING: 1,
        WRONG: 2,
        CRASHED: 2,
        UNKNOWN: 0,
        "written": 2,
        "answered": 1,
        "missing_labs": 0,
    }
    table = learner.format_table(reports, work)
    assert "01_small.new" in table and "not counted" in table
    assert (
        "Code exercises: 6   ✅ 1 done   ⏳ 1 not attempted   ❌ 2 wrong   💥 2"
        in table
    )
    print(table)


def test_a_deleted_check_call_or_heading_is_named_from_the_course_version():
    course = small_lab(
        "from attention_kit.checks import check_softmax",
        "md:### Exercise 01.1: softmax",
        "def softmax(s):\n    raise NotImplementedError\n\ncheck_softmax(softmax)",
        "md:### Exercise 01.2: again",
        "check_softmax(softmax)",
        "md:### Exercise 01.3: in words",
        "md:_Your answer here._",
    )
    mine = small_lab(
        "from attention_kit.checks import check_softmax",
        "md:### Exercise 01.1: softmax",
        "def softmax(s):\n    return s.softmax(-1)",  # the check call deleted
        "md:Exercise 01.2 is gone, and so is the heading of 01.3.",
        "md:My answer in words.",
    )
    exercises = learner.grade(learner.LabRun(mine), course)
    assert [(e.number, e.status, e.written) for e in exercises] == [
        ("01.1", UNKNOWN, False),
        ("01.2", UNKNOWN, False),
    ]
    assert exercises[0].detail == (
        "no check in your copy: add `check_softmax(softmax)` after your answer"
    )
    assert exercises[1].detail == "its heading '### Exercise 01.2: ...' is gone"
    report = learner.LabReport("01_small.ipynb", exercises)
    assert learner.totals([report])[UNKNOWN] == 2
    assert "❔ 2 unknown" in learner.format_table([report])


def test_a_time_limit_per_lab_and_a_dead_kernel_are_reported(tmp_path):
    work = tmp_path / "my_labs"
    work.mkdir()
    cells = [
        "from attention_kit.checks import check_softmax",
        "md:### Exercise 01.1: before",
        'def softmax(s):\n    raise NotImplementedError("Exercise 01.1")\n\n'
        "check_softmax(softmax)",
        "while True:\n    pass",
        "md:### Exercise 01.2: after",
        "check_softmax(softmax)",
    ]
    nbformat.write(small_lab(*cells), work / "01_loops.ipynb")
    cells[3] = "import os\nos._exit(3)"
    nbformat.write(small_lab(*cells), work / "02_exits.ipynb")
    start = time.perf_counter()
    reports = learner.progress(work, work, time_limit=30, jobs=2)
    assert time.perf_counter() - start < 150
    loops, exits = (rows([r]) for r in reports)
    assert loops["01.1"] == exits["01.1"] == (WAITING, "")
    assert loops["01.2"][0] == exits["01.2"][0] == CRASHED
    assert loops["01.2"][1].startswith('cell 3, "while True:": the lab did not finish')
    assert exits["01.2"][1].startswith('cell 3, "import os": the kernel died')


def test_renamed_and_deleted_labs_are_reported_not_run(course, tmp_path):
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    names = sorted(p.name for p in work.glob("*.ipynb"))
    (work / names[0]).rename(work / "my_first_lab.ipynb")
    for name in names[1:]:
        (work / name).unlink()
    reports = learner.progress(work, course, time_limit=30, jobs=1)
    by_name = {r.name: r for r in reports}
    assert all(by_name[n].missing and not by_name[n].exercises for n in names)
    assert by_name["my_first_lab.ipynb"].note.startswith("not counted")
    number = names[0][:2]
    assert f"Exercise {number}.x" in by_name["my_first_lab.ipynb"].note
    table = learner.format_table(reports, work)
    assert f"Labs missing from {work}/: {len(names)}." in table
    assert "make lab" in table


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_progress_runs_every_lab_with_the_course_thread_count(
    course, tmp_path, monkeypatch, jobs
):
    """JOBS=1 once gave each lab both cores' threads, which crawled on a busy machine."""
    seen = []

    async def fake_run_lab(path, time_limit, env, import_dir):
        seen.append(env["OMP_NUM_THREADS"])
        return learner.LabRun(nbformat.read(path, as_version=4), 0.0)

    monkeypatch.setattr(learner, "run_lab", fake_run_lab)
    # a learner's shell setting is overridden
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delenv("ATTENTION_KIT_THREADS", raising=False)
    work = tmp_path / "my_labs"
    learner.copy_labs(course, work)
    learner.progress(work, course, time_limit=10, jobs=jobs)
    assert seen and set(seen) == {"1"}
    monkeypatch.setenv("ATTENTION_KIT_THREADS", "2")  # ... but the course's own is not
    seen.clear()
    learner.progress(work, course, time_limit=10, jobs=jobs)
    assert set(seen) == {"2"}


def test_progress_without_my_labs_says_what_to_do(tmp_path, capsys):
    assert learner.main(["--labs", str(tmp_path / "nothing"), "progress"]) == 1
    assert "make lab" in capsys.readouterr().out


# ----------------------------------------------------------------------------------
# make progress on the course's labs (each test executes every lab once)
# ----------------------------------------------------------------------------------


def code_exercises(path: Path) -> list[learner.Exercise]:
    exercises = learner.find_exercises(nbformat.read(path, as_version=4))
    return [e for e in exercises if not e.written]


def without_solution(source: str, body: str) -> str:
    """``source`` with its first solution region replaced by ``body`` (indented)."""
    lines = source.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == CODE_BEGIN)
    stop = next(i for i, line in enumerate(lines) if line.strip() == CODE_END)
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return "\n".join([*lines[:start], indent + body, *lines[stop + 1 :]])


def hint_for(notebook: nbformat.NotebookNode, cell_index: int) -> str:
    """The first line of the hint the checker gives for the answer in a cell, found by
    running the lab's setup cell and that cell (without its check call) here."""
    from attention_kit.checks import ExerciseFailed

    namespace: dict = {}
    exec(notebook.cells[1].source, namespace)  # the setup cell: imports and seed
    source = notebook.cells[cell_index].source
    call = learner.CHECK_CALL.search(source)
    exec(source[: call.start()], namespace)
    with pytest.raises(ExerciseFailed) as failure:
        exec(source[call.start() :].strip(), namespace)
    return failure.value.hint.splitlines()[0]


@pytest.mark.solutions
def test_progress_on_fresh_copies_with_one_wrong_answer_and_one_syntax_error(tmp_path):
    """Every lab fresh from make lab, except: the first lab with two code exercises is
    fully solved but for one wrong answer, and the next lab has a syntax error in its
    first exercise's cell."""
    work = tmp_path / "my_labs"
    learner.copy_labs(COURSE, work)
    labs = sorted(work.glob("*.ipynb"))
    wrong_lab = next(p for p in labs if len(code_exercises(p)) >= 2)
    broken_lab = next(p for p in labs if p != wrong_lab and code_exercises(p))

    solved = nbformat.read(SOLUTIONS / wrong_lab.name, as_version=4)
    wrong = code_exercises(SOLUTIONS / wrong_lab.name)[0]
    wrong_cell = wrong.check_cells[0]
    solved.cells[wrong_cell].source = without_solution(
        solved.cells[wrong_cell].source, "return None"
    )
    expected_hint = hint_for(solved, wrong_cell)
    nbformat.write(solved, wrong_lab)

    broken = nbformat.read(broken_lab, as_version=4)
    broken_exercise = code_exercises(broken_lab)[0]
    broken_cell = broken_exercise.check_cells[0]
    broken.cells[broken_cell].source += "\nanswer = (\n"
    nbformat.write(broken, broken_lab)
    before = snapshot(work)

    start = time.perf_counter()
    reports = learner.progress(
        work, COURSE, time_limit=learner.DEFAULT_TIME_LIMIT, jobs=2
    )
    seconds = time.perf_counter() - start
    print(learner.format_table(reports, work))
    print(f"progress on {len(labs)} labs: {seconds:.0f} s")

    assert snapshot(work) == before
    by_name = {r.name: r for r in reports}
    assert set(by_name) == {p.name for p in labs}
    expected = {DONE: 0, WAITING: 0, WRONG: 1, CRASHED: 1}
    for path in labs:
        for exercise in by_name[path.name].exercises:
            if exercise.written:
                continue
            where = f"{path.stem} {exercise.number}"
            if path == wrong_lab and exercise.number == wrong.number:
                assert (exercise.status, exercise.detail) == (WRONG, expected_hint)
            elif path == wrong_lab:
                assert exercise.status == DONE, (where, exercise.detail)
                expected[DONE] += 1
            elif path == broken_lab and exercise.number == broken_exercise.number:
                assert exercise.status == CRASHED, where
                assert exercise.detail.startswith(f"cell {broken_cell}, ")
                assert ": SyntaxError: " in exercise.detail
            else:
                # An answer that calls an earlier exercise's stub waits for it.
                waits = exercise.detail.startswith("waits for Exercise ")
                assert exercise.status == WAITING, (where, exercise.detail)
                assert exercise.detail == "" or waits, (where, exercise.detail)
                expected[WAITING] += 1
    counts = learner.totals(reports)
    assert {k: counts[k] for k in expected} == expected
    assert counts[UNKNOWN] == counts["missing_labs"] == 0
    code = sum(expected.values())
    assert code == sum(len(code_exercises(p)) for p in labs)
    assert f"Code exercises: {code}   ✅ {expected[DONE]} done" in learner.format_table(
        reports, work
    )


@pytest.mark.solutions
def test_progress_with_every_exercise_solved_within_the_labs_budget(
    tmp_path, capsys, record_property
):
    """Solutions copied in as the learner's labs: every code exercise done, every
    written answer filled in; the whole run within the sum of the labs' budgets."""
    work = tmp_path / "my_labs"
    work.mkdir()
    labs = sorted(SOLUTIONS.glob("*.ipynb"))
    for path in labs:
        shutil.copyfile(path, work / path.name)

    start = time.perf_counter()
    reports = learner.progress(
        work, COURSE, time_limit=learner.DEFAULT_TIME_LIMIT, jobs=2
    )
    seconds = time.perf_counter() - start
    budget = LAB_BUDGET * len(labs)
    table = learner.format_table(reports, work)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    line = (
        f"make progress on {len(labs)} solved labs, 2 at a time: {seconds:.0f} s "
        f"(budget {budget:.0f} s; load average {load:.1f})"
    )
    record_property("progress_seconds", round(seconds, 1))
    with capsys.disabled():
        print(f"\n{table}\n{line}")

    counts = learner.totals(reports)
    code = sum(len(code_exercises(p)) for p in labs)
    assert code > 0
    assert counts[DONE] == code, table
    assert counts["answered"] == counts["written"], table
    assert counts["missing_labs"] == 0
    assert re.search(rf"Code exercises: {code}   ✅ {code} done   ⏳ 0 ", table)
    assert seconds <= budget, line
