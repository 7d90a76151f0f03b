"""Tables that render in the book's HTML and in its PDF.

A pandas DataFrame shows itself in a notebook as HTML, which the PDF build
cannot use. :func:`table` returns an object whose only rich output is a
Markdown pipe table: myst-nb parses it into a real table node, so it becomes
an HTML table on the site and a LaTeX table in the PDF, and a chunk labelled
``tbl-x`` with a ``tbl-cap`` gets its caption and number.

>>> import pandas as pd
>>> t = table(pd.DataFrame({"term": ["a"], "estimate": [3.14159]}), digits=2)
>>> print(t.markdown)
| term | estimate |
|:-----|---------:|
| a    |     3.14 |
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from multilevel import validate
from multilevel.errors import InputError

__all__ = ["Table", "table"]


@dataclass(frozen=True)
class Table:
    """A formatted table: ``markdown`` for the book, ``text`` for a console."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: tuple[bool, ...]  # right-align the column (numbers)

    @property
    def markdown(self) -> str:
        header = [_escape(h) for h in self.header]
        rows = [[_escape(c) for c in r] for r in self.rows]
        widths = [
            max(3, len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)
        ]

        def line(cells):
            out = []
            for cell, width, right in zip(cells, widths, self.right):
                out.append(cell.rjust(width) if right else cell.ljust(width))
            return "| " + " | ".join(out) + " |"

        rule = "|" + "|".join(
            (":" + "-" * (w + 1)) if not r else ("-" * (w + 1) + ":")
            for w, r in zip(widths, self.right)
        ) + "|"
        return "\n".join([line(header), rule, *(line(r) for r in rows)])

    @property
    def text(self) -> str:
        widths = [
            max(len(h), *(len(r[i]) for r in self.rows))
            for i, h in enumerate(self.header)
        ]
        lines = []
        for cells in (self.header, *self.rows):
            lines.append(
                "  ".join(
                    c.rjust(w) if r else c.ljust(w)
                    for c, w, r in zip(cells, widths, self.right)
                ).rstrip()
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.text


#: Inline math in a cell: ``$...$`` with no space just inside either dollar
#: (the rule of myst's dollarmath, so ``$5 and $6`` is not math).
_MATH = re.compile(r"\$(?=\S)([^$]*?\S)\$")


def _escape(text: str) -> str:
    """A cell's text for a pipe table: literal outside ``$...$`` (backslash,
    ``|`` and a lone ``$`` escaped), math inside it left as written."""
    text = text.replace("\n", " ")
    out, end = [], 0
    for m in _MATH.finditer(text):
        out.append(_escape_text(text[end:m.start()]))
        if "|" in m.group(1):
            raise InputError(
                f"the math {m.group(0)!r} in a table cell holds '|', which "
                "ends the cell in a pipe table; write \\vert or \\mid instead."
            )
        out.append(m.group(0))
        end = m.end()
    out.append(_escape_text(text[end:]))
    return "".join(out)


def _escape_text(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("|", "\\|")
            .replace("$", "\\$"))


def _format(value, digits: int) -> str:
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "NA"
        if math.isinf(value):
            return "Inf" if value > 0 else "-Inf"
        text = f"{float(value):.{digits}f}"
        if float(text) == 0.0 and text.startswith("-"):
            text = text[1:]  # no "-0.00"
        return text
    if value is pd.NA or value is pd.NaT:
        return "NA"
    return str(value).replace("\n", " ")


def table(
    df: pd.DataFrame | pd.Series,
    digits: int | Mapping[str, int] = 2,
    index: bool | None = None,
) -> Table:
    """Format ``df`` as a table for the book.

    ``digits``: decimals of floats, one number or ``{column: decimals}``
    (columns not named get 2). ``index``: show the index as the first column;
    by default only when it is not a plain 0..n-1 range. Missing values are
    shown as ``NA``.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"table() needs a pandas DataFrame or Series, got {type(df).__name__}; "
            "wrap the values with pd.DataFrame(...) first"
        )
    if df.shape[1] == 0:
        raise InputError("table() got a DataFrame with no columns: nothing to show")
    if isinstance(digits, Mapping):
        unknown = set(digits) - set(map(str, df.columns))
        if unknown:
            raise InputError(
                f"digits names columns that are not in the table: "
                f"{sorted(unknown)}; the columns are {list(map(str, df.columns))}"
            )
        per_column = {
            str(c): validate.whole_number(
                f"digits[{str(c)!r}]", digits.get(str(c), 2), 0
            )
            for c in df.columns
        }
    else:
        digits = validate.whole_number("digits", digits, 0)
        per_column = {str(c): digits for c in df.columns}
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None

    header = [str(c) for c in df.columns]
    right = [pd.api.types.is_numeric_dtype(df[c].dtype) for c in df.columns]
    columns = [str(c) for c in df.columns]
    rows = []
    values = [df.iloc[:, j].tolist() for j in range(df.shape[1])]  # keeps dtypes
    for i, idx in enumerate(df.index):
        row = [column[i] for column in values]
        cells = [_format(v, per_column[c]) for v, c in zip(row, columns)]
        if index:
            label = idx if isinstance(idx, tuple) else (idx,)
            cells = [", ".join(map(str, label))] + cells
        rows.append(tuple(cells))
    if index:
        names = [n for n in df.index.names if n is not None]
        header = [", ".join(map(str, names))] + header
        right = [False] + right
    return Table(header=tuple(header), rows=tuple(rows), right=tuple(right))
