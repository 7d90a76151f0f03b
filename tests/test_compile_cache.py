"""One folder of compilation caches, shared by everything that compiles.

PyTensor, numba and JAX each keep compiled code on disk; pointed at one
folder under the build directory, a chapter's kernel, a test run, the study
and the benchmark reuse what another compiled, and ``make clean`` removes
it. Checked here: the Makefile exports the folder to the commands it runs
(a child process sees it), the book's build passes it on to its kernels,
``multilevel.bayes`` points the libraries at it in a fresh process (and
leaves a cache the environment already names alone), and ``make clean``
removes it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None,
                                reason="make is not installed")

CACHE_VARS = ("MULTILEVEL_COMPILE_CACHE", "NUMBA_CACHE_DIR",
              "JAX_COMPILATION_CACHE_DIR", "PYTENSOR_FLAGS")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in CACHE_VARS and not k.startswith("JAX_")}
    env.update(extra)
    return env


def _make(*args: str) -> str:
    out = subprocess.run(
        ["make", "-s", *args], cwd=ROOT, env=_clean_env(), check=True,
        capture_output=True, text=True, timeout=60,
    )
    return out.stdout


@needs_make
def test_make_exports_the_cache_folder_to_its_commands(tmp_path):
    out = tmp_path / "build"
    printed = dict(
        line.split("=", 1) for line in _make("print-env", f"OUT={out}").split("\n")
        if "=" in line
    )
    cache = out / ".compile-cache"
    assert printed["MULTILEVEL_COMPILE_CACHE"] == str(cache)
    assert printed["NUMBA_CACHE_DIR"] == str(cache / "numba")
    assert printed["JAX_COMPILATION_CACHE_DIR"] == str(cache / "jax")
    assert f"base_compiledir={cache / 'pytensor'}" in printed["PYTENSOR_FLAGS"]
    assert "blas__ldflags=-lblas" in printed["PYTENSOR_FLAGS"]


@needs_make
def test_make_clean_removes_the_cache_folder(tmp_path):
    out = tmp_path / "build"
    commands = _make("-n", "clean", f"OUT={out}")
    removed = [line for line in commands.splitlines() if line.startswith("rm ")]
    assert removed, commands
    words = removed[0].split()
    assert str(out) in words  # the build directory, cache inside it
    assert str(out / ".compile-cache") in words


def test_the_book_build_passes_the_caches_to_its_kernels(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "build_book_for_test", ROOT / "scripts" / "build_book.py"
    )
    build_book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_book)
    for name, value in (("MULTILEVEL_COMPILE_CACHE", "/c"),
                        ("NUMBA_CACHE_DIR", "/c/numba"),
                        ("JAX_COMPILATION_CACHE_DIR", "/c/jax"),
                        ("PYTENSOR_FLAGS", "base_compiledir=/c/pytensor")):
        monkeypatch.setenv(name, value)
    env = build_book.build_env(ROOT, None, {"html"})
    assert env["MULTILEVEL_COMPILE_CACHE"] == "/c"
    assert env["NUMBA_CACHE_DIR"] == "/c/numba"
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/c/jax"
    assert env["PYTENSOR_FLAGS"] == "base_compiledir=/c/pytensor"


_PROBE = """
import json, os
import multilevel.bayes
import numba, pytensor
print(json.dumps({
    "numba": numba.config.CACHE_DIR,
    "pytensor": str(pytensor.config.base_compiledir),
    "jax": os.environ.get("JAX_COMPILATION_CACHE_DIR"),
    "jax_min": os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"),
    "jax_constants": __import__("jax").config.jax_use_simplified_jaxpr_constants,
}))
"""


def _probe(env: dict[str, str]) -> dict:
    import json

    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True, timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_fresh_process_compiles_into_the_named_folder(tmp_path):
    """Run by hand (no Makefile), the package points every library at
    $MULTILEVEL_COMPILE_CACHE before any of them is imported."""
    got = _probe(_clean_env(MULTILEVEL_COMPILE_CACHE=str(tmp_path)))
    assert got["numba"] == str(tmp_path / "numba")
    assert Path(got["pytensor"]) == tmp_path / "pytensor"
    assert got["jax"] == str(tmp_path / "jax")
    assert got["jax_min"] == "0"
    assert got["jax_constants"] is True  # data as arguments, one compile a shape


@pytest.mark.slow
def test_caches_the_environment_names_are_left_alone(tmp_path):
    mine = tmp_path / "mine"
    got = _probe(_clean_env(
        MULTILEVEL_COMPILE_CACHE=str(tmp_path / "shared"),
        NUMBA_CACHE_DIR=str(mine / "numba"),
        PYTENSOR_FLAGS=f"base_compiledir={mine / 'pytensor'}",
    ))
    assert got["numba"] == str(mine / "numba")
    assert Path(got["pytensor"]) == mine / "pytensor"
    assert got["jax"] == str(tmp_path / "shared" / "jax")


def test_the_default_folder_is_under_the_checkouts_build_directory(monkeypatch):
    from multilevel import bayes

    monkeypatch.delenv(bayes.CACHE_ENV, raising=False)
    assert bayes.compile_cache_dir() == ROOT / "_build" / ".compile-cache"
    monkeypatch.setenv(bayes.CACHE_ENV, "/somewhere/else")
    assert bayes.compile_cache_dir() == Path("/somewhere/else")


def test_configure_sets_only_what_is_not_set(monkeypatch, tmp_path):
    from multilevel import bayes

    for name in ("NUMBA_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR",
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(bayes.JAX_CONSTANTS, "0")  # a reader's own choice stays
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/kept")
    monkeypatch.setenv("PYTENSOR_FLAGS", "blas__ldflags=-lblas")
    set_now = bayes.configure_compile_caches(tmp_path)
    assert "NUMBA_CACHE_DIR" not in set_now and bayes.JAX_CONSTANTS not in set_now
    assert os.environ["NUMBA_CACHE_DIR"] == "/kept"
    assert os.environ[bayes.JAX_CONSTANTS] == "0"
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax")
    assert os.environ["PYTENSOR_FLAGS"] == (
        f"blas__ldflags=-lblas,base_compiledir={tmp_path / 'pytensor'}"
    )
    # a second call changes nothing: the flags already name a compiledir
    assert bayes.configure_compile_caches(tmp_path / "other") == {}


#: Fit each data set named on the command line (simulate_cafes keywords as
#: JSON) with NumPyro, and print the persistent cache's misses and hits of
#: each fit: the programs XLA compiled, and those it found compiled.
_COUNT = """
import json, sys
from multilevel.bayes import fit_pymc  # before JAX: it sets JAX's switches
from multilevel.data import simulate_cafes
import jax.monitoring

events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
counts = []
for kwargs in map(json.loads, sys.argv[1:]):
    events.clear()
    fit_pymc(simulate_cafes(**kwargs).data, draws=30, tune=30, chains=2, seed=3)
    counts.append({k: events.count(f"/jax/compilation_cache/cache_{k}")
                   for k in ("misses", "hits")})
print(json.dumps(counts))
"""


def _compile_counts(cache: Path, *datasets: dict) -> list[dict]:
    import json

    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.pop("JAX_USE_SIMPLIFIED_JAXPR_CONSTANTS", None)  # the package sets it
    out = subprocess.run(
        [sys.executable, "-c", _COUNT, *map(json.dumps, datasets)], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_numpyro_compiles_once_for_every_data_set_of_a_shape(tmp_path):
    """The data reach NumPyro's programs as arguments: in a fresh process,
    other cafes' waits of the same shape find every program compiled, while
    another number of cafes compiles its own (so the count can fail)."""
    cache = tmp_path / "jax"
    first, = _compile_counts(cache, {"seed": 31})
    assert first["misses"] > 0 and first["hits"] == 0
    same_shape, other_shape = _compile_counts(
        cache, {"seed": 32}, {"seed": 33, "n_cafes": 21})
    assert same_shape == {"misses": 0, "hits": first["misses"]}, same_shape
    assert other_shape["misses"] > 0, other_shape
