"""Doctree transforms and environment hooks of the Quarto bridge.

- :class:`QuartoTables`: a code cell with ``metadata.qmd.label = tbl-x`` and
  ``tbl-cap`` turns the first table of its output into a numbered, captioned
  table with id ``tbl-x``, so ``{numref}`tbl-x``` works in HTML and LaTeX.
- :class:`DropSolutions`: the student edition leaves the solutions' code
  cells off the page.
- :class:`RequireAltText`: a figure or image without alt text is a warning
  (an error under ``-W``) naming the file and line.
- :func:`continue_chapter_numbers`: Sphinx restarts numbering in every
  numbered toctree; Quarto numbers chapters straight through the parts
  (called by ``numbering.number_book``, which then numbers everything else).
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _located(node: nodes.Node) -> nodes.Node:
    """The node itself or its nearest ancestor that knows its source line."""
    current: nodes.Node | None = node
    while current is not None:
        if getattr(current, "line", None):
            return current
        current = current.parent
    return node


def _cell_index(node: nodes.Node) -> int | None:
    current: nodes.Node | None = node
    while current is not None:
        if isinstance(current, nodes.Element) and "cell_index" in current:
            return current["cell_index"]
        current = current.parent
    return None


class QuartoTables(SphinxTransform):
    """Caption and label the table produced by a ``tbl-`` labelled cell."""

    default_priority = 400

    def apply(self, **kwargs) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") != "cell_code":
                continue
            qmd = (cell.get("cell_metadata") or {}).get("qmd") or {}
            label = qmd.get("label") or ""
            if not label.startswith("tbl-"):
                continue
            caption = qmd.get("tbl-cap")
            tables = list(cell.findall(nodes.table))
            if not caption:
                logger.warning(
                    f"cell labelled {label!r} has no tbl-cap: add `#| tbl-cap:`",
                    location=_located(cell),
                    type="qmd",
                    subtype="table",
                )
                continue
            if not tables:
                logger.warning(
                    f"cell labelled {label!r} produced no table: display it "
                    "with multilevel.display.table(...)",
                    location=_located(cell),
                    type="qmd",
                    subtype="table",
                )
                continue
            table = tables[0]
            if not isinstance(table.children[0], nodes.title):
                table.insert(0, nodes.title(caption, caption))
            table["names"].append(label)
            self.document.note_explicit_target(table, table)


class DropSolutions(SphinxTransform):
    """The student edition (``qmd_solutions = False``): the code cells of the
    exercises' solutions are left off the page. The reader has already left
    out their text (``sphinx_reader.read_qmd``); the cells themselves stay in
    the notebook, so it executes as the book's does and hits its cache."""

    default_priority = 200

    def apply(self, **kwargs) -> None:
        if self.config.qmd_solutions:
            return
        for cell in list(self.document.findall(nodes.container)):
            if "tag_solution" in cell.get("classes", []):
                cell.parent.remove(cell)


class RequireAltText(SphinxTransform):
    """Every image must carry alt text (``#| fig-alt:`` in a chunk)."""

    default_priority = 800

    def apply(self, **kwargs) -> None:
        for image in self.document.findall(nodes.image):
            if str(image.get("alt", "")).strip():
                continue
            index = _cell_index(image)
            where = f" (output of code cell {index + 1})" if index is not None else ""
            logger.warning(
                f"figure without alt text{where}: give the chunk a "
                "`#| label: fig-...`, `#| fig-cap:` and `#| fig-alt:`",
                location=_located(image),
                type="qmd",
                subtype="alt",
            )


def continue_chapter_numbers(app, env) -> list[str]:
    """Shift section and figure numbers so chapters count on across parts."""
    from qmd_sphinx.sphinx_reader import STATE

    parts: list[list[str]] = STATE.get("parts") or []
    offset = 0
    changed: list[str] = []
    for docnames in parts:
        if offset:
            for docname in docnames:
                _shift(env, docname, offset)
                changed.append(docname)
        offset += len(docnames)
    return changed


def _shift(env, docname: str, offset: int) -> None:
    secnums = env.toc_secnumbers.get(docname)
    if secnums:
        env.toc_secnumbers[docname] = {
            anchor: (num[0] + offset, *num[1:]) if num else num
            for anchor, num in secnums.items()
        }
    seen: set[int] = set()
    toc = env.tocs.get(docname)
    if toc is not None:
        for ref in toc.findall(nodes.reference):
            number = ref.get("secnumber")
            if number and id(number) not in seen:
                seen.add(id(number))
                number[0] += offset
    title = env.titles.get(docname)
    if title is not None:
        number = title.get("secnumber")
        if number and id(number) not in seen:
            number[0] += offset


class ExerciseLatexLabels(SphinxPostTransform):
    """Give each numbered exercise the LaTeX label Sphinx's references use.

    In the PDF, sphinx-exercise labels an exercise ``exercise:exr-x`` while a
    ``{numref}`` (and the solution's title) point to ``docname:exr-x`` and
    print its number with ``\\ref``. This adds that label, carrying the
    number Sphinx assigned, just before the exercise.
    """

    default_priority = 25
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        from sphinx_exercise.nodes import exercise_enumerable_node

        for node in list(self.document.findall(exercise_enumerable_node)):
            docname = node.get("docname", "")
            label = node.get("label") or (node["ids"][0] if node["ids"] else "")
            if not docname or not label:
                continue
            fignumbers = self.env.toc_fignumbers.get(docname, {}).get("exercise", {})
            number = fignumbers.get(node["ids"][0] if node["ids"] else label)
            if not number:
                continue
            text = ".".join(map(str, number))
            raw = nodes.raw(
                "",
                "\\phantomsection"
                f"\\expandafter\\def\\csname @currentlabel\\endcsname{{{text}}}"
                f"\\label{{{docname}:{label}}}%\n",
                format="latex",
            )
            node.parent.insert(node.parent.index(node), raw)


class LatexPreface(SphinxPostTransform):
    """The preface and the parts of the book, as a PDF reader expects them.

    Sphinx's LaTeX writer drops the root document's title (it becomes the
    book's title page) and would make each subsection of the preface a
    chapter of its own. It also inlines the chapters where the toctrees
    stand, which is inside the preface's last subsection, so they would come
    out one level too low (sections 0.1, 0.2, ...), and toctree captions
    (the parts) are lost. This runs on the assembled book: it writes the
    preface as an unnumbered chapter (in the table of contents) with
    unnumbered sections, lifts the chapters to the top level, and puts a
    ``\\part`` before the first chapter of each titled part.
    """

    default_priority = 30
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        from sphinx import addnodes

        order = {id(n): k for k, n in enumerate(self.document.findall())}
        first_file = next(iter(self.document.findall(addnodes.start_of_file)), None)
        if first_file is None:
            return  # not the assembled book
        # the included chapters follow their start_of_file marker (siblings,
        # not children): the preface's own sections are those before it
        end = order[id(first_file)]
        root = next(iter(self.document.findall(nodes.section)), None)
        if root is None or not root.children or not isinstance(root[0], nodes.title):
            return
        # lift the inlined chapters out of the preface's last subsection
        # (the toctrees' wrappers, from the first one on, are the last
        # children of the section that holds them)
        start = first_file
        while not isinstance(start.parent, nodes.section):
            start = start.parent
        holder = start.parent
        if holder is not root:
            moved = holder.children[holder.index(start):]
            for node in moved:
                holder.remove(node)
            root.extend(moved)
        self._parts()
        title = _latex_escape(root[0].astext())
        root.insert(1, nodes.raw(
            "",
            f"\\chapter*{{{title}}}\\addcontentsline{{toc}}{{chapter}}{{{title}}}"
            f"\\markboth{{{title}}}{{{title}}}\n",
            format="latex",
        ))
        commands = ("section*", "subsection*", "subsubsection*", "paragraph")
        for section in list(root.findall(nodes.section)):
            if section is root or order[id(section)] > end:
                continue
            depth = _depth_below(section, root)
            if not section.children or not isinstance(section[0], nodes.title):
                continue
            command = commands[min(depth, len(commands)) - 1]
            text = _latex_escape(section[0].astext())
            # the title's labels go with it: references to the section link here
            root_doc = self.env.config.root_doc
            labels = "".join(
                f"\\phantomsection\\label{{\\detokenize{{{root_doc}:{node_id}}}}}"
                for node_id in section["ids"]
            )
            section[0] = nodes.raw(
                "", f"\\{command}{{{text}}}{labels}\n", format="latex"
            )


    def _parts(self) -> None:
        from sphinx import addnodes

        config = self.env.config
        firsts = {
            docnames[0]: title
            for docnames, title in zip(config.qmd_parts, config.qmd_part_titles)
            if docnames and title
        }
        for marker in list(self.document.findall(addnodes.start_of_file)):
            title = firsts.get(marker.get("docname"))
            if title:
                raw = nodes.raw(
                    "", f"\\part{{{_latex_escape(title)}}}\n", format="latex"
                )
                marker.parent.insert(marker.parent.index(marker), raw)


class LatexUnnumberedAppendices(SphinxPostTransform):
    """An appendix whose title is ``{.unnumbered}`` (the references) takes no
    letter in the PDF either: a ``\\chapter*``, listed in the contents."""

    default_priority = 31
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        unnumbered = set(getattr(self.env, "qmd_unnumbered", ()) or ())
        wanted = unnumbered & set(self.config.latex_appendices)
        for doc in list(self.document.findall(nodes.document)):
            docname = doc.get("docname")
            if doc is self.document or docname not in wanted:
                continue
            section = next((n for n in doc.children if isinstance(n, nodes.section)),
                           None)
            if section is None or not isinstance(section[0], nodes.title):
                continue
            title = _latex_escape(section[0].astext())
            labels = "".join(
                f"\\phantomsection\\label{{\\detokenize{{{docname}:{node_id}}}}}"
                for node_id in section["ids"]
            )
            section[0] = nodes.raw(
                "",
                f"\\chapter*{{{title}}}\\addcontentsline{{toc}}{{chapter}}{{{title}}}"
                f"\\markboth{{{title}}}{{{title}}}{labels}\n",
                format="latex",
            )


def _latex_escape(text: str) -> str:
    return "".join("\\" + c if c in "&%$#_{}" else c for c in text)


def _depth_below(node, ancestor) -> int:
    depth, parent = 0, node
    while parent is not None and parent is not ancestor:
        if isinstance(parent, nodes.section):
            depth += 1
        parent = parent.parent
    return depth
