"""The quality gates (code/bookcheck) applied to the book `make book` built.

`make test` runs after `make book`; these tests read its output and fail
(they do not skip) when there is none. Environment:

- ``BOOK_BUILD``: the build folder (default: ``<repo>/_build``), holding
  ``html/``, ``pdf/one-mixed-model-two-ways.pdf``; the screenshots go to
  ``BOOK_BUILD/screenshots``;
- ``BOOK_ROOT``: the book's sources, with ``_quarto.yml`` (default: the repo);
- ``BOOK_BUILD_2``: a second clean build of the same book for the determinism
  test; when unset, that test builds the site again (html only) into a
  temporary folder with a fresh execution cache, which takes a full execution
  of every chapter (minutes).

Each gate is shown to fail on a broken input in tests/test_bookcheck.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bookcheck import browser, determinism, pdf, site
from qmd_sphinx.quarto_config import load_quarto

pytestmark = pytest.mark.book

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BOOK_BUILD") or REPO / "_build").resolve()
BOOK_ROOT = Path(os.environ.get("BOOK_ROOT") or REPO).resolve()
HTML = BUILD / "html"
PDF = BUILD / "pdf" / load_quarto(BOOK_ROOT).pdf_name  # one-mixed-model-two-ways.pdf
SCREENSHOTS = BUILD / "screenshots"
# A word the book uses on purpose; the site's search must find it.
SEARCH_TERM = "lme4"


@pytest.fixture(scope="module")
def html_dir() -> Path:
    if not (HTML / "index.html").is_file():
        pytest.fail(
            f"no built book: {HTML / 'index.html'} is missing; run make book first",
            pytrace=False,
        )
    return HTML


def listed_chapters() -> list[str]:
    """Site paths of the chapters _quarto.yml lists (``book/cafes.html``)."""
    return [f"{c.docname}.html" for c in load_quarto(BOOK_ROOT).chapters]


@pytest.fixture(scope="module")
def chapters(html_dir) -> list[str]:
    """The listed chapters that have a page (test_every_chapter_has_a_page
    fails for the others, so they do not fail every other test too)."""
    return [rel for rel in listed_chapters() if (html_dir / rel).is_file()]


@pytest.fixture(scope="module")
def visits(html_dir, chapters) -> dict[str, browser.PageReport]:
    """Every page of the site, loaded once in Chromium (screenshots of chapters)."""
    pages = [str(p.relative_to(html_dir)) for p in site.html_pages(html_dir)]
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # none left from older builds
    reports = {}
    with browser.Site(html_dir) as s:
        for rel in pages:
            shot = (
                SCREENSHOTS / browser.screenshot_name(rel) if rel in chapters else None
            )
            reports[rel] = s.visit(rel, shot)
    return reports


def no_problems(problems: list[str]) -> None:
    """Fail with every problem, one a line (pytest would cut the list short)."""
    if problems:
        pytest.fail(
            f"{len(problems)} problem(s):\n" + "\n".join(problems), pytrace=False
        )


# --- the site as files -----------------------------------------------------


def test_every_chapter_has_a_page(html_dir):
    missing = [rel for rel in listed_chapters() if not (html_dir / rel).is_file()]
    assert missing == [], f"chapters of _quarto.yml without a page: {missing}"


def test_internal_links_and_anchors_resolve(html_dir):
    no_problems(site.check_links(html_dir))


def test_every_image_has_alt_text(html_dir):
    no_problems(site.check_images(html_dir))


def test_no_resource_from_outside_the_site(html_dir):
    no_problems(site.check_offline(html_dir))


def test_no_untranslated_source_syntax(html_dir):
    no_problems(site.check_literal_syntax(html_dir))


# --- the site in a browser -------------------------------------------------


def test_every_page_loads_cleanly_and_offline(visits):
    """No console error, no request leaving 127.0.0.1, no 404, TeX typeset."""
    no_problems([p for report in visits.values() for p in report.problems()])


def test_math_is_typeset_by_mathjax(html_dir, visits):
    with_math = {
        rel: site.math_elements(html_dir / rel)
        for rel in visits
        if site.math_elements(html_dir / rel)
    }
    assert with_math, "no page of the book has math: the .math selector is wrong"
    for rel, expected in with_math.items():
        report = visits[rel]
        assert report.math_elements == expected, rel
        assert report.math_typeset == expected, f"{rel}: {report.problems()}"
        assert report.math_errors == [], rel
        assert report.raw_tex == [], rel


def test_solutions_are_collapsed_until_clicked(html_dir, visits):
    in_html = sum(len(site._soup(html_dir / rel).select(".solution")) for rel in visits)
    solutions = [(rel, s) for rel, r in visits.items() for s in r.solutions]
    assert in_html > 0, "the book has no solution (sphinx-exercise .solution)"
    assert len(solutions) == in_html
    bad = [(rel, s) for rel, s in solutions if not (s.hidden_before and s.shown_after)]
    assert bad == []


def test_download_menu_offers_the_notebook_and_the_pdf(html_dir, chapters, visits):
    problems = []
    for rel in chapters:
        problems += browser.check_downloads(html_dir, rel, visits[rel].downloads)
    no_problems(problems)
    # what the links point to is a notebook and a PDF
    rel = chapters[-1]
    for _, href in visits[rel].downloads:
        target = (html_dir / rel).parent / href
        if target.suffix == ".ipynb":
            notebook = json.loads(target.read_text(encoding="utf-8"))
            assert notebook["nbformat"] == 4 and notebook["cells"], target
        elif target.suffix == ".pdf":
            assert target.read_bytes()[:5] == b"%PDF-", target


def test_search_finds_a_term_the_book_uses(html_dir):
    hits = browser.search_hits(html_dir, SEARCH_TERM)
    assert hits, f"the site's search finds nothing for {SEARCH_TERM!r}"
    for title, rel in hits:
        assert (html_dir / rel).is_file(), (title, rel)
    assert any(SEARCH_TERM.casefold() in site.page_text(html_dir / rel).casefold()
               for _, rel in hits)  # fmt: skip


def test_every_chapter_has_a_screenshot(chapters, visits):
    for rel in chapters:
        shot = SCREENSHOTS / browser.screenshot_name(rel)
        assert visits[rel].screenshot == shot
        head = shot.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", shot
        width, height = (
            int.from_bytes(head[16:20], "big"),
            int.from_bytes(head[20:24], "big"),
        )
        assert width >= 800 and height >= 600, (shot, width, height)


# --- the PDF ---------------------------------------------------------------


def test_pdf_has_every_chapter_every_figure_and_embedded_fonts(html_dir, chapters):
    titles = [site.page_title(html_dir / rel) for rel in chapters]
    assert all(titles), titles
    figures = site.figure_count(html_dir, [html_dir / rel for rel in chapters])
    no_problems(pdf.check_pdf(PDF, titles, figures=figures))


STUDENT_PDF = PDF.with_name(PDF.stem + "-student.pdf")


def _flat(text: str) -> str:
    return re.sub(r"\W+", "", text)


def test_the_student_pdf_has_every_chapter_and_no_solution(html_dir, chapters):
    """The student edition: every chapter and exercise of the book, none of
    the solutions' headings or code (the lines of the reader notebooks'
    solution cells that the PDF of the book prints)."""
    import nbformat

    titles = [site.page_title(html_dir / rel) for rel in chapters]
    no_problems(pdf.check_pdf(STUDENT_PDF, titles))
    full, student = pdf.pdf_text(PDF), pdf.pdf_text(STUDENT_PDF)
    assert full.count("Solution to") > 20 and "Solution to" not in student
    exercises = re.findall(r"^Exercise [\dA-Z]+(?:\.\d+)? \(", full, re.M)
    assert len(exercises) > 20
    assert exercises == re.findall(r"^Exercise [\dA-Z]+(?:\.\d+)? \(", student, re.M)
    flat_full, flat_student = _flat(full), _flat(student)
    solution_lines, kept = set(), set()
    for path in sorted((BUILD / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            lines = {_flat(x) for x in cell.source.splitlines() if len(x.strip()) > 25}
            tags = cell.metadata.get("tags", [])
            (solution_lines if "solution" in tags else kept).update(lines)
    printed = {x for x in solution_lines - kept if x in flat_full}
    assert len(printed) > 20, len(printed)  # the check has something to find
    # each line printed in the full PDF's solution is printed once less in
    # the student's (the same text may also stand in a prompt or other code)
    leaked = sorted(x for x in printed
                    if flat_student.count(x) >= flat_full.count(x))
    assert not leaked, leaked[:5]


def test_references_read_as_quarto_prints_them(html_dir, chapters):
    """No "Equation Equation", no "Equation (2.5)", no chapter called "Section
    3": in the PDF and on every page of the site."""
    from bookcheck.numbers import check_reference_wording

    problems = check_reference_wording(pdf.pdf_text(PDF), PDF.name)
    for rel in chapters:
        problems += check_reference_wording(site.main_text(html_dir / rel), rel)
    no_problems(problems)


# --- the chapters' sources -------------------------------------------------


def test_chapter_linter_passes_on_every_chapter():
    """scripts/lint_chapters.py, as authors run it, on every chapter of _quarto.yml.

    The rules themselves are tested in tests/test_lint_chapters.py.
    """
    paths = [str(BOOK_ROOT / c.path) for c in load_quarto(BOOK_ROOT).chapters]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lint_chapters.py"), *paths],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"lint: {len(paths)} chapter(s), no problems" in result.stdout


# --- determinism -----------------------------------------------------------


def _mcmc_call() -> re.Pattern:
    """The build's own pattern of an MCMC fit (scripts/build_book.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_book_for_tests", REPO / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MCMC_CALL


#: A chapter's MCMC fits. The second build takes the pages of the chapters
#: that have any from the first build's execution cache: that their draws
#: repeat for a seed is tested in the package (tests/test_samplers.py, every
#: sampler; tests/test_bayes.py, also after a fresh compile), and executing
#: them again here would cost about 350 of the 550 s of a full execution.
MCMC = _mcmc_call()


def executed_again() -> list[str]:
    """The chapter files the second build executes: every chapter that runs
    no MCMC (the bibliography, cafes, the equations, lme4, the study ...)."""
    book = load_quarto(BOOK_ROOT)
    return [c.path for c in book.chapters
            if not MCMC.search((BOOK_ROOT / c.path).read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def second_build(html_dir, tmp_path_factory) -> Path:
    if os.environ.get("BOOK_BUILD_2"):
        second = Path(os.environ["BOOK_BUILD_2"]).resolve() / "html"
        if not (second / "index.html").is_file():
            pytest.fail(
                f"BOOK_BUILD_2 holds no site: {second / 'index.html'} is missing"
            )
        return second
    from jupyter_cache import get_cache

    out = tmp_path_factory.mktemp("second_build")
    first = BUILD / ".jupyter_cache"
    if not first.is_dir() or not (BUILD / ".executed-code-hash").is_file():
        pytest.fail(f"no execution cache of the first build in {BUILD}")
    shutil.copytree(first, out / ".jupyter_cache")
    shutil.copy2(BUILD / ".executed-code-hash", out / ".executed-code-hash")
    cache = get_cache(str(out / ".jupyter_cache"))
    again = executed_again()
    mcmc = {Path(c.path).name for c in load_quarto(BOOK_ROOT).chapters
            if c.path not in again}
    kept = set()
    for record in cache.list_cache_records():  # keep only the MCMC chapters' runs
        if Path(record.uri).name in mcmc:
            kept.add(Path(record.uri).name)
        else:
            cache.remove_cache(record.pk)
    assert kept == mcmc, f"no cached run of {sorted(mcmc - kept)}"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.setdefault("PYTHONHASHSEED", "0")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_book.py"),
         "--root", str(BOOK_ROOT), "--out", str(out), "--formats", "html"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # the build's line for each chapter: the MCMC chapters came from the
    # cache, the others executed again (a chapter whose only code is the
    # hidden hash cell shares its cache entry with the first such chapter)
    docname = {c.path: c.docname for c in load_quarto(BOOK_ROOT).chapters}
    for path, name in docname.items():
        line = re.search(rf"^html: {re.escape(name)} +\d+\.\d s  (.+)$", log, re.M)
        assert line, f"no line for {name} in the second build"
        own_code = "```{python}" in (BOOK_ROOT / path).read_text(encoding="utf-8")
        expected = ({"executed"} if path in again and own_code
                    else {"executed", "cache hit", "no code"} if path in again
                    else {"cache hit"})
        assert line.group(1) in expected, (name, line.group(1))
    return out / "html"


def test_the_second_build_executes_every_chapter_without_mcmc():
    again = executed_again()
    assert "book/cafes.qmd" in again and "book/fit-lmer.qmd" in again
    assert "book/fit-pymc.qmd" not in again and "book/checking.qmd" not in again
    assert len(again) >= len(load_quarto(BOOK_ROOT).chapters) - 5


@pytest.mark.slow
def test_two_clean_builds_print_the_same_numbers(html_dir, second_build):
    """Every number of every page, timings excepted, is the same in both
    builds (the pages of chapters without MCMC executed twice)."""
    no_problems(determinism.compare_sites(html_dir, second_build))
