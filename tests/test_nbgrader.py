"""nbgrader: the course directory `make nbgrader` writes, grading that cannot be gamed,
and the README's semester walk through the real pipeline on Lab 04.

Fast tests run the guard of :mod:`course_tools.graded` in this process (this file is
"the learner's code" to it: it lives outside the kit and the libraries). The pipeline
test runs nbgrader itself in a temporary course directory, with the README's commands.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import attention_kit.attention as reference
import attention_kit.transformer as kit
from attention_kit.checks import ExerciseFailed, check_softmax
from attention_kit.checks.core import CHECKERS
from conftest import ROOT
from course_tools.graded import REFERENCES, grade, other_exercises_called
from course_tools.grading import (
    CHECK_CALL,
    COURSE_ID,
    GRADE_CALL,
    GRADE_IMPORT,
    GRADING_VARIABLE,
    Points,
    course_files,
    nbgrader_source,
    write_course,
)
from course_tools.nbgrader_plugins import MATHJAX
from course_tools.release import CODE_BEGIN, EXERCISE_HEADING, MARKDOWN_BEGIN
from course_tools.written import mark

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
LAB = "04_self_attention"
BIN = Path(sys.executable).parent


def grades(notebook: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, dict]]:
    return [
        (c, c.metadata["nbgrader"]) for c in notebook.cells if "nbgrader" in c.metadata
    ]


def grade_calls(source: str) -> list[re.Match]:
    lines = [line for line in source.split("\n") if line and not line.startswith("#")]
    assert lines[0] == GRADE_IMPORT, source
    return [GRADE_CALL.match(line) for line in lines[1:]]


# --- the course directory ----------------------------------------------------------


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_exercise_of_every_lab_is_graded(path):
    solution = nbformat.read(path, as_version=4)
    source = nbgrader_source(solution, path.name)
    nbformat.validate(source)
    graded = grades(source)
    ids = [meta["grade_id"] for _, meta in graded]
    assert len(ids) == len(set(ids)), f"grade ids repeat: {ids}"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids), ids
    exercises = EXERCISE_HEADING.findall("\n".join(c.source for c in solution.cells))
    for number in exercises:
        prefix = "ex" + number.replace(".", "_") + "_"
        points = [
            m.get("points", 0) for _, m in graded if m["grade_id"].startswith(prefix)
        ]
        assert points and sum(points) > 0, f"Exercise {number} carries no points"
    policy = Points()
    for cell, meta in graded:
        if cell.cell_type == "markdown":
            assert MARKDOWN_BEGIN in cell.source
            assert meta["solution"] and meta["grade"]
            assert meta["points"] == policy.written
        elif meta["solution"]:  # the learner's answer: a solution region, no checker
            assert CODE_BEGIN in cell.source
            assert not meta["grade"] and not meta["locked"]
            assert not any(CHECK_CALL.match(line) for line in cell.source.split("\n"))
        else:  # the autograder test: the course's checker, by exercise number
            calls = grade_calls(cell.source)
            assert calls and all(calls), cell.source
            for call in calls:
                number, answer = call.groups()
                assert CHECKERS[number].answer_name == answer
                assert meta["grade_id"].startswith("ex" + number.replace(".", "_"))
            assert meta["grade"] and meta["locked"]
            assert meta["points"] == policy.code * len(calls)
    # Nothing of the solution is lost: every line but the check calls is in the source.
    kept = "\n".join(c.source for c in source.cells).split("\n")
    for line in "\n".join(c.source for c in solution.cells).split("\n"):
        if line.strip() and not CHECK_CALL.match(line):
            assert line in kept, f"lost line {line!r}"


def test_make_nbgrader_lays_out_a_course_for_every_lab(tmp_path):
    files = course_files(tmp_path)
    assert tmp_path / "nbgrader_config.py" in files
    for path in SOLUTIONS:
        assert tmp_path / "source" / path.stem / path.name in files
    config = files[tmp_path / "nbgrader_config.py"]
    assert f'os.environ["{GRADING_VARIABLE}"] = "1"' in config
    assert f'course_id = "{COURSE_ID}"' in config
    compile(config, "nbgrader_config.py", "exec")


def test_points_come_from_the_instructors_file(tmp_path):
    write_course(tmp_path)
    policy = tmp_path / "points.toml"
    text = policy.read_text()
    assert "code = 2" in text and "written = 1" in text
    policy.write_text(
        text.replace('# "08.2" = 4', '"08.2" = 4').replace("written = 1", "written = 3")
    )
    write_course(tmp_path)
    assert "written = 3" in policy.read_text(), "make nbgrader overwrote points.toml"
    lab = tmp_path / "source" / "08_mini_transformer" / "08_mini_transformer.ipynb"
    notebook = nbformat.read(lab, as_version=4)
    points = {m["grade_id"]: m.get("points") for _, m in grades(notebook)}
    assert points["ex08_2_transformer_block"] == 4
    assert points["ex08_1_feed_forward"] == 2
    assert {p for g, p in points.items() if "answer" in g} == {3}


# --- grading mode and the guard, in this process -------------------------------------


def not_attempted(scores):
    raise NotImplementedError


def test_grading_mode_fails_an_unattempted_exercise(monkeypatch, capsys):
    monkeypatch.delenv(GRADING_VARIABLE, raising=False)
    check_softmax(not_attempted)
    assert "not attempted yet" in capsys.readouterr().out
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    with pytest.raises(ExerciseFailed, match="not attempted"):
        check_softmax(not_attempted)


def calls_an_unattempted_exercise(scores):
    raise NotImplementedError("Exercise 01.9")  # the stub of another exercise


def test_grading_mode_names_the_exercise_an_answer_waits_for(monkeypatch):
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    with pytest.raises(
        ExerciseFailed,
        match=r"waits for Exercise 01\.9, which was not attempted, so it",
    ):
        check_softmax(calls_an_unattempted_exercise)


def simple_self_attention(x):  # a right answer, written out
    scores = x @ x.transpose(-2, -1) / x.shape[-1] ** 0.5
    weights = torch.softmax(scores, dim=-1)
    return weights @ x, weights


def calls_the_reference(x):
    return reference.simple_self_attention(x)


def hides_the_refusal(x):
    try:
        return reference.simple_self_attention(x)
    except AssertionError:
        return reference.simple_self_attention(x)


def switches_the_guard_off(x):
    sys.setprofile(None)
    return reference.simple_self_attention(x)


class SubclassOfTheReference(reference.SelfAttention):
    pass


class CallsTheReferenceForward(nn.Module):
    def __init__(self, embed_dim, key_dim, value_dim):
        super().__init__()
        self.W_q = nn.Linear(embed_dim, key_dim, bias=False)
        self.W_k = nn.Linear(embed_dim, key_dim, bias=False)
        self.W_v = nn.Linear(embed_dim, value_dim, bias=False)

    def forward(self, x, mask=None):
        return reference.SelfAttention.forward(self, x, mask)


class KitsFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, bias=True):
        super().__init__()
        inner = kit.FeedForward(d_model, d_ff, bias)
        self.up, self.down = inner.up, inner.down

    def forward(self, x):
        return kit.FeedForward.forward(self, x)


def loss_of_the_kit(logits, tokens, pad_id):
    return kit.lm_loss(logits, tokens, ignore_index=pad_id)


def distribution_of_the_kit(logits, temperature=1.0, top_k=None):
    return torch.softmax(kit.filter_logits(logits, temperature, top_k), dim=-1)


def reads_the_checkers_reference(logits, tokens, pad_id):
    from attention_kit.checks.unit08 import reference_lm_loss

    return reference_lm_loss(logits, tokens, pad_id)


def uses_the_graders_version(logits, temperature=1.0, top_k=None):
    return REFERENCES["08.4"]()(logits, temperature, top_k)


@pytest.mark.parametrize(
    ("exercise", "answer", "words"),
    [
        ("04.1", calls_the_reference, "attention.simple_self_attention"),
        ("04.1", hides_the_refusal, "does not count"),
        ("04.1", switches_the_guard_off, "switched off the grading guard"),
        ("04.2", SubclassOfTheReference, "attention.SelfAttention"),
        ("04.2", CallsTheReferenceForward, "attention.SelfAttention"),
        ("08.1", KitsFeedForward, "transformer.FeedForward"),
        ("08.3", loss_of_the_kit, "transformer.lm_loss"),
        ("08.3", reads_the_checkers_reference, "the checkers' code"),
        ("08.4", uses_the_graders_version, "graded.reference_sampling_distribution"),
        ("08.4", distribution_of_the_kit, "transformer.filter_logits"),
    ],
    ids=lambda v: getattr(v, "__name__", v) if callable(v) else None,
)
def test_the_course_answer_is_refused_while_graded(exercise, answer, words):
    with pytest.raises(ExerciseFailed, match="course's own answer|guard") as failure:
        grade(exercise, answer)
    assert words in str(failure.value), str(failure.value)
    assert sys.getprofile() is None, "the guard stayed on"


def test_a_right_answer_passes_and_the_checker_still_uses_the_reference(capsys):
    grade("04.1", simple_self_attention)
    assert "✅ simple_self_attention" in capsys.readouterr().out


def find_cross_calls() -> dict[str, set[str]]:
    """For each exercise of the solutions, the other exercises its answer calls."""
    found = {}
    for path in SOLUTIONS:
        unit = path.stem[:2]
        names = {c.answer_name: n for n, c in CHECKERS.items() if n.startswith(unit)}
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or CODE_BEGIN not in cell.source:
                continue
            used = set(re.findall(r"(?<![\w.])(\w+)\(", cell.source))
            defined = set(re.findall(r"^(?:def|class) (\w+)", cell.source, re.M))
            for name in defined & set(names):
                calls = {names[u] for u in used & set(names) if u not in defined}
                if calls:
                    found[names[name]] = calls
    return found


def test_every_exercise_another_one_calls_has_a_reference_that_passes_its_check(
    capsys,
):
    called = set().union(*find_cross_calls().values())
    assert called, "no exercise calls another: find_cross_calls is broken"
    assert called <= set(REFERENCES), f"no reference for {called - set(REFERENCES)}"
    for number in sorted(called):
        CHECKERS[number](REFERENCES[number]())
        assert f"✅ {CHECKERS[number].answer_name}" in capsys.readouterr().out


def wrong_sampling_distribution(logits, temperature=1.0, top_k=None):
    return torch.softmax(logits * temperature, dim=-1)  # multiplies: wrong


def sample_next(logits, temperature, top_k, generator):
    probabilities = sampling_distribution(logits, temperature, top_k)  # noqa: F821
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def test_in_grading_mode_a_mistake_costs_once(monkeypatch, capsys):
    answer = types.FunctionType(
        sample_next.__code__,
        {**globals(), "sampling_distribution": wrong_sampling_distribution},
    )
    assert other_exercises_called("08.5", answer) == {"sampling_distribution": "08.4"}
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    grade("08.5", answer)
    out = capsys.readouterr().out
    assert "graded with the course's sampling_distribution (Exercise 08.4)" in out
    assert "✅ sample_next" in out
    assert answer.__globals__["sampling_distribution"] is wrong_sampling_distribution
    monkeypatch.delenv(GRADING_VARIABLE)
    with pytest.raises(ExerciseFailed, match="08.4"):
        grade("08.5", answer)  # outside grading mode: the lab's own message


def test_no_progress_bars_while_grading(monkeypatch, capsys):
    from attention_kit.train import fit, random_batches

    model = nn.Linear(2, 1)
    batches = random_batches(torch.randn(8, 2), batch_size=4)

    def loss(m, batch):
        return m(batch[0]).pow(2).mean()

    monkeypatch.setenv("TQDM_DISABLE", "1")
    fit(model, loss, batches, num_steps=3)
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("TQDM_DISABLE")
    fit(model, loss, batches, num_steps=3)
    assert "training" in capsys.readouterr().out


# --- the real pipeline ------------------------------------------------------------------


def run(command: str, cwd: Path, **env: str) -> str:
    """Run one shell command as the README writes it, with .venv/bin on PATH."""
    environment = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    environment.pop(GRADING_VARIABLE, None)  # nbgrader_config.py must set it
    environment.update(env)
    result = subprocess.run(
        command, shell=True, cwd=cwd, env=environment, capture_output=True, text=True
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{command}\n{log[-6000:]}"
    assert "ERROR" not in log, f"{command}\n{log[-6000:]}"
    return log


def answer_cells(notebook):
    return {m["grade_id"]: c for c, m in grades(notebook) if m["solution"]}


def fill_in(release, source, **replace: str):
    """The released notebook with every answer as in the instructor's source, except
    the answers given by grade id in ``replace``."""
    answers = {g: c.source for g, c in answer_cells(source).items()}
    answers.update(replace)
    filled = nbformat.from_dict(release)
    for grade_id, cell in answer_cells(filled).items():
        cell.source = answers[grade_id]
    return filled


CHEAT_04_1 = textwrap.dedent(
    '''\
    def simple_self_attention(x):
        """x (batch, n, d) -> output (batch, n, d), weights (batch, n, n)."""
        return reference.simple_self_attention(x)'''
)
CHEAT_04_2 = textwrap.dedent(
    """\
    class SelfAttention(reference.SelfAttention):
        pass"""
)
FAKE_CHECKERS = textwrap.dedent(
    """\
    check_self_attention = lambda answer: print("✅ looks fine")
    grade = lambda *args: print("✅ looks fine")"""
)


def quick_lab(path: Path) -> nbformat.NotebookNode:
    """The lab with its setup cell, its exercises and its written answers only (its
    figures and measurements left out), so that each autograde run takes seconds."""
    notebook = nbformat.read(path, as_version=4)
    setup = next(c for c in notebook.cells if c.cell_type == "code")
    notebook.cells = [
        c
        for c in notebook.cells
        if c.cell_type == "markdown" or c is setup or CODE_BEGIN in c.source
    ]
    return notebook


def test_a_semester_with_nbgrader_as_the_readme_walks_it(tmp_path):
    """Release, collect, autograde, grade the written answers, feedback, export: on
    Lab 04 with five students, two of whom try the tricks of issue 20."""
    lab = tmp_path / "solutions"
    lab.mkdir()
    nbformat.write(quick_lab(ROOT / "solutions" / f"{LAB}.ipynb"), lab / f"{LAB}.ipynb")
    course = tmp_path / "course"
    done = []

    def step(command: str, **env: str) -> str:
        done.append(command)
        return run(command, course, **env)

    write_course(course, lab)  # make nbgrader COURSE=... (tested below through make)
    (course / "roster.csv").write_text(
        "id,first_name,last_name\nada,Ada,L\nbob,Bob,M\ncy,Cy,N\ndee,Dee,O\neve,Eve,P\n"
    )
    step("nbgrader db student import roster.csv")
    step(f'nbgrader db assignment add {LAB} --duedate="2027-03-01 17:00:00 UTC"')
    step(f"nbgrader generate_assignment {LAB}")
    step(f"nbgrader release_assignment {LAB}")
    released = course / "exchange" / COURSE_ID / "outbound" / LAB / f"{LAB}.ipynb"
    release = nbformat.read(released, as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "### BEGIN SOLUTION" not in text
    assert 'raise NotImplementedError("Exercise 04.1")' in text
    assert 'raise NotImplementedError("Exercise 04.2")' in text
    assert "raise NotImplementedError()" not in text

    source = nbformat.read(course / "source" / LAB / f"{LAB}.ipynb", as_version=4)
    cells = answer_cells(source)
    code_04_1 = next(g for g in cells if g.startswith("ex04_1_code"))
    code_04_2 = next(g for g in cells if g.startswith("ex04_2_code"))
    wrong = cells[code_04_1].source.replace("math.sqrt(x.shape[-1])", "x.shape[-1]")
    assert wrong != cells[code_04_1].source
    written = sorted(g for g, c in cells.items() if c.cell_type == "markdown")
    stub_04_2 = answer_cells(release)[code_04_2].source
    submissions = {
        "ada": fill_in(release, source),
        "bob": release,
        "cy": fill_in(release, source, **{code_04_1: wrong}),
        "dee": fill_in(
            release, source, **{code_04_1: CHEAT_04_1, code_04_2: CHEAT_04_2}
        ),
        "eve": fill_in(
            release, source, **{code_04_2: stub_04_2 + "\n\n\n" + FAKE_CHECKERS}
        ),
    }
    archive = course / "downloaded" / LAB / "archive"
    archive.mkdir(parents=True)
    for student, notebook in submissions.items():
        nbformat.write(notebook, archive / f"{student}_{LAB}.ipynb")
    step(f"nbgrader zip_collect {LAB}")
    for student in submissions:
        assert (course / "submitted" / student / LAB / f"{LAB}.ipynb").exists()

    log = step(f"nbgrader autograde {LAB}")
    assert "without encryption" not in log
    assert "Warning" not in log, log  # SQLAlchemy's, among others

    from nbgrader.api import Gradebook

    def scores():
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
            return {
                student: {
                    g.name: g.score
                    for g in gradebook.find_submission_notebook(
                        LAB, LAB, student
                    ).grades
                    if "answer" not in g.name
                }
                for student in submissions
            }

    checks = ["ex04_1_simple_self_attention", "ex04_2_self_attention"]
    expected = {
        "ada": [2, 2],
        "bob": [0, 0],
        "cy": [0, 2],
        "dee": [0, 0],  # both call the course's answer
        "eve": [2, 0],  # fake checkers in the answer cell change nothing
    }
    assert {s: [v[c] for c in checks] for s, v in scores().items()} == expected

    listing = step(f"python -m course_tools.written {LAB}")
    answered = [s for s in submissions if s != "bob"]  # bob's are left as released
    assert listing.count("awaits grading") == len(written) * len(answered), listing
    step(f"nbgrader generate_feedback {LAB}")
    page = (course / "feedback" / "cy" / LAB / f"{LAB}.html").read_text()
    assert "awaits your teacher" in page.lower()
    assert "you divided by d; divide by its square root" in page.replace("&#39;", "'")
    assert not re.search(r"""<(script|link)[^>]*(src|href)=["']?(https?:)?//""", page)
    assert MATHJAX in page
    assert (course / "feedback" / "cy" / LAB / MATHJAX).exists()
    feedback_renders_offline(course / "feedback" / "cy" / LAB / f"{LAB}.html")
    step("nbgrader export")
    assert exported(course)["cy"]["points_awaiting_person"] == str(len(written))
    dee = (course / "feedback" / "dee" / LAB / f"{LAB}.html").read_text()
    assert "course&#39;s own answer" in dee or "course's own answer" in dee

    for student in answered:
        for answer in written:
            command = (
                f"python -m course_tools.written {LAB} --student {student} "
                f'--answer {answer} --points 1 --comment "Clear and right."'
            )
            if student == "ada":  # the README's command; the others in this process
                step(command)
            else:
                mark(course, LAB, student, answer, 1, "Clear and right.")
    assert "awaits grading" not in step(f"python -m course_tools.written {LAB}")
    step(f"nbgrader generate_feedback {LAB} --force")
    page = (course / "feedback" / "cy" / LAB / f"{LAB}.html").read_text()
    assert "awaits your teacher" not in page.lower()
    step("nbgrader export")
    table = exported(course)
    totals = {student: float(row["score"]) for student, row in table.items()}
    assert {row["points_awaiting_person"] for row in table.values()} == {"0"}
    assert totals == {
        s: sum(expected[s]) + len(written) * (s in answered) for s in submissions
    }, totals
    readme_commands_were_run(done)


def exported(course: Path) -> dict[str, dict[str, str]]:
    with open(course / "grades.csv", newline="") as table:
        return {row["student_id"]: row for row in csv.DictReader(table)}


def feedback_renders_offline(page: Path) -> None:
    """The page in headless Chromium with the network blocked: MathJax (from beside
    the page) draws every formula. Skipped where Chromium is not installed."""
    from course_tools.browser import Chromium, find_chromium

    if find_chromium() is None:
        return
    with Chromium() as browser:
        shown = browser.open(page)
    assert shown.blocked == [] and shown.failed == [], (shown.blocked, shown.failed)
    assert shown.report["mathjax"] == "ready", shown.report["mathjax"]
    assert shown.report["rendered"] > 10 and not shown.report["errors"], shown.report


def readme_commands_were_run(done: list[str]) -> None:
    """Every nbgrader and course_tools command of the README's walk is one this test
    ran (the test's student ids and answers stand for the README's)."""
    readme = (ROOT / "README.md").read_text()
    walk = readme.split("**Grading with nbgrader.**")[1].split("**Slides.**")[0]
    commands = [
        line.split("  #")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", walk, re.S)
        for line in block.replace("\\\n", " ").split("\n")
        if line.strip().startswith(("nbgrader", "python -m course_tools"))
    ]
    assert len(commands) >= 8, commands
    ran = {re.sub(r"\s+", " ", c) for c in done}
    for command in commands:
        assert re.sub(r"\s+", " ", command) in ran, (
            f"the README's `{command}` is not run by this test"
        )


# --- grades survive make clean and make nbgrader -------------------------------------


def make(target: str, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", target, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_clean_and_make_nbgrader_keep_an_instructors_grades(tmp_path):
    """In a copy of the project's Makefile (the real .venv linked in, so that nothing
    is installed): make nbgrader twice and make clean around a course with grades."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, project / name)
        os.utime(project / name, (0, 0))  # older than .venv/.installed: no install
    (project / ".venv").symlink_to(ROOT / ".venv")
    assert (ROOT / ".venv" / ".installed").exists()
    first = make("nbgrader", project)
    assert first.returncode == 0, first.stdout + first.stderr
    course = project / "nbgrader_course"
    assert (course / "nbgrader_config.py").exists() and (
        course / "points.toml"
    ).exists()
    kept = {
        "gradebook.db": "the grades",
        "points.toml": 'code = 5\nwritten = 1\n[exercise]\n"04.1" = 7\n',
        "instructor_config.py": "c = get_config()\n",
        "release/04_self_attention/04_self_attention.ipynb": "{}",
        "submitted/ada/04_self_attention/04_self_attention.ipynb": "{}",
        "autograded/ada/04_self_attention/04_self_attention.ipynb": "{}",
        "feedback/ada/04_self_attention/04_self_attention.html": "<p>well done</p>",
        "exchange/attention-step-by-step/outbound/x.ipynb": "{}",
        "downloaded/04_self_attention/archive/ada_04_self_attention.ipynb": "{}",
    }
    for name, text in kept.items():
        (course / name).parent.mkdir(parents=True, exist_ok=True)
        (course / name).write_text(text)
    (project / "_build" / "html").mkdir(parents=True)
    clean = make("clean", project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert not (project / "_build").exists(), "make clean no longer cleans"
    source = course / "source" / LAB / f"{LAB}.ipynb"
    source.write_text("an old version of the lab")
    second = make("nbgrader", project)
    assert second.returncode == 0, second.stdout + second.stderr
    for name, text in kept.items():
        assert (course / name).read_text() == text, f"{name} was changed"
    notebook = nbformat.read(source, as_version=4)  # source/ is regenerated
    points = {m["grade_id"]: m.get("points") for _, m in grades(notebook)}
    assert points["ex04_1_simple_self_attention"] == 7
    assert points["ex04_2_self_attention"] == 5
    inside = make("nbgrader", project, "COURSE=_build/course")
    assert inside.returncode != 0 and "make clean" in inside.stderr


# --- every solution earns its points under the guard ---------------------------------


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_solution_passes_its_locked_cells_in_grading_mode(
    path, monkeypatch, capsys
):
    """The setup cell, the answer cells and the locked test cells of each lab, run as
    notebook code (a file name outside the kit), in grading mode: no right answer is
    refused, and each exercise's check passes."""
    monkeypatch.setenv(GRADING_VARIABLE, "1")
    source = nbgrader_source(nbformat.read(path, as_version=4), path.name)
    setup = next(c for c in source.cells if c.cell_type == "code")
    namespace = {"__name__": "__main__"}
    graded, threads = 0, torch.get_num_threads()
    try:
        for index, cell in enumerate(source.cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not (cell is setup or meta):
                continue
            where = f"<notebook {path.stem} cell {index}>"
            exec(compile(cell.source, where, "exec"), namespace)
            graded += bool(meta) and not meta["solution"]
    finally:
        torch.set_num_threads(threads)  # a setup cell may set its own
    out = capsys.readouterr().out
    assert graded and out.count("✅") == graded, out


def test_every_exercise_knows_the_course_answer_it_refuses():
    from course_tools.graded import SAME_AS_ANSWER, forbidden_objects

    refused = {number: forbidden_objects(number) for number in CHECKERS}
    assert set(SAME_AS_ANSWER) <= set(refused)
    for number in ("04.1", "04.2", "08.1", "08.2", "08.3", "08.4", "08.5"):
        assert refused[number], f"Exercise {number} refuses nothing"


def test_the_exchange_route_on_one_account(tmp_path):
    """release_assignment, then a student's fetch_assignment and submit, then collect:
    the submission lands in submitted/<account>/ with its timestamp (on a JupyterHub the
    exchange is a shared folder and each student has an account)."""
    lab = tmp_path / "solutions"
    lab.mkdir()
    nbformat.write(quick_lab(ROOT / "solutions" / f"{LAB}.ipynb"), lab / f"{LAB}.ipynb")
    course, home = tmp_path / "course", tmp_path / "student"
    home.mkdir()
    write_course(course, lab)
    run(f"nbgrader generate_assignment {LAB}", course)
    run(f"nbgrader release_assignment {LAB}", course)
    student = f"--course {COURSE_ID} --Exchange.root={course / 'exchange'}"
    run(f"nbgrader fetch_assignment {LAB} {student}", home)
    assert (home / LAB / f"{LAB}.ipynb").exists()
    run(f"nbgrader submit {LAB} {student}", home)
    run(f"nbgrader collect {LAB}", course)
    (folder,) = (course / "submitted").iterdir()
    assert (folder / LAB / f"{LAB}.ipynb").exists()
    assert (folder / LAB / "timestamp.txt").read_text().strip()
