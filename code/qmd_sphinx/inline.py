"""The inline pass: the Quarto syntax inside one paragraph -> MyST.

:class:`InlineParser` walks a paragraph (its lines joined by ``\\n``) one
character at a time: code spans and inline expressions (`` `{python} x` ``
becomes a glue role, the expression waits in :attr:`InlineParser.pending` for
the hidden cell ``emit.py`` writes before the paragraph), math, links,
citations (``[@key]``, ``@key``) and cross-references (``@fig-x`` becomes
``{qmd-ref}`fig-x```, ``[-@fig-x]`` ``{qmd-num}`fig-x```, resolved by
``numbering.py``). Every use is recorded in the chapter's
:class:`~qmd_sphinx.labels.Scan`; anything outside the subset raises
:class:`~qmd_sphinx.errors.QmdSyntaxError` at its line.
"""

from __future__ import annotations

import bisect
import re

from .errors import QmdSyntaxError
from .labels import (
    KEY_RE,
    UNSUPPORTED_XREF_KINDS,
    XREF_KINDS,
    Scan,
    Use,
    doubled_word,
    label_problem,
)

AUTOLINK_RE = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>]+)>"
)
URL_RE = re.compile(r"(?:https?|ftp)://[^\s<>]*|www\.[^\s<>]*")
ROLE_BEFORE_RE = re.compile(r"\{[A-Za-z][\w:+.-]*\}$")


class InlineParser:
    """The inline pass of one chapter (it numbers the inline expressions)."""

    def __init__(self, path: str, scan: Scan):
        self.path = path
        self.scan = scan
        self.pending: list[tuple[str, str]] = []  # (glue key, expression)
        self.n_inline = 0
        self._group_end: int | None = None  # the "]" of [Equations -@eq-a ...]

    def err(self, line: int, message: str):
        raise QmdSyntaxError(self.path, line, message)

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
