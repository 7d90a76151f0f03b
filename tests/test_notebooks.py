"""The downloadable notebooks' Markdown, on small synthetic notebooks.

The fixture book's build (tests/test_fixture_book.py) checks the exported
notebooks of a real build; these tests check each translation and that the
leftover-syntax gate catches what it must.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from qmd_sphinx.nbmarkdown import (
    Bibliography,
    NotebookMarkdownError,
    SiteLinks,
    jupyter_notebook,
    leftover_syntax,
)
from qmd_sphinx.numbering import Target
from qmd_sphinx.quarto_config import QuartoConfigError, load_quarto

TARGETS = {
    "sec-fit": Target("sec-fit", "book/fit", "sec-fit", "Chapter", "3", "Fit"),
    "eq-m": Target("eq-m", "book/model", "equation-eq-m", "Equation", "2.5", ""),
    "fig-w": Target("fig-w", "book/fit", "fig-w", "Figure", "3.1", ""),
    "exr-s": Target("exr-s", "book/fit", "exr-s", "Exercise", "3.2", ""),
}
BIB = """
@article{bates2015,
  author = {Bates, Douglas and M{\\"a}chler, Martin and Bolker, Ben},
  title = {Fitting Linear Mixed-Effects Models Using {lme4}},
  journal = {Journal of Statistical Software}, year = {2015}
}
@book{gelman2007,
  author = {Gelman, Andrew and Hill, Jennifer},
  title = {Data Analysis}, publisher = {CUP}, year = {2007}
}
"""


@pytest.fixture
def bib(tmp_path):
    path = tmp_path / "refs.bib"
    path.write_text(BIB, encoding="utf-8")
    return Bibliography([path])


def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def _md(text, **meta):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"),
                                         metadata=meta)


RELATIVE = SiteLinks()  # no site-url: links relative to downloads/notebooks/


def convert(bib, *cells, links=RELATIVE, cited=None):
    return jupyter_notebook(_nb(*cells), TARGETS, links, bib, "x.ipynb", cited)


def test_references_link_relative_to_the_site_or_to_site_url(bib):
    cell = _md("As {qmd-ref}`eq-m` and Equations {qmd-num}`eq-m`, {qmd-ref}`sec-fit`.")
    reader = convert(bib, cell, links=SiteLinks(depth=2)).cells[0].source
    assert reader == ("As [Equation 2.5](../../book/model.html#equation-eq-m) and "
                      "Equations [2.5](../../book/model.html#equation-eq-m), "
                      "[Chapter 3](../../book/fit.html#sec-fit).")
    student = convert(bib, cell, links=SiteLinks(depth=3)).cells[0].source
    assert "(../../../book/model.html#equation-eq-m)" in student
    site = convert(bib, cell, links=SiteLinks("https://x.example.org/b/"))
    assert "(https://x.example.org/b/book/fit.html#sec-fit)" in site.cells[0].source


def test_citations_and_the_references_cell(bib):
    nb = convert(bib, _md("{cite:t}`gelman2007` and {cite:p}`bates2015,gelman2007`."))
    assert nb.cells[0].source == (
        "Gelman and Hill (2007) and (Bates et al. 2015; Gelman and Hill 2007).")
    refs = nb.cells[-1].source.splitlines()
    assert refs[0] == "## References"
    assert refs[2].startswith('- <a id="ref-bates2015"></a>Douglas Bates, Martin '
                              "Mächler, and Ben Bolker")
    assert refs[3].startswith('- <a id="ref-gelman2007"></a>Andrew Gelman and')
    with pytest.raises(NotebookMarkdownError, match="'nokey'"):
        convert(bib, _md("{cite:p}`nokey`"))


def test_bibliography_directive_lists_what_the_book_cites(bib):
    nb = convert(bib, _md("# References\n\n```{bibliography}\n```"),
                 cited=["gelman2007"])
    assert nb.cells[0].source.count("\n- ") == 1 and "Gelman" in nb.cells[0].source
    assert len(nb.cells) == 1  # nothing cited here: no References cell


def test_equations_targets_callouts_exercises_solutions(bib):
    nb = convert(
        bib,
        _md("""
            (sec-fit)=
            # Fit

            ```{math}
            :label: eq-m

            y = a + b x
            ```

            ::::{admonition} Why
            :class: warning dropdown
            Because {qmd-ref}`fig-w`.

            :::{tip}
            Inner.
            :::
            ::::
            """),
        _md("""
            ```{exercise-start} Square it
            :label: exr-s
            ```

            Do it.
            """),
        _md("```{exercise-end}\n```"),
        _md("```{solution-start} exr-s\n:label: sol-exr-s\n:class: dropdown\n```\n"
            "\nLike this.", tags=["solution"]),
    )
    first = nb.cells[0].source
    assert first.startswith('# <a id="sec-fit"></a>Fit\n')
    assert '<a id="eq-m"></a>\n\n$$\ny = a + b x\n\\tag{2.5}\n$$' in first
    assert ("> **Why**\n>\n> Because [Figure 3.1](../../book/fit.html#fig-w).\n>\n"
            "> > **Tip**\n> >\n> > Inner.") in first
    assert nb.cells[1].source == ('### <a id="exr-s"></a>Exercise 3.2 (Square it)'
                                  "\n\nDo it.")
    assert len(nb.cells) == 3  # the cell of exercise-end alone is gone
    assert nb.cells[2].source == "#### Solution\n\nLike this."
    assert nb.cells[2].metadata["tags"] == ["solution"]


def test_blank_lines_collapse_outside_code_only(bib):
    nb = convert(bib, _md("A\n\n\n\nB\n\n```python\nx = 1\n\n\ny = 2\n```"))
    assert nb.cells[0].source == "A\n\nB\n\n```python\nx = 1\n\n\ny = 2\n```"


def test_references_to_chapters_a_sub_book_leaves_out(bib):
    cell = _md("See {qmd-ref}`sec-gone` and {qmd-ref}`eq-m`.")
    nb = jupyter_notebook(_nb(cell), TARGETS, RELATIVE, bib, "x", [],
                          left_out=frozenset({"sec-gone"}))
    assert nb.cells[0].source == (
        "See sec-gone and [Equation 2.5](../../book/model.html#equation-eq-m).")
    with pytest.raises(NotebookMarkdownError, match="'sec-gone'"):
        convert(bib, cell)


def test_figure_captions_become_cells_beside_the_figure(bib):
    caption = "Waits, {cite:t}`bates2015`."
    fig = nbformat.v4.new_code_cell("plot()", metadata={
        "mystnb": {"figure": {"name": "fig-w", "caption": caption}}
    })
    nb = convert(bib, fig)
    assert nb.cells[0].cell_type == "code"
    assert nb.cells[1].source == ('<a id="fig-w"></a>**Figure 3.1** Waits, '
                                  "Bates et al. (2015).")


def test_unknown_targets_and_directives_are_errors(bib):
    with pytest.raises(NotebookMarkdownError, match="'fig-none'"):
        convert(bib, _md("See {qmd-ref}`fig-none`."))
    with pytest.raises(NotebookMarkdownError, match="directive {figure}"):
        convert(bib, _md("```{figure} a.png\n```"))
    with pytest.raises(NotebookMarkdownError, match="never closed"):
        convert(bib, _md(":::{note}\nopen"))


LEFTOVER_CELLS = [
    "See {numref}`fig-w`.",
    "As in {eq}`eq-m`.",
    "As {cite:p}`bates2015` says.",
    "(sec-fit)=\n# Fit",
    "```{note}\nx\n```",
    ":::{note}\nx\n:::",
    "Mean `{python} mean`.",
    "Shown in @fig-w.",
    "By @eq-m.",
    "See {ref}`sec-fit`.",
    "Value {glue:md}`k:myst`.",
    "Also {qmd-ref}`eq-m`.",
    "# Fit {#sec-fit}",
]


@pytest.mark.parametrize("source", LEFTOVER_CELLS)
def test_leftover_scan_fails_on_myst_and_quarto_syntax(source):
    nb = _nb(_md("Clean text, $x_{ij}$, a@b.org."), _md(source),
             nbformat.v4.new_code_cell("# {numref}`x` in code is fine"))
    problems = leftover_syntax(nb)
    assert problems and all(p.startswith("markdown cell 2,") for p in problems)


def test_leftover_scan_passes_jupyter_markdown():
    nb = _nb(_md("""
        # <a id="sec-fit"></a>Fit

        > **Note**
        >
        > See [Figure 3.1](../../book/fit.html#fig-w), mail a@b.org,
        > $\\frac{1}{J}$ and | a | b | tables.

        $$
        y = a\\tag{2.5}
        $$
        """))
    assert leftover_syntax(nb) == []


def test_the_export_refuses_a_notebook_with_leftovers(bib):
    # a role the translation does not know survives it: the gate stops it
    with pytest.raises(NotebookMarkdownError, match="a MyST role"):
        convert(bib, _md("See {numref}`fig-w`."))


def test_site_url_setting(tmp_path):
    (tmp_path / "index.qmd").write_text("# Preface\n", encoding="utf-8")

    def config(extra):
        (tmp_path / "_quarto.yml").write_text(
            "project:\n  type: book\nbook:\n  title: T\n  chapters:\n"
            f"    - index.qmd\n{extra}", encoding="utf-8")
        return load_quarto(tmp_path)

    assert config("").site_url == ""
    assert config('  site-url: "https://a.example.org/b/"\n').site_url == (
        "https://a.example.org/b")
    with pytest.raises(QuartoConfigError, match="site-url"):
        config("  site-url: a.example.org\n")


def test_student_notebooks_get_an_answer_cell_after_each_exercise(bib):
    exercise = _md("""
        ```{exercise-start} Square it
        :label: exr-s
        ```

        Do it.

        ```{exercise-end}
        ```

        After the exercise.
        """)
    solution = _md("```{solution-start} exr-s\n```\n\nLike this.", tags=["solution"])
    student = jupyter_notebook(_nb(exercise), TARGETS, RELATIVE, bib, "x", [],
                               answer_cells=True)
    kinds = [(c.cell_type, c.source, c.metadata.get("tags")) for c in student.cells]
    assert kinds == [
        ("markdown", '### <a id="exr-s"></a>Exercise 3.2 (Square it)\n\nDo it.', None),
        ("code", "", ["answer"]),
        ("markdown", "After the exercise.", None),
    ]
    assert len({c.id for c in student.cells}) == 3
    # the reader's notebook: the exercise, then its solution, no answer cell
    reader = convert(bib, exercise, solution)
    assert [c.cell_type for c in reader.cells] == ["markdown"] * 3
    assert "answer" not in str([c.metadata for c in reader.cells])


# ---- the setup cell (the first cell of every downloaded notebook)

WHEEL = "multilevel-0.1.0-py3-none-any.whl"


def _setup_functions(tmp_path, **cell):
    """The setup cell's functions, without running it."""
    from qmd_sphinx.notebooks import setup_cell

    source = setup_cell(**{"wheel": WHEEL, "site_url": "", "r": True, **cell}).source
    head, call, _ = source.partition("\ninstall_package()\n")
    assert call, "the cell no longer calls install_package()"
    namespace: dict = {}
    exec(compile(head, "setup-cell", "exec"), namespace)
    return namespace


def test_setup_cell_constants_per_chapter(tmp_path):
    from qmd_sphinx.notebooks import needs_r, setup_cell

    cell = setup_cell(WHEEL, "https://x.example.org/b/", False)
    assert cell.metadata["tags"] == ["setup"]
    assert f'\nWHEEL = "{WHEEL}"\n' in cell.source
    assert 'SITE_DOWNLOADS = "https://x.example.org/b/downloads"  #' in cell.source
    assert "\nNEEDS_R = False  # does this chapter run R?\n" in cell.source
    compile(cell.source, "setup-cell", "exec")  # it is Python
    assert 'SITE_DOWNLOADS = ""  #' in setup_cell(WHEEL, "", True).source
    plain = _nb(nbformat.v4.new_code_cell("import numpy as np"))
    assert not needs_r(plain)
    for code in ("%%R -i cafes\nlmer(y ~ 1)", "%load_ext rpy2.ipython",
                 "fit = fit_lmer(CAFE_FORMULA, cafes)"):
        assert needs_r(_nb(nbformat.v4.new_code_cell(code))), code


def test_setup_cell_finds_the_wheel_as_the_site_lays_it_out(tmp_path):
    ns = _setup_functions(tmp_path)
    student = tmp_path / "downloads" / "notebooks" / "student"
    student.mkdir(parents=True)
    assert ns["wheel_source"](student) is None  # no copy, no site
    (tmp_path / "downloads" / WHEEL).write_bytes(b"")
    assert ns["wheel_source"](student) == str(tmp_path / "downloads" / WHEEL)
    online = _setup_functions(tmp_path, site_url="https://x.example.org/b")
    assert online["wheel_source"](tmp_path / "elsewhere") == (
        f"https://x.example.org/b/downloads/{WHEEL}")


def _fake_rscript(folder, prints):
    folder.mkdir(exist_ok=True)
    script = folder / "Rscript"
    script.write_text(f"#!/bin/sh\necho {prints}\n", encoding="utf-8")
    script.chmod(0o755)
    return folder


def test_setup_cell_names_the_command_that_installs_r_or_lme4(tmp_path, monkeypatch):
    ns = _setup_functions(tmp_path)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    message = ns["check_r"]()
    debian = Path("/etc/debian_version").is_file()
    assert message.startswith("R is not installed: ")
    if debian:
        assert message.endswith("sudo apt-get install -y r-base-core r-base-dev "
                                "r-cran-lme4")
    monkeypatch.setenv("PATH", str(_fake_rscript(tmp_path / "bin", "FALSE")))
    message = ns["check_r"]()
    assert message.startswith("the R package lme4 is not installed: ")
    if debian:
        assert message.endswith("sudo apt-get install -y r-cran-lme4")
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab")  # Colab: R, no lme4
    assert ns["check_r"]().endswith("""!Rscript -e 'install.packages("lme4")'  """
                                    "(a few minutes)")


@pytest.mark.needs_r
def test_setup_cell_finds_r_lme4_and_rpy2_here(tmp_path):
    assert _setup_functions(tmp_path)["check_r"]() is None


def test_setup_cell_without_the_wheel_says_where_to_get_it(tmp_path):
    import subprocess
    import sys

    from qmd_sphinx.notebooks import setup_cell

    # this environment imports the checkout's package, of the wheel's
    # version: the cell uses it and installs nothing
    cell = setup_cell(WHEEL, "", False).source
    run = subprocess.run([sys.executable, "-c", cell], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "multilevel 0.1.0 from " in run.stdout
    # a wheel of another version must be installed, and is not there
    other = "multilevel-9.9.9-py3-none-any.whl"
    cell = setup_cell(other, "", False).source
    run = subprocess.run([sys.executable, "-c", cell], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode != 0
    assert (f"RuntimeError: {other} not found: download it from the downloads/ "
            f"folder of the book's site into {tmp_path}") in run.stderr
