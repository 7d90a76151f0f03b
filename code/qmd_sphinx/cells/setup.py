# Setup: run this cell first. It installs the book's Python package
# `multilevel` (with the versions of PyMC, rpy2, pandas ... the book was built
# with) and checks R and its package lme4, which run the chapter's lme4 code.
# Offline: put the wheel file named below next to this notebook.
import importlib
import importlib.metadata
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from IPython import get_ipython

WHEEL = "multilevel-0.0.0-py3-none-any.whl"
SITE_DOWNLOADS = ""  # the book's downloads/ on its site ("": not published)
NEEDS_R = True  # does this chapter run R?


def installed(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def wheel_source(start):
    """A copy of the wheel here or in a folder above (as the site lays the
    notebooks out under downloads/), else its address on the site."""
    for folder in (start, *list(start.parents)[:3]):
        if (folder / WHEEL).is_file():
            return str(folder / WHEEL)
    return f"{SITE_DOWNLOADS}/{WHEEL}" if SITE_DOWNLOADS else None


def r_command(what):
    """The command that installs ``what`` ("R" or "lme4") here."""
    in_r = "in R: install.packages('lme4')"
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
        if what == "R":
            return "!apt-get install -y r-base-core r-base-dev"
        return "!Rscript -e 'install.packages(\"lme4\")'  (a few minutes)"
    if Path("/etc/debian_version").is_file():  # Debian, Ubuntu
        packages = "r-base-core r-base-dev r-cran-lme4" if what == "R" else (
            "r-cran-lme4")
        return f"sudo apt-get install -y {packages}"
    if what == "R":
        return f"install R from https://cloud.r-project.org, then {in_r}"
    return in_r


def importable_version():
    """The version of a ``multilevel`` Python can import already (a clone
    of the book's repository, or a wheel installed before), read from its
    source without importing it (so pip can still replace what it needs)."""
    spec = importlib.util.find_spec("multilevel")
    if spec is None or spec.origin is None:
        return None
    for line in Path(spec.origin).read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__ = "):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


def install_package():
    version = WHEEL.split("-")[1]
    if version in (installed("multilevel"), importable_version()):
        return
    source = wheel_source(Path.cwd())
    if source is None:
        raise RuntimeError(
            f"{WHEEL} not found: download it from the downloads/ folder of the "
            f"book's site into {Path.cwd()} and run this cell again")
    watched = ("numpy", "scipy", "pandas", "matplotlib", "pymc", "rpy2")
    loaded = {m: installed(m) for m in watched if m in sys.modules}
    get_ipython().run_line_magic("pip", f"install -q {shlex.quote(source)}")
    importlib.invalidate_caches()
    if installed("multilevel") != version:
        raise RuntimeError(f"pip did not install {source}: see its messages above")
    replaced = [m for m, v in loaded.items() if installed(m) != v]
    if replaced:
        raise RuntimeError(
            f"pip replaced {', '.join(replaced)}, already imported by this "
            "kernel: restart it (Colab: Runtime > Restart session) and run this "
            "cell again")


def check_r():
    """R, lme4 and rpy2, or the command that installs the missing one."""
    if shutil.which("Rscript") is None:
        return f"R is not installed: {r_command('R')}"
    env = {k: v for k, v in os.environ.items() if k != "R_PROFILE_USER"}
    found = subprocess.run(
        ["Rscript", "-e", "cat(requireNamespace('lme4', quietly = TRUE))"],
        capture_output=True, text=True, env=env).stdout.strip()
    if found != "TRUE":
        return f"the R package lme4 is not installed: {r_command('lme4')}"
    if importlib.util.find_spec("rpy2") is None:
        rpy2 = "rpy2<3.6"
        return f"rpy2 is not installed: %pip install '{rpy2}' (it needs R's headers)"
    return None


install_package()
import multilevel  # noqa: E402  (installed just above)

missing_r = check_r()
if missing_r and NEEDS_R:
    raise RuntimeError(f"this chapter runs R, but {missing_r}; then run this "
                       "cell again")
if missing_r:
    print(f"(This chapter does not need R; the lme4 chapters do: {missing_r}.)")
elif "R_PROFILE_USER" not in os.environ and not any(
        (p / ".Rprofile").is_file() for p in (Path.cwd(), Path.home())):
    # the book's R profile: no warnings about empty library folders in outputs
    os.environ["R_PROFILE_USER"] = str(Path(multilevel.__file__).with_name("Rprofile"))
print(f"multilevel {multilevel.__version__} from {Path(multilevel.__file__).parent}"
      + ("" if missing_r else "; R, lme4 and rpy2 found"))
