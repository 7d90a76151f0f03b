"""One numbering of the book, and cross-references printed as Quarto prints them.

Sphinx numbers figures, tables, exercises and equations per numbered toctree
and per top-level section number; with one toctree per part of the book, the
chapters of the second part share their counters with those of the first
(the first table of chapter 5 came out as "Table 5.4"), and the appendices,
outside any numbered toctree, got no numbers at all. This module replaces
that numbering after every read (``env-get-updated``), for every builder:

- chapters are numbered 1, 2, ... straight through the parts, appendices
  A, B, ...; the preface and a chapter whose title is ``{.unnumbered}`` get
  no number;
- figures, tables, exercises and equations are counted per chapter from 1 in
  document order: ``(3, 1)`` prints "3.1", ``("A", 2)`` prints "A.2";
- the sections of an appendix are numbered A.1, A.2, ... like a chapter's.

LaTeX numbers its captions and equations with its own counters (per chapter,
lettered after ``\\appendix``), which count the same things in the same
order; ``tests/test_fixture_book.py`` compares the numbers the site, the PDF
and the notebooks print.

The reader writes ``@fig-x`` as ``{qmd-ref}`fig-x``` and ``[-@fig-x]`` as
``{qmd-num}`fig-x```; :class:`QuartoReferences` turns them into links whose
text is what Quarto's book format prints: "Chapter 3", "Section 3.2",
"Appendix A", "Figure 4.1", "Table 4.2", "Equation 2.5", "Exercise 6.2", the
number alone for ``qmd-num``, and the title of an unnumbered section.

The targets (text and place of every label) are also written to
``<doctreedir>/qmd-references.json``, from which the downloadable notebooks
take the same text (``notebooks.py``).
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

from qmd_sphinx.labels import KIND_WORDS
from qmd_sphinx.transforms import _latex_escape

logger = logging.getLogger(__name__)

REFERENCES_FILE = "qmd-references.json"
#: the figure types of Sphinx's numbering, by label kind
FIGTYPES = {"fig": "figure", "tbl": "table", "exr": "exercise", "eq": "displaymath"}


class quarto_xref(nodes.Inline, nodes.TextElement):
    """``@label`` (``bare=False``) or ``[-@label]`` (``bare=True``), unresolved."""


def _xref_role(bare: bool):
    def role(name, rawtext, text, lineno, inliner, options=None, content=None):
        node = quarto_xref(rawtext, text, target=text.strip(), bare=bare)
        node.source, node.line = inliner.reporter.get_source_and_line(lineno)
        return [node], []

    return role


ref_role = _xref_role(bare=False)
num_role = _xref_role(bare=True)


@dataclass(frozen=True)
class Target:
    """Where a label points and what a reference to it prints."""

    label: str
    docname: str
    anchor: str  # the id to link to in that document
    word: str  # "Figure", "Chapter", ... ("" for an unnumbered section)
    number: str  # "4.1", "A", ... ("" when unnumbered)
    title: str  # the section's title (what an unnumbered target prints)

    def text(self, bare: bool = False) -> str:
        if not self.number:
            return self.title
        return self.number if bare else f"{self.word} {self.number}"


def appendix_letter(k: int) -> str:
    """1 -> "A", 2 -> "B", ..., 27 -> "AA"."""
    letters = string.ascii_uppercase
    out = ""
    while k > 0:
        k, r = divmod(k - 1, 26)
        out = letters[r] + out
    return out


def chapter_numbers(config, unnumbered: set[str]) -> dict[str, int | str]:
    """docname -> chapter number (1, 2, ...) or appendix letter ("A", ...)."""
    numbers: dict[str, int | str] = {}
    k = 0
    for docnames in config.qmd_parts:
        for docname in docnames:
            if docname not in unnumbered:
                k += 1
                numbers[docname] = k
    k = 0
    for docname in config.qmd_appendices:
        if docname not in unnumbered:
            k += 1
            numbers[docname] = appendix_letter(k)
    return numbers


def _figtype(env, node) -> str | None:
    """The enumerable type of ``node`` as Sphinx's own numbering decides it."""
    for domain in env.domains.sorted():
        figtype = domain.get_enumerable_node_type(node)
        if domain.name == "std" and not domain.get_numfig_title(node):
            continue  # uncaptioned: Sphinx does not number it either
        if figtype:
            return figtype
    return None


def _sections(doctree) -> list[tuple[nodes.section, tuple[int, ...]]]:
    """Every section with its position: () for the top one, (2,) for its
    second subsection, (2, 1) for that one's first, ..."""
    out = []

    def walk(node, path):
        k = 0
        for child in node.children:
            if isinstance(child, nodes.section):
                k += 1
                here = (*path, k)
                out.append((child, here))
                walk(child, here)
            elif isinstance(child, nodes.Element):
                walk(child, path)

    tops = [n for n in doctree.children if isinstance(n, nodes.section)]
    for top in tops[:1]:
        out.append((top, ()))
        walk(top, ())
    return out


def _anchor(section: nodes.section, top: bool) -> str:
    return "" if top else "#" + section["ids"][0]


def number_book(app, env) -> list[str]:
    """Number chapters, sections and every enumerable node (see module doc)."""
    from qmd_sphinx import transforms

    transforms.continue_chapter_numbers(app, env)
    unnumbered = set(getattr(env, "qmd_unnumbered", ()) or ())
    chapters = chapter_numbers(app.config, unnumbered)
    appendices = set(app.config.qmd_appendices)
    old = dict(getattr(env, "qmd_targets", {}) or {})
    order = [app.config.root_doc] + [d for p in app.config.qmd_parts for d in p]
    order += list(app.config.qmd_appendices)
    sections: dict[str, dict[str, tuple]] = {}  # docname -> {section id: number}
    for docname in order:
        if docname not in env.all_docs:
            continue
        doctree = env.get_doctree(docname)
        chapter = chapters.get(docname)
        numbers: dict[str, dict[str, tuple]] = {}
        counts: dict[str, int] = {}
        for node in doctree.findall(nodes.Element):
            if not node.get("ids"):
                continue
            figtype = _figtype(env, node)
            if figtype is None:
                continue
            counts[figtype] = counts.get(figtype, 0) + 1
            number = (counts[figtype],) if chapter is None else (chapter,
                                                                 counts[figtype])
            numbers.setdefault(figtype, {})[node["ids"][0]] = number
        env.toc_fignumbers[docname] = numbers
        secnums = dict(env.toc_secnumbers.get(docname) or {})
        ids: dict[str, tuple] = {}
        for section, path in _sections(doctree):
            key = _anchor(section, not path)
            if docname in appendices and chapter is not None:
                secnums[key] = (chapter, *path)
            number = secnums.get(key) if chapter is not None else None
            for node_id in section["ids"]:
                ids[node_id] = tuple(number) if number else ()
        if docname in appendices and chapter is not None:
            env.toc_secnumbers[docname] = secnums
            _number_toc(env, docname, secnums)
        sections[docname] = ids
    env.qmd_chapter_numbers = chapters
    env.qmd_targets = _targets(env, chapters, appendices, sections)
    if env.qmd_targets != old:  # a number moved: every page may refer to it
        return sorted(d for d in order if d in env.all_docs)
    return []


def _number_toc(env, docname: str, secnums: dict[str, tuple]) -> None:
    """The appendix's entries in the sidebar show their numbers (A, A.1)."""
    toc = env.tocs.get(docname)
    if toc is None:
        return
    for ref in toc.findall(nodes.reference):
        number = secnums.get(ref.get("anchorname", ""))
        if number:
            ref["secnumber"] = list(number)


def _targets(env, chapters, appendices, sections) -> dict[str, Target]:
    std = env.domains.standard_domain
    math = env.domains.math_domain
    targets: dict[str, Target] = {}
    for label, (docname, labelid, title) in std.labels.items():
        if not label.startswith("sec-") or docname not in sections:
            continue
        number = sections[docname].get(labelid, ())
        if not number:
            word = ""
        elif len(number) == 1:
            word = KIND_WORDS["appendix" if docname in appendices else "chapter"]
        else:
            word = KIND_WORDS["sec"]
        targets[label] = Target(label, docname, labelid, word,
                                ".".join(map(str, number)), title)
    for label, (docname, labelid) in std.anonlabels.items():
        kind = label.split("-", 1)[0]
        if kind not in ("fig", "tbl", "exr"):
            continue
        number = env.toc_fignumbers.get(docname, {}).get(FIGTYPES[kind], {}).get(
            labelid
        )
        if number:
            targets[label] = Target(label, docname, labelid, KIND_WORDS[kind],
                                    ".".join(map(str, number)), "")
    for label, (docname, _) in math.equations.items():
        anchor = nodes.make_id(f"equation-{label}")
        number = env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(
            anchor
        )
        if number:
            targets[label] = Target(label, docname, anchor, KIND_WORDS["eq"],
                                    ".".join(map(str, number)), "")
    return targets


def write_targets(app, exception) -> None:
    """``qmd-references.json`` next to the doctrees: what the notebooks print."""
    if exception is not None:
        return
    targets = getattr(app.env, "qmd_targets", None) or {}
    path = Path(app.doctreedir) / REFERENCES_FILE
    path.write_text(
        json.dumps({k: asdict(v) for k, v in sorted(targets.items())}, indent=1),
        encoding="utf-8",
    )


def load_targets(path: Path | str) -> dict[str, Target]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {label: Target(**fields) for label, fields in data.items()}


class QuartoReferences(SphinxPostTransform):
    """``{qmd-ref}`` / ``{qmd-num}`` -> a link printing Quarto's text."""

    default_priority = 5  # before Sphinx's own reference resolution

    def run(self, **kwargs) -> None:
        targets: dict[str, Target] = getattr(self.env, "qmd_targets", {}) or {}
        elsewhere = getattr(self.env, "qmd_labels", {}) or {}
        for node in list(self.document.findall(quarto_xref)):
            label, bare = node["target"], node["bare"]
            target = targets.get(label)
            if target is None:
                if label in elsewhere and self.config.qmd_chapters:
                    # a sub-book: the label is in a chapter left out
                    logger.info(f"{label}: defined in {elsewhere[label]}, "
                                "not in this sub-book")
                    node.replace_self(nodes.Text(label))
                else:
                    logger.warning(
                        f"@{label}: no number or title to print (is it "
                        "defined in a chapter of this book?)",
                        location=node, type="qmd", subtype="ref",
                    )
                    node.replace_self(nodes.Text(label))
                continue
            text = target.text(bare)
            inner = nodes.inline(text, text, classes=["xref", "qmd-ref"])
            if self.app.builder.format == "latex":
                # one LaTeX document: link to the target's label; an equation's
                # is "equation:<docname>:<label>", the others "<docname>:<id>"
                if label.startswith("eq-"):
                    ref = f"equation:{target.docname}:{label}"
                else:
                    ref = f"\\detokenize{{{target.docname}:{target.anchor}}}"
                node.replace_self(nodes.raw(
                    "", f"\\hyperref[{ref}]{{{_latex_escape(text)}}}", format="latex"
                ))
                continue
            refnode = make_refnode(self.app.builder, self.env.docname,
                                   target.docname, target.anchor, inner)
            node.replace_self(refnode)
