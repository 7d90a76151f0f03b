"""qmd_sphinx: build a Quarto book (``_quarto.yml`` + ``.qmd``) with Sphinx.

``reader.py`` translates one ``.qmd`` chapter into a MyST notebook; this
module is the Sphinx extension around it (see ``sphinx_conf.configure`` for
the configuration a ``conf.py`` gets from ``_quarto.yml``):

- ``.qmd`` is a myst-nb custom format read by ``sphinx_reader.read_qmd``;
- before anything is read, every chapter is translated and scanned, and every
  cross-reference and citation key is checked (``checks.py``): problems stop
  the build with ``file:line``;
- tables of ``tbl-`` cells get their caption, images without alt text are
  errors (``transforms.py``);
- chapters, sections, figures, tables, exercises and equations get one
  numbering (per chapter from 1, appendices A.1, ...), and cross-references
  print Quarto's text ("Chapter 3", "Equation 2.5") (``numbering.py``);
- MathJax is copied into the site and each chapter's download menu offers its
  notebooks and the book's PDF (``html.py``).
"""

from __future__ import annotations

from pathlib import Path

from sphinx.errors import SphinxError
from sphinx.util import logging

__version__ = "0.1.0"

logger = logging.getLogger(__name__)


class QmdBuildError(SphinxError):
    category = "Quarto book error"


def _builder_inited(app) -> None:
    from qmd_sphinx import html
    from qmd_sphinx.checks import BookCheckError, check_book
    from qmd_sphinx.quarto_config import QuartoConfigError, load_quarto
    from qmd_sphinx.sphinx_reader import STATE

    config = app.config
    STATE["root_doc"] = config.root_doc
    STATE["code_hash"] = config.qmd_code_hash
    STATE["solutions"] = config.qmd_solutions
    latex = app.builder.format == "latex"
    STATE["toctree"] = config.qmd_toctree_latex if latex else config.qmd_toctree
    if latex:  # appendices come from latex_appendices, not from the toctree
        config.suppress_warnings = [*config.suppress_warnings, "toc.not_included"]
    STATE["parts"] = [list(p) for p in config.qmd_parts]
    if config.qmd_root:
        try:
            full = load_quarto(config.qmd_root)
            book = full.subset(list(config.qmd_chapters) or None)
            index = check_book(book, full)
            app.env.qmd_labels = index.labels
            app.env.qmd_unnumbered = index.unnumbered_docnames
        except QuartoConfigError as exc:
            raise QmdBuildError(str(exc)) from None
        except BookCheckError as exc:
            raise QmdBuildError(
                f"{len(exc.problems)} problem(s) in the book's sources:\n" + str(exc)
            ) from None
    html.copy_mathjax(app)


def _source_read(app, docname: str, source: list[str]) -> None:
    from qmd_sphinx.sphinx_reader import STATE

    STATE["docname"] = docname
    STATE["path"] = str(Path(app.env.doc2path(docname)))


def _missing_reference(app, env, node, contnode):
    """In a sub-book, a reference to a chapter left out renders as text."""
    if not app.config.qmd_chapters:
        return None
    target = node.get("reftarget")
    labels = getattr(env, "qmd_labels", {}) or {}
    if target in labels and node.get("refdomain") in ("std", "math", ""):
        logger.info(f"{target}: defined in {labels[target]}, not in this sub-book")
        return contnode
    return None


def setup(app):
    from qmd_sphinx import html, numbering, progress, streams, transforms

    streams.install()
    app.setup_extension("myst_nb")
    app.setup_extension("sphinx_copybutton")
    app.setup_extension("sphinx_togglebutton")
    app.setup_extension("sphinx_exercise")
    app.setup_extension("sphinxcontrib.bibtex")

    app.add_config_value("qmd_root", "", "env", str)
    app.add_config_value("qmd_chapters", [], "env", list)
    app.add_config_value("qmd_docnames", [], "env", list)
    app.add_config_value("qmd_parts", [], "env", list)
    app.add_config_value("qmd_appendices", [], "env", list)
    app.add_config_value("qmd_part_titles", [], "env", list)
    app.add_config_value("qmd_toctree", "", "env", str)
    app.add_config_value("qmd_toctree_latex", "", "env", str)
    # A change in the project's code re-reads every chapter; the hash cell then
    # changes each notebook's jupyter-cache key, so the chapters re-execute.
    app.add_config_value("qmd_code_hash", "", "env", str)
    # A change in the bridge re-reads every chapter too (its translation may
    # differ) but is not in the execution cache key: nothing re-executes
    # unless the code cells themselves change.
    app.add_config_value("qmd_bridge_hash", "", "env", str)
    app.add_config_value("qmd_downloads", ["notebooks", "pdf"], "html", list)
    app.add_config_value("qmd_pdf_name", "BOOK.pdf", "html", str)
    # False: the student edition, without the exercises' solutions
    app.add_config_value("qmd_solutions", True, "env", bool)

    app.connect("builder-inited", _builder_inited)
    app.connect("source-read", _source_read)
    # one line per chapter as it is read (executed or from the cache), a sum
    app.connect("builder-inited", progress.builder_inited)
    app.connect("source-read", progress.chapter_started)
    app.connect("doctree-read", progress.chapter_read)
    app.connect("env-updated", progress.summary)
    app.connect("missing-reference", _missing_reference, priority=900)
    app.connect("env-get-updated", numbering.number_book, priority=900)
    app.connect("build-finished", numbering.write_targets)
    app.connect("html-page-context", html.download_menu, priority=520)
    app.connect("html-page-context", html.bibliography_roles)
    app.add_role("qmd-ref", numbering.ref_role)
    app.add_role("qmd-num", numbering.num_role)
    app.add_node(numbering.quarto_xref)
    app.add_post_transform(numbering.QuartoReferences)
    app.add_transform(transforms.QuartoTables)
    app.add_transform(transforms.RequireAltText)
    app.add_transform(transforms.DropSolutions)
    app.add_post_transform(transforms.ExerciseLatexLabels)
    app.add_post_transform(transforms.LatexPreface)
    app.add_post_transform(transforms.LatexUnnumberedAppendices)

    return {
        "version": __version__,
        "parallel_read_safe": False,
        "parallel_write_safe": True,
    }
