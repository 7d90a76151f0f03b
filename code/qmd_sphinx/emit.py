"""Emission: the blocks of a chapter -> the cells of an nbformat v4 notebook.

:class:`Translator` reads the front matter, has ``blocks.py`` split the body,
and walks the blocks: markdown goes into markdown cells (through the inline
pass of ``inline.py``), each chunk becomes a code cell whose ``#|``
options become tags and metadata, callouts, exercises and solutions become
MyST directives, a heading's ``{#sec-x}`` a ``(sec-x)=`` target. It records
what the chapter defines in its :class:`~qmd_sphinx.labels.Scan`, and the
``.qmd`` line where every cell starts (``metadata.source_map``).
"""

from __future__ import annotations

import re

import nbformat
import yaml

from .blocks import BlockParser, Chunk, Div, Heading, Math, Table, Text
from .errors import QmdSyntaxError
from .inline import InlineParser
from .labels import Label, Scan, label_problem

#: front-matter keys accepted; only ``title`` has an effect
FRONT_MATTER_KEYS = ("title", "jupyter", "description", "keywords")
CHUNK_OPTIONS = (
    "label", "fig-cap", "fig-alt", "tbl-cap", "echo", "output", "include",
    "eval", "code-fold", "warning", "tags",
)  # fmt: skip
#: the values Quarto's ``tags`` option (Jupyter cell tags) may carry here:
#: ``no-assignment`` leaves the cell out of the chapter's otter assignment
#: (``assign.py``); the book runs and shows it as any other cell
CELL_TAGS = ("no-assignment",)
#: option -> (the value that adds a tag, the tag); the other boolean is a no-op
TAG_OPTIONS = {
    "echo": (False, "remove-input"),
    "output": (False, "remove-output"),
    "include": (False, "remove-cell"),
    "eval": (False, "skip-execution"),
    "code-fold": (True, "hide-input"),
    "warning": (False, "remove-stderr"),
}
INLINE_IMPORT = "from qmd_sphinx.glue import show as _qmd_show"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
#: the tag of every cell of an exercise's solution (the student's notebook,
#: the student PDF and the assignments leave them out)
SOLUTION_TAG = "solution"


class Translator:
    def __init__(self, text: str, path: str):
        self.path = path
        self.cells: list = []
        self.md: list[str] = []
        self.md_meta: dict = {}
        self.md_start: int | None = None
        self.source_map: list[int] = []
        self.in_solution = False
        self.scan = Scan(path)
        self.inlines = InlineParser(path, self.scan)
        self._defined: dict[str, int] = {}
        self.text = text


    def err(self, line: int, message: str):
        raise QmdSyntaxError(self.path, line, message)

    def define(self, name: str, line: int) -> None:
        if name in self._defined:
            self.err(line, f"label {name!r} already defined at line "
                     f"{self._defined[name]}")
        self._defined[name] = line
        self.scan.defines.append(Label(name, name.split("-", 1)[0], line))

    def mark(self, line: int) -> None:
        """Remember the .qmd line where the markdown cell being built starts."""
        if self.md_start is None:
            self.md_start = line

    def add_cell(self, cell, line: int) -> None:
        self.cells.append(cell)
        self.source_map.append(max(line - 1, 0))

    def flush(self) -> None:
        text = "\n".join(self.md).strip("\n")
        start = self.md_start or 1
        if text.strip():
            tags = [SOLUTION_TAG] if self.in_solution else []
            if self.inlines.pending:
                source = "\n".join(
                    [INLINE_IMPORT]
                    + [
                        f'_qmd_show("{key}", ({expr}))'
                        for key, expr in self.inlines.pending
                    ]
                )
                meta = {"tags": ["remove-cell", *tags], "qmd": {"inline": True}}
                self.add_cell(nbformat.v4.new_code_cell(source, metadata=meta), start)
            meta = dict(self.md_meta)
            if tags:
                meta["tags"] = tags
            self.add_cell(nbformat.v4.new_markdown_cell(text, metadata=meta), start)
        self.md, self.md_meta, self.inlines.pending = [], {}, []
        self.md_start = None


    def run(self) -> nbformat.NotebookNode:
        all_lines = self.text.splitlines()
        lines = list(enumerate(all_lines, start=1))
        meta, body_start = self.front_matter(all_lines)
        items = BlockParser(lines[body_start:], self.path).parse()
        title = meta.get("title")
        h1 = [it for it in items if isinstance(it, Heading) and it.level == 1]
        self.scan.unnumbered = bool(h1) and h1[0].unnumbered
        if title is not None and h1 and h1[0].text != title:
            self.err(h1[0].line, f"front matter title {title!r} and level-1 heading "
                     f"{h1[0].text!r} differ: keep only one of them")
        if title is not None and not h1:
            line = self.title_line
            self.mark(line)
            self.md.append("# " + self.inlines.inline(title, [line], allow_expr=False))
            self.flush()
        self.blocks(items, "top")
        self.flush()
        for k, cell in enumerate(self.cells, start=1):
            cell["id"] = f"qmd-{k}"
        nb = nbformat.v4.new_notebook(
            cells=self.cells,
            metadata={
                "kernelspec": dict(KERNELSPEC),
                "language_info": {"name": "python"},
                "source_map": self.source_map,
            },
        )
        return nb

    def front_matter(self, lines: list[str]) -> tuple[dict, int]:
        self.title_line = 1
        if not lines or lines[0].rstrip() != "---":
            return {}, 0
        for end in range(1, len(lines)):
            if lines[end].rstrip() in ("---", "..."):
                break
        else:
            self.err(1, "front matter opened here is never closed with ---")
        block = "\n".join(lines[1:end])
        try:
            meta = yaml.safe_load(block) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = 2 + mark.line if mark is not None else 1
            self.err(line, f"front matter is not valid YAML: {exc}")
        if not isinstance(meta, dict):
            self.err(1, "front matter must be a YAML mapping")

        def key_line(key):
            for k in range(1, end):
                if re.match(rf"^{re.escape(str(key))}\s*:", lines[k]):
                    return k + 1
            return 1

        for key, value in meta.items():
            if key not in FRONT_MATTER_KEYS:
                self.err(key_line(key), f"front matter key {key!r} is not supported "
                         f"(only {', '.join(FRONT_MATTER_KEYS)})")
            if key == "jupyter" and value != "python3":
                self.err(key_line(key), "jupyter must be python3")
            if key == "title":
                if not isinstance(value, str) or not value.strip():
                    self.err(key_line(key), "title must be a non-empty string")
                self.title_line = key_line(key)
        return meta, end + 1

    def blocks(self, items: list, ctx: str) -> None:
        after_exercise: str | None = None
        for item in items:
            if isinstance(item, Text) and item.blank:
                self.md.extend(s for _, s in item.lines)
                continue
            if isinstance(item, Div) and item.kind == "otter":
                # an assignment's question (qmd_sphinx.assign): in no output
                if ctx != "top":
                    self.err(item.line, "an otter question must follow its "
                             "exercise's solution at the top level")
                continue
            if isinstance(item, Div) and item.kind == "solution":
                if ctx != "top":
                    self.err(item.line, "a solution must directly follow its exercise "
                             "or be the last block inside it")
                if after_exercise is None:
                    self.err(item.line, "solution with no exercise right before it")
                self.solution(item, after_exercise)
                after_exercise = None
                continue
            after_exercise = None
            if isinstance(item, Text):  # its first non-blank line
                self.mark(next(n for n, s in item.lines if s.strip()))
            else:
                self.mark(item.line)
            if isinstance(item, Chunk):
                self.flush()
                self.code_cell(item)
            elif isinstance(item, Heading):
                if ctx != "top":
                    self.err(item.line, f"headings inside {ctx} divs are not supported "
                             "(only a first-line title)")
                self.heading(item)
            elif isinstance(item, Div) and item.kind == "exercise":
                if ctx != "top":
                    self.err(item.line, f"an exercise inside a {ctx} is not supported")
                after_exercise = self.exercise(item)
            elif isinstance(item, Div) and item.kind == "refs":
                if ctx != "top":
                    self.err(item.line, "::: {#refs} must be at the top level")
                if any(not (isinstance(c, Text) and c.blank) for c in item.children):
                    self.err(item.line, "::: {#refs} must be empty")
                self.md.extend(["```{bibliography}", "```"])
            else:
                self.md.extend(self.md_lines(item, ctx))

    def md_lines(self, item, ctx: str) -> list[str]:
        """MyST lines of an item that stays inside a markdown cell."""
        if isinstance(item, Text):
            if item.verbatim:
                return [s for _, s in item.lines]
            return self.inlines.text_lines(item.lines)
        if isinstance(item, Math):
            self.define(item.label, item.label_line or item.line)
            return ["```{math}", f":label: {item.label}", "", *item.body, "```"]
        if isinstance(item, Table):
            # MyST's {table} directive: a numbered, captioned table node with
            # the label as its id, like a tbl- chunk's (numbering.py)
            self.define(item.label, item.caption_line)
            caption = self.inlines.inline(item.caption, [item.caption_line],
                                          allow_expr=False)
            return [f"```{{table}} {caption}", f":name: {item.label}", "",
                    *self.inlines.text_lines(item.rows), "```"]
        if isinstance(item, Chunk):
            self.err(item.line, f"a code chunk inside a {ctx} is not supported: "
                     "myst-nb would not execute it (move it out of the callout)")
        if isinstance(item, Heading):
            self.err(item.line, f"headings inside {ctx} divs are not supported "
                     "(only a first-line title)")
        if isinstance(item, Div) and item.kind == "callout":
            return self.callout(item)
        self.err(item.line, f"a {item.kind} div inside a {ctx} is not supported")


    def heading(self, h: Heading) -> None:
        self.flush()
        self.mark(h.line - 1 if h.label else h.line)
        if h.unnumbered:
            self.md_meta = {"qmd": {"unnumbered": True}}
        if h.label:
            self.define(h.label, h.line)
            self.md.append(f"({h.label})=")
        self.md.append("#" * h.level + " " + self.inlines.inline(h.text, [h.line],
                                                          allow_expr=False))

    @staticmethod
    def _split_title(div: Div) -> tuple[Heading | None, list]:
        children = list(div.children)
        k = 0
        while (
            k < len(children)
            and isinstance(children[k], Text)
            and children[k].blank
        ):
            k += 1
        if k < len(children) and isinstance(children[k], Heading):
            return children[k], children[k + 1 :]
        return None, children

    def callout(self, div: Div) -> list[str]:
        kind = div.attrs["kind"]
        head, children = self._split_title(div)
        title = div.attrs.get("title")
        if head is not None and title is not None:
            self.err(head.line, "callout has both title= and a heading title")
        if head is not None:
            if head.label or head.unnumbered:
                self.err(head.line, "a callout title takes no attributes")
            title = self.inlines.inline(head.text, [head.line])
        elif title is not None:
            title = self.inlines.inline(title, [div.line])
        inner: list[str] = []
        for child in children:
            inner.extend(self.md_lines(child, "callout"))
        while inner and not inner[0].strip():
            inner.pop(0)
        while inner and not inner[-1].strip():
            inner.pop()
        runs = [len(m[0]) for s in inner if (m := re.match(r"^\s*:+", s))]
        colons = ":" * max([3] + [r + 1 for r in runs])
        classes = []
        if title:
            opening = f"{colons}{{admonition}} {title}"
            classes.append(kind)
        else:
            opening = f"{colons}{{{kind}}}"
        collapse = div.attrs.get("collapse")
        if collapse == "true":
            classes.append("dropdown")
        elif collapse == "false":
            classes += ["dropdown", "toggle-shown"]
        options = [f":class: {' '.join(classes)}"] if classes else []
        return [opening, *options, *inner, colons]

    @staticmethod
    def _directive(name: str, argument: str, options: list[str]) -> list[str]:
        fence = "~~~" if "`" in argument else "```"
        head = f"{fence}{{{name}}}" + (f" {argument}" if argument else "")
        return [head, *options, fence]

    def exercise(self, div: Div) -> str | None:
        label = div.attrs["label"]
        self.flush()
        self.mark(div.line)
        self.define(label, div.line)
        head, children = self._split_title(div)
        title = ""
        if head is not None:
            if head.label or head.unnumbered:
                self.err(head.line, "an exercise title takes no attributes")
            title = self.inlines.inline(head.text, [head.line])
        solutions = [k for k, c in enumerate(children)
                     if isinstance(c, Div) and c.kind == "solution"]
        solution = None
        if solutions:
            k = solutions[0]
            rest = children[k + 1 :]
            if any(not (isinstance(c, Text) and c.blank) for c in rest):
                self.err(children[k].line, "a solution inside an exercise must be its "
                         "last block")
            solution, children = children[k], children[:k]
        self.md.extend(self._directive("exercise-start", title, [f":label: {label}"]))
        self.md.append("")
        self.blocks(children, "exercise")
        self.mark(solution.line if solution is not None else div.end)
        self.md.extend(["", "```{exercise-end}", "```"])
        self.flush()
        if solution is not None:
            self.solution(solution, label)
            return None
        return label

    def solution(self, div: Div, exercise: str) -> None:
        self.flush()
        self.mark(div.line)
        self.in_solution = True
        options = [f":label: sol-{exercise}", ":class: dropdown"]
        self.md.extend(self._directive("solution-start", exercise, options))
        self.md.append("")
        self.blocks(div.children, "solution")
        self.mark(div.end)
        self.md.extend(["", "```{solution-end}", "```"])
        self.flush()
        self.in_solution = False


    def code_cell(self, chunk: Chunk) -> None:
        body = list(chunk.lines)
        magic = None
        if body and body[0][1].startswith("%%"):
            magic = body.pop(0)
        options = []
        while body and body[0][1].startswith("#|"):
            options.append(body.pop(0))
        if magic is None and body and body[0][1].startswith("%%"):
            magic = body.pop(0)
        if magic is not None:
            if not re.match(r"^%%R(\s|$)", magic[1]):
                self.err(magic[0], f"cell magic {magic[1].split()[0]} is not supported "
                         "(only %%R)")
            body.insert(0, magic)
        opts = self.chunk_options(options, chunk.line)
        while body and not body[0][1].strip():
            body.pop(0)
        while body and not body[-1][1].strip():
            body.pop()
        if not body:
            self.err(chunk.line, "empty code chunk")
        source = "\n".join(s.rstrip() for _, s in body)
        first_line = body[0][0]
        metadata: dict = {}
        tags = [
            TAG_OPTIONS[key][1]
            for key, (value, _) in opts.items()
            if key in TAG_OPTIONS and value == TAG_OPTIONS[key][0]
        ]
        tags += opts.get("tags", ([], 0))[0]
        if tags:
            metadata["tags"] = tags
        metadata.update(self.chunk_label(opts, chunk.line))
        if self.in_solution:
            metadata["tags"] = [*metadata.get("tags", []), SOLUTION_TAG]
        # myst-nb reports a code cell's nodes one line below its source_map
        # entry (its own reader maps a cell to the fence line): the entry is
        # the line before the code, so warnings name the first line of code.
        self.add_cell(nbformat.v4.new_code_cell(source, metadata=metadata),
                      first_line - 1)

    def chunk_options(self, options: list[tuple[int, str]], line: int) -> dict:
        """``#|`` lines -> {key: (value, line)}; every key and value checked."""
        if not options:
            return {}
        key_lines: dict[str, int] = {}
        for n, s in options:
            m = re.match(r"^#\|\s?([^\s:]+)\s*:", s)
            if m:
                if m[1] in key_lines:
                    self.err(n, f"chunk option {m[1]!r} given twice")
                key_lines[m[1]] = n
            elif not s[2:].startswith((" ", "\t")) or not s[2:].strip():
                self.err(n, f"cannot parse chunk option line {s!r}")
        yaml_text = "\n".join(s[3:] if s.startswith("#| ") else s[2:]
                              for _, s in options)
        try:
            parsed = yaml.safe_load(yaml_text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            n = options[min(mark.line, len(options) - 1)][0] if mark else options[0][0]
            self.err(n, f"#| options are not valid YAML: {exc}")
        if not isinstance(parsed, dict):
            self.err(options[0][0], "#| options must be 'key: value' lines")
        result = {}
        for key, value in parsed.items():
            n = key_lines.get(str(key), options[0][0])
            if key not in CHUNK_OPTIONS:
                self.err(n, f"chunk option {key!r} is not supported (supported: "
                         f"{', '.join(CHUNK_OPTIONS)})")
            if key in TAG_OPTIONS and not isinstance(value, bool):
                self.err(n, f"chunk option {key}: {value!r} is not supported "
                         "(only true or false)")
            if key == "tags" and (
                not isinstance(value, list) or not value
                or any(v not in CELL_TAGS for v in value)
                or len(set(value)) < len(value)
            ):
                self.err(n, f"chunk option tags: {value!r} is not supported "
                         f"(a list of distinct tags from {', '.join(CELL_TAGS)}, "
                         "e.g. 'tags: [no-assignment]')")
            if key in ("label", "fig-cap", "fig-alt", "tbl-cap") and (
                not isinstance(value, str) or not value.strip()
            ):
                self.err(n, f"chunk option {key} must be a non-empty string "
                         f"(got {value!r})")
            result[key] = (value, n)
        return result

    def chunk_label(self, opts: dict, line: int) -> dict:
        label, n = opts.get("label", (None, line))
        fig = {k: opts[k] for k in ("fig-cap", "fig-alt") if k in opts}
        tbl = opts.get("tbl-cap")
        if label is None:
            if fig or tbl:
                key = "fig-cap" if fig else "tbl-cap"
                kind = key[:3]
                self.err((fig.get(key) or tbl)[1], f"{key} needs a "
                         f"'label: {kind}-name' option")
            return {}
        kind = label.split("-", 1)[0] if "-" in label else None
        if kind == "fig":
            self.check_label(label, n, "fig")
            for missing in ("fig-cap", "fig-alt"):
                if missing not in fig:
                    self.err(n, f"figure {label} needs both fig-cap and fig-alt "
                             f"({missing} is missing)")
            if tbl:
                self.err(tbl[1], f"tbl-cap on a figure chunk ({label})")
            self.define(label, n)
            cap_value, cap_line = fig["fig-cap"]
            caption = self.inlines.inline(cap_value, [cap_line], allow_expr=False)
            return {"mystnb": {"figure": {"name": label, "caption": caption},
                               "image": {"alt": fig["fig-alt"][0]}}}
        if fig:
            self.err(next(iter(fig.values()))[1],
                     f"fig-cap/fig-alt need a fig- label (got {label!r})")
        if kind == "tbl":
            self.check_label(label, n, "tbl")
            if tbl is None:
                self.err(n, f"table {label} needs a tbl-cap")
            self.define(label, n)
            caption = self.inlines.inline(tbl[0], [tbl[1]], allow_expr=False)
            return {"qmd": {"label": label, "tbl-cap": caption}}
        if tbl:
            self.err(tbl[1], f"tbl-cap needs a tbl- label (got {label!r})")
        self.check_label(label, n, "")
        if label in self._defined:
            self.err(n, f"label {label!r} already defined at line "
                     f"{self._defined[label]}")
        self._defined[label] = n
        return {"qmd": {"label": label}}

    def check_label(self, label: str, n: int, kind: str) -> None:
        problem = label_problem(label, kind)
        if problem:
            self.err(n, problem)



def parse(text: str, path: str = "<string>") -> tuple[dict, list]:
    """The front matter and the block tree of a chapter (no translation)."""
    translator = Translator(text, path)
    all_lines = text.splitlines()
    meta, body_start = translator.front_matter(all_lines)
    lines = list(enumerate(all_lines, start=1))
    return meta, BlockParser(lines[body_start:], path).parse()
