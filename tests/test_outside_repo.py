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
import shutil
import sys
import zipfile
from pathlib import Path

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
    spec = load_spec(REPO)
    declared = {normalize(d.split("==")[0]) for d in spec.dependencies}
    imported = _imported_distributions()
    assert imported - declared == set(), "imported but not a dependency"
    assert declared - imported == set(), "a dependency the package never imports"


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

    fails('    "tqdm",\n]', '    "tqdm",\n    "not-a-locked-package",\n]',
          r"'not-a-locked-package' is not pinned in requirements.lock.*make lock")
    fails('    "tqdm",\n]', '    "tqdm>=4",\n]', "not a bare project name")
    fails('source = "code/multilevel"', 'source = "code"', "no __init__.py")
    fails('[tool.multilevel-wheel]\nname = "multilevel"\n', "[tool.multilevel-wheel]\n",
          "missing name")
    pyproject.write_text(text, encoding="utf-8")
    assert load_spec(root).name == "multilevel"
