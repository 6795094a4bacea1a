"""Shared by the whole test run: paths for tests/, and the notebook timing table.

The course's budget is 60 s per lab and 20 s per lecture on a 2-core CPU; the table
printed at the end of `make test` is where to read it off.
"""

import os
from collections import defaultdict
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
# pytest-xdist runs two workers on two cores; one thread each (inherited by the notebook
# kernels and the book build) keeps them from fighting over the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The notebook kernels draw their figures inline (this process keeps Agg, set above), even
# under MPLBACKEND=Agg: the book shows the outputs of this run (course_tools.executed).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

ROOT = Path(__file__).resolve().parent
NOTEBOOK_FOLDERS = ("lectures", "solutions", "notebooks")


def all_notebooks() -> list[Path]:
    return sorted(
        p for folder in NOTEBOOK_FOLDERS for p in (ROOT / folder).glob("*.ipynb")
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the outputs nbval saw; a notebook whose cells all passed is stored for the
    book build, which then shows these outputs instead of running the notebook again
    (course_tools.executed)."""
    outcome = yield
    if call.when != "call" or type(item).__name__ != "IPyNbCell":
        return
    notebook = item.parent
    kept = notebook.__dict__.setdefault("executed_outputs", {})
    if outcome.get_result().passed and item.test_outputs is not None:
        kept[item.cell_num] = item.test_outputs
    code_cells = sum(cell.cell_type == "code" for cell in notebook.nb.cells)
    if len(kept) == code_cells:
        from course_tools.executed import executed_notebook, store

        store(notebook.path, executed_notebook(notebook.nb, kept))


def pytest_terminal_summary(terminalreporter):
    seconds = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            path = getattr(report, "nodeid", "").split("::")[0]
            if path.endswith(".ipynb"):
                seconds[path] += getattr(report, "duration", 0.0)
    if seconds:
        terminalreporter.section("notebook run times (s, all cells)")
        for path, total in sorted(seconds.items()):
            terminalreporter.write_line(f"{total:6.1f}  {path}")


def assert_passes(checker, answer, capsys, message: str = "") -> None:
    """The checker accepts ``answer``: it prints one ✅ line (containing ``message``)."""
    checker(answer)
    output = capsys.readouterr().out
    assert output.startswith("✅") and message in output, output


def assert_fails_with(checker, answer, hint: str) -> None:
    """The checker rejects ``answer`` with a hint that contains ``hint``."""
    from attention_kit.checks import ExerciseFailed

    try:
        checker(answer)
    except ExerciseFailed as failure:
        assert hint in failure.hint, failure.hint
        assert failure.exercise == checker.exercise
    else:
        raise AssertionError(f"{checker.__name__} accepted a wrong answer")


def with_globals(function, **names):
    """A copy of ``function`` that looks its global names up in a namespace where
    ``names`` are bound: an answer that calls another exercise's function (say
    ``apply_rope``) can be tested with a wrong version of it, as a learner's notebook
    would bind it."""
    import types

    namespace = {**function.__globals__, **names}
    return types.FunctionType(
        function.__code__,
        namespace,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
