"""The quality gates themselves, on small sites and PDFs made to be broken.

Each gate must fail on the defect it exists for (a dangling reference, an image
without alt text, a page whose TeX was not typeset, an unresolved '??' in the
PDF) and pass on the same material once repaired.
"""

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from bookcheck import browser, pdf, site

PAGE = """<!DOCTYPE html><html><head><title>{title}</title></head>
<body><main>{body}</main></body></html>"""


def write_site(root: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGE.format(title=name, body=body), encoding="utf-8")
    return root


@pytest.fixture
def good_site(tmp_path):
    return write_site(
        tmp_path / "good",
        {
            "index.html": '<h1 id="top">Book</h1><a href="book/ch.html#fig-waits">F</a>'
            '<a href="#top">up</a><a href="https://example.org/">ext</a>',
            "book/ch.html": '<figure id="fig-waits"><img src="../w.png" alt="Dots">'
            "<figcaption>Figure 1</figcaption></figure>"
            '<a href="../index.html">home</a><a href="../">root</a>',
            "w.png": "",
        },
    )


def test_links_and_images_pass_on_a_good_site(good_site):
    assert site.check_links(good_site) == []
    assert site.check_images(good_site) == []
    assert site.check_offline(good_site) == []
    assert site.figure_count(good_site) == 1


def test_dangling_anchor_is_caught(good_site):
    page = good_site / "index.html"
    page.write_text(page.read_text().replace("#fig-waits", "#fig-nope"))
    assert site.check_links(good_site) == [
        "index.html: link 'book/ch.html#fig-nope' points to a missing anchor"
    ]


def test_missing_page_is_caught(good_site):
    page = good_site / "index.html"
    page.write_text(page.read_text().replace("book/ch.html", "book/gone.html"))
    assert site.check_links(good_site) == [
        "index.html: link 'book/gone.html#fig-waits' points to a missing file"
    ]


def test_missing_alt_text_is_caught(good_site):
    page = good_site / "book" / "ch.html"
    page.write_text(page.read_text().replace(' alt="Dots"', ""))
    assert site.check_images(good_site) == ["book/ch.html: image '../w.png' has no alt text"]


def test_cdn_script_is_caught(good_site):
    page = good_site / "index.html"
    page.write_text(
        page.read_text().replace(
            "</head>", '<script src="https://cdn.example.org/mathjax.js"></script></head>'
        )
    )
    assert site.check_offline(good_site) == [
        "index.html: <script> loads https://cdn.example.org/mathjax.js from outside the site"
    ]


def test_main_text_drops_code_and_keeps_prose(tmp_path):
    root = write_site(tmp_path, {"p.html": "<p>rho is 0.5</p><pre>x = 0.25</pre>"})
    assert site.main_text(root / "p.html") == "rho is 0.5"


# --- PDF -------------------------------------------------------------------

needs_tex = pytest.mark.skipif(
    shutil.which("xelatex") is None or shutil.which("pdftotext") is None,
    reason="xelatex/poppler not installed (apt-get install texlive-xetex poppler-utils)",
)


def make_pdf(tmp_path: Path, body: str) -> Path:
    tex = tmp_path / "t.tex"
    tex.write_text(
        textwrap.dedent(
            r"""
            \documentclass{article}
            \usepackage{fontspec}
            \setmainfont{FreeSerif}
            \begin{document}
            \section{The cafes}\label{sec:cafes}
            %s
            \end{document}
            """
        )
        % body
    )
    for _ in range(2):  # twice, so references resolve when they can
        subprocess.run(
            ["xelatex", "-interaction=nonstopmode", tex.name],
            cwd=tmp_path, capture_output=True, check=False,
        )  # fmt: skip
    return tmp_path / "t.pdf"


@needs_tex
def test_pdf_check_passes_and_catches_unresolved_reference(tmp_path):
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    good = make_pdf(good_dir, r"See section~\ref{sec:cafes}.")
    assert pdf.check_pdf(good, ["The cafes"], figures=0) == []
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = make_pdf(bad_dir, r"See section~\ref{sec:nope}.")
    problems = pdf.check_pdf(bad, ["The cafes", "Equation set 1"], figures=1)
    assert any("unresolved reference '??'" in p for p in problems), problems
    assert any("'Equation set 1' not found" in p for p in problems), problems
    assert any("0 figure image(s), the site has 1" in p for p in problems), problems


@needs_tex
def test_fonts_of_a_xelatex_pdf_are_embedded(tmp_path):
    assert pdf.unembedded_fonts(make_pdf(tmp_path, "Text.")) == []


# --- browser ----------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)"
)


@needs_chromium
def test_browser_catches_raw_tex_console_errors_and_external_requests(tmp_path):
    root = write_site(
        tmp_path,
        {
            "ok.html": "<p>Plain text, and code <code>$$x$$</code> is fine.</p>",
            "raw.html": "<p>The model is $$y = X\\beta$$ untypeset.</p>",
            "err.html": "<p>x</p><script>console.error('boom')</script>",
            "ext.html": '<img src="https://example.org/x.png" alt="x">',
        },
    )
    problems, reports = browser.check_pages(
        root, ["ok.html", "raw.html", "err.html", "ext.html"], screenshots=tmp_path / "shots"
    )
    assert reports["ok.html"].problems() == []
    assert reports["raw.html"].raw_tex == ["$$"]
    assert reports["err.html"].console_errors == ["boom"]
    assert reports["ext.html"].external_requests == ["https://example.org/x.png"]
    assert (tmp_path / "shots" / "ok.png").stat().st_size > 0
    # every broken page is reported, the good one is not
    assert {p.split(":")[0] for p in problems} == {"raw.html", "err.html", "ext.html"}


# --- determinism ------------------------------------------------------------

from bookcheck import determinism  # noqa: E402


def test_numbers_mask_timings_but_not_estimates():
    text = "The slope is -1.04 (SE 0.11); nutpie took 2.3 s, 15× faster; 4 min; 1,000 draws."
    assert determinism.numbers(text) == ["-1.04", "0.11", "1,000"]


def test_compare_sites_reports_the_first_differing_number(tmp_path):
    a = write_site(tmp_path / "a", {"ch.html": "<p>rho is -0.58, took 3.1 s</p>"})
    b = write_site(tmp_path / "b", {"ch.html": "<p>rho is -0.57, took 2.9 s</p>"})
    same = write_site(tmp_path / "c", {"ch.html": "<p>rho is -0.58, took 9.9 s</p>"})
    assert determinism.compare_sites(a, b) == [
        "ch.html: number 1 differs between builds: -0.58 vs -0.57"
    ]
    assert determinism.compare_sites(a, same) == []
