"""Build tests/fixture_book/ (HTML, PDF, notebooks) and check what came out.

The fixture book uses every construct of the Quarto subset, a ``%%R`` cell and
a figure. It is copied to a temporary folder and built once per module with
``scripts/build_book.py`` (as ``make book`` does); then the cache is exercised
(rebuild, prose edit, bridge change, code change) and broken copies must fail
with ``file:line``. The hashes that key the execution cache (the package the
chapters import, ``$QMD_SPHINX_CODE``) and the re-reading (the bridge,
``$QMD_SPHINX_BRIDGE``) are taken from snapshots of ``code/multilevel`` and
``code/qmd_sphinx``, so the test can change them without touching the
repository, and so a concurrent edit of ``code/`` cannot disturb it.

Executions are counted through ``$FIXTURE_EXECUTION_LOG``: a hidden
``include: false`` chunk of each executable chapter appends a line to it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
import pytest

pytestmark = pytest.mark.build

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixture_book"
SCRIPT = REPO / "scripts" / "build_book.py"
# the chapters with code (and an execution log line)
CHAPTERS = ("model", "fits", "more", "extra")
PDF_NAME = "fixture-book.pdf"  # the title's words: _quarto.yml has no output-file

# What the fixture computes, computed here independently of the build.
_DRAWS = np.random.default_rng(20251124).normal(3.5, 1.0, 12)
MEAN_WAIT = f"{_DRAWS.mean():.3f}"  # `{python} f"{mean_wait:.3f}"`
SOLUTION_MEAN = f"{_DRAWS[:4].mean():.2f}"  # cafe 1 = the first four draws
SQUARED_SLOPE = str(round((-5.344) ** 2, 2))  # `{python} round(slope_squared, 2)`
SOLUTION_SLOPE = f"{(-5.344) ** 2:.4f}"
# lm(mpg ~ wt, mtcars): Henderson and Velleman's data, coefficients as R prints
R_BLOCK = "R-LINE-1\nR-LINE-2\n(Intercept)          wt \n     37.285      -5.344 \n"

LITERAL_SYNTAX = ("??", "@fig-", "@sec-", "@tbl-", "@eq-", "@exr-", "{python}",
                  ":::", "{numref}", "{qmd-", "{cite", "{glue", "{eq}",
                  "{{<")  # fmt: skip


# What the NUMBERS paragraph of chapters/more.qmd prints, as Quarto's book
# format prints it: chapters count on across the parts, figures, tables,
# exercises and equations restart from 1 in each chapter, the appendix is A,
# a section without a number prints its title, [-@x] prints the number alone.
NUMBERS = [
    "Chapter 1", "Chapter 3", "Section 3.1", "Appendix A", "Section A.1",
    "How to read it", "Equation 1.1", "Equation 3.1", "Equation A.1", "3.1",
    "Equations 1.1 and A.1", "Figure 1.1", "Figure 3.1", "Figure A.1",
    "Table 1.1", "Table 3.1", "Table 3.2", "Table A.1", "Exercise 1.1", "Exercise 2.1",
    "Exercise 3.1", "Exercise A.1",
]  # fmt: skip
# (page, caption text, the number its caption prints) in every format
CAPTIONS = [
    ("chapters/model", "Waiting times by cafe.", "Figure 1.1"),
    ("chapters/model", "Mean waiting time per cafe.", "Table 1.1"),
    ("chapters/more", "Three more waits.", "Figure 3.1"),
    ("chapters/more", "The three waits.", "Table 3.1"),
    ("chapters/more", "Symbols typed as a table.", "Table 3.2"),
    ("chapters/extra", "An appendix figure.", "Figure A.1"),
    ("chapters/extra", "An appendix table.", "Table A.1"),
]
EQUATIONS = {"chapters/model": ["(1.1)"], "chapters/more": ["(3.1)"],
             "chapters/extra": ["(A.1)"]}  # fmt: skip
EXERCISES = {"chapters/model": ["Exercise 1.1"], "chapters/fits": ["Exercise 2.1"],
             "chapters/more": ["Exercise 3.1"], "chapters/extra": ["Exercise A.1"]}


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_book", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@dataclass
class Book:
    base: Path
    root: Path  # the copy of the fixture that is built
    out: Path
    code: Path  # the snapshot of code/ whose hash keys the cache
    log: Path
    env: dict
    times: dict = field(default_factory=dict)
    output: str = ""  # what the clean build printed

    def build(self, formats="html,pdf,notebooks", root=None, out=None, chapters=(),
              jobs=None):
        cmd = [sys.executable, str(SCRIPT), "--root", str(root or self.root),
               "--out", str(out or self.out), "--formats", formats]  # fmt: skip
        if jobs is not None:
            cmd += ["--jobs", str(jobs)]
        if chapters:
            cmd += ["--chapters", *chapters]
        start = time.perf_counter()
        result = subprocess.run(
            cmd, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=600
        )
        seconds = time.perf_counter() - start
        return result, seconds

    def executions(self) -> list[str]:
        return self.log.read_text().split() if self.log.is_file() else []

    def html(self, name: str):
        from bs4 import BeautifulSoup

        path = self.out / "html" / f"{name}.html"
        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        for anchor in soup.select("a.headerlink"):  # the theme's "#" permalinks
            anchor.decompose()
        return soup

    def main_text(self, name: str) -> str:
        return _squash(self.html(name).find("main").get_text(" "))

    def notebook(self, name: str, student: bool = False):
        folder = self.out / "notebooks" / ("student" if student else "")
        return nbformat.read(folder / f"{name}.ipynb", as_version=4)


def _child_env() -> dict:
    """This process's environment, minus what starting R here added.

    rpy2 (R is started in this pytest process by ``r_available()`` or by an
    earlier test) sets ``LD_LIBRARY_PATH=$R_HOME/lib:/usr/lib/<arch>:...``
    in ``os.environ``; a child Python then loads the system's libpython
    instead of its own, and the build dies in odd places (soupsieve's regexes).
    """
    env = dict(os.environ)
    ld = env.get("LD_LIBRARY_PATH", "")
    if env.get("R_HOME") and ld.startswith(env["R_HOME"].rstrip("/") + "/lib"):
        del env["LD_LIBRARY_PATH"]
    return env


def _report(result) -> str:
    return (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Book:
    from multilevel.lmer import r_available

    if not r_available():
        pytest.skip("R, rpy2 or lme4 is absent: the fixture book has a %%R cell")
    base = tmp_path_factory.mktemp("fixture_book")
    root = base / "book"
    shutil.copytree(FIXTURE, root)
    # what keys the execution cache (as the build's default, code/multilevel)
    # and what keys the re-reading (the bridge), as copies the tests can change
    code = base / "code" / "multilevel"
    shutil.copytree(REPO / "code" / "multilevel", code,
                    ignore=shutil.ignore_patterns("__pycache__"))
    bridge = base / "code" / "qmd_sphinx"
    shutil.copytree(REPO / "code" / "qmd_sphinx", bridge,
                    ignore=shutil.ignore_patterns("__pycache__"))
    log = base / "executions.log"
    env = _child_env()
    env.update(
        FIXTURE_EXECUTION_LOG=str(log),
        QMD_SPHINX_CODE=str(code),
        QMD_SPHINX_BRIDGE=str(bridge),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    b = Book(base, root, base / "out", code, log, env)
    result, seconds = b.build()
    assert result.returncode == 0, _report(result)
    b.times["clean"] = seconds
    b.output = result.stdout + result.stderr
    print(f"\nfixture book, clean build (html, pdf, notebooks): {seconds:.1f} s")
    return b


@pytest.fixture(scope="module")
def pdf_text(book) -> str:
    assert shutil.which("pdftotext"), "pdftotext missing: apt-get install poppler-utils"
    pdf = book.out / "pdf" / PDF_NAME
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    return text


# --------------------------------------------------------------------------
# the clean build


def test_every_output_is_written(book):
    for name in ("index", "chapters/model", "chapters/fits", "chapters/more",
                 "chapters/extra", "chapters/references"):
        assert (book.out / "html" / f"{name}.html").is_file()
    assert (book.out / "pdf" / PDF_NAME).stat().st_size > 10_000
    for name in ("index", "model", "fits", "more", "extra", "references"):
        assert (book.out / "notebooks" / f"{name}.ipynb").is_file()
        assert (book.out / "notebooks" / "student" / f"{name}.ipynb").is_file()
    # each executable chapter ran once
    assert sorted(book.executions()) == sorted(CHAPTERS)


def test_the_student_pdf_leaves_the_solutions_out(book):
    """The student edition: every exercise, no solution (its text, its code,
    its output), read from the same execution cache as the book."""
    from bookcheck.pdf import pdf_text

    full = pdf_text(book.out / "pdf" / PDF_NAME)
    student = pdf_text(book.out / "pdf" / PDF_NAME.replace(".pdf", "-student.pdf"))
    for solution in ("Solution to", "The mean is one line", "SOLUTION-MEAN",
                     "SOLUTION-SLOPE", "solution_mean"):
        assert solution in full, solution
        assert solution not in student, solution
    for exercise in ("Compute the mean wait of cafe 1", "Square the slope of",
                     "cafe_1 = waits"):
        assert exercise in full and exercise in student, exercise
    assert "Student edition" in student and "Student edition" not in full
    for name in ("chapters/model", "chapters/fits"):
        hits = re.findall(rf"^latex: {re.escape(name)} +\d+\.\d s  cache hit$",
                          book.output, re.M)
        assert len(hits) == 2, (name, hits)  # the book's LaTeX run, the student's
    site = book.out / "html" / "downloads"
    assert (site / PDF_NAME.replace(".pdf", "-student.pdf")).is_file()


def test_build_prints_a_line_per_chapter_and_no_kernel_noise(book):
    out = book.output
    assert "Kernel is running over TCP" not in out  # printed by every kernel
    # a clean build executes the chapters in two Sphinx runs side by side
    # (the dummy builder), each chapter with code in one of them; the site
    # and the PDF then read every chapter from the execution cache
    groups = re.search(r"^build_book: executing \d+ chapter\(s\) in 2 Sphinx runs "
                       r"side by side: (.*)$", out, re.M)
    assert groups, out[-3000:]
    left, right = (set(g.split(", ")) for g in groups.group(1).split(" | "))
    assert left | right >= {"model", "fits", "more", "extra"}
    assert not (left & right) - {"references"}  # no chapter with code twice
    for name in ("index", "chapters/model", "chapters/fits", "chapters/more",
                 "chapters/extra", "chapters/references"):
        assert re.search(rf"^dummy: {re.escape(name)} +\d+\.\d s  executed$", out,
                         re.M), out[-3000:]
        for builder in ("html", "latex"):
            assert re.search(rf"^{builder}: {re.escape(name)} +\d+\.\d s  cache hit$",
                             out, re.M), out[-3000:]
    assert re.search(r"^html: 6 chapter\(s\) read in \d+\.\d s: 6 cache hit$", out,
                     re.M)
    overfull = r"^build_book: pdf: 0 overfull \\hbox\(es\)"
    assert re.search(overfull, out, re.M), out[-3000:]


def test_equations_are_numbered_in_html(book):
    page = book.html("chapters/model")
    numbers = [s.get_text(strip=True) for s in page.select("main span.eqno")]
    assert numbers == ["(1.1)"]  # the labelled one; unlabelled math has none
    target = page.select_one("main #equation-eq-model")
    assert target is not None and "(1.1)" in target.get_text()
    refs = page.select('main a[href="#equation-eq-model"]')
    assert [r.get_text(strip=True) for r in refs] == ["Equation 1.1"]  # Quarto's text
    text = book.main_text("chapters/model")
    assert "Equation 1.1" in text and "Equation (1.1)" not in text
    # and from another chapter
    fits = book.html("chapters/fits")
    other = fits.select('main a[href$="model.html#equation-eq-model"]')
    assert [r.get_text(strip=True) for r in other] == ["Equation 1.1"]


def test_cross_references_are_numbered_links(book):
    fits = book.html("chapters/fits")
    links = {
        a["href"].split("#")[-1]: _squash(a.get_text(" ", strip=True))
        for a in fits.select("main a.reference.internal")
        if "#" in a["href"]
    }
    assert links["sec-model"] == "Chapter 1"  # a chapter's label prints "Chapter"
    assert links["fig-waits"] == "Figure 1.1"
    assert links["tbl-waits"] == "Table 1.1"
    assert links["exr-mean"].startswith("Exercise 1.1")
    assert links["sec-fits"] == "Chapter 2"  # chapters count on across parts


@pytest.mark.parametrize(
    "name", ["index", "chapters/model", "chapters/fits", "chapters/references"]
)
def test_no_literal_quarto_or_myst_syntax_in_html(book, name):
    text = book.main_text(name)
    for literal in LITERAL_SYNTAX:
        assert literal not in text, f"{literal!r} left in {name}.html"


def test_no_literal_quarto_or_myst_syntax_in_pdf(pdf_text):
    for literal in LITERAL_SYNTAX:
        assert literal not in pdf_text, f"{literal!r} left in the PDF"
    assert "Equation 1.1" in pdf_text and "Equation (1.1)" not in pdf_text
    for ref in ("Figure 1.1", "Table 1.1", "Exercise 1.1", "Chapter 2"):
        assert ref in pdf_text
    assert not re.search(r"Section \d\b(?!\.)", pdf_text)  # chapters print "Chapter"


def test_citations_link_to_the_bibliography(book):
    refs = book.html("chapters/references")
    cites = [a for a in book.html("chapters/model").select("main a.reference.internal")
             if a["href"].startswith("references.html#")]  # fmt: skip
    expected = {"2020": "McElreath", "Bates et al., 2015": "Bates",
                "Gelman and Hill, 2007": "Gelman"}  # fmt: skip
    def text(a):
        return _squash(a.get_text()).strip()

    assert {text(a) for a in cites} == set(expected)
    for a in cites:
        entry = refs.find(id=a["href"].split("#", 1)[1])
        assert entry is not None, a["href"]
        assert "citation" in entry.get("class", [])
        assert expected[text(a)] in entry.get_text()
    # the e-mail address is text, not a citation
    assert "fixture.author@example.org" in book.main_text("chapters/model")


def test_bibliography_is_a_list_of_list_items(book):
    """Screen readers (and axe-core) need the entries of role="list" to be
    role="listitem"; docutils marks them with the deprecated doc-biblioentry."""
    lists = book.html("chapters/references").select('main [role="list"]')
    assert lists
    for lst in lists:
        entries = lst.find_all(recursive=False)
        assert entries and all(e.get("role") == "listitem" for e in entries)
    assert 'role="doc-biblioentry"' not in str(book.html("chapters/references"))


def test_bibliography_in_pdf(pdf_text):
    assert "Statistical Rethinking" in pdf_text
    assert "fitting linear mixed-effects models" in _squash(pdf_text).lower()
    assert "McElreath [2020]" in pdf_text
    assert "[Bates et al., 2015]" in pdf_text


def test_inline_values_are_computed_in_html(book):
    assert f"The average wait is {MEAN_WAIT} minutes over 12 visits." in book.main_text(
        "chapters/model"
    )
    assert f"The squared slope is {SQUARED_SLOPE}." in book.main_text("chapters/fits")


def test_inline_values_are_computed_in_pdf(pdf_text):
    text = _squash(pdf_text)
    assert f"The average wait is {MEAN_WAIT} minutes over 12 visits." in text
    assert f"The squared slope is {SQUARED_SLOPE}." in text


def test_solutions_are_in_the_site_collapsed(book):
    for name, printed in (
        ("chapters/model", f"SOLUTION-MEAN {SOLUTION_MEAN}"),
        ("chapters/fits", f"SOLUTION-SLOPE {SOLUTION_SLOPE}"),
    ):
        solutions = book.html(name).select("main div.solution")
        assert len(solutions) == 1
        assert "dropdown" in solutions[0]["class"]
        assert "toggle-shown" not in solutions[0]["class"]
        assert printed in _squash(solutions[0].get_text(" "))


def test_solutions_in_full_notebook_not_in_student_notebook(book):
    for name, marker in (("model", "SOLUTION-MEAN"), ("fits", "SOLUTION-SLOPE")):
        full = book.notebook(name)
        student = book.notebook(name, student=True)
        nbformat.validate(full)
        nbformat.validate(student)
        tagged = [c for c in full.cells if "solution" in c.metadata.get("tags", [])]
        assert tagged and any(marker in c.source for c in tagged)
        out = [o for c in tagged if c.cell_type == "code" for o in c.outputs]
        assert any(marker in o.get("text", "") for o in out)  # executed
        assert marker not in nbformat.writes(student)
        assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
        # the exercises themselves stay in the student's notebook
        assert any(c.source.startswith("### <a id=") and "Exercise" in c.source
                   for c in student.cells)
    assert "cafe_1 = " in nbformat.writes(book.notebook("model", student=True))


def test_notebooks_have_outputs_and_values_not_build_cells(book):
    nb = book.notebook("model")
    text = "\n".join(c.source for c in nb.cells)
    assert f"The average wait is {MEAN_WAIT} minutes" in text
    for build_text in ("{glue", "_qmd_show", "qmd-sphinx: hash"):
        assert build_text not in text
    figure = [c for c in nb.cells if "mystnb" in c.metadata]
    assert len(figure) == 1
    assert any("image/png" in o.get("data", {}) for o in figure[0].outputs)
    fits = book.notebook("fits")
    r_cell = next(c for c in fits.cells if c.source.startswith("%%R"))
    streams = [o for o in r_cell.outputs if o.output_type == "stream"]
    assert len(streams) == 1 and streams[0].text == R_BLOCK


def test_r_output_is_one_readable_block(book):
    blocks = [pre.get_text() for pre in book.html("chapters/fits").select(
        "main div.cell_output pre")]  # fmt: skip
    with_r = [b for b in blocks if "R-LINE-1" in b]
    assert with_r == [R_BLOCK]
    pieces = ("(Intercept)", "wt", "37.285", "-5.344")
    assert not any(b.strip() in pieces for b in blocks)


def test_download_menu_links_exist(book):
    for name, stem in (("chapters/model", "model"), ("chapters/fits", "fits")):
        page = book.html(name)
        hrefs = [a["href"] for a in page.select("a[href]")]
        wanted = {
            f"../downloads/notebooks/{stem}.ipynb",
            f"../downloads/notebooks/student/{stem}.ipynb",
            f"../downloads/{PDF_NAME}",
        }
        assert wanted <= set(hrefs)
        for href in wanted:
            assert (book.out / "html" / "chapters" / href).resolve().is_file(), href


def test_mathjax_is_served_by_the_site(book):
    for page in (book.out / "html").rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "cdn.jsdelivr" not in html and "cdnjs" not in html, page
        assert not re.search(r"""src=["']https?://[^"']*mathjax""", html, re.I), page
    scripts = [s["src"] for s in book.html("chapters/model").select("script[src]")]
    local = [s for s in scripts if "mathjax/tex-chtml.js" in s]
    assert local and local[0].startswith("../_static/mathjax/tex-chtml.js")
    assert (book.out / "html" / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_chunk_options_in_the_site(book):
    page = book.html("chapters/model")
    text = book.main_text("chapters/model")
    outputs = " ".join(o.get_text(" ") for o in page.select("main div.cell_output"))
    # figure: label, caption, alt text; echo: false hides its code
    figure = page.select_one("main figure#fig-waits")
    assert figure is not None
    img = figure.find("img")
    assert img["alt"] == "Dot plot of twelve waiting times, four per cafe."
    assert (book.out / "html" / "chapters" / img["src"]).resolve().is_file()
    assert _squash(figure.find("figcaption").get_text(" ")).strip() == (
        "Figure 1.1 Waiting times by cafe."
    )
    assert "plt.subplots" not in text
    # table: numbered caption on the table the cell displayed
    table = page.select_one("main table#tbl-waits")
    assert table is not None
    assert "Table 1.1" in table.find("caption").get_text(" ")
    # output: false / warning: false drop outputs; include: false drops all
    assert "FIXTURE-HIDDEN-OUTPUT" in text  # the code is shown
    assert "FIXTURE-HIDDEN-OUTPUT" not in outputs
    assert "FIXTURE-WARNING" not in outputs
    assert "FIXTURE_EXECUTION_LOG" not in text
    # eval: false: shown, not run (running it would have failed the build)
    assert "FIXTURE-NOT-EVALUATED" in text and "RuntimeError" not in outputs
    # code-fold: the cell's input is hidden behind a toggle
    fits = book.html("chapters/fits")
    folded = fits.select("main div.cell.tag_hide-input")
    assert len(folded) == 1 and "slope_squared" in folded[0].get_text()


def test_callouts_and_unnumbered_preface(book):
    page = book.html("chapters/model")
    classes = [set(d["class"]) for d in page.select("main div.admonition")]
    assert {"admonition", "note"} in classes  # title="Why varying intercepts"
    assert {"admonition", "warning", "dropdown"} in classes  # collapse="true"
    assert {"admonition", "important"} in classes
    assert {"admonition", "caution", "dropdown", "toggle-shown"} in classes
    assert "Why varying intercepts" in book.main_text("chapters/model")
    assert "A collapsed warning" in book.main_text("chapters/model")
    index = book.html("index")
    assert index.select_one("main h1").get_text(strip=True).startswith("Preface")
    assert not index.select("main h1 span.section-number")
    number = book.html("chapters/fits").select_one("main h1 span.section-number")
    assert number.get_text(strip=True) == "2."


# --------------------------------------------------------------------------
# one numbering in every format


def _notebook_text(nb) -> str:
    """The markdown of ``nb`` as it reads: each link's text without its target."""
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)


def test_references_print_the_same_numbers_in_html_pdf_and_notebook(book, pdf_text):
    from bookcheck.numbers import compare_numbers, printed_references

    printed = {
        fmt: printed_references(text, "NUMBERS-START", "NUMBERS-END")
        for fmt, text in (
            ("html", book.main_text("chapters/more")),
            ("pdf", pdf_text),
            ("notebook", _notebook_text(book.notebook("more"))),
        )
    }
    assert compare_numbers(printed, NUMBERS) == []


def test_captions_equations_and_exercises_number_alike_in_html_and_pdf(
    book, pdf_text
):
    from bookcheck.numbers import flat

    text = flat(pdf_text)
    for page, caption, number in CAPTIONS:
        html = book.html(page)
        shown = [
            _squash(c.get_text(" ")).strip()
            for c in html.select("main figcaption, main table caption")
        ]
        assert any(s.startswith(number) and s.endswith(caption) for s in shown), (
            page, number, shown,
        )
        assert f"{number}: {caption}" in text, (number, caption)
    for page, numbers in EQUATIONS.items():
        eqnos = [s.get_text(strip=True) for s in book.html(page).select("main .eqno")]
        assert eqnos == numbers, page
        for number in numbers:
            assert number in text
    for page, titles in EXERCISES.items():
        shown = [
            _squash(t.get_text(" ")).strip()
            for t in book.html(page).select("main div.exercise p.admonition-title")
        ]
        assert [s.split(" (")[0].strip() for s in shown] == titles, (page, shown)
        for title in titles:
            assert re.search(rf"^\s*{re.escape(title)}\b", pdf_text, re.M), title


def test_appendix_sections_are_lettered_in_html_and_pdf(book, pdf_text):
    heads = [
        _squash(h.get_text(" ")).strip()
        for h in book.html("chapters/extra").select(
            "article.bd-article h1, article.bd-article h2"
        )
    ]
    assert heads == ["A. Extra results", "A.1. One more part"]
    assert re.search(r"A\.1 One more part", flat_pdf := _squash(pdf_text))
    assert "Appendix A" in flat_pdf
    # the unnumbered appendix (the references) takes no letter in the PDF either
    assert re.search(r"A\.1 One more part \. .* References \d+", flat_pdf)
    assert not re.search(r"\bB\s+References\b", flat_pdf)


# --------------------------------------------------------------------------
# the execution cache (these tests run in file order and change the copy)


def test_cached_rebuild_executes_nothing(book):
    before = book.executions()
    result, seconds = book.build()
    assert result.returncode == 0, _report(result)
    assert book.executions() == before
    book.times["cached"] = seconds
    print(f"\nfixture book, cached rebuild (html, pdf, notebooks): {seconds:.1f} s")
    # the notebooks of a cached build still carry the outputs
    assert any(
        "image/png" in o.get("data", {})
        for c in book.notebook("model").cells if c.cell_type == "code"
        for o in c.outputs
    )  # fmt: skip


def test_prose_edit_rereads_but_does_not_execute(book):
    before = book.executions()
    chapter = book.root / "chapters" / "model.qmd"
    chapter.write_text(
        chapter.read_text() + "\nA sentence added after the first build.\n"
    )
    result, _ = book.build(formats="html,notebooks")
    assert result.returncode == 0, _report(result)
    assert "A sentence added after the first build." in book.main_text("chapters/model")
    assert book.executions() == before
    # the code is unchanged: no Sphinx runs side by side to start
    assert "side by side" not in result.stdout, _report(result)


def test_hash_cell_carries_the_hash_of_the_code(book):
    from qmd_sphinx.sphinx_reader import HASH_PREFIX, INLINE_FIGURES, code_hash

    executed = nbformat.read(
        book.out / "jupyter_execute" / "chapters" / "model.ipynb", as_version=4
    )
    first = executed.cells[0]
    assert first.source == (
        f"{INLINE_FIGURES}\n{HASH_PREFIX}{code_hash([book.code])}"
    )


def test_changing_the_bridge_rereads_every_chapter_but_executes_none(book):
    before = book.executions()
    module = book.base / "code" / "qmd_sphinx" / "html.py"
    module.write_text(module.read_text() + "\n# touched by test_fixture_book\n")
    result, seconds = book.build(formats="html,notebooks")
    assert result.returncode == 0, _report(result)
    out = result.stdout + result.stderr
    read = re.findall(r"^html: (\S+) +\d+\.\d s  (\S.*)$", out, re.M)
    assert sorted(name for name, _ in read) == sorted(
        ["index", "chapters/model", "chapters/fits", "chapters/more",
         "chapters/extra", "chapters/references"]
    ), out[-3000:]
    assert {state for _, state in read} == {"cache hit"}
    assert book.executions() == before
    print(f"\nfixture book, rebuild after a bridge change (html, notebooks): "
          f"{seconds:.1f} s")


def test_changing_the_code_reexecutes_every_chapter(book):
    before = book.executions()
    module = book.code / "display.py"
    module.write_text(module.read_text() + "\n# touched by test_fixture_book\n")
    # one Sphinx run, as on one core: it executes every chapter in turn
    result, seconds = book.build(formats="html,notebooks", jobs=1)
    assert result.returncode == 0, _report(result)
    assert sorted(book.executions()) == sorted(before + list(CHAPTERS))
    out = result.stdout + result.stderr
    assert "side by side" not in out
    for name in ("chapters/model", "chapters/fits", "chapters/more", "chapters/extra"):
        assert re.search(rf"^html: {re.escape(name)} +\d+\.\d s  executed$", out,
                         re.M), out[-3000:]
    print(f"\nfixture book, rebuild after a code change (html, notebooks): "
          f"{seconds:.1f} s")


def test_code_hash_changes_with_any_python_file(tmp_path):
    from qmd_sphinx.sphinx_reader import code_hash

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    first = code_hash([tmp_path])
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_text("junk")
    (tmp_path / "notes.txt").write_text("not code")
    assert code_hash([tmp_path]) == first
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert code_hash([tmp_path]) != first
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    assert code_hash([tmp_path]) == first
    (tmp_path / "pkg" / "b.py").write_text("")
    assert code_hash([tmp_path]) != first


def test_build_hashes_the_projects_code_by_default(monkeypatch):
    build_book = _load_build_script()
    monkeypatch.delenv("QMD_SPHINX_CODE", raising=False)
    env = build_book.build_env(FIXTURE, None, {"html"})
    assert env["QMD_SPHINX_CODE"] == str(REPO / "code" / "multilevel")
    assert env["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"
    monkeypatch.setenv("QMD_SPHINX_CODE", "/somewhere/else")
    assert build_book.build_env(FIXTURE, None, {"html"})["QMD_SPHINX_CODE"] == (
        "/somewhere/else"
    )


# --------------------------------------------------------------------------
# broken copies fail with file:line


def _lines_of(text: str, needle: str) -> int:
    return next(k for k, line in enumerate(text.splitlines(), 1) if needle in line)


BROKEN = [
    # (id, text appended to chapters/fits.qmd, the line of the problem inside it,
    #  fragment of the message)
    ("dangling fig ref", "\nAs @fig-nope shows.\n", "As @fig-nope",
     "cross-reference @fig-nope points to a label that no chapter"),
    ("figure caption without alt text",
     '\n```{python}\n#| label: fig-bad\n#| fig-cap: "No alt."\nprint(1)\n```\n',
     "#| label: fig-bad", "fig-alt is missing"),
    ("unsupported construct", "\n::: {.panel-tabset}\n## A\n:::\n",
     "::: {.panel-tabset}", "tabsets"),
    ("unknown citation", "\nAs [@nobody2024] says.\n", "As [@nobody2024]",
     "citation key 'nobody2024' is not in the bibliography"),
    ("figure without any label",
     "\n```{python}\nimport matplotlib.pyplot as plt\n\n"
     "plt.plot([1, 2])\nplt.show()\n```\n",
     "import matplotlib.pyplot as plt", "figure without alt text"),
]


@pytest.mark.parametrize(
    "addition, needle, fragment", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_fixture_fails_with_file_and_line(
    book, tmp_path, addition, needle, fragment
):
    root = tmp_path / "book"
    shutil.copytree(FIXTURE, root)
    chapter = root / "chapters" / "fits.qmd"
    text = chapter.read_text() + addition
    chapter.write_text(text)
    line = _lines_of(text, needle)
    result, _ = book.build(
        formats="html", root=root, out=tmp_path / "out", chapters=["chapters/fits.qmd"]
    )
    report = result.stdout + result.stderr
    assert result.returncode != 0, report[-3000:]
    assert f"{chapter}:{line}:" in report, report[-3000:]
    assert fragment in report, report[-3000:]


def _inflate(data: bytes) -> bytes:
    """A Flate stream's bytes, as far as they decompress (images may not)."""
    try:
        return zlib.decompressobj().decompress(data)
    except zlib.error:
        return b""


def test_pdf_title_page_and_metadata(book, pdf_text):
    """Title, subtitle, authors, version, date and licence on the first page;
    the PDF's own title and language for readers and screen readers."""
    first_page = _squash(pdf_text.split("\f")[0])
    for text in ("Fixture Book", "Every construct, once", "Ada Tester", "Bo Checker",
                 "Version 9.9.9", "2025-11-24", "Text: CC BY 4.0. Code: MIT."):
        assert text in first_page, (text, first_page)
    info = subprocess.run(["pdfinfo", str(book.out / "pdf" / PDF_NAME)],
                          capture_output=True, text=True, check=True).stdout
    assert re.search(r"^Title:\s+Fixture Book$", info, re.M), info
    assert re.search(r"^Author:\s+Ada Tester, Bo Checker$", info, re.M), info
    raw = (book.out / "pdf" / PDF_NAME).read_bytes()
    objects = [raw] + [  # the catalogue may sit in a compressed object stream
        _inflate(m[1]) for m in re.finditer(
            rb"/FlateDecode[^>]*>>\s*stream\r?\n(.*?)\r?\nendstream", raw, re.S)
    ]
    assert any(b"/Lang (en)" in o or b"/Lang(en)" in o for o in objects)


def test_site_footer_states_the_licences(book):
    for name in ("index", "chapters/model"):
        footer = book.html(name).select_one("footer .extra_footer")
        assert footer is not None, name
        assert "Text: CC BY 4.0. Code: MIT." in _squash(footer.get_text(" "))


def test_preface_is_an_unnumbered_chapter_in_the_pdf(pdf_text):
    """Sphinx drops the root document's title in LaTeX; the bridge keeps it."""
    squashed = re.sub(r"\s+", " ", pdf_text)
    # first in the table of contents, without a number, with its page
    assert re.search(r"[A-Za-z] Preface \d+ I Models", squashed), squashed[:400]
    assert re.search(r"^\s*PREFACE\s*$", pdf_text, re.M)  # its running head


def test_pdf_has_the_parts_and_the_chapters_at_chapter_level(pdf_text):
    """The chapters are inlined inside the preface's last section; the bridge
    lifts them to chapters and puts each part of _quarto.yml before them."""
    squashed = re.sub(r"\s+", " ", pdf_text)
    contents = squashed[: squashed.index("Bibliography")]
    assert re.search(r"I Models \d+ 1 The model .*II Fits \d+ 2 Fits", contents), (
        contents
    )
    assert "0.1" not in contents  # no chapter demoted to a section of 0
    # the preface's own section is unnumbered
    assert "How to read it" in pdf_text
    assert not re.search(r"\d\.\d\s+How to read it", pdf_text)


# --------------------------------------------------------------------------
# the downloadable notebooks: Markdown that every Jupyter front end renders

SITE = "https://fixture.example.org/book"  # book: site-url: of the fixture


def _exported(book):
    folder = book.out / "notebooks"
    return sorted(folder.glob("*.ipynb")) + sorted(folder.glob("student/*.ipynb"))


def test_no_myst_or_quarto_syntax_left_in_any_notebook(book):
    from qmd_sphinx.nbmarkdown import leftover_syntax

    paths = _exported(book)
    assert len(paths) == 2 * 6  # index, 3 chapters, 2 appendices; two variants
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert leftover_syntax(nb) == [], path


def _markdown(book, name, student=False) -> str:
    nb = book.notebook(name, student=student)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_notebook_references_print_the_sites_text_and_link_to_the_site(book):
    model = _markdown(book, "model")
    assert (f"[Equation 1.1]({SITE}/chapters/model.html#equation-eq-model)"
            in model)
    assert f"[Figure 1.1]({SITE}/chapters/model.html#fig-waits) shows" in model
    more = _markdown(book, "more", student=True)
    assert f"[Appendix A]({SITE}/chapters/extra.html#sec-extra)" in more
    assert f"[Exercise 2.1]({SITE}/chapters/fits.html#exr-slope)" in more
    # every link to the site names a page the site has, and an id on it
    for path in _exported(book):
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                         if c.cell_type == "markdown")
        for page, anchor in re.findall(rf"\]\({re.escape(SITE)}/([^)#]+)#?([^)]*)\)",
                                       text):
            html = book.out / "html" / page
            assert html.is_file(), (path, page)
            if anchor:
                assert f'id="{anchor}"' in html.read_text(encoding="utf-8"), (
                    path, page, anchor)


def test_notebook_citations_callouts_exercises_and_equations(book):
    model = _markdown(book, "model")
    assert "model of McElreath (2020), written" in model
    assert "fitted with lme4 (Bates et al. 2015)." in model
    assert "(Gelman and Hill 2007; Bates et al. 2015)" in model
    # the References cell ends the notebook, with the entries cited, in order
    last = book.notebook("model").cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References")
    entries = [s for s in last.source.splitlines() if s.startswith("- ")]
    assert len(entries) == 3
    assert "Douglas Bates, Martin Mächler, Ben Bolker, and Steve Walker" in entries[0]
    assert "*Journal of Statistical Software*" in entries[0]
    assert "Richard McElreath" in entries[2]
    # the appendix of references lists what the whole book cites
    refs = _markdown(book, "references")
    assert refs.count("\n- ") == 3 and "Gelman and Hill" not in refs
    # callouts: block quotes, title in bold ("Important" when untitled)
    assert "> **Why varying intercepts**\n>\n> Each cafe gets its own" in model
    assert "> **Important**\n>\n> Questions go to" in model
    # exercises and solutions: headed cells; the student's has no solution
    heads = [c.source.splitlines()[0] for c in book.notebook("model").cells
             if c.cell_type == "markdown"]
    assert '### <a id="exr-mean"></a>Exercise 1.1 (Mean wait)' in heads
    assert "#### Solution" in heads
    student = [c.source for c in book.notebook("model", student=True).cells]
    assert not any(s.startswith("#### Solution") for s in student)
    # equations: numbered with \tag inside the math; figure captions shown
    tagged = "\\varepsilon_{ij} \\sim \\mathcal{N}(0, \\sigma^2)\n\\tag{1.1}\n$$"
    assert tagged in model
    assert "\\tag{A.1}" in _markdown(book, "extra")
    assert '<a id="fig-waits"></a>**Figure 1.1** Waiting times by cafe.' in model
    assert '<a id="tbl-waits"></a>**Table 1.1** Mean waiting time per cafe.' in model
