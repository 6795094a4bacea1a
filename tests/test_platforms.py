"""The course on learners' machines: threads, devices, `make doctor`, `make platforms`,
and the workflow that publishes the book."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import nbformat
import pytest

from conftest import ROOT, all_notebooks
from course_tools import doctor, platforms

SETUP_CALL = re.compile(r"^set_threads\(\)", re.MULTILINE)


@pytest.mark.parametrize(
    "path", all_notebooks(), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_setup_cell_sets_the_course_thread_count(path):
    """The nbgrader kernels and make progress rely on this call (course_tools.grading)."""
    notebook = nbformat.read(path, as_version=4)
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert SETUP_CALL.search(setup.source), (
        f"{path.name}: no set_threads() in setup cell"
    )
    assert "from attention_kit.train import" in setup.source


# ----------------------------------------------------------------------------------
# make doctor
# ----------------------------------------------------------------------------------


def test_doctor_and_makefile_name_the_same_pythons():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^SUPPORTED_PYTHONS := (.+)$", makefile, re.MULTILINE).group(1)
    assert listed.split() == [f"{a}.{b}" for a, b in doctor.SUPPORTED_PYTHONS]
    assert list(platforms.PYTHONS) == listed.split()


def test_doctor_says_one_plain_sentence_per_problem():
    report = doctor.Report()
    doctor.check_python(report, (3, 10))
    versions = {"torch": "2.13.0+cpu", "numpy": "1.26.0", "tqdm": None}
    doctor.check_pins(
        report,
        {"torch": "2.13.0", "numpy": "2.4.6", "tqdm": "4.70.1"},
        version_of=versions.get,
    )
    doctor.check_disk(
        report, usage=lambda folder: shutil._ntuple_diskusage(1, 1, 10**8)
    )
    failed = subprocess.CompletedProcess([], 1, "nbval 0.11.0 requires coverage\n", "")
    doctor.check_pip(report, run=lambda *args, **kwargs: failed)
    assert len(report.problems) == 5, report.problems  # torch's +cpu build is the pin
    python, numpy, tqdm, disk, pip = report.problems
    assert "Python 3.10" in python and "PYTHON=python3.12" in python
    assert "numpy 1.26.0" in numpy and "pins 2.4.6" in numpy
    assert "tqdm is not installed" in tqdm
    assert "0.1 GB" in disk
    assert "nbval 0.11.0 requires coverage" in pip
    assert all(p.endswith(".") and "\n" not in p for p in report.problems)
    assert any("torch" in line and "2.13.0+cpu" in line for line in report.lines)


def test_doctor_only_warns_about_a_missing_chromium():
    report = doctor.Report()
    doctor.check_chromium(report, find=lambda: None)
    assert not report.problems and "apt-get install chromium" in report.warnings[0]


def test_doctor_reports_a_gpu_that_was_asked_for_but_is_missing(monkeypatch):
    monkeypatch.setenv("ATTENTION_KIT_DEVICE", "cuda")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    report = doctor.Report()
    doctor.check_device(report)
    assert (
        len(report.problems) == 1 and "ATTENTION_KIT_DEVICE=cuda" in report.problems[0]
    )


def test_doctor_runs_here_and_its_exit_code_matches_what_it_says(capsys):
    code = doctor.main([])
    out = capsys.readouterr().out
    for label in ("Python", "torch", "numpy", "jupyter-book", "pip check", "device"):
        assert re.search(rf"^{label}\s", out, re.MULTILINE), out
    assert ("No problems found." in out) == (code == 0), out


def test_make_stops_with_a_sentence_for_an_unsupported_python(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make")
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    fake = tmp_path / "python3.9"  # answers the version question like an old Python
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *python_version*) echo 3.9.18;; esac\nexit 1\n'
    )
    fake.chmod(0o755)
    for python, words in [
        (str(fake), "is Python 3.9.18, which the course does not support"),
        ("no-such-python", "No no-such-python found"),
    ]:
        result = subprocess.run(
            ["make", "lab", f"PYTHON={python}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0 and words in result.stdout, result
        assert "PYTHON=python3.12" in result.stdout
        assert not (tmp_path / ".venv").exists()


# ----------------------------------------------------------------------------------
# make platforms (offline: reads the committed platforms.json)
# ----------------------------------------------------------------------------------


def committed_platforms() -> dict:
    return json.loads(platforms.RESULT.read_text(encoding="utf-8"))


def test_platforms_json_covers_the_current_pins():
    """Fails when a pin changed without `make platforms`; run it and commit the file."""
    doc = committed_platforms()
    wanted = [f"{name}=={version}" for name, version in doctor.pins().items()]
    assert "-e ." not in wanted and len(wanted) >= 10
    assert doc["requirements"] == wanted, "pins changed: run make platforms"
    assert list(doc["pins"]) == wanted
    for pin, by_python in doc["pins"].items():
        assert sorted(by_python) == sorted(platforms.PYTHONS), pin
        for answers in by_python.values():
            assert sorted(answers) == sorted(platforms.PLATFORMS), pin
            assert set(answers.values()) <= {platforms.WHEEL, platforms.NO_WHEEL}, pin


def test_every_supported_python_has_a_wheel_for_every_pin_everywhere():
    """What the README claims about Pythons 3.11 to 3.13 on Linux, macOS and Windows."""
    assert platforms.not_wheels(committed_platforms()["pins"]) == []


@pytest.mark.parametrize(
    ("returncode", "stdout", "stderr", "answer"),
    [
        (
            0,
            "torch (2.15.0)\nAvailable versions: 2.15.0, 2.13.0, 2.12.1\n",
            "",
            "wheel",
        ),
        (0, "torch (2.15.0)\nAvailable versions: 2.15.0, 2.12.1\n", "", "no wheel"),
        (1, "", "ERROR: No matching distribution found for torch\n", "no wheel"),
        (
            1,
            "",
            "WARNING: Retrying (Retry(total=0, connect=None)) after connection broken by "
            "'NameResolutionError(...)'\nERROR: No matching distribution found for torch\n",
            "network error",
        ),
        (
            1,
            "",
            "ERROR: Could not fetch URL https://pypi.org/simple/torch/\n",
            "network error",
        ),
        (2, "", "Traceback (most recent call last): ...\n", "network error"),
    ],
)
def test_a_network_error_is_never_taken_for_a_missing_wheel(
    returncode, stdout, stderr, answer
):
    assert platforms.classify("2.13.0", returncode, stdout, stderr) == answer


def test_platforms_asks_pip_for_index_pages_only():
    command = platforms.index_command("torch", "3.12", "manylinux_2_28_x86_64")
    assert command[3:5] == ["index", "versions"] and "--only-binary=:all:" in command
    assert "manylinux_2_17_x86_64" in command and "manylinux2014_x86_64" in command
    assert "download" not in command and "install" not in command


# ----------------------------------------------------------------------------------
# The workflow that publishes the book (.github/workflows/publish-book.yml)
# ----------------------------------------------------------------------------------

WORKFLOW = ROOT / ".github" / "workflows" / "publish-book.yml"


def workflow() -> dict:
    import yaml

    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def run_lines(data: dict) -> list[str]:
    return [
        line.strip()
        for job in data["jobs"].values()
        for step in job["steps"]
        for line in step.get("run", "").splitlines()
    ]


def makefile_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = lines.index(next(line for line in lines if line.startswith(f"{target}:")))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_the_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint", path=str(ROOT / ".venv" / "bin"))
    actionlint = actionlint or shutil.which("actionlint")
    assert actionlint, "actionlint missing: pip install -r requirements.txt"
    result = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_publishes_on_a_push_to_main_with_the_official_pages_actions():
    data = workflow()
    assert data["on"]["push"]["branches"] == ["main"]
    assert data["permissions"] == {
        "contents": "read",
        "pages": "write",
        "id-token": "write",
    }
    uses = [
        step["uses"].split("@")[0]
        for job in data["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    ]
    assert "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    deploy = data["jobs"]["deploy"]
    assert (
        deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    )


def test_the_workflow_builds_what_the_tests_build():
    """It runs `make book-public`, whose recipe builds the toc without solutions into
    _build/public, as course_tools.book.build(public=True) does for tests/test_browser.py;
    and it uploads that build's HTML."""
    from course_tools import book

    data = workflow()
    targets = [
        word
        for line in run_lines(data)
        if line.startswith("make ")
        for word in line.split()[1:]
        if "=" not in word
    ]
    assert targets == ["book-public"]
    recipe = " ".join(makefile_recipe("book-public"))
    public = book.PUBLIC_BUILD.relative_to(ROOT).as_posix()
    assert f"course_tools.book --without-solutions {public}/_toc.yml" in recipe
    assert f"--toc {public}/_toc.yml --path-output {public}" in recipe
    upload = next(
        step
        for step in data["jobs"]["build"]["steps"]
        if step.get("uses", "").startswith("actions/upload-pages-artifact@")
    )
    assert upload["with"]["path"] == f"{public}/_build/html"


def test_the_workflow_installs_the_pinned_cpu_torch_before_make():
    lines = run_lines(workflow())
    torch_line = next(i for i, line in enumerate(lines) if "torch_pin" in line)
    make_line = next(i for i, line in enumerate(lines) if line.startswith("make "))
    assert torch_line < make_line
    text = "\n".join(lines)
    assert "grep -oE '^torch==[^ #]+' requirements.txt" in text  # the pin, not a copy
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert doctor.pins()["torch"]  # requirements.txt pins torch


# ----------------------------------------------------------------------------------
# Time estimates (course_tools/estimates.py)
# ----------------------------------------------------------------------------------

LABS = sorted(
    [*(ROOT / "solutions").glob("*.ipynb"), *(ROOT / "notebooks").glob("*.ipynb")]
)


# Units 06-10 were being rewritten by other helpers when the estimates went in: their
# introductions get the total line (python -m course_tools.estimates --write) after that.
@pytest.mark.parametrize("path", LABS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_exercise_heading_has_an_estimate_on_the_line_below(path):
    from course_tools import estimates

    notebook = nbformat.read(path, as_version=4)
    exercises = estimates.find_exercises(notebook)
    assert exercises, path.name
    stated = []
    for exercise in exercises:
        lines = notebook.cells[exercise.cell].source.split("\n")
        at = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(f"### Exercise {exercise.number}")
        )
        below = estimates.ESTIMATE.match(lines[at + 1]) if at + 1 < len(lines) else None
        assert below, f"{path.name}: no estimate below Exercise {exercise.number}"
        stated.append(int(below.group(1)))
    total = re.search(
        r"Estimated time for this lab: about .*?: (\d+) min for the (\d+) exercises",
        notebook.cells[0].source,
    )
    assert total, f"{path.name}: no total in the introduction"
    assert int(total.group(1)) == sum(stated) and int(total.group(2)) == len(stated)


def test_the_estimate_rule_rounds_up_to_five_minutes():
    from course_tools.estimates import Exercise

    code = Exercise("01.1", 0, statement_words=100, solution_lines=3)
    assert code.minutes == 15  # 1 + 5 + 2 * 3 = 12, rounded up
    written = Exercise("01.4", 0, statement_words=50, answer_words=250)
    assert written.minutes == 20  # 0.5 + 5 + 10
    assert Exercise("01.2", 0, statement_words=0, solution_lines=0).minutes == 5
