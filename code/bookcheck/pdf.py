"""Checks of the book's PDF with poppler's tools (pdftotext, pdffonts, pdfimages)."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
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
        [_tool("pdfimages"), "-list", str(pdf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sum(
        1 for line in out[2:] if len(line.split()) > 3 and line.split()[2] == "image"
    )


_WS = re.compile(r"\s+")
# A figure caption as Sphinx's LaTeX writes it with numfig_format "Figure %s":
# "Figure 2.3: Waiting times..." at the start of a line (references to a
# figure in the prose have no colon).
CAPTION = re.compile(r"^Figure ([A-Z0-9]+(?:\.\d+)*):\s", re.MULTILINE)


def _flat(text: str) -> str:
    """Text for matching: ligatures and wide forms unfolded, one space, casefolded."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).casefold()


def figure_captions(text: str) -> list[str]:
    """Numbers of the figure captions in a PDF's text, in order."""
    return CAPTION.findall(unicodedata.normalize("NFKC", text))


def check_pdf(pdf: Path, titles: list[str], figures: int | None = None) -> list[str]:
    """The PDF holds every title, no unresolved '??', embedded fonts, all figures.

    Titles are matched without regard to case (the chapter openings are set in
    capitals) and to line breaks. ``figures`` is the number of figures of the
    site: the PDF must draw as many raster images and caption as many figures.
    """
    pdf = Path(pdf)
    if not pdf.is_file():
        return [f"{pdf}: no PDF"]
    text = pdf_text(pdf)
    flat = _flat(text)
    problems = []
    for title in titles:
        if _flat(title) not in flat:
            problems.append(
                f"{pdf.name}: chapter title {title!r} not found in the text"
            )
    plain = _WS.sub(" ", text)
    for m in re.finditer(r"\?\?", plain):
        context = plain[max(0, m.start() - 40) : m.end() + 40]
        problems.append(f"{pdf.name}: unresolved reference '??' in: ...{context}...")
    for font in unembedded_fonts(pdf):
        problems.append(f"{pdf.name}: font {font} is not embedded")
    if figures is not None:
        got = image_count(pdf)
        if got != figures:
            problems.append(
                f"{pdf.name}: {got} figure image(s), the site has {figures}"
            )
        captions = figure_captions(text)
        if len(captions) != figures:
            problems.append(
                f"{pdf.name}: {len(captions)} figure caption(s) "
                f"({', '.join(captions) or 'none'}), the site has {figures}"
            )
    return problems
