"""Labels and cross-references: the one grammar every part of the bridge uses.

A label is a kind's prefix, a hyphen and lower-case kebab-case words
(``sec-fit-lmer``, ``eq-lmm-u``, ``fig-waits``, ``tbl-fixed``, ``exr-mean-1``);
a chunk label of no kind (``setup``) is kebab-case words too. The block
parser, the inline parser, the whole-book check and the chapter linter all
call :func:`label_problem`, so a label that builds also lints, and the
reverse.

A reference prints the kind's word itself, as Quarto's book format does
(``@eq-x`` prints "Equation 2.5"), so a source that writes the word before
it ("Equation @eq-x") prints it twice; :func:`doubled_word` finds that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import QmdSyntaxError

#: cross-reference kinds the bridge supports (``@sec-x`` ...)
XREF_KINDS = ("sec", "eq", "fig", "tbl", "exr")
#: Quarto cross-reference kinds the bridge refuses
UNSUPPORTED_XREF_KINDS = (
    "lst", "tip", "nte", "wrn", "imp", "cau", "thm", "lem", "cor", "prp",
    "cnj", "def", "exm", "sol", "rem", "alg",
)  # fmt: skip
#: the word a reference prints (Quarto's book format, English)
KIND_WORDS = {
    "chapter": "Chapter",  # a sec- label on a chapter's title
    "appendix": "Appendix",  # ... on an appendix's title
    "sec": "Section",
    "eq": "Equation",
    "fig": "Figure",
    "tbl": "Table",
    "exr": "Exercise",
}

WORDS = r"[a-z0-9]+(?:-[a-z0-9]+)*"
LABEL_RE = re.compile(rf"(?:{'|'.join(XREF_KINDS)})-{WORDS}")
PLAIN_LABEL_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
#: what may follow an ``@`` in a reference or citation (pandoc's key syntax:
#: internal punctuation only when followed by a word character)
KEY_RE = re.compile(r"\w(?:\w|[:.#$%&\-+?<>~/](?=\w))*")
#: a word that a reference prints itself, at the end of the text before it
DOUBLED_WORD_RE = re.compile(
    r"(?<![\w-])(?P<word>equations?|eqs?\.|figures?|figs?\.|tables?|chapters?|"
    r"sections?|secs?\.|exercises?|appendix|appendices)[ \t\n]+$",
    re.IGNORECASE,
)


def kind_of(label: str) -> str | None:
    """``"fig"`` for ``fig-x``; None for a label of no kind."""
    prefix = label.split("-", 1)[0] if "-" in label else None
    return prefix if prefix in XREF_KINDS else None


def label_problem(label: str, kind: str | None = None) -> str | None:
    """What is wrong with ``label`` (as the label of a ``kind``), or None.

    ``kind=None``: any cross-reference kind; ``kind=""``: a plain chunk label
    (no cross-reference kind).
    """
    if kind == "":
        prefix = label.split("-", 1)[0]
        if prefix in XREF_KINDS or prefix in UNSUPPORTED_XREF_KINDS:
            return (f"chunk label {label!r}: a {prefix}- label cannot be put on a "
                    "code chunk (only fig- and tbl-)")
        if not PLAIN_LABEL_RE.fullmatch(label):
            return (f"chunk label {label!r} must match [a-z][a-z0-9]*(-[a-z0-9]+)*"
                    " (lower-case words joined by '-')")
        return None
    if kind is not None and not label.startswith(kind + "-"):
        what = {"sec": "section", "eq": "equation", "exr": "exercise",
                "fig": "figure", "tbl": "table"}[kind]  # fmt: skip
        return f"{what} label {label!r} must start with {kind}-"
    if not LABEL_RE.fullmatch(label):
        return (f"label {label!r} is not valid: use a prefix "
                f"({', '.join(XREF_KINDS)}), a hyphen and lower-case words "
                "joined by '-' (e.g. fig-wait-times)")
    return None


def doubled_word(before: str, label: str) -> str | None:
    """The message if the text ``before`` a reference ends with its word."""
    m = DOUBLED_WORD_RE.search(before)
    if not m:
        return None
    word = m["word"]
    example = {"sec": "Chapter 3, Section 3.2, Appendix A", "eq": "Equation 2.5",
               "fig": "Figure 4.1", "tbl": "Table 4.2", "exr": "Exercise 6.2"}
    return (
        f'"{word} @{label}" prints the word twice: the reference prints its '
        f"own word ({example.get(kind_of(label) or '', 'Figure 4.1')}), as in "
        f"Quarto; write @{label}, or [{word} -@{label}] for your word and the "
        "number alone"
    )


# --------------------------------------------------------------------------
# what a chapter defines and uses


@dataclass(frozen=True)
class Label:
    """A label a chapter defines (``sec-x``, ``eq-x``, ``fig-x``, ...)."""

    name: str
    kind: str
    line: int


@dataclass(frozen=True)
class Use:
    """A cross-reference (kind = label prefix) or citation (kind ``"cite"``)."""

    key: str
    kind: str
    line: int


@dataclass
class Scan:
    """What one chapter defines and uses, each with its ``.qmd`` line.

    ``unnumbered``: the chapter's title (its level-1 heading) is
    ``{.unnumbered}``, so the chapter takes no number.
    """

    path: str
    defines: list[Label] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    unnumbered: bool = False

    @property
    def crossrefs(self) -> list[Use]:
        return [u for u in self.uses if u.kind != "cite"]

    @property
    def citations(self) -> list[Use]:
        return [u for u in self.uses if u.kind == "cite"]


def check_references(
    scans: Iterable[Scan], citation_keys: Iterable[str] | None = None
) -> list[QmdSyntaxError]:
    """Check the scans of a whole book against each other.

    Returns (does not raise) one error per problem, in file order: a label
    defined twice, a cross-reference to a label no chapter defines, and, if
    ``citation_keys`` is given, a citation key missing from the bibliography.
    """
    scans = list(scans)
    problems: list[QmdSyntaxError] = []
    first: dict[str, tuple[str, int]] = {}
    for sc in scans:
        for lab in sc.defines:
            if lab.name in first:
                where = "{}:{}".format(*first[lab.name])
                problems.append(
                    QmdSyntaxError(
                        sc.path,
                        lab.line,
                        f"label {lab.name!r} already defined at {where}",
                    )
                )
            else:
                first[lab.name] = (sc.path, lab.line)
    keys = None if citation_keys is None else set(citation_keys)
    for sc in scans:
        for use in sc.uses:
            if use.kind == "cite":
                if keys is not None and use.key not in keys:
                    problems.append(
                        QmdSyntaxError(
                            sc.path,
                            use.line,
                            f"citation @{use.key} is not in the bibliography "
                            "(add it to references.bib or fix the key)",
                        )
                    )
            elif use.key not in first:
                problems.append(
                    QmdSyntaxError(
                        sc.path,
                        use.line,
                        f"@{use.key} refers to a label that no chapter defines",
                    )
                )
    return problems
