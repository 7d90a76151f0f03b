#!/usr/bin/env python3
"""Lint the book's chapters (``qmd_sphinx.lint``, with this repository as root).

    .venv/bin/python scripts/lint_chapters.py [FILE.qmd ...]

Without files it lints every chapter listed in _quarto.yml. The rules and the
parser they use are in code/qmd_sphinx/lint.py (``python -m qmd_sphinx.lint``).
"""

import sys
from pathlib import Path

from qmd_sphinx.lint import main

if __name__ == "__main__":
    sys.exit(main(root=Path(__file__).resolve().parent.parent))
