"""The built book in a real browser (headless Chromium, network blocked).

Every page of the book and of the public book (`make book-public`): no request leaves
the machine, every image loads, MathJax rendered every formula without an error, every
internal link (and its #anchor) resolves, the navigation lists every part of the
toc, and axe-core finds no serious or critical violation of the WCAG 2.1 A and AA rules
(the other violations are printed). Screenshots of a lecture and a lab go to
``_build/screenshots`` for a person to look at, drawn with an emoji font. The books
are built once per test run by ``course_tools.book.build`` (shared with
tests/test_book.py), from the notebooks nbval executed.

Needs Debian's ``chromium`` and ``fonts-noto-color-emoji`` (``.ci/run`` installs both).
"""

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from course_tools import book
from course_tools import browser as browser_tool
from course_tools.browser import Chromium, find_chromium, summarise

pytestmark = pytest.mark.book

SCREENSHOTS = book.BUILD / "screenshots"


def chromium() -> Chromium:
    assert find_chromium(), "no chromium: apt-get install chromium (as .ci/run does)"
    return Chromium()


def visit_every_page(built: book.Build) -> dict:
    assert built.returncode == 0, built.log[-12000:]
    with chromium() as browser:
        pages = {
            entry: browser.open(built.html / f"{entry}.html", audit=True)
            for entry in book.toc_files(built.toc)
        }
        if built.html.parent.parent != book.PUBLIC_BUILD:
            for entry, name in (
                ("lectures/01_queries_keys_values", "lecture_01.png"),
                ("notebooks/01_queries_keys_values", "lab_01.png"),
            ):
                browser.open(built.html / f"{entry}.html")
                browser.screenshot(SCREENSHOTS / name)
    return pages


@pytest.fixture(scope="module")
def full():
    built = book.build()
    return built, visit_every_page(built)


@pytest.fixture(scope="module")
def public():
    built = book.build(public=True)
    return built, visit_every_page(built)


BOOKS = ["full", "public"]


@pytest.fixture(params=BOOKS)
def visited(request):
    return request.getfixturevalue(request.param)


def local_path(url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    return Path(unquote(parts.path)), unquote(parts.fragment)


def ids_in(path: Path, cache: dict) -> set[str]:
    if path not in cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        cache[path] = set(re.findall(r'\bid="([^"]+)"', text))
    return cache[path]


def test_no_request_leaves_the_machine(visited):
    _, pages = visited
    leaving = {e: p.blocked for e, p in pages.items() if p.blocked}
    assert not leaving, leaving
    failed = {e: p.failed for e, p in pages.items() if p.failed}
    assert not failed, failed


def test_every_image_loads(visited):
    _, pages = visited
    broken = {e: p.broken_images for e, p in pages.items() if p.broken_images}
    assert not broken, broken
    for entry, page in pages.items():
        if entry.startswith("lectures/"):
            assert page.report["images"] > 0, f"{entry} shows no image"


def test_mathjax_rendered_every_formula(visited):
    _, pages = visited
    for entry, page in pages.items():
        report = page.report
        assert report["mathjax"] == "ready", f"{entry}: MathJax {report['mathjax']}"
        assert not report["unrendered"], f"{entry}: raw TeX {report['unrendered'][:5]}"
        assert not report["errors"], f"{entry}: MathJax errors {report['errors'][:5]}"
        if entry.startswith(("lectures/", "notebooks/")):
            assert report["formulas"] > 0, f"{entry} has no formula to render"


def test_every_internal_link_resolves(visited):
    built, pages = visited
    root = built.html.resolve()
    ids: dict = {}
    for entry, page in pages.items():
        for url in page.links:
            if not url.startswith("file:"):
                continue
            path, fragment = local_path(url)
            assert path.exists(), f"{entry} links to missing {path}"
            assert root in path.resolve().parents, (
                f"{entry} links outside the book: {url}"
            )
            if fragment and path.suffix == ".html":
                assert fragment in ids_in(path, ids), (
                    f"{entry}: no #{fragment} in {path}"
                )


def test_the_navigation_lists_every_unit(visited):
    built, pages = visited
    captions = [part["caption"] for part in built.toc["parts"]]
    assert any(c.startswith("Unit 01") for c in captions)
    wanted = {(built.html / f"{e}.html").resolve() for e in book.toc_files(built.toc)}
    for entry, page in pages.items():
        assert page.report["nav"] == captions, (
            f"{entry}: navigation {page.report['nav']}"
        )
        linked = {local_path(u)[0].resolve() for u in page.report["nav_links"]}
        linked.add((built.html / f"{entry}.html").resolve())
        assert wanted <= linked, f"{entry}: navigation lacks {sorted(wanted - linked)}"


def test_the_public_book_has_no_solution_page_and_no_link_to_one(public):
    built, pages = public
    assert book.SOLUTIONS_CAPTION not in [p["caption"] for p in built.toc["parts"]]
    assert not (built.html / "solutions").exists(), "solution pages were built"
    for entry, page in pages.items():
        assert not entry.startswith("solutions/")
        to_solutions = [u for u in page.links if "/solutions/" in u]
        assert not to_solutions, f"{entry} links to {to_solutions}"
    for html in built.html.rglob("*.html"):
        hrefs = re.findall(r'href="([^"]*solutions/[^"]*)"', html.read_text("utf-8"))
        assert not hrefs, f"{html} links to {hrefs}"


def test_no_serious_accessibility_violation(visited, capsys):
    """axe-core, WCAG 2.1 A and AA, on every page: serious and critical violations fail,
    the others are printed (and recorded in CONTRIBUTING.md)."""
    _, pages = visited
    blocking = {
        entry: [v.describe() for v in page.violations if v.blocking]
        for entry, page in pages.items()
    }
    blocking = {entry: found for entry, found in blocking.items() if found}
    with capsys.disabled():
        print(f"\naxe-core on {len(pages)} pages (WCAG 2.1 A, AA):\n{summarise(pages)}")
    assert not blocking, "\n".join(
        f"{entry}:\n" + "\n".join(found) for entry, found in blocking.items()
    )


def test_no_serious_accessibility_violation_in_dark_mode(full, capsys):
    """The theme follows a reader's dark system setting. The front page, a lecture and
    a lab are audited in it too (every page would double the time of the audit)."""
    built, _ = full
    pages = {}
    with chromium() as browser:
        for entry in (
            "intro",
            "lectures/02_scoring_functions",
            "notebooks/03_bahdanau_attention",
        ):
            pages[entry] = browser.open(
                built.html / f"{entry}.html", audit=True, color_scheme="dark"
            )
            theme = browser.evaluate("document.documentElement.dataset.theme")
            assert theme == "dark", f"{entry} drawn in the {theme} theme"
    with capsys.disabled():
        print(f"\naxe-core in dark mode on {len(pages)} pages:\n{summarise(pages)}")
    blocking = [
        f"{entry}: {v.describe()}"
        for entry, page in pages.items()
        for v in page.violations
        if v.blocking
    ]
    assert not blocking, "\n".join(blocking)


def test_screenshots_of_a_lecture_and_a_lab(full):
    for name in ("lecture_01.png", "lab_01.png"):
        shot = SCREENSHOTS / name
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 50_000, shot


def test_the_checkers_marks_are_drawn_with_an_emoji_font(full):
    """The screenshots show the ⏳ and ✅ marks as a reader with an emoji font sees them
    (.ci/run installs fonts-noto-color-emoji), not as empty boxes."""
    built, _ = full
    with chromium() as browser:
        for entry, mark in (
            ("notebooks/01_queries_keys_values", "⏳"),
            ("solutions/01_queries_keys_values", "✅"),
        ):
            browser.open(built.html / f"{entry}.html")
            browser.evaluate(MARK_PROBE % json.dumps(mark))
            fonts = browser.fonts_of("[data-mark-probe]")
            assert any("emoji" in font.lower() for font in fonts), (
                f"{entry}: {mark} drawn with {fonts}: apt-get install "
                "fonts-noto-color-emoji (as .ci/run does)"
            )


# Wraps the first occurrence of a mark in an output in its own element, for fonts_of.
MARK_PROBE = """
((mark) => {
  for (const pre of document.querySelectorAll(".cell_output pre")) {
    const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const at = text.data.indexOf(mark);
      if (at < 0) continue;
      const probe = document.createElement("span");
      probe.setAttribute("data-mark-probe", "");
      const rest = text.splitText(at);
      rest.splitText(mark.length);
      rest.replaceWith(probe);
      probe.append(rest);
      return true;
    }
  }
  throw new Error("no " + mark + " in any output");
})(%s)
"""


def test_the_browser_check_sees_requests_and_broken_images(tmp_path):
    """The checks above are not vacuous: a page that reaches out is caught, and so are
    an image without alt text, grey text on white and a link with no name."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        '<html><body><img src="https://example.org/logo.png">'
        '<img src="missing.png"><span class="math">\\(x\\)</span>'
        '<p style="color: #aaa; background: white">faint</p><a href="#top"></a>'
        '<script src="http://cdn.example.org/lib.js"></script></body></html>',
        encoding="utf-8",
    )
    with chromium() as browser:
        page = browser.open(page_file, audit=True)
    impacts = {v.rule: v.impact for v in page.violations}
    assert impacts["image-alt"] == "critical", impacts
    assert impacts["color-contrast"] == impacts["link-name"] == "serious", impacts
    assert "https://example.org/logo.png" in page.blocked, page.blocked
    assert "http://cdn.example.org/lib.js" in page.blocked, page.blocked
    assert any(src.endswith("missing.png") for src in page.broken_images)
    assert page.report["mathjax"] == "absent" and page.report["unrendered"] == [
        "\\(x\\)"
    ]


def test_the_audit_command_lists_violations_by_rule(tmp_path, capsys):
    """`python -m course_tools.browser FOLDER` audits every page and fails on a serious
    or critical violation."""
    (tmp_path / "page.html").write_text(
        '<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
        '<img src="x.png"></main></body></html>',
        encoding="utf-8",
    )
    assert browser_tool.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.startswith("critical image-alt")
    (tmp_path / "page.html").write_text(
        '<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
        '<img src="x.png" alt="a cross"></main></body></html>',
        encoding="utf-8",
    )
    assert browser_tool.main([str(tmp_path), "--color-scheme", "dark"]) == 0
    assert capsys.readouterr().out.strip() == "no violation"
