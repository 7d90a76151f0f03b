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


def _save(tmp_path, seconds) -> None:
    import json

    path = tmp_path / "benchmarks" / "execution-seconds.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"seconds": seconds}))


def test_a_clean_build_shares_the_chapters_by_the_saved_seconds(build_book,
                                                                tmp_path):
    # by their code a (100) is longest; the saved measurements say c is
    book = _book(tmp_path, {"a": 1000, "b": 600, "c": 500, "refs": None})
    _save(tmp_path, {"a.qmd": 10.0, "b.qmd": 30.0, "c.qmd": 50.0})
    groups = build_book._execution_groups(book, tmp_path / "out", jobs=2)
    assert groups == [["c.qmd", "refs.qmd"], ["b.qmd", "a.qmd", "refs.qmd"]]


def test_a_build_prefers_the_seconds_it_recorded_itself(build_book, tmp_path,
                                                        monkeypatch):
    book = _book(tmp_path, {"a": 1000, "b": 600, "c": 500, "refs": None})
    _save(tmp_path, {"a.qmd": 10.0, "b.qmd": 30.0, "c.qmd": 50.0})
    monkeypatch.setattr(build_book, "_recorded_seconds",
                        lambda out: {"a": 70.0})
    groups = build_book._execution_groups(book, tmp_path / "out", jobs=2)
    assert groups == [["a.qmd", "refs.qmd"], ["c.qmd", "b.qmd", "refs.qmd"]]


@pytest.mark.parametrize("text", ["[1, 2]", '{"seconds": {"a.qmd": "slow"}}',
                                  "not json"])
def test_a_broken_file_of_saved_seconds_is_refused_by_name(build_book, tmp_path,
                                                           text):
    book = _book(tmp_path, {"a": 10, "b": 10})
    path = tmp_path / "benchmarks" / "execution-seconds.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(build_book.BuildError,
                       match=r"execution-seconds\.json: expected "
                             r".*make execution-seconds"):
        build_book._execution_groups(book, tmp_path / "out", jobs=2)


def test_saving_writes_the_recorded_times_of_the_books_chapters(build_book, tmp_path,
                                                        monkeypatch):
    import json

    root = ROOT
    monkeypatch.setattr(build_book, "SAVED_SECONDS",
                        tmp_path / "saved.json")  # absolute: root / it is it
    monkeypatch.setattr(build_book, "_recorded_seconds", lambda out: {})
    with pytest.raises(build_book.BuildError, match="no execution time recorded "
                       r".*for any chapter; run `make book` first"):
        build_book.save_execution_seconds(root, tmp_path / "out")
    assert not (tmp_path / "saved.json").exists()
    from qmd_sphinx.quarto_config import load_quarto

    # a chapter without code (the references) has no record and is left out
    names = [c.path for c in load_quarto(root).chapters][:-1]
    recorded = {Path(c).stem: 2.0 + i for i, c in enumerate(names)}
    recorded["not-a-chapter"] = 9.0
    monkeypatch.setattr(build_book, "_recorded_seconds", lambda out: recorded)
    path = build_book.save_execution_seconds(root, tmp_path / "out")
    saved = json.loads(path.read_text())
    assert saved["seconds"] == {c: 2.0 + i for i, c in enumerate(names)}
    assert saved["cores"] and saved["date"]


def test_saved_execution_times_do_not_rebuild_the_assignments(build_book,
                                                             tmp_path):
    env = {"QMD_SPHINX_CODE": str(tmp_path / "code")}
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "m.py").write_text("x = 1\n")
    _save(tmp_path, {"a.qmd": 1.0})
    (tmp_path / "benchmarks" / "results.csv").write_text("engine,seconds\n")
    before = build_book._assignment_inputs(tmp_path, env)
    _save(tmp_path, {"a.qmd": 2.0})
    assert build_book._assignment_inputs(tmp_path, env) == before
    (tmp_path / "benchmarks" / "results.csv").write_text("engine,seconds\nx,1\n")
    assert build_book._assignment_inputs(tmp_path, env) != before
