"""Do two builds of the book print the same numbers?

Every chapter is seeded, so two clean builds must give the same estimates,
intervals and diagnostics. Wall-clock timings cannot repeat; the book prints
them in seconds ("12.3 s", "27 seconds"), as a speed ratio ("15×", "20 times
faster"), or in a table row or column labelled in seconds ("seconds
(compile)"), and only those are left out of the comparison. Minutes are not
a unit of time here: the cafes' waits are in minutes, and they must repeat.

The text compared is what a reader sees in a chapter's main content: prose
(with its inline values), tables, and the printed outputs of code cells.
Code cells' sources are left out (they are the same text in both builds).
"""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

from bookcheck.site import content, html_pages

NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_NUM = r"[-−]?\d+(?:,\d{3})*(?:\.\d+)?"
# A timing: a number in seconds, or a speed ratio.
TIMING = re.compile(
    rf"{_NUM}\s?(?:ms|s|sec|seconds?)(?![\w])"
    rf"|{_NUM}\s?×"
    rf"|{_NUM}\s+times\s+(?:faster|slower|quicker|as\s+fast)"
)
# A table header or row label that says its values are timings.
TIME_LABEL = re.compile(r"\b(?:seconds?|sec|ms|wall[- ]clock)\b|\(s\)", re.I)
MASK = " <time> "


def numbers(text: str) -> list[str]:
    """The numbers of a text, in order, with timings masked out."""
    return NUMBER.findall(TIMING.sub(MASK, text))


def compare_texts(a: str, b: str, name: str) -> list[str]:
    na, nb = numbers(a), numbers(b)
    if na == nb:
        return []
    for i, (x, y) in enumerate(zip(na, nb)):
        if x != y:
            return [f"{name}: number {i + 1} differs between builds: {x} vs {y}"]
    return [f"{name}: {len(na)} numbers in one build, {len(nb)} in the other"]


_WS = re.compile(r"\s+")


def _mask_timing_cells(table) -> None:
    """Blank the cells of rows and columns whose label is a unit of time."""
    rows = table.find_all("tr")
    if not rows:
        return
    header = rows[0].find_all(["th", "td"])
    timed_cols = {
        i for i, cell in enumerate(header) if TIME_LABEL.search(cell.get_text(" "))
    }
    for row in rows[1:]:
        cells = row.find_all(["th", "td"])
        if cells and TIME_LABEL.search(cells[0].get_text(" ")):
            masked = range(1, len(cells))
        else:
            masked = [i for i in timed_cols if 0 < i < len(cells)]
        for i in masked:
            cells[i].string = MASK


def rendered_text(page: Path) -> str:
    """Prose, tables and cell outputs of a page's main content (no code sources).

    Table cells labelled as timings (see ``TIME_LABEL``) are masked.
    """
    soup = BeautifulSoup(Path(page).read_text(encoding="utf-8"), "html.parser")
    main = content(soup)
    for el in main.find_all(["script", "style", "nav"]):
        el.decompose()
    for el in main.select(".cell_input"):
        el.decompose()
    for table in main.find_all("table"):
        _mask_timing_cells(table)
    return _WS.sub(" ", main.get_text(" ")).strip()


def compare_sites(a: Path, b: Path) -> list[str]:
    """Numbers in the main text of every page of two builds of the same book."""
    a, b = Path(a), Path(b)
    problems = []
    pages_a = {p.relative_to(a) for p in html_pages(a)}
    pages_b = {p.relative_to(b) for p in html_pages(b)}
    for rel in sorted(pages_a ^ pages_b):
        problems.append(f"{rel}: present in only one build")
    for rel in sorted(pages_a & pages_b):
        if rel.name in ("genindex.html", "search.html"):
            continue
        problems += compare_texts(
            rendered_text(a / rel), rendered_text(b / rel), str(rel)
        )
    return problems
