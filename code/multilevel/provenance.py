"""What produced a saved result: one record, shared by the study and the
benchmark.

:func:`record` returns::

    command    the command line that wrote the files
    date       UTC, ISO 8601, to the second
    versions   python, the Python packages of PACKAGES, R and lme4 (None
               where absent)
    git        {"commit": HEAD, "code_dirty": uncommitted changes under
               code/multilevel} (None outside a git checkout)
    machine    {"cores", "platform", "python", "threads_env"}

A run adds its own settings and results to the record next to these keys.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multilevel import lmer

__all__ = ["PACKAGES", "REPO", "SCHEMA", "git_state", "missing",
           "package_versions", "r_versions", "record"]

#: Python packages whose versions a record holds.
PACKAGES = (
    "numpy", "scipy", "pandas", "statsmodels", "pymc", "pytensor", "nutpie",
    "numba", "arviz", "rpy2", "formulae",
)

#: The repository this package sits in (code/multilevel/ -> the root).
REPO = Path(__file__).resolve().parents[2]

#: Environment variables that set the number of BLAS / OpenMP threads.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None for a package that is not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def r_versions() -> dict[str, str | None]:
    """R's version string and lme4's version (None where R is absent)."""
    try:
        return lmer.r_versions()
    except Exception as exc:  # provenance must not sink the run it records
        return {"R": f"unknown ({exc})", "lme4": None}


def git_state(root: Path = REPO) -> dict[str, Any]:
    """HEAD's commit and whether code/multilevel has uncommitted changes."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True,
                check=True, timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = run("status", "--porcelain", "--", "code/multilevel")
    return {
        "commit": run("rev-parse", "HEAD"),
        "code_dirty": None if status is None else bool(status),
    }


def record(program: str, argv: Sequence[str]) -> dict[str, Any]:
    """The shared provenance of a run of ``python -m program argv``."""
    return {
        "command": f"python -m {program} " + shlex.join(list(argv)),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            **package_versions(),
            **r_versions(),
        },
        "git": git_state(),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "threads_env": {k: os.environ.get(k) for k in THREAD_VARIABLES},
        },
    }


#: The keys every record has; ``git`` and ``machine`` are dicts with these
#: keys of their own. (Records written before ``python`` and ``threads_env``
#: joined ``machine`` lack them; :func:`missing` does not ask for them.)
SCHEMA: dict[str, tuple[str, ...]] = {
    "command": (),
    "date": (),
    "versions": ("python", "numpy", "pandas"),
    "git": ("commit", "code_dirty"),
    "machine": ("cores", "platform"),
}


def missing(prov: dict[str, Any]) -> list[str]:
    """The keys of :data:`SCHEMA` that ``prov`` lacks, as ``a.b`` paths."""
    out = []
    for key, inner in SCHEMA.items():
        if key not in prov:
            out.append(key)
            continue
        if inner and not isinstance(prov[key], dict):
            out.append(f"{key} (not a dict)")
            continue
        out += [f"{key}.{k}" for k in inner if k not in prov[key]]
    return out

