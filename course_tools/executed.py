"""Hand the notebooks that nbval executed to the book build, so each runs once per test run.

`make test` executes every notebook under nbval, then builds the book. The book build
(Jupyter Book with ``execute_notebooks: cache``) takes a notebook's outputs from a
jupyter-cache when the cache holds a run of the same code; only a notebook it does not
find there is executed again. So the test run's ``conftest.py`` collects the outputs
nbval saw, cell by cell, and when every cell of a notebook has passed it stores the
executed notebook in the cache the book reads, ``_build/.jupyter_cache`` (set in
``_config.yml``). A notebook with a failing cell is not stored, so the book build would
execute it again and fail on it too.

The cache matches a notebook by its code cells and kernel, not by the code it imports:
a notebook is stored again by every nbval run, but a book built without running nbval
first (`make book`) may show outputs from an older version of ``attention_kit``.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"


def executed_notebook(
    notebook: nbformat.NotebookNode, outputs: dict[int, list]
) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose k-th code cell holds ``outputs[k]``, numbered 1, 2, ..."""
    executed = nbformat.from_dict(notebook)  # a deep copy
    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    if sorted(outputs) != list(range(len(code_cells))):
        raise ValueError(
            f"outputs for code cells {sorted(outputs)}, "
            f"but the notebook has {len(code_cells)} code cells"
        )
    for number, cell in enumerate(code_cells):
        cell.execution_count = number + 1
        cell.outputs = [nbformat.from_dict(dict(o)) for o in outputs[number]]
        for output in cell.outputs:
            if output.output_type == "execute_result":
                output.execution_count = number + 1
    return executed


def _open_cache(folder: Path):
    from jupyter_cache import get_cache

    return get_cache(str(folder))


def _retry(action, attempts: int = 20):
    """Run ``action``; two xdist workers may write the cache's SQLite file at once."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:  # sqlite's "database is locked", a creation race
            message = str(error).lower()
            transient = "locked" in message or "already exists" in message
            if not transient or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def store(path: Path, notebook: nbformat.NotebookNode, folder: Path = CACHE) -> None:
    """Put an executed notebook into the jupyter-cache at ``folder``."""
    from jupyter_cache.base import CacheBundleIn

    folder.mkdir(parents=True, exist_ok=True)
    _retry(
        lambda: _open_cache(folder).cache_notebook_bundle(
            CacheBundleIn(notebook, str(Path(path).resolve()), data={"by": "nbval"}),
            check_validity=True,
            overwrite=True,
        )
    )


def not_cached(paths: list[Path], folder: Path = CACHE) -> list[Path]:
    """The notebooks among ``paths`` that the book build would have to execute."""
    if not (folder / "global.db").exists():
        return list(paths)
    cache = _open_cache(folder)
    missing = []
    for path in paths:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            missing.append(path)
    return missing
