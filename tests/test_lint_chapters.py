"""The chapter linter (qmd_sphinx.lint): each rule, caught and passed."""

from pathlib import Path

import pytest

from qmd_sphinx import lint
from qmd_sphinx.errors import QmdSyntaxError
from qmd_sphinx.reader import qmd_to_notebook

ROOT = Path(__file__).resolve().parent.parent


def messages(text, path="ch.qmd"):
    return [str(p) for p in lint.lint_text(text, path)]


CLEAN = """\
---
title: A chapter
---

# A chapter {#sec-a-chapter}

The estimate is `{python} f"{beta:.2f}"` and $\\sigma = 0.5$ in math is fine.
See [the page](https://example.org/v1.2) and @fig-waits.

$$
y = X \\beta + Z u + \\epsilon
$$ {#eq-lmm-matrix}

```{python}
#| label: fig-waits
#| fig-cap: "Wait times."
#| fig-alt: "Dots for each cafe."
plot(data)
```

```{python}
#| label: tbl-fixed
#| tbl-cap: "Fixed effects."
table(fit.fixed)
```

::: {#exr-a-chapter-1}
Do it.
:::
"""


def test_clean_chapter_passes():
    assert messages(CLEAN) == []


def test_figure_caption_without_alt_is_caught_with_its_line():
    text = "```{python}\n#| label: fig-x\n#| fig-cap: \"A.\"\nplot()\n```\n"
    assert messages(text) == [
        "ch.qmd:2: figure fig-x needs both fig-cap and fig-alt (fig-alt is missing)"
    ]


def test_alt_without_caption_is_caught():
    text = "```{python}\n#| label: fig-x\n#| fig-alt: \"A.\"\nplot()\n```\n"
    assert any("fig-cap is missing" in m for m in messages(text))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("# Title {#sec_Bad}\n", "label 'sec_Bad' must start with sec-"),
        ("# Title {#sec-a_b}\n", "label 'sec-a_b' is not valid"),
        ("# Title {#intro}\n", "section label 'intro' must start with sec-"),
        ("# Title {#fig-intro}\n", "section label 'fig-intro' must start with sec-"),
        (
            "```{python}\n#| label: tbl-x\n#| fig-cap: a\n#| fig-alt: b\nx\n```\n",
            "fig-cap/fig-alt need a fig- label",
        ),
        ("$$\nx\n$$ {#eqn-one}\n", "equation label 'eqn-one' must start with eq-"),
        ("See Equation @eq-a.\n", "prints the word twice"),
    ],
)
def test_label_convention(text, expected):
    assert any(expected in m for m in messages(text)), messages(text)


@pytest.mark.parametrize(
    "text",
    ["# T {#sec-a_b}\n", "# T {#sec-A}\n", "# T {#sec-a--b}\n", "# T {#sec-a-}\n",
     "$$\nx\n$$ {#eq-x_1}\n", "::: {#exr-a_b}\nx\n:::\n",
     "```{python}\n#| label: Set_Up\nx\n```\n", "# T {#sec-fit-lmer-2}\n"],
)
def test_the_linter_and_the_build_agree_on_labels(text):
    """One grammar: a label the build refuses is the linter's problem, with the
    build's message, and one the build accepts passes the linter."""
    try:
        qmd_to_notebook(text, "ch.qmd")
    except QmdSyntaxError as exc:
        assert messages(text) == [str(exc)]
    else:
        assert messages(text) == []


def test_duplicate_label_across_files_names_the_first_place():
    labels = {}
    lint.lint_text("# A {#sec-a}\n", "one.qmd", labels)
    problems = [str(p) for p in lint.lint_text("\n# B {#sec-a}\n", "two.qmd", labels)]
    assert problems == ["two.qmd:2: label 'sec-a' is already defined at one.qmd:1"]


def test_eval_false_is_refused():
    text = "```{python}\n#| eval: false\nx = 1\n```\n"
    assert messages(text) == [
        "ch.qmd:2: eval: false; displayed code must be executed code"
    ]


def test_code_lines_of_literal_blocks_are_measured_too():
    long = "y = " + "2 * " * 30 + "2"
    text = f"Text.\n\n```python\n{long}\n```\n"
    assert messages(text) == [
        f"ch.qmd:4: code line is {len(long)} characters; "
        "the PDF page holds 80: break it"
    ]


@pytest.mark.parametrize("number", ["3.64", "-1.04", "0.5", "4.2.2"])
def test_typed_decimal_in_prose_is_caught(number):
    got = messages(f"The intercept is {number} minutes.\n")
    assert got == [
        f"ch.qmd:1: the number {number} is typed into the prose; compute it with an "
        "inline expression `{python} ...`"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Integers such as 20 cafes and 10 visits are words of the text.",
        "Inline `{python} f'{x:.2f}'` and code `x = 0.5` are computed or code.",
        "Math $\\rho = -0.7$ stays math.",
        "A link [docs](https://example.org/a/1.2/) keeps its target.",
        "The end of a sentence. 2 more.",
    ],
)
def test_not_prose_numbers_pass(line):
    assert messages(line + "\n") == []


def test_numbers_inside_display_math_and_code_pass():
    text = "$$\n\\sigma = 0.5\n$$\n\n```python\nx = 0.5\n```\n"
    assert messages(text) == []


def test_long_code_line_is_caught():
    long = "x = " + "1 + " * 30 + "1"
    text = f"```{{python}}\n{long}\n```\n"
    assert messages(text) == [
        f"ch.qmd:2: code line is {len(long)} characters; "
        "the PDF page holds 80: break it"
    ]


def test_main_reports_and_exits_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.qmd"
    bad.write_text("# T {#sec-t}\n\nWe got 3.14 here.\n")
    assert lint.main([str(bad)], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "bad.qmd:3: the number 3.14 is typed into the prose" in out


def test_book_chapters_passes_the_linter():
    """The real book follows its own conventions."""
    chapters = lint.book_chapters(ROOT)
    existing = [p for p in chapters if p.exists()]
    assert existing, "_quarto.yml lists no chapter that exists"
    missing = [str(p) for p in chapters if not p.exists()]
    assert not missing, f"_quarto.yml lists missing chapters: {missing}"
    problems = [str(p) for p in lint.lint_files(existing, ROOT)]
    assert problems == []


def test_typed_decimal_in_a_captioned_table_is_caught():
    got = messages("| a | b |\n|---|---|\n| x | 3.64 |\n\n: The 0.5 one {#tbl-t}\n")
    assert [g.split(":")[1] for g in got] == ["3", "5"]
    assert all("is typed into the prose" in g for g in got)
