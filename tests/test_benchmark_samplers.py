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

from multilevel import benchmark, engines
from multilevel.errors import InputError

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
    # every sampler reports the time of its draws alone
    reported = t["sampling_seconds"].notna()
    assert reported.all(), t[~reported]
    r = t[reported]
    np.testing.assert_allclose(r["ess_per_sampling_second"],
                               r["ess_bulk_min"] / r["sampling_seconds"])
    assert (r["sampling_seconds"] < r["total_seconds"]).all()
    assert t[["load_before", "load_after"]].notna().all().all()


def test_saved_samplers_provenance_says_how():
    prov = json.loads((SAVED / "samplers.json").read_text())
    for key in ("command", "date", "versions", "git_commit", "cores",
                "loadavg_before", "loadavg_after", "settings",
                "default_sampler", "total_seconds_ratio_to_default"):
        assert key in prov, key
    assert prov["settings"]["mcmc"] == benchmark.MCMC
    default = prov["default_sampler"]
    assert default == engines.DEFAULT_SAMPLER
    assert prov["total_seconds_ratio_to_default"][f"{default}/cold"] == 1.0


def test_the_default_sampler_is_the_fastest_in_the_saved_runs(saved_samplers):
    """fit_pymc's default is chosen by these runs, and the fit-pymc chapter
    says so: fastest warm and cold, with clean diagnostics."""
    summary = benchmark.sampler_summary(saved_samplers)
    default = engines.DEFAULT_SAMPLER
    assert summary.index[0] == default
    assert summary["cold_seconds"].idxmin() == default
    assert summary.loc[default, "divergences"] == 0
    assert summary.loc[default, "r_hat_max"] < 1.01


def _runs(**overrides):
    """A samplers.csv-shaped table: two samplers, a cold and two warm runs."""
    rows = []
    for name, base in (("slow", 40.0), ("fast", 10.0)):
        for k, run in enumerate(benchmark.SAMPLER_RUNS):
            rows.append({
                "sampler": name, "n_cafes": 20, "run": run,
                "total_seconds": base / (1 + k), "sampling_seconds": 1.0 + k,
                "divergences": k, "r_hat_max": 1.001 + k / 1000,
                "ess_bulk_min": 3000.0 - k, "status": "ok",
            })
    table = pd.DataFrame(rows)
    for col, value in overrides.items():
        table[col] = value
    return table


def test_sampler_summary_ranks_by_the_fastest_warm_run():
    s = benchmark.sampler_summary(_runs())
    assert list(s.index) == ["fast", "slow"]
    # cold is the first run; warm the fastest of the warm ones (base / 3)
    assert s.loc["slow", "cold_seconds"] == 40.0
    assert s.loc["slow", "warm_seconds"] == pytest.approx(40.0 / 3)
    assert s.loc["fast", "sampling_seconds"] == 3.0  # the fastest warm run's
    assert s.loc["slow", "divergences"] == 2  # the worst run, not the best
    assert s.loc["slow", "r_hat_max"] == pytest.approx(1.003)
    assert s.loc["slow", "ess_bulk_min"] == 2998.0
    assert s.loc["slow", "warm_ratio"] == pytest.approx(4.0)
    assert s.loc["fast", "cold_ratio"] == 1.0


def test_sampler_summary_refuses_failed_or_missing_runs():
    failed = _runs()
    failed.loc[4, "status"] = "error: exit 1: boom"
    with pytest.raises(InputError, match="fast warm .error: exit 1: boom"):
        benchmark.sampler_summary(failed)
    cold_only = _runs()
    cold_only = cold_only[cold_only["run"] == "cold"]
    with pytest.raises(InputError, match="needs a cold and a warm run"):
        benchmark.sampler_summary(cold_only)
    with pytest.raises(InputError, match="lacks the columns status"):
        benchmark.sampler_summary(_runs().drop(columns="status"))
