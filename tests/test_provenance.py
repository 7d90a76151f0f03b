"""One provenance record for every saved result (the study, the benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multilevel import provenance

ROOT = Path(__file__).resolve().parents[1]
SAVED = [ROOT / "results" / "study" / "provenance.json",
         ROOT / "benchmarks" / "provenance.json"]


def test_a_fresh_record_has_the_schema(monkeypatch):
    # R's versions are asked of R; that is the study's business, not this test's
    monkeypatch.setattr(provenance, "r_versions", lambda: {"R": None, "lme4": None})
    prov = provenance.record("multilevel.study", ["--seed", "1"])
    assert provenance.missing(prov) == []
    assert prov["command"] == "python -m multilevel.study --seed 1"
    assert set(prov["machine"]["threads_env"]) == set(provenance.THREAD_VARIABLES)
    assert prov["versions"]["numpy"]


@pytest.mark.parametrize("path", SAVED, ids=lambda p: p.parent.name)
def test_saved_records_have_the_schema(path):
    prov = json.loads(path.read_text())
    assert provenance.missing(prov) == []
    assert len(prov["git"]["commit"]) == 40


def test_missing_names_what_a_broken_record_lacks():
    prov = {"command": "x", "date": "d", "versions": {"python": "3"},
            "git": {"code_dirty": False}, "machine": 2}
    assert provenance.missing(prov) == [
        "versions.numpy", "versions.pandas", "git.commit", "machine (not a dict)",
    ]
