"""The block pass: a chapter's body -> code chunks, math, headings, divs, text.

:class:`BlockParser` reads the lines of a ``.qmd`` body (after the front
matter) once, top to bottom, and returns a tree of blocks: :class:`Chunk`
(an executable ```` ```{python} ```` chunk), :class:`Math` (labelled display
math), :class:`Table` (a pipe table with a ``: Caption {#tbl-x}`` line after
it), :class:`Heading`, :class:`Div` (callouts, exercises, solutions,
``{#refs}``, with their children) and :class:`Text` (markdown lines, left to
the inline pass in ``inline.py``; ``verbatim`` ones are never searched for
Quarto syntax). Every line keeps its 1-based ``.qmd`` line number, so every
error names it. Nothing here produces output: ``emit.py`` turns the blocks
into notebook cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import QmdSyntaxError
from .labels import label_problem

CALLOUT_KINDS = ("note", "tip", "warning", "important", "caution")
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
#: Quarto's table caption: a line ``: Caption text {#tbl-name}`` after the table
TABLE_CAPTION_RE = re.compile(
    r"^:[ \t]+(?P<text>.*?)[ \t]*\{#(?P<label>[^\s{}]+)\}[ \t]*$"
)
PIPE_ROW_RE = re.compile(r"^[ \t]{0,3}\|")


@dataclass
class Text:
    """Markdown lines; ``verbatim`` ones (literal code, comments, math) are
    copied unchanged and never searched for Quarto syntax."""

    lines: list[tuple[int, str]]
    verbatim: bool = False

    @property
    def blank(self) -> bool:
        return all(not s.strip() for _, s in self.lines)


@dataclass
class Chunk:
    line: int
    lines: list[tuple[int, str]]


@dataclass
class Math:
    line: int
    body: list[str]
    label: str
    label_line: int = 0  # the line holding {#eq-...}


@dataclass
class Table:
    """A pipe table with Quarto's caption line after it."""

    line: int  # the table's first line
    rows: list[tuple[int, str]]
    caption: str
    label: str
    caption_line: int


@dataclass
class Heading:
    line: int
    level: int
    text: str
    label: str | None
    unnumbered: bool


@dataclass
class Div:
    line: int
    kind: str  # callout | exercise | solution | refs | otter
    attrs: dict
    children: list = field(default_factory=list)
    end: int = 0  # line of the closing :::


def parse_attrs(text: str, path: str, line: int) -> tuple[list, list, dict]:
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


class BlockParser:
    """Split the body into code chunks, math, headings, divs and text."""

    def __init__(self, lines: list[tuple[int, str]], path: str):
        self.lines = lines
        self.path = path

    def err(self, line: int, message: str):
        raise QmdSyntaxError(self.path, line, message)

    def parse(self) -> list:
        root = Div(0, "root", {})
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
            if line.startswith(":") and not line.startswith("::"):
                self._table_caption(here, n, line)
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
        if here and isinstance(here[-1], Text) and here[-1].verbatim == verbatim:
            here[-1].lines.append((n, line))
        else:
            here.append(Text([(n, line)], verbatim))

    def _table_caption(self, here: list, n: int, line: str) -> None:
        """Turn the pipe table before a ``: Caption {#tbl-x}`` line into a
        :class:`Table`; a caption line anywhere else, or one without its
        label, is refused."""
        text = here[-1] if here and isinstance(here[-1], Text) else None
        lines = list(text.lines) if text is not None and not text.verbatim else []
        while lines and not lines[-1][1].strip():  # one blank line may separate
            lines.pop()
        rows: list[tuple[int, str]] = []
        while lines and PIPE_ROW_RE.match(lines[-1][1]):
            rows.insert(0, lines.pop())
        blanks = len(text.lines) - len(lines) - len(rows) if text else 0
        if not rows:
            self.err(n, "a line starting with ':' is a table caption in Quarto, but "
                     "no pipe table comes right before it; put the caption line "
                     "`: Caption {#tbl-name}` after the table, or do not start a "
                     "line with ':'")
        if blanks > 1:
            self.err(n, "more than one blank line between the table and its caption")
        if len(rows) < 2 or not re.match(r"^[ \t]*\|?[ \t]*:?-+", rows[1][1]):
            self.err(rows[0][0], "the table before this caption has no header rule "
                     "(|---|---|) on its second line")
        m = TABLE_CAPTION_RE.match(line)
        if not m or not m["text"].strip():
            self.err(n, f"malformed table caption {line.strip()!r}: write "
                     "`: Caption text {#tbl-name}` (a caption and a tbl- label, "
                     "so the table is numbered)")
        self._check_label(n, m["label"], "tbl")
        text.lines[:] = lines
        if not lines:
            here.pop()
        here.append(Table(rows[0][0], rows, m["text"].strip(), m["label"], n))

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
                here.append(Chunk(n, body))
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
        here.append(Math(n, body, label, self.lines[j][0]))
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

    def _heading(self, n: int, level: int, text: str) -> Heading:
        text = re.sub(r"[ \t]+#+$", "", text)  # optional closing hashes
        label, unnumbered = None, False
        m = HEADING_ATTR_RE.match(text)
        if m:
            text = m["text"]
            ids, classes, kv = parse_attrs(m["attrs"], self.path, n)
            if kv or len(ids) > 1 or any(c != "unnumbered" for c in classes):
                self.err(n, f"heading attributes {{{m['attrs']}}} are not supported: "
                         "only {#sec-name}, .unnumbered and -")
            if ids:
                label = ids[0]
                self._check_label(n, label, "sec")
            unnumbered = bool(classes)
        if not text.strip():
            self.err(n, "empty heading")
        return Heading(n, level, text.strip(), label, unnumbered)

    def _div(self, n: int, spec: str) -> Div:
        if spec.startswith("{"):
            ids, classes, kv = parse_attrs(spec[1:-1], self.path, n)
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
            return Div(n, "callout", {"kind": kind, **kv})
        if ids == ["refs"] and not classes and not kv:
            return Div(n, "refs", {})
        if len(ids) == 1 and ids[0].startswith("exr-"):
            if classes or kv:
                self.err(n, f"exercise div {spec}: only {{#exr-name}} is supported")
            self._check_label(n, ids[0], "exr")
            return Div(n, "exercise", {"label": ids[0]})
        if classes == ["solution"] and not ids and not kv:
            return Div(n, "solution", {})
        if "otter" in classes:
            if sorted(classes) != ["content-hidden", "otter"] or ids or kv:
                self.err(n, f"otter div {spec}: write ::: {{.content-hidden .otter}} "
                         "(the assignment's question, hidden from every format)")
            return Div(n, "otter", {})
        if "panel-tabset" in classes:
            self.err(n, "tabsets (.panel-tabset) are not supported")
        self.err(n, f"unsupported ::: div {spec}: only callouts, {{#exr-...}}, "
                 "{.solution} and {#refs}")
