"""Translate a Quarto chapter (``.qmd``) into a notebook whose markdown is MyST.

The supported subset is documented in ``README.md`` next to this file.  Every
construct outside it raises :class:`~qmd_sphinx.errors.QmdSyntaxError` naming
the file and the 1-based line of the ``.qmd``; nothing is passed through as
literal Quarto syntax. The work is done in passes, one module each:

- ``blocks.py``: the body -> a tree of chunks, math, headings, divs, text;
- ``inline.py``: the inline syntax of each paragraph -> MyST;
- ``labels.py``: the one grammar of labels and references, and what a
  chapter defines and uses (:class:`Scan`);
- ``emit.py``: the blocks -> notebook cells (metadata, tags, directives).

Public API:

- :func:`qmd_to_notebook` (text, path) -> nbformat v4 notebook;
- :func:`scan` (text, path) -> :class:`Scan` of labels defined and used;
- :func:`check_references` over the scans of a whole book.

The notebook's metadata carries ``source_map`` (0-based ``.qmd`` line where
each cell starts), which myst-nb uses to report warnings at ``.qmd`` lines.
"""

from __future__ import annotations

import nbformat

from .emit import INLINE_IMPORT, KERNELSPEC, Translator, parse
from .labels import Label, Scan, Use, check_references

__all__ = [
    "INLINE_IMPORT",
    "KERNELSPEC",
    "Label",
    "Scan",
    "Use",
    "check_references",
    "parse",
    "qmd_to_notebook",
    "scan",
]


def qmd_to_notebook(text: str, path: str = "<string>") -> nbformat.NotebookNode:
    """Translate a ``.qmd`` chapter into an nbformat v4 notebook (MyST markdown).

    Raises :class:`QmdSyntaxError` (``path:line: message``) for anything
    outside the supported subset.
    """
    return Translator(text, path).run()


def scan(text: str, path: str = "<string>") -> Scan:
    """List the labels a chapter defines and the cross-refs/citations it uses.

    It translates the chapter too, so it raises the same errors as
    :func:`qmd_to_notebook`.
    """
    translator = Translator(text, path)
    translator.run()
    return translator.scan
