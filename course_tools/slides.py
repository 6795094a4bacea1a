"""The lectures as reveal.js slide decks that work offline (``make slides``).

Each lecture becomes ``_build/slides/NN_topic.slides.html`` (cuts from each cell's
``slideshow.slide_type``), next to local copies of

- reveal.js 5 from the pinned ``sphinx-revealjs`` wheel (its ``_static/revealjs``), with
  the ``white`` theme, whose fonts ship with it;
- MathJax 3 from the pinned ``sphinx-mathjax-offline`` package, as in the book.

So a deck opened from disk makes no request to the network. A figure carries the text
alternative of its cell, ``mystnb: image: alt`` in the metadata, as in the book. The
``hide-input`` and ``remove-input`` tags drop a cell's code from its slide (the figure
stays), ``remove-output`` its outputs, ``remove-cell`` the whole cell.

Every slide fits the deck (960 x 700 px) with all its fragments shown. ``fit_to_slides``
cuts the deck at build time from an estimate of each cell's height on a slide:

- a markdown cell is cut before each ``##`` heading inside it (a new section starts a
  new slide) and, when it is taller than a slide, between paragraphs, lists, tables and
  formulas (and between the items of a list taller than a slide), the rest going to
  vertical sub-slides;
- a code cell whose code and outputs together are taller than a slide shows its outputs
  on the next sub-slide;
- a cell that would push its slide past the bottom starts a sub-slide of its own.

The deck's style makes code and text outputs smaller (88 columns fit across), drops the
``In [n]:`` prompts, lets a very long code or output box scroll inside its slide, and
draws each figure as wide as the slide allows. What the estimate misses, a script in the
deck scales down (``zoom``) on the slide itself, never below ``MIN_ZOOM``;
``tests/test_slides.py`` measures every slide in Chromium and fails on any that still
overflows.

Slides are numbered (current / total). A markdown cell tagged ``speaker-notes`` becomes
the speaker notes of the slide it follows (press ``s`` in the deck); give it the
``remove-cell`` tag too, so that the book leaves it out. A figure's text alternative,
``mystnb.image.alt`` in its cell's metadata, becomes the ``alt`` of its image.

The outputs come from the notebooks nbval executed in the last test run, when the
jupyter-cache holds the lecture as it is now (``course_tools.executed``); otherwise the
lecture is executed here.

Usage::

    python -m course_tools.slides _build/slides            # every lecture
    python -m course_tools.slides _build/slides lectures/01_queries_keys_values.ipynb
"""

from __future__ import annotations

import argparse
import base64
import copy
import importlib.util
import math
import re
import shutil
import struct
import sys
from pathlib import Path

import nbformat

from course_tools.executed import CACHE

ROOT = Path(__file__).resolve().parents[1]
THEME = "white"  # reveal.js themes such as "simple" load their fonts from the web
WIDTH, HEIGHT = 960, 700  # the deck's size in px; reveal.js scales it to the screen
SPEAKER_NOTES_TAG = "speaker-notes"
MIN_ZOOM = 0.6  # the deck's script never shrinks a slide more than this

# The estimate of a cell's height on a slide (px), from the deck's style below.
BUDGET = 600  # content aimed at per slide: the estimate errs by some lines either way
TEXT_LINE, TEXT_CHARS, BLOCK_GAP = 26, 80, 18  # markdown: 20 px text, ~80 characters
HEADING = {1: 80, 2: 64, 3: 52, 4: 44}
FORMULA_LINE = 48  # one line of display maths
TABLE_ROW = 34
CODE_LINE, CODE_GAP = 19.5, 24  # 15 px code, line height 1.3
CODE_MAX = 560  # a taller code box scrolls (max-height in the style below)
OUTPUT_MAX = 520  # and so does a taller text output
FIGURE_WIDTH, FIGURE_MAX = 900, 560  # figures fill the width, up to this height

TEMPLATE = r"""{%- extends 'reveal/index.html.j2' -%}
{%- block html_head_js_jquery -%}{%- endblock html_head_js_jquery -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<style>
/* Room for 88 columns of code: no "In [n]:" prompts, smaller code and text outputs. */
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt { display: none; }
.reveal { --jp-code-font-size: 15px; }
.reveal pre, .reveal div.highlight > pre, .reveal div.jp-OutputArea-output > pre {
  font-size: 15px; line-height: 1.3; white-space: pre; overflow-x: auto;
  box-sizing: border-box; width: 100%; margin: 0;
}
/* A box taller than a slide scrolls inside the slide instead of running off it. */
.reveal .jp-InputArea pre { max-height: 560px; overflow-y: auto; }
.reveal .jp-OutputArea-output pre { max-height: 520px; overflow-y: auto; }
.reveal .jp-RenderedMarkdown { font-size: 20px; line-height: 26px; }
.reveal .jp-RenderedMarkdown table { font-size: 17px; }
/* Figures as wide as the slide, never taller than it. */
.reveal .jp-RenderedImage img {
  width: auto; height: auto; max-width: 100%; max-height: 560px;
}
.reveal .slide-number { font-size: 14px; }
</style>
<script>
window.MathJax = {
  tex: {
    inlineMath: [["$", "$"], ["\\(", "\\)"]],
    displayMath: [["$$", "$$"], ["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
    tags: "ams",
  },
  // code is in <pre>, which MathJax skips by default
};
</script>
<script defer src="mathjax/tex-chtml.js"></script>
{%- endblock html_head_js_mathjax -%}
{%- block data_png scoped -%}
{%- set alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt") -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- if alt %} alt="{{ alt | escape_html }}"{% endif %}>
</div>
{%- endblock data_png -%}
{% block footer_js %}
<script src="reveal.js/dist/reveal.js"></script>
<script src="reveal.js/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true,
  progress: true,
  history: true,
  transition: "{{reveal_transition}}",
  slideNumber: "{{reveal_number}}",
  plugins: [RevealNotes],
  width: {{reveal_width}},
  height: {{reveal_height}},
});
// Last resort for what the build-time cut missed: shrink a slide that is still taller or
// wider than the deck (measured with its fragments, which keep their place when hidden).
function fitSlide(slide) {
  if (!slide) return;
  slide.style.zoom = "";
  const config = Reveal.getConfig();
  const tall = slide.scrollHeight / (config.height - 8);
  const wide = slide.scrollWidth / config.width;
  const over = Math.max(tall, wide);
  if (over > 1) slide.style.zoom = Math.max({{min_zoom}}, 1 / over).toFixed(3);
}
function fitAll() {
  fitSlide(Reveal.getCurrentSlide());
  Reveal.layout();
}
Reveal.on("ready", () => {
  const maths = window.MathJax && MathJax.startup ? MathJax.startup.promise : null;
  (maths || Promise.resolve()).then(fitAll);
});
Reveal.on("slidechanged", fitAll);
</script>
{% endblock footer_js %}
"""


def reveal_folder() -> Path:
    """reveal.js as shipped in the sphinx-revealjs wheel."""
    import sphinx_revealjs

    return Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"


def mathjax_folder() -> Path:
    """MathJax 3 as shipped in the sphinx-mathjax-offline package."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0]) / "static" / "mathjax"


def executed(path: Path, cache: Path = CACHE) -> nbformat.NotebookNode:
    """The lecture with outputs: from the test run's cache if it is current, else run."""
    notebook = nbformat.read(path, as_version=4)
    if (cache / "global.db").exists():
        from jupyter_cache import get_cache

        try:
            return get_cache(str(cache)).merge_match_into_notebook(notebook)[1]
        except KeyError:
            pass
    from nbclient import NotebookClient

    NotebookClient(
        notebook, timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return notebook


# ----------------------------------------------------------------------------------
# Cutting the deck so that every slide fits
# ----------------------------------------------------------------------------------


def slide_type(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type") or "-"


def set_slide_type(cell: nbformat.NotebookNode, kind: str) -> None:
    cell.metadata.setdefault("slideshow", {})["slide_type"] = kind


def markdown_blocks(source: str) -> list[str]:
    """The blocks of a markdown cell: paragraphs, lists, tables, formulas, code fences.

    Blank lines separate blocks, except inside a ``$$`` formula or a fenced block.
    """
    blocks, current, fenced = [], [], None
    for line in source.split("\n"):
        stripped = line.strip()
        if fenced is None and not stripped:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
        for fence in ("$$", "```", ":::"):
            if stripped.startswith(fence) and fenced in (None, fence):
                once = stripped.count(fence) >= 2 and fence == "$$"
                fenced = None if fenced == fence or once else fence
    if current:
        blocks.append("\n".join(current))
    return blocks


def block_height(block: str) -> float:
    """Estimated px of one markdown block on a slide."""
    lines = block.split("\n")
    heading = re.match(r"^(#{1,6}) ", lines[0])
    if heading:
        level = len(heading.group(1))
        text = lines[0][level + 1 :]
        return HEADING.get(level, 40) * math.ceil(len(text) / 45)
    if lines[0].strip().startswith("$$"):
        rows = max(1, block.count("\\\\") + 1)
        return FORMULA_LINE * rows + BLOCK_GAP
    if lines[0].lstrip().startswith("|"):
        return TABLE_ROW * sum(1 for x in lines if not re.match(r"^\|[-| :]+\|$", x))
    if lines[0].lstrip().startswith(("```", ":::")):
        return CODE_LINE * len(lines) + CODE_GAP
    items = list_items(block)
    wrapped = sum(math.ceil(len(plain(item)) / TEXT_CHARS) for item in items)
    return TEXT_LINE * wrapped + BLOCK_GAP * (1 + 0.25 * (len(items) - 1))


def list_items(block: str) -> list[str]:
    """The items of a list block (one item for any other block)."""
    return re.split(r"\n(?=\s*(?:[-*+]|\d+\.) )", block)


def plain(text: str) -> str:
    """Text roughly as shown: link targets, markup and TeX commands take no room."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"\\[a-zA-Z]+", "x", text)
    return re.sub(r"[*_`${}\\]", "", text)


def figure_height(png: str) -> float:
    """Shown height of a PNG (base64) that fills the slide's width, capped."""
    header = base64.b64decode(png.strip()[:44] + "==")
    if len(header) < 24 or not header.startswith(b"\x89PNG"):
        return FIGURE_MAX  # not a PNG header we can read: assume the tallest
    width, height = struct.unpack(">II", header[16:24])
    return min(height * min(1.0, FIGURE_WIDTH / max(width, 1)), FIGURE_MAX)


def output_height(output: nbformat.NotebookNode) -> float:
    data = output.get("data", {})
    if "image/png" in data:
        return figure_height(data["image/png"]) + 10
    if output.output_type == "stream":
        text = output.get("text", "")
    else:
        text = data.get("text/plain", "") if "text/html" not in data else "x\n" * 12
    return min(CODE_LINE * text.count("\n") + CODE_LINE, OUTPUT_MAX) + CODE_GAP


def code_heights(cell: nbformat.NotebookNode) -> tuple[float, float]:
    """Estimated px of a code cell's input and of its outputs on a slide."""
    tags = set(cell.metadata.get("tags", []))
    shown = cell.source.strip() and not tags & {"hide-input", "remove-input"}
    code = CODE_LINE * (cell.source.count("\n") + 1) + CODE_GAP if shown else 0
    if "remove-output" in tags:
        return min(code, CODE_MAX + CODE_GAP), 0.0
    outputs = sum(output_height(o) for o in cell.get("outputs", []))
    return min(code, CODE_MAX + CODE_GAP), outputs


def cell_height(cell: nbformat.NotebookNode) -> float:
    if cell.cell_type == "markdown":
        return sum(block_height(b) for b in markdown_blocks(cell.source))
    if cell.cell_type == "code":
        return sum(code_heights(cell))
    return 0.0


def _piece(cell: nbformat.NotebookNode, number: int, kind: str, **changes):
    part = copy.deepcopy(cell)
    part.id = f"{cell.get('id', 'cell')}-{number}"
    set_slide_type(part, kind)
    for key, value in changes.items():
        part[key] = value
    return part


def split_markdown(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """A markdown cell as pieces: one per ``##`` section, long ones cut to fit."""
    pieces: list[tuple[str, list[str]]] = []  # (slide type, blocks)
    height = 0.0
    blocks = []
    for block in markdown_blocks(
        cell.source
    ):  # a list taller than a slide, item by item
        too_tall = block_height(block) > BUDGET and len(list_items(block)) > 1
        blocks += list_items(block) if too_tall else [block]
    for block in blocks:
        size = block_height(block)
        if not pieces:
            pieces.append((slide_type(cell), [block]))
        elif re.match(r"^## ", block):
            pieces.append(("slide", [block]))
        elif height + size > BUDGET:
            pieces.append(("subslide", [block]))
        else:
            pieces[-1][1].append(block)
            height += size
            continue
        height = size
    if len(pieces) == 1:
        return [cell]
    return [
        _piece(cell, n, kind, source="\n\n".join(blocks))
        for n, (kind, blocks) in enumerate(pieces)
    ]


def split_code(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """A code cell taller than a slide as its code, then its outputs on a sub-slide."""
    code, outputs = code_heights(cell)
    if not code or not outputs or code + outputs <= BUDGET:
        return [cell]
    tags = list(cell.metadata.get("tags", []))
    first = _piece(cell, 0, slide_type(cell))
    first.metadata["tags"] = [*tags, "remove-output"]
    second = _piece(cell, 1, "subslide")
    second.metadata["tags"] = [*tags, "remove-input"]
    return [first, second]


def fit_to_slides(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` cut so that every slide's estimated height fits, with its
    speaker notes where the deck's template reads them."""
    result = copy.deepcopy(notebook)
    cells = []
    for cell in result.cells:
        tags = cell.metadata.get("tags", [])
        if SPEAKER_NOTES_TAG in tags:
            cell.metadata["tags"] = [t for t in tags if t != "remove-cell"]
            set_slide_type(cell, "notes")
            cells.append(cell)
            continue
        if cell.cell_type == "markdown":
            cells += split_markdown(cell)
        elif cell.cell_type == "code":
            cells += split_code(cell)
        else:
            cells.append(cell)
    height = 0.0
    for cell in cells:
        kind = slide_type(cell)
        if kind in ("skip", "notes") or "remove-cell" in cell.metadata.get("tags", []):
            continue
        size = cell_height(cell)
        if kind in ("slide", "subslide"):
            height = size
        elif height and height + size > BUDGET:
            set_slide_type(cell, "subslide")
            height = size
        else:
            height += size
    result.cells = cells
    return result


def deck(notebook: nbformat.NotebookNode) -> str:
    """The HTML of one deck (expects reveal.js/ and mathjax/ beside it)."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    template = TEMPLATE.replace("{{min_zoom}}", str(MIN_ZOOM))
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"hide-input", "remove-input"}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    config.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    exporter = SlidesExporter(
        config=config,
        extra_loaders=[DictLoader({"course_slides.html.j2": template})],
        template_file="course_slides.html.j2",
        reveal_theme=THEME,
        reveal_url_prefix="reveal.js",
        reveal_number="c/t",
        reveal_width=str(WIDTH),
        reveal_height=str(HEIGHT),
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    body, _ = exporter.from_notebook_node(fit_to_slides(notebook))
    return body


def write_decks(out: Path, lectures: list[Path]) -> list[Path]:
    """Write a deck per lecture into ``out`` with reveal.js and MathJax beside them."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(reveal_folder(), out / "reveal.js", dirs_exist_ok=True)
    shutil.copytree(mathjax_folder(), out / "mathjax", dirs_exist_ok=True)
    written = []
    for path in lectures:
        target = out / f"{path.stem}.slides.html"
        target.write_text(deck(executed(path)), encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The lectures as offline slide decks.")
    parser.add_argument("out", type=Path)
    parser.add_argument("lectures", type=Path, nargs="*")
    args = parser.parse_args(argv)
    lectures = args.lectures or sorted((ROOT / "lectures").glob("*.ipynb"))
    for path in write_decks(args.out, lectures):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
