"""The Jupyter Book builds with warnings as errors, every toc entry becomes a page with
its outputs, every figure has a text alternative, no page shows a Python object's
default repr, and the notebooks are not executed a second time after nbval.

`make test` runs these tests (marker ``book``) after the nbval run, with
``ATTENTION_KIT_AFTER_NBVAL=1``: nbval has then stored every executed notebook in the
book's jupyter-cache (conftest.py, course_tools.executed), and the build must take
every notebook from there. Run alone, the build executes what the cache lacks.
"""

import html
import os
import re
from html.parser import HTMLParser

import nbformat
import pytest

from conftest import ROOT, all_notebooks
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


class _Images(HTMLParser):
    """The ``alt`` and ``src`` of every ``<img>`` of a page."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str | None, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            values = dict(attrs)
            self.found.append((values.get("alt"), values.get("src") or ""))


def images(page_html: str) -> list[tuple[str | None, str]]:
    parser = _Images()
    parser.feed(page_html)
    return parser.found


def unhelpful_alt(alt: str | None, src: str) -> str | None:
    """Why a screen reader would learn nothing from this alt text, or None if it would.

    Sphinx writes the image's path as its alt text when the cell gives none
    (``mystnb: image: alt`` in the cell's metadata)."""
    if alt is None or not alt.strip():
        return "no alt text"
    text = alt.strip()
    name = src.rsplit("/", 1)[-1]
    if name and name in text or re.search(r"\.(png|jpe?g|svg|gif|webp)$", text, re.I):
        return f"alt text is a file path ({text[:60]})"
    return None


@pytest.mark.book
def test_every_figure_has_a_text_alternative(built):
    missing = {}
    for page in sorted(built.html.rglob("*.html")):
        if page.relative_to(built.html).parts[0].startswith("_"):
            continue
        for alt, src in images(page.read_text(encoding="utf-8")):
            why = unhelpful_alt(alt, src)
            if why:
                name = str(page.relative_to(built.html))
                missing.setdefault(name, []).append(why)
    counts = {page: len(reasons) for page, reasons in missing.items()}
    assert not missing, (
        f"images without a text alternative, by page: {counts}; first: "
        f"{next(iter(missing.values()))[0]}. Give each figure cell "
        '{"mystnb": {"image": {"alt": "what it shows and what to notice"}}} '
        "in its metadata (CONTRIBUTING.md, Conventions: Text alternatives)."
    )


# A code cell that draws a figure (checked against the executed notebooks: these match
# exactly the cells with an image output).
DRAWS = re.compile(
    r"plt\.show\(\)|plt\.subplots\(|plt\.figure\(|(?<!def )show_heatmap\("
)


def alt_text(cell) -> str:
    return cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")


@pytest.mark.parametrize(
    "path", all_notebooks(), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_figure_cell_carries_its_text_alternative(path):
    """Fast, before any build: a figure cell has alt text in its metadata, and draws one
    figure (myst-nb gives a cell's alt text to every image of the cell)."""
    cells = nbformat.read(path, as_version=4).cells
    drawing = [c for c in cells if c.cell_type == "code" and DRAWS.search(c.source)]
    missing = [c.get("id") for c in drawing if len(alt_text(c)) < 60]
    assert not missing, (
        f"figure cells without alt text (or shorter than a sentence): {missing}; add "
        '{"mystnb": {"image": {"alt": "what it shows and what to notice"}}}'
    )
    several = [c.get("id") for c in drawing if c.source.count("plt.show()") > 1]
    assert not several, f"cells that draw several figures, to split: {several}"


def test_the_alt_check_knows_a_path_from_a_description():
    path = "../_images/e0123abc.png"
    assert unhelpful_alt(path, path) == f"alt text is a file path ({path})"
    assert unhelpful_alt("", path) == unhelpful_alt(None, path) == "no alt text"
    assert (
        unhelpful_alt("Weights of head 0: each query reads the key before it", path)
        is None
    )
    assert images('<p><img alt="a" src="b.png"/><img src="c.png"></p>') == [
        ("a", "b.png"),
        (None, "c.png"),
    ]


# A Python object printed with its default repr, such as <torch._C.Generator at 0x7f...>:
# the value of a call like torch.manual_seed(0) left as a cell's last line.
DEFAULT_REPR = re.compile(r"<[A-Za-z_][^<>\n]{0,200} at 0x[0-9a-fA-F]+>")


def default_reprs(page_html: str) -> list[str]:
    text = html.unescape(re.sub(r"<[^>]+>", "", page_html))
    return DEFAULT_REPR.findall(text)


@pytest.mark.book
def test_no_page_shows_an_object_with_its_memory_address(built):
    shown = {}
    for entry in book.toc_files(built.toc):
        found = default_reprs(
            (built.html / f"{entry}.html").read_text(encoding="utf-8")
        )
        if found:
            shown[entry] = found
    assert not shown, (
        f"pages that print an object's default repr: {shown}; end the cell with `;` "
        "or assign the value (`_ = torch.manual_seed(0)`)"
    )


def test_the_repr_check_finds_what_a_page_would_show():
    page = "<pre>&lt;torch._C.Generator at 0x7ff57f3cc890&gt;\n</pre>"
    assert default_reprs(page) == ["<torch._C.Generator at 0x7ff57f3cc890>"]
    assert default_reprs("<pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre>") == []
    assert default_reprs("<pre>&lt;object object at 0x10&gt;</pre>") == [
        "<object object at 0x10>"
    ]
    assert default_reprs("<pre>&lt;function f at 0xABC&gt; and x &lt; 0x1</pre>") == [
        "<function f at 0xABC>"
    ]
