"""``_quarto.yml`` -> the book's Sphinx configuration (qmd_sphinx.quarto_config).

A small book is written into a temporary folder for each case; the real
``_quarto.yml`` of the project is checked to be a Quarto book config too.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from qmd_sphinx.quarto_config import (
    Chapter,
    QuartoConfigError,
    load_quarto,
    slug,
    sphinx_settings,
    toctree_markdown,
)

ROOT = Path(__file__).resolve().parent.parent

BOOK = """\
project:
  type: book
book:
  title: "A Test Book"
  author:
    - "Ada Tester"
    - name: "Bo Checker"
  chapters:
    - index.qmd
    - intro.qmd
    - part: "Part one"
      chapters:
        - one/a.qmd
        - one/b.qmd
    - part: "Part two"
      chapters:
        - two/c.qmd
  appendices:
    - app/env.qmd
    - app/refs.qmd
bibliography: refs.bib
"""

FILES = ["index.qmd", "intro.qmd", "one/a.qmd", "one/b.qmd", "two/c.qmd",
         "app/env.qmd", "app/refs.qmd", "refs.bib"]  # fmt: skip


def make_book(tmp_path: Path, quarto: str = BOOK, files=FILES) -> Path:
    (tmp_path / "_quarto.yml").write_text(textwrap.dedent(quarto), encoding="utf-8")
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# x\n", encoding="utf-8")
    return tmp_path


def test_title_authors_and_bibliography(tmp_path):
    book = load_quarto(make_book(tmp_path))
    assert book.title == "A Test Book"
    assert book.authors == ("Ada Tester", "Bo Checker")
    assert book.author == "Ada Tester, Bo Checker"
    assert book.bibliography == ("refs.bib",)
    assert book.root == tmp_path


def test_chapters_in_order_with_parts_and_appendices(tmp_path):
    book = load_quarto(make_book(tmp_path))
    assert book.chapters == (
        Chapter("index.qmd"),
        Chapter("intro.qmd"),
        Chapter("one/a.qmd", part="Part one"),
        Chapter("one/b.qmd", part="Part one"),
        Chapter("two/c.qmd", part="Part two"),
        Chapter("app/env.qmd", appendix=True),
        Chapter("app/refs.qmd", appendix=True),
    )
    assert book.index.docname == "index"
    assert book.chapters[2].docname == "one/a"
    assert [(p, [c.path for c in cs]) for p, cs in book.parts()] == [
        (None, ["intro.qmd"]),
        ("Part one", ["one/a.qmd", "one/b.qmd"]),
        ("Part two", ["two/c.qmd"]),
    ]
    assert [c.path for c in book.appendices()] == ["app/env.qmd", "app/refs.qmd"]


def test_single_author_string_and_bibliography_list(tmp_path):
    quarto = BOOK.replace(
        '  author:\n    - "Ada Tester"\n    - name: "Bo Checker"\n',
        '  author: "Solo"\n',
    ).replace("bibliography: refs.bib", "bibliography:\n  - refs.bib\n  - more.bib")
    book = load_quarto(make_book(tmp_path, quarto, FILES + ["more.bib"]))
    assert book.authors == ("Solo",)
    assert book.bibliography == ("refs.bib", "more.bib")


def test_toctree_has_one_numbered_toctree_per_part_then_appendices(tmp_path):
    book = load_quarto(make_book(tmp_path))
    text = toctree_markdown(book)
    blocks = text.strip().split("\n\n```")
    assert len(blocks) == 4
    assert text.count(":numbered:") == 3
    assert ":caption: Part one\n\none/a\none/b\n```" in text
    assert ":caption: Part two\n\ntwo/c\n```" in text
    assert ":caption: Appendices\n\napp/env\napp/refs\n```" in text
    assert "index" not in text.split()  # the root document is not in its own toctree
    latex = toctree_markdown(book, appendices=False)
    assert "app/env" not in latex and "Appendices" not in latex


def test_sphinx_settings(tmp_path):
    book = load_quarto(make_book(tmp_path))
    settings = sphinx_settings(book)
    assert settings["project"] == "A Test Book"
    assert settings["author"] == "Ada Tester, Bo Checker"
    assert settings["root_doc"] == "index"
    assert settings["include_patterns"] == [c.path for c in book.chapters]
    assert settings["bibtex_bibfiles"] == ["refs.bib"]
    assert settings["latex_appendices"] == ["app/env", "app/refs"]
    # the PDF is named after the title, as Quarto names it
    assert settings["latex_documents"][0][:3] == ("index", "a-test-book.tex",
                                                  "A Test Book")
    assert book.pdf_name == "a-test-book.pdf"


def test_pdf_name_version_date_licence_and_footer(tmp_path):
    quarto = BOOK.replace('  title: "A Test Book"\n', '''  title: "A Test Book"
  subtitle: "Its subtitle"
  output-file: my-book
  date: 2025-11-24
  page-footer: "Text: CC BY 4.0."
''') + 'version: "1.2.3"\nlicense: "CC BY"\n'
    book = load_quarto(make_book(tmp_path, quarto))
    assert book.pdf_name == "my-book.pdf"
    assert (book.subtitle, book.version, book.date_text, book.license, book.footer) == (
        "Its subtitle", "1.2.3", "2025-11-24", "CC BY", "Text: CC BY 4.0."
    )
    assert sphinx_settings(book)["release"] == "1.2.3"
    assert book.subset(["intro.qmd"]).pdf_name == "my-book.pdf"


@pytest.mark.parametrize(
    "title, name",
    [("One Mixed Model, Two Ways", "one-mixed-model-two-ways"),
     ("R & Python 3", "r-python-3"),
     ("  Ünïcode: a test ", "n-code-a-test")],
)
def test_slug(title, name):
    assert slug(title) == name


def test_real_book_pdf_name_and_version_match_the_project():
    import tomllib

    book = load_quarto(ROOT)
    assert book.pdf_name == "one-mixed-model-two-ways.pdf"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert book.version == project["version"]
    assert "CC BY 4.0" in book.footer and "MIT" in book.footer
    assert (ROOT / "LICENSE").is_file() and (ROOT / "LICENSE-text").is_file()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["title"] == book.title and citation["version"] == book.version


def test_subset_keeps_index_and_listed_chapters(tmp_path):
    root = make_book(tmp_path)
    book = load_quarto(root)
    sub = book.subset(["two/c.qmd", str(root / "app/refs.qmd")])
    assert [c.path for c in sub.chapters] == ["index.qmd", "two/c.qmd", "app/refs.qmd"]
    assert book.subset(None) is book
    with pytest.raises(QuartoConfigError, match="'nope.qmd', which is not a chapter"):
        book.subset(["nope.qmd"])


ERRORS = [
    # (id, edit of BOOK (old, new) or None, files, fragment)
    ("missing chapter file", None, [f for f in FILES if f != "one/b.qmd"],
     "chapter 'one/b.qmd' is listed but"),
    ("missing bibliography", None, [f for f in FILES if f != "refs.bib"],
     "bibliography 'refs.bib' not found"),
    ("not a book", ("type: book", "type: website"), FILES, "type: must be `book`"),
    ("no title", ('  title: "A Test Book"\n', ""), FILES, "title: is required"),
    ("no chapters",
     ("  chapters:\n    - index.qmd\n", "  chapterz:\n    - index.qmd\n"),
     FILES, "chapters: must be a non-empty list"),
    ("index not first", ("    - index.qmd\n    - intro.qmd\n",
                         "    - intro.qmd\n    - index.qmd\n"), FILES,
     "first chapter must be index.qmd"),
    ("chapter listed twice",
     ("        - two/c.qmd\n", "        - two/c.qmd\n        - intro.qmd\n"),
     FILES, "'intro.qmd' is listed twice"),
    ("same stem twice",
     ("        - two/c.qmd\n", "        - two/c.qmd\n        - two/a.qmd\n"),
     FILES + ["two/a.qmd"], "have the same file name"),
    ("not a qmd chapter", ("    - intro.qmd\n", "    - intro.ipynb\n"),
     FILES + ["intro.ipynb"], "only .qmd chapters"),
    ("part file", ('    - part: "Part one"\n', '    - part: "one.qmd"\n'), FILES,
     "only a title is supported"),
    ("part without chapters",
     ('    - part: "Part two"\n      chapters:\n        - two/c.qmd\n',
      '    - part: "Part two"\n      chapters: []\n'), FILES, "has no chapters"),
    ("part with extra key", ('    - part: "Part two"\n',
                             '    - part: "Part two"\n      href: x\n'), FILES,
     "a part needs exactly the keys"),
    ("appendices not a list", ("  appendices:\n    - app/env.qmd\n    - app/refs.qmd\n",
                               "  appendices: app/env.qmd\n"), FILES, "must be a list"),
    ("bad yaml", ("book:\n", "book: [\n"), FILES, "not valid YAML"),
    ("output-file with a folder", ('  title: "A Test Book"\n',
                                   '  title: "A Test Book"\n  output-file: a/b\n'),
     FILES, "must be a plain file name"),
    ("subtitle not text", ('  title: "A Test Book"\n',
                           '  title: "A Test Book"\n  subtitle: [a, b]\n'),
     FILES, "subtitle: must be a string"),
]


@pytest.mark.parametrize(
    "edit, files, fragment", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_config_errors(tmp_path, edit, files, fragment):
    quarto = BOOK
    if edit is not None:
        assert edit[0] in quarto
        quarto = quarto.replace(edit[0], edit[1])
    root = make_book(tmp_path, quarto, files)
    with pytest.raises(QuartoConfigError) as info:
        load_quarto(root)
    assert fragment in str(info.value)
    assert str(info.value).startswith(str(root / "_quarto.yml") + ": ")


def test_missing_quarto_file(tmp_path):
    with pytest.raises(QuartoConfigError, match="needs a _quarto.yml"):
        load_quarto(tmp_path)


def test_files_are_not_checked_when_asked(tmp_path):
    root = make_book(tmp_path, BOOK, ["index.qmd"])
    book = load_quarto(root, check_files=False)
    assert len(book.chapters) == 7


# --------------------------------------------------------------------------
# the project's own _quarto.yml


@pytest.fixture(scope="module")
def real_quarto() -> dict:
    return yaml.safe_load((ROOT / "_quarto.yml").read_text(encoding="utf-8"))


def test_real_quarto_yml_is_a_quarto_book_config(real_quarto):
    """What `quarto render` needs: a book project, chapters, formats, engine."""
    assert real_quarto["project"]["type"] == "book"
    book = real_quarto["book"]
    assert isinstance(book["title"], str) and book["title"].strip()
    assert book["chapters"][0] == "index.qmd"
    for entry in book["chapters"]:
        assert isinstance(entry, str) or set(entry) == {"part", "chapters"}
    assert set(real_quarto["format"]) >= {"html", "pdf"}
    assert real_quarto["format"]["pdf"]["pdf-engine"] == "xelatex"
    assert real_quarto["jupyter"] == "python3"
    assert real_quarto["execute"]["freeze"] in (True, "auto")
    assert real_quarto["bibliography"] == "references.bib"


def test_real_quarto_yml_loads_and_every_file_exists(real_quarto):
    book = load_quarto(ROOT)  # checks every chapter and the .bib exist
    assert book.title == real_quarto["book"]["title"]
    assert book.index.path == "index.qmd"
    assert (ROOT / "references.bib").is_file()
    assert book.parts(), "the book has no main-matter chapters"
    for chapter in book.chapters:
        assert (ROOT / chapter.path).is_file()
        assert chapter.path.endswith(".qmd")
    assert any(c.appendix for c in book.chapters)


def test_fixture_book_quarto_yml_loads():
    book = load_quarto(ROOT / "tests" / "fixture_book")
    assert book.title == "Fixture Book"
    assert [p for p, _ in book.parts()] == ["Models", "Fits"]
    assert [c.path for c in book.appendices()] == [
        "chapters/extra.qmd", "chapters/references.qmd"
    ]
