"""The Sphinx configuration of a Quarto book, computed from ``_quarto.yml``.

A ``conf.py`` is two lines::

    from qmd_sphinx.sphinx_conf import configure
    configure(globals())

Environment variables (set by ``scripts/build_book.py``):

- ``QMD_SPHINX_ROOT``: the book's root (holds ``_quarto.yml``); default: the
  folder of ``conf.py``;
- ``QMD_SPHINX_CHAPTERS``: build a sub-book with only these chapter files
  (separated by commas), plus ``index.qmd``;
- ``QMD_SPHINX_CODE``: folders whose ``*.py`` files are hashed into the
  execution cache key (separated by ``os.pathsep``); default:
  ``code/multilevel`` next to ``conf.py``, the package the chapters import
  (the bridge itself is hashed separately: a change re-reads every chapter
  but executes none);
- ``QMD_SPHINX_BRIDGE``: the folders hashed as the bridge's code (default:
  this package; tests point it at a copy they can change);
- ``QMD_SPHINX_DOWNLOADS``: what the download menu offers (``notebooks``,
  ``pdf``; comma separated); default both;
- ``QMD_SPHINX_SOLUTIONS``: ``hide`` builds the student edition, without the
  exercises' solutions (their code still executes, so the execution cache
  is the book's); default ``show``.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from qmd_sphinx.quarto_config import load_quarto, sphinx_settings, toctree_markdown
from qmd_sphinx.sphinx_reader import code_hash

#: After ``\appendix`` the chapter counter prints A, B, ...; Sphinx numbers
#: figures, tables and equations with ``\arabic{chapter}``, which would print
#: "Figure 1.1" in appendix A. Numbered with ``\thechapter`` they read A.1, as
#: in the site (qmd_sphinx.numbering).
LATEX_APPENDIX_NUMBERS = r"""
\makeatletter
\AtBeginDocument{\g@addto@macro\appendix{%
  \renewcommand{\thefigure}{\thechapter.\arabic{figure}}%
  \renewcommand{\thetable}{\thechapter.\arabic{table}}%
  \renewcommand{\theequation}{\thechapter.\arabic{equation}}%
  \renewcommand{\theliteralblock}{\thechapter.\arabic{literalblock}}}}
\makeatother
"""

def latex_title_page(book, solutions: bool = True) -> str:
    """The PDF's title page: title, subtitle, authors, version, date, licence;
    the student edition (``solutions`` false) says it has no solutions."""
    from qmd_sphinx.transforms import _latex_escape as esc

    lines = [
        r"\begin{titlepage}",
        r"\centering",
        r"\vspace*{3cm}",
        rf"{{\Huge\bfseries {esc(book.title)}\par}}",
    ]
    if book.subtitle:
        lines += [r"\vspace{1cm}", rf"{{\Large {esc(book.subtitle)}\par}}"]
    if not solutions:
        lines += [r"\vspace{1cm}", r"{\large Student edition: the exercises "
                  r"without their solutions\par}"]
    authors = r" \\ ".join(esc(a) for a in book.authors)
    lines += [r"\vspace{2cm}", rf"{{\large {authors}\par}}"]
    lines.append(r"\vfill")
    if book.version:
        lines.append(rf"{{Version {esc(book.version)}\par}}")
    if book.date_text:
        lines.append(rf"{{{esc(book.date_text)}\par}}")
    if book.footer:
        lines += [r"\vspace{1cm}", rf"{{\small {esc(book.footer)}\par}}"]
    lines.append(r"\end{titlepage}")
    return "\n".join(lines) + "\n"


def latex_metadata(book, language: str = "en") -> str:
    """The PDF's title, authors, subject and language (hyperref)."""
    from qmd_sphinx.transforms import _latex_escape as esc

    return (
        "\\AtBeginDocument{\\hypersetup{"
        f"pdftitle={{{esc(book.title)}}}, pdfauthor={{{esc(book.author)}}}, "
        f"pdfsubject={{{esc(book.subtitle)}}}, pdflang={{{language}}}, "
        "pdfdisplaydoctitle=true}"
        # hyperref's XeTeX driver ignores pdflang: xdvipdfmx writes it itself
        f"\\special{{pdf:put @catalog <</Lang ({language})>>}}}}\n"
    )


#: Tables in the PDF are set a size smaller than the text, with narrower gaps
#: between columns (4pt, not 6pt), as books set them:
#: at the text's size, the comparison tables (five columns of "0.655 [0.436,
#: 0.946]") ran up to 19pt past the right margin.
LATEX_TABLES = r"""
\AddToHook{env/tabulary/begin}{\small\setlength{\tabcolsep}{4pt}}
\AddToHook{env/tabular/begin}{\small\setlength{\tabcolsep}{4pt}}
\AddToHook{env/longtable/begin}{\small\setlength{\tabcolsep}{4pt}}
"""

QUARTO_WORDS = {
    "figure": "Figure %s",
    "table": "Table %s",
    "code-block": "Listing %s",
    "section": "Section %s",
    "exercise": "Exercise %s",
}


def _split(value: str | None, sep: str = ",") -> list[str]:
    return [v.strip() for v in (value or "").split(sep) if v.strip()]


def configure(ns: dict[str, Any]) -> None:
    """Fill a ``conf.py`` namespace with the book's configuration."""
    confdir = Path(ns["__file__"]).resolve().parent
    root = Path(os.environ.get("QMD_SPHINX_ROOT") or confdir).resolve()
    chapters = _split(os.environ.get("QMD_SPHINX_CHAPTERS"))
    # the bridge's own code: a change re-reads the chapters, executes none
    bridge_dirs = [
        Path(p) for p in _split(os.environ.get("QMD_SPHINX_BRIDGE"), os.pathsep)
    ] or [Path(__file__).parent]
    code_dirs = [
        Path(p) for p in _split(os.environ.get("QMD_SPHINX_CODE"), os.pathsep)
    ] or [confdir / "code" / "multilevel"]
    downloads = _split(os.environ.get("QMD_SPHINX_DOWNLOADS")) or ["notebooks", "pdf"]
    solutions = os.environ.get("QMD_SPHINX_SOLUTIONS") or "show"
    if solutions not in ("show", "hide"):
        raise ValueError(f"QMD_SPHINX_SOLUTIONS: 'show' or 'hide', got {solutions!r}")

    full = load_quarto(root)
    book = full.subset(chapters or None)
    ns.update(sphinx_settings(book))
    # sphinxcontrib-bibtex resolves relative names against conf.py's folder.
    ns["bibtex_bibfiles"] = [str(root / b) for b in book.bibliography]
    ns.update(
        extensions=["qmd_sphinx"],
        qmd_root=str(root),
        qmd_chapters=[c.path for c in book.chapters] if chapters else [],
        qmd_docnames=[c.docname for c in book.chapters],
        qmd_parts=[[c.docname for c in cs] for _, cs in book.parts()],
        qmd_appendices=[c.docname for c in book.appendices()],
        qmd_part_titles=[title or "" for title, _ in book.parts()],
        qmd_toctree=toctree_markdown(book),
        qmd_toctree_latex=toctree_markdown(book, appendices=False),
        qmd_code_hash=code_hash([d for d in code_dirs if d.is_dir()]),
        qmd_bridge_hash=code_hash(bridge_dirs),
        qmd_downloads=downloads,
        qmd_pdf_name=book.pdf_name,
        qmd_solutions=solutions == "show",
        language="en",
        # Sources: only the chapters listed in _quarto.yml are read.
        exclude_patterns=["_build", "**/_build", ".venv", "**.ipynb_checkpoints"],
        # Numbering with Quarto's words.
        numfig=True,
        numfig_secnum_depth=1,
        numfig_format=dict(QUARTO_WORDS),
        math_numfig=True,
        math_eqref_format="({number})",
        # MyST syntax the reader emits.
        myst_enable_extensions=["dollarmath", "amsmath", "colon_fence"],
        myst_dmath_double_inline=True,
        # Execution: cached, errors and stderr fail the build.
        nb_execution_mode="cache",
        nb_execution_timeout=1800,
        nb_execution_raise_on_error=True,
        nb_execution_show_tb=True,
        nb_merge_streams=True,
        nb_render_markdown_format="myst",  # pipe tables in text/markdown output
        nb_output_stderr="error",
        nb_custom_formats={".qmd": ["qmd_sphinx.sphinx_reader.read_qmd", {}, False]},
        # Citations.
        bibtex_default_style="plain",
        bibtex_reference_style="author_year",
        # HTML.
        html_theme="sphinx_book_theme",
        html_title=book.title,
        html_theme_options={
            "use_download_button": True,
            "use_fullscreen_button": True,
            "home_page_in_toc": True,
            "show_toc_level": 2,
            # the licences, on every page (book: page-footer: in _quarto.yml)
            "extra_footer": html.escape(book.footer),
        },
        # without it the theme's script logs "Got invalid theme mode"
        html_context={"default_mode": "auto"},
        # without an icon browsers ask for /favicon.ico and log a 404
        html_favicon=str(Path(__file__).parent / "static" / "favicon.svg"),
        # the bridge's CSS: colours that meet WCAG 2.1 AA contrast
        html_static_path=[str(Path(__file__).parent / "static")],
        html_css_files=["qmd.css"],
        html_last_updated_fmt=None,
        mathjax_path="mathjax/tex-chtml.js",
        # LaTeX -> PDF with xelatex.
        latex_engine="xelatex",
        latex_elements={
            "papersize": "a4paper",
            "pointsize": "11pt",
            "figure_align": "htbp",
            "preamble": LATEX_APPENDIX_NUMBERS + LATEX_TABLES + latex_metadata(book),
            "maketitle": latex_title_page(book, solutions == "show"),
        },
        latex_show_urls="footnote",
    )
