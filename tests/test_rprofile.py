"""The R profile the builds start R with (code/multilevel/Rprofile).

An empty folder in R's library path makes R warn "library '...' contains no
packages" whenever rpy2 imports a package, and the warning lands in the next
%%R output of a chapter. The profile drops such folders. The tests put an
empty folder first in R's path (R_LIBS_USER) and load rpy2's IPython magic,
as a chapter does, once without the profile and once with it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROFILE = Path(__file__).resolve().parent.parent / "code" / "multilevel" / "Rprofile"

#: R says "contains" for one folder and "contain" for several.
NO_PACKAGES = re.compile(r"contains? no packages")

SCRIPT = """
from IPython.testing.globalipapp import start_ipython
ip = start_ipython()
ip.run_line_magic("load_ext", "rpy2.ipython")
ip.run_cell_magic("R", "", "suppressPackageStartupMessages(library(lme4))\\n"
                 "cat('libraries:', .libPaths(), sep = '\\\\n')")
"""


def _run_magic(tmp_path: Path, profile: Path | None) -> str:
    empty = tmp_path / "empty-library"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, R_LIBS_USER=str(empty))
    env.pop("R_PROFILE_USER", None)
    if profile is not None:
        env["R_PROFILE_USER"] = str(profile)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


@pytest.mark.needs_r
def test_an_empty_library_folder_warns_without_the_profile(tmp_path):
    output = _run_magic(tmp_path, profile=None)
    assert NO_PACKAGES.search(output)
    assert str(tmp_path / "empty-library") in output


@pytest.mark.needs_r
def test_the_profile_drops_empty_library_folders(tmp_path):
    output = _run_magic(tmp_path, profile=PROFILE)
    assert not NO_PACKAGES.search(output)
    assert "libraries:" in output
    assert str(tmp_path / "empty-library") not in output.split("libraries:")[1]
