"""The book's package as a wheel, and the notebooks run outside the repository.

The wheel (``qmd_sphinx.wheel``, described by pyproject.toml's
``[tool.multilevel-wheel]``) is what a downloaded notebook's setup cell
installs. The fast tests check what it holds and that it is reproducible;
the slow one installs it in a fresh virtual environment outside the
repository and runs chapter notebooks there from top to bottom.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from qmd_sphinx.wheel import (
    WheelError,
    build_wheel,
    load_spec,
    normalize,
    read_lock,
)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "code" / "multilevel"


def _wheel_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(REPO, tmp_path_factory.mktemp("wheel"))


def _copy_root(tmp_path: Path) -> Path:
    """A copy of what the wheel is built from, to change freely."""
    root = tmp_path / "root"
    (root / "code").mkdir(parents=True)
    for name in ("pyproject.toml", "requirements.lock", "LICENSE"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(PACKAGE, root / "code" / "multilevel",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_wheel_holds_the_package_with_its_data_files(wheel):
    files = _wheel_files(wheel)
    assert wheel.name == "multilevel-0.1.0-py3-none-any.whl"
    expected = {
        "multilevel/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert "multilevel/Rprofile" in expected and "multilevel/reml/pls.py" in expected
    packaged = {n for n in files if not n.startswith("multilevel-0.1.0.dist-info/")}
    assert packaged == expected
    assert files["multilevel/Rprofile"] == (PACKAGE / "Rprofile").read_bytes()
    # RECORD: every other file with its sha256 and size (what pip checks)
    record = files["multilevel-0.1.0.dist-info/RECORD"].decode().splitlines()
    listed = {}
    for line in record:
        name, digest, size = line.rsplit(",", 2)
        listed[name] = (digest, size)
    assert set(listed) == set(files)
    for name, data in files.items():
        if name.endswith("/RECORD"):
            continue
        sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        assert listed[name] == ("sha256=" + sha.decode(), str(len(data))), name


def test_the_wheel_pins_its_runtime_dependencies_to_the_lock(wheel):
    meta = _wheel_files(wheel)["multilevel-0.1.0.dist-info/METADATA"].decode()
    lock = read_lock(REPO / "requirements.lock")
    requires = [line.split(": ", 1)[1] for line in meta.splitlines()
                if line.startswith("Requires-Dist: ")]
    plain = [r for r in requires if ";" not in r]
    assert len(plain) >= 10
    for requirement in requires:
        name, version = requirement.split(";")[0].strip().split("==")
        assert lock[normalize(name)] == version, requirement
    names = {normalize(r.split("==")[0]) for r in plain}
    assert {"numpy", "pymc", "rpy2", "formulae"} <= names
    # the book's build and test tools are not the package's needs
    assert not names & {"sphinx", "myst-nb", "pytest", "nbclient", "ruff"}
    assert "Requires-Python: >=3.11" in meta


def _imported_distributions() -> set[str]:
    """The distributions whose modules code/multilevel imports."""
    modules: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"multilevel", "__future__"}
    providers = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in providers)
    assert not missing, f"no installed distribution provides {missing}"
    return {normalize(d) for m in modules for d in providers[m]}


def test_the_dependencies_are_what_the_package_imports():
    from multilevel import engines

    spec = load_spec(REPO)
    declared = {normalize(d.split("==")[0]) for d in spec.dependencies}
    optional = {normalize(d.split("==")[0])
                for deps in spec.extras.values() for d in deps}
    imported = _imported_distributions()
    assert imported - declared - optional == set(), (
        "imported but not a dependency")
    # what fit_pymc's samplers need is a dependency even where PyMC, not the
    # package, imports it (the default sampler must work after installing)
    samplers = {normalize(p) for s in engines.SAMPLERS for p in s.needs}
    assert normalize(engines.DEFAULT_SAMPLER) in samplers | declared
    assert samplers - declared == set(), "a sampler's package is not installed"
    assert declared - imported - samplers == set(), (
        "a dependency the package never imports")


def test_the_wheel_is_reproducible(tmp_path, wheel):
    root = _copy_root(tmp_path)
    first = build_wheel(root, tmp_path / "a").read_bytes()
    # a later checkout: other timestamps, a compiled cache, the same bytes
    for path in (root / "code" / "multilevel").rglob("*"):
        path.touch()
    cache = root / "code" / "multilevel" / "__pycache__"
    cache.mkdir()
    (cache / "data.cpython-311.pyc").write_bytes(b"\0")
    assert build_wheel(root, tmp_path / "b").read_bytes() == first
    assert first == wheel.read_bytes()  # the same as from the repository
    # ... and a changed source changes it
    with open(root / "code" / "multilevel" / "Rprofile", "a") as f:
        f.write("# another line\n")
    assert build_wheel(root, tmp_path / "c").read_bytes() != first


def test_the_description_is_checked(tmp_path):
    root = _copy_root(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")

    def fails(old, new, match):
        assert old in text
        pyproject.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(WheelError, match=match):
            load_spec(root)

    fails('    "numpyro",\n]', '    "numpyro",\n    "not-a-locked-package",\n]',
          r"'not-a-locked-package' is not pinned in requirements.lock.*make lock")
    fails('    "numpyro",\n]', '    "numpyro>=0.1",\n]', "not a bare project name")
    fails('source = "code/multilevel"', 'source = "code"', "no __init__.py")
    fails('[tool.multilevel-wheel]\nname = "multilevel"\n', "[tool.multilevel-wheel]\n",
          "missing name")
    pyproject.write_text(text, encoding="utf-8")
    assert load_spec(root).name == "multilevel"


# ---- the notebooks, run where a reader runs them

BUILD = Path(os.environ.get("BOOK_BUILD") or REPO / "_build").resolve()
#: chapters whose notebooks run outside the repository (those that need no
#: saved results or MCMC): the data, the equations, Z and the lme4 fit
OUTSIDE_CHAPTERS = ("cafes", "equations-lmm", "z-matrix", "fit-lmer")
#: what the build's environment sets that a reader's does not have
NOT_A_READERS = ("PYTHONPATH", "VIRTUAL_ENV", "R_PROFILE_USER", "MPLBACKEND",
                 "MULTILEVEL_COMPILE_CACHE", "NUMBA_CACHE_DIR", "PYTENSOR_FLAGS",
                 "JAX_COMPILATION_CACHE_DIR", "JUPYTER_PATH", "JUPYTER_DATA_DIR")
KERNEL = "multilevel-outside"

#: run by the fresh environment's Python: execute each notebook in its own
#: folder, after it a cell that says where `multilevel` came from
DRIVER = r"""
import json, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

kernel, *paths = sys.argv[1:]
for path in map(Path, paths):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json, multilevel, os, sys\n"
        "print(json.dumps({'file': multilevel.__file__, 'prefix': sys.prefix,"
        " 'rprofile': os.environ.get('R_PROFILE_USER')}))"))
    start = time.perf_counter()
    NotebookClient(nb, kernel_name=kernel, timeout=1200,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path.with_suffix(".out.ipynb"))
    print(json.dumps({"notebook": path.name,
                      "seconds": round(time.perf_counter() - start, 1)}), flush=True)
"""


def _run(cmd, **kwargs):
    run = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-60:])
        pytest.fail(f"{' '.join(map(str, cmd))} failed (exit {run.returncode}):\n"
                    f"{tail}", pytrace=False)
    return run


def _text_outputs(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for o in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.needs_r
@pytest.mark.book
def test_notebooks_run_in_a_fresh_environment_outside_the_repository(
        tmp_path_factory):
    downloads = BUILD / "html" / "downloads"
    spec = load_spec(REPO)
    if not (downloads / spec.filename).is_file():
        pytest.fail(f"no wheel in the built site: {downloads / spec.filename} is "
                    "missing; run make book first", pytrace=False)
    python = shutil.which("python3.11")
    assert python, "python3.11 is not on PATH (the book's Python)"
    timings: dict[str, float] = {}
    start = time.perf_counter()

    # the site's downloads, as a reader saves them, far from the repository
    home = tmp_path_factory.mktemp("reader")
    assert REPO not in home.parents
    site = home / "downloads"
    (site / "notebooks").mkdir(parents=True)
    fresh = build_wheel(REPO, tmp_path_factory.mktemp("fresh"))
    assert fresh.read_bytes() == (downloads / spec.filename).read_bytes(), (
        "the site's wheel is not the one the sources build: run make book")
    shutil.copy2(fresh, site / fresh.name)
    notebooks = []
    for name in OUTSIDE_CHAPTERS:
        copy = site / "notebooks" / f"{name}.ipynb"
        shutil.copy2(downloads / "notebooks" / f"{name}.ipynb", copy)
        notebooks.append(copy)

    # a fresh environment with a kernel and nbclient, nothing of the book's:
    # the first notebook's setup cell installs the wheel
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_READERS}
    venv = home / "venv"
    _run([python, "-m", "venv", venv], env=env, cwd=home)
    lock = read_lock(REPO / "requirements.lock")
    tools = [f"{n}=={lock[n]}" for n in ("ipykernel", "nbclient")]
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", *tools], env=env,
         cwd=home)
    _run([venv / "bin" / "python", "-m", "ipykernel", "install", "--sys-prefix",
          "--name", KERNEL], env=env, cwd=home)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    timings["environment"] = time.perf_counter() - start
    run = _run([venv / "bin" / "python", "-c", DRIVER, KERNEL, *notebooks],
               env=env, cwd=home)
    for line in run.stdout.splitlines():
        record = json.loads(line)
        timings[record["notebook"]] = record["seconds"]
    timings["total"] = time.perf_counter() - start
    print("outside the repository, seconds:",
          {k: round(v, 1) for k, v in timings.items()})

    for path in notebooks:
        ran = nbformat.read(path.with_suffix(".out.ipynb"), as_version=4)
        setup = ran.cells[0]
        assert setup.metadata.get("tags") == ["setup"], path.name
        assert "R, lme4 and rpy2 found" in _text_outputs(setup), path.name
        where = json.loads(_text_outputs(ran.cells[-1]).strip().splitlines()[-1])
        package = Path(where["file"]).resolve()
        assert package.is_relative_to(venv.resolve()), where  # not the repo's copy
        assert not package.is_relative_to(REPO)
        assert where["rprofile"] == str(package.with_name("Rprofile"))
        # the numbers the reader gets are the book's
        built = nbformat.read(downloads / "notebooks" / path.name, as_version=4)
        pairs = list(zip(built.cells[1:], ran.cells[1:-1], strict=True))
        differ = [k for k, (a, b) in enumerate(pairs, start=2)
                  if a.cell_type == "code" and _text_outputs(a) != _text_outputs(b)]
        assert not differ, f"{path.name}: cells {differ} print other text"
        printed = [a for a, _ in pairs if a.cell_type == "code" and _text_outputs(a)]
        assert len(printed) >= 3, f"{path.name}: too few outputs to compare"
        # the student's copy starts the same way, an answer cell per exercise
        student = nbformat.read(downloads / "notebooks" / "student" / path.name,
                                as_version=4)
        assert student.cells[0].source == built.cells[0].source
        exercises = [c for c in student.cells if c.cell_type == "markdown"
                     and c.source.startswith("### <a id=\"exr-")]
        answers = [c for c in student.cells if "answer" in c.metadata.get("tags", [])]
        assert exercises and len(answers) == len(exercises), path.name
        assert all(c.cell_type == "code" and not c.source for c in answers)


@pytest.mark.book
def test_every_chapter_page_links_the_wheel():
    from qmd_sphinx.quarto_config import load_quarto

    html = BUILD / "html"
    if not (html / "index.html").is_file():
        pytest.fail(f"no built book in {html}: run make book first", pytrace=False)
    wheel = html / "downloads" / load_spec(REPO).filename
    assert wheel.is_file()
    for chapter in load_quarto(REPO).chapters:
        page = html / f"{chapter.docname}.html"
        if not page.is_file():  # a sub-book (BOOK_BUILD) leaves it out
            continue
        href = f'href="{os.path.relpath(wheel, page.parent)}"'
        assert href in page.read_text(encoding="utf-8"), (page, href)


def test_the_package_says_the_version_the_wheel_is_named_after():
    """The setup cell skips installing the wheel when Python can already
    import a ``multilevel`` of the wheel's version (read from
    ``__version__``); that only holds if the two cannot drift apart."""
    import tomllib

    import multilevel

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert multilevel.__version__ == project["version"]
