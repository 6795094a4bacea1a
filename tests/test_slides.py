"""`make slides`: each lecture as a reveal.js deck that works offline.

Every deck is opened in headless Chromium with the network blocked: reveal.js must have
initialised, MathJax must have rendered the maths without an error, no request may
leave the machine, and no code of a ``hide-input``/``remove-input`` cell may be on a
slide (its figure is). Marked ``book``: `make test` runs it after nbval, so the decks
take their outputs from that run (course_tools.executed) instead of executing again.
"""

import re
from html import unescape

import nbformat
import pytest

from conftest import ROOT
from course_tools import slides
from course_tools.browser import Chromium, find_chromium

pytestmark = pytest.mark.book

LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
OUT = ROOT / "_build" / "slides"
HIDDEN = {"hide-input", "remove-input", "remove-cell"}

DECK_SCRIPT = """
(() => {
  const leftover = [];
  for (const block of document.querySelectorAll(".jp-RenderedMarkdown")) {
    const copy = block.cloneNode(true);
    copy.querySelectorAll("mjx-container, pre, code").forEach((e) => e.remove());
    const text = copy.textContent;
    if (/\\$|\\\\\\(|\\\\\\[/.test(text)) leftover.push(text.trim().slice(0, 100));
  }
  return {
    ready: typeof Reveal !== "undefined" && Reveal.isReady(),
    slides: typeof Reveal !== "undefined" ? Reveal.getTotalSlides() : 0,
    maths: document.querySelectorAll("mjx-container").length,
    leftover: leftover,
    inputs: Array.from(document.querySelectorAll(".jp-InputArea-editor"))
      .map((e) => e.textContent.replace(/\\s+/g, " ").trim()),
    alts: Array.from(document.images).map((img) => img.getAttribute("alt")),
  };
})()
"""


@pytest.fixture(scope="module")
def decks():
    assert find_chromium(), "no chromium: apt-get install chromium (as .ci/run does)"
    written = slides.write_decks(OUT, LECTURES)
    assert [p.name for p in written] == [f"{p.stem}.slides.html" for p in LECTURES]
    found = {}
    with Chromium() as browser:
        for lecture in LECTURES:
            page = browser.open(OUT / f"{lecture.stem}.slides.html")
            found[lecture.stem] = (page, browser.evaluate(DECK_SCRIPT))
    return found


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_the_deck_works_offline(decks, lecture):
    page, deck = decks[lecture.stem]
    assert not page.blocked, f"requests that would leave the machine: {page.blocked}"
    assert not page.failed, page.failed
    assert deck["ready"], "reveal.js did not initialise"
    assert deck["slides"] > 3, deck["slides"]
    assert page.report["mathjax"] == "ready", page.report["mathjax"]
    assert deck["maths"] > 0, "no formula was rendered"
    assert not page.report["errors"], f"MathJax errors: {page.report['errors']}"
    assert not deck["leftover"], f"raw TeX left on slides: {deck['leftover'][:3]}"
    assert not page.broken_images, page.broken_images


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_hidden_code_stays_off_the_slides(decks, lecture):
    _, deck = decks[lecture.stem]
    notebook = nbformat.read(lecture, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    hidden = [c for c in code if HIDDEN & set(c.metadata.get("tags", []))]
    shown = [c for c in code if c not in hidden and c.source.strip()]
    assert hidden, f"{lecture.name} has no hide-input cell to test with"
    assert len(deck["inputs"]) == len(shown), (len(deck["inputs"]), len(shown))

    def words(text: str) -> str:
        return re.sub(r"\s+", " ", text).strip()

    on_slides = set(deck["inputs"])
    for cell in hidden:
        assert words(cell.source) not in on_slides, (
            f"code of a hidden cell shown: {cell.id}"
        )


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_figure_on_a_slide_has_its_text_alternative(decks, lecture):
    _, deck = decks[lecture.stem]
    notebook = nbformat.read(lecture, as_version=4)
    wanted = [
        c.metadata.get("mystnb", {}).get("image", {}).get("alt")
        for c in notebook.cells
        if c.cell_type == "code"
        for _ in range(figures_in(c, lecture))
    ]
    assert deck["alts"] == wanted, (deck["alts"], wanted)
    assert all(deck["alts"]), f"{lecture.name}: a figure without alt text"


def figures_in(cell, lecture) -> int:
    """How many PNG outputs the deck shows for this cell (from the executed lecture)."""
    executed = EXECUTED.setdefault(lecture, slides.executed(lecture))
    match = next(c for c in executed.cells if c.get("id") == cell.get("id"))
    return sum("image/png" in o.get("data", {}) for o in match.get("outputs", []))


EXECUTED: dict = {}


def test_the_decks_carry_their_own_reveal_and_mathjax(decks):
    assert (OUT / "reveal.js" / "dist" / "reveal.js").exists()
    assert (OUT / "mathjax" / "tex-chtml.js").exists()
    html = (OUT / f"{LECTURES[0].stem}.slides.html").read_text(encoding="utf-8")
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    remote = [s for s in sources if re.match(r"(https?:)?//", s)]
    assert not remote, remote


def test_a_deck_of_a_tagged_notebook(tmp_path):
    """The tags work on a notebook made here, whatever the lectures hold."""
    cell = nbformat.v4.new_code_cell("secret_drawing_code = 1\nprint('visible output')")
    cell.metadata["tags"] = ["hide-input"]
    cell.outputs = [nbformat.v4.new_output("stream", text="visible output\n")]
    shown = nbformat.v4.new_code_cell("shown_code = 2")
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Title\n\n$x^2$"), cell, shown]
    )
    html = slides.deck(notebook)
    assert "secret_drawing_code" not in html and "visible output" in html
    figure = nbformat.v4.new_code_cell("plt.plot()")
    figure.metadata["mystnb"] = {"image": {"alt": 'A line "rising" & falling'}}
    figure.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    ]
    notebook.cells.append(figure)
    alts = re.findall(r"<img[^>]*\salt=(\"[^\"]*\"|'[^']*')", slides.deck(notebook))
    assert [unescape(a[1:-1]) for a in alts] == ['A line "rising" & falling']
    assert "shown_code" in html
    assert (slides.reveal_folder() / "dist" / "reveal.js").read_text()[:40].find(
        "5."
    ) > 0
