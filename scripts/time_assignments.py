"""Time the grading of the book's assignments: `otter run`, one submission.

For each chapter with an assignment in ``BUILD/assignments/`` (``make book``
writes them), grade the instructor notebook (the submission that answers
every question, so every answer and test runs) with ``otter run`` and record
the seconds and the score. The rows go to ``benchmarks/assignments.csv``
(with the time, the load average just before and the commit of each;
rows of chapters not timed this time are kept) and the last run's
provenance (load, machine, versions, the command) to
``benchmarks/assignments.json``; the instructors' guide reads both.

    .venv/bin/python scripts/time_assignments.py --build _build
    .venv/bin/python scripts/time_assignments.py --build _build --chapters fit-pymc

Run it with the Makefile's environment (``make print-env``: the compile
caches the grading kernels share), on a machine doing nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "code"))

from qmd_sphinx.assign import otter_run  # noqa: E402 (after the path insert)

COLUMNS = ["chapter", "submission", "seconds", "score", "possible", "timed_at",
           "load_before", "commit"]


def _commit() -> str:
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                         capture_output=True, text=True)
    return run.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=REPO / "_build",
                        help="the book's build folder (default: _build)")
    parser.add_argument("--chapters", nargs="+", default=None,
                        help="time these assignments only (default: all built)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks",
                        help="folder of assignments.csv/.json (default: benchmarks)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds allowed for one otter run (default: 600)")
    args = parser.parse_args(argv)

    root = args.build.resolve() / "assignments"
    built = sorted(p.name for p in root.glob("*") if (p / "instructor").is_dir())
    chapters = args.chapters or built
    missing = sorted(set(chapters) - set(built))
    if not chapters or missing:
        parser.error(f"no built assignment {missing or ''} under {root}: run "
                     "`make book` (or build_book.py --formats html,assignments)")
    load_before = os.getloadavg()
    rows = []
    commit = _commit()
    with tempfile.TemporaryDirectory(prefix="time-assignments-") as tmp:
        for chapter in chapters:
            folder = root / chapter
            load = os.getloadavg()[0]
            scores, seconds = otter_run(
                folder, folder / "instructor" / f"{chapter}.ipynb",
                Path(tmp) / chapter, timeout=args.timeout)
            score = sum(s for s, _ in scores.values())
            possible = sum(m for _, m in scores.values())
            if score != possible:
                raise SystemExit(f"{chapter}: the instructor notebook scored "
                                 f"{score:g} of {possible:g}: fix the assignment "
                                 "before timing it")
            print(f"{chapter}: {seconds:.1f} s ({score:g}/{possible:g})",
                  flush=True)
            rows.append({"chapter": chapter, "submission": "instructor",
                         "seconds": round(seconds, 1), "score": score,
                         "possible": possible, "timed_at": time.strftime(
                             "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "load_before": round(load, 2), "commit": commit})
    load_after = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "assignments.csv"
    table = pd.DataFrame(rows, columns=COLUMNS)
    if csv.is_file():
        kept = pd.read_csv(csv)
        table = pd.concat([kept[~kept["chapter"].isin(chapters)], table])
    table.sort_values("chapter").to_csv(csv, index=False)
    import otter

    provenance = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "command": "python scripts/time_assignments.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "chapters_timed": chapters,
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "otter_grader": otter.__version__,
        "compile_cache": os.environ.get("MULTILEVEL_COMPILE_CACHE", ""),
    }
    (args.out / "assignments.json").write_text(json.dumps(provenance, indent=2)
                                               + "\n")
    print(f"wrote {csv} and {args.out / 'assignments.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
