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


# What a reference prints when the source or the bridge gets Quarto's wording
# wrong: the word twice, Sphinx's "(2.5)" form, a chapter called a section.
# (Matches are reported pattern by pattern, in the order of the text.)
WRONG_WORDING = (
    (re.compile(r"\b(Equation|Figure|Table|Exercise|Section|Chapter|Appendix) \1s?\b",
                re.I), "the word printed twice"),
    # "Equations Equation 2.1 and ..."; not "Exercises" (a heading) followed by
    # the first exercise's title, "Exercise 1.1 (...)"
    (re.compile(r"\b(Equation|Figure|Table|Section|Chapter)s \1s? [0-9A-Z]", re.I),
     "the word printed twice"),
    (re.compile(r"\bEquations? \(\d"), "an equation number in parentheses"),
    (re.compile(r"\bSection [0-9]+\b(?![.,]?\d)"), "a chapter printed as a section"),
)


def check_reference_wording(text: str, where: str) -> list[str]:
    """References in ``text`` that do not read as Quarto prints them."""
    text = flat(text)
    problems = []
    for pattern, what in WRONG_WORDING:
        for m in pattern.finditer(text):
            context = text[max(0, m.start() - 30) : m.end() + 30]
            problems.append(f"{where}: {what}: ...{context}...")
    return problems
