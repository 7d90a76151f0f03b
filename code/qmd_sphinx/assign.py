"""Chapters' exercises as otter-grader assignments.

A chapter turns an exercise into an assignment question with a hidden div
right after the exercise (and its solution), written once in the ``.qmd``::

    ::: {.content-hidden .otter}
    ```otter
    name: afternoon-wait
    points: 2
    ```

    ```python
    # answer
    afternoon_wait = truth.alpha + truth.beta  # SOLUTION
    ```

    ```python
    # test
    assert isinstance(afternoon_wait, float), "a number, in minutes"
    ```

    ```python
    # hidden test
    assert abs(afternoon_wait - (truth.alpha + truth.beta)) < 1e-9
    ```
    :::

Quarto hides ``.content-hidden`` in every format and runs no ```` ```python ````
fence; the bridge drops the div (``emit.py``). :func:`questions` reads and
checks the divs (``QmdSyntaxError`` with ``file:line``), :func:`master_notebook`
turns the chapter's reader notebook (``notebooks.py``) into an otter master
notebook, and :func:`assign_chapter` runs ``otter assign`` on it, then grades
the instructor's notebook with ``otter run`` (as a student's submission is
graded) and fails unless it gets full marks. The README of this
package documents the syntax.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from .blocks import Chunk, Div
from .emit import SOLUTION_TAG, parse
from .errors import QmdSyntaxError

CONFIG_KEYS = {"name", "points", "manual"}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
ROLES = ("answer", "test", "hidden test")
FENCE_RE = re.compile(r"^(`{3,})(.*)$")
WORKED_TAG = "worked-solution"  # instructor-only code, empty for the student
SEED_RE = re.compile(r"^SEED\s*=\s*(\d+)\s*$", re.MULTILINE)
SKIP_TAG = "no-assignment"  # `#| tags: [no-assignment]`: not in the assignment
TAGS_RE = re.compile(r"^#\|\s*tags\s*:(.*)$")


@dataclass
class Snippet:
    line: int  # of the fence
    code: str


@dataclass
class Question:
    exercise: str  # exr- label
    line: int  # of the ::: div
    name: str
    points: float
    manual: bool
    answers: list[Snippet] = field(default_factory=list)
    tests: list[Snippet] = field(default_factory=list)
    hidden: list[Snippet] = field(default_factory=list)
    rubric: str = ""

    @property
    def tag(self) -> str:
        """The tag of the question's answer cells in every notebook."""
        return f"answer-{self.name}"


def _div_questions(div: Div, exercise: str, lines: list[str], path: str) -> Question:
    """One otter div (lines ``div.line`` .. ``div.end``, 1-based) -> Question."""

    def err(n, message):
        raise QmdSyntaxError(path, n, message)

    body = list(range(div.line + 1, div.end))  # 1-based line numbers inside
    config, config_line = None, div.line
    snippets: list[tuple[str, Snippet]] = []
    text: list[str] = []
    k = 0
    while k < len(body):
        n = body[k]
        line = lines[n - 1]
        m = FENCE_RE.match(line)
        if not m:
            if line.strip():
                text.append(line)
            k += 1
            continue
        fence, info = m[1], m[2].strip()
        end = next((j for j in range(k + 1, len(body))
                    if lines[body[j] - 1].strip() == fence), None)
        if end is None:
            err(n, "code fence opened here is never closed inside the otter div")
        content = [lines[body[j] - 1] for j in range(k + 1, end)]
        k = end + 1
        if info == "otter":
            if config is not None:
                err(n, "a second ```otter config in one question")
            try:
                config = yaml.safe_load("\n".join(content))
            except yaml.YAMLError as exc:
                err(n, f"the ```otter config is not valid YAML: {exc}")
            config_line = n
            if not isinstance(config, dict):
                err(n, "the ```otter config must be a mapping "
                    "(name:, points:, manual:)")
            continue
        if info != "python":
            err(n, f"```{info} fence in an otter question: only ```otter (the "
                "config) and ```python (answer, test, hidden test) are read")
        if config is None:
            err(n, "the ```otter config must come first in the otter div")
        head = content[0].strip() if content else ""
        role = head.lstrip("#").strip().lower() if head.startswith("#") else ""
        if role not in ROLES:
            err(n, "a ```python fence in an otter question starts with "
                "'# answer', '# test' or '# hidden test', got " + repr(head))
        code = "\n".join(content[1:]).strip("\n")
        if not code.strip():
            err(n, f"empty '# {role}' fence")
        snippets.append((role, Snippet(n, code)))
    if config is None:
        err(div.line, "otter question without a ```otter config (name:, points:)")
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        err(config_line, f"unknown otter config key(s) {', '.join(sorted(unknown))}: "
            "only name, points and manual")
    name = config.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        err(config_line, f"otter question name {name!r}: lower-case words joined "
            "by '-' (e.g. afternoon-wait)")
    points = config.get("points")
    if isinstance(points, bool) or not isinstance(points, int | float) or points <= 0:
        err(config_line, f"points must be a positive number, got {points!r}")
    manual = config.get("manual", False)
    if not isinstance(manual, bool):
        err(config_line, f"manual must be true or false, got {manual!r}")
    q = Question(exercise, div.line, name, points, manual)
    for role, snippet in snippets:
        {"answer": q.answers, "test": q.tests, "hidden test": q.hidden}[role].append(
            snippet)
    if manual:
        if snippets:
            err(snippets[0][1].line, "a manual question has no answer or test "
                "fences: its model answer is the exercise's solution, and the "
                "text of the div is its rubric")
        if not text:
            err(div.line, "a manual question needs a rubric: the text of the "
                "otter div (what earns the points)")
        q.rubric = "\n".join(text).strip()
    else:
        if text:
            err(div.line, "text in an autograded otter question: only fences "
                "(a rubric belongs to a 'manual: true' question)")
        if not q.answers:
            err(div.line, f"autograded question {name!r} has no '# answer' fence")
        if not q.tests or not q.hidden:
            err(div.line, f"autograded question {name!r} needs at least one "
                "'# test' (the student runs it) and one '# hidden test'")
        for a in q.answers:
            if "SOLUTION" not in a.code:
                err(a.line, "an answer fence marks its solution: "
                    "'x = ...  # SOLUTION', or '# BEGIN SOLUTION' ... "
                    "'# END SOLUTION' lines")
    return q


def _skipped(chunk: Chunk) -> bool:
    """Whether a chunk's ``#|`` options tag it ``no-assignment`` (the reader,
    ``emit.py``, checks the option's form)."""
    for _, line in chunk.lines:
        if not line.startswith("#|"):
            if line.startswith("%%"):
                continue
            return False
        m = TAGS_RE.match(line)
        if m:
            try:
                value = yaml.safe_load(m[1])
            except yaml.YAMLError:
                return False
            return isinstance(value, list) and SKIP_TAG in value
    return False


def _walk(items):
    """The parsed items, and those inside divs, in order."""
    for item in items:
        yield item
        if isinstance(item, Div):
            yield from _walk(item.children)


def skipped_chunks(text: str, path: str) -> list[Chunk]:
    """The chapter's code chunks tagged ``no-assignment``, checked: such a
    chunk needs an assignment to be left out of, and must not set the
    assignment's ``SEED``."""
    _, items = parse(text, path)
    found = [c for c in _walk(items) if isinstance(c, Chunk) and _skipped(c)]
    for c in found:
        if any(SEED_RE.match(s) for _, s in c.lines):
            raise QmdSyntaxError(path, c.line, "a chunk that sets SEED (the "
                                 "autograder's seed variable) cannot be "
                                 f"tagged {SKIP_TAG}")
    return found


def questions(text: str, path: str) -> list[Question]:
    """The otter questions of a chapter, checked; [] when it has none.

    A chapter with questions has one per exercise, each right after its
    exercise (and the exercise's solution)."""
    lines = text.splitlines()
    _, items = parse(text, path)
    skipped = skipped_chunks(text, path)
    found: list[Question] = []
    exercises: list[Div] = []
    last: str | None = None  # the exercise the next otter div may follow
    for item in items:
        if isinstance(item, Div) and item.kind == "exercise":
            exercises.append(item)
            last = item.attrs["label"]
        elif isinstance(item, Div) and item.kind == "solution":
            pass
        elif isinstance(item, Div) and item.kind == "otter":
            if last is None:
                raise QmdSyntaxError(path, item.line, "an otter question must follow "
                                     "its exercise (and the exercise's solution)")
            found.append(_div_questions(item, last, lines, path))
            last = None
        elif not (hasattr(item, "blank") and item.blank):
            last = None
    if not found:
        if skipped:
            raise QmdSyntaxError(path, skipped[0].line, f"tags: [{SKIP_TAG}] "
                                 "leaves a cell out of the chapter's assignment, "
                                 "but the chapter has no otter questions")
        return []
    names: dict[str, int] = {}
    for q in found:
        if q.name in names:
            raise QmdSyntaxError(path, q.line, f"otter question {q.name!r} is "
                                 f"already defined at line {names[q.name]}")
        names[q.name] = q.line
    graded = {q.exercise for q in found}
    for ex in exercises:
        if ex.attrs["label"] not in graded:
            raise QmdSyntaxError(path, ex.line, f"exercise {ex.attrs['label']} has "
                                 "no otter question: in a chapter with an assignment "
                                 "every exercise has one (manual: true for prose)")
    return found


def _raw(source: str):
    return nbformat.v4.new_raw_cell(source)


def _code(source: str, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _test_cell(snippet: Snippet, hidden: bool):
    source = snippet.code
    if hidden:
        config = '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
        source = config + source
    return _code(source)


def _split_magic(source: str) -> tuple[str, str]:
    """(the cell magic line with its newline, or "", the rest)."""
    if source.startswith("%%"):
        first, _, rest = source.partition("\n")
        return first + "\n", rest
    return "", source


#: the Python names an R cell takes in (``-i a,b``) and gives back (``-o x``)
R_NAMES = re.compile(r"(?:^|\s)(-i|--input|-o|--output)[ =]+([\w,]+)")


def _worked_solution(cells):
    """The chapter's solution cells for the instructor only: markdown is a
    solution cell otter drops; code is wrapped so nothing of it is left."""
    out = []
    for cell in cells:
        cell = copy.deepcopy(cell)
        tags = [t for t in cell.metadata.get("tags", []) if t != SOLUTION_TAG]
        cell.metadata["tags"] = tags
        if not tags:
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.metadata["tags"] = [*tags, WORKED_TAG]
            # a cell magic (%%R) must stay the cell's first line
            magic, rest = _split_magic(cell.source)
            cell.source = (magic + "# BEGIN SOLUTION NO PROMPT\n" + rest
                           + "\n# END SOLUTION")
            cell.outputs = []
            cell.execution_count = None
        out.append(cell)
    return out


def _exercise_index(cells, label: str) -> int:
    anchor = f'<a id="{label}"></a>'
    hits = [i for i, c in enumerate(cells)
            if c.cell_type == "markdown" and anchor in c.source]
    if len(hits) != 1:
        raise ValueError(f"exercise {label}: {len(hits)} cells of the chapter's "
                         "notebook hold its anchor (expected 1)")
    return hits[0]


def assignment_config(name: str, seed: int | None) -> str:
    config = {
        "name": name,
        "init_cell": True,
        "check_all_cell": True,
        "export_cell": False,
        # the solutions are graded once, by assign_chapter, with otter run
        "run_tests": False,
        "solutions_pdf": False,
        "generate": True,
        "tests": {"files": True},
    }
    if seed is not None:
        config["seed"] = {"variable": "SEED", "autograder_value": seed,
                          "student_value": seed}
    return "# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False)


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a code cell binds, names it reads); an R cell (``%%R``) reads
    the Python names of its ``-i`` and binds those of its ``-o`` (the names
    of R's own session are not followed), and IPython's ``%`` lines are
    skipped."""
    if source.lstrip().startswith("%%"):
        bound, read = set(), set()
        for flag, names in R_NAMES.findall(source.lstrip().splitlines()[0]):
            (read if flag in ("-i", "--input") else bound).update(
                n for n in names.split(",") if n)
        return bound, read
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    tree = ast.parse(code)
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return bound, read


def check_left_out(cells, name: str) -> None:
    """Refuse a notebook whose kept code reads a name that only cells tagged
    ``no-assignment`` bind (otter executes on past errors, so the grading
    would silently run without it)."""
    only_dropped: dict[str, int] = {}  # name -> index of the dropped cell
    bound_kept: set[str] = set()
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        if SKIP_TAG in cell.metadata.get("tags", []):
            for n in bound - bound_kept:
                only_dropped.setdefault(n, i)
            continue
        missing = sorted((read - bound_kept - bound) & set(only_dropped))
        if missing:
            first = cell.source.strip().splitlines()[0]
            raise ValueError(
                f"{name}: the cell starting {first!r} reads "
                f"{', '.join(missing)}, which only cells tagged {SKIP_TAG} "
                "define: tag this cell too, or keep the cell that defines it")
        bound_kept |= bound
        for n in bound:
            only_dropped.pop(n, None)


def master_notebook(reader_nb, qs: list[Question], name: str):
    """The otter master notebook: the chapter's reader notebook (with
    solutions) with each exercise made a question, without the cells tagged
    ``no-assignment``."""
    nb = copy.deepcopy(reader_nb)
    check_left_out(list(nb.cells) + [_code(c.code) for q in qs
                                     for c in (*q.answers, *q.tests, *q.hidden)],
                   name)
    # the cells the chapter left out of its assignment (demonstrations the
    # answers do not need): otter assign and every grading run skip them
    cells = [c for c in nb.cells if SKIP_TAG not in c.metadata.get("tags", [])]
    seeds = {int(m[1]) for c in cells if c.cell_type == "code"
             for m in SEED_RE.finditer(c.source)}
    if len(seeds) > 1:
        raise ValueError(f"{name}: SEED is set to different values {sorted(seeds)}")
    by_exercise = {q.exercise: q for q in qs}
    starts = {_exercise_index(cells, q.exercise): q for q in qs}
    out = [_raw(assignment_config(name, next(iter(seeds), None)))]
    i = 0
    while i < len(cells):
        if i not in starts:
            cell = cells[i]
            if SOLUTION_TAG in cell.metadata.get("tags", []):
                raise ValueError(f"{name}: a solution cell outside any exercise")
            out.append(cell)
            i += 1
            continue
        q = starts[i]
        prompt = cells[i]
        j = i + 1
        while j < len(cells) and SOLUTION_TAG in cells[j].metadata.get("tags", []):
            j += 1
        worked = _worked_solution(cells[i + 1 : j])
        config = {"name": q.name, "points": q.points}
        if q.manual:
            config["manual"] = True
        out += [_raw("# BEGIN QUESTION\n" + yaml.safe_dump(config, sort_keys=False)),
                prompt, _raw("# BEGIN SOLUTION")]
        if q.manual:
            out += worked
            out.append(nbformat.v4.new_markdown_cell(
                "**Rubric** (" + f"{q.points:g} points): " + q.rubric))
            out.append(_raw("# END SOLUTION"))
        else:
            # the worked solution first: its names must not overwrite the
            # answers the tests read
            out += worked
            out += [_code(a.code, [q.tag]) for a in q.answers]
            out.append(_raw("# END SOLUTION"))
            out.append(_raw("# BEGIN TESTS"))
            out += [_test_cell(t, False) for t in q.tests]
            out += [_test_cell(t, True) for t in q.hidden]
            out.append(_raw("# END TESTS"))
        out.append(_raw("# END QUESTION"))
        i = j
    missing = set(by_exercise) - {q.exercise for q in starts.values()}
    assert not missing, missing
    nb.cells = out
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python",
                                 "name": "python3"}
    return nb


def _drop_emptied(nb):
    """The student's notebook without the code cells of worked solutions,
    which otter empties but keeps."""
    def emptied(cell):
        return (cell.cell_type == "code" and not cell.source.strip()
                and WORKED_TAG in cell.metadata.get("tags", []))
    nb.cells = [c for c in nb.cells if not emptied(c)]
    return nb


class AssignError(RuntimeError):
    pass


#: the file in an assignment's folder that records what it was built from
KEY_FILE = ".assign-key"
#: the file beside it with the instructor notebook's grades: the assignment's
#: key, the seconds of the grading run and each question's (score, possible)
GRADED_FILE = "graded-instructor.json"


def assignment_key(master, inputs: str = "") -> str:
    """What an assignment is built from: the master notebook's cell sources
    (outputs aside: otter executes the notebook again), otter's version and
    ``inputs``, the caller's hash of everything else the solutions read
    (the package's code, saved results)."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for part in (version("otter-grader"), inputs, *(f"{c.cell_type}\0{c.source}"
                                              for c in master.cells)):
        digest.update(part.encode("utf-8") + b"\1")
    return digest.hexdigest()


def assign_chapter(qmd: Path, reader_nb: Path, out: Path, name: str,
                   timeout: float = 600, inputs: str | None = None) -> bool:
    """``out/{student,autograder,instructor}/`` for one chapter.

    After ``otter assign``, the instructor notebook is graded with ``otter
    run`` against the autograder zip, the way a student's submission is: a
    question short of full marks fails the build, with otter's scores. The
    grades are written to :data:`GRADED_FILE`. With ``inputs`` (a hash of
    what the solutions read besides the notebook), an assignment already
    built and graded from the same master notebook and inputs is kept as it
    is; returns whether otter assign ran."""
    qmd, reader_nb, out = Path(qmd), Path(reader_nb), Path(out)
    qs = questions(qmd.read_text(encoding="utf-8"), str(qmd))
    if not qs:
        raise AssignError(f"{qmd}: no otter questions")
    master = master_notebook(nbformat.read(reader_nb, as_version=4), qs, name)
    key = assignment_key(master, inputs) if inputs is not None else None
    built = [out / "student" / f"{name}.ipynb", out / "instructor" / f"{name}.ipynb"]
    if (key is not None and (out / KEY_FILE).is_file()
            and (out / KEY_FILE).read_text(encoding="utf-8").strip() == key
            and all(p.is_file() for p in built) and (out / GRADED_FILE).is_file()
            and list((out / "autograder").glob(f"{name}-autograder_*.zip"))):
        return False
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix=f"assign-{name}-") as tmp:
        src = Path(tmp) / f"{name}.ipynb"
        nbformat.write(master, src)
        result = Path(tmp) / "dist"
        cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs",
               str(src), str(result)]
        try:
            run = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssignError(f"{qmd}: otter assign took more than "
                              f"{timeout:.0f} s") from None
        if run.returncode != 0:
            raise AssignError(f"{qmd}: otter assign failed (a solution fails its "
                              f"tests, or the master is malformed):\n"
                              f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}")
        out.mkdir(parents=True)
        student = result / "student" / f"{name}.ipynb"
        nbformat.write(_drop_emptied(nbformat.read(student, as_version=4)), student)
        shutil.copytree(result / "student", out / "student")
        shutil.copytree(result / "autograder", out / "autograder")
        (out / "instructor").mkdir()
        shutil.copy2(result / "autograder" / f"{name}.ipynb",
                     out / "instructor" / f"{name}.ipynb")
        scores, seconds = otter_run(out, out / "instructor" / f"{name}.ipynb",
                                    Path(tmp) / "graded", timeout=timeout)
    short = {q: v for q, v in scores.items() if not v[0] == v[1] > 0}
    if short or not scores:
        shutil.rmtree(out)
        raise AssignError(f"{qmd}: the instructor notebook does not get full "
                          "marks (a solution fails its tests); otter run gave "
                          f"(score, possible) {short or scores}")
    record = {"key": key, "seconds": round(seconds, 1),
              "scores": {q: list(v) for q, v in sorted(scores.items())}}
    (out / GRADED_FILE).write_text(json.dumps(record, indent=1) + "\n",
                                   encoding="utf-8")
    if key is not None:  # written last: a build cut short leaves no key
        (out / KEY_FILE).write_text(key + "\n", encoding="utf-8")
    return True


def _solution_lines(q: Question) -> list[str]:
    """The solution text of an answer fence, line by line."""
    found, inside = [], False
    for a in q.answers:
        for line in a.code.splitlines():
            s = line.strip()
            if s.startswith("# BEGIN SOLUTION"):
                inside = True
            elif s.startswith("# END SOLUTION"):
                inside = False
            elif inside and s:
                found.append(s)
            elif s.endswith("# SOLUTION"):
                found.append(s[: -len("# SOLUTION")].split("=", 1)[-1].strip())
    return found


def secrets(qs: list[Question], reader_nb) -> list[str]:
    """Text that must not reach the student: hidden tests, answers, rubrics
    and the lines of the chapter's worked solutions (reader_nb: the
    chapter's reader notebook)."""
    found = []
    for q in qs:
        found += [s.strip() for t in q.hidden for s in t.code.splitlines()]
        found += _solution_lines(q)
        found += q.rubric.splitlines()
    public = []  # what the chapter shows outside its solutions
    for cell in reader_nb.cells:
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            found += cell.source.splitlines()
        else:
            public.append(cell.source)
    public = "\n".join(public)
    # short lines ("else:", "$$") say nothing about an answer
    return sorted({s.strip() for s in found
                   if len(s.strip()) >= 16 and s.strip() not in public})


def leaks(student: Path, qs: list[Question], reader_nb) -> list[tuple[str, str]]:
    """(file, text) for every secret found in the files under ``student``."""
    texts = {}
    for path in sorted(Path(student).rglob("*")):
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            texts[str(path)] = "\n".join(c.source for c in nb.cells)
        elif path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    return [(f, s) for s in secrets(qs, reader_nb) for f, t in texts.items()
            if s in t]


def otter_run(folder: Path, submission: Path, out: Path,
              timeout: float = 240) -> tuple[dict[str, tuple[float, float]], float]:
    """Grade one submission with ``otter run`` (no Docker) against the
    assignment in ``folder`` (``autograder/*-autograder_*.zip``), under
    ``timeout`` seconds. Returns ({question: (score, possible)}, seconds)."""
    import time

    zips = sorted((Path(folder) / "autograder").glob("*-autograder_*.zip"))
    if len(zips) != 1:
        raise AssignError(f"{folder}/autograder: expected one autograder zip, "
                          f"found {len(zips)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["timeout", str(int(timeout)), sys.executable, "-m", "otter", "run",
           "-a", str(zips[0]), "-o", str(out), str(submission)]
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=out)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise AssignError(f"{' '.join(cmd)} failed (exit {run.returncode}; 124 "
                          f"is the timeout):\n{run.stdout[-4000:]}\n"
                          f"{run.stderr[-4000:]}")
    results = json.loads((out / "results.json").read_text())
    scores = {t["name"]: (t["score"], t["max_score"]) for t in results["tests"]
              if t["name"] != "Public Tests"}
    return scores, seconds
