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

The outputs come from the notebooks nbval executed in the last test run, when the
jupyter-cache holds the lecture as it is now (``course_tools.executed``); otherwise the
lecture is executed here.

Usage::

    python -m course_tools.slides _build/slides            # every lecture
    python -m course_tools.slides _build/slides lectures/01_queries_keys_values.ipynb
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from pathlib import Path

import nbformat

from course_tools.executed import CACHE

ROOT = Path(__file__).resolve().parents[1]
THEME = "white"  # reveal.js themes such as "simple" load their fonts from the web

TEMPLATE = r"""{%- extends 'reveal/index.html.j2' -%}
{%- block html_head_js_jquery -%}{%- endblock html_head_js_jquery -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
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


def deck(notebook: nbformat.NotebookNode) -> str:
    """The HTML of one deck (expects reveal.js/ and mathjax/ beside it)."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {"hide-input", "remove-input"}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    config.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    exporter = SlidesExporter(
        config=config,
        extra_loaders=[DictLoader({"course_slides.html.j2": TEMPLATE})],
        template_file="course_slides.html.j2",
        reveal_theme=THEME,
        reveal_url_prefix="reveal.js",
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    body, _ = exporter.from_notebook_node(notebook)
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
