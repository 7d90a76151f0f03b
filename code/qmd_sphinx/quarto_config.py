"""Read a Quarto book's ``_quarto.yml`` into Sphinx configuration.

``_quarto.yml`` is the one place where the chapters are listed. This module
turns it into the values Sphinx needs (project, author, root document, the
files to read, the bibliography) and into the master table of contents: one
numbered toctree per ``part:`` (its caption is the part's title), then the
appendices.

Only what the Sphinx build uses is interpreted; the rest of ``_quarto.yml``
(formats, execute options) is Quarto's business and is left alone.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as dt
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

QUARTO_FILE = "_quarto.yml"
INDEX_FILE = "index.qmd"


class QuartoConfigError(ValueError):
    """``_quarto.yml`` says something the build cannot use."""

    def __init__(self, path: Path | str, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")


@dc.dataclass(frozen=True)
class Chapter:
    """One chapter file of the book."""

    path: str  # relative to the project root, POSIX separators
    part: str | None = None  # title of the part it belongs to
    appendix: bool = False

    @property
    def docname(self) -> str:
        """Sphinx's name for the document (path without suffix)."""
        return str(PurePosixPath(self.path).with_suffix(""))


@dc.dataclass(frozen=True)
class QuartoBook:
    """What the Sphinx build takes from ``_quarto.yml``."""

    root: Path
    title: str
    authors: tuple[str, ...]
    chapters: tuple[Chapter, ...]  # index first, then parts, then appendices
    bibliography: tuple[str, ...]
    subtitle: str = ""
    #: the PDF's file name without ``.pdf`` (``book: output-file:``, as in
    #: Quarto; default: the title in lower-case words joined by '-')
    output_file: str = ""
    version: str = ""  # top-level ``version:``
    date: str = ""  # ``book: date:``; ``today`` is the build's date (UTC)
    license: str = ""  # top-level ``license:`` (Quarto's, for the text)
    footer: str = ""  # ``book: page-footer:``, plain text
    #: ``book: site-url:``, where the book is published (the notebooks'
    #: references link there; unset, they link relative to the site's files)
    site_url: str = ""

    @property
    def pdf_name(self) -> str:
        return f"{self.output_file or slug(self.title)}.pdf"

    @property
    def date_text(self) -> str:
        if self.date in ("today", "last-modified"):
            return dt.datetime.now(dt.UTC).date().isoformat()
        return self.date

    @property
    def index(self) -> Chapter:
        return self.chapters[0]

    @property
    def author(self) -> str:
        return ", ".join(self.authors)

    def parts(self) -> list[tuple[str | None, list[Chapter]]]:
        """Main-matter chapters grouped by part, in order (index excluded)."""
        groups: list[tuple[str | None, list[Chapter]]] = []
        for chapter in self.chapters[1:]:
            if chapter.appendix:
                continue
            if not groups or groups[-1][0] != chapter.part:
                groups.append((chapter.part, []))
            groups[-1][1].append(chapter)
        return groups

    def appendices(self) -> list[Chapter]:
        return [c for c in self.chapters if c.appendix]

    def subset(self, paths: list[str] | None) -> QuartoBook:
        """The sub-book with the index and the listed chapter files only."""
        if not paths:
            return self
        known = {c.path: c for c in self.chapters}
        wanted = set()
        for p in paths:
            rel = _relative(self.root, p)
            if rel not in known:
                raise QuartoConfigError(
                    self.root / QUARTO_FILE,
                    f"--chapters lists {p!r}, which is not a chapter of the "
                    f"book; chapters are: {', '.join(known)}",
                )
            wanted.add(rel)
        kept = tuple(
            c for i, c in enumerate(self.chapters) if i == 0 or c.path in wanted
        )
        return dc.replace(self, chapters=kept)


def slug(title: str) -> str:
    """``"One Mixed Model, Two Ways"`` -> ``"one-mixed-model-two-ways"``."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    if not words:
        raise ValueError(f"title {title!r} has no letters or digits to name a file")
    return "-".join(words)


def _text(value: Any, where: str, file: Path) -> str:
    """An optional text setting: a string (or a YAML date, as written)."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise QuartoConfigError(file, f"{where} must be a string, got {value!r}")
    return value.strip()


def _relative(root: Path, path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root.resolve())
        except ValueError:
            return str(path)
    return PurePosixPath(*p.parts).as_posix()


def _as_str_list(value: Any, where: str, file: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and "name" in item:
                item = item["name"]
            if not isinstance(item, str):
                raise QuartoConfigError(
                    file, f"{where} must be a string or a list of strings"
                )
            out.append(item)
        return tuple(out)
    if isinstance(value, dict) and "name" in value:
        return (str(value["name"]),)
    raise QuartoConfigError(file, f"{where} must be a string or a list of strings")


def _chapter(item: Any, file: Path, part: str | None, appendix: bool) -> Chapter:
    if not isinstance(item, str):
        raise QuartoConfigError(
            file,
            f"a chapter entry must be a file name, got {item!r} "
            "(parts are written `- part: \"Title\"` with `chapters:` under it)",
        )
    if not item.endswith(".qmd"):
        raise QuartoConfigError(
            file, f"chapter {item!r}: only .qmd chapters are supported"
        )
    return Chapter(path=PurePosixPath(item).as_posix(), part=part, appendix=appendix)


def load_quarto(root: Path | str, check_files: bool = True) -> QuartoBook:
    """Read ``ROOT/_quarto.yml``; raise :class:`QuartoConfigError` if unusable."""
    root = Path(root)
    file = root / QUARTO_FILE
    if not file.is_file():
        raise QuartoConfigError(file, "not found: the book needs a _quarto.yml")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise QuartoConfigError(file, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise QuartoConfigError(file, "must be a YAML mapping")
    project = data.get("project") or {}
    if project.get("type") != "book":
        raise QuartoConfigError(file, "project: type: must be `book`")
    book = data.get("book")
    if not isinstance(book, dict):
        raise QuartoConfigError(file, "a `book:` section is required")
    title = book.get("title")
    if not isinstance(title, str) or not title.strip():
        raise QuartoConfigError(file, "book: title: is required")
    authors = _as_str_list(book.get("author"), "book: author:", file)

    chapters: list[Chapter] = []
    entries = book.get("chapters")
    if not isinstance(entries, list) or not entries:
        raise QuartoConfigError(file, "book: chapters: must be a non-empty list")
    for entry in entries:
        if isinstance(entry, dict):
            if set(entry) != {"part", "chapters"}:
                raise QuartoConfigError(
                    file,
                    f"chapter entry {entry!r}: a part needs exactly the keys "
                    "`part` (its title) and `chapters`",
                )
            part = entry["part"]
            if not isinstance(part, str) or part.endswith(".qmd"):
                raise QuartoConfigError(
                    file,
                    f"part {part!r}: only a title is supported (not a part file)",
                )
            sub = entry["chapters"]
            if not isinstance(sub, list) or not sub:
                raise QuartoConfigError(file, f"part {part!r} has no chapters")
            chapters.extend(_chapter(c, file, part, False) for c in sub)
        else:
            chapters.append(_chapter(entry, file, None, False))
    appendices = book.get("appendices") or []
    if not isinstance(appendices, list):
        raise QuartoConfigError(file, "book: appendices: must be a list of files")
    chapters.extend(_chapter(c, file, None, True) for c in appendices)

    if chapters[0].path != INDEX_FILE:
        raise QuartoConfigError(
            file,
            f"the first chapter must be {INDEX_FILE} in the project root "
            f"(Quarto requires it there; got {chapters[0].path!r})",
        )
    seen: set[str] = set()
    stems: dict[str, str] = {}
    for c in chapters:
        if c.path in seen:
            raise QuartoConfigError(file, f"chapter {c.path!r} is listed twice")
        seen.add(c.path)
        stem = PurePosixPath(c.path).stem
        if stem in stems:  # the downloadable notebooks are named by stem
            raise QuartoConfigError(
                file,
                f"chapters {stems[stem]!r} and {c.path!r} have the same file "
                "name; give them different names",
            )
        stems[stem] = c.path
        if check_files and not (root / c.path).is_file():
            raise QuartoConfigError(
                file, f"chapter {c.path!r} is listed but {root / c.path} is missing"
            )

    bibliography = _as_str_list(data.get("bibliography"), "bibliography:", file)
    for bib in bibliography:
        if check_files and not (root / bib).is_file():
            raise QuartoConfigError(file, f"bibliography {bib!r} not found")

    output_file = _text(book.get("output-file"), "book: output-file:", file)
    if output_file and not re.fullmatch(r"[A-Za-z0-9][\w.-]*", output_file):
        raise QuartoConfigError(
            file, f"book: output-file: {output_file!r} must be a plain file name "
            "(letters, digits, '-', '_', '.'; no extension needed)"
        )
    output_file = output_file.removesuffix(".pdf") or slug(title)
    site_url = _text(book.get("site-url"), "book: site-url:", file)
    if site_url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", site_url):
        raise QuartoConfigError(
            file, f"book: site-url: {site_url!r} must be an http(s) address, "
            "e.g. https://example.org/book"
        )
    return QuartoBook(
        root=root,
        title=title.strip(),
        authors=authors,
        chapters=tuple(chapters),
        bibliography=bibliography,
        subtitle=_text(book.get("subtitle"), "book: subtitle:", file),
        output_file=output_file,
        version=_text(data.get("version"), "version:", file),
        date=_text(book.get("date"), "book: date:", file),
        license=_text(data.get("license"), "license:", file),
        footer=_text(book.get("page-footer"), "book: page-footer:", file),
        site_url=site_url.rstrip("/"),
    )


def toctree_markdown(book: QuartoBook, *, appendices: bool = True) -> str:
    """MyST source of the master toctrees (hidden: the sidebar shows them).

    One numbered toctree per part, captioned with the part's title; the
    appendices follow in their own unnumbered toctree in HTML. The LaTeX
    build leaves them out (``appendices=False``) and lists them in
    ``latex_appendices`` instead, so the PDF letters them A, B, ...
    """
    blocks = []
    for part, chapters in book.parts():
        lines = ["```{toctree}", ":hidden:", ":numbered:"]
        if part:
            lines.append(f":caption: {part}")
        lines.append("")
        lines.extend(c.docname for c in chapters)
        lines.append("```")
        blocks.append("\n".join(lines))
    if appendices and book.appendices():
        lines = ["```{toctree}", ":hidden:", ":caption: Appendices", ""]
        lines.extend(c.docname for c in book.appendices())
        lines.append("```")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def sphinx_settings(book: QuartoBook) -> dict[str, Any]:
    """Sphinx configuration values that come from ``_quarto.yml``."""
    title = book.title
    author = book.author or "Unknown"
    latex_name = f"{book.output_file or slug(title)}.tex"
    return {
        "project": title,
        "author": author,
        "copyright": author,
        "version": book.version,
        "release": book.version,
        "root_doc": book.index.docname,
        "include_patterns": [c.path for c in book.chapters],
        "bibtex_bibfiles": list(book.bibliography),
        "latex_documents": [
            (book.index.docname, latex_name, title, author, "manual", False)
        ],
        "latex_appendices": [c.docname for c in book.appendices()],
    }
