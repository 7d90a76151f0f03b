"""Downloadable notebooks from the executed chapters.

myst-nb writes each executed chapter to ``jupyter_execute/<docname>.ipynb``
(next to the Sphinx output folder) with its glue values in
``<docname>.glue.json``. :func:`export_chapter` turns one into the notebook a
reader downloads: the build's hidden cells (code hash, inline-expression
cells, the master toctree) are dropped and each ``{glue:md}`KEY``` in the
markdown is replaced by its value, and each cross-reference
(``{qmd-ref}`fig-x```, ``{qmd-num}`fig-x```) by the text the site prints for it
("Figure 4.1", "4.1"), read from the numbering the Sphinx build wrote
(``numbering.REFERENCES_FILE``). The student variant also drops every cell
tagged ``solution``.

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

from qmd_sphinx.sphinx_reader import INLINE_FIGURES, is_hash_cell
from qmd_sphinx.streams import merge_streams

GLUE_ROLE = re.compile(
    r"\{glue(?::md|:text|)?\}`([^`]+?)(?::(?:commonmark|gfm|myst))?`"
)
XREF_ROLE = re.compile(r"\{qmd-(ref|num)\}`([^`]+)`")
SOLUTION_TAG = "solution"


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


def clean_notebook(nb, glue: dict[str, str], where: str, references=None):
    """Drop the build's hidden cells, put the glue values and the text of the
    cross-references (``references``: label -> ``numbering.Target``) in."""
    references = references or {}
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

            def reference(match):
                target = references.get(match.group(2))
                if target is None:
                    raise NotebookExportError(
                        f"{where}: the build numbered no target {match.group(2)!r}"
                    )
                return target.text(bare=match.group(1) == "num")

            cell.source = XREF_ROLE.sub(reference, GLUE_ROLE.sub(value, cell.source))
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
    student = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    student.cells = [
        c
        for c in student.cells
        if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    return student


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


def export_chapter(
    executed: Path,
    out: Path,
    student_out: Path,
    cache_path: Path | str | None = None,
    references: dict | None = None,
) -> None:
    """Write the reader's and the student's notebook of one chapter.

    ``cache_path``: the build's jupyter-cache folder, where the outputs are;
    ``references``: label -> ``numbering.Target`` (what references print).
    """
    executed = Path(executed)
    if not executed.is_file():
        raise NotebookExportError(
            f"{executed} not found: the chapter was not executed by the build"
        )
    nb = nbformat.read(executed, as_version=4)
    if cache_path is not None:
        nb = merge_cached_outputs(nb, cache_path, str(executed))
    glue_file = executed.with_name(executed.stem + ".glue.json")
    nb = clean_notebook(nb, _glue_values(glue_file), str(executed), references)
    out.parent.mkdir(parents=True, exist_ok=True)
    student_out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    nbformat.write(student_variant(nb), student_out)
