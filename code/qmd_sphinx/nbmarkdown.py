"""The bridge's MyST -> the Markdown every notebook front end renders.

The notebooks the reader writes (``emit.py``) speak MyST, which only Sphinx
understands. The notebooks a reader or a student downloads must render in
Jupyter, JupyterLab, VS Code and Colab, which know CommonMark, GitHub tables,
``$...$``/``$$...$$`` math and a little HTML. :func:`jupyter_notebook`
rewrites every markdown cell of an exported notebook:

- ``{qmd-ref}`x``` / ``{qmd-num}`x``` -> ``[Figure 4.1](LINK)`` / ``[4.1](LINK)``:
  the text the site prints, from the build's numbering (``numbering.Target``),
  linked to the target on the site (:class:`SiteLinks`);
- ``{cite:p}`a,b``` -> "(Bates et al. 2015; Gelman and Hill 2007)",
  ``{cite:t}`a``` -> "Bates et al. (2015)"; a "References" cell at the end lists
  the full entries cited, formatted by pybtex's ``plain`` style (the site's);
- ```` ```{math} ```` with ``:label:`` -> ``$$ ... \\tag{2.5} $$`` after an
  ``<a id>`` anchor;
- ``(label)=`` before a heading -> an ``<a id="label"></a>`` in the heading;
- callouts (``:::{note}``, ``:::{admonition} Title``) -> block quotes whose first
  line is the title in bold ("Note" when untitled);
- ``exercise-start``/``-end`` -> a cell headed "### Exercise 6.2 (title)",
  followed, in the student's notebook (``answer_cells``), by an empty code
  cell tagged ``answer`` where the student writes the answer;
  ``solution-start``/``-end`` -> a cell headed "#### Solution";
- ```` ```{bibliography} ```` -> the list of every entry the book cites;
- figure and table captions (cell metadata, invisible in Jupyter) -> a
  markdown cell "**Figure 1.1** caption." after the figure, "**Table 1.1**
  caption." before the table.

Anything else in MyST syntax is an error; :func:`leftover_syntax` is the last
check of every exported notebook (the build refuses one that fails it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

#: what Quarto prints for a callout without a title
CALLOUT_TITLES = {"note": "Note", "tip": "Tip", "warning": "Warning",
                  "important": "Important", "caution": "Caution"}
XREF_ROLE = re.compile(r"\{qmd-(ref|num)\}`([^`]+)`")
CITE_ROLE = re.compile(r"\{cite:(p|t)\}`([^`]+)`")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\{[^}]*\})?\s*(.*)$")
COLON_FENCE = re.compile(r"^(:{3,})\{([a-z-]+)\}\s*(.*)$")
TARGET_LINE = re.compile(r"^\(([^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
#: where an exercise ends, in the translated markdown: its cell is split there
#: and, in the student's notebook, an answer cell put in between
EXERCISE_END = "\x00exercise-end\x00"
ANSWER_TAG = "answer"

#: MyST and Quarto syntax no notebook front end renders: (pattern, what it is)
LEFTOVERS = [
    (re.compile(r"\{[a-z][a-z0-9]*(?::[a-z0-9-]+)*\}`"), "a MyST role {name}`...`"),
    (re.compile(r"\{(?:numref|eq|ref|doc|cite[a-z:]*|glue[a-z:]*|qmd-[a-z]+)\}"),
     "a MyST role"),
    (re.compile(r"^\s*(?:`{3,}|~{3,})\s*\{", re.M), "a MyST/Quarto directive fence"),
    (re.compile(r"^\s*:{3,}", re.M), "a ::: div or colon fence"),
    (re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M), "a MyST target (label)="),
    (re.compile(r"`\{python\}"), "a Quarto inline expression"),
    (re.compile(r"(?<![\w.+])-?@(?:fig|eq|tbl|sec|exr)-"), "a Quarto @reference"),
    (re.compile(r"\{#(?:fig|eq|tbl|sec|exr)-"), "a Quarto {#label} attribute"),
    (re.compile(r"^\s*:(?:label|class|name):", re.M), "a directive option line"),
]


class NotebookMarkdownError(RuntimeError):
    """The bridge wrote MyST this module does not know how to translate."""


def leftover_syntax(nb) -> list[str]:
    """``cell k: <what>: <excerpt>`` for every MyST/Quarto construct left in
    the markdown cells of ``nb`` (empty when it renders everywhere)."""
    problems = []
    for k, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "markdown":
            continue
        for pattern, what in LEFTOVERS:
            for m in pattern.finditer(cell.source):
                line = cell.source[: m.start()].count("\n") + 1
                text = cell.source.splitlines()[line - 1].strip()
                problems.append(f"markdown cell {k}, line {line}: {what}: {text!r}")
    return problems


@dataclass(frozen=True)
class SiteLinks:
    """Where a reference in a notebook links to.

    With ``site_url`` (``book: site-url:`` in ``_quarto.yml``) the link is
    absolute: ``SITE/chapters/model.html#anchor``. Without it the link is
    relative to the notebook's place in the built site, ``depth`` folders
    below the site root (``downloads/notebooks/`` is 2, ``.../student/`` 3),
    so the links work in the notebooks the site serves.
    """

    site_url: str = ""
    depth: int = 2

    def href(self, docname: str, anchor: str) -> str:
        base = self.site_url.rstrip("/") + "/" if self.site_url else "../" * self.depth
        fragment = f"#{anchor.lstrip('#')}" if anchor else ""
        return f"{base}{docname}.html{fragment}"


class Bibliography:
    """The book's ``.bib`` entries: author-year citations and full entries."""

    def __init__(self, bibfiles: list[Path | str]):
        from pybtex.database import BibliographyData, parse_file

        self.data = BibliographyData()
        for path in bibfiles:
            for key, entry in parse_file(str(path)).entries.items():
                if key not in self.data.entries:
                    self.data.entries[key] = entry

    def _entry(self, key: str, where: str):
        entry = self.data.entries.get(key)
        if entry is None:
            raise NotebookMarkdownError(f"{where}: citation key {key!r} is in no "
                                        "bibliography file of the book")
        return entry

    def authors(self, key: str, where: str) -> str:
        """"Bates et al.", "Gelman and Hill", "McElreath" (Quarto's author-year)."""
        from pybtex.richtext import Text

        entry = self._entry(key, where)
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [Text.from_latex(" ".join(p.prelast_names + p.last_names))
                 .render_as("text") for p in persons]
        if not names:
            return Text.from_latex(entry.fields.get("title", key)).render_as("text")
        if len(names) == 1:
            return names[0]
        if len(names) == 2:
            return f"{names[0]} and {names[1]}"
        return f"{names[0]} et al."

    def year(self, key: str, where: str) -> str:
        return self._entry(key, where).fields.get("year", "n.d.")

    def entries_markdown(self, keys: list[str]) -> list[tuple[str, str]]:
        """(key, the entry in Markdown) for ``keys``, in the ``plain`` style's
        order (the site's bibliography style)."""
        from pybtex.plugin import find_plugin

        style = find_plugin("pybtex.style.formatting", "plain")()
        backend = find_plugin("pybtex.backends", "markdown")()
        formatted = style.format_bibliography(self.data, citations=keys)
        return [(e.key, " ".join(e.text.render(backend).split()))
                for e in formatted]


def cited_keys(source: str) -> list[str]:
    """The citation keys of the MyST ``source``, in order, once each."""
    keys: list[str] = []
    for m in CITE_ROLE.finditer(source):
        for key in m.group(2).split(","):
            if key.strip() and key.strip() not in keys:
                keys.append(key.strip())
    return keys


@dataclass
class Converter:
    """One notebook's translation (see the module's docstring)."""

    targets: dict  # label -> numbering.Target
    links: SiteLinks
    bibliography: Bibliography | None
    where: str
    #: every key the book cites (what a ``{bibliography}`` lists)
    book_cited: list[str] = field(default_factory=list)
    #: labels of chapters left out of a sub-book: printed as the label, plain
    #: text, as the site prints them
    left_out: frozenset[str] = frozenset()
    cited: list[str] = field(default_factory=list)

    # ---- inline

    def target(self, label: str):
        target = self.targets.get(label)
        if target is None:
            raise NotebookMarkdownError(
                f"{self.where}: the build numbered no target {label!r}"
            )
        return target

    def reference(self, label: str, bare: bool) -> str:
        if label in self.left_out and label not in self.targets:
            return label
        target = self.target(label)
        href = self.links.href(target.docname, target.anchor)
        return f"[{target.text(bare=bare)}]({href})"

    def citation(self, kind: str, keys: str) -> str:
        if self.bibliography is None:
            raise NotebookMarkdownError(f"{self.where}: a citation, but the book "
                                        "has no bibliography")
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.cited:
                self.cited.append(key)
            authors = self.bibliography.authors(key, self.where)
            year = self.bibliography.year(key, self.where)
            parts.append(f"{authors} ({year})" if kind == "t" else f"{authors} {year}")
        return "; ".join(parts) if kind == "t" else "(" + "; ".join(parts) + ")"

    def inline(self, text: str) -> str:
        text = XREF_ROLE.sub(lambda m: self.reference(m[2], m[1] == "num"), text)
        return CITE_ROLE.sub(lambda m: self.citation(m[1], m[2]), text)

    # ---- blocks

    def markdown(self, source: str) -> str:
        out: list[str] = []
        fence = ""  # the fence of the literal code block we are in
        for line in self.block_lines(source.split("\n")):
            if m := FENCE.match(line.strip()):
                if not fence:
                    fence = m[1]
                elif m[1][0] == fence[0] and len(m[1]) >= len(fence) and not m[3]:
                    fence = ""
            elif not fence and not line.strip() and out and not out[-1].strip():
                continue  # one blank line between blocks is enough
            out.append(line)
        return "\n".join(out).strip("\n")

    def block_lines(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        anchor: str | None = None
        k = 0
        while k < len(lines):
            line = lines[k]
            if m := TARGET_LINE.match(line):
                anchor = m[1]
                k += 1
                continue
            if anchor is not None:
                if h := HEADING.match(line):
                    out.append(f'{h[1]} <a id="{anchor}"></a>{self.inline(h[2])}')
                    anchor = None
                    k += 1
                    continue
                out += [f'<a id="{anchor}"></a>', ""]
                anchor = None
            if m := COLON_FENCE.match(line):
                end = self._closing(lines, k, lambda s, c=m[1]: s.strip() == c)
                out += self.callout(m[2], m[3], lines[k + 1 : end])
                k = end + 1
                continue
            if m := FENCE.match(line):
                fence, name, rest = m[1], m[2], m[3]
                end = self._closing(
                    lines, k, lambda s, f=fence: s.strip() == f[0] * len(s.strip())
                    and len(s.strip()) >= len(f)
                )
                body = lines[k + 1 : end]
                if name is None:  # a literal code block: as written
                    out += lines[k : end + 1]
                else:
                    out += self.directive(name[1:-1], rest, body)
                k = end + 1
                continue
            out.append(self.inline(line))
            k += 1
        if anchor is not None:
            out.append(f'<a id="{anchor}"></a>')
        return out

    def _closing(self, lines: list[str], start: int, closes) -> int:
        for j in range(start + 1, len(lines)):
            if closes(lines[j]):
                return j
        raise NotebookMarkdownError(
            f"{self.where}: {lines[start]!r} is never closed in its cell"
        )

    @staticmethod
    def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
        options = {}
        k = 0
        while k < len(body) and (m := re.match(r"^:([a-z-]+):\s*(.*)$", body[k])):
            options[m[1]] = m[2].strip()
            k += 1
        return options, body[k:]

    def callout(self, kind: str, title: str, body: list[str]) -> list[str]:
        options, body = self._options(body)
        if kind == "admonition":
            classes = options.get("class", "").split()
            kind = next((c for c in classes if c in CALLOUT_TITLES), "note")
        elif kind not in CALLOUT_TITLES:
            raise NotebookMarkdownError(f"{self.where}: no notebook form for the "
                                        f"MyST block {{{kind}}}")
        heading = self.inline(title) if title else CALLOUT_TITLES[kind]
        inner = self.block_lines(body)
        while inner and not inner[0].strip():
            inner.pop(0)
        quoted = [f"> {s}" if s.strip() else ">" for s in inner]
        return [f"> **{heading}**", ">", *quoted]

    def directive(self, name: str, argument: str, body: list[str]) -> list[str]:
        options, body = self._options(body)
        if name == "math":
            label = options.get("label")
            math = [s for s in body if s.strip()]
            if label is None:
                return ["$$", *math, "$$"]
            number = self.target(label).text(bare=True)
            return [f'<a id="{label}"></a>', "", "$$", *math, f"\\tag{{{number}}}",
                    "$$"]
        if name == "exercise-start":
            label = options["label"]
            heading = self.target(label).text()
            if argument:
                heading += f" ({self.inline(argument)})"
            return [f'### <a id="{label}"></a>{heading}']
        if name == "solution-start":
            return ["#### Solution"]
        if name == "exercise-end":
            return [EXERCISE_END]
        if name == "solution-end":
            return []
        if name == "bibliography":
            return self.references(self.book_cited, heading=False)
        if name == "table":  # a captioned pipe table: caption above, as Quarto
            label = options["name"]
            text = self.target(label).text()
            return [f'<a id="{label}"></a>**{text}** {self.inline(argument)}', "",
                    *(self.inline(s) for s in body if s.strip())]
        raise NotebookMarkdownError(f"{self.where}: no notebook form for the MyST "
                                    f"directive {{{name}}}")

    def references(self, keys: list[str], heading: bool = True) -> list[str]:
        if not keys:
            return []
        assert self.bibliography is not None  # a key was cited: checked then
        lines = ["## References", ""] if heading else []
        for key, text in self.bibliography.entries_markdown(keys):
            lines.append(f'- <a id="ref-{key}"></a>{text}')
        return lines

    # ---- code cells

    def caption(self, cell) -> tuple[str, str] | None:
        """("before" | "after", markdown) for a figure or table cell."""
        meta = cell.get("metadata", {})
        figure = meta.get("mystnb", {}).get("figure")
        if figure:
            text = self.target(figure["name"]).text()
            return "after", (f'<a id="{figure["name"]}"></a>**{text}** '
                             f"{self.inline(figure['caption'])}")
        qmd = meta.get("qmd", {})
        if "tbl-cap" in qmd:
            text = self.target(qmd["label"]).text()
            return "before", (f'<a id="{qmd["label"]}"></a>**{text}** '
                              f"{self.inline(qmd['tbl-cap'])}")
        return None


def _copy_cell(cell, source: str):
    copy = nbformat.from_dict(dict(cell))
    copy.metadata = nbformat.from_dict(dict(cell.metadata))
    copy.source = source
    return copy


def jupyter_notebook(nb, targets: dict, links: SiteLinks,
                     bibliography: Bibliography | None, where: str,
                     book_cited: list[str] | None = None,
                     left_out: frozenset[str] = frozenset(),
                     answer_cells: bool = False):
    """A copy of ``nb`` (markdown in MyST) whose markdown renders in Jupyter.

    ``answer_cells``: put an empty code cell tagged ``answer`` after each
    exercise (the student's notebook).

    Raises :class:`NotebookMarkdownError` on a construct with no Jupyter form
    and on any MyST/Quarto syntax left after the translation.
    """
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    conv = Converter(targets, links, bibliography, where, list(book_cited or []),
                     left_out=frozenset(left_out))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            *parts, last = conv.markdown(cell.source).split(EXERCISE_END)
            for part in parts:  # each ends an exercise
                if part.strip():
                    cells.append(_copy_cell(cell, part.strip("\n")))
                if answer_cells:
                    cells.append(nbformat.v4.new_code_cell(
                        "", metadata={"tags": [ANSWER_TAG]}))
            if last.strip():
                cells.append(_copy_cell(cell, last.strip("\n")))
            continue
        captioned = conv.caption(cell) if cell.cell_type == "code" else None
        if captioned is None:
            cells.append(cell)
            continue
        place, text = captioned
        tags = [t for t in cell.metadata.get("tags", []) if t == "solution"]
        note = nbformat.v4.new_markdown_cell(text, metadata={"tags": tags} if tags
                                             else {})
        cells += [note, cell] if place == "before" else [cell, note]
    if conv.cited:
        cells.append(nbformat.v4.new_markdown_cell("\n".join(conv.references(
            conv.cited)), metadata={"qmd": {"references": True}}))
    for k, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{k}"
    nb.cells = cells
    problems = leftover_syntax(nb)
    if problems:
        raise NotebookMarkdownError(
            f"{where}: syntax no notebook front end renders is left:\n  "
            + "\n  ".join(problems)
        )
    return nb
