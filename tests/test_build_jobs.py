"""How scripts/build_book.py shares the chapters' execution between Sphinx
runs side by side (the fixture book's build, tests/test_fixture_book.py,
checks that the site then reads every chapter from the execution cache)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build_book():
    spec = importlib.util.spec_from_file_location(
        "build_book_for_jobs", ROOT / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _book(tmp_path, lines: dict[str, int | None]):
    """A book whose chapters have ``lines`` lines (None: the bibliography)."""
    chapters = [SimpleNamespace(path="index.qmd")]
    (tmp_path / "index.qmd").write_text("# Preface\n")
    for name, n in lines.items():
        body = ("# References\n\n::: {#refs}\n:::\n" if n is None
                else "```{python}\n" + "x = 1\n" * n + "```\n")
        (tmp_path / f"{name}.qmd").write_text(body)
        chapters.append(SimpleNamespace(path=f"{name}.qmd"))
    return SimpleNamespace(root=tmp_path, chapters=chapters)


def test_longest_chapters_first_each_to_the_lightest_group(build_book, tmp_path):
    book = _book(tmp_path, {"a": 1000, "b": 600, "c": 500, "refs": None})
    groups = build_book._execution_groups(book, tmp_path / "out", jobs=2)
    # a (100) | b (60) + c (50); the bibliography goes into both
    assert groups == [["a.qmd", "refs.qmd"], ["b.qmd", "c.qmd", "refs.qmd"]]


def test_no_more_groups_than_chapters_to_spread(build_book, tmp_path):
    book = _book(tmp_path, {"a": 10, "refs": None})
    assert build_book._execution_groups(book, tmp_path / "out", jobs=2) == [
        ["a.qmd", "refs.qmd"]]
    assert build_book._execution_groups(book, tmp_path / "out", jobs=1) == [
        ["a.qmd", "refs.qmd"]]


def test_one_job_or_one_group_executes_nothing_beforehand(build_book, tmp_path):
    book = _book(tmp_path, {"a": 10, "b": 10})
    env = {"QMD_SPHINX_CODE": str(tmp_path)}
    assert build_book._execute_in_parallel(tmp_path, tmp_path / "out", book, env,
                                           jobs=1) is False
    (tmp_path / "one").mkdir()
    one = _book(tmp_path / "one", {"a": 10})
    assert build_book._execute_in_parallel(tmp_path, tmp_path / "out", one, env,
                                           jobs=2) is False


def test_jobs_below_one_are_refused(build_book, capsys):
    with pytest.raises(SystemExit):
        build_book.main(["--jobs", "0"])
    assert "--jobs: at least 1, got 0" in capsys.readouterr().err
