"""The chapters' otter-grader assignments (qmd_sphinx.assign).

Fast tests: the otter-div syntax, its refusals (file:line), its absence
from the reader's output, the master notebook's structure, the leak check.

Grading checks (``book``, ``slow``): they read the assignments ``make book``
wrote to ``BOOK_BUILD`` (default ``_build/``), whose instructor notebook the
build graded with ``otter run`` (full marks on every autograded question, or
the build fails; its record is checked here), and run ``otter run`` (under
``timeout``) on the untouched student notebook (zero on every autograded
question) and a submission answered wrongly on purpose
(``tests/assignments/<chapter>.yml``: less than full marks on exactly those
questions); and no hidden test, answer, rubric or worked solution reaches
``student/``. Each chapter's grading runs are a class of their own, so
that under ``--dist loadscope`` the chapters are graded side by side.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml

from qmd_sphinx.assign import (
    Question,
    _worked_solution,
    check_left_out,
    leaks,
    master_notebook,
    otter_run,
    questions,
)
from qmd_sphinx.errors import QmdSyntaxError
from qmd_sphinx.reader import qmd_to_notebook

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BOOK_BUILD") or REPO / "_build").resolve()
WRONG = Path(__file__).parent / "assignments"
# the chapters whose assignments are graded here: those with a wrong submission
CHAPTERS = sorted(p.stem for p in WRONG.glob("*.yml"))
RUN_TIMEOUT = 600  # seconds for one `otter run` (a stop, not the speed target)

GOOD = '''\
---
title: "T"
---

# T {#sec-t}

::: {#exr-t-1}
## Sum

Add one and one.
:::

::: {.solution}
```{python}
1 + 1
```
:::

::: {.content-hidden .otter}
```otter
name: sum
points: 2
```

```python
# answer
total = 1 + 1  # SOLUTION
```

```python
# test
assert isinstance(total, int)
```

```python
# hidden test
assert total == 2
```
:::

::: {#exr-t-2}
## Why

Say why.
:::

::: {.solution}
Because.
:::

::: {.content-hidden .otter}
```otter
name: why
points: 1
manual: true
```

One point for saying why.
:::
'''


def test_questions_are_read():
    qs = questions(GOOD, "t.qmd")
    assert [(q.exercise, q.name, q.points, q.manual) for q in qs] == [
        ("exr-t-1", "sum", 2, False), ("exr-t-2", "why", 1, True)]
    assert qs[0].answers[0].code == "total = 1 + 1  # SOLUTION"
    assert [t.code for t in qs[0].hidden] == ["assert total == 2"]
    assert qs[1].rubric == "One point for saying why."


def test_every_assignment_has_a_wrong_submission_to_grade():
    """The grading checks below run for the chapters with a wrong-on-purpose
    submission; a chapter with questions but none would go ungraded."""
    from qmd_sphinx.quarto_config import load_quarto

    with_questions = sorted(
        Path(c.path).stem for c in load_quarto(REPO).chapters
        if questions((REPO / c.path).read_text(encoding="utf-8"), c.path)
    )
    assert with_questions, "no chapter has otter questions"
    assert with_questions == CHAPTERS


def test_otter_divs_are_in_no_output():
    nb = qmd_to_notebook(GOOD, "t.qmd")
    text = "\n".join(c.source for c in nb.cells)
    for secret in ("otter", "total == 2", "One point", "# answer"):
        assert secret not in text
    assert "Add one and one." in text and "Because." in text


def test_otter_div_inside_an_exercise_is_refused_by_the_reader():
    text = GOOD.replace("Add one and one.\n:::",
                        "Add one and one.\n\n::: {.content-hidden .otter}\n"
                        "```otter\nname: x\npoints: 1\n```\n:::\n:::")
    with pytest.raises(QmdSyntaxError) as exc:
        qmd_to_notebook(text, "book/t.qmd")
    line = _line(text, "::: {.content-hidden .otter}")
    assert str(exc.value).startswith(f"book/t.qmd:{line}: an otter question")


def _swap(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


def _line(text: str, needle: str, nth: int = 1) -> int:
    """The line number of the nth line holding ``needle``."""
    hits = [i for i, s in enumerate(text.splitlines(), 1) if needle in s]
    return hits[nth - 1]


DIV = "::: {.content-hidden .otter}"


BAD = [  # (broken chapter, (text on the line named, nth such line), words)
    (_swap("points: 2\n", "points: two\n"), ("```otter", 1), "positive number"),
    (_swap("points: 2\n", "points: 2\nweight: 3\n"), ("```otter", 1), "unknown"),
    (_swap("name: sum\n", "name: Sum_1\n"), ("```otter", 1), "lower-case"),
    (_swap("name: why\n", "name: sum\n"), (DIV, 2), "already defined"),
    (_swap("# hidden test\nassert total == 2", "# secret\nassert total == 2"),
     ("```python", 3), "starts with"),
    (_swap("total = 1 + 1  # SOLUTION", "total = 1 + 1"), ("```python", 1),
     "marks its solution"),
    (_swap("```python\n# hidden test\nassert total == 2\n```\n", ""),
     (DIV, 1), "hidden test"),
    (_swap("One point for saying why.\n", ""), (DIV, 2), "rubric"),
    (_swap("```python\n# answer", "```r\n# answer"), ("```r", 1), "only ```otter"),
    (_swap("::: {.content-hidden .otter}\n```otter\nname: why",
           "::: {.otter}\n```otter\nname: why"), ("::: {.otter}", 1), "content-hidden"),
    (_swap("::: {.content-hidden .otter}\n```otter\nname: why\npoints: 1\n"
           "manual: true\n```\n\nOne point for saying why.\n:::\n", ""),
     ("::: {#exr-t-2}", 1), "no otter question"),
    (_swap("::: {#exr-t-1}", "Text.\n\n::: {.content-hidden .otter}\n"
           "```otter\nname: early\npoints: 1\nmanual: true\n```\n\nR.\n:::\n\n"
           "::: {#exr-t-1}"), (DIV, 1), "must follow"),
    (_swap("```otter\nname: sum\npoints: 2\n```", "```otter\n[1, 2]\n```"),
     ("```otter", 1), "mapping"),
]


@pytest.mark.parametrize("text, where, words", BAD)
def test_malformed_questions_are_refused_with_file_and_line(text, where, words):
    with pytest.raises(QmdSyntaxError) as exc:
        questions(text, "book/t.qmd")
    line = _line(text, *where)
    assert str(exc.value).startswith(f"book/t.qmd:{line}: "), str(exc.value)
    assert words in str(exc.value)


def _reader_notebook():
    """What notebooks.py makes of GOOD: exercise cells with anchors, solution
    cells tagged ``solution``."""
    cells = [
        nbformat.v4.new_code_cell("SEED = 3"),
        nbformat.v4.new_markdown_cell('### <a id="exr-t-1"></a>Exercise 1.1 (Sum)'),
        nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell('### <a id="exr-t-2"></a>Exercise 1.2 (Why)'),
        nbformat.v4.new_markdown_cell("Because the sum of two ones is two.",
                                      metadata={"tags": ["solution"]}),
    ]
    return nbformat.v4.new_notebook(cells=cells)


def test_master_notebook_has_otter_structure():
    qs = questions(GOOD, "t.qmd")
    nb = master_notebook(_reader_notebook(), qs, "t")
    raw = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "raw"]
    assert raw == ["# ASSIGNMENT CONFIG",
                   "# BEGIN QUESTION", "# BEGIN SOLUTION", "# END SOLUTION",
                   "# BEGIN TESTS", "# END TESTS", "# END QUESTION",
                   "# BEGIN QUESTION", "# BEGIN SOLUTION", "# END SOLUTION",
                   "# END QUESTION"]
    config = yaml.safe_load(nb.cells[0].source.split("\n", 1)[1])
    assert config["seed"] == {"variable": "SEED", "autograder_value": 3,
                              "student_value": 3}
    assert config["tests"] == {"files": True}  # not in metadata (Colab)
    sources = [c.source for c in nb.cells]
    answer = next(c for c in nb.cells if "answer-sum" in c.metadata.get("tags", []))
    assert answer.source == "total = 1 + 1  # SOLUTION"
    hidden = next(s for s in sources if "total == 2" in s)
    assert "hidden: true" in hidden and "# HIDDEN" not in hidden
    # the worked solution: instructor only, wrapped so otter leaves nothing
    assert "# BEGIN SOLUTION NO PROMPT\n1 + 1\n# END SOLUTION" in sources
    assert any(s.startswith("**Rubric** (1 points): One point") for s in sources)


def test_master_refuses_a_missing_exercise():
    nb = _reader_notebook()
    del nb.cells[3:]
    with pytest.raises(ValueError, match="exr-t-2"):
        master_notebook(nb, questions(GOOD, "t.qmd"), "t")


def test_leak_check_finds_what_it_must(tmp_path):
    qs = questions(GOOD, "t.qmd")
    reader = _reader_notebook()
    student = tmp_path / "student"
    student.mkdir()
    clean = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Add one and one."),
        nbformat.v4.new_code_cell("total = ...")])
    nbformat.write(clean, student / "t.ipynb")
    assert leaks(student, qs, reader) == []
    (student / "tests").mkdir()
    (student / "tests" / "sum.py").write_text("x = 1\nassert total == 2\n")
    clean.cells.append(nbformat.v4.new_markdown_cell(
        "Because the sum of two ones is two."))
    nbformat.write(clean, student / "t.ipynb")
    found = leaks(student, qs, reader)
    assert {s for _, s in found} == {"assert total == 2",
                                     "Because the sum of two ones is two."}


# --- cells left out of the assignment (`#| tags: [no-assignment]`) ---------

DEMO = "```{python}\n#| tags: [no-assignment]\ndemo = 1 + 1\n```\n\n"


def _with_demo(text: str = DEMO) -> str:
    return GOOD.replace("::: {#exr-t-1}", text + "::: {#exr-t-1}")


def test_no_assignment_tag_reaches_the_reader_notebook():
    nb = qmd_to_notebook(_with_demo(), "t.qmd")
    demo = next(c for c in nb.cells if c.source == "demo = 1 + 1")
    assert demo.metadata["tags"] == ["no-assignment"]
    questions(_with_demo(), "t.qmd")  # accepted


TAGS_BAD = [  # (the options of the chunk, words of the reader's refusal)
    ("#| tags: no-assignment\n", "a list of distinct tags"),
    ("#| tags: [no-assignment, other]\n", "a list of distinct tags"),
    ("#| tags: []\n", "a list of distinct tags"),
    ("#| tags: [no-assignment, no-assignment]\n", "a list of distinct tags"),
]


@pytest.mark.parametrize("options, words", TAGS_BAD)
def test_malformed_tags_are_refused_with_file_and_line(options, words):
    text = _with_demo("```{python}\n" + options + "demo = 1 + 1\n```\n\n")
    with pytest.raises(QmdSyntaxError) as exc:
        qmd_to_notebook(text, "book/t.qmd")
    line = _line(text, "#| tags:")
    assert str(exc.value).startswith(f"book/t.qmd:{line}: "), str(exc.value)
    assert words in str(exc.value)


def test_no_assignment_without_an_assignment_is_refused():
    chapter = "# T {#sec-t}\n\nText.\n\n" + DEMO
    with pytest.raises(QmdSyntaxError) as exc:
        questions(chapter, "book/t.qmd")
    assert str(exc.value).startswith(f"book/t.qmd:{_line(chapter, '```{python}')}: ")
    assert "no otter questions" in str(exc.value)


def test_the_seed_cannot_be_left_out():
    text = _with_demo("```{python}\n#| tags: [no-assignment]\nSEED = 3\n```\n\n")
    with pytest.raises(QmdSyntaxError) as exc:
        questions(text, "book/t.qmd")
    assert str(exc.value).startswith(f"book/t.qmd:{_line(text, '#| tags:') - 1}: ")
    assert "SEED" in str(exc.value)


def _tagged(source: str, *tags):
    return nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})


def test_master_notebook_leaves_tagged_cells_out():
    nb = _reader_notebook()
    nb.cells.insert(1, _tagged("slow = sum(range(10**8))", "no-assignment"))
    nb.cells.insert(3, _tagged("worked = 1 + 1", "solution", "no-assignment"))
    master = master_notebook(nb, questions(GOOD, "t.qmd"), "t")
    sources = "\n".join(c.source for c in master.cells)
    assert "slow" not in sources and "worked" not in sources
    assert "# BEGIN SOLUTION NO PROMPT\n1 + 1\n# END SOLUTION" in sources


def test_a_cell_needing_a_left_out_one_is_refused():
    """otter executes past a NameError, so the master refuses a kept cell
    (or an answer or test) that reads what only a left-out cell defines."""
    nb = _reader_notebook()
    nb.cells.insert(1, _tagged("import math\nslow = 2", "no-assignment"))
    nb.cells.insert(2, nbformat.v4.new_code_cell("def f():\n    return slow"))
    with pytest.raises(ValueError, match="reads slow, which only cells tagged"):
        master_notebook(nb, questions(GOOD, "t.qmd"), "t")
    nb.cells[2].source = "slow = 3\nprint(slow)"  # defined again: fine
    master_notebook(nb, questions(GOOD, "t.qmd"), "t")
    qs = questions(GOOD.replace("assert total == 2", "assert total == 2 + math.e * 0"),
                   "t.qmd")
    with pytest.raises(ValueError, match="reads math"):
        master_notebook(nb, qs, "t")
    nb.cells[1].source = "%%R\nslow <- 2"  # R names are not Python's
    nb.cells[2].source = "print(1)"
    check_left_out(nb.cells, "t")
    # an R cell gives Python the names of its -o and reads those of its -i
    nb.cells[1].source = "%%R -o by_hand,other\nby_hand <- 2; other <- 3"
    nb.cells[2].source = "print(by_hand)"
    with pytest.raises(ValueError, match="reads by_hand, which only cells"):
        check_left_out(nb.cells, "t")
    nb.cells[1].metadata["tags"] = []  # kept
    nb.cells.insert(1, _tagged("waits = [1, 2]", "no-assignment"))
    nb.cells[2].source = "%%R -i waits -o by_hand\nby_hand <- mean(waits)"
    with pytest.raises(ValueError, match="reads waits, which only cells"):
        check_left_out(nb.cells, "t")


def test_a_worked_r_solution_keeps_its_magic_first():
    worked = _worked_solution([_tagged("%%R -o x\nx <- 1", "solution"),
                               _tagged("y = 2", "solution")])
    assert worked[0].source == ("%%R -o x\n# BEGIN SOLUTION NO PROMPT\nx <- 1\n"
                                "# END SOLUTION")
    assert worked[1].source == "# BEGIN SOLUTION NO PROMPT\ny = 2\n# END SOLUTION"


@pytest.mark.slow
def test_otter_assign_grades_the_solutions(tmp_path):
    """assign_chapter writes the three folders and the instructor notebook's
    grades, and fails the build when a solution fails its own tests."""
    from qmd_sphinx.assign import GRADED_FILE, KEY_FILE, AssignError, assign_chapter

    reader = tmp_path / "t-reader.ipynb"
    nbformat.write(_reader_notebook(), reader)
    good = tmp_path / "t.qmd"
    good.write_text(GOOD)
    out = tmp_path / "t"
    assert assign_chapter(good, reader, out, "t")
    assert (out / "student" / "t.ipynb").is_file()
    assert (out / "instructor" / "t.ipynb").is_file()
    assert len(list((out / "autograder").glob("t-autograder_*.zip"))) == 1
    graded = json.loads((out / GRADED_FILE).read_text())
    assert graded["scores"] == {"sum": [2.0, 2.0]} and graded["seconds"] > 0
    bad = tmp_path / "bad.qmd"
    bad.write_text(GOOD.replace("total = 1 + 1  # SOLUTION",
                                "total = 1 + 2  # SOLUTION"))
    with pytest.raises(AssignError,
                       match=r"does not get full marks.*'sum': \(1.0, 2.0\)"):
        assign_chapter(bad, reader, tmp_path / "bad", "t")
    assert not (tmp_path / "bad").exists()
    # a rebuild from the same notebook and inputs keeps the assignment; other
    # inputs, or a changed question, run otter assign again
    kept = tmp_path / "kept"
    assert assign_chapter(good, reader, kept, "t", inputs="code-1")
    student = (kept / "student" / "t.ipynb").read_bytes()
    assert not assign_chapter(good, reader, kept, "t", inputs="code-1")
    assert (kept / "student" / "t.ipynb").read_bytes() == student
    assert assign_chapter(good, reader, kept, "t", inputs="code-2")
    assert json.loads((kept / GRADED_FILE).read_text())["key"] == (
        kept / KEY_FILE).read_text().strip()
    with pytest.raises(AssignError, match="does not get full marks"):
        assign_chapter(bad, reader, kept, "t", inputs="code-2")
    assert not (kept / KEY_FILE).exists()


# --- grading checks on the built assignments -------------------------------


def _assignment(chapter: str) -> Path:
    folder = BUILD / "assignments" / chapter
    if not (folder / "student" / f"{chapter}.ipynb").is_file():
        pytest.fail(f"no assignment {folder}: run `make book` first (or "
                    "scripts/build_book.py with --formats ...,assignments)")
    return folder


def _otter_run(folder: Path, submission: Path, out: Path,
               variant: str) -> dict[str, tuple]:
    """{question: (score, possible)} of one `otter run`, also written to
    ``graded-<variant>.json`` beside the assignment (the scores and seconds
    of the last grading run, as screenshots are kept beside the site)."""
    scores, seconds = otter_run(folder, submission, out, timeout=RUN_TIMEOUT)
    print(f"otter run {submission.name} ({folder.name}): {seconds:.1f} s")
    record = {"variant": variant, "seconds": round(seconds, 1),
              "scores": {q: list(v) for q, v in sorted(scores.items())}}
    (folder / f"graded-{variant}.json").write_text(json.dumps(record, indent=1) + "\n")
    return scores


def _submission(folder: Path, chapter: str, answers: dict[str, str], path: Path):
    """The student notebook with these answers; the other autograded
    questions answered as the instructor's notebook does."""
    student = nbformat.read(folder / "student" / f"{chapter}.ipynb", as_version=4)
    teacher = nbformat.read(folder / "instructor" / f"{chapter}.ipynb", as_version=4)

    def by_question(nb):
        return {t[len("answer-"):]: c for c in nb.cells
                for t in c.metadata.get("tags", []) if t.startswith("answer-")}

    mine, theirs = by_question(student), by_question(teacher)
    unknown = set(answers) - set(mine)
    assert not unknown, f"{WRONG / chapter}.yml: no questions {sorted(unknown)}"
    for name, cell in mine.items():
        cell.source = answers.get(name, theirs[name].source)
    nbformat.write(student, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{(chapter, variant): scores}, each `otter run` once per session."""
    cache: dict = {}

    def grade(chapter: str, variant: str):
        if (chapter, variant) not in cache:
            folder = _assignment(chapter)
            tmp = tmp_path_factory.mktemp(f"{chapter}-{variant}")
            if variant == "wrong":
                answers = yaml.safe_load((WRONG / f"{chapter}.yml").read_text())
                nb = _submission(folder, chapter, answers, tmp / f"{chapter}.ipynb")
            else:
                nb = folder / variant / f"{chapter}.ipynb"
            cache[chapter, variant] = _otter_run(folder, nb, tmp / "out", variant)
        return cache[chapter, variant]

    return grade


def _autograded(chapter: str) -> list[Question]:
    qmd = REPO / "book" / f"{chapter}.qmd"
    return [q for q in questions(qmd.read_text(), str(qmd)) if not q.manual]


@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.book
def test_instructor_notebook_got_full_marks_when_built(chapter):
    """The build graded this very assignment's instructor notebook (the
    record carries the assignment's key) on every autograded question."""
    from qmd_sphinx.assign import GRADED_FILE, KEY_FILE

    folder = _assignment(chapter)
    record = json.loads((folder / GRADED_FILE).read_text())
    assert record["key"] == (folder / KEY_FILE).read_text().strip()
    scores = {q: tuple(v) for q, v in record["scores"].items()}
    assert set(scores) == {q.name for q in _autograded(chapter)}
    assert all(s == m > 0 for s, m in scores.values()), scores


@pytest.mark.book
@pytest.mark.slow
class _Grading:
    """A chapter's grading runs, checked. Each chapter is a class of its own
    (below), which ``--dist loadscope`` (``make test``) hands to one worker:
    the chapters are graded side by side, and a chapter's runs stay in the
    worker whose ``graded`` fixture holds them."""

    chapter: str

    def test_untouched_student_notebook_gets_zero(self, graded):
        scores = graded(self.chapter, "student")
        assert set(scores) == {q.name for q in _autograded(self.chapter)}
        assert all(s == 0 < m for s, m in scores.values()), scores

    def test_wrong_answers_lose_points_exactly_where_wrong(self, graded):
        wrong = set(yaml.safe_load((WRONG / f"{self.chapter}.yml").read_text()))
        scores = graded(self.chapter, "wrong")
        lost = {name for name, (s, m) in scores.items() if s < m}
        assert lost == wrong, scores


class _FitLmerGrading(_Grading):
    def test_random_intercepts_only_score_zero_where_slopes_are_asked(self, graded):
        """tests/assignments/fit-lmer.yml answers the unbalanced fit with
        (1 | cafe): its fixed effects are close to the right fit's, its
        random effects are not, and the question scores nothing."""
        wrong = yaml.safe_load((WRONG / "fit-lmer.yml").read_text())
        assert "(1 | cafe)" in wrong["unbalanced-fit"]
        score, possible = graded("fit-lmer", "wrong")["unbalanced-fit"]
        assert score == 0 < possible


for _chapter in CHAPTERS:
    _name = "TestGrading" + "".join(w.title() for w in _chapter.split("-"))
    globals()[_name] = type(
        _name, (_FitLmerGrading if _chapter == "fit-lmer" else _Grading,),
        {"chapter": _chapter, "__doc__": f"The grading runs of {_chapter}."})


@pytest.mark.parametrize("chapter", CHAPTERS)
@pytest.mark.book
def test_no_hidden_test_or_solution_in_student_folder(chapter):
    folder = _assignment(chapter)
    qmd = REPO / "book" / f"{chapter}.qmd"
    qs = questions(qmd.read_text(), str(qmd))
    reader = nbformat.read(BUILD / "notebooks" / f"{chapter}.ipynb", as_version=4)
    assert leaks(folder / "student", qs, reader) == []
    # and the instructor's copy does hold them: the check looks in the right place
    assert leaks(folder / "instructor", qs, reader)


def test_timing_script_refuses_a_build_without_assignments(tmp_path, capsys):
    """scripts/time_assignments.py (the instructors' guide reads what it
    writes) names the missing assignments instead of writing an empty table."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "time_assignments", REPO / "scripts" / "time_assignments.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit):
        script.main(["--build", str(tmp_path), "--chapters", "cafes",
                     "--out", str(tmp_path / "bench")])
    assert "no built assignment ['cafes']" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


def test_saved_timings_cover_every_assignment():
    """The instructors' guide prints benchmarks/assignments.csv: one
    instructor run per assignment, full marks, with when and at what load."""
    import pandas as pd

    timings = pd.read_csv(REPO / "benchmarks" / "assignments.csv")
    assert sorted(timings["chapter"]) == CHAPTERS
    assert (timings["score"] == timings["possible"]).all()
    assert (timings["seconds"] > 0).all() and timings["load_before"].notna().all()
