"""Translate a Quarto chapter (``.qmd``) into a notebook whose markdown is MyST.

The supported subset is documented in ``README.md`` next to this file.  Every
construct outside it raises :class:`~qmd_sphinx.errors.QmdSyntaxError` naming
the file and the 1-based line of the ``.qmd``; nothing is passed through as
literal Quarto syntax.

Public API:

- :func:`qmd_to_notebook` (text, path) -> nbformat v4 notebook;
- :func:`scan` (text, path) -> :class:`Scan` of labels defined and used;
- :func:`check_references` over the scans of a whole book.

The notebook's metadata carries ``source_map`` (0-based ``.qmd`` line where
each cell starts), which myst-nb uses to report warnings at ``.qmd`` lines.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import nbformat
import yaml

from .errors import QmdSyntaxError
from .labels import (
    KEY_RE,
    UNSUPPORTED_XREF_KINDS,
    XREF_KINDS,
    Label,
    Scan,
    Use,
    check_references,
    doubled_word,
    label_problem,
)

__all__ = [
    "Label",
    "Scan",
    "Use",
    "check_references",
    "qmd_to_notebook",
    "scan",
]

CALLOUT_KINDS = ("note", "tip", "warning", "important", "caution")
#: front-matter keys accepted; only ``title`` has an effect
FRONT_MATTER_KEYS = ("title", "jupyter", "description", "keywords")
CHUNK_OPTIONS = (
    "label", "fig-cap", "fig-alt", "tbl-cap", "echo", "output", "include",
    "eval", "code-fold", "warning",
)  # fmt: skip
#: option -> (the value that adds a tag, the tag); the other boolean is a no-op
TAG_OPTIONS = {
    "echo": (False, "remove-input"),
    "output": (False, "remove-output"),
    "include": (False, "remove-cell"),
    "eval": (False, "skip-execution"),
    "code-fold": (True, "hide-input"),
    "warning": (False, "remove-stderr"),
}
INLINE_IMPORT = "from qmd_sphinx.inline import show as _qmd_show"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}

FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
DIV_OPEN_RE = re.compile(
    r"^:{3,}[ \t]*(?P<attrs>\{[^{}]*\}|[A-Za-z][\w-]*)[ \t]*(?::{3,})?[ \t]*$"
)
DIV_CLOSE_RE = re.compile(r"^:{3,}[ \t]*$")
HEADING_RE = re.compile(r"^(?P<hashes>#{1,6})(?:[ \t]+(?P<text>.*?))?[ \t]*$")
HEADING_ATTR_RE = re.compile(r"^(?P<text>.*?)[ \t]*\{(?P<attrs>[^{}]*)\}$")
ATTR_TOKEN_RE = re.compile(
    r"""\s*(?:(?P<id>\#[^\s}]+)|(?P<cls>\.[^\s}=]+)|(?P<bare>-)(?=\s|$)|"""
    r"""(?P<key>[A-Za-z][\w-]*)=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s"']+)))"""
)
EQ_LABEL_RE = re.compile(r"\{#(?P<label>[^\s{}]+)\}")
AUTOLINK_RE = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>]+)>"
)
URL_RE = re.compile(r"(?:https?|ftp)://[^\s<>]*|www\.[^\s<>]*")
ROLE_BEFORE_RE = re.compile(r"\{[A-Za-z][\w:+.-]*\}$")


# --------------------------------------------------------------------------
# block structure


@dataclass
class _Text:
    """Markdown lines; ``verbatim`` ones (literal code, comments, math) are
    copied unchanged and never searched for Quarto syntax."""

    lines: list[tuple[int, str]]
    verbatim: bool = False

    @property
    def blank(self) -> bool:
        return all(not s.strip() for _, s in self.lines)


@dataclass
class _Chunk:
    line: int
    lines: list[tuple[int, str]]


@dataclass
class _Math:
    line: int
    body: list[str]
    label: str
    label_line: int = 0  # the line holding {#eq-...}


@dataclass
class _Heading:
    line: int
    level: int
    text: str
    label: str | None
    unnumbered: bool


@dataclass
class _Div:
    line: int
    kind: str  # callout | exercise | solution | refs
    attrs: dict
    children: list = field(default_factory=list)
    end: int = 0  # line of the closing :::


def _parse_attrs(text: str, path: str, line: int) -> tuple[list, list, dict]:
    """Parse pandoc attributes ``{#id .class key="value"}`` (braces stripped)."""
    ids: list[str] = []
    classes: list[str] = []
    kv: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = ATTR_TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise QmdSyntaxError(path, line, f"cannot parse attributes {{{text}}}")
        if m["id"]:
            ids.append(m["id"][1:])
        elif m["cls"]:
            classes.append(m["cls"][1:])
        elif m["bare"]:
            classes.append("unnumbered")
        else:
            for group in ("dq", "sq", "uq"):
                if m[group] is not None:
                    kv[m["key"]] = m[group]
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return ids, classes, kv


class _BlockParser:
    """Split the body into code chunks, math, headings, divs and text."""

    def __init__(self, lines: list[tuple[int, str]], path: str):
        self.lines = lines
        self.path = path

    def err(self, line: int, message: str):
        raise QmdSyntaxError(self.path, line, message)

    def parse(self) -> list:
        root = _Div(0, "root", {})
        stack = [root]
        lines = self.lines
        i = 0
        while i < len(lines):
            n, line = lines[i]
            here = stack[-1].children
            stripped = line.strip()
            fence = FENCE_RE.match(line)
            if fence and not (fence["fence"][0] == "`" and "`" in fence["info"]):
                i = self._fence(fence, i, here)
                continue
            if re.match(r"^\s*(?:>\s*)+(?:`{3,}|~{3,})\s*\{", line):
                self.err(n, "code chunks inside block quotes are not supported")
            if re.match(r"^\s*(?:>\s*)+:{3,}", line):
                self.err(n, "::: divs inside block quotes are not supported")
            if re.match(r"^[ \t]+:{3,}", line):
                self.err(n, "indented ::: div (inside a list?) is not supported")
            if DIV_CLOSE_RE.match(line):
                if len(stack) == 1:
                    self.err(n, "::: closes no open div")
                stack.pop().end = n
                i += 1
                continue
            if line.startswith(":::"):
                m = DIV_OPEN_RE.match(line)
                if not m:
                    self.err(n, f"malformed ::: div fence: {stripped!r}")
                div = self._div(n, m["attrs"])
                here.append(div)
                stack.append(div)
                i += 1
                continue
            if stripped.startswith("$$"):
                i = self._display_math(i, here)
                continue
            if stripped.startswith("<!--"):
                i = self._comment(i, here)
                continue
            m = HEADING_RE.match(line)
            if m:
                here.append(self._heading(n, len(m["hashes"]), m["text"] or ""))
                i += 1
                continue
            self._text(here, n, line)
            i += 1
        if len(stack) > 1:
            div = stack[-1]
            self.err(div.line, "::: div opened here is never closed")
        return root.children

    @staticmethod
    def _text(here: list, n: int, line: str, verbatim: bool = False) -> None:
        if here and isinstance(here[-1], _Text) and here[-1].verbatim == verbatim:
            here[-1].lines.append((n, line))
        else:
            here.append(_Text([(n, line)], verbatim))

    def _fence(self, m: re.Match, i: int, here: list) -> int:
        n = self.lines[i][0]
        char, width = m["fence"][0], len(m["fence"])
        closing = re.compile(rf"^[ \t]*{re.escape(char)}{{{width},}}[ \t]*$")
        for j in range(i + 1, len(self.lines)):
            if closing.match(self.lines[j][1]):
                break
        else:
            self.err(n, "code fence opened here is never closed")
        info = m["info"].strip()
        body = self.lines[i + 1 : j]
        if info.startswith("{"):
            lang = re.match(r"\{\s*([^\s}]*)\s*(.*?)\s*\}?$", info)
            name, rest = lang[1], lang[2]
            if name.startswith("="):
                self.err(n, f"raw blocks {info} are not supported")
            if name == "python" and info.endswith("}") and not rest:
                if m["indent"]:
                    self.err(n, "an executable chunk must not be indented "
                             "(chunks inside lists are not supported)")
                here.append(_Chunk(n, body))
                return j + 1
            if name == "python":
                self.err(n, f"chunk header {info} is not supported: write "
                         "```{python} and give options as #| lines")
            if name.lower() == "r":
                self.err(n, "```{r} chunks are not supported: use a %%R cell in a "
                         "python chunk (first line %%R)")
            self.err(n, f"```{info} chunks are not supported (only ```{{python}}); "
                     "MyST directives are not Quarto syntax either")
        for k in range(i, j + 1):
            self._text(here, *self.lines[k], verbatim=True)
        return j + 1

    def _display_math(self, i: int, here: list) -> int:
        n, line = self.lines[i]
        lead = line[: len(line) - len(line.lstrip())]
        rest = line.strip()[2:]
        if "$$" in rest:
            end = rest.index("$$")
            body, trailing, j = [rest[:end].strip()], rest[end + 2 :], i
        else:
            body = [rest]
            for j in range(i + 1, len(self.lines)):
                text = self.lines[j][1]
                if "$$" in text:
                    end = text.index("$$")
                    body.append(text[:end])
                    trailing = text[end + 2 :]
                    break
                if not text.strip():
                    self.err(self.lines[j][0], "blank line inside $$ display math "
                             f"opened at line {n}")
                body.append(text)
            else:
                self.err(n, "$$ display math opened here is never closed")
        trailing = trailing.strip()
        body = [b.rstrip() for b in body]
        while body and not body[0].strip():
            body.pop(0)
        while body and not body[-1].strip():
            body.pop()
        if not body:
            self.err(n, "empty $$ display math")
        if not trailing:
            for k in range(i, j + 1):
                self._text(here, *self.lines[k], verbatim=True)
            return j + 1
        lab = EQ_LABEL_RE.fullmatch(trailing)
        if not lab:
            self.err(self.lines[j][0], f"text after closing $$ ({trailing!r}) is not "
                     "supported: only an equation label {#eq-name}")
        label = lab["label"]
        self._check_label(self.lines[j][0], label, "eq")
        if lead:
            self.err(n, "labelled display math must start at the beginning of a line")
        here.append(_Math(n, body, label, self.lines[j][0]))
        return j + 1

    def _comment(self, i: int, here: list) -> int:
        n, line = self.lines[i]
        start = line.index("<!--") + 4
        for j in range(i, len(self.lines)):
            text = self.lines[j][1]
            if "-->" in (text[start:] if j == i else text):
                break
        else:
            self.err(n, "HTML comment opened here is never closed")
        after = self.lines[j][1].split("-->", 1)[1] if j > i else ""
        if after.strip():
            self.err(self.lines[j][0], "text after a multi-line HTML comment "
                     "on the same line is not supported")
        if j == i:  # one-line comment: leave it to the inline pass
            self._text(here, n, line)
            return i + 1
        for k in range(i, j + 1):
            self._text(here, *self.lines[k], verbatim=True)
        return j + 1

    def _check_label(self, n: int, label: str, kind: str) -> None:
        problem = label_problem(label, kind)
        if problem:
            self.err(n, problem)

    def _heading(self, n: int, level: int, text: str) -> _Heading:
        text = re.sub(r"[ \t]+#+$", "", text)  # optional closing hashes
        label, unnumbered = None, False
        m = HEADING_ATTR_RE.match(text)
        if m:
            text = m["text"]
            ids, classes, kv = _parse_attrs(m["attrs"], self.path, n)
            if kv or len(ids) > 1 or any(c != "unnumbered" for c in classes):
                self.err(n, f"heading attributes {{{m['attrs']}}} are not supported: "
                         "only {#sec-name}, .unnumbered and -")
            if ids:
                label = ids[0]
                self._check_label(n, label, "sec")
            unnumbered = bool(classes)
        if not text.strip():
            self.err(n, "empty heading")
        return _Heading(n, level, text.strip(), label, unnumbered)

    def _div(self, n: int, spec: str) -> _Div:
        if spec.startswith("{"):
            ids, classes, kv = _parse_attrs(spec[1:-1], self.path, n)
        else:
            ids, classes, kv = [], [spec], {}
        callouts = [c for c in classes if c.startswith("callout-")]
        if callouts:
            kind = callouts[0][len("callout-") :]
            if kind not in CALLOUT_KINDS or len(classes) > 1:
                self.err(n, f"unsupported callout {spec}: use one of "
                         + ", ".join(f".callout-{k}" for k in CALLOUT_KINDS))
            if ids:
                self.err(n, "callout ids (cross-referenceable callouts) are not "
                         "supported")
            unknown = set(kv) - {"title", "collapse"}
            if unknown:
                self.err(n, f"callout attribute(s) {', '.join(sorted(unknown))} not "
                         "supported: only title and collapse")
            if kv.get("collapse", "true") not in ("true", "false"):
                self.err(n, f"collapse must be \"true\" or \"false\", got "
                         f"{kv['collapse']!r}")
            return _Div(n, "callout", {"kind": kind, **kv})
        if ids == ["refs"] and not classes and not kv:
            return _Div(n, "refs", {})
        if len(ids) == 1 and ids[0].startswith("exr-"):
            if classes or kv:
                self.err(n, f"exercise div {spec}: only {{#exr-name}} is supported")
            self._check_label(n, ids[0], "exr")
            return _Div(n, "exercise", {"label": ids[0]})
        if classes == ["solution"] and not ids and not kv:
            return _Div(n, "solution", {})
        if "panel-tabset" in classes:
            self.err(n, "tabsets (.panel-tabset) are not supported")
        self.err(n, f"unsupported ::: div {spec}: only callouts, {{#exr-...}}, "
                 "{.solution} and {#refs}")


# --------------------------------------------------------------------------
# translation


class _Translator:
    def __init__(self, text: str, path: str):
        self.path = path
        self.cells: list = []
        self.md: list[str] = []
        self.md_meta: dict = {}
        self.md_start: int | None = None
        self.source_map: list[int] = []
        self.pending: list[tuple[str, str]] = []
        self.n_inline = 0
        self.in_solution = False
        self.scan = Scan(path)
        self._defined: dict[str, int] = {}
        self.text = text

    # -- helpers
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
            tags = ["solution"] if self.in_solution else []
            if self.pending:
                source = "\n".join(
                    [INLINE_IMPORT]
                    + [f'_qmd_show("{key}", ({expr}))' for key, expr in self.pending]
                )
                meta = {"tags": ["remove-cell", *tags], "qmd": {"inline": True}}
                self.add_cell(nbformat.v4.new_code_cell(source, metadata=meta), start)
            meta = dict(self.md_meta)
            if tags:
                meta["tags"] = tags
            self.add_cell(nbformat.v4.new_markdown_cell(text, metadata=meta), start)
        self.md, self.md_meta, self.pending = [], {}, []
        self.md_start = None

    # -- document
    def run(self) -> nbformat.NotebookNode:
        all_lines = self.text.splitlines()
        lines = list(enumerate(all_lines, start=1))
        meta, body_start = self.front_matter(all_lines)
        items = _BlockParser(lines[body_start:], self.path).parse()
        title = meta.get("title")
        h1 = [it for it in items if isinstance(it, _Heading) and it.level == 1]
        self.scan.unnumbered = bool(h1) and h1[0].unnumbered
        if title is not None and h1 and h1[0].text != title:
            self.err(h1[0].line, f"front matter title {title!r} and level-1 heading "
                     f"{h1[0].text!r} differ: keep only one of them")
        if title is not None and not h1:
            line = self.title_line
            self.mark(line)
            self.md.append("# " + self.inline(title, [line], allow_expr=False))
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
            if isinstance(item, _Text) and item.blank:
                self.md.extend(s for _, s in item.lines)
                continue
            if isinstance(item, _Div) and item.kind == "solution":
                if ctx != "top":
                    self.err(item.line, "a solution must directly follow its exercise "
                             "or be the last block inside it")
                if after_exercise is None:
                    self.err(item.line, "solution with no exercise right before it")
                self.solution(item, after_exercise)
                after_exercise = None
                continue
            after_exercise = None
            if isinstance(item, _Text):  # its first non-blank line
                self.mark(next(n for n, s in item.lines if s.strip()))
            else:
                self.mark(item.line)
            if isinstance(item, _Chunk):
                self.flush()
                self.code_cell(item)
            elif isinstance(item, _Heading):
                if ctx != "top":
                    self.err(item.line, f"headings inside {ctx} divs are not supported "
                             "(only a first-line title)")
                self.heading(item)
            elif isinstance(item, _Div) and item.kind == "exercise":
                if ctx != "top":
                    self.err(item.line, f"an exercise inside a {ctx} is not supported")
                after_exercise = self.exercise(item)
            elif isinstance(item, _Div) and item.kind == "refs":
                if ctx != "top":
                    self.err(item.line, "::: {#refs} must be at the top level")
                if any(not (isinstance(c, _Text) and c.blank) for c in item.children):
                    self.err(item.line, "::: {#refs} must be empty")
                self.md.extend(["```{bibliography}", "```"])
            else:
                self.md.extend(self.md_lines(item, ctx))

    def md_lines(self, item, ctx: str) -> list[str]:
        """MyST lines of an item that stays inside a markdown cell."""
        if isinstance(item, _Text):
            if item.verbatim:
                return [s for _, s in item.lines]
            return self.text_lines(item.lines)
        if isinstance(item, _Math):
            self.define(item.label, item.label_line or item.line)
            return ["```{math}", f":label: {item.label}", "", *item.body, "```"]
        if isinstance(item, _Chunk):
            self.err(item.line, f"a code chunk inside a {ctx} is not supported: "
                     "myst-nb would not execute it (move it out of the callout)")
        if isinstance(item, _Heading):
            self.err(item.line, f"headings inside {ctx} divs are not supported "
                     "(only a first-line title)")
        if isinstance(item, _Div) and item.kind == "callout":
            return self.callout(item)
        self.err(item.line, f"a {item.kind} div inside a {ctx} is not supported")

    # -- constructs
    def heading(self, h: _Heading) -> None:
        self.flush()
        self.mark(h.line - 1 if h.label else h.line)
        if h.unnumbered:
            self.md_meta = {"qmd": {"unnumbered": True}}
        if h.label:
            self.define(h.label, h.line)
            self.md.append(f"({h.label})=")
        self.md.append("#" * h.level + " " + self.inline(h.text, [h.line],
                                                          allow_expr=False))

    @staticmethod
    def _split_title(div: _Div) -> tuple[_Heading | None, list]:
        children = list(div.children)
        k = 0
        while (
            k < len(children)
            and isinstance(children[k], _Text)
            and children[k].blank
        ):
            k += 1
        if k < len(children) and isinstance(children[k], _Heading):
            return children[k], children[k + 1 :]
        return None, children

    def callout(self, div: _Div) -> list[str]:
        kind = div.attrs["kind"]
        head, children = self._split_title(div)
        title = div.attrs.get("title")
        if head is not None and title is not None:
            self.err(head.line, "callout has both title= and a heading title")
        if head is not None:
            if head.label or head.unnumbered:
                self.err(head.line, "a callout title takes no attributes")
            title = self.inline(head.text, [head.line])
        elif title is not None:
            title = self.inline(title, [div.line])
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

    def exercise(self, div: _Div) -> str | None:
        label = div.attrs["label"]
        self.flush()
        self.mark(div.line)
        self.define(label, div.line)
        head, children = self._split_title(div)
        title = ""
        if head is not None:
            if head.label or head.unnumbered:
                self.err(head.line, "an exercise title takes no attributes")
            title = self.inline(head.text, [head.line])
        solutions = [k for k, c in enumerate(children)
                     if isinstance(c, _Div) and c.kind == "solution"]
        solution = None
        if solutions:
            k = solutions[0]
            rest = children[k + 1 :]
            if any(not (isinstance(c, _Text) and c.blank) for c in rest):
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

    def solution(self, div: _Div, exercise: str) -> None:
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

    # -- code chunks
    def code_cell(self, chunk: _Chunk) -> None:
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
        if tags:
            metadata["tags"] = tags
        metadata.update(self.chunk_label(opts, chunk.line))
        if self.in_solution:
            metadata["tags"] = [*metadata.get("tags", []), "solution"]
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
            caption = self.inline(cap_value, [cap_line], allow_expr=False)
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
            caption = self.inline(tbl[0], [tbl[1]], allow_expr=False)
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

    # -- markdown text
    def text_lines(self, lines: list[tuple[int, str]]) -> list[str]:
        """Translate markdown lines paragraph by paragraph."""
        out: list[str] = []
        para: list[tuple[int, str]] = []

        def emit():
            if para:
                text = self.inline("\n".join(s for _, s in para), [n for n, _ in para])
                out.extend(text.split("\n"))
                para.clear()

        for n, s in lines:
            if not s.strip():
                emit()
                out.append(s)
                continue
            para.append((n, self.line_start(n, s)))
        emit()
        return out

    def line_start(self, n: int, s: str) -> str:
        """Checks and escapes that depend on the start of a line."""
        if re.match(r"^\s*\([^()\s]+\)=\s*$", s):
            self.err(n, "MyST target syntax (label)= is not Quarto: put {#sec-name} "
                     "after the heading")
        if re.match(r"^\s*:\s", s):
            self.err(n, "definition lists and ': caption' lines are not supported")
        if re.match(r"^\s*\+[-=]+\+", s):
            self.err(n, "grid tables are not supported (use a pipe table or a "
                     "python chunk with tbl-cap)")
        if re.match(r"^\s*\+\+\+", s):  # MyST block break
            s = s.replace("+++", "\\+++", 1)
        if re.match(r"^\s*%", s):  # MyST comment line
            s = s.replace("%", "\\%", 1)
        return s

    def inline(self, s: str, line_numbers: list[int], allow_expr: bool = True) -> str:
        """Translate the inline syntax of one paragraph (lines joined by \\n)."""
        starts = [0]
        for k, ch in enumerate(s):
            if ch == "\n":
                starts.append(k + 1)

        def line_at(pos: int) -> int:
            idx = bisect.bisect_right(starts, pos) - 1
            return line_numbers[min(idx, len(line_numbers) - 1)]

        out: list[str] = []
        i, n = 0, len(s)
        outer_group, self._group_end = getattr(self, "_group_end", None), None
        while i < n:
            c = s[i]
            if c == "\\" and i + 1 < n:
                if s[i + 1].isalpha():
                    self.err(line_at(i), "raw TeX commands outside math are not "
                             f"supported ({s[i:i + 12].split()[0]!r})")
                out.append(s[i : i + 2])
                i += 2
            elif c == "`":
                i = self._code_span(s, i, out, line_at, allow_expr)
            elif c == "$":
                i = self._math(s, i, out)
            elif s.startswith("<!--", i):
                end = s.find("-->", i + 4)
                if end < 0:
                    self.err(line_at(i), "HTML comment is never closed")
                out.append(s[i : end + 3])
                i = end + 3
            elif c == "<" and (m := AUTOLINK_RE.match(s, i)):
                out.append(m[0])
                i = m.end()
            elif c == "]" and i == self._group_end:  # end of [Equations -@eq-a ...]
                self._group_end = None
                i += 1
            elif s.startswith("](", i):
                i = self._link_destination(s, i, out, line_at)
            elif c == "]" and s.startswith("{", i + 1):
                self.err(line_at(i), "bracketed spans and attributes [text]{...} are "
                         "not supported")
            elif (m := URL_RE.match(s, i)) and (i == 0 or not s[i - 1].isalnum()):
                out.append(m[0])
                i = m.end()
            elif c == "[" and not s.startswith("[^", i):
                i = self._bracket(s, i, out, line_at)
            elif c == "@":
                i = self._at(s, i, out, line_at)
            elif c == "^" and s.startswith("[", i + 1):
                self.err(line_at(i), "inline footnotes ^[...] are not supported "
                         "(use [^name] and a [^name]: definition)")
            elif c == "^" and re.match(r"\^[^\s^]+\^", s[i:]):
                self.err(line_at(i), "superscript ^text^ is not supported "
                         "(use math $x^2$)")
            elif c == "~" and re.match(r"~~[^~\n]+~~|~[^\s~]+~", s[i:]):
                self.err(line_at(i), "subscript ~text~ and strikeout ~~text~~ are "
                         "not supported")
            elif c == "{" and s.startswith("{{<", i):
                self.err(line_at(i), "shortcodes {{< ... >}} are not supported")
            elif c == "{" and s[i + 1 : i + 2] in ("#", ".", "="):
                self.err(line_at(i), "pandoc attributes {...} are not supported here")
            elif c == "!" and s.startswith("![", i):
                self.err(line_at(i), "markdown images are not supported: make figures "
                         "in a python chunk with label, fig-cap and fig-alt")
            else:
                out.append(c)
                i += 1
        self._group_end = outer_group
        return "".join(out)
    def _code_span(self, s, i, out, line_at, allow_expr) -> int:
        k = len(re.match(r"`+", s[i:])[0])
        close = re.compile(rf"(?<!`)`{{{k}}}(?!`)")
        m = close.search(s, i + k)
        if not m:
            out.append(s[i : i + k])
            return i + k
        if ROLE_BEFORE_RE.search(s[:i]):
            self.err(line_at(i), "MyST role syntax {role}`...` is not Quarto: use "
                     "@label, [@key] or an inline expression")
        end = m.end()
        if s.startswith("{", end):
            self.err(line_at(end), "attributes or raw inline after code "
                     "(`...`{...}) are not supported")
        content = s[i + k : m.start()].replace("\n", " ").strip()
        expr = re.match(r"^\{(\w*)\}(.*)$", content, re.S)
        if not expr:
            out.append(s[i:end])
            return end
        lang, code = expr[1], expr[2].strip()
        if lang != "python":
            self.err(line_at(i), f"inline `{{{lang}}} ...` expressions are not "
                     "supported (only `{python} expr`)")
        if not code:
            self.err(line_at(i), "empty inline `{python}` expression")
        if not allow_expr:
            self.err(line_at(i), "inline expressions are not supported in headings, "
                     "titles or captions")
        try:
            compile(code, f"{self.path}:{line_at(i)}", "eval")
        except SyntaxError as exc:
            self.err(line_at(i), f"inline expression {code!r} is not a valid Python "
                     f"expression: {exc.msg}")
        self.n_inline += 1
        key = f"qmd-inline-{self.n_inline}"
        self.pending.append((key, code))
        out.append(f"{{glue:md}}`{key}:myst`")
        return end

    @staticmethod
    def _math(s, i, out) -> int:
        """Copy pandoc math ($...$, $$...$$) verbatim; escape a literal $."""
        if s.startswith("$$", i):
            end = s.find("$$", i + 2)
            if end > i + 2:
                out.append(s[i : end + 2])
                return end + 2
            out.append("\\$\\$")
            return i + 2
        if i + 1 < len(s) and not s[i + 1].isspace():
            j = i + 1
            while j < len(s):
                if s[j] == "\\":
                    j += 2
                    continue
                if s[j] == "$":
                    if not s[j - 1].isspace() and not s[j + 1 : j + 2].isdigit():
                        out.append(s[i : j + 1])
                        return j + 1
                    break
                j += 1
        out.append("\\$")
        return i + 1

    def _link_destination(self, s, i, out, line_at) -> int:
        depth, j = 0, i + 1
        while j < len(s):
            if s[j] == "\\":
                j += 2
                continue
            if s[j] == "(":
                depth += 1
            elif s[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(s[i : j + 1])
        if s.startswith("{", j + 1):
            self.err(line_at(j), "link attributes [text](url){...} are not supported")
        return j + 1

    def _bracket(self, s, i, out, line_at) -> int:
        j = i + 1
        while j < len(s) and s[j] not in "[]":
            j += 1
        if j >= len(s) or s[j] != "]" or s[j + 1 : j + 2] in ("(", "[", "{"):
            out.append("[")
            return i + 1
        content = s[i + 1 : j]
        if not re.search(r"(?<![\w.+])-?@\w", content):
            out.append("[")
            return i + 1
        refs = [m for m in re.finditer(rf"(?<![\w.+])-?@({KEY_RE.pattern})", content)
                if self._ref_kind(m[1], line_at(i + 1 + m.start())) != "cite"]
        if refs:
            return self._reference_group(s, i, j, refs, line_at)
        keys = []
        for part in content.split(";"):
            m = re.fullmatch(r"\s*@(" + KEY_RE.pattern + r")\s*", part)
            if not m:
                self.err(line_at(i), f"citation [{content}] is not supported: only "
                         "[@key] or [@a; @b] (no prefix, suffix, locator or -@)")
            keys.append(m[1])
        for key in keys:
            self.scan.uses.append(Use(key, "cite", line_at(i)))
        out.append("{cite:p}`" + ",".join(keys) + "`")
        return j + 1

    def _reference_group(self, s, i, j, refs, line_at) -> int:
        """``[Equations -@eq-a and -@eq-b]``: Quarto prints the text as written,
        each ``-@x`` as the number alone and each ``@x`` in full. The brackets
        are dropped and the inline pass goes on inside them."""
        content = s[i + 1 : j]
        rest = re.sub(rf"(?<![\w.+])-?@({KEY_RE.pattern})", "", content)
        if not any(m[0].startswith("-") for m in refs) and not re.sub(r"[\s;,]", "",
                                                                      rest):
            key = refs[0][1]
            self.err(line_at(i), f"cross-reference @{key} inside brackets is not "
                     f"supported: write @{key} without brackets, or "
                     f"[Word -@{key}] for your own word and the number alone")
        if re.search(r"(?<![\w.+])-?@\w", rest) or len(re.findall(
                rf"(?<![\w.+])-?@({KEY_RE.pattern})", content)) != len(refs):
            self.err(line_at(i), f"[{content}] mixes citations and cross-references: "
                     "write them in separate brackets")
        self._group_end = j
        return i + 1

    def _ref_kind(self, key: str, line: int) -> str:
        m = re.match(r"([A-Za-z]+)-", key)
        prefix = m[1] if m else None
        if prefix in XREF_KINDS:
            problem = label_problem(key)
            if problem:
                self.err(line, f"cross-reference @{key}: {problem}")
            return prefix
        if prefix and prefix.lower() in XREF_KINDS:
            self.err(line, f"capitalised cross-reference @{key} is not supported: "
                     f"write @{prefix.lower()}{key[len(prefix):]}")
        if prefix and prefix.lower() in UNSUPPORTED_XREF_KINDS:
            self.err(line, f"Quarto cross-reference kind {prefix}- (@{key}) is not "
                     f"supported (only {', '.join(k + '-' for k in XREF_KINDS)})")
        return "cite"

    def _at(self, s, i, out, line_at) -> int:
        prev = s[i - 1] if i else ""
        if prev and (prev.isalnum() or prev in "_.+/"):  # e-mail address etc.
            out.append("@")
            return i + 1
        bare = prev == "-" and (i < 2 or s[i - 2] in " \t\n[(")
        if s.startswith("{", i + 1):
            self.err(line_at(i), "braced citation keys @{...} are not supported")
        m = KEY_RE.match(s, i + 1)
        if not m or (prev == "-" and not bare):
            if bare:
                self.err(line_at(i), "author-suppressing citation -@key is not "
                         "supported")
            out.append("@")
            return i + 1
        key = m[0]
        kind = self._ref_kind(key, line_at(i))
        self.scan.uses.append(Use(key, kind, line_at(i)))
        if kind == "cite":
            if bare:
                self.err(line_at(i), "author-suppressing citation -@key is not "
                         "supported")
            out.append(f"{{cite:t}}`{key}`")
            return m.end()
        if bare:
            if self._group_end is None or i > self._group_end:
                self.err(line_at(i), f"-@{key} (the number alone) works inside "
                         f"brackets only: write [-@{key}] or [Word -@{key}]")
            out.pop()  # the "-"
            out.append(f"{{qmd-num}}`{key}`")
            return m.end()
        problem = doubled_word(s[:i], key)
        if problem:
            self.err(line_at(i), problem)
        out.append(f"{{qmd-ref}}`{key}`")
        return m.end()


# --------------------------------------------------------------------------
# entry points


def qmd_to_notebook(text: str, path: str = "<string>") -> nbformat.NotebookNode:
    """Translate a ``.qmd`` chapter into an nbformat v4 notebook (MyST markdown).

    Raises :class:`QmdSyntaxError` (``path:line: message``) for anything
    outside the supported subset.
    """
    return _Translator(text, path).run()


def scan(text: str, path: str = "<string>") -> Scan:
    """List the labels a chapter defines and the cross-refs/citations it uses.

    It translates the chapter too, so it raises the same errors as
    :func:`qmd_to_notebook`.
    """
    translator = _Translator(text, path)
    translator.run()
    return translator.scan
