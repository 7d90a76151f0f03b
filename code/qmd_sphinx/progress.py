"""A build a person can watch: one line per chapter as it is read, then a sum.

Sphinx runs quietly (``-q``); reading a chapter is where myst-nb executes it
(or takes its outputs from the jupyter-cache), which is where a build spends
its time. After each chapter this prints its name, the seconds it took and
whether it was executed or came from the cache; when reading is over, a
summary. Chapters Sphinx did not need to re-read are counted as unchanged.
"""

from __future__ import annotations

import sys
import time

_STATE: dict = {"started": None, "chapter_start": None, "rows": [], "total": 0}


def builder_inited(app) -> None:
    _STATE.update(started=time.time(), chapter_start=None, rows=[],
                  total=len(app.config.qmd_docnames))


def chapter_started(app, docname: str, source: list[str]) -> None:
    _STATE["chapter_start"] = (docname, time.perf_counter())


def status(exec_data: dict | None, started: float) -> str:
    """``executed``, ``cache hit`` or ``no code`` from myst-nb's exec data."""
    if not exec_data:
        return "no code"
    if exec_data.get("mtime") is not None and exec_data["mtime"] >= started:
        return "executed" if exec_data.get("succeeded", True) else "FAILED"
    return "cache hit"


def line(builder: str, docname: str, seconds: float, state: str) -> str:
    return f"{builder}: {docname:<28} {seconds:7.1f} s  {state}"


def chapter_read(app, doctree) -> None:
    start = _STATE.get("chapter_start")
    docname = app.env.docname
    if not start or start[0] != docname:
        return
    seconds = time.perf_counter() - start[1]
    try:
        from myst_nb.sphinx_ import NbMetadataCollector

        exec_data = NbMetadataCollector.get_exec_data(app.env, docname)
    except Exception:  # noqa: BLE001 - a progress line must never stop a build
        exec_data = None
    state = status(exec_data, _STATE["started"] or 0.0)
    _STATE["rows"].append((docname, seconds, state))
    print(line(app.builder.name, docname, seconds, state), file=sys.stdout, flush=True)


def summary_line(builder: str, rows: list, total: int) -> str:
    counts = {}
    for _, _, state in rows:
        counts[state] = counts.get(state, 0) + 1
    seconds = sum(s for _, s, _ in rows)
    parts = [f"{counts[k]} {k}" for k in ("executed", "cache hit", "no code", "FAILED")
             if counts.get(k)]
    unchanged = max(total - len(rows), 0)
    if unchanged:
        parts.append(f"{unchanged} unchanged (not re-read)")
    return (f"{builder}: {len(rows)} chapter(s) read in {seconds:.1f} s"
            + (": " + ", ".join(parts) if parts else ""))


def summary(app, env) -> None:
    print(summary_line(app.builder.name, _STATE["rows"], _STATE["total"]),
          file=sys.stdout, flush=True)
