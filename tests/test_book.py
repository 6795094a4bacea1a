"""The Jupyter Book builds with warnings as errors, every toc entry becomes a page with
its outputs, and the notebooks are not executed a second time after nbval.

`make test` runs these tests (marker ``book``) after the nbval run, with
``ATTENTION_KIT_AFTER_NBVAL=1``: nbval has then stored every executed notebook in the
book's jupyter-cache (conftest.py, course_tools.executed), and the build must take
every notebook from there. Run alone, the build executes what the cache lacks.
"""

import os

import pytest

from conftest import ROOT
from course_tools import book
from course_tools.executed import not_cached

AFTER_NBVAL = os.environ.get("ATTENTION_KIT_AFTER_NBVAL") == "1"


def notebook_pages(toc: dict) -> list[str]:
    return [e for e in book.toc_files(toc) if (ROOT / f"{e}.ipynb").exists()]


@pytest.fixture(scope="module")
def built():
    if AFTER_NBVAL:
        missing = not_cached(
            [ROOT / f"{e}.ipynb" for e in notebook_pages(book.read_toc())]
        )
        assert not missing, (
            f"nbval did not store these notebooks for the book: {missing}"
        )
    result = book.build()
    assert result.returncode == 0, result.log[-12000:]
    return result


@pytest.mark.book
def test_the_book_takes_every_notebook_from_the_nbval_run(built):
    if AFTER_NBVAL:
        assert built.executed() == [], "\n".join(built.executed())
    else:
        pytest.skip("only meaningful right after nbval (make test)")


@pytest.mark.book
def test_every_toc_entry_is_a_page_with_its_outputs(built):
    for entry in book.toc_files(built.toc):
        page = built.html / f"{entry}.html"
        assert page.exists(), f"no page for toc entry {entry}"
        text = page.read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in text, (
            f"{entry} shows a traceback"
        )
    for entry in notebook_pages(built.toc):
        text = (built.html / f"{entry}.html").read_text(encoding="utf-8")
        assert 'class="cell_output' in text, f"{entry} shows no cell output"
    for entry in notebook_pages(built.toc):
        if entry.startswith("lectures/"):
            text = (built.html / f"{entry}.html").read_text(encoding="utf-8")
            assert "<img" in text, f"{entry} shows no figure"


@pytest.mark.book
@pytest.mark.solutions
def test_labs_show_the_not_attempted_marks_and_mathjax_is_local(built):
    lab = (built.html / "notebooks" / "01_queries_keys_values.html").read_text(
        encoding="utf-8"
    )
    assert "not attempted yet" in lab, (
        "the student lab should show the not-attempted marks"
    )
    solved = (built.html / "solutions" / "01_queries_keys_values.html").read_text(
        encoding="utf-8"
    )
    assert "checks passed" in solved, "the solution should show the ✅ lines"
    assert (built.html / "_static" / "mathjax" / "tex-chtml.js").exists(), (
        "no local MathJax"
    )
    assert 'src="../_static/mathjax/tex-chtml.js"' in lab, "MathJax should load locally"
