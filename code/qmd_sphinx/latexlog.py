"""What the LaTeX log says about the page: boxes that stick out of it.

TeX writes ``Overfull \\hbox (12.3pt too wide) in paragraph at lines 10--12``
(or ``... detected at line 40`` for a table or a code block) whenever a line
does not fit the text width. A few points are invisible; more means a table
or a code line runs into the margin. :func:`overfull_boxes` lists them with
the line of the ``.tex`` file; :func:`check_overfull` returns the problems
above a limit, which the build reports and fails on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the widest overflow the build accepts, in points ("a few points")
OVERFULL_LIMIT_PT = 5.0

OVERFULL_RE = re.compile(
    r"^Overfull \\(?P<box>[hv])box \((?P<pt>[\d.]+)pt too (?:wide|high)\)"
    r"(?: (?:in paragraph|in alignment) at lines (?P<first>\d+)--(?P<last>\d+)"
    r"| detected at line (?P<line>\d+)| has occurred while \\output is active)?",
    re.M,
)


@dataclass(frozen=True)
class Overfull:
    box: str  # "hbox" or "vbox"
    points: float
    line: int | None  # the first line of the .tex it comes from, if known

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "output routine"
        return f"overfull \\{self.box} {self.points:.1f}pt at {where}"


def overfull_boxes(log: str) -> list[Overfull]:
    """Every overfull box of a LaTeX log, in order."""
    boxes = []
    for m in OVERFULL_RE.finditer(log):
        line = m["first"] or m["line"]
        boxes.append(Overfull(m["box"] + "box", float(m["pt"]),
                              int(line) if line else None))
    return boxes


def check_overfull(log: str, tex_name: str, tex_lines: list[str] | None = None,
                   limit: float = OVERFULL_LIMIT_PT) -> list[str]:
    """One problem per horizontal box wider than ``limit`` points.

    ``tex_lines``: the ``.tex`` file, to quote the start of the line at fault.
    """
    problems = []
    for box in overfull_boxes(log):
        if box.box != "hbox" or box.points <= limit:
            continue
        quote = ""
        if tex_lines and box.line and 0 < box.line <= len(tex_lines):
            quote = ": " + tex_lines[box.line - 1].strip()[:70]
        problems.append(f"{tex_name}:{box.line}: overfull \\hbox, {box.points:.1f}pt "
                        f"beyond the text width (limit {limit:g}pt){quote}")
    return problems
