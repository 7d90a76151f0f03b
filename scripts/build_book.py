#!/usr/bin/env python
"""Build a Quarto book with Sphinx: site, PDF and notebooks.

    .venv/bin/python scripts/build_book.py --root . --out _build
    .venv/bin/python scripts/build_book.py --root . --out _build \\
        --chapters book/cafes.qmd --formats html

Outputs (under --out):
  html/                     the site (sphinx-book-theme), with downloads/
  pdf/NAME.pdf              the book (Sphinx LaTeX builder, xelatex, latexmk),
                            named by _quarto.yml (book: output-file:, else
                            the title: one-mixed-model-two-ways.pdf)
  pdf/NAME-student.pdf      the student edition: the same without the
                            exercises' solutions
  notebooks/NAME.ipynb      one executed notebook per chapter
  notebooks/student/        the same without the cells tagged `solution`
  wheel/multilevel-*.whl    the package the notebooks install (also in the
                            site's downloads/)
  assignments/NAME/         otter-grader assignment of each chapter with
                            otter questions: student/, autograder/ (zip),
                            instructor/ (solutions and rubrics)
  .jupyter_cache/           the execution cache shared by the builds
  .executed-code-hash       the code the cache's results were computed with

Warnings are errors (sphinx-build -W --keep-going). Any failure exits
non-zero with a message naming the step that failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORMATS = ("html", "pdf", "notebooks", "assignments")


class BuildError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"build_book: {message}", flush=True)


#: what every kernel prints on start (ipykernel >= 6.29 on a TCP connection to
#: its own machine): noise, not a problem of the book
KERNEL_NOISE = "Kernel is running over TCP without encryption"


def _run(cmd: list[str], step: str, cwd: Path | None = None, env=None) -> None:
    """Run ``cmd``; its stderr is passed on without the kernels' TCP notice."""
    _say(f"{step}: {' '.join(map(str, cmd))}")
    with subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE,
                          text=True, errors="replace") as proc:
        for text in proc.stderr:
            if KERNEL_NOISE not in text:
                sys.stderr.write(text)
                sys.stderr.flush()
    if proc.returncode != 0:
        raise BuildError(f"{step} failed (exit {proc.returncode}); see above")


def _sphinx(builder: str, root: Path, out: Path, target: Path, env,
            doctrees: str | None = None) -> None:
    cmd = [
        sys.executable, "-m", "sphinx",
        "-b", builder,
        "-W", "--keep-going",
        "-q",
        "-c", str(REPO),
        "-d", str(out / ".doctrees" / (doctrees or builder)),
        str(root), str(target),
    ]  # fmt: skip
    _run(cmd, f"sphinx {builder}", env=env)


#: the execution cache of a build, where myst-nb puts it (next to the builder's
#: output folder, e.g. OUT/html)
CACHE_DIR = ".jupyter_cache"
#: the hash of the chapters' code that the execution cache last ran with
CODE_HASH_FILE = ".executed-code-hash"


def _code_hash(env) -> str:
    from qmd_sphinx.sphinx_reader import code_hash

    dirs = [Path(d) for d in env["QMD_SPHINX_CODE"].split(os.pathsep) if d]
    return code_hash([d for d in dirs if d.is_dir()])


def _holds_bibliography(path: Path) -> bool:
    return re.search(r"^:::+ *\{#refs\}", path.read_text(encoding="utf-8"),
                     re.M) is not None


#: a chapter's MCMC fits (what makes a chapter slow to execute)
MCMC_CALL = re.compile(r"\bfit_pymc\(|\bpm\.sample\(")


def _guess_seconds(text: str) -> float:
    """A chapter's execution time guessed from what it calls, for a build with
    no recorded times (a clean clone): a kernel's start, about 8 s per MCMC
    fit, 2.5 s per lme4 fit or R cell, and a little per line. Rough: it only
    has to put the long chapters into different groups."""
    mcmc = len(MCMC_CALL.findall(text))
    r = len(re.findall(r"\bfit_lmer\(|\blmer\(|^%%R\b", text, re.M))
    return 3 + 8 * mcmc + 2.5 * r + len(text.splitlines()) / 100


#: Each chapter's execution seconds as a build measured them, saved with the
#: sources (``make execution-seconds``): a clean clone, which has timed
#: nothing yet, shares its chapters between Sphinx runs by these.
SAVED_SECONDS = Path("benchmarks") / "execution-seconds.json"


def _recorded_seconds(out: Path) -> dict[str, float]:
    """Seconds each chapter's execution took, as the execution cache of the
    last build recorded them, by chapter name."""
    seconds: dict[str, float] = {}
    cache = out / CACHE_DIR
    if cache.is_dir():
        from jupyter_cache import get_cache

        for record in get_cache(str(cache)).list_cache_records():
            known = record.data.get("execution_seconds")
            if known is not None:
                seconds[Path(record.uri).stem] = float(known)
    return seconds


def _saved_seconds(root: Path) -> dict[str, float]:
    """The seconds in ``root/SAVED_SECONDS`` by chapter name ({} without the
    file); a file that is not such a table is refused, naming it."""
    import json

    path = root / SAVED_SECONDS
    if not path.is_file():
        return {}
    try:
        seconds = json.loads(path.read_text(encoding="utf-8"))["seconds"]
        return {Path(k).stem: float(v) for k, v in seconds.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(
            f"{path}: expected {{\"seconds\": {{chapter: seconds}}}} ({exc}); "
            "rewrite it with `make execution-seconds` or delete it") from exc


def save_execution_seconds(root: Path, out: Path) -> Path:
    """Write what the execution cache of ``out`` recorded for the book's
    chapters to ``root/SAVED_SECONDS``, with when, where and from which
    commit they were measured. A chapter without code has no record and is
    left out; refuses when no chapter has one (build the book first)."""
    import datetime
    import json

    from qmd_sphinx.quarto_config import load_quarto

    book = load_quarto(root.resolve())
    recorded = _recorded_seconds(out)
    chapters = [c.path for c in book.chapters]
    chapters = [c for c in chapters if Path(c).stem in recorded]
    if not chapters:
        raise BuildError(
            f"no execution time recorded in {out / CACHE_DIR} for any "
            "chapter; run `make book` first")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root,
                            capture_output=True, text=True).stdout.strip()
    record = {
        "what": "seconds each chapter took to execute in `make book`, "
                "in Sphinx runs side by side; read by a clean build to "
                "share the chapters between its runs",
        "date": datetime.date.today().isoformat(),
        "git_commit": commit or None,
        "cores": os.cpu_count(),
        "seconds": {c: round(recorded[Path(c).stem], 1) for c in chapters},
    }
    path = root / SAVED_SECONDS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def _execution_groups(book, out: Path, jobs: int) -> list[list[str]]:
    """The chapters in ``jobs`` groups of about equal execution time (longest
    first, each to the lightest group): the seconds the last build recorded
    in the execution cache, else those saved with the sources
    (:data:`SAVED_SECONDS`), else a guess from the chapter's code. Every
    chapter executes (each has the hidden cell with the code's hash), the
    index in every group (each sub-book has it), and so does the chapter
    holding the bibliography (the citations of every sub-book need it)."""
    seconds = {**_saved_seconds(book.root), **_recorded_seconds(out)}
    spread, shared = [], []
    for chapter in book.chapters[1:]:
        path = book.root / chapter.path
        (shared if _holds_bibliography(path) else spread).append(chapter.path)

    def cost(rel: str) -> float:
        known = seconds.get(Path(rel).stem)
        if known is not None:
            return float(known)
        return _guess_seconds((book.root / rel).read_text(encoding="utf-8"))

    groups: list[list[str]] = [[] for _ in range(min(jobs, len(spread)))]
    loads = [0.0] * len(groups)
    for rel in sorted(spread, key=cost, reverse=True):
        i = loads.index(min(loads))
        groups[i].append(rel)
        loads[i] += cost(rel)
    return [g + shared for g in groups]


_ECHO_LOCK = threading.Lock()


def _echo_lines(stream) -> None:
    for line in stream:
        with _ECHO_LOCK:
            sys.stdout.write(line)
            sys.stdout.flush()


def _execute_in_parallel(root: Path, out: Path, book, env, jobs: int) -> bool:
    """Execute the chapters in ``jobs`` Sphinx runs side by side, then put
    what they executed into OUT/.jupyter_cache, where the builds that follow
    find every chapter. Each run builds a sub-book (the dummy builder writes
    nothing) with its own execution cache in OUT/.execute-N/; the cache key
    is the chapter's code cells, the same in a sub-book and in the book.

    Only when the code of the chapters changed (the hash of the package the
    chapters import) or there is no cache: after a prose edit the one chapter
    that changed executes in the main build. Returns whether it ran."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache, stamp = out / CACHE_DIR, out / CODE_HASH_FILE
    code = _code_hash(env)
    fresh = (cache.is_dir() and stamp.is_file()
             and stamp.read_text(encoding="utf-8").strip() == code)
    groups = _execution_groups(book, out, jobs)
    if jobs < 2 or fresh or len(groups) < 2:
        return False
    _say(f"executing {len(set().union(*groups))} chapter(s) in {len(groups)} "
         "Sphinx runs side by side: " + " | ".join(
             ", ".join(Path(c).stem for c in g) for g in groups))
    runs = []
    for i, group in enumerate(groups):
        sub = out / f".execute-{i}"
        shutil.rmtree(sub, ignore_errors=True)
        cmd = [sys.executable, "-m", "sphinx", "-b", "dummy", "-W", "--keep-going",
               "-q", "-c", str(REPO), "-d", str(sub / ".doctrees"), str(root),
               str(sub / "dummy")]
        sub_env = dict(env, QMD_SPHINX_CHAPTERS=",".join(group))
        sub.mkdir(parents=True)
        with open(sub / "stderr.log", "w") as err_log:
            proc = subprocess.Popen(cmd, env=sub_env, stdout=subprocess.PIPE,
                                    stderr=err_log, text=True, errors="replace")
        # the runs' progress lines (one a chapter) as they come
        echo = threading.Thread(target=_echo_lines, args=(proc.stdout,))
        echo.start()
        runs.append((sub, proc, echo))
    failed = []
    for sub, proc, echo in runs:  # a run's messages in one piece, after it ended
        proc.wait()
        echo.join()
        text = (sub / "stderr.log").read_text(encoding="utf-8", errors="replace")
        sys.stderr.write("".join(line for line in text.splitlines(keepends=True)
                                 if KERNEL_NOISE not in line))
        sys.stderr.flush()
        if proc.returncode != 0:
            failed.append(f"{sub.name} (exit {proc.returncode})")
    if failed:
        raise BuildError(f"executing the chapters failed in {', '.join(failed)}; "
                         "see above")
    target = get_cache(str(cache))
    copied = set()
    for sub, _, _ in runs:
        source = get_cache(str(sub / CACHE_DIR))
        for record in source.list_cache_records():
            bundle = source.get_cache_bundle(record.pk)
            target.cache_notebook_bundle(
                CacheBundleIn(bundle.nb, record.uri, data=dict(record.data)),
                check_validity=False, overwrite=True)
            copied.add(record.uri)
        shutil.rmtree(sub)
    # the cache holds this code's results now, even if a later step fails
    stamp.write_text(code + "\n", encoding="utf-8")
    _say(f"{len(copied)} executed chapter(s) put into {cache}")
    return True


def _latex_to_pdf(latex_dir: Path, out: Path, name: str,
                  tex_name: str | None = None) -> Path:
    """xelatex on ``latex_dir``'s ``.tex`` (named as the PDF, or ``tex_name``)
    into ``out/pdf/name``."""
    tex = latex_dir / f"{Path(tex_name or name).stem}.tex"
    if not tex.is_file():
        raise BuildError(f"the LaTeX builder wrote no {tex}")
    if shutil.which("latexmk") is None or shutil.which("xelatex") is None:
        raise BuildError(
            "latexmk/xelatex not found; install them with: apt-get install "
            "latexmk texlive-xetex texlive-fonts-recommended fonts-freefont-otf"
        )
    cmd = [
        "latexmk", "-xelatex", "-interaction=nonstopmode", "-halt-on-error",
        "-file-line-error", tex.name,
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=latex_dir, capture_output=True, text=True)
    log = tex.with_suffix(".log")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BuildError(f"latexmk failed (exit {result.returncode}):\n{tail}")
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    for bad in ("There were undefined references", "Citation `"):
        if bad in text:
            raise BuildError(f"LaTeX reports '{bad}' in {log}")
    _check_page_width(text, tex)
    pdf_dir = out / "pdf"
    pdf_dir.mkdir(parents=True, exist_ok=True)
    target = pdf_dir / name
    shutil.copy2(tex.with_suffix(".pdf"), target)
    return target


def _references(out: Path) -> dict:
    """The numbering the Sphinx run wrote (what cross-references print)."""
    from qmd_sphinx.numbering import REFERENCES_FILE, load_targets

    builders = ("html", "latex", "dummy")
    found = [out / ".doctrees" / b / REFERENCES_FILE for b in builders]
    found = [p for p in found if p.is_file()]
    if found:  # the latest run's
        return load_targets(max(found, key=lambda p: p.stat().st_mtime))
    raise BuildError(f"no {REFERENCES_FILE} under {out / '.doctrees'}: "
                     "the Sphinx build did not finish")


def _check_page_width(log: str, tex: Path) -> None:
    """Report the boxes that stick out of the page; fail above the limit."""
    from qmd_sphinx.latexlog import OVERFULL_LIMIT_PT, check_overfull, overfull_boxes

    boxes = [b for b in overfull_boxes(log) if b.box == "hbox"]
    widest = max((b.points for b in boxes), default=0.0)
    _say(f"pdf: {len(boxes)} overfull \\hbox(es), the widest {widest:.1f}pt "
         f"(limit {OVERFULL_LIMIT_PT:g}pt)")
    lines = tex.read_text(encoding="utf-8", errors="replace").splitlines()
    problems = check_overfull(log, str(tex), lines)
    if problems:
        raise BuildError(
            f"{len(problems)} line(s) of the PDF run past the text width (a wide "
            "table: fewer or shorter columns; a code line: break it):\n"
            + "\n".join(problems)
        )


def _left_out_labels(whole, book) -> frozenset[str]:
    """The labels defined in the chapters of ``whole`` that ``book`` leaves out."""
    from qmd_sphinx.reader import scan

    built = {c.path for c in book.chapters}
    labels: set[str] = set()
    for chapter in whole.chapters:
        if chapter.path not in built:
            path = whole.root / chapter.path
            text = path.read_text(encoding="utf-8")
            labels.update(label.name for label in scan(text, str(path)).defines)
    return frozenset(labels)


def _export_notebooks(out: Path, book, whole) -> list[Path]:
    """Both notebooks of every chapter, in Markdown every Jupyter renders
    (references linked to ``book: site-url:``, else relative to the site).
    ``whole``: the whole book, of which ``book`` may be a sub-book."""
    from qmd_sphinx.html import notebook_name
    from qmd_sphinx.nbmarkdown import Bibliography
    from qmd_sphinx.notebooks import export_chapter, notebook_citations, read_chapter
    from qmd_sphinx.wheel import load_spec

    references = _references(out)
    executed = out / "jupyter_execute"
    cache = out / ".jupyter_cache"  # myst-nb's default: next to html/
    chapters = {c.docname: read_chapter(executed / f"{c.docname}.ipynb", cache)
                for c in book.chapters}
    cited: list[str] = []  # what the book cites, as a bibliography lists it
    for nb in chapters.values():
        cited += [k for k in notebook_citations(nb) if k not in cited]
    bibliography = Bibliography([book.root / b for b in book.bibliography])
    left_out = _left_out_labels(whole, book)
    written = []
    for docname, nb in chapters.items():
        name = notebook_name(docname)
        target = out / "notebooks" / name
        export_chapter(
            executed / f"{docname}.ipynb",
            target,
            out / "notebooks" / "student" / name,
            references=references,
            site_url=book.site_url,
            bibliography=bibliography,
            book_cited=cited,
            nb=nb,
            left_out=left_out,
            wheel=load_spec(REPO).filename,  # what the first cell installs
        )
        written.append(target)
    return written


def _wheel(out: Path) -> Path:
    """The package the chapters import, as a wheel (pyproject.toml's
    [tool.multilevel-wheel]): what the notebooks' setup cell installs."""
    from qmd_sphinx.wheel import build_wheel

    for old in (out / "wheel").glob("*.whl"):  # of another version
        old.unlink()
    return build_wheel(REPO, out / "wheel")
def _assignment_inputs(root: Path, env) -> str:
    """A hash of what an assignment's solutions and tests read besides its
    notebook: the package's code and the saved results under ``results/`` and
    ``benchmarks/`` (not the build's own execution times, which no chapter
    reads)."""
    digest = hashlib.sha256(_code_hash(env).encode())
    for folder in ("results", "benchmarks"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path != root / SAVED_SECONDS:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _build_assignments(out: Path, book, env, jobs: int = 1) -> list[Path]:
    """``otter assign`` on every chapter with otter questions, from its
    reader's notebook (the notebooks step's output); ``jobs`` of them side by
    side (each runs otter in its own process and folder). An assignment whose
    master notebook and inputs are those of its last build is kept."""
    from concurrent.futures import ThreadPoolExecutor

    from qmd_sphinx.assign import assign_chapter, questions
    from qmd_sphinx.html import notebook_name

    inputs = _assignment_inputs(book.root, env)

    def one(chapter) -> Path:
        qmd = book.root / chapter.path
        name = Path(notebook_name(chapter.docname)).stem
        start = time.perf_counter()
        folder = out / "assignments" / name
        ran = assign_chapter(qmd, out / "notebooks" / f"{name}.ipynb", folder, name,
                             inputs=inputs)
        _say(f"assignment {name}: {time.perf_counter() - start:.1f} s "
             + ("(otter assign, solutions graded)" if ran else
                "(unchanged since its last otter assign, kept)"))
        return folder

    chapters = [c for c in book.chapters
                if questions((book.root / c.path).read_text(encoding="utf-8"),
                             str(book.root / c.path))]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, chapters))  # the first failure is raised


def _copy_into_site(out: Path, formats: set[str], pdf_name: str) -> None:
    from qmd_sphinx.html import DOWNLOADS_DIR, NOTEBOOKS_DIR, student_pdf_name

    site = out / "html" / DOWNLOADS_DIR
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted((out / "wheel").glob("*.whl")):
        shutil.copy2(wheel, site / wheel.name)
    if "notebooks" in formats:
        shutil.copytree(out / "notebooks", site / NOTEBOOKS_DIR, dirs_exist_ok=True)
    if "pdf" in formats:
        for name in (pdf_name, student_pdf_name(pdf_name)):
            shutil.copy2(out / "pdf" / name, site / name)


def build_env(root: Path, chapters: list[str] | None, formats: set[str]) -> dict:
    """The environment of the Sphinx runs (and of the kernels they start).

    ``$QMD_SPHINX_CODE``, if set, replaces ``code/multilevel`` (the package
    the chapters import) as the folders hashed into the execution cache key
    (tests point it at a copy they can touch). The bridge (``code/qmd_sphinx``)
    and the checks of the built book (``code/bookcheck``) are not in the key:
    editing them re-reads the chapters but executes nothing again.
    """
    env = dict(os.environ)
    env.update(
        QMD_SPHINX_ROOT=str(root),
        QMD_SPHINX_CHAPTERS=",".join(chapters or []),
        # folders whose *.py files key the execution cache (os.pathsep list)
        QMD_SPHINX_CODE=(
            os.environ.get("QMD_SPHINX_CODE") or str(REPO / "code" / "multilevel")
        ),
        QMD_SPHINX_DOWNLOADS=",".join(sorted(formats & {"notebooks", "pdf"})),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        # The kernels inherit this environment: with MPLBACKEND=Agg (the
        # Makefile's, for tests) a figure is not displayed and its cell has no
        # image. The inline backend is the one a notebook kernel uses.
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    return env


def build(
    root: Path, out: Path, chapters: list[str] | None, formats: set[str],
    jobs: int = 1,
) -> dict[str, float]:
    from qmd_sphinx.html import student_pdf_name
    from qmd_sphinx.quarto_config import load_quarto

    root = root.resolve()
    out = out.resolve()
    whole = load_quarto(root)
    book = whole.subset(chapters)
    out.mkdir(parents=True, exist_ok=True)
    env = build_env(root, chapters, formats)
    times: dict[str, float] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        value = fn(*args)
        times[name] = time.perf_counter() - start
        _say(f"{name} done in {times[name]:.1f} s")
        return value

    if formats & {"html", "pdf", "notebooks", "assignments"}:
        start = time.perf_counter()
        if _execute_in_parallel(root, out, book, env, jobs):
            times["execute"] = time.perf_counter() - start
            _say(f"execute done in {times['execute']:.1f} s")
    if "html" in formats:
        timed("html", _sphinx, "html", root, out, out / "html", env)
    if "pdf" in formats:
        timed("latex", _sphinx, "latex", root, out, out / "latex", env)
        timed("pdf", _latex_to_pdf, out / "latex", out, book.pdf_name)
        # the student edition: the same chapters from the same execution
        # cache, without the exercises' solutions
        timed("latex (student)", _sphinx, "latex", root, out, out / "latex-student",
              dict(env, QMD_SPHINX_SOLUTIONS="hide"), "latex-student")
        timed("pdf (student)", _latex_to_pdf, out / "latex-student", out,
              student_pdf_name(book.pdf_name), book.pdf_name)
    timed("wheel", _wheel, out)
    if "assignments" in formats:  # made from the reader's notebooks
        formats = formats | {"notebooks"}
    if "notebooks" in formats:
        if not formats & {"html", "pdf"}:  # execute the chapters without a site
            timed("execute", _sphinx, "dummy", root, out, out / ".dummy", env)
        timed("notebooks", _export_notebooks, out, book, whole)
    if "assignments" in formats:
        timed("assignments", _build_assignments, out, book, env, jobs)
    if "html" in formats:
        timed("downloads", _copy_into_site, out, formats, book.pdf_name)
    # the code the execution cache now holds the chapters' results for
    (out / CODE_HASH_FILE).write_text(_code_hash(env) + "\n", encoding="utf-8")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="folder holding _quarto.yml (default: .)")
    parser.add_argument("--out", type=Path, default=Path("_build"),
                        help="output folder (default: _build)")
    parser.add_argument("--chapters", nargs="+", default=None, metavar="FILE",
                        help="build a sub-book of these chapter files only")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated subset of html,pdf,notebooks,assignments")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="Sphinx runs that execute the chapters side by "
                             "side after a change of code, and otter assign "
                             "runs side by side (default: 2, or 1 on one "
                             "core; 1: one after another)")
    parser.add_argument("--save-execution-seconds", action="store_true",
                        help=f"build nothing: write the execution times the "
                             f"cache in --out recorded to {SAVED_SECONDS}")
    args = parser.parse_args(argv)  # fmt: skip
    if args.jobs < 1:
        parser.error(f"--jobs: at least 1, got {args.jobs}")
    if args.save_execution_seconds:
        try:
            path = save_execution_seconds(args.root, args.out.resolve())
        except BuildError as exc:
            _say(f"FAILED: {exc}")
            return 1
        _say(f"execution times saved to {path}")
        return 0

    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    unknown = formats - set(FORMATS)
    if unknown or not formats:
        parser.error(f"--formats: choose from {','.join(FORMATS)}, got {args.formats}")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    try:
        times = build(args.root, args.out, args.chapters, formats, args.jobs)
    except BuildError as exc:
        _say(f"FAILED: {exc}")
        return 1
    except (ValueError, OSError, RuntimeError) as exc:  # config, export
        _say(f"FAILED: {exc}")
        return 1
    total = time.perf_counter() - start
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    _say(f"done in {total:.1f} s ({steps}); outputs in {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
