"""Lint the book's chapters: the build's own checks, and the book's conventions.

    python -m qmd_sphinx.lint [--root DIR] [FILE.qmd ...]
    (default: every chapter listed in DIR/_quarto.yml; DIR defaults to .)

The linter reads a chapter with the build's parser (``reader.scan`` and the
block pass of ``blocks.py``), so what it accepts builds and what the build
refuses it reports, with the same message: syntax outside the subset, labels
(one grammar, ``labels.py``), a figure without ``fig-alt``, a reference that
repeats its word ("Equation @eq-x"). On top of that it checks the book's
conventions, which Sphinx cannot see:

* a label is defined once in the whole book;
* no ``eval: false`` (displayed code is executed code);
* no decimal number typed into prose (numbers come from inline expressions);
* code lines fit the PDF page (at most 80 characters).

Exit status 1 and one ``file:line: message`` per problem when anything is
wrong, so the output can be clicked in an editor.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .blocks import FENCE_RE, Chunk, Div, Heading, Table, Text
from .errors import QmdSyntaxError
from .reader import parse, scan

MAX_CODE_LINE = 80
# A decimal number in prose: digits, a point, digits; not part of a word,
# a version-like chain handled as one match.
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:\.\d+)*(?![\w.]*\w)")
# Things in a prose line that are not prose: code spans (including inline
# expressions), inline math, link targets, attribute blocks, bare URLs.
NOT_PROSE = re.compile(
    r"`[^`]*`"  # code spans and `{python} expr`
    r"|\$[^$]+\$"  # inline math
    r"|\]\([^)]*\)"  # link targets
    r"|\{[#.][^}]*\}"  # attributes {#sec-x}
    r"|https?://\S+"  # bare URLs
)
EVAL_FALSE = re.compile(r"^#\|\s*eval\s*:\s*false\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _walk(items):
    for item in items:
        yield item
        if isinstance(item, Div):
            yield from _walk(item.children)


def _code_lines(block: Text):
    """The lines inside literal code fences of a verbatim block."""
    fence = None
    for n, line in block.lines:
        m = FENCE_RE.match(line)
        if fence is None:
            if m:
                fence = m["fence"]
            continue
        if m and m["fence"].startswith(fence[0] * len(fence)) and not m["info"].strip():
            fence = None
            continue
        yield n, line


def lint_text(
    text: str, path: str, labels: dict[str, str] | None = None
) -> list[Problem]:
    """Problems in one chapter.

    ``labels`` collects label -> first place across files.
    """
    labels = {} if labels is None else labels
    problems: list[Problem] = []

    def add(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    try:
        _, items = parse(text, path)
    except QmdSyntaxError as exc:  # the blocks cannot be read: nothing else to check
        return [Problem(path, exc.line, exc.message)]
    try:
        chapter = scan(text, path)
    except QmdSyntaxError as exc:
        add(exc.line, exc.message)
    else:
        for label in chapter.defines:
            where = f"{path}:{label.line}"
            if label.name in labels and labels[label.name] != where:
                add(label.line,
                    f"label {label.name!r} is already defined at {labels[label.name]}")
            else:
                labels.setdefault(label.name, where)

    for item in _walk(items):
        if isinstance(item, Chunk):
            for n, line in item.lines:
                if EVAL_FALSE.match(line.strip()):
                    add(n, "eval: false; displayed code must be executed code")
                if len(line) > MAX_CODE_LINE:
                    add(n, f"code line is {len(line)} characters; the PDF page holds "
                        f"{MAX_CODE_LINE}: break it")
        elif isinstance(item, Text) and item.verbatim:
            for n, line in _code_lines(item):
                if len(line) > MAX_CODE_LINE:
                    add(n, f"code line is {len(line)} characters; the PDF page holds "
                        f"{MAX_CODE_LINE}: break it")
        elif isinstance(item, (Text, Heading, Table)):
            lines = (item.lines if isinstance(item, Text)
                     else [*item.rows, (item.caption_line, item.caption)]
                     if isinstance(item, Table) else [(item.line, item.text)])
            for n, line in lines:
                for m in DECIMAL.finditer(NOT_PROSE.sub(" ", line)):
                    add(n, f"the number {m.group(0)} is typed into the prose; compute "
                        "it with an inline expression `{python} ...`")
    return sorted(problems, key=lambda p: p.line)


def book_chapters(root: Path) -> list[Path]:
    """The .qmd files listed in ``root/_quarto.yml``, in order."""
    from .quarto_config import load_quarto

    book = load_quarto(root, check_files=False)
    return [Path(root) / c.path for c in book.chapters]


def lint_files(paths: list[Path], root: Path | None = None) -> list[Problem]:
    labels: dict[str, str] = {}
    problems: list[Problem] = []
    for path in paths:
        shown = (str(path.relative_to(root))
                 if root and path.is_relative_to(root) else str(path))
        problems += lint_text(path.read_text(encoding="utf-8"), shown, labels)
    return problems


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qmd_sphinx.lint", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, default=root or Path("."),
                        help="folder holding _quarto.yml (default: .)")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE.qmd")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    paths = [p.resolve() for p in args.files] or book_chapters(root)
    missing = [p for p in paths if not p.exists()]
    if missing:
        for p in missing:
            print(f"{p}: no such chapter (listed in _quarto.yml?)", file=sys.stderr)
        return 1
    problems = lint_files(paths, root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(paths)} chapter(s)", file=sys.stderr)
        return 1
    print(f"lint: {len(paths)} chapter(s), no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
