#!/usr/bin/env python3
"""Lint the book's chapters for the conventions Sphinx cannot see.

    python scripts/lint_chapters.py [FILE.qmd ...]   (default: the chapters
                                                      listed in _quarto.yml)

Rules (DESIGN.md, "Conventions"):

* every figure chunk with a ``fig-cap`` has a ``fig-alt`` (and the reverse);
* labels follow the book's naming convention: lower-case kebab case with the
  kind's prefix (``sec-``, ``eq-``, ``fig-``, ``tbl-``, ``exr-``), a chunk with
  ``fig-cap`` is labelled ``fig-*`` and one with ``tbl-cap`` ``tbl-*``, and a
  label is defined once in the whole book;
* no ``eval: false`` (displayed code is executed code);
* no decimal number typed into prose (numbers come from inline expressions);
* code lines fit the PDF page (at most 80 characters).

Exit status 1 and one ``file:line: message`` per problem when anything is
wrong, so the output can be clicked in an editor.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

MAX_CODE_LINE = 80
KINDS = ("sec", "eq", "fig", "tbl", "exr")
LABEL_RE = re.compile(r"^(sec|eq|fig|tbl|exr)-[a-z0-9]+(?:-[a-z0-9]+)*$")
CHUNK_OPEN = re.compile(r"^```\{(\w+)[^}]*\}\s*$")
FENCE = re.compile(r"^(`{3,}|~{3,})")
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
HEADING_ID = re.compile(r"^#{1,6}\s.*\{[^}]*#([^\s}]+)[^}]*\}\s*$")
DIV_ID = re.compile(r"^:{3,}\s*\{[^}]*#([^\s}]+)[^}]*\}\s*$")
EQ_ID = re.compile(r"\$\$\s*\{#([^\s}]+)\}\s*$")
# A decimal number in prose: digits, a point, digits; not part of a word,
# a version-like chain handled as one match.
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:\.\d+)*(?![\w.]*\w)")
# Things in a prose line that are not prose: code spans (including inline
# expressions), inline math, link targets, attribute blocks, citations.
NOT_PROSE = re.compile(
    r"`[^`]*`"  # code spans and `{python} expr`
    r"|\$[^$]+\$"  # inline math
    r"|\]\([^)]*\)"  # link targets
    r"|\{[#.][^}]*\}"  # attributes {#sec-x}
    r"|https?://\S+"  # bare URLs
)


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def lint_text(text: str, path: str, labels: dict[str, str] | None = None) -> list[Problem]:
    """Problems in one chapter. ``labels`` collects label -> first place across files."""
    if labels is None:
        labels = {}
    problems: list[Problem] = []

    def add(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    def define(label: str, line: int, kind: str | None = None) -> None:
        if not LABEL_RE.match(label):
            add(
                line,
                f"label {label!r} does not follow the convention "
                f"<kind>-<lower-case-words> with kind one of {', '.join(KINDS)}",
            )
        elif kind and not label.startswith(kind + "-"):
            add(line, f"label {label!r} should start with {kind}-")
        where = f"{path}:{line}"
        if label in labels and labels[label] != where:
            add(line, f"label {label!r} is already defined at {labels[label]}")
        else:
            labels.setdefault(label, where)

    lines = text.splitlines()
    i = 0
    in_math = False
    in_front = bool(lines) and lines[0].strip() == "---"
    while i < len(lines):
        n = i + 1
        line = lines[i]
        stripped = line.strip()
        if in_front:
            if i > 0 and stripped == "---":
                in_front = False
            i += 1
            continue
        chunk = CHUNK_OPEN.match(stripped)
        fence = FENCE.match(stripped)
        if chunk or fence:
            marker = (fence.group(1) if fence else "```")
            executable = bool(chunk)
            options: dict[str, tuple[str, int]] = {}
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker[:3]):
                body = lines[j]
                opt = OPTION.match(body.strip()) if executable else None
                if opt:
                    options[opt.group(1)] = (opt.group(2).strip("\"'"), j + 1)
                if len(body) > MAX_CODE_LINE:
                    add(
                        j + 1,
                        f"code line is {len(body)} characters; the PDF page holds "
                        f"{MAX_CODE_LINE}: break it",
                    )
                j += 1
            if executable:
                _check_chunk(options, n, add, define)
            i = j + 1
            continue
        # display math: $$ ... $$ {#eq-x}, possibly over several lines
        if stripped.startswith("$$") or in_math:
            eq = EQ_ID.search(stripped)
            if eq:
                define(eq.group(1), n, "eq")
            opens = stripped.count("$$")
            if in_math:
                in_math = opens % 2 == 0
            else:
                in_math = opens % 2 == 1
            i += 1
            continue
        heading = HEADING_ID.match(stripped)
        if heading:
            define(heading.group(1), n, "sec")
        div = DIV_ID.match(stripped)
        if div and div.group(1) != "refs":
            define(div.group(1), n, "exr" if div.group(1).startswith("exr") else None)
        prose = NOT_PROSE.sub(" ", line)
        if not stripped.startswith("#|"):
            for m in DECIMAL.finditer(prose):
                add(
                    n,
                    f"the number {m.group(0)} is typed into the prose; compute it "
                    "with an inline expression `{python} ...`",
                )
        i += 1
    return problems


def _check_chunk(options, line, add, define) -> None:
    label = options.get("label", (None, line))[0]
    cap = options.get("fig-cap")
    alt = options.get("fig-alt")
    tbl = options.get("tbl-cap")
    if cap and not alt:
        add(cap[1], "a figure with fig-cap needs fig-alt (alt text for screen readers)")
    if alt and not cap:
        add(alt[1], "fig-alt without fig-cap: give the figure a caption")
    if (cap or alt) and not label:
        add(line, "a figure chunk needs '#| label: fig-...' to be referenced")
    if tbl and not label:
        add(tbl[1], "a table chunk with tbl-cap needs '#| label: tbl-...'")
    if label:
        kind = "fig" if (cap or alt) else "tbl" if tbl else None
        if kind or label.split("-")[0] in KINDS:
            define(label, options["label"][1], kind)
    ev = options.get("eval")
    if ev and ev[0].lower() == "false":
        add(ev[1], "eval: false; displayed code must be executed code")


def book_chapters(root: Path) -> list[Path]:
    """The .qmd files listed in _quarto.yml, in order."""
    config = yaml.safe_load((root / "_quarto.yml").read_text(encoding="utf-8"))
    book = config.get("book", {})
    found: list[Path] = []

    def walk(entries):
        for entry in entries or []:
            if isinstance(entry, str):
                found.append(root / entry)
            elif isinstance(entry, dict):
                walk(entry.get("chapters"))

    walk(book.get("chapters"))
    walk(book.get("appendices"))
    return found


def lint_files(paths: list[Path], root: Path | None = None) -> list[Problem]:
    labels: dict[str, str] = {}
    problems: list[Problem] = []
    for path in paths:
        shown = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
        problems += lint_text(path.read_text(encoding="utf-8"), shown, labels)
    return problems


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    paths = [Path(a).resolve() for a in argv] or book_chapters(root)
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
    sys.exit(main(sys.argv[1:]))
