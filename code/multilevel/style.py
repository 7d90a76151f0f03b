"""The book's figure style: colours, markers, the page width, axis styling.

Every figure of the package (:mod:`multilevel.plots`, the pooling figure of
:mod:`multilevel.pooling`) takes its look from here.
"""

from __future__ import annotations

from matplotlib.figure import Figure

__all__ = [
    "FONT",
    "OKABE_ITO",
    "SERIES_COLORS",
    "SERIES_MARKERS",
    "TRUTH_COLOR",
    "WIDTH",
    "figure",
    "style_axes",
]

#: Okabe & Ito (2008): orange, sky blue, bluish green, yellow, blue,
#: vermillion, reddish purple, black.
OKABE_ITO = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442",
    "#0072B2", "#D55E00", "#CC79A7", "#000000",
)
#: Engine colours in order of appearance (yellow left out: too pale on white).
SERIES_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
SERIES_MARKERS = ("o", "s", "D", "^", "v", "P")
TRUTH_COLOR = "#000000"
WIDTH = 6.5  # inches: the text width of the PDF

FONT = {"axes.titlesize": 10, "axes.labelsize": 9}


def figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout."""
    return Figure(figsize=(width, height), layout="constrained")


def style_axes(ax) -> None:
    """Small tick labels, the book's title and label sizes, a light grid."""
    ax.tick_params(labelsize=8)
    ax.title.set_fontsize(FONT["axes.titlesize"])
    ax.xaxis.label.set_fontsize(FONT["axes.labelsize"])
    ax.yaxis.label.set_fontsize(FONT["axes.labelsize"])
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
