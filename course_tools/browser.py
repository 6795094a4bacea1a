"""Look at built pages in headless Chromium, offline, and report what a reader would see.

The book's and the slides' browser tests (``tests/test_browser.py``,
``tests/test_slides.py``) use this. It starts Debian's ``chromium`` with a fresh profile,
talks to it over the Chrome DevTools Protocol (a websocket on localhost), and fails
every request that would leave the machine: only ``file:``, ``data:``, ``blob:`` and
``about:`` URLs load. For each page it records those blocked requests, the images that
did not load, and the state of MathJax. With ``audit=True`` it also runs axe-core, the
accessibility engine that ships in the pinned ``axe-core-python`` package, with the
WCAG 2.1 A and AA rules, once MathJax has finished (no Node.js, nothing downloaded).

Usage::

    with Chromium() as browser:
        page = browser.open(Path("_build/html/intro.html"), audit=True)
        page.blocked, page.broken_images, page.maths, page.links, page.violations

    python -m course_tools.browser _build/html     # the audit of a built book, by rule
"""

from __future__ import annotations

import argparse
import base64
import collections
import importlib.resources
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket  # the websocket-client package

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:", "devtools:")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--mute-audio",
    "--allow-file-access-from-files",  # MathJax loads its fonts and parts with fetch
    "--host-resolver-rules=MAP * ~NOTFOUND",  # and no name resolves, should one slip out
    "--remote-debugging-port=0",
    "--window-size=1300,1000",
]

# Runs in the page once it has loaded: waits for MathJax, then reports what was drawn.
REPORT_SCRIPT = """
(async () => {
  const images = Array.from(document.images);
  const broken = [];
  await Promise.all(images.map(async (img) => {
    img.loading = "eager";
    try { await img.decode(); } catch (e) { broken.push(img.currentSrc || img.src); }
    if (img.naturalWidth === 0 && !broken.includes(img.src)) broken.push(img.src);
  }));
  let mathjax = "absent";
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; mathjax = "ready"; }
    catch (e) { mathjax = "failed: " + e; }
  }
  const formulas = Array.from(document.querySelectorAll(".math"));
  const unrendered = formulas
    .filter((m) => !m.querySelector("mjx-container") && !m.closest("mjx-container"))
    .map((m) => m.textContent.trim().slice(0, 80));
  const errors = Array.from(
    document.querySelectorAll("mjx-merror, [data-mjx-error]")
  ).map((e) => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 120));
  const links = Array.from(document.querySelectorAll("a[href]")).map((a) => a.href);
  return {
    title: document.title,
    images: images.length,
    broken: broken,
    mathjax: mathjax,
    formulas: formulas.length,
    rendered: document.querySelectorAll("mjx-container").length,
    unrendered: unrendered,
    errors: errors,
    links: links,
    nav: Array.from(document.querySelectorAll("nav.bd-links p.caption, "
      + "nav.bd-docs-nav p.caption")).map((p) => p.textContent.trim()),
    nav_links: Array.from(document.querySelectorAll("nav.bd-docs-nav a[href]"))
      .map((a) => a.href),
  };
})()
"""


# The WCAG 2.0 and 2.1 success criteria of levels A and AA, as axe-core tags its rules.
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
# Runs after REPORT_SCRIPT (so after MathJax) once axe-core is loaded into the page.
AUDIT_SCRIPT = """
(async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: %s},
    resultTypes: ["violations"],
  });
  return result.violations.map((rule) => ({
    rule: rule.id,
    impact: rule.impact,
    help: rule.help,
    nodes: rule.nodes.map((node) => ({
      target: node.target.join(" "),
      html: node.html.slice(0, 160),
      summary: (node.failureSummary || "").slice(0, 300),
    })),
  }));
})()
"""


SETTLE_COLOURS_SCRIPT = """
(() => {
  const style = document.createElement("style");
  style.textContent =
    "*, *::before, *::after { transition: none !important; animation: none !important; }";
  document.head.appendChild(style);
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
})()
"""


def axe_script() -> str:
    """axe-core's script, as shipped in the pinned axe-core-python wheel."""
    return (importlib.resources.files("axe_core_python") / "axe.min.js").read_text(
        encoding="utf-8"
    )


@dataclass(frozen=True)
class Violation:
    """One axe-core rule that failed on a page, with the elements that fail it."""

    rule: str
    impact: str  # "minor", "moderate", "serious" or "critical"
    help: str
    nodes: tuple[dict, ...]

    @property
    def blocking(self) -> bool:
        """Serious and critical violations fail the tests; the others are reported."""
        return self.impact in ("serious", "critical")

    def describe(self, examples: int = 3) -> str:
        lines = [f"{self.impact} {self.rule} ({len(self.nodes)}x): {self.help}"]
        for node in self.nodes[:examples]:
            lines.append(f"    {node['target']}: {node['html']}")
        return "\n".join(lines)


class BrowserError(RuntimeError):
    """Chromium did not start, or did not answer."""


@dataclass
class Page:
    """What one page showed: see ``REPORT_SCRIPT`` for the fields of ``report``."""

    url: str
    report: dict[str, Any]
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    violations: list[Violation] | None = None  # None: not audited

    @property
    def broken_images(self) -> list[str]:
        return self.report["broken"]

    @property
    def links(self) -> list[str]:
        return self.report["links"]


def find_chromium() -> str | None:
    """The path of Debian's chromium (or a Chrome), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """A headless Chromium that loads only local files. Use as a context manager."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no chromium found (apt-get install chromium)")
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._events: list[dict] = []
        self._responses: dict[int, dict] = {}
        self._session: str | None = None
        self._blocked: list[str] = []
        self._failed: list[str] = []
        self._console: list[str] = []

    # -- start and stop ---------------------------------------------------------------
    def __enter__(self) -> Chromium:
        # Chromium may still write to its profile while it shuts down: clean up loosely.
        self._profile = tempfile.TemporaryDirectory(
            prefix="chromium-profile-", ignore_cleanup_errors=True
        )
        self._process = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = self._devtools_url()
        self._socket = websocket.create_connection(url, timeout=self.timeout)
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call(
            "Target.attachToTarget", targetId=target, flatten=True
        )["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self._call(f"{domain}.enable")
        self._call("Fetch.enable", patterns=[{"urlPattern": "*"}])
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._socket.close()
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            for _ in range(10):
                shutil.rmtree(self._profile.name, ignore_errors=True)
                if not Path(self._profile.name).exists():
                    break
                time.sleep(0.2)
            self._profile.cleanup()

    def _devtools_url(self) -> str:
        deadline = time.monotonic() + self.timeout
        assert self._process.stderr is not None
        lines = []
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            if not line:
                if self._process.poll() is not None:
                    break
                continue
            lines.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
        raise BrowserError("chromium did not start:\n" + "".join(lines[-20:]))

    # -- the protocol -----------------------------------------------------------------
    def _send(self, method: str, session: bool = True, **params: Any) -> int:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session and self._session is not None:
            message["sessionId"] = self._session
        self._socket.send(json.dumps(message))
        return number

    def _call(self, method: str, **params: Any) -> dict:
        number = self._send(method, **params)
        deadline = time.monotonic() + self.timeout
        while number not in self._responses:
            if time.monotonic() > deadline:
                raise BrowserError(f"no answer to {method}")
            self._receive()
        answer = self._responses.pop(number)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def _receive(self) -> None:
        message = json.loads(self._socket.recv())
        if "id" in message:
            self._responses[message["id"]] = message
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Fetch.requestPaused":
            url = params["request"]["url"]
            if url.startswith(LOCAL_SCHEMES):
                self._send("Fetch.continueRequest", requestId=params["requestId"])
            else:
                self._blocked.append(url)
                self._send(
                    "Fetch.failRequest",
                    requestId=params["requestId"],
                    errorReason="BlockedByClient",
                )
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(LOCAL_SCHEMES) and url not in self._blocked:
                self._blocked.append(url)
        elif method == "Network.loadingFailed":
            if params.get("errorText") != "net::ERR_BLOCKED_BY_CLIENT":
                self._failed.append(f"{params.get('type')}: {params.get('errorText')}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get(
                "text"
            )
            self._console.append(str(text)[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            self._console.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in args)[
                    :300
                ]
            )
        self._events.append(message)

    def _wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    del self._events[: index + 1]
                    return event.get("params", {})
            self._events.clear()
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {method}")
            self._receive()

    # -- what the tests use -------------------------------------------------------------
    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self._call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(
        self,
        path: Path | str,
        settle: float = 0.0,
        audit: bool = False,
        color_scheme: str = "light",
    ) -> Page:
        """Load a page, wait for it and MathJax, and report what it showed; with
        ``audit``, run axe-core's WCAG 2.1 A and AA rules on it too. ``color_scheme``
        ("light" or "dark") is the reader's system setting, which the book's theme
        follows."""
        url = path if isinstance(path, str) else Path(path).resolve().as_uri()
        self._call(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": color_scheme}],
        )
        self._blocked, self._failed, self._console = [], [], []
        self._events.clear()
        self._call("Page.navigate", url=url)
        self._wait_for("Page.loadEventFired")
        if settle:
            end = time.monotonic() + settle
            while time.monotonic() < end:
                self.evaluate("new Promise((r) => setTimeout(r, 100))")
        report = self.evaluate(REPORT_SCRIPT)  # waits for MathJax
        page = Page(
            url, report, list(self._blocked), list(self._failed), list(self._console)
        )
        if audit:
            page.violations = self.audit()
        return page

    def audit(self, tags: tuple[str, ...] = WCAG_21_AA) -> list[Violation]:
        """axe-core's violations of the rules with these tags on the page now open."""
        if not self.evaluate("typeof window.axe !== 'undefined'"):
            self.evaluate(axe_script() + "\n;true")
        # The theme fades colours in over 0.15 s (CSS transitions) after it switches to
        # the reader's colour scheme; axe must judge the colours a reader sees once they
        # have settled, not a frame halfway through the fade.
        self.evaluate(SETTLE_COLOURS_SCRIPT)
        # A window as tall as a long page, so that the contrast of the sidebar's links
        # (scrolled out of a 1000 px window) can be checked too.
        self._call(
            "Emulation.setDeviceMetricsOverride",
            width=1300,
            height=4000,
            deviceScaleFactor=1,
            mobile=False,
        )
        try:
            found = self.evaluate(AUDIT_SCRIPT % json.dumps(list(tags)))
        finally:
            self._call("Emulation.clearDeviceMetricsOverride")
        return [
            Violation(v["rule"], v["impact"] or "minor", v["help"], tuple(v["nodes"]))
            for v in found
        ]

    def fonts_of(self, selector: str) -> list[str]:
        """The fonts Chromium drew the text of the first element matching ``selector``
        with (the platform's font names, such as "Noto Color Emoji")."""
        self._call("DOM.enable")
        self._call("CSS.enable")
        root = self._call("DOM.getDocument", depth=0)["root"]["nodeId"]
        node = self._call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        fonts = self._call("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]
        return [font["familyName"] for font in fonts]

    def screenshot(self, out: Path, full_page: bool = True) -> Path:
        """A PNG of the page now open (the whole page, up to 8000 px high)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = self.evaluate("document.documentElement.scrollHeight")
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": 1300,
                "height": min(int(height), 8000),
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        data = self._call("Page.captureScreenshot", **params)["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out


def summarise(pages: dict[str, Page]) -> str:
    """The audit of many pages as text: each rule once, with its impact, how many
    elements fail it, and on which pages."""
    where: dict[tuple[str, str, str], list[str]] = collections.defaultdict(list)
    count: collections.Counter = collections.Counter()
    for name, page in pages.items():
        for violation in page.violations or []:
            key = (violation.impact, violation.rule, violation.help)
            where[key].append(name)
            count[key] += len(violation.nodes)
    order = ["critical", "serious", "moderate", "minor"]
    lines = []
    for key in sorted(where, key=lambda k: (order.index(k[0]), k[1])):
        impact, rule, help_ = key
        names = where[key]
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        lines.append(
            f"{impact:8} {rule:28} {count[key]:4} elements on {len(names):2} pages "
            f"({help_}): {shown}"
        )
    return "\n".join(lines) or "no violation"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Audit every page of a built book with axe-core (WCAG 2.1 A, AA)."
    )
    parser.add_argument("html", type=Path, help="the book's HTML folder")
    parser.add_argument("--color-scheme", choices=("light", "dark"), default="light")
    args = parser.parse_args(argv)
    files = sorted(args.html.rglob("*.html"))
    files = [f for f in files if not f.relative_to(args.html).parts[0].startswith("_")]
    with Chromium() as browser:
        pages = {
            str(f.relative_to(args.html)): browser.open(
                f, audit=True, color_scheme=args.color_scheme
            )
            for f in files
        }
    print(summarise(pages))
    blocking = sum(v.blocking for p in pages.values() for v in p.violations or [])
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
