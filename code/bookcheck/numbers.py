"""The numbers a book prints, compared across its formats.

A paragraph between two markers (``NUMBERS-START ... NUMBERS-END``) lists
references to every kind of target; the site, the PDF (as ``pdftotext``
reads it) and the notebook must print the same text for each.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")


def flat(text: str) -> str:
    """Whitespace squashed, and words LaTeX hyphenated at a line end joined."""
    text = re.sub(r"(\w)-\n\s*(\w)", r"\1\2", text)
    return _WS.sub(" ", text).strip()


def printed_references(text: str, start: str, end: str) -> list[str]:
    """The comma-separated items between ``start`` and ``end`` in ``text``."""
    text = flat(text)
    i = text.find(start)
    j = text.find(end, i + 1)
    if i < 0 or j < 0:
        raise ValueError(f"no {start} ... {end} paragraph in the text")
    inner = text[i + len(start) : j].strip().rstrip(".")
    return [item.strip() for item in inner.split(",") if item.strip()]


def compare_numbers(printed: dict[str, list[str]], expected: list[str]) -> list[str]:
    """One problem per format whose references differ from ``expected``.

    ``printed``: format name -> the references it printed, in order.
    """
    problems = []
    for name, items in printed.items():
        if items == expected:
            continue
        if len(items) != len(expected):
            problems.append(
                f"{name}: {len(items)} references printed, {len(expected)} expected: "
                f"{items}"
            )
            continue
        for got, want in zip(items, expected):
            if got != want:
                problems.append(f"{name}: prints {got!r} where {want!r} is expected")
    return problems
