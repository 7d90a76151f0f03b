"""Merge stream outputs without changing their text.

rpy2's ``%%R`` writes R's console output in many small pieces ("(Intercept) ",
"         wt ", "\\n", ...). myst-nb 1.4's ``nb_merge_streams`` strips each
piece and appends a newline, which breaks every line R printed in more than
one piece (a named vector, a ``summary()`` table). :func:`merge_streams`
concatenates the pieces exactly, stdout and stderr separately, keeps the
other outputs in order, and does not modify the notebook it reads from.
"""

from __future__ import annotations

import copy
import re

_BACKSPACE = re.compile(r"[^\n]\x08")
_CARRIAGE_RETURN = re.compile(r".*\r(?=[^\n])")


def merge_streams(outputs: list) -> list:
    """One output per stream name, at the place of its first piece."""
    merged: list = []
    streams: dict[str, dict] = {}
    for output in outputs or []:
        if output.get("output_type") == "stream":
            name = output.get("name", "stdout")
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            if name in streams:
                streams[name]["text"] += text
            else:
                first = copy.deepcopy(output)
                first["text"] = text
                streams[name] = first
                merged.append(first)
        else:
            merged.append(output)
    for output in streams.values():
        text = output["text"]
        previous = None
        while previous != text:
            previous, text = text, _BACKSPACE.sub("", text)
        output["text"] = _CARRIAGE_RETURN.sub("", text)
    return merged


def install() -> None:
    """Make myst-nb's ``nb_merge_streams`` use :func:`merge_streams`."""
    from myst_nb.core import render

    render.coalesce_streams = merge_streams
