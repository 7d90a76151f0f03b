"""Every ``# noqa`` in the repository says why, on the same line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a noqa comment with or without codes, and nothing (or only punctuation) after it
BARE = re.compile(
    r"#\s*noqa(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?[\s:;,.()-]*$",
    re.IGNORECASE,
)


def bare_noqa(text: str) -> list[int]:
    """Line numbers of ``# noqa`` comments with no reason after the codes."""
    return [n for n, line in enumerate(text.splitlines(), 1) if BARE.search(line)]


def test_every_noqa_in_the_repository_gives_a_reason():
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout.split()
    bare = {
        f: bare_noqa((ROOT / f).read_text(encoding="utf-8"))
        for f in files
    }
    assert {f: lines for f, lines in bare.items() if lines} == {}


def test_a_bare_noqa_is_found():
    text = (
        "import a  # noqa: E402\n"
        "import b  # noqa\n"
        "import c  # noqa: E402, F401\n"
        "import d  # noqa: E402 (after the filter)\n"
        "import e  # noqa: F401  (starts R)\n"
        "import f\n"
    )
    assert bare_noqa(text) == [1, 2, 3]
