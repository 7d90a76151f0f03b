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

from bookcheck import browser, determinism, pdf, site

PAGE = """<!DOCTYPE html><html lang="en"><head><title>{title}</title>{head}</head>
<body><main>{body}</main></body></html>"""


def write_site(root: Path, pages: dict[str, str], head: str = "") -> Path:
    for name, body in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAGE.format(title=name, body=body, head=head), encoding="utf-8")
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
    assert site.check_images(good_site) == [
        "book/ch.html: image '../w.png' has no alt text"
    ]


def test_cdn_script_is_caught(good_site):
    page = good_site / "index.html"
    page.write_text(
        page.read_text().replace(
            "</head>",
            '<script src="https://cdn.example.org/mathjax.js"></script></head>',
        )
    )
    assert site.check_offline(good_site) == [
        "index.html: <script> loads https://cdn.example.org/mathjax.js "
        "from outside the site"
    ]


def test_main_text_drops_code_and_keeps_prose(tmp_path):
    root = write_site(tmp_path, {"p.html": "<p>rho is 0.5</p><pre>x = 0.25</pre>"})
    assert site.main_text(root / "p.html") == "rho is 0.5"


# --- PDF -------------------------------------------------------------------

needs_tex = pytest.mark.skipif(
    shutil.which("xelatex") is None or shutil.which("pdftotext") is None,
    reason="xelatex/poppler not installed "
    "(apt-get install texlive-xetex poppler-utils)",
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
    shutil.which("chromium") is None,
    reason="chromium not installed (apt-get install chromium)",
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
        root,
        ["ok.html", "raw.html", "err.html", "ext.html"],
        screenshots=tmp_path / "shots",
    )
    assert reports["ok.html"].problems() == []
    assert reports["raw.html"].raw_tex == ["$$"]
    assert reports["err.html"].console_errors == ["boom"]
    assert reports["ext.html"].external_requests == ["https://example.org/x.png"]
    assert (tmp_path / "shots" / "ok.png").stat().st_size > 0
    # every broken page is reported, the good one is not
    assert {p.split(":")[0] for p in problems} == {"raw.html", "err.html", "ext.html"}


@needs_chromium
def test_browser_runs_axe_and_fails_serious_accessibility_violations(tmp_path):
    root = write_site(
        tmp_path,
        {
            "ok.html": "<h1>Title</h1><p>Readable text.</p>",
            "faint.html": '<h1>Title</h1><p style="color:#bbb;background:#fff">'
            "Text too faint to read.</p>",
            "nolabel.html": "<h1>Title</h1><button></button>"
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">',
        },
    )
    problems, reports = browser.check_pages(root, ["ok.html", "faint.html",
                                                   "nolabel.html"])
    assert reports["ok.html"].problems() == []
    faint = reports["faint.html"].accessibility
    assert [(v.rule, v.impact) for v in faint] == [("color-contrast", "serious")]
    rules = {v.rule for v in reports["nolabel.html"].accessibility}
    assert {"button-name", "image-alt"} <= rules
    assert {p.split(":")[0] for p in problems} == {"faint.html", "nolabel.html"}
    assert any("accessibility: serious color-contrast" in p for p in problems)


# --- determinism ------------------------------------------------------------


def test_numbers_mask_timings_but_not_estimates():
    text = (
        "The slope is -1.04 (SE 0.11); nutpie took 2.3 s, 15× faster, 27 seconds "
        "to compile, about 20 times faster; the wait is 3.56 minutes; the SDs "
        "are 1.38 times lme4's; 1,000 draws."
    )
    assert determinism.numbers(text) == ["-1.04", "0.11", "3.56", "1.38", "1,000"]


def test_timing_rows_and_columns_of_tables_are_masked(tmp_path):
    table = (
        "<table><thead><tr><th></th><th>nutpie</th><th>wall-clock (s)</th></tr>"
        "</thead><tbody>"
        "<tr><td>seconds (compile)</td><td>27.06</td><td>31.2</td></tr>"
        "<tr><td>r_hat_max</td><td>1.01</td><td>4.5</td></tr>"
        "</tbody></table>"
    )
    root = write_site(tmp_path, {"t.html": table})
    text = determinism.rendered_text(root / "t.html")
    assert determinism.numbers(text) == ["1.01"]


def test_compare_sites_reports_the_first_differing_number(tmp_path):
    a = write_site(tmp_path / "a", {"ch.html": "<p>rho is -0.58, took 3.1 s</p>"})
    b = write_site(tmp_path / "b", {"ch.html": "<p>rho is -0.57, took 2.9 s</p>"})
    same = write_site(tmp_path / "c", {"ch.html": "<p>rho is -0.58, took 9.9 s</p>"})
    assert determinism.compare_sites(a, b) == [
        "ch.html: number 1 differs between builds: -0.58 vs -0.57"
    ]
    assert determinism.compare_sites(a, same) == []


# --- more gates on the site as files ----------------------------------------


def test_literal_source_syntax_is_caught(tmp_path):
    root = write_site(
        tmp_path,
        {
            "ok.html": "<p>Figure 1.1 shows it; the mean is 3.2.</p>",
            "bad.html": "<p>The mean is `{python} mean` as @fig-waits shows.</p>"
            "<div>::: {.callout-note}</div>",
        },
    )
    problems = site.check_literal_syntax(root)
    assert [p.split(": literal ")[1].split(" ")[0] for p in problems] == [
        "'{python}'",
        "'@fig-'",
        "':::'",
    ]
    assert all(p.startswith("bad.html: ") for p in problems)


def test_page_title_drops_number_and_permalink(tmp_path):
    root = write_site(
        tmp_path,
        {"ch.html": '<h1><span class="section-number">2. </span>Fitting with lme4'
         '<a class="headerlink" href="#x">#</a></h1>'},
    )  # fmt: skip
    assert site.page_title(root / "ch.html") == "Fitting with lme4"


@needs_tex
def test_pdf_titles_ignore_case_and_figure_captions_are_counted(tmp_path):
    figure = r"\begin{figure}[h]\centering X\caption{Waits.}\end{figure}"
    doc = make_pdf(tmp_path, r"\MakeUppercase{Equation set one}. " + figure)
    assert pdf.figure_captions(pdf.pdf_text(doc)) == ["1"]
    # a caption but no image: the image count catches it, the captions match
    assert pdf.check_pdf(doc, ["THE CAFES", "Equation set one"], figures=1) == [
        "t.pdf: 0 figure image(s), the site has 1"
    ]
    assert pdf.check_pdf(doc, ["The cafes"], figures=2) == [
        "t.pdf: 0 figure image(s), the site has 2",
        "t.pdf: 1 figure caption(s) (1), the site has 2",
    ]


# --- more browser gates: each fails on its defect ----------------------------

MATHJAX_HEAD = (
    '<script>window.MathJax = {"options": {"processHtmlClass": "math"}}</script>'
    '<script defer src="mathjax/tex-chtml.js"></script>'
)


def _link_mathjax(root: Path) -> None:
    """The site's MathJax, as the book serves it (django-static-mathjax)."""
    from qmd_sphinx.html import mathjax_source

    root.mkdir(parents=True, exist_ok=True)
    (root / "mathjax").symlink_to(mathjax_source(), target_is_directory=True)


@needs_chromium
def test_math_gate_passes_typeset_math_and_catches_untypeset_and_errors(tmp_path):
    good = tmp_path / "good"
    _link_mathjax(good)
    write_site(
        good,
        {
            "m.html": '<p>Slopes <span class="math notranslate nohighlight">'
            "\\(\\beta_j \\sim \\mathcal{N}(0, \\sigma_b)\\)</span> vary.</p>"
            '<div class="math notranslate nohighlight">\\[y = X\\beta + Zb\\]</div>',
            "err.html": '<p><span class="math">\\(\\nosuchmacro{x}\\)</span></p>',
        },
        head=MATHJAX_HEAD,
    )
    # the same markup on a site that forgot MathJax
    bare = write_site(
        tmp_path / "bare",
        {"m.html": '<p>Slopes <span class="math">\\(\\beta_j\\)</span> vary.</p>'},
    )
    _, reports = browser.check_pages(good, ["m.html", "err.html"])
    ok = reports["m.html"]
    assert (ok.math_elements, ok.math_typeset, ok.raw_tex) == (2, 2, [])
    assert ok.problems() == []
    err = reports["err.html"]
    assert err.math_errors == ["undefined macro \\nosuchmacro"]
    assert any("MathJax error" in p for p in err.problems())
    _, reports = browser.check_pages(bare, ["m.html"])
    raw = reports["m.html"]
    assert (raw.math_elements, raw.math_typeset) == (1, 0)
    assert raw.raw_tex == ["\\(", "\\)"]
    assert "m.html: 1 of 1 math element(s) not typeset by MathJax" in raw.problems()


def _togglebutton_head(root: Path) -> str:
    """sphinx-togglebutton's script and style, configured as the book's site."""
    import sphinx_togglebutton

    static = Path(sphinx_togglebutton.__file__).parent / "_static"
    root.mkdir(parents=True, exist_ok=True)
    for name in ("togglebutton.js", "togglebutton.css"):
        shutil.copy(static / name, root / name)
    return (
        '<link rel="stylesheet" href="togglebutton.css">'
        "<script>let toggleHintShow = 'Click to show';"
        "let toggleHintHide = 'Click to hide'; let toggleOpenOnPrint = 'true';</script>"
        '<script src="togglebutton.js"></script>'
        "<script>var togglebuttonSelector = '.toggle, .admonition.dropdown';</script>"
    )


def _solution(ident: str, classes: str, style: str = "") -> str:
    return (
        f'<div class="solution {classes} admonition" id="{ident}">'
        '<p class="admonition-title">Solution to<a class="reference internal" '
        'href="#exr-1"> Exercise 1.1</a></p>'
        f'<section id="solution-content"{style}><p>The answer is 42.</p>'
        "</section></div>"
    )


@needs_chromium
def test_solution_gate_passes_a_dropdown_and_catches_open_and_stuck_ones(tmp_path):
    head = _togglebutton_head(tmp_path)
    write_site(
        tmp_path,
        {
            "ok.html": '<div id="exr-1">Exercise</div>'
            + _solution("sol-ok", "dropdown"),
            "open.html": _solution("sol-open", ""),
            "stuck.html": _solution("sol-stuck", "", ' style="display:none"'),
        },
        head=head,
    )
    problems, reports = browser.check_pages(
        tmp_path, ["ok.html", "open.html", "stuck.html"]
    )
    assert reports["ok.html"].solutions == [browser.Solution("sol-ok", True, True)]
    assert problems == [
        "open.html: solution 'sol-open' is shown before any click",
        "stuck.html: solution 'sol-stuck' stays hidden after a click",
    ]


MENU = """<div class="dropdown dropdown-download-buttons">
<button class="btn dropdown-toggle" type="button"
 onclick="this.nextElementSibling.style.display='block'">D</button>
<ul class="dropdown-menu" style="display:none">{items}</ul></div>"""


def _menu(*links: tuple[str, str, str]) -> str:
    items = "".join(
        f'<li><a href="{href}"{extra}>{text}</a></li>' for text, href, extra in links
    )
    return MENU.format(items=items)


@needs_chromium
def test_download_gate_passes_a_full_menu_and_catches_missing_entries(tmp_path):
    (tmp_path / "downloads" / "notebooks" / "student").mkdir(parents=True)
    for name in ("cafes.ipynb", "student/cafes.ipynb", "student/lmer.ipynb"):
        (tmp_path / "downloads" / "notebooks" / name).write_text("{}")
    (tmp_path / "downloads" / "one-mixed-model-two-ways.pdf").write_text("%PDF-")
    nb, student, pdf_ = (
        ("ipynb", "../downloads/notebooks/cafes.ipynb", ""),
        ("student", "../downloads/notebooks/student/cafes.ipynb", ""),
        (".pdf", "../downloads/one-mixed-model-two-ways.pdf", ""),
    )
    write_site(
        tmp_path,
        {
            "book/cafes.html": _menu(nb, student, pdf_),
            # the PDF entry is there but never shown; the notebook is a typo
            "book/lmer.html": _menu(
                ("ipynb", "../downloads/notebooks/lmr.ipynb", ""),
                ("student", "../downloads/notebooks/student/lmer.ipynb", ""),
                (".pdf", "../downloads/one-mixed-model-two-ways.pdf",
                 ' style="display:none"'),
            ),
            "book/none.html": "<p>no menu</p>",
        },
    )
    _, reports = browser.check_pages(tmp_path, ["book/cafes.html", "book/lmer.html",
                                                "book/none.html"])  # fmt: skip
    assert reports["book/cafes.html"].downloads == [
        (text, href) for text, href, _ in (nb, student, pdf_)
    ]
    cafes = reports["book/cafes.html"].downloads
    assert browser.check_downloads(tmp_path, "book/cafes.html", cafes) == []
    assert browser.check_downloads(
        tmp_path, "book/lmer.html", reports["book/lmer.html"].downloads
    ) == [
        "book/lmer.html: download 'ipynb' -> '../downloads/notebooks/lmr.ipynb' "
        "is not a file of the site",
        "book/lmer.html: the download menu does not offer lmer.ipynb",
        "book/lmer.html: the download menu does not offer the book's PDF",
    ]
    assert browser.check_downloads(tmp_path, "book/none.html", []) == [
        "book/none.html: the download menu does not offer none.ipynb",
        "book/none.html: the download menu does not offer the book's PDF",
    ]


SEARCH_PAGE = """<div id="search-results"></div><script>
// what Sphinx's searchtools.js does: a summary first, results when done
const box = document.getElementById('search-results');
box.innerHTML = '<h2>Searching</h2><p class="search-summary">Preparing search...</p>';
setTimeout(() => {
  const q = new URLSearchParams(location.search).get('q');
  const hits = q === 'lme4' ? '<li><a href="book/lmer.html">Fitting with lme4</a>'
    + '<p class="context">...</p></li>' : '';
  box.innerHTML = '<h2>Search Results</h2><p class="search-summary">'
    + (hits ? 'Search finished, found one page matching the search query.'
            : 'Your search did not match any documents.')
    + '</p><ul class="search">' + hits + '</ul>';
}, 700);
</script>"""


@needs_chromium
def test_search_gate_waits_for_the_results_and_reads_them(tmp_path):
    write_site(
        tmp_path, {"search.html": SEARCH_PAGE, "book/lmer.html": "<h1>lme4</h1>"}
    )
    assert browser.search_hits(tmp_path, "lme4") == [
        ("Fitting with lme4", "book/lmer.html")
    ]
    assert browser.search_hits(tmp_path, "nothing") == []


@needs_chromium
def test_missing_resource_and_uncaught_exception_are_caught(tmp_path):
    write_site(
        tmp_path,
        {
            "404.html": '<img src="gone.png" alt="gone">',
            "throw.html": "<script>null.x</script>",
        },
    )
    _, reports = browser.check_pages(tmp_path, ["404.html", "throw.html"])
    assert any(
        "gone.png (status 404)" in u for u in reports["404.html"].failed_requests
    )
    assert any(
        "uncaught: " in e and "null" in e for e in reports["throw.html"].console_errors
    )


def test_rendered_text_keeps_outputs_and_drops_code(tmp_path):
    root = write_site(
        tmp_path,
        {
            "p.html": '<article class="bd-article"><p>rho is -0.58.</p>'
            '<div class="cell_input"><pre>seed = 14</pre></div>'
            '<div class="cell_output"><pre>sigma 0.49, N(0, 1)</pre></div></article>'
            "<footer>Copyright 2025</footer>"
        },
    )
    text = determinism.rendered_text(root / "p.html")
    assert determinism.numbers(text) == ["-0.58", "0.49", "0", "1"]


def test_numbers_printed_across_formats_must_agree():
    from bookcheck.numbers import compare_numbers, printed_references

    expected = ["Chapter 1", "Exercise 3.1", "Equations 1.1 and A.1"]
    pdf_text = ("x NUMBERS-START Chapter 1, Exer-\n   cise 3.1, Equations 1.1\n"
                "and A.1 NUMBERS-END.")
    printed = printed_references(pdf_text, "NUMBERS-START", "NUMBERS-END")
    assert printed == expected  # hyphenation and line breaks undone
    assert compare_numbers({"html": expected, "pdf": printed}, expected) == []
    problems = compare_numbers(
        {
            "html": ["Chapter 1", "Exercise 3.4", "Equations 1.1 and A.1"],
            "pdf": ["Section 1", "Exercise 3.1", "Equations 1.1 and A.1"],
            "notebook": ["Chapter 1"],
        },
        expected,
    )
    assert problems == [
        "html: prints 'Exercise 3.4' where 'Exercise 3.1' is expected",
        "pdf: prints 'Section 1' where 'Chapter 1' is expected",
        "notebook: 1 references printed, 3 expected: ['Chapter 1']",
    ]
    with pytest.raises(ValueError, match="no NUMBERS-START"):
        printed_references("no markers here", "NUMBERS-START", "NUMBERS-END")


LATEX_LOG = """\
(./book.tex
Overfull \\hbox (1.2pt too wide) in paragraph at lines 10--12
[]\\TU/FreeSerif(0)/m/n/10.95 text
Overfull \\hbox (48.5pt too wide) detected at line 40
Overfull \\vbox (3.9pt too high) detected at line 52
Overfull \\hbox (7.25pt too wide) in alignment at lines 60--70
"""


def test_overfull_boxes_above_the_limit_fail_the_build():
    from qmd_sphinx.latexlog import check_overfull, overfull_boxes

    boxes = overfull_boxes(LATEX_LOG)
    assert [(b.box, b.points, b.line) for b in boxes] == [
        ("hbox", 1.2, 10), ("hbox", 48.5, 40), ("vbox", 3.9, 52), ("hbox", 7.25, 60)
    ]
    tex = [f"line {k}" for k in range(1, 80)]
    tex[39] = r"\begin{sphinxVerbatim}a very long line of code"
    problems = check_overfull(LATEX_LOG, "book.tex", tex, limit=5)
    assert problems == [
        "book.tex:40: overfull \\hbox, 48.5pt beyond the text width (limit 5pt): "
        "\\begin{sphinxVerbatim}a very long line of code",
        "book.tex:60: overfull \\hbox, 7.2pt beyond the text width (limit 5pt): "
        "line 60",
    ]
    assert check_overfull(LATEX_LOG, "book.tex", tex, limit=50) == []
    assert check_overfull("no boxes here", "book.tex") == []


def test_progress_lines_say_executed_cache_hit_or_no_code():
    from qmd_sphinx import progress

    started = 1000.0
    assert progress.status({"mtime": 1001.0, "succeeded": True}, started) == "executed"
    assert progress.status({"mtime": 999.0, "succeeded": True}, started) == "cache hit"
    assert progress.status({"mtime": 1001.0, "succeeded": False}, started) == "FAILED"
    assert progress.status(None, started) == "no code"
    assert progress.line("html", "book/cafes", 12.345, "executed") == (
        "html: book/cafes                      12.3 s  executed"
    )
    rows = [("a", 10.0, "executed"), ("b", 0.5, "cache hit"), ("c", 0.25, "cache hit")]
    assert progress.summary_line("latex", rows, total=5) == (
        "latex: 3 chapter(s) read in 10.8 s: 1 executed, 2 cache hit, "
        "2 unchanged (not re-read)"
    )



def test_reference_wording_gate():
    from bookcheck.numbers import check_reference_wording

    good = ("In Chapter 3, Section 3.2 and Appendix A, Equation 2.5, Figure 4.1, "
            "Table 4.2 and Exercise 6.2; Equations 1.1 and A.1. 1.5 Exercises "
            "Exercise 1.1 (Read the model)")
    assert check_reference_wording(good, "good") == []
    bad = ("As Equation Equation (2.5) says, see Section 3 and\nFigure Figure 4.1; "
           "equations Equations 2.1 and 2.2.")
    problems = check_reference_wording(bad, "bad")
    assert [p.split(":")[1].strip() for p in problems] == [
        "the word printed twice", "the word printed twice", "the word printed twice",
        "an equation number in parentheses", "a chapter printed as a section",
    ]
