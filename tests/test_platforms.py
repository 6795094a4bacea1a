"""The course on learners' machines: threads, devices, `make doctor`, `make platforms`,
and the workflow that publishes the book."""

from __future__ import annotations

import re

import nbformat
import pytest

from conftest import all_notebooks

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
