"""The book's package as a wheel, for the notebooks that run outside the book.

A downloaded notebook imports ``multilevel``, which lives in this repository's
``code/multilevel/``. The site therefore offers the package as a wheel in
``downloads/`` and every notebook's setup cell installs it. :func:`build_wheel`
writes that wheel from ``[tool.multilevel-wheel]`` in ``pyproject.toml``:

- the package folder (every file under it but caches and hidden files, so
  non-Python files such as ``Rprofile`` travel too);
- ``Requires-Dist`` for each runtime dependency listed there, pinned to the
  version ``requirements.lock`` holds (the versions the book is built and
  tested with), optional groups as extras;
- the version of ``[project]``, the licence file.

A wheel is a zip archive with a ``.dist-info`` folder (the binary
distribution format of the Python packaging specifications). It is written
here with ``zipfile`` in a fixed order with fixed timestamps and
permissions, so the same sources give the same bytes: no build backend, no
network and no scratch files in the source tree.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

#: the table of pyproject.toml that describes the wheel
TABLE = "multilevel-wheel"
#: every entry's timestamp (zip's earliest date): the bytes do not depend on
#: when or where the sources were checked out
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class WheelError(RuntimeError):
    """The wheel's description or the lock is wrong; the message says how."""


@dataclass(frozen=True)
class WheelSpec:
    name: str
    version: str
    summary: str
    requires_python: str
    license: str
    source: Path  # the package folder
    license_file: Path | None
    dependencies: tuple[str, ...]  # pinned, "numpy==2.4.6"
    extras: dict[str, tuple[str, ...]]

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-py3-none-any.whl"


def normalize(name: str) -> str:
    """A project name as package indexes compare them (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``normalized name -> version`` of every ``name==version`` line."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if m := re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line):
            pins[normalize(m[1])] = m[2]
    return pins


def _pinned(names: list[str], pins: dict[str, str], where: str) -> tuple[str, ...]:
    out = []
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise WheelError(f"{where}: {name!r} is not a bare project name (the "
                             "version comes from requirements.lock: write the name "
                             "only)")
        version = pins.get(normalize(name))
        if version is None:
            raise WheelError(f"{where}: {name!r} is not pinned in requirements.lock; "
                             "add it to pyproject.toml's dependencies and run "
                             "`make lock`")
        out.append(f"{name}=={version}")
    return tuple(out)


def load_spec(root: Path) -> WheelSpec:
    """The wheel described by ``root/pyproject.toml``, pinned by the lock."""
    root = Path(root)
    pyproject = root / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    table = data.get("tool", {}).get(TABLE)
    where = f"{pyproject} [tool.{TABLE}]"
    if table is None:
        raise WheelError(f"{pyproject}: no [tool.{TABLE}] table describes the wheel")
    missing = [k for k in ("name", "source", "summary", "dependencies")
               if k not in table]
    if missing:
        raise WheelError(f"{where}: missing {', '.join(missing)}")
    source = root / table["source"]
    if not (source / "__init__.py").is_file():
        raise WheelError(f"{where}: source = {table['source']!r} is not a package "
                         "folder (no __init__.py)")
    if source.name != table["name"]:
        raise WheelError(f"{where}: the folder {source.name!r} must be named as the "
                         f"package, {table['name']!r} (what `import` finds)")
    pins = read_lock(root / "requirements.lock")
    project = data.get("project", {})
    license_file = root / table["license-file"] if "license-file" in table else None
    if license_file is not None and not license_file.is_file():
        raise WheelError(f"{where}: license-file {license_file} does not exist")
    return WheelSpec(
        name=table["name"],
        version=project.get("version", "0"),
        summary=table["summary"],
        requires_python=table.get("requires-python",
                                  project.get("requires-python", "")),
        license=project.get("license", ""),
        source=source,
        license_file=license_file,
        dependencies=_pinned(list(table["dependencies"]), pins, where),
        extras={extra: _pinned(list(names), pins, f"{where} extra {extra!r}")
                for extra, names in sorted(table.get("extras", {}).items())},
    )


def package_files(source: Path) -> list[Path]:
    """The files of the package folder, sorted, without caches."""
    files = []
    for path in sorted(Path(source).rglob("*")):
        rel = path.relative_to(source)
        if (path.is_dir() or SKIPPED_DIRS & set(rel.parts)
                or path.suffix in SKIPPED_SUFFIXES
                or any(part.startswith(".") for part in rel.parts)):
            continue
        files.append(path)
    return files


def metadata(spec: WheelSpec) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {spec.name}",
        f"Version: {spec.version}",
        f"Summary: {spec.summary}",
    ]
    if spec.license:
        lines.append(f"License: {spec.license}")
    if spec.requires_python:
        lines.append(f"Requires-Python: {spec.requires_python}")
    lines += [f"Requires-Dist: {d}" for d in spec.dependencies]
    for extra, deps in spec.extras.items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_wheel(root: Path, out_dir: Path) -> Path:
    """Write the wheel into ``out_dir``; returns its path."""
    spec = load_spec(root)
    dist_info = f"{spec.name}-{spec.version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in package_files(spec.source):
        rel = path.relative_to(spec.source).as_posix()
        entries.append((f"{spec.name}/{rel}", path.read_bytes()))
    entries.append((f"{dist_info}/METADATA", metadata(spec).encode()))
    entries.append((f"{dist_info}/WHEEL", (
        b"Wheel-Version: 1.0\nGenerator: qmd_sphinx.wheel\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n")))
    entries.append((f"{dist_info}/top_level.txt", f"{spec.name}\n".encode()))
    if spec.license_file is not None:
        entries.append((f"{dist_info}/{spec.license_file.name}",
                        spec.license_file.read_bytes()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n"
                     for name, data in entries)
    entries.append((f"{dist_info}/RECORD", f"{record}{dist_info}/RECORD,,\n".encode()))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # Unix: the permissions above are read
            archive.writestr(info, data, compresslevel=9)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / spec.filename
    target.write_bytes(buffer.getvalue())
    return target
