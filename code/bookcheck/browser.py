"""Checks of the site in a real browser: Debian's Chromium driven by Playwright.

The site is served from 127.0.0.1 by a throw-away HTTP server. Every request
the pages make is watched: one that would leave the machine is blocked and
reported, one the server cannot answer (a 404) is reported. No browser is
downloaded: Playwright drives /usr/bin/chromium.

One visit of a page (``Site.visit``) records everything the gates need, so a
book of a dozen chapters is checked with one page load each:

- console errors and uncaught exceptions;
- requests to other hosts, failed requests, responses >= 400;
- math: how many of Sphinx's math elements (``.math``) hold MathJax output,
  MathJax's errors (``mjx-merror``, undefined macros), and TeX left as text;
- a full-page screenshot (optional), taken before anything is clicked;
- the download menu (sphinx-book-theme's ``.dropdown-download-buttons``),
  opened with a click: the entries a reader sees, with their links;
- every solution (sphinx-exercise ``.solution``): hidden before a click on
  its toggle, shown after it;
- accessibility: axe-core (shipped by the PyPI package
  ``axe-playwright-python``) runs its WCAG 2.1 A and AA rules on the page as
  loaded; a violation of impact "serious" or "critical" is a problem.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Text that must not survive typesetting: MathJax replaces the delimiters.
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{", "\\frac")
TIMEOUT_MS = 20_000
#: axe-core's rule tags for WCAG 2.0 and 2.1, levels A and AA
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
#: the impacts that fail the gate ("minor" and "moderate" are reported only)
AXE_FAILING = ("serious", "critical")


@dataclass(frozen=True)
class Violation:
    """One axe-core rule a page breaks, with the first element at fault."""

    rule: str
    impact: str
    help: str
    nodes: int
    target: str

    def __str__(self) -> str:
        return (f"{self.impact} {self.rule} ({self.help}) on {self.nodes} "
                f"element(s), e.g. {self.target}")


def axe_violations(page) -> list[Violation]:
    """Run axe-core's WCAG 2.1 A/AA rules on a loaded Playwright page."""
    from axe_playwright_python.sync_playwright import Axe

    # preload: False, or axe-core fetches every stylesheet again to build a
    # CSSOM (for rules outside these tags) and resolves a sheet's @import
    # against the page, not the sheet: 404s for the theme's "../basic.css"
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS},
               "resultTypes": ["violations"], "preload": False}
    response = Axe().run(page, options=options).response
    out = []
    for v in response.get("violations", []):
        nodes = v.get("nodes") or [{}]
        target = " ".join(map(str, nodes[0].get("target", [])))
        out.append(Violation(v["id"], v.get("impact") or "", v.get("help", ""),
                             len(v.get("nodes") or []), target))
    return out


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        raise RuntimeError(
            "Chromium is not installed; install it with: apt-get install chromium"
        )
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output readable
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Solution:
    """A solution box and what a click on its toggle did."""

    id: str
    hidden_before: bool
    shown_after: bool


@dataclass
class PageReport:
    page: str
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    math_elements: int = 0  # Sphinx's math markup (.math) in the page
    math_typeset: int = 0  # of those, how many hold MathJax output
    math_errors: list[str] = field(default_factory=list)  # MathJax error boxes
    downloads: list[tuple[str, str]] = field(default_factory=list)  # (text, href)
    solutions: list[Solution] = field(default_factory=list)
    accessibility: list[Violation] = field(default_factory=list)  # axe-core
    screenshot: Path | None = None

    def problems(self) -> list[str]:
        p = self.page
        out = [f"{p}: console error: {e}" for e in self.console_errors]
        out += [f"{p}: request leaves the machine: {u}" for u in self.external_requests]
        out += [f"{p}: request failed: {u}" for u in self.failed_requests]
        out += [f"{p}: raw TeX left after typesetting: {t!r}" for t in self.raw_tex]
        if self.math_typeset < self.math_elements:
            out.append(
                f"{p}: {self.math_elements - self.math_typeset} of "
                f"{self.math_elements} math element(s) not typeset by MathJax"
            )
        out += [f"{p}: MathJax error: {e}" for e in self.math_errors]
        out += [f"{p}: accessibility: {v}" for v in self.accessibility
                if v.impact in AXE_FAILING]
        for s in self.solutions:
            if not s.hidden_before:
                out.append(f"{p}: solution {s.id!r} is shown before any click")
            elif not s.shown_after:
                out.append(f"{p}: solution {s.id!r} stays hidden after a click")
        return out


_WAIT_FOR_MATHJAX = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
}"""

_MATH_STATE = """() => {
    const maths = Array.from(document.querySelectorAll('.math'));
    return {
        elements: maths.length,
        typeset: maths.filter(m => m.querySelector('mjx-container')).length,
        // TeX errors become <merror>; an undefined macro (MathJax's
        // noundefined extension) is set as red text holding its name.
        errors: Array.from(document.querySelectorAll('mjx-merror'))
                     .map(e => e.getAttribute('data-mjx-error') || e.textContent)
                .concat(Array.from(document.querySelectorAll(
                            'mjx-assistive-mml mtext[mathcolor="red"]'))
                     .filter(e => e.textContent.startsWith(String.fromCharCode(92)))
                     .map(e => 'undefined macro ' + e.textContent)),
    };
}"""

_TEXT_WITHOUT_CODE = """() => {
    const root = document.querySelector('article.bd-article')
              || document.querySelector('main') || document.body;
    const clone = root.cloneNode(true);
    clone.querySelectorAll('pre, code, script, style, mjx-assistive-mml')
         .forEach(el => el.remove());
    return clone.innerText;
}"""


class Site:
    """A served site and one browser page that visits it.

    ``with Site(html_dir) as site: report = site.visit("book/cafes.html")``
    """

    def __init__(self, html_dir: Path, viewport=(1280, 900)):
        self.html_dir = Path(html_dir)
        self.viewport = viewport
        self._stack = contextlib.ExitStack()
        self._report: PageReport | None = None

    # -- set-up ---------------------------------------------------------------
    def __enter__(self) -> Site:
        from playwright.sync_api import sync_playwright

        try:
            self.base = self._stack.enter_context(serve(self.html_dir))
            self.host = urlsplit(self.base).netloc
            pw = self._stack.enter_context(sync_playwright())
            self._browser = pw.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS
            )
            self._stack.callback(self._browser.close)
            self._context = None
            self._fresh_page()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _fresh_page(self) -> None:
        """A new browser context (no cookies, storage or cache) and page.

        Each page is checked as a first-time reader sees it: some theme code
        only runs (and only fails) when local storage is still empty.
        """
        if self._context is not None:
            self._context.close()
        width, height = self.viewport
        self._context = self._browser.new_context(
            viewport={"width": width, "height": height}
        )
        self._context.route("**/*", self._on_route)
        self.page = self._context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_pageerror)
        self.page.on("requestfailed", self._on_failed)
        self.page.on("response", self._on_response)

    # -- what the page does ---------------------------------------------------
    def _local(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            parts.scheme not in ("http", "https", "ws", "wss")
            or parts.netloc == self.host
        )

    def _on_route(self, route) -> None:
        url = route.request.url
        if not self._local(url):
            if self._report is not None and url not in self._report.external_requests:
                self._report.external_requests.append(url)
            route.abort()
        else:
            route.continue_()

    def _on_console(self, msg) -> None:
        if msg.type == "error" and self._report is not None:
            self._report.console_errors.append(msg.text)

    def _on_pageerror(self, exc) -> None:
        if self._report is not None:
            self._report.console_errors.append(f"uncaught: {exc}")

    def _on_failed(self, request) -> None:
        # requests to other hosts are aborted on purpose and reported already
        if self._report is not None and self._local(request.url):
            self._report.failed_requests.append(f"{request.url} ({request.failure})")

    def _on_response(self, response) -> None:
        if self._report is not None and response.status >= 400:
            self._report.failed_requests.append(
                f"{response.url} (status {response.status})"
            )

    # -- visits ---------------------------------------------------------------
    def url(self, rel: str) -> str:
        return self.base + quote(rel, safe="/?=&#%")

    def visit(
        self, rel: str, screenshot: Path | None = None, interact: bool = True,
        accessibility: bool = True,
    ) -> PageReport:
        """Load one page (path relative to the site), check it, report."""
        report = PageReport(rel)
        self._fresh_page()
        self._report = report
        try:
            response = self.page.goto(self.url(rel), wait_until="networkidle")
            if response is None:
                report.failed_requests.append(f"{self.url(rel)} (no response)")
            self.page.evaluate(_WAIT_FOR_MATHJAX)
            math = self.page.evaluate(_MATH_STATE)
            report.math_elements = math["elements"]
            report.math_typeset = math["typeset"]
            report.math_errors = math["errors"]
            text = self.page.evaluate(_TEXT_WITHOUT_CODE)
            report.raw_tex = [t for t in RAW_TEX if t in text]
            if accessibility:  # the page as loaded, before anything is clicked
                report.accessibility = axe_violations(self.page)
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                self.page.screenshot(path=str(screenshot), full_page=True)
                report.screenshot = screenshot
            if interact:
                report.downloads = self._download_menu()
                report.solutions = self._solutions()
        finally:
            self._report = None
        return report

    def _download_menu(self) -> list[tuple[str, str]]:
        """Open the download menu with a click; the entries it then shows."""
        menu = self.page.locator(".dropdown-download-buttons")
        if menu.count() == 0:
            return []
        menu.first.locator("button.dropdown-toggle").click()
        links = menu.first.locator(".dropdown-menu a")
        links.first.wait_for(state="visible", timeout=5000)
        shown = [
            (a.inner_text().strip(), a.get_attribute("href") or "")
            for a in links.all()
            if a.is_visible()
        ]
        self.page.keyboard.press("Escape")
        return shown

    def _solutions(self) -> list[Solution]:
        found = []
        boxes = self.page.locator(".solution")
        for i in range(boxes.count()):
            box = boxes.nth(i)
            ident = box.get_attribute("id") or f"solution {i + 1}"
            body = box.locator(":scope > :not(.admonition-title)")
            hidden_before = not any(el.is_visible() for el in body.all())
            toggle = box.locator(":scope > .admonition-title button.toggle-button")
            if toggle.count():
                toggle.first.click()
            else:  # no toggle button: a click on the title's left edge
                box.locator(":scope > .admonition-title").first.click(
                    position={"x": 3, "y": 3}
                )
            self.page.wait_for_timeout(150)
            shown_after = any(el.is_visible() for el in body.all())
            found.append(Solution(ident, hidden_before, shown_after))
        return found

    def search(self, term: str) -> list[tuple[str, str]]:
        """(title, page) of Sphinx's search results for ``term``, page site-relative."""
        self._fresh_page()
        self.page.goto(
            self.url(f"search.html?q={quote(term)}"), wait_until="networkidle"
        )
        # searchtools.js writes "Search finished, ..." (or "did not match")
        # into the summary once the index is loaded and searched.
        self.page.wait_for_function(
            """() => {
                const s = document.querySelector('#search-results .search-summary');
                return s && !/preparing|searching/i.test(s.innerText);
            }"""
        )
        hits = self.page.locator("#search-results ul.search > li > a")
        search_url = self.url("search.html")
        out = []
        for a in hits.all():
            href = urljoin(search_url, a.get_attribute("href") or "")
            rel = unquote(urlsplit(href).path).removeprefix("/")
            out.append((a.inner_text().strip(), rel))
        return out


def screenshot_name(rel: str) -> str:
    """``book/cafes.html`` -> ``book__cafes.png``."""
    return rel.replace("/", "__").removesuffix(".html") + ".png"


def check_pages(
    html_dir: Path, pages: list[str], screenshots: Path | None = None
) -> tuple[list[str], dict[str, PageReport]]:
    """Visit each page (paths relative to ``html_dir``); problems and reports."""
    problems: list[str] = []
    reports: dict[str, PageReport] = {}
    with Site(html_dir) as site:
        for rel in pages:
            shot = None if screenshots is None else screenshots / screenshot_name(rel)
            report = site.visit(rel, shot)
            reports[rel] = report
            problems += report.problems()
    return problems, reports


def search_hits(html_dir: Path, term: str) -> list[tuple[str, str]]:
    """(title, page) of the results Sphinx's search page lists for ``term``."""
    with Site(html_dir) as site:
        return site.search(term)


def solution_toggle(html_dir: Path, rel: str) -> list[Solution]:
    """Every solution of a page: hidden before a click, shown after it?"""
    with Site(html_dir) as site:
        return site.visit(rel).solutions


def download_links(html_dir: Path, rel: str) -> list[tuple[str, str]]:
    """(text, href) of the entries the page's download menu shows when opened."""
    with Site(html_dir) as site:
        return site.visit(rel).downloads


def check_downloads(
    html_dir: Path, rel: str, links: list[tuple[str, str]]
) -> list[str]:
    """The menu of chapter ``rel`` offers its notebook and the PDF, both present.

    The notebook is the chapter's own (``book/cafes.html`` -> ``cafes.ipynb``,
    not the student variant); every link of the menu must resolve to a file.
    """
    html_dir = Path(html_dir)
    page = html_dir / rel
    stem = Path(rel).stem
    problems = []
    targets = []
    for text, href in links:
        target = (page.parent / unquote(urlsplit(href).path)).resolve()
        if not href or not target.is_file():
            problems.append(
                f"{rel}: download {text!r} -> {href!r} is not a file of the site"
            )
        targets.append(target)
    own = [
        t for t in targets if t.name == f"{stem}.ipynb" and t.parent.name != "student"
    ]
    if not own:
        problems.append(f"{rel}: the download menu does not offer {stem}.ipynb")
    if not [t for t in targets if t.suffix == ".pdf"]:
        problems.append(f"{rel}: the download menu does not offer the book's PDF")
    return problems
