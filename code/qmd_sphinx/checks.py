"""Whole-book checks run before Sphinx reads anything.

Every chapter is scanned with ``reader.scan``, which translates it (syntax
outside the subset fails here with ``file:line``); then every cross-reference
must name a label defined in some chapter, no label may be defined twice, and
every citation key must exist in the bibliography. All problems are reported
together, each as ``file:line: message``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmd_sphinx.quarto_config import QuartoBook

BIB_ENTRY = re.compile(r"@\s*([A-Za-z]+)\s*[{(]\s*([^,\s]+)\s*,")
NOT_ENTRIES = {"comment", "string", "preamble"}


class BookCheckError(Exception):
    """One or more problems found across the book (one per line)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class BookIndex:
    """What the whole-book check learnt: where each label is defined, and the
    chapters whose title is ``{.unnumbered}`` (they take no number)."""

    labels: dict[str, str]  # label -> chapter path
    unnumbered_docnames: set[str]


@dataclass(frozen=True)
class Item:
    name: str
    line: int
    kind: str  # "label", "ref" or "cite"


def bib_keys(paths: Iterable[Path]) -> dict[str, Path]:
    """Citation keys defined in the ``.bib`` files."""
    keys: dict[str, Path] = {}
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        for match in BIB_ENTRY.finditer(text):
            if match.group(1).lower() not in NOT_ENTRIES:
                keys[match.group(2)] = Path(path)
    return keys


def _name_line(entry: Any) -> tuple[str, int]:
    """(name, line) from a tuple, a mapping or an object with attributes."""
    if isinstance(entry, (tuple, list)) and len(entry) >= 2:
        return str(entry[0]), int(entry[1])
    if isinstance(entry, dict):
        name = entry.get("name", entry.get("label", entry.get("key")))
        return str(name), int(entry["line"])
    for attr in ("name", "label", "key", "target"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr)), int(entry.line)
    raise TypeError(f"cannot read a (name, line) from {entry!r}")


def _entries(value: Any) -> list[tuple[str, int]]:
    if value is None:
        return []
    if isinstance(value, dict):  # {name: line} or {name: [lines]}
        out = []
        for name, line in value.items():
            lines = line if isinstance(line, (list, tuple)) else [line]
            out.extend((str(name), int(n)) for n in lines)
        return out
    return [_name_line(e) for e in value]


def scan_items(scan: Any) -> list[Item]:
    """Normalise ``reader.scan``'s result to a list of :class:`Item`."""
    items = []
    for attr, kind in (
        ("labels", "label"),
        ("defines", "label"),
        ("refs", "ref"),
        ("crossrefs", "ref"),
        ("citations", "cite"),
        ("cites", "cite"),
    ):
        if hasattr(scan, attr):
            entries = _entries(getattr(scan, attr))
            items.extend(Item(n, line, kind) for n, line in entries)
    return items


def _read_chapter(root: Path, rel: str) -> tuple[str, str]:
    path = root / rel
    return str(path), path.read_text(encoding="utf-8")


def check_book(
    book: QuartoBook, full_book: QuartoBook | None = None
) -> BookIndex:
    """Check ``book``; return the labels of the book and its unnumbered chapters.

    ``full_book`` (default: ``book``) supplies the labels a sub-book may refer
    to in chapters it does not build. Raises :class:`BookCheckError`.
    """
    from qmd_sphinx.sphinx_reader import reader_module

    reader = reader_module()
    full_book = full_book or book
    root = book.root
    problems: list[str] = []
    labels: dict[str, tuple[str, int]] = {}
    uses: list[tuple[str, Item]] = []
    built = {c.path for c in book.chapters}
    unnumbered: set[str] = set()
    for chapter in full_book.chapters:
        path, text = _read_chapter(root, chapter.path)
        try:  # scan translates the chapter: syntax errors surface here
            scan = reader.scan(text, path)
            items = scan_items(scan)
            if getattr(scan, "unnumbered", False):
                unnumbered.add(chapter.docname)
        except ValueError as exc:  # QmdSyntaxError: "path:line: message"
            if chapter.path in built:
                problems.append(str(exc))
            continue
        for item in items:
            if item.kind == "label":
                if item.name in labels:
                    first, line = labels[item.name]
                    problems.append(
                        f"{path}:{item.line}: label {item.name!r} is already "
                        f"defined at {first}:{line}; labels must be unique "
                        "in the book"
                    )
                else:
                    labels[item.name] = (path, item.line)
            elif chapter.path in built:
                uses.append((path, item))

    keys = bib_keys(root / b for b in book.bibliography)
    bibs = ", ".join(book.bibliography) or "(no bibliography in _quarto.yml)"
    for path, item in uses:
        if item.kind == "ref" and item.name not in labels:
            problems.append(
                f"{path}:{item.line}: cross-reference @{item.name} points to "
                "a label that no chapter of the book defines"
            )
        elif item.kind == "cite" and item.name not in keys:
            problems.append(
                f"{path}:{item.line}: citation key {item.name!r} is not in "
                f"the bibliography ({bibs})"
            )
    if problems:
        raise BookCheckError(problems)
    return BookIndex({name: where[0] for name, where in labels.items()}, unnumbered)
