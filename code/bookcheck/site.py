"""Static checks of a built site: links, anchors, alt text, offline resources."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

# Pages Sphinx generates that are not chapters.
GENERATED = {"genindex.html", "search.html", "py-modindex.html"}
SKIP_DIRS = {"_static", "_sources", "_images", "downloads", "_sphinx_design_static"}


def html_pages(html_dir: Path) -> list[Path]:
    """Every HTML page of the site, outside the static folders."""
    html_dir = Path(html_dir)
    return sorted(
        p
        for p in html_dir.rglob("*.html")
        if not (set(p.relative_to(html_dir).parts[:-1]) & SKIP_DIRS)
    )


@cache
def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _ids(path: Path) -> set[str]:
    soup = _soup(path)
    return {el["id"] for el in soup.find_all(id=True)} | {
        el["name"] for el in soup.find_all("a", attrs={"name": True})
    }


def check_links(html_dir: Path) -> list[str]:
    """Every internal link resolves to a file, and every anchor to an id in it."""
    html_dir = Path(html_dir).resolve()
    problems = []
    _soup.cache_clear()
    for page in html_pages(html_dir):
        rel = page.relative_to(html_dir)
        for a in _soup(page).find_all("a", href=True):
            href = a["href"].strip()
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path))
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.append(f"{rel}: link {href!r} points to a missing file")
                continue
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html" and frag not in _ids(target):
                problems.append(f"{rel}: link {href!r} points to a missing anchor")
    return problems


def check_images(html_dir: Path) -> list[str]:
    """Every image has non-empty alt text (screen readers read it)."""
    html_dir = Path(html_dir)
    problems = []
    for page in html_pages(html_dir):
        for img in _soup(page).find_all("img"):
            if not (img.get("alt") or "").strip():
                src = img.get("src", "?")
                problems.append(
                    f"{page.relative_to(html_dir)}: image {src!r} has no alt text"
                )
    return problems


def check_offline(html_dir: Path) -> list[str]:
    """Scripts, styles and images load from the site itself, not from a CDN."""
    html_dir = Path(html_dir)
    problems = []
    for page in html_pages(html_dir):
        soup = _soup(page)
        for tag, attr in (("script", "src"), ("link", "href"), ("img", "src")):
            for el in soup.find_all(tag, attrs={attr: True}):
                if tag == "link" and "stylesheet" not in (el.get("rel") or []):
                    continue
                url = el[attr]
                if urlsplit(url).scheme in ("http", "https") or url.startswith("//"):
                    problems.append(
                        f"{page.relative_to(html_dir)}: <{tag}> loads {url} from "
                        "outside the site"
                    )
    return problems


def figure_count(html_dir: Path, pages: list[Path] | None = None) -> int:
    """Numbered figures (with a caption) across the given pages (default: all)."""
    total = 0
    for page in pages or html_pages(html_dir):
        for fig in _soup(page).find_all("figure"):
            if fig.find("figcaption") and fig.find("img"):
                total += 1
    return total


_WS = re.compile(r"\s+")


def content(soup: BeautifulSoup):
    """The page's own content: the theme's article, else <main>, else <body>.

    sphinx-book-theme's <main> also holds the header buttons and the
    previous/next links; the chapter itself is its ``article.bd-article``.
    """
    return (
        soup.select_one("article.bd-article")
        or soup.find("main")
        or soup.find(attrs={"role": "main"})
        or soup.body
        or soup
    )


def main_text(page: Path) -> str:
    """The visible text of a page's main content, without code and scripts."""
    soup = BeautifulSoup(Path(page).read_text(encoding="utf-8"), "html.parser")
    main = content(soup)
    for el in main.find_all(["script", "style", "pre", "nav"]):
        el.decompose()
    return _WS.sub(" ", main.get_text(" ")).strip()


# Quarto or MyST syntax that must have been translated: left as text, it means
# the bridge or a role failed silently.
LITERAL_SYNTAX = (
    "{python}",
    "@fig-",
    "@tbl-",
    "@sec-",
    "@eq-",
    "@exr-",
    ":::",
    "{glue",
    "{numref}",
    "{qmd-",
    "{cite",
)


def page_text(page: Path) -> str:
    """All text of a page's own content (code and outputs included)."""
    soup = BeautifulSoup(Path(page).read_text(encoding="utf-8"), "html.parser")
    main = content(soup)
    for el in main.find_all(["script", "style"]):
        el.decompose()
    return main.get_text(" ")


def check_literal_syntax(html_dir: Path, patterns=LITERAL_SYNTAX) -> list[str]:
    """No page shows untranslated source syntax (``{python}``, ``@fig-``, ``:::``)."""
    html_dir = Path(html_dir)
    problems = []
    for page in html_pages(html_dir):
        text = page_text(page)
        for pattern in patterns:
            i = text.find(pattern)
            if i >= 0:
                context = _WS.sub(" ", text[max(0, i - 40) : i + 40]).strip()
                problems.append(
                    f"{page.relative_to(html_dir)}: literal {pattern!r} in the text: "
                    f"...{context}..."
                )
    return problems


def page_title(page: Path) -> str:
    """The first heading of a page, without its number and permalink sign."""
    h1 = content(_soup(Path(page))).find("h1")
    if h1 is None:
        raise ValueError(f"{page}: no <h1> heading")
    h1 = BeautifulSoup(str(h1), "html.parser").h1  # a copy to strip
    for el in h1.select(".section-number, a.headerlink"):
        el.decompose()
    return _WS.sub(" ", h1.get_text(" ")).strip()


def math_elements(page: Path) -> int:
    """Sphinx's math markup in a page (what MathJax must typeset)."""
    return len(_soup(Path(page)).select(".math"))
