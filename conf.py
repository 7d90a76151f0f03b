"""Sphinx configuration of the book: everything comes from _quarto.yml.

See code/qmd_sphinx/sphinx_conf.py (and scripts/build_book.py, which runs
Sphinx with this file).
"""

from qmd_sphinx.sphinx_conf import configure

configure(globals())
