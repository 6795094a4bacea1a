"""`make slides`: each lecture as a reveal.js deck that works offline, every slide fitting.

Every deck is opened in headless Chromium with the network blocked: reveal.js must have
initialised, MathJax must have rendered the maths without an error, no request may
leave the machine, and no code of a ``hide-input``/``remove-input`` cell may be on a
slide (its figure is). Every slide is shown, with all its fragments, and measured: it
must fit the deck's size (a code box that scrolls inside it counts as fitting). The
slides are numbered, every figure has its text alternative, and speaker notes stay off
the slides. Marked ``book``: `make test` runs it after nbval, so the decks take their
outputs from that run (course_tools.executed) instead of executing again; the tests of
``fit_to_slides`` on notebooks made here need no browser.
"""

import re
from html import unescape

import nbformat
import pytest

from conftest import ROOT
from course_tools import slides
from course_tools.browser import Chromium, find_chromium

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


# Shows every slide in turn, with all fragments, and measures it in the deck's own px
# (the deck is scaled to the window): its height, and how far right anything reaches that
# is not inside a box that scrolls.
MEASURE_SCRIPT = """
(async () => {
  const config = Reveal.getConfig();
  const scrolls = (e) => /(auto|scroll)/.test(getComputedStyle(e).overflowX);
  const slides = [];
  const horizontal = Reveal.getHorizontalSlides();
  for (let h = 0; h < horizontal.length; h++) {
    const stack = horizontal[h].querySelectorAll(":scope > section");
    const list = stack.length ? Array.from(stack) : [horizontal[h]];
    for (let v = 0; v < list.length; v++) {
      const slide = list[v];
      Reveal.slide(h, v);
      await new Promise((done) => setTimeout(done, 20));
      slide.querySelectorAll(".fragment").forEach((f) => f.classList.add("visible"));
      const scale = Reveal.getScale();
      const box = slide.getBoundingClientRect();
      let right = 0;
      for (const element of slide.querySelectorAll("*")) {
        let parent = element.parentElement, scrolled = false;
        while (parent && parent !== slide) {
          if (scrolls(parent)) { scrolled = true; break; }
          parent = parent.parentElement;
        }
        const rect = element.getBoundingClientRect();
        if (!scrolled && rect.width > 0) right = Math.max(right, rect.right - box.left);
      }
      slides.push({
        at: "#/" + h + "/" + v,
        height: Math.round(box.height / scale),
        right: Math.round(right / scale),
        zoom: slide.style.zoom || "1",
        text: slide.textContent.replace(/\\s+/g, " ").trim().slice(0, 60),
      });
    }
  }
  const number = document.querySelector(".slide-number");
  return {
    width: config.width,
    height: config.height,
    slideNumber: config.slideNumber,
    numberShown: !!number && getComputedStyle(number).display !== "none"
      && number.textContent.trim().length > 0,
    slides: slides,
    images: Array.from(document.querySelectorAll("section img"))
      .map((img) => img.getAttribute("alt") || ""),
    notesOnSlides: Array.from(document.querySelectorAll("aside.notes"))
      .filter((n) => n.offsetHeight > 0).length,
    notes: document.querySelectorAll("aside.notes").length,
  };
})()
"""
MARGIN = 4  # px


@pytest.fixture(scope="module")
def decks():
    assert find_chromium(), "no chromium: apt-get install chromium (as .ci/run does)"
    written = slides.write_decks(OUT, LECTURES)
    assert [p.name for p in written] == [f"{p.stem}.slides.html" for p in LECTURES]
    found = {}
    with Chromium() as browser:
        for lecture in LECTURES:
            page = browser.open(OUT / f"{lecture.stem}.slides.html")
            found[lecture.stem] = (
                page,
                browser.evaluate(DECK_SCRIPT),
                browser.evaluate(MEASURE_SCRIPT),
            )
    return found


@pytest.mark.book
@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_the_deck_works_offline(decks, lecture):
    page, deck, _ = decks[lecture.stem]
    assert not page.blocked, f"requests that would leave the machine: {page.blocked}"
    assert not page.failed, page.failed
    assert deck["ready"], "reveal.js did not initialise"
    assert deck["slides"] > 3, deck["slides"]
    assert page.report["mathjax"] == "ready", page.report["mathjax"]
    assert deck["maths"] > 0, "no formula was rendered"
    assert not page.report["errors"], f"MathJax errors: {page.report['errors']}"
    assert not deck["leftover"], f"raw TeX left on slides: {deck['leftover'][:3]}"
    assert not page.broken_images, page.broken_images


@pytest.mark.book
@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_hidden_code_stays_off_the_slides(decks, lecture):
    _, deck, _ = decks[lecture.stem]
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


@pytest.mark.book
@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_slide_fits_the_deck_with_all_fragments_shown(decks, lecture):
    _, _, measured = decks[lecture.stem]
    width, height = measured["width"], measured["height"]
    assert (width, height) == (slides.WIDTH, slides.HEIGHT)
    too_big = [
        s
        for s in measured["slides"]
        if s["height"] > height + MARGIN or s["right"] > width + MARGIN
    ]
    assert not too_big, f"slides larger than {width} x {height}: {too_big}"
    shrunk = [s for s in measured["slides"] if float(s["zoom"]) < 1]
    assert all(float(s["zoom"]) >= slides.MIN_ZOOM for s in shrunk), shrunk
    assert len(shrunk) <= max(2, len(measured["slides"]) // 10), (
        f"the deck's script had to shrink {len(shrunk)} slides: cut them at build time"
    )


@pytest.mark.book
@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_slides_are_numbered_figures_described_and_notes_kept_off(decks, lecture):
    _, _, measured = decks[lecture.stem]
    assert measured["slideNumber"] == "c/t" and measured["numberShown"]
    assert measured["images"], "no figure on any slide"
    notebook = nbformat.read(lecture, as_version=4)
    described = {
        c.metadata["mystnb"]["image"]["alt"]
        for c in notebook.cells
        if c.metadata.get("mystnb", {}).get("image", {}).get("alt")
    }
    missing = described - set(measured["images"])
    assert not missing, f"text alternatives not on their images: {sorted(missing)[:3]}"
    assert measured["notesOnSlides"] == 0
    tagged = [
        c
        for c in notebook.cells
        if slides.SPEAKER_NOTES_TAG in c.metadata.get("tags", [])
    ]
    assert measured["notes"] == len(tagged)


@pytest.mark.book
@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_figure_on_a_slide_has_its_text_alternative(decks, lecture):
    _, deck, _ = decks[lecture.stem]
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


@pytest.mark.book
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


def figure_png(width: int, height: int) -> str:
    """A base64 PNG header of the given size (enough for the height estimate)."""
    import base64
    import struct

    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR"
    return base64.b64encode(
        header + struct.pack(">II", width, height) + b"\0" * 8
    ).decode()


def cell_kinds(notebook):
    return [
        (c.cell_type, c.metadata.get("slideshow", {}).get("slide_type"))
        for c in notebook.cells
    ]


def test_a_long_markdown_cell_is_cut_into_sub_slides_and_sections_start_slides():
    paragraphs = [f"Paragraph {i}. " + "word " * 120 for i in range(8)]
    text = "\n\n".join(paragraphs[:4] + ["## 2. The next section"] + paragraphs[4:])
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["slideshow"] = {"slide_type": "slide"}
    fitted = slides.fit_to_slides(nbformat.v4.new_notebook(cells=[cell]))
    kinds = [k for _, k in cell_kinds(fitted)]
    assert kinds[0] == "slide" and "subslide" in kinds and kinds.count("slide") == 2
    section = next(c for c in fitted.cells if c.source.startswith("## 2."))
    assert section.metadata["slideshow"]["slide_type"] == "slide"
    joined = "\n\n".join(c.source for c in fitted.cells)
    assert all(p in joined for p in paragraphs), "text was lost in the cut"
    assert all(slides.cell_height(c) <= slides.BUDGET for c in fitted.cells)
    assert len({c.id for c in fitted.cells}) == len(fitted.cells)


def test_a_formula_is_never_cut_in_the_middle():
    formula = "$$\nA = B\n\nC = D\n$$"
    assert slides.markdown_blocks(f"Before.\n\n{formula}\n\nAfter.") == [
        "Before.",
        formula,
        "After.",
    ]


def test_a_tall_code_cell_shows_its_figure_on_the_next_sub_slide():
    cell = nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(20)))
    cell.metadata["slideshow"] = {"slide_type": "-"}
    cell.metadata["mystnb"] = {"image": {"alt": "A curve that rises, then levels off."}}
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"image/png": figure_png(1000, 500)}
        )
    ]
    before = nbformat.v4.new_markdown_cell("Short text.")
    before.metadata["slideshow"] = {"slide_type": "slide"}
    fitted = slides.fit_to_slides(nbformat.v4.new_notebook(cells=[before, cell]))
    code, figure = fitted.cells[1:]
    assert "remove-output" in code.metadata["tags"]
    assert "remove-input" in figure.metadata["tags"]
    assert figure.metadata["slideshow"]["slide_type"] == "subslide"
    html = slides.deck(nbformat.v4.new_notebook(cells=[before, cell]))
    assert 'alt="A curve that rises, then levels off."' in html
    assert html.count(">x19<") == 1  # the code once, on the first of the two


def test_cells_that_would_overflow_a_slide_start_a_sub_slide():
    cells = []
    for i in range(6):
        cell = nbformat.v4.new_code_cell("\n".join(f"y{i}_{k} = {k}" for k in range(8)))
        cell.metadata["slideshow"] = {"slide_type": "slide" if i == 0 else "fragment"}
        cells.append(cell)
    fitted = slides.fit_to_slides(nbformat.v4.new_notebook(cells=cells))
    kinds = [k for _, k in cell_kinds(fitted)]
    assert kinds[0] == "slide" and "subslide" in kinds and "fragment" in kinds
    height = 0.0
    for cell, kind in zip(fitted.cells, kinds, strict=True):
        height = slides.cell_height(cell) + (
            0 if kind in ("slide", "subslide") else height
        )
        assert height <= slides.BUDGET


def test_speaker_notes_come_from_tagged_cells_and_stay_off_the_slide():
    note = nbformat.v4.new_markdown_cell("Ask the room what sigma -> 0 gives.")
    note.metadata["tags"] = [slides.SPEAKER_NOTES_TAG, "remove-cell"]
    note.metadata["slideshow"] = {"slide_type": "notes"}
    shown = nbformat.v4.new_markdown_cell("# A slide")
    shown.metadata["slideshow"] = {"slide_type": "slide"}
    html = slides.deck(nbformat.v4.new_notebook(cells=[shown, note]))
    notes = re.findall(r'<aside class="notes">(.*?)</aside>', html, flags=re.DOTALL)
    assert len(notes) == 1 and "Ask the room" in notes[0]
    assert html.count("Ask the room") == 1
    assert 'slideNumber: "c/t"' in html


@pytest.mark.parametrize("lecture", LECTURES, ids=[p.stem for p in LECTURES])
def test_speaker_notes_in_the_lectures_are_left_out_of_the_book(lecture):
    for cell in nbformat.read(lecture, as_version=4).cells:
        if slides.SPEAKER_NOTES_TAG in cell.metadata.get("tags", []):
            assert cell.cell_type == "markdown", cell.id
            assert "remove-cell" in cell.metadata["tags"], cell.id
            assert cell.metadata["slideshow"]["slide_type"] == "notes", cell.id


def test_the_first_five_lectures_show_speaker_notes():
    for lecture in LECTURES[:5]:
        tags = [c.metadata.get("tags", []) for c in nbformat.read(lecture, 4).cells]
        assert sum(slides.SPEAKER_NOTES_TAG in t for t in tags) >= 2, lecture.name


def test_a_list_taller_than_a_slide_is_cut_between_its_items():
    references = "\n".join(
        f"- Author {i}, A. (2020). " + "Title words " * 30 for i in range(12)
    )
    cell = nbformat.v4.new_markdown_cell("## References\n\n" + references)
    cell.metadata["slideshow"] = {"slide_type": "subslide"}
    fitted = slides.fit_to_slides(nbformat.v4.new_notebook(cells=[cell]))
    assert len(fitted.cells) > 1
    assert all(slides.cell_height(c) <= slides.BUDGET for c in fitted.cells)
    assert all(
        f"Author {i}," in "".join(c.source for c in fitted.cells) for i in range(12)
    )
