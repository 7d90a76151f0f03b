"""HTML-only pieces: MathJax served by the site, the download menu, and the
ARIA roles of the bibliography."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_DIR = "mathjax"  # under _static/
MATHJAX_ENTRY = "tex-chtml.js"
# What tex-chtml.js loads lazily (fonts, extensions, menu, a11y, speech).
MATHJAX_PARTS = ("a11y", "adaptors", "input", "output/chtml", "sre", "ui")

DOWNLOADS_DIR = "downloads"  # under the site root
NOTEBOOKS_DIR = "notebooks"
STUDENT_DIR = "student"


def mathjax_source() -> Path:
    """MathJax 3's ``es5`` folder from the django-static-mathjax package."""
    try:
        import mathjax  # provided by django-static-mathjax
    except ImportError:  # pragma: no cover - environment problem
        raise RuntimeError(
            "MathJax is missing: install it with "
            "`.venv/bin/pip install django-static-mathjax`"
        ) from None
    base = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (base / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"MathJax's {MATHJAX_ENTRY} not found under {base}")
    return base


def copy_mathjax(app) -> None:
    """Copy MathJax 3 into ``_static/mathjax`` (no CDN request at read time)."""
    if app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / MATHJAX_DIR
    if (target / MATHJAX_ENTRY).is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
    for part in MATHJAX_PARTS:
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)


def notebook_name(docname: str) -> str:
    """File name of a chapter's notebook: ``book/cafes`` -> ``cafes.ipynb``."""
    return docname.rsplit("/", 1)[-1] + ".ipynb"


@functools.cache
def wheel_name() -> str:
    """The file name of the wheel of the package the notebooks install
    (``[tool.multilevel-wheel]`` of the repository this bridge is part of)."""
    from qmd_sphinx.wheel import load_spec

    return load_spec(Path(__file__).resolve().parents[2]).filename


def student_pdf_name(pdf_name: str) -> str:
    """The file name of the PDF without solutions (``BOOK-student.pdf``)."""
    return f"{Path(pdf_name).stem}-student.pdf"


def download_paths(docname: str, pdf_name: str) -> dict[str, str]:
    """Site-relative paths of a chapter's downloads (build_book.py puts them)."""
    name = notebook_name(docname)
    return {
        "ipynb": f"{DOWNLOADS_DIR}/{NOTEBOOKS_DIR}/{name}",
        "student": f"{DOWNLOADS_DIR}/{NOTEBOOKS_DIR}/{STUDENT_DIR}/{name}",
        "wheel": f"{DOWNLOADS_DIR}/{wheel_name()}",
        "pdf": f"{DOWNLOADS_DIR}/{pdf_name}",
        "student_pdf": f"{DOWNLOADS_DIR}/{student_pdf_name(pdf_name)}",
    }


def download_menu(app, pagename, templatename, context, doctree) -> None:
    """Replace the theme's download buttons by the chapter's notebooks + PDF.

    Runs after sphinx-book-theme's ``add_header_buttons`` (priority 501).
    """
    if pagename not in set(app.config.qmd_docnames):
        return
    buttons = context.get("header_buttons")
    if buttons is None:
        return
    offered = set(app.config.qmd_downloads)
    paths = download_paths(pagename, app.config.qmd_pdf_name)
    pathto = context["pathto"]
    entries = []
    if "notebooks" in offered:
        entries.append(
            {
                "type": "link",
                "url": pathto(paths["ipynb"], 1),
                "text": ".ipynb",
                "icon": "fas fa-code",
                "tooltip": "This chapter as an executed notebook",
                "label": "download-notebook-button",
            }
        )
        entries.append(
            {
                "type": "link",
                "url": pathto(paths["student"], 1),
                "text": ".ipynb (student)",
                "icon": "fas fa-user-graduate",
                "tooltip": "This chapter as a notebook without the solutions",
                "label": "download-student-notebook-button",
            }
        )
        entries.append(
            {
                "type": "link",
                "url": pathto(paths["wheel"], 1),
                "text": ".whl (the notebooks' package)",
                "icon": "fas fa-box",
                "tooltip": "The book's Python package, multilevel, which the "
                "notebooks' first cell installs",
                "label": "download-wheel-button",
            }
        )
    if "pdf" in offered:
        entries.append(
            {
                "type": "link",
                "url": pathto(paths["pdf"], 1),
                "text": ".pdf",
                "icon": "fas fa-file-pdf",
                "tooltip": "The whole book as a PDF",
                "label": "download-pdf-button",
            }
        )
        entries.append(
            {
                "type": "link",
                "url": pathto(paths["student_pdf"], 1),
                "text": ".pdf (student)",
                "icon": "fas fa-file-pdf",
                "tooltip": "The whole book as a PDF without the solutions",
                "label": "download-student-pdf-button",
            }
        )
    group = {
        "type": "group",
        "tooltip": "Download",
        "icon": "fas fa-download",
        "buttons": entries,
        "label": "download-buttons",
    }
    for i, button in enumerate(buttons):
        if button.get("label") == "download-buttons":
            if entries:
                buttons[i] = group
            else:
                del buttons[i]
            return
    if entries:
        buttons.insert(0, group)


#: docutils writes the bibliography as ``<div role="list">`` whose entries
#: have ``role="doc-biblioentry"``: a list without list items (axe-core:
#: aria-required-children, critical), and a role ARIA 1.2 deprecates.
BIBLIO_ROLE = 'role="doc-biblioentry"'


def bibliography_roles(app, pagename, templatename, context, doctree) -> None:
    """The bibliography's entries are the items of its list."""
    body = context.get("body")
    if isinstance(body, str) and BIBLIO_ROLE in body:
        context["body"] = body.replace(BIBLIO_ROLE, 'role="listitem"')

