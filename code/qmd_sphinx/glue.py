"""The glue helper: runtime of Quarto inline expressions (`` `{python} x` ``).

The reader replaces each inline expression of a markdown cell with the role
``{glue:md}`KEY` `` and inserts, just before that cell, a hidden code cell
that calls :func:`show` once per expression.  :func:`show` stores the value
as a ``text/markdown`` glue output of that cell (not displayed), so the
value lives in the executed notebook and survives the execution cache.
myst-nb's ``glue:md`` role then renders it inline, in HTML and in LaTeX.
"""

from __future__ import annotations

from typing import Any

__all__ = ["show"]


def show(key: str, value: Any) -> None:
    """Glue ``str(value)`` as Markdown under ``key`` without displaying it.

    Quarto inserts the ``str()`` of an inline expression's value into the
    text as Markdown; this does the same through myst-nb's glue.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"glue key must be a non-empty string, got {key!r}")
    from IPython.display import Markdown
    from myst_nb import glue

    glue(key, Markdown(str(value)), display=False)
