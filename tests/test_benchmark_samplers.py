"""The saved side-by-side timing of fit_pymc's samplers.

``python -m multilevel.benchmark --out benchmarks --samplers`` times each
sampler end to end in fresh processes, cold and warm; these tests check the
saved table covers every sampler and run, that its derived columns are
what they say, and that its provenance records how and under what load it
was measured. No timing is asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel import benchmark

SAVED = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def saved_samplers(saved_benchmark) -> pd.DataFrame:
    return saved_benchmark("samplers.csv", "--samplers")


def test_saved_samplers_cover_every_sampler_cold_and_warm(saved_samplers):
    from multilevel.bayes import SAMPLERS

    t = saved_samplers
    assert tuple(t.columns) == benchmark.SAMPLER_COLUMNS
    assert set(t["sampler"]) == set(SAMPLERS)
    for name, part in t.groupby("sampler"):
        assert list(part["run"]) == list(benchmark.SAMPLER_RUNS), name
    assert (t["status"] == "ok").all(), t[t["status"] != "ok"]
    assert (t["n_cafes"] == 20).all()
    # the derived columns are what they say
    np.testing.assert_allclose(t["ess_per_second"],
                               t["ess_bulk_min"] / t["total_seconds"])
    # nutpie and PyMC's NUTS report the time of the draws alone; PyMC's
    # NumPyro path does not (its rows leave it empty)
    reported = t["sampling_seconds"].notna()
    assert reported[t["sampler"].isin(["nutpie", "pymc"])].all()
    r = t[reported]
    np.testing.assert_allclose(r["ess_per_sampling_second"],
                               r["ess_bulk_min"] / r["sampling_seconds"])
    assert (r["sampling_seconds"] < r["total_seconds"]).all()
    assert t[["load_before", "load_after"]].notna().all().all()


def test_saved_samplers_provenance_says_how():
    prov = json.loads((SAVED / "samplers.json").read_text())
    for key in ("command", "date", "versions", "git_commit", "cores",
                "loadavg_before", "loadavg_after", "settings",
                "total_seconds_ratio_to_nutpie"):
        assert key in prov, key
    assert prov["settings"]["mcmc"] == benchmark.MCMC
    assert prov["total_seconds_ratio_to_nutpie"]["nutpie/cold"] == 1.0
