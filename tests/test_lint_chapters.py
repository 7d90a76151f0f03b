"""The chapter linter (scripts/lint_chapters.py): each rule, caught and passed."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("lint_chapters", ROOT / "scripts/lint_chapters.py")
lint = importlib.util.module_from_spec(_spec)
sys.modules["lint_chapters"] = lint
_spec.loader.exec_module(lint)


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
        "ch.qmd:3: a figure with fig-cap needs fig-alt (alt text for screen readers)"
    ]


def test_alt_without_caption_is_caught():
    text = "```{python}\n#| label: fig-x\n#| fig-alt: \"A.\"\nplot()\n```\n"
    assert any("fig-alt without fig-cap" in m for m in messages(text))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("# Title {#sec_Bad}\n", "label 'sec_Bad' does not follow"),
        ("# Title {#intro}\n", "label 'intro' does not follow"),
        ("# Title {#fig-intro}\n", "label 'fig-intro' should start with sec-"),
        (
            "```{python}\n#| label: tbl-x\n#| fig-cap: a\n#| fig-alt: b\n```\n",
            "label 'tbl-x' should start with fig-",
        ),
        ("$$\nx\n$$ {#eqn-one}\n", "label 'eqn-one' does not follow"),
    ],
)
def test_label_convention(text, expected):
    assert any(expected in m for m in messages(text)), messages(text)


def test_duplicate_label_across_files_names_the_first_place():
    labels = {}
    lint.lint_text("# A {#sec-a}\n", "one.qmd", labels)
    problems = [str(p) for p in lint.lint_text("\n# B {#sec-a}\n", "two.qmd", labels)]
    assert problems == ["two.qmd:2: label 'sec-a' is already defined at one.qmd:1"]


def test_eval_false_is_refused():
    text = "```{python}\n#| eval: false\nx = 1\n```\n"
    assert messages(text) == ["ch.qmd:2: eval: false; displayed code must be executed code"]


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
        f"ch.qmd:2: code line is {len(long)} characters; the PDF page holds 80: break it"
    ]


def test_main_reports_and_exits_nonzero(tmp_path, capsys):
    bad = tmp_path / "bad.qmd"
    bad.write_text("# T {#sec-t}\n\nWe got 3.14 here.\n")
    assert lint.main([str(bad)]) == 1
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
