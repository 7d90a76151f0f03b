"""display.table: pipe tables whose cells say what the DataFrame holds, read
back by the parser the book uses (markdown-it with myst's dollarmath)."""

from __future__ import annotations

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from multilevel.display import table
from multilevel.errors import InputError


def parsed_cells(markdown: str) -> list[list[tuple[str, str]]]:
    """Each body cell as (kind, content) pairs: 'text' or 'math_inline'."""
    md = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)
    rows, row, in_body = [], None, False
    for tok in md.parse(markdown):
        if tok.type == "tbody_open":
            in_body = True
        elif tok.type == "tr_open" and in_body:
            row = []
        elif tok.type == "tr_close" and in_body:
            rows.append(row)
        elif tok.type == "inline" and in_body:
            row.append([(c.type, c.content) for c in tok.children
                        if c.type in ("text", "math_inline")])
    return rows


def test_math_in_a_cell_reaches_the_parser_as_written():
    df = pd.DataFrame({"symbol": [r"$\sigma_\alpha$", r"$\alpha + a_j$"],
                       "value": [1.0, 2.0]})
    cells = parsed_cells(table(df).markdown)
    assert cells[0][0] == [("math_inline", r"\sigma_\alpha")]
    assert cells[1][0] == [("math_inline", r"\alpha + a_j")]


def test_text_outside_math_stays_literal():
    df = pd.DataFrame({"name": [r"C:\temp", "a|b", "$5 and $6",
                                r"cost $x$ in \USD"]})
    cells = parsed_cells(table(df, index=False).markdown)
    assert cells[0][0] == [("text", r"C:\temp")]
    assert cells[1][0] == [("text", "a|b")]
    assert "".join(c for _, c in cells[2][0]) == "$5 and $6"
    assert all(kind == "text" for kind, _ in cells[2][0])
    assert cells[3][0] == [("text", "cost "), ("math_inline", "x"),
                           ("text", r" in \USD")]


def test_the_old_escaping_broke_math():
    """Doubling every backslash, as this table once did, turns \\alpha into
    \\\\alpha (a LaTeX line break followed by 'alpha')."""
    doubled = "| s |\n|:--|\n| $\\\\alpha$ |"
    assert parsed_cells(doubled)[0][0] == [("math_inline", r"\\alpha")]


def test_a_pipe_inside_math_is_refused():
    df = pd.DataFrame({"s": [r"$P(A | B)$"]})
    with pytest.raises(InputError, match=r"\\vert or \\mid"):
        _ = table(df, index=False).markdown
