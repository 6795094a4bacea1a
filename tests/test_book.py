"""The Jupyter Book builds with warnings as errors, and every toc entry becomes a page."""

import subprocess
import sys
from pathlib import Path

import pytest

from attention_kit.book import read_toc, toc_files
from conftest import ROOT


@pytest.mark.book
def test_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run(
        [
            str(jupyter_book),
            "build",
            str(ROOT),
            "--path-output",
            str(tmp_path),
            "-W",
            "--keep-going",
        ],
        capture_output=True,
        text=True,
    )
    log = result.stdout[-6000:] + result.stderr[-6000:]
    assert result.returncode == 0, log
    html = tmp_path / "_build" / "html"
    for entry in toc_files(read_toc()):
        page = html / f"{entry}.html"
        assert page.exists(), f"no page for toc entry {entry}"
        text = page.read_text(encoding="utf-8")
        assert "Traceback (most recent call last)" not in text, (
            f"{entry} shows a traceback"
        )
    lab = (html / "notebooks" / "01_queries_keys_values.html").read_text(
        encoding="utf-8"
    )
    assert "not attempted yet" in lab, (
        "the student lab should show the not-attempted marks"
    )
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists(), "no local MathJax"
    assert 'src="../_static/mathjax/tex-chtml.js"' in lab, "MathJax should load locally"
