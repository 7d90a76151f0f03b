"""Downloadable notebooks from the executed chapters.

myst-nb writes each executed chapter to ``jupyter_execute/<docname>.ipynb``
(next to the Sphinx output folder) with its glue values in
``<docname>.glue.json``. :func:`export_chapter` turns one into the notebooks a
reader and a student download, in three steps that later steps of the course
kit can extend:

1. :func:`clean_notebook`: the build's hidden cells (code hash,
   inline-expression cells, the master toctree) are dropped and each
   ``{glue:md}`KEY``` in the markdown is replaced by its value;
2. :func:`student_variant`: the student's copy drops every cell tagged
   ``solution``;
3. ``nbmarkdown.jupyter_notebook``: each variant's markdown is translated
   from MyST to what Jupyter, JupyterLab, VS Code and Colab render
   (references as the site prints them, linked to the site; citations;
   callouts; exercises; numbered equations) and checked for leftovers; the
   student's gets an empty answer cell after each exercise.

In ``nb_execution_mode = "cache"``, myst-nb 1.4 writes ``jupyter_execute/``
from the notebook it read, not from the one it merged with the cache: a
chapter served from the cache (every build after the first, e.g. the LaTeX
build after the HTML one) is written WITHOUT outputs. :func:`export_chapter`
therefore takes the outputs from the jupyter-cache when given its folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from qmd_sphinx.html import DOWNLOADS_DIR
from qmd_sphinx.nbmarkdown import (
    Bibliography,
    NotebookMarkdownError,
    SiteLinks,
    cited_keys,
    jupyter_notebook,
)
from qmd_sphinx.sphinx_reader import INLINE_FIGURES, SOLUTION_TAG, is_hash_cell
from qmd_sphinx.streams import merge_streams

#: the first cell of every downloaded notebook (its constants are set per
#: chapter by :func:`setup_cell`)
SETUP_CELL = Path(__file__).with_name("cells") / "setup.py"
SETUP_TAG = "setup"
#: code that runs R: a chapter with any needs R and lme4 to run
R_CODE = re.compile(r"^%%R\b|%load_ext rpy2|\bfit_lmer\(|\brpy2\b", re.M)
GLUE_ROLE = re.compile(
    r"\{glue(?::md|:text|)?\}`([^`]+?)(?::(?:commonmark|gfm|myst))?`"
)


class NotebookExportError(RuntimeError):
    pass


def _glue_values(glue_file: Path) -> dict[str, str]:
    if not glue_file.is_file():
        return {}
    data = json.loads(glue_file.read_text(encoding="utf-8"))
    values = {}
    for key, output in data.items():
        bundle = output.get("data", {})
        value = bundle.get("text/markdown", bundle.get("text/plain"))
        if isinstance(value, list):
            value = "".join(value)
        if value is not None:
            values[key] = str(value)
    return values


def _is_build_cell(cell) -> bool:
    qmd = cell.get("metadata", {}).get("qmd", {})
    return is_hash_cell(cell) or bool(qmd.get("inline")) or bool(qmd.get("toctree"))


def clean_notebook(nb, glue: dict[str, str], where: str):
    """Drop the build's hidden cells and put the glue values in."""
    cells = []
    for cell in nb.cells:
        if _is_build_cell(cell):
            continue
        if cell.cell_type == "markdown":

            def value(match, cell=cell):
                key = match.group(1)
                if key not in glue:
                    raise NotebookExportError(
                        f"{where}: no value for inline expression {key!r}"
                    )
                return glue[key]
            cell.source = GLUE_ROLE.sub(value, cell.source)
        elif cell.cell_type == "code":  # rpy2's many small pieces, as one text
            cell.outputs = [nbformat.from_dict(o) for o in merge_streams(cell.outputs)]
        cells.append(cell)
    # the reader's notebook must show figures too, whatever its backend
    setup = nbformat.v4.new_code_cell(source=INLINE_FIGURES)
    setup.metadata["tags"] = ["remove-cell"]
    nb.cells = [setup, *cells]
    nb.metadata.pop("source_map", None)
    return nb


def student_variant(nb):
    """A copy of ``nb`` without the cells tagged ``solution``."""
    student = nbformat.reads(nbformat.writes(nb), as_version=4)
    student.cells = [
        c
        for c in student.cells
        if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    return student


def needs_r(nb) -> bool:
    """Whether a code cell of ``nb`` runs R (``%%R``, rpy2, ``fit_lmer``)."""
    return any(c.cell_type == "code" and R_CODE.search(c.source) for c in nb.cells)


def setup_cell(wheel: str, site_url: str, r: bool):
    """The cell that installs the wheel ``wheel`` (a file name) and checks R.

    It looks for the wheel next to the notebook and up to three folders above
    (the site's ``downloads/``), then at ``site_url``'s ``downloads/``.
    """
    source = SETUP_CELL.read_text(encoding="utf-8")
    values = {
        "WHEEL": json.dumps(wheel),  # a Python string in the cell's quotes
        "SITE_DOWNLOADS": json.dumps(f"{site_url.rstrip('/')}/{DOWNLOADS_DIR}"
                                     if site_url else ""),
        "NEEDS_R": repr(bool(r)),
    }
    for name, value in values.items():
        source, count = re.subn(rf"^{name} = [^#\n]*?(?=\s*(#|$))",
                                f"{name} = {value}", source, count=1, flags=re.M)
        if count != 1:
            raise NotebookExportError(f"{SETUP_CELL}: no line `{name} = ...`")
    return nbformat.v4.new_code_cell(source.rstrip("\n"),
                                     metadata={"tags": [SETUP_TAG]})


def merge_cached_outputs(nb, cache_path: Path | str, where: str):
    """``nb`` with the outputs of its executed version in the jupyter-cache."""
    from jupyter_cache import get_cache

    try:
        _, merged = get_cache(str(cache_path)).merge_match_into_notebook(nb)
    except KeyError:
        raise NotebookExportError(
            f"{where}: no executed version of this notebook in the execution "
            f"cache {cache_path} (was the chapter executed by this build?)"
        ) from None
    return merged


def read_chapter(executed: Path, cache_path: Path | str | None = None):
    """The executed chapter with its outputs and values, cleaned (step 1)."""
    executed = Path(executed)
    if not executed.is_file():
        raise NotebookExportError(
            f"{executed} not found: the chapter was not executed by the build"
        )
    nb = nbformat.read(executed, as_version=4)
    if cache_path is not None:
        nb = merge_cached_outputs(nb, cache_path, str(executed))
    glue_file = executed.with_name(executed.stem + ".glue.json")
    return clean_notebook(nb, _glue_values(glue_file), str(executed))


def notebook_citations(nb) -> list[str]:
    """The citation keys of a cleaned chapter, in order."""
    keys: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            keys += [k for k in cited_keys(cell.source) if k not in keys]
    return keys


def export_chapter(
    executed: Path | None,
    out: Path,
    student_out: Path,
    cache_path: Path | str | None = None,
    references: dict | None = None,
    site_url: str = "",
    bibliography: Bibliography | None = None,
    book_cited: list[str] | None = None,
    nb=None,
    left_out: frozenset[str] = frozenset(),
    wheel: str | None = None,
) -> None:
    """Write the reader's and the student's notebook of one chapter.

    ``cache_path``: the build's jupyter-cache folder, where the outputs are;
    ``references``: label -> ``numbering.Target`` (what references print);
    ``site_url``: the book's site (``book: site-url:``), where references
    link; unset, they link relative to the notebooks' place in the site
    (``downloads/notebooks/`` and ``downloads/notebooks/student/``);
    ``bibliography``: the book's entries; ``book_cited``: every key the book
    cites (what a ``::: {#refs}`` lists); ``nb``: the chapter already read by
    :func:`read_chapter` (else ``executed`` is read); ``left_out``: the labels
    of the chapters a sub-book leaves out (printed as plain text); ``wheel``:
    the file name of the package's wheel, which the first cell installs
    (:func:`setup_cell`; no such cell when None).
    """
    where = str(executed)
    if nb is None:
        nb = read_chapter(executed, cache_path)
    if wheel is not None:
        nb = nbformat.reads(nbformat.writes(nb), as_version=4)
        nb.cells.insert(0, setup_cell(wheel, site_url, needs_r(nb)))
    # (notebook, where it goes, its depth in the site, answer cells)
    variants = ((nb, out, 2, False), (student_variant(nb), student_out, 3, True))
    for variant, path, depth, answers in variants:
        try:
            native = jupyter_notebook(variant, references or {},
                                      SiteLinks(site_url, depth), bibliography,
                                      where, book_cited, left_out,
                                      answer_cells=answers)
        except NotebookMarkdownError as exc:
            raise NotebookExportError(str(exc)) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(native, path)
