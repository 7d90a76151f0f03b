"""The Quarto reader (code/qmd_sphinx/reader.py): each construct of the subset.

Every test feeds a small ``.qmd`` snippet to ``qmd_to_notebook`` and checks the
notebook cells, their MyST source, metadata and tags against what the bridge's
contract says (code/qmd_sphinx/README.md). The error tests check that every
construct outside the subset raises ``QmdSyntaxError`` whose message starts
with ``path:line:`` where ``line`` is the line of the offending construct.
"""

from __future__ import annotations

import json
import re
import textwrap

import nbformat
import pytest

from qmd_sphinx.errors import QmdSyntaxError
from qmd_sphinx.glue import show
from qmd_sphinx.reader import (
    INLINE_IMPORT,
    Label,
    Use,
    check_references,
    qmd_to_notebook,
    scan,
)

PATH = "book/ch.qmd"


def nb_of(text: str):
    return qmd_to_notebook(textwrap.dedent(text), PATH)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def md_cells(nb):
    return [c for c in nb.cells if c.cell_type == "markdown"]


def md_text(nb) -> str:
    return "\n".join(c.source for c in md_cells(nb))


def tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def chunk(options: str, body: str = "x = 1") -> str:
    """A python chunk with the given ``#|`` option lines."""
    lines = [line for line in options.splitlines() if line.strip()]
    return "\n".join(["```{python}", *lines, body, "```", ""])


# --------------------------------------------------------------------------
# notebook shape


def test_notebook_is_valid_nbformat_v4_with_python3_kernel():
    nb = nb_of(
        """\
        Some text.

        ```{python}
        x = 1
        ```
        """
    )
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec["name"] == "python3"
    assert nb.metadata.kernelspec["language"] == "python"
    # one 0-based .qmd line per cell, for warnings at .qmd lines
    # 0-based lines; a code cell's entry is the line before its code, which is
    # where myst-nb expects it (it reports code one line below the entry)
    assert nb.metadata.source_map == [0, 2]
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def test_source_map_follows_qmd_lines():
    nb = nb_of(
        """\
        # Title

        text

        ```{python}
        a = 1
        ```

        more text
        """
    )
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    # heading on line 1, code body on line 6 (entry 6 - 2), text on line 9
    assert nb.metadata.source_map == [0, 4, 8]


# --------------------------------------------------------------------------
# front matter


def test_front_matter_title_becomes_the_heading():
    nb = nb_of(
        """\
        ---
        title: "The model"
        jupyter: python3
        ---

        Body text.
        """
    )
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source == "# The model"
    assert "Body text." in nb.cells[1].source
    assert "---" not in md_text(nb)
    assert "jupyter" not in md_text(nb)


def test_front_matter_title_equal_to_heading_is_not_repeated():
    nb = nb_of(
        """\
        ---
        title: "The model"
        ---

        # The model {#sec-model}
        """
    )
    assert md_text(nb).count("# The model") == 1
    assert "(sec-model)=" in md_text(nb)


@pytest.mark.parametrize(
    "front, line, fragment",
    [
        ("---\ntitle: A\nformat: html\n---\n", 3, "front matter key 'format'"),
        ("---\ntitle: A\njupyter: ir\n---\n", 3, "jupyter must be python3"),
        ("---\ntitle: A\n", 1, "never closed"),
        ("---\ntitle: [unclosed\n---\n", 2, "not valid YAML"),
        ("---\n- a list\n---\n", 1, "YAML mapping"),
        ("---\ntitle: A\n---\n\n# B\n", 5, "differ"),
    ],
)
def test_front_matter_errors(front, line, fragment):
    with pytest.raises(QmdSyntaxError, match=fragment) as info:
        qmd_to_notebook(front, PATH)
    assert str(info.value).startswith(f"{PATH}:{line}: ")


# --------------------------------------------------------------------------
# python chunks and their options


def test_python_chunk_becomes_a_code_cell_without_option_lines():
    nb = nb_of(
        """\
        ```{python}
        #| echo: true
        import math
        y = math.pi
        ```
        """
    )
    (cell,) = nb.cells
    assert cell.cell_type == "code"
    assert cell.source == "import math\ny = math.pi"
    assert "#|" not in cell.source
    assert tags(cell) == []  # echo: true is Quarto's default: no tag


@pytest.mark.parametrize(
    "option, tag",
    [
        ("echo: false", "remove-input"),
        ("output: false", "remove-output"),
        ("include: false", "remove-cell"),
        ("eval: false", "skip-execution"),
        ("code-fold: true", "hide-input"),
        ("warning: false", "remove-stderr"),
    ],
)
def test_boolean_option_becomes_a_tag(option, tag):
    (cell,) = nb_of(chunk(f"#| {option}")).cells
    assert tags(cell) == [tag]
    assert cell.source == "x = 1"


@pytest.mark.parametrize(
    "option",
    ["echo: true", "output: true", "include: true", "eval: true",
     "code-fold: false", "warning: true"],
)  # fmt: skip
def test_default_value_of_an_option_adds_no_tag(option):
    (cell,) = nb_of(chunk(f"#| {option}")).cells
    assert tags(cell) == []


def test_several_options_give_several_tags():
    (cell,) = nb_of(chunk("#| echo: false\n#| warning: false")).cells
    assert sorted(tags(cell)) == ["remove-input", "remove-stderr"]


def test_figure_label_caption_and_alt_become_mystnb_metadata():
    (cell,) = nb_of(
        chunk(
            '#| label: fig-waits\n'
            '#| fig-cap: "Waiting times by cafe."\n'
            '#| fig-alt: "Twelve dots, four per cafe."',
            "plot()",
        )
    ).cells
    assert cell.metadata["mystnb"] == {
        "figure": {"name": "fig-waits", "caption": "Waiting times by cafe."},
        "image": {"alt": "Twelve dots, four per cafe."},
    }
    assert cell.source == "plot()"


def test_figure_caption_translates_citations_and_refs():
    (cell,) = nb_of(
        chunk(
            '#| label: fig-a\n'
            '#| fig-cap: "As in @fig-b, after [@bates2015]."\n'
            '#| fig-alt: "Dots."'
        )
    ).cells
    caption = cell.metadata["mystnb"]["figure"]["caption"]
    assert caption == "As in {qmd-ref}`fig-b`, after {cite:p}`bates2015`."


def test_table_label_and_caption_become_qmd_metadata():
    (cell,) = nb_of(
        chunk('#| label: tbl-means\n#| tbl-cap: "Mean wait per cafe."', "table(d)")
    ).cells
    assert cell.metadata["qmd"] == {
        "label": "tbl-means",
        "tbl-cap": "Mean wait per cafe.",
    }
    assert "mystnb" not in cell.metadata


def test_plain_label_is_kept_in_metadata():
    (cell,) = nb_of(chunk("#| label: setup")).cells
    assert cell.metadata["qmd"] == {"label": "setup"}


def test_r_magic_cell_is_kept_verbatim():
    nb = nb_of(
        """\
        ```{python}
        #| echo: false
        %%R -i cafes
        fit <- lme4::lmer(wait ~ 1 + (1 | cafe), data = cafes)
        print(fit)
        ```
        """
    )
    (cell,) = nb.cells
    assert cell.source == (
        "%%R -i cafes\n"
        "fit <- lme4::lmer(wait ~ 1 + (1 | cafe), data = cafes)\n"
        "print(fit)"
    )
    assert tags(cell) == ["remove-input"]


def test_r_magic_first_then_options_is_accepted_too():
    (cell,) = nb_of("```{python}\n%%R\n#| echo: false\nx <- 1\n```\n").cells
    assert cell.source == "%%R\nx <- 1"
    assert tags(cell) == ["remove-input"]


def test_plain_fenced_code_stays_a_literal_block():
    nb = nb_of(
        """\
        Shown, not run:

        ```python
        boom = 1 / 0  # @fig-x is not a reference here
        ```
        """
    )
    assert code_cells(nb) == []
    text = md_text(nb)
    assert "```python\nboom = 1 / 0  # @fig-x is not a reference here\n```" in text


# --------------------------------------------------------------------------
# inline expressions


def test_inline_expressions_become_a_hidden_cell_and_glue_roles():
    nb = nb_of(
        """\
        The mean is `{python} f"{m:.2f}"` over `{python} len(d)` visits.
        """
    )
    hidden, text = nb.cells
    assert hidden.cell_type == "code"
    assert tags(hidden) == ["remove-cell"]
    assert hidden.metadata["qmd"] == {"inline": True}
    assert hidden.source.splitlines() == [
        INLINE_IMPORT,
        '_qmd_show("qmd-inline-1", (f"{m:.2f}"))',
        '_qmd_show("qmd-inline-2", (len(d)))',
    ]
    assert text.source == (
        "The mean is {glue:md}`qmd-inline-1:myst` over "
        "{glue:md}`qmd-inline-2:myst` visits."
    )


def test_inline_keys_are_unique_across_cells():
    nb = nb_of("First `{python} 1`.\n\n## Next\n\nSecond `{python} 2`.\n")
    hidden = [c for c in code_cells(nb) if c.metadata.get("qmd", {}).get("inline")]
    assert len(hidden) == 2
    assert "qmd-inline-1" in hidden[0].source
    assert "qmd-inline-2" in hidden[1].source
    # each hidden cell sits right before the markdown cell that uses it
    for cell in hidden:
        after = nb.cells[nb.cells.index(cell) + 1]
        assert after.cell_type == "markdown"
        key = cell.source.splitlines()[1].split('"')[1]
        assert f"{{glue:md}}`{key}:myst`" in after.source


def test_hidden_inline_cell_computes_the_values_it_glues():
    """Run the hidden cell's code: show() is called with each value, in order."""
    nb = nb_of("Two is `{python} 1 + 1` and six is `{python} 2 * 3`.\n")
    hidden = nb.cells[0]
    calls = []
    code = hidden.source.replace(INLINE_IMPORT, "")
    exec(code, {"_qmd_show": lambda key, value: calls.append((key, value))})
    assert calls == [("qmd-inline-1", 2), ("qmd-inline-2", 6)]


def test_show_glues_markdown_of_the_str_value(monkeypatch):
    import myst_nb

    glued = {}

    def fake_glue(name, variable, display=True):
        glued[name] = (variable, display)

    monkeypatch.setattr(myst_nb, "glue", fake_glue)
    show("k", 3.25)
    variable, display = glued["k"]
    assert display is False
    assert variable.data == "3.25"
    assert type(variable).__name__ == "Markdown"
    with pytest.raises(TypeError):
        show("", 1)


def test_plain_code_span_is_not_an_expression():
    nb = nb_of("Use `len(x)` and `` `{python} x` `` literally.\n")
    assert code_cells(nb) == []
    assert "`len(x)`" in md_text(nb)


# --------------------------------------------------------------------------
# headings, math


@pytest.mark.parametrize("level", [1, 2, 3])
def test_heading_with_section_label_gets_a_myst_target(level):
    hashes = "#" * level
    (cell,) = nb_of(f"{hashes} Model {{#sec-model}}\n").cells
    assert cell.source == f"(sec-model)=\n{hashes} Model"
    assert "unnumbered" not in json.dumps(cell.metadata)


@pytest.mark.parametrize(
    "heading",
    [
        "# Preface {.unnumbered}",
        "# Preface {#sec-preface .unnumbered}",
        "# Preface {-}",
    ],
)
def test_unnumbered_heading_is_recorded_in_metadata(heading):
    (cell,) = nb_of(heading + "\n").cells
    assert cell.metadata["qmd"] == {"unnumbered": True}
    assert cell.source.endswith("# Preface")
    assert "{" not in cell.source
    assert ("(sec-preface)=" in cell.source) == ("#sec-preface" in heading)


@pytest.mark.parametrize(
    "math, body",
    [
        ("$$\ny = X \\beta + Z u\n$$ {#eq-lmm}", "y = X \\beta + Z u"),
        ("$$ y = X \\beta $$ {#eq-lmm}", "y = X \\beta"),
        ("$$\na = b\n\\\\\nc = d\n$$ {#eq-lmm}", "a = b\n\\\\\nc = d"),
    ],
)
def test_labelled_display_math_becomes_a_math_directive(math, body):
    (cell,) = nb_of(math + "\n").cells
    assert cell.source == f"```{{math}}\n:label: eq-lmm\n\n{body}\n```"


def test_unlabelled_and_inline_math_stay_dollar_math():
    text = "Inline $\\sigma_a^2$ here.\n\n$$\nx = 1\n$$\n"
    nb = nb_of(text)
    assert md_text(nb) == text.rstrip("\n")


def test_at_sign_in_math_is_not_a_citation():
    nb = nb_of("In math $a @b$ stays.\n")
    assert md_text(nb) == "In math $a @b$ stays."


# --------------------------------------------------------------------------
# cross-references and citations


@pytest.mark.parametrize(
    "ref, myst",
    [
        ("@sec-model", "{qmd-ref}`sec-model`"),
        ("@fig-waits", "{qmd-ref}`fig-waits`"),
        ("@tbl-means", "{qmd-ref}`tbl-means`"),
        ("@exr-mean", "{qmd-ref}`exr-mean`"),
        ("@eq-lmm", "{qmd-ref}`eq-lmm`"),  # prints "Equation 2.5" itself
        ("[-@eq-lmm]", "{qmd-num}`eq-lmm`"),  # the number alone
        ("[Equations -@eq-a and -@eq-b]",
         "Equations {qmd-num}`eq-a` and {qmd-num}`eq-b`"),
        ("[Figures -@fig-a to -@fig-c]",
         "Figures {qmd-num}`fig-a` to {qmd-num}`fig-c`"),
        ("[-@sec-a]'s", "{qmd-num}`sec-a`'s"),
    ],
)
def test_cross_reference(ref, myst):
    nb = nb_of(f"See {ref}.\n")
    assert md_text(nb) == f"See {myst}."


@pytest.mark.parametrize(
    "text, line",
    [
        ("See Equation @eq-a.\n", 1),
        ("See equation @eq-a.\n", 1),
        ("From the equations\n@eq-a and @eq-b.\n", 2),
        ("As Figure @fig-a shows.\n", 1),
        ("In Table @tbl-a.\n", 1),
        ("Line one.\nIn Chapter @sec-a we fit.\n", 2),
        ("In section @sec-a.\n", 1),
        ("Do Exercise @exr-a.\n", 1),
        ("See Appendix @sec-a.\n", 1),
        ("See [Equations @eq-a and -@eq-b].\n", 1),
        ("As Fig. @fig-a shows.\n", 1),
    ],
)
def test_the_word_written_before_a_reference_is_refused(text, line):
    """A reference prints its own word, as in Quarto: written twice, it would
    read "Equation Equation 2.5"."""
    with pytest.raises(QmdSyntaxError) as exc:
        nb_of(text)
    assert exc.value.line == line
    assert "prints the word twice" in str(exc.value)
    assert "-@" in str(exc.value)  # the fix


def test_words_that_are_not_the_kinds_word_are_fine():
    nb = nb_of("The tables of @sec-a, a figure-like @fig-a, and so on.\n")
    assert "{qmd-ref}`sec-a`" in md_text(nb)


@pytest.mark.parametrize(
    "quarto, myst",
    [
        ("[@bates2015]", "{cite:p}`bates2015`"),
        ("[@bates2015; @mcelreath2020]", "{cite:p}`bates2015,mcelreath2020`"),
        ("@mcelreath2020", "{cite:t}`mcelreath2020`"),
        ("[@gelman:2007]", "{cite:p}`gelman:2007`"),
    ],
)
def test_citation(quarto, myst):
    nb = nb_of(f"As shown by {quarto}.\n")
    assert md_text(nb) == f"As shown by {myst}."


@pytest.mark.parametrize(
    "text",
    [
        "Write to ann@example.org for data.",
        "Mail <ann@example.org> today.",
        "Code `x @ y` is matrix product.",
        "See https://example.org/@user for more.",
    ],
)
def test_at_sign_that_is_not_a_citation(text):
    nb = nb_of(text + "\n")
    assert md_text(nb) == text
    assert scan(text + "\n", PATH).uses == []


def test_citation_at_end_of_sentence_keeps_the_full_stop():
    nb = nb_of("Shown by @bates2015.\n")
    assert md_text(nb) == "Shown by {cite:t}`bates2015`."


# --------------------------------------------------------------------------
# callouts


@pytest.mark.parametrize("kind", ["note", "tip", "warning", "important", "caution"])
def test_callout_without_title(kind):
    (cell,) = nb_of(f"::: {{.callout-{kind}}}\nBody with @sec-a.\n:::\n").cells
    assert cell.source == f":::{{{kind}}}\nBody with {{qmd-ref}}`sec-a`.\n:::"


@pytest.mark.parametrize("kind", ["note", "tip", "warning", "important", "caution"])
def test_callout_with_title_attribute(kind):
    (cell,) = nb_of(
        f'::: {{.callout-{kind} title="Why it works"}}\nBody.\n:::\n'
    ).cells
    assert cell.source == f":::{{admonition}} Why it works\n:class: {kind}\nBody.\n:::"


def test_callout_with_heading_title():
    (cell,) = nb_of("::: {.callout-note}\n## Heads up\n\nBody.\n:::\n").cells
    assert cell.source == ":::{admonition} Heads up\n:class: note\nBody.\n:::"


@pytest.mark.parametrize(
    "collapse, classes",
    [("true", "warning dropdown"), ("false", "warning dropdown toggle-shown")],
)
def test_collapsible_callout(collapse, classes):
    (cell,) = nb_of(
        f'::: {{.callout-warning collapse="{collapse}" title="T"}}\nHidden.\n:::\n'
    ).cells
    assert cell.source == f":::{{admonition}} T\n:class: {classes}\nHidden.\n:::"


def test_collapsed_callout_without_title_keeps_its_kind():
    (cell,) = nb_of('::: {.callout-tip collapse="true"}\nHidden.\n:::\n').cells
    assert cell.source == ":::{tip}\n:class: dropdown\nHidden.\n:::"


def test_nested_callout_uses_longer_colon_fence():
    text = "::: {.callout-note}\nOuter.\n\n::: {.callout-tip}\nInner.\n:::\n:::\n"
    (cell,) = nb_of(text).cells
    assert cell.source == "::::{note}\nOuter.\n\n:::{tip}\nInner.\n:::\n::::"


# --------------------------------------------------------------------------
# exercises and solutions

EXERCISE = """\
::: {#exr-mean}
## Mean wait

Compute the mean wait of @sec-data.

```{python}
cafe_1 = waits[waits["cafe"] == 1]
```
:::

::: {.solution}
One line:

```{python}
m = cafe_1["wait"].mean()
```
:::
"""


def test_exercise_and_solution_become_gated_directives():
    nb = nb_of(EXERCISE)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds == ["markdown", "code", "markdown", "markdown", "code", "markdown"]
    start, ex_code, end, sol_start, sol_code, sol_end = nb.cells
    assert re.sub(r"\n{3,}", "\n\n", start.source) == (
        "```{exercise-start} Mean wait\n:label: exr-mean\n```\n\n"
        "Compute the mean wait of {qmd-ref}`sec-data`."
    )
    assert ex_code.source == 'cafe_1 = waits[waits["cafe"] == 1]'
    assert end.source == "```{exercise-end}\n```"
    assert sol_start.source == (
        "```{solution-start} exr-mean\n:label: sol-exr-mean\n:class: dropdown\n```"
        "\n\nOne line:"
    )
    assert sol_code.source == 'm = cafe_1["wait"].mean()'
    assert sol_end.source == "```{solution-end}\n```"


def test_only_solution_cells_are_tagged_solution():
    nb = nb_of(EXERCISE)
    tagged = ["solution" in tags(c) for c in nb.cells]
    assert tagged == [False, False, False, True, True, True]


def test_code_inside_exercise_and_solution_is_top_level_and_executed():
    """No code cell is nested in a directive and none is skip-execution."""
    nb = nb_of(EXERCISE)
    for cell in code_cells(nb):
        assert "skip-execution" not in tags(cell)
    # each code cell is its own cell, not text inside a markdown directive
    assert "```{python}" not in md_text(nb)
    assert "cafe_1 = " not in md_text(nb)


def test_solution_inside_exercise_as_last_block():
    nb = nb_of("::: {#exr-a}\nDo it.\n\n::: {.solution}\nDone.\n:::\n:::\n")
    sources = [c.source for c in nb.cells]
    assert sources[0].startswith("```{exercise-start}\n:label: exr-a\n```")
    assert any(s.startswith("```{solution-start} exr-a") for s in sources)
    assert "solution" in tags(nb.cells[-1])


def test_inline_expression_inside_a_solution_is_hidden_with_the_solution():
    nb = nb_of(
        "::: {#exr-a}\nDo it.\n:::\n\n::: {.solution}\nIt is `{python} 2`.\n:::\n"
    )
    hidden = [c for c in code_cells(nb) if c.metadata.get("qmd", {}).get("inline")]
    assert len(hidden) == 1
    assert tags(hidden[0]) == ["remove-cell", "solution"]


def test_exercise_without_title():
    (start, *_rest) = nb_of("::: {#exr-a}\nDo it.\n:::\n").cells
    assert start.source.startswith("```{exercise-start}\n:label: exr-a\n```")


# --------------------------------------------------------------------------
# bibliography placement


def test_refs_div_becomes_a_bibliography_directive():
    (cell,) = nb_of("# References {.unnumbered}\n\n::: {#refs}\n:::\n").cells
    assert cell.source == "# References\n\n```{bibliography}\n```"


# --------------------------------------------------------------------------
# errors: every construct outside the subset, with the right line


ERRORS = [
    # (id, qmd text, line of the error, fragment of the message)
    ("unknown div", "Text.\n\n::: {.column-margin}\nx\n:::\n", 3,
     "unsupported ::: div"),
    ("unclosed div", "Text.\n\n::: {.callout-note}\nBody.\n", 3, "never closed"),
    ("closing without div", "Text.\n:::\n", 2, "closes no open div"),
    ("shortcode", "Text.\n\n{{< include other.qmd >}}\n", 3, "shortcodes"),
    ("inline shortcode", "A line\nand {{< meta title >}} here\n", 2, "shortcodes"),
    ("r chunk", "Text.\n\n```{r}\nx <- 1\n```\n", 3, "use a %%R cell"),
    ("bash chunk", "```{bash}\nls\n```\n", 1, "not supported"),
    (
        "chunk in callout",
        "::: {.callout-note}\nText.\n\n```{python}\nx = 1\n```\n:::\n",
        4,
        "code chunk inside a callout",
    ),
    ("unknown option", "```{python}\n#| echo: false\n#| fig-width: 4\nx = 1\n```\n",
     3, "chunk option 'fig-width' is not supported"),
    ("non-boolean option", "```{python}\n#| echo: fenced\nx = 1\n```\n", 2,
     "only true or false"),
    ("option given twice", "```{python}\n#| echo: false\n#| echo: true\nx\n```\n",
     3, "given twice"),
    (
        "fig-cap without fig-alt",
        "Text.\n\n```{python}\n#| label: fig-a\n#| fig-cap: A plot.\nplot()\n```\n",
        4,
        "fig-alt is missing",
    ),
    (
        "fig-alt without fig-cap",
        "```{python}\n#| label: fig-a\n#| fig-alt: Dots.\nplot()\n```\n",
        2,
        "fig-cap is missing",
    ),
    ("fig label without caption", "```{python}\n#| label: fig-a\nplot()\n```\n", 2,
     "needs both fig-cap and fig-alt"),
    ("caption without label", "```{python}\n#| echo: false\n#| fig-cap: A\nx\n```\n",
     3, "needs a 'label: fig-name'"),
    ("table without caption", "```{python}\n#| label: tbl-a\nt\n```\n", 2,
     "needs a tbl-cap"),
    ("sec label on chunk", "```{python}\n#| label: sec-a\nx\n```\n", 2,
     "cannot be put on a code chunk"),
    ("bad plain label", "```{python}\n#| label: My_Label\nx\n```\n", 2,
     "must match"),
    ("cell magic other than R", "```{python}\n%%bash\nls\n```\n", 2,
     "cell magic %%bash"),
    ("empty chunk", "Text.\n\n```{python}\n#| echo: false\n```\n", 3,
     "empty code chunk"),
    ("chunk header options", "```{python echo=FALSE}\nx\n```\n", 1,
     "give options as #| lines"),
    ("unclosed chunk", "Text.\n\n```{python}\nx = 1\n", 3, "never closed"),
    ("solution without exercise", "Text.\n\n::: {.solution}\nAnswer.\n:::\n", 3,
     "solution with no exercise"),
    (
        "solution not right after its exercise",
        "::: {#exr-a}\nDo.\n:::\n\nText.\n\n::: {.solution}\nAnswer.\n:::\n",
        7,
        "solution with no exercise",
    ),
    ("bracketed span", "Text.\nA [small]{.smallcaps} word.\n", 2, "bracketed spans"),
    ("raw block", "Text.\n\n```{=html}\n<b>x</b>\n```\n", 3, "raw blocks"),
    ("raw inline", "Text `<b>`{=html} here.\n", 1, "raw inline"),
    ("tabset", "::: {.panel-tabset}\n## A\n:::\n", 1, "tabsets"),
    ("citation with locator", "Text.\nAs [@bates2015, p. 3] says.\n", 2,
     "no prefix, suffix, locator"),
    ("citation with prefix", "As [see @bates2015] says.\n", 1,
     "no prefix, suffix, locator"),
    ("suppressed author", "As [-@bates2015] says.\n", 1, "not supported"),
    ("unsupported xref kind", "Text.\n\nBy @thm-main we know.\n", 3,
     "kind thm- (@thm-main) is not supported"),
    ("capitalised xref", "See @Fig-a.\n", 1, "capitalised cross-reference"),
    ("xref in brackets", "See [@fig-a].\n", 1, "inside brackets"),
    ("bare xref outside brackets", "See -@fig-a here.\n", 1, "inside brackets only"),
    ("xref group with a citation", "See [Figure -@fig-a and @bates2015].\n", 1,
     "mixes citations and cross-references"),
    ("underscore in a label", "# A {#sec-a_b}\n", 1, "lower-case words"),
    ("heading attributes", "## Title {#sec-a .smaller}\n", 1, "heading attributes"),
    ("heading label not sec", "## Title {#intro}\n", 1, "must start with sec-"),
    ("equation label not eq", "$$\nx\n$$ {#fig-x}\n", 3, "must start with eq-"),
    ("text after math", "$$\nx\n$$ and more\n", 3, "text after closing $$"),
    ("blank line in math", "$$\nx\n\ny\n$$\n", 3, "blank line inside $$"),
    ("unclosed math", "Text.\n\n$$\nx = 1\n", 3, "never closed"),
    ("unknown callout", "::: {.callout-danger}\nx\n:::\n", 1, "unsupported callout"),
    ("callout bad attribute", '::: {.callout-note icon="false"}\nx\n:::\n', 1,
     "icon not supported"),
    ("callout bad collapse", '::: {.callout-note collapse="yes"}\nx\n:::\n', 1,
     "collapse must be"),
    ("callout id", "::: {#nte-a .callout-note}\nx\n:::\n", 1, "callout ids"),
    ("heading inside callout", "::: {.callout-note}\nText.\n\n## Late\n:::\n", 4,
     "headings inside"),
    ("exercise with classes", "::: {#exr-a .hard}\nx\n:::\n", 1, "only {#exr-name}"),
    ("exercise in callout", "::: {.callout-note}\n::: {#exr-a}\nx\n:::\n:::\n", 2,
     "exercise div inside a callout"),
    ("refs not empty", "::: {#refs}\nText.\n:::\n", 1, "must be empty"),
    ("markdown image", "Text.\n![A cat](cat.png)\n", 2, "markdown images"),
    ("inline r", "The value `{r} 1 + 1`.\n", 1, "only `{python} expr`"),
    ("invalid inline python", "Line one\nvalue `{python} 1 +` here\n", 2,
     "not a valid Python expression"),
    ("inline in heading", "## Mean `{python} m`\n", 1, "not supported in headings"),
    ("footnote inline", "Text^[a note].\n", 1, "inline footnotes"),
    ("myst role", "See {numref}`fig-a`.\n", 1, "MyST role syntax"),
    ("myst target", "(sec-a)=\n# A\n", 1, "MyST target syntax"),
    ("raw tex", "Use \\newpage here.\n", 1, "raw TeX commands"),
    ("duplicate label", "# A {#sec-a}\n\n# B {#sec-a}\n", 3,
     "already defined at line 1"),
    ("strikeout", "This is ~~gone~~.\n", 1, "strikeout"),
    ("indented div", "- item\n\n  ::: {.callout-note}\n  x\n  :::\n", 3,
     "indented ::: div"),
]


@pytest.mark.parametrize(
    "text, line, fragment", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_unsupported_construct_is_an_error_at_its_line(text, line, fragment):
    with pytest.raises(QmdSyntaxError) as info:
        qmd_to_notebook(text, PATH)
    err = info.value
    assert str(err).startswith(f"{PATH}:{line}: "), str(err)
    assert fragment in err.message, err.message
    assert (err.path, err.line) == (PATH, line)
    assert isinstance(err, ValueError)


def test_error_lines_count_front_matter_lines():
    text = "---\ntitle: A\n---\n\nText.\n\n{{< pagebreak >}}\n"
    with pytest.raises(QmdSyntaxError) as info:
        qmd_to_notebook(text, PATH)
    assert info.value.line == 7


def test_error_line_inside_a_long_paragraph():
    text = "Line one\nline two\nline three [x]{.y}\nline four\n"
    with pytest.raises(QmdSyntaxError) as info:
        qmd_to_notebook(text, PATH)
    assert info.value.line == 3


def test_quarto_syntax_in_literal_code_is_not_an_error():
    """Fenced literal code and code spans are copied, never parsed."""
    text = (
        "Write `{{< include x >}}` and `[x]{.y}` like this:\n\n"
        "````markdown\n::: {.panel-tabset}\n```{r}\nx\n```\n:::\n````\n"
    )
    nb = qmd_to_notebook(text, PATH)
    assert code_cells(nb) == []
    assert "::: {.panel-tabset}" in md_text(nb)


def test_error_is_picklable_with_its_fields():
    import pickle

    err = pickle.loads(pickle.dumps(QmdSyntaxError("a.qmd", 7, "bad")))
    fields = (err.path, err.line, err.message, str(err))
    assert fields == ("a.qmd", 7, "bad", "a.qmd:7: bad")


# --------------------------------------------------------------------------
# scan

SCANNED = """\
---
title: "Scanned"
---

# Scanned {#sec-scanned}

See @fig-a, @tbl-b and @eq-c [@bates2015; @gelman2007].

$$
y = x
$$ {#eq-c}

```{python}
#| label: fig-a
#| fig-cap: "A."
#| fig-alt: "Dots."
plot()
```

```{python}
#| label: tbl-b
#| tbl-cap: "B."
t()
```

::: {#exr-d}
As @mcelreath2020 shows, see @sec-elsewhere.
:::

::: {.solution}
Done, see @exr-d.
:::
"""


def test_scan_lists_labels_with_their_lines():
    result = scan(SCANNED, PATH)
    assert result.path == PATH
    assert sorted(result.defines, key=lambda d: d.line) == [
        Label("sec-scanned", "sec", 5),
        Label("eq-c", "eq", 11),  # the line of {#eq-c}, not of the first $$
        Label("fig-a", "fig", 14),
        Label("tbl-b", "tbl", 21),
        Label("exr-d", "exr", 26),
    ]


def test_scan_lists_uses_with_their_lines():
    result = scan(SCANNED, PATH)
    assert sorted(result.crossrefs, key=lambda u: (u.line, u.key)) == [
        Use("eq-c", "eq", 7),
        Use("fig-a", "fig", 7),
        Use("tbl-b", "tbl", 7),
        Use("sec-elsewhere", "sec", 27),
        Use("exr-d", "exr", 31),
    ]
    assert sorted(result.citations, key=lambda u: (u.line, u.key)) == [
        Use("bates2015", "cite", 7),
        Use("gelman2007", "cite", 7),
        Use("mcelreath2020", "cite", 27),
    ]


def test_scan_raises_the_reader_errors():
    with pytest.raises(QmdSyntaxError) as info:
        scan("ok\n\n::: {.foo}\n:::\n", PATH)
    assert info.value.line == 3


def test_scan_sees_references_in_captions_and_callouts():
    text = (
        "::: {.callout-note}\nSee @fig-z.\n:::\n\n"
        "```{python}\n#| label: fig-y\n#| fig-cap: \"Like @fig-z.\"\n"
        "#| fig-alt: \"Dots.\"\nplot()\n```\n"
    )
    uses = scan(text, PATH).crossrefs
    assert Use("fig-z", "fig", 2) in uses
    assert Use("fig-z", "fig", 7) in uses


def test_check_references_across_chapters():
    a = scan("# A {#sec-a}\n\nSee @sec-b and @fig-none [@known; @unknown].\n", "a.qmd")
    b = scan("# B {#sec-b}\n\nBack to @sec-a.\n\n# Again {#sec-a}\n", "b.qmd")
    problems = [str(p) for p in check_references([a, b], citation_keys=["known"])]
    assert problems == [
        "b.qmd:5: label 'sec-a' already defined at a.qmd:1",
        "a.qmd:3: @fig-none refers to a label that no chapter defines",
        "a.qmd:3: citation @unknown is not in the bibliography "
        "(add it to references.bib or fix the key)",
    ]
    assert check_references([a], citation_keys=None)[0].line == 3


def test_check_references_of_a_consistent_book_is_empty():
    a = scan("# A {#sec-a}\n\nSee @sec-b [@k].\n", "a.qmd")
    b = scan("# B {#sec-b}\n\nBack to @sec-a.\n", "b.qmd")
    assert check_references([a, b], citation_keys={"k"}) == []


# --------------------------------------------------------------------------
# pipe tables with Quarto's caption line

CAPTIONED = """\
Before.

| symbol | meaning |
|:-------|:--------|
| $\\alpha$ | see @sec-a |

: What each symbol means {#tbl-symbols}

After, @tbl-symbols.
"""


def test_a_captioned_pipe_table_becomes_a_numbered_table_directive():
    nb = nb_of(CAPTIONED)
    text = md_text(nb)
    assert "```{table} What each symbol means\n:name: tbl-symbols\n\n" in text
    # the cell's math stays, its reference is translated
    assert "| $\\alpha$ | see {qmd-ref}`sec-a` |" in text
    assert ": What each symbol means" not in text  # the caption line is gone
    assert "Before." in text and "After," in text
    defined = scan(textwrap.dedent(CAPTIONED), PATH).defines
    assert [(d.name, d.line) for d in defined if d.name == "tbl-symbols"] == [
        ("tbl-symbols", 7)]  # defined at its caption line


def test_the_caption_may_follow_the_table_directly():
    text = md_text(nb_of("| a |\n|---|\n| 1 |\n: One {#tbl-one}\n"))
    assert text.startswith("```{table} One\n:name: tbl-one\n\n| a |")


@pytest.mark.parametrize("text, line, fragment", [
    ("| a |\n|---|\n| 1 |\n\n: One row\n", 5, "malformed table caption"),
    ("| a |\n|---|\n| 1 |\n\n: One {#fig-one}\n", 5, "tbl"),
    ("| a |\n|---|\n| 1 |\n\n: {#tbl-one}\n", 5, "malformed table caption"),
    ("Text.\n\n: One {#tbl-one}\n", 3, "no pipe table comes right before it"),
    ("| a |\n|---|\n\n\n: One {#tbl-one}\n", 5, "more than one blank line"),
    ("| a |\n| 1 |\n\n: One {#tbl-one}\n", 1, "no header rule"),
])
def test_a_malformed_table_caption_is_refused_at_its_line(text, line, fragment):
    with pytest.raises(QmdSyntaxError) as info:
        qmd_to_notebook(text, PATH)
    assert str(info.value).startswith(f"{PATH}:{line}: "), str(info.value)
    assert fragment in info.value.message
