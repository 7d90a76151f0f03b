"""The myst-nb custom-format entry point for ``.qmd`` chapters.

myst-nb calls a custom reader with the text only (``reader(text, **kwargs)``,
see ``myst_nb.core.read.create_nb_reader``), so the path of the chapter being
read is recorded by a ``source-read`` handler just before myst-nb parses it.
On top of the reader's translation this adds:

- a hidden first code cell holding a hash of the project's Python code, so
  the jupyter-cache key (which hashes every code cell's source) changes when
  ``code/`` changes, not only when the chapter does;
- on the root document, the master toctrees generated from ``_quarto.yml``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from pathlib import Path
from typing import Any

import nbformat

from qmd_sphinx.emit import SOLUTION_TAG

CODE_HASH_KEY = "code_hash"
HASH_PREFIX = "# qmd-sphinx: hash of the project's code: "

# Set by the Sphinx extension (qmd_sphinx.setup); read by read_qmd.
STATE: dict[str, Any] = {
    "path": None,  # absolute path of the chapter being read
    "docname": None,
    "root_doc": None,
    "toctree": None,  # MyST toctree source appended to the root document
    "code_hash": None,
    "solutions": True,  # False: the student edition drops the solutions' text
}


def code_hash(dirs: list[Path] | tuple[Path, ...]) -> str:
    """SHA-256 of every ``*.py`` file under ``dirs`` (names and contents)."""
    digest = hashlib.sha256()
    for base in dirs:
        base = Path(base)
        for path in sorted(base.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(base).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


#: Quarto's jupyter engine turns on inline figures itself; a kernel under
#: ``MPLBACKEND=Agg`` does not, and then a bare ``Figure`` (what the
#: package's plots return) shows as ``<Figure size ...>`` text, no image.
INLINE_FIGURES = "%matplotlib inline"


def hash_cell(hexdigest: str) -> nbformat.NotebookNode:
    """A hidden first code cell: inline figures on, and the code hash."""
    return nbformat.v4.new_code_cell(
        source=f"{INLINE_FIGURES}\n{HASH_PREFIX}{hexdigest}",
        metadata={"tags": ["remove-cell"], "qmd": {CODE_HASH_KEY: True}},
    )


def is_hash_cell(cell: dict) -> bool:
    return bool(cell.get("metadata", {}).get("qmd", {}).get(CODE_HASH_KEY))


def _insert_cell(nb: nbformat.NotebookNode, index: int, cell, line: int) -> None:
    nb.cells.insert(index, cell)
    smap = nb.metadata.get("source_map")
    if isinstance(smap, list):
        smap.insert(index, line)


def decorate(nb: nbformat.NotebookNode, docname: str | None) -> None:
    """Add the code-hash cell and, on the root document, the toctrees."""
    if STATE["code_hash"]:
        _insert_cell(nb, 0, hash_cell(STATE["code_hash"]), 0)
    if docname is not None and docname == STATE["root_doc"] and STATE["toctree"]:
        end = len(nb.cells)
        smap = nb.metadata.get("source_map")
        last = smap[-1] if isinstance(smap, list) and smap else 0
        cell = nbformat.v4.new_markdown_cell(
            STATE["toctree"], metadata={"qmd": {"toctree": True}}
        )
        _insert_cell(nb, end, cell, last)


def reader_module():
    """The reader: ``qmd_sphinx.reader``, or ``$QMD_SPHINX_READER`` in tests."""
    return importlib.import_module(
        os.environ.get("QMD_SPHINX_READER") or "qmd_sphinx.reader"
    )


def read_qmd(text: str) -> nbformat.NotebookNode:
    """myst-nb reader: translate a ``.qmd`` chapter (see ``reader.py``)."""
    reader = reader_module()
    path = STATE["path"] or "<string>"
    nb = reader.qmd_to_notebook(text, path=str(path))
    decorate(nb, STATE["docname"])
    if not STATE["solutions"]:
        # the solutions' text goes; their code cells stay (the execution
        # cache hashes code cells only) and transforms.DropSolutions removes
        # them from the page
        nb.cells = [c for c in nb.cells if c.cell_type == "code"
                    or SOLUTION_TAG not in c.metadata.get("tags", [])]
    return nb
