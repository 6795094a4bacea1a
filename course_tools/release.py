"""Write the student labs (``notebooks/``) from the complete labs (``solutions/``).

In a solution notebook:

- code between the lines ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
  ``raise NotImplementedError("Exercise NN.k")``, indented like the markers, where
  NN.k is the number of the closest ``### Exercise NN.k: title`` heading above;
- markdown between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``
  becomes ``_Your answer here._``;
- outputs, execution counts and execution timings are cleared.

Usage::

    python -m course_tools.release            # write notebooks/ from solutions/
    python -m course_tools.release --check    # exit 1 if notebooks/ is out of date
    python -m course_tools.release --strip    # clear outputs in lectures/ and solutions/
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat

CODE_BEGIN = "### BEGIN SOLUTION"
CODE_END = "### END SOLUTION"
MARKDOWN_BEGIN = "<!-- BEGIN SOLUTION -->"
MARKDOWN_END = "<!-- END SOLUTION -->"
MARKDOWN_PLACEHOLDER = "_Your answer here._"
EXERCISE_HEADING = re.compile(r"^#{1,6}\s+Exercise\s+(\d+\.\d+)\b", re.MULTILINE)

ROOT = Path(__file__).resolve().parents[1]


class ReleaseError(ValueError):
    """A solution notebook whose markers cannot be turned into a student notebook."""


def _regions(
    lines: list[str], begin: str, end: str, where: str
) -> list[tuple[int, int]]:
    """The (begin, end) line indices of each marked region; markers must pair up."""
    regions, start = [], None
    for number, line in enumerate(lines):
        marker = line.strip()
        if marker == begin:
            if start is not None:
                raise ReleaseError(f"{where}: '{begin}' inside another solution region")
            start = number
        elif marker == end:
            if start is None:
                raise ReleaseError(f"{where}: '{end}' without a '{begin}' before it")
            regions.append((start, number))
            start = None
    if start is not None:
        raise ReleaseError(f"{where}: '{begin}' is never closed by '{end}'")
    return regions


def _replace_regions(
    source: str, begin: str, end: str, replacement: Callable[[str], str], where: str
) -> str:
    """``source`` with each marked region (markers included) replaced."""
    lines = source.split("\n")
    regions = _regions(lines, begin, end, where)
    for start, stop in reversed(regions):
        lines[start : stop + 1] = [replacement(lines[start])]
    return "\n".join(lines)


def strip_code(source: str, exercise: str | None, where: str) -> str:
    """Replace each code solution region by a ``raise NotImplementedError``."""

    def stub(begin_line: str) -> str:
        indent = begin_line[: len(begin_line) - len(begin_line.lstrip())]
        if not indent:
            raise ReleaseError(
                f"{where}: a solution region must sit inside a function or class body, "
                "so that the student notebook still runs from top to bottom"
            )
        if exercise is None:
            raise ReleaseError(
                f"{where}: no '### Exercise NN.k: title' heading above it"
            )
        return f'{indent}raise NotImplementedError("Exercise {exercise}")'

    return _replace_regions(source, CODE_BEGIN, CODE_END, stub, where)


def strip_markdown(source: str, where: str) -> str:
    """Replace each markdown solution region by a placeholder for the learner's answer."""
    return _replace_regions(
        source, MARKDOWN_BEGIN, MARKDOWN_END, lambda _: MARKDOWN_PLACEHOLDER, where
    )


def clear_outputs(notebook: nbformat.NotebookNode) -> None:
    """Remove outputs, execution counts and timing metadata, in place."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)


def student_version(
    solution: nbformat.NotebookNode, name: str
) -> nbformat.NotebookNode:
    """The student notebook made from one solution notebook."""
    notebook = nbformat.from_dict(solution)  # a deep copy
    clear_outputs(notebook)
    exercise = None
    for index, cell in enumerate(notebook.cells):
        where = f"{name}, cell {index}"
        if cell.cell_type == "markdown":
            cell.source = strip_markdown(cell.source, where)
            headings = EXERCISE_HEADING.findall(cell.source)
            if headings:
                exercise = headings[-1]
        elif cell.cell_type == "code":
            cell.source = strip_code(cell.source, exercise, where)
    return notebook


def render(notebook: nbformat.NotebookNode) -> str:
    """A notebook as the exact text written to disk (stable key order and indent)."""
    return nbformat.writes(notebook) + "\n"


def release(source_dir: Path, dest_dir: Path) -> dict[Path, str]:
    """The text of every student notebook, keyed by its path in ``dest_dir``."""
    return {
        dest_dir / path.name: render(
            student_version(nbformat.read(path, as_version=4), path.name)
        )
        for path in sorted(source_dir.glob("*.ipynb"))
    }


def out_of_date(source_dir: Path, dest_dir: Path) -> list[str]:
    """Why ``dest_dir`` is not what ``release`` makes of ``source_dir`` (empty if it is)."""
    wanted = release(source_dir, dest_dir)
    problems = [
        f"{path} is missing"
        if not path.exists()
        else f"{path} differs from its solution"
        for path, text in wanted.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    problems += [
        f"{path} has no solution notebook in {source_dir}"
        for path in sorted(dest_dir.glob("*.ipynb"))
        if path not in wanted
    ]
    return problems


def strip_outputs(folders: list[Path]) -> list[Path]:
    """Clear outputs of every notebook in ``folders`` in place; return those changed."""
    changed = []
    for folder in folders:
        for path in sorted(folder.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            clear_outputs(notebook)
            text = render(notebook)
            if path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "solutions")
    parser.add_argument("--dest", type=Path, default=ROOT / "notebooks")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if --dest is out of date",
    )
    parser.add_argument(
        "--strip",
        action="store_true",
        help="clear outputs in lectures/ and solutions/ first",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = out_of_date(args.source, args.dest)
            for problem in problems:
                print(problem)
            if problems:
                print(
                    "Run `make student` (python -m course_tools.release) to regenerate."
                )
            return 1 if problems else 0
        if args.strip:
            for path in strip_outputs([ROOT / "lectures", args.source]):
                print(f"cleared outputs of {path}")
        args.dest.mkdir(parents=True, exist_ok=True)
        for path, text in release(args.source, args.dest).items():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
