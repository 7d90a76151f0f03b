"""Checks of the site in a real browser: Debian's Chromium driven by Playwright.

The site is served from 127.0.0.1 by a throw-away HTTP server; every request
the pages make is watched, and any that would leave the machine is blocked and
reported. No browser is downloaded: Playwright drives /usr/bin/chromium.
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
from urllib.parse import urlsplit

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


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        raise RuntimeError("Chromium is not installed; install it with: apt-get install chromium")
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
class PageReport:
    page: str
    console_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    math_typeset: int = 0

    def problems(self) -> list[str]:
        out = [f"{self.page}: console error: {e}" for e in self.console_errors]
        out += [f"{self.page}: request leaves the machine: {u}" for u in self.external_requests]
        out += [f"{self.page}: request failed: {u}" for u in self.failed_requests]
        out += [f"{self.page}: raw TeX left after typesetting: {t!r}" for t in self.raw_tex]
        return out


@contextlib.contextmanager
def browser_page() -> Iterator:
    """A fresh Chromium page (headless)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


def _visible_text_without_code(page) -> str:
    return page.evaluate(
        """() => {
            const root = document.querySelector('main') || document.body;
            const clone = root.cloneNode(true);
            clone.querySelectorAll('pre, code, script, style, mjx-assistive-mml')
                 .forEach(el => el.remove());
            return clone.innerText;
        }"""
    )


def visit(page, base: str, rel: str, screenshot: Path | None = None) -> PageReport:
    """Load one page, wait for MathJax, and report what went wrong."""
    report = PageReport(rel)
    host = urlsplit(base).netloc

    def on_route(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != host:
            if url not in report.external_requests:
                report.external_requests.append(url)
            return route.abort()
        return route.continue_()

    def on_console(msg):
        if msg.type == "error":
            report.console_errors.append(msg.text)

    def on_failed(request):
        if urlsplit(request.url).netloc == host:
            report.failed_requests.append(request.url)

    page.route("**/*", on_route)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: report.console_errors.append(str(exc)))
    page.on("requestfailed", on_failed)
    try:
        response = page.goto(base + rel, wait_until="networkidle")
        if response is None or response.status >= 400:
            status = None if response is None else response.status
            report.failed_requests.append(f"{base + rel} (status {status})")
        # MathJax 3 exposes a promise that resolves when typesetting is done.
        page.evaluate(
            """async () => {
                if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
                    await MathJax.startup.promise;
                }
            }"""
        )
        report.math_typeset = page.locator("mjx-container").count()
        text = _visible_text_without_code(page)
        report.raw_tex = [t for t in RAW_TEX if t in text]
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.unroute("**/*")
        page.remove_listener("console", on_console)
        page.remove_listener("requestfailed", on_failed)
    return report


def check_pages(
    html_dir: Path, pages: list[str], screenshots: Path | None = None
) -> tuple[list[str], dict[str, PageReport]]:
    """Visit each page (paths relative to ``html_dir``); problems and reports."""
    problems: list[str] = []
    reports: dict[str, PageReport] = {}
    with serve(html_dir) as base, browser_page() as page:
        for rel in pages:
            shot = None
            if screenshots is not None:
                shot = screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
            report = visit(page, base, rel, shot)
            reports[rel] = report
            problems += report.problems()
    return problems, reports


def search_hits(html_dir: Path, term: str) -> list[str]:
    """Titles of the results Sphinx's search page lists for ``term``."""
    with serve(html_dir) as base, browser_page() as page:
        page.goto(f"{base}search.html?q={term}", wait_until="networkidle")
        page.wait_for_selector("#search-results ul li, #search-results p", timeout=15000)
        page.wait_for_function(
            "() => !document.querySelector('#search-progress') ||"
            " document.querySelector('#search-progress').innerText.trim() !== "
            "'Preparing search...'",
            timeout=15000,
        )
        return page.locator("#search-results ul li").all_inner_texts()


def solution_toggle(html_dir: Path, rel: str) -> tuple[bool, bool]:
    """(hidden before a click, shown after it) for the first solution of a page."""
    with serve(html_dir) as base, browser_page() as page:
        page.goto(base + rel, wait_until="networkidle")
        solution = page.locator(".solution").first
        body = solution.locator("section, .solution-content, p").last
        hidden_before = not body.is_visible()
        solution.locator("button, .toggle-button, summary, .admonition-title").first.click()
        page.wait_for_timeout(500)
        shown_after = body.is_visible()
        return hidden_before, shown_after


def download_links(html_dir: Path, rel: str) -> list[str]:
    """The hrefs the page's download menu offers."""
    with serve(html_dir) as base, browser_page() as page:
        page.goto(base + rel, wait_until="networkidle")
        return page.eval_on_selector_all(
            ".dropdown-download-buttons a, a.btn-download-ipynb-button, "
            "a[class*='download']",
            "els => els.map(e => e.getAttribute('href'))",
        )
