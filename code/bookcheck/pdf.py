"""Checks of the book's PDF with poppler's tools (pdftotext, pdffonts, pdfimages)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

POPPLER = "apt-get install poppler-utils"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed; install it with: {POPPLER}")
    return path


def pdf_text(pdf: Path) -> str:
    out = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(pdf), "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout


def unembedded_fonts(pdf: Path) -> list[str]:
    """Names of fonts the PDF uses without embedding them."""
    out = subprocess.run(
        [_tool("pdffonts"), str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    # header, dashes, then one line per font; the 'emb' column is the
    # third from the right of: ... emb sub uni object ID
    bad = []
    for line in out[2:]:
        cols = line.split()
        if len(cols) >= 6 and cols[-5] != "yes":
            bad.append(cols[0])
    return bad


def image_count(pdf: Path) -> int:
    """Raster images drawn in the PDF (soft masks not counted)."""
    out = subprocess.run(
        [_tool("pdfimages"), "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return sum(1 for line in out[2:] if len(line.split()) > 3 and line.split()[2] == "image")


_WS = re.compile(r"\s+")


def check_pdf(pdf: Path, titles: list[str], figures: int | None = None) -> list[str]:
    """The PDF holds every title, no unresolved '??', embedded fonts, all figures."""
    pdf = Path(pdf)
    if not pdf.is_file():
        return [f"{pdf}: no PDF"]
    text = pdf_text(pdf)
    flat = _WS.sub(" ", text)
    problems = []
    for title in titles:
        if _WS.sub(" ", title) not in flat:
            problems.append(f"{pdf.name}: chapter title {title!r} not found in the text")
    for m in re.finditer(r"\?\?", flat):
        context = flat[max(0, m.start() - 40) : m.end() + 40]
        problems.append(f"{pdf.name}: unresolved reference '??' in: ...{context}...")
    for font in unembedded_fonts(pdf):
        problems.append(f"{pdf.name}: font {font} is not embedded")
    if figures is not None:
        got = image_count(pdf)
        if got != figures:
            problems.append(f"{pdf.name}: {got} figure image(s), the site has {figures}")
    return problems
