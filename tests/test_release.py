"""The solutions-to-notebooks generator on small synthetic notebooks."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_tools.release import (
    MARKDOWN_PLACEHOLDER,
    ReleaseError,
    main,
    out_of_date,
    render,
    student_version,
)

TWO_REGIONS = '''def first(x):
    """Docstring stays."""
    ### BEGIN SOLUTION
    return x + 1
    ### END SOLUTION


class Second:
    def method(self):
        ### BEGIN SOLUTION
        return 42
        ### END SOLUTION

check_first(first)'''


def make_solution() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Lab 99\n\n### Exercise 99.1: two answers"),
        new_code_cell(
            TWO_REGIONS, execution_count=3, outputs=[new_output("stream", text="hi")]
        ),
        new_markdown_cell("### Exercise 99.2: explain\n\nWhy?"),
        new_markdown_cell(
            "Before\n<!-- BEGIN SOLUTION -->\n**Answer.** Because.\n<!-- END SOLUTION -->\nAfter"
        ),
        new_code_cell(
            "def third():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION"
        ),
    ]
    cells[1].metadata["execution"] = {"iopub.status.idle": "2026-01-01"}
    cells[1].metadata["tags"] = ["keep-me"]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


def test_code_regions_become_stubs_with_the_exercise_number():
    student = student_version(make_solution(), "lab.ipynb")
    source = student.cells[1].source
    assert (
        "BEGIN SOLUTION" not in source
        and "return x + 1" not in source
        and "42" not in source
    )
    assert (
        '    """Docstring stays."""\n    raise NotImplementedError("Exercise 99.1")\n'
        in source
    )
    assert '        raise NotImplementedError("Exercise 99.1")\n' in source
    assert source.endswith("check_first(first)")
    assert (
        student.cells[4].source
        == 'def third():\n    raise NotImplementedError("Exercise 99.2")'
    )


def test_the_stubbed_code_still_defines_its_functions():
    namespace = {"check_first": lambda f: None}
    exec(student_version(make_solution(), "lab.ipynb").cells[1].source, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 99.1"):
        namespace["first"](1)


def test_markdown_regions_become_a_placeholder():
    student = student_version(make_solution(), "lab.ipynb")
    assert student.cells[3].source == f"Before\n{MARKDOWN_PLACEHOLDER}\nAfter"


def test_outputs_and_timings_are_cleared_and_tags_kept():
    student = student_version(make_solution(), "lab.ipynb")
    cell = student.cells[1]
    assert cell.outputs == [] and cell.execution_count is None
    assert "execution" not in cell.metadata and cell.metadata["tags"] == ["keep-me"]
    assert student.metadata["kernelspec"]["name"] == "python3"


def test_the_solution_is_left_untouched():
    solution = make_solution()
    before = render(solution)
    student_version(solution, "lab.ipynb")
    assert render(solution) == before


def test_output_is_deterministic():
    solution = make_solution()
    assert render(student_version(solution, "a")) == render(
        student_version(solution, "a")
    )


@pytest.mark.parametrize(
    "cells, message",
    [
        ([new_code_cell("def f():\n    ### BEGIN SOLUTION\n    pass")], "never closed"),
        ([new_code_cell("def f():\n    pass\n    ### END SOLUTION")], "without a"),
        (
            [
                new_markdown_cell("### Exercise 1.1: x"),
                new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
            ],
            "inside a function",
        ),
        (
            [
                new_code_cell(
                    "def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION"
                )
            ],
            "no '### Exercise",
        ),
        ([new_markdown_cell("<!-- BEGIN SOLUTION -->\ntext")], "never closed"),
    ],
)
def test_malformed_markers_are_errors(cells, message):
    with pytest.raises(ReleaseError, match=message):
        student_version(new_notebook(cells=cells), "bad.ipynb")


def test_command_line_writes_and_checks(tmp_path, capsys):
    source, dest = tmp_path / "solutions", tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(make_solution(), source / "99_lab.ipynb")
    assert main(["--source", str(source), "--dest", str(dest), "--check"]) == 1
    assert "99_lab.ipynb is missing" in capsys.readouterr().out
    assert main(["--source", str(source), "--dest", str(dest)]) == 0
    assert main(["--source", str(source), "--dest", str(dest), "--check"]) == 0
    assert out_of_date(source, dest) == []

    (dest / "99_lab.ipynb").write_text(
        (dest / "99_lab.ipynb").read_text().replace("Why?", "How?")
    )
    (dest / "98_orphan.ipynb").write_text("{}")
    problems = out_of_date(source, dest)
    assert any("99_lab.ipynb differs" in p for p in problems)
    assert any("98_orphan.ipynb has no solution notebook" in p for p in problems)


def test_command_line_reports_malformed_markers(tmp_path, capsys):
    source = tmp_path / "solutions"
    source.mkdir()
    broken = new_notebook(cells=[new_code_cell("def f():\n    ### BEGIN SOLUTION")])
    nbformat.write(broken, source / "01_broken.ipynb")
    assert main(["--source", str(source), "--dest", str(tmp_path / "out")]) == 2
    assert "01_broken.ipynb, cell 0" in capsys.readouterr().err
