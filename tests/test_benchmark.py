"""The benchmark CLI and the saved benchmark results.

No timing is asserted on a live run (speed targets live in the benchmark and
its appendix, not in unit tests). What is checked:

* the CLI runs in ``--quick`` mode and writes the same columns as the saved
  ``benchmarks/results.csv``, with positive seconds and valid statuses;
* the saved results cover every engine at every size, each row either
  measured or carrying a skip status (nothing silently dropped), with
  provenance that says how they were obtained;
* an invariant of the saved results: fit_reml's time grows at most about
  linearly in the number of cafes (log-log slope < 1.3), as its algebra
  (one q x q block per cafe) says it should.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel import benchmark
from multilevel.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "benchmarks"


def _valid_status(status: str) -> bool:
    return status in benchmark.STATUSES or status.startswith("error: ")


@pytest.fixture(scope="module")
def saved(saved_benchmark) -> pd.DataFrame:
    return saved_benchmark("results.csv")


@pytest.fixture(scope="module")
def provenance() -> dict:
    return json.loads((SAVED / "provenance.json").read_text())


# ------------------------------------------------------------------ pure parts


def test_loglog_slope_recovers_known_powers():
    n = np.array([20, 200, 2000, 10000])
    assert benchmark.loglog_slope(n, 0.003 * n) == pytest.approx(1.0)
    assert benchmark.loglog_slope(n, 1e-6 * n**2) == pytest.approx(2.0)
    assert benchmark.loglog_slope(n, np.full(4, 0.5)) == pytest.approx(0.0)


def test_loglog_slope_needs_two_sizes():
    with pytest.raises(InputError, match="two or more different sizes"):
        benchmark.loglog_slope([20, 20], [1.0, 2.0])


def test_sampling_floor_is_gradients_times_steps_over_parallel_chains():
    # 4 chains x 2000 iterations x 10 steps x 1 ms, two at a time
    assert benchmark.sampling_floor(1e-3, 10.0, 4, 1000, 1000, 2) == (
        pytest.approx(40.0)
    )
    # more cores than chains: the chains, not the cores, run at once
    assert benchmark.sampling_floor(1e-3, 10.0, 4, 1000, 1000, 8) == (
        pytest.approx(20.0)
    )
    for bad in ({"gradient": 0.0}, {"steps_per_draw": math.nan},
                {"chains": 0}, {"tune": -1}, {"cores": 1.5}):
        args = dict(gradient=1e-3, steps_per_draw=10.0, chains=4, draws=1000,
                    tune=1000, cores=2) | bad
        with pytest.raises(InputError, match=next(iter(bad))):
            benchmark.sampling_floor(**args)


def test_repeats_rule():
    assert benchmark._repeats_for(0.05) == 5
    assert benchmark._repeats_for(3.0) == 3
    assert benchmark._repeats_for(30.0) == 1


def test_bad_sizes_refused(tmp_path):
    with pytest.raises(InputError, match="sizes must be numbers of cafes"):
        benchmark.run_benchmark(tmp_path, [1, 20])
    with pytest.raises(InputError, match="cap must be a positive"):
        benchmark.run_benchmark(tmp_path, [20], cap=0)


# ------------------------------------------------------------------ the saved run


def test_saved_results_cover_every_engine_and_size(saved, provenance):
    assert tuple(saved.columns) == benchmark.COLUMNS
    sizes = provenance["settings"]["sizes"]
    assert sizes == sorted(benchmark.SIZES)
    assert not provenance["settings"]["quick"]
    grid = {(e, j) for e in benchmark.ENGINES for j in sizes}
    rows = list(zip(saved["engine"], saved["n_cafes"], strict=True))
    assert len(rows) == len(set(rows)), "an engine/size pair appears twice"
    assert set(rows) == grid
    for row in saved.itertuples():
        assert _valid_status(row.status), row
        assert row.n_obs == benchmark.N_VISITS * row.n_cafes
        if row.status == "ok":
            assert row.seconds > 0 and row.repeats >= 1
        else:
            assert math.isnan(row.seconds) and row.repeats == 0


def test_saved_results_have_no_errors_and_measure_the_targets(saved):
    """The saved run must have measured what the targets are about."""
    assert not saved["status"].str.startswith("error").any(), saved
    ok = saved[saved["status"] == "ok"]
    # the fit_reml-vs-lme4 target needs both at every size
    for engine in ("lme4", "lme4_in_R", "fit_reml"):
        assert set(ok.loc[ok["engine"] == engine, "n_cafes"]) == set(
            benchmark.SIZES
        ), engine
    # a Bayesian fit at every size: the non-centred NumPyro one
    assert set(ok.loc[ok["engine"] == "numpyro_noncentered", "n_cafes"]) == set(
        benchmark.SIZES
    )
    # both parametrisations and nutpie at least at the smallest size
    for engine in ("numpyro_centered", "nutpie_compile", "nutpie_sampling"):
        assert 20 in set(ok.loc[ok["engine"] == engine, "n_cafes"]), engine


def test_saved_numpyro_fits_record_their_cost(saved, provenance):
    """Each NumPyro fit has its diagnostics, leapfrog steps, gradient cost
    and the floor they imply (recomputed here from its parts)."""
    mcmc = provenance["settings"]["mcmc"]
    details = provenance["mcmc_diagnostics"]
    ok = saved[(saved["status"] == "ok")
               & saved["engine"].str.startswith("numpyro")]
    assert len(ok) >= len(benchmark.SIZES)
    for row in ok.itertuples():
        info = details[f"{row.engine}@{row.n_cafes}"]
        assert info["leapfrog_steps_mean"] >= 1
        assert info["divergences"] >= 0 and info["r_hat_max_all"] >= 1 - 1e-9
        assert 0 < info["sampler_seconds"] < row.seconds
        if row.engine.endswith("_warm"):
            continue
        assert info["gradient_seconds"] > 0
        assert info["floor_seconds"] == pytest.approx(benchmark.sampling_floor(
            info["gradient_seconds"], info["leapfrog_steps_mean"],
            mcmc["chains"], mcmc["draws"], mcmc["tune"], provenance["cores"],
        ))


def test_saved_skips_follow_the_cap_rule(saved, provenance):
    """A size is skipped only after a measured smaller size, and only when
    linear growth from it predicts more than the cap (nothing dropped)."""
    cap = provenance["settings"]["cap_seconds"]
    predicted = provenance["predicted_seconds_of_skipped"]
    group = {"nutpie_compile": "nutpie", "nutpie_sampling": "nutpie"}
    assert not saved["status"].str.startswith("skipped").any() or (
        saved.loc[saved["engine"] == "numpyro_noncentered", "status"] == "ok"
    ).all(), "the non-centred fit runs at every size, whatever the cap"
    for row in saved[saved["status"] == "skipped: over cap"].itertuples():
        name = group.get(row.engine, row.engine)
        key = f"{name}@{row.n_cafes}"
        assert key in predicted, key
        if name.endswith("_warm"):
            # a second fit is left out when the first took too long
            first = saved[(saved["engine"] == name.removesuffix("_warm"))
                          & (saved["n_cafes"] == row.n_cafes)]
            assert first["seconds"].iloc[0] > benchmark.WARM_MAX_SECONDS
            assert predicted[key] == pytest.approx(first["seconds"].iloc[0])
            continue
        if name == "pymc_default" and row.n_cafes > provenance["settings"][
            "default_sampler_max_cafes"
        ]:
            continue  # the default sampler's size cap, stated in settings
        assert predicted[key] > cap, key
        smaller = saved[(saved["engine"] == row.engine)
                        & (saved["n_cafes"] < row.n_cafes)]
        assert (smaller["status"] == "ok").any() or (
            smaller["status"] == "skipped: over cap"
        ).any(), key


def test_saved_fit_reml_grows_at_most_linearly(saved, provenance):
    part = saved[(saved["engine"] == "fit_reml") & (saved["status"] == "ok")]
    slope = benchmark.loglog_slope(part["n_cafes"], part["seconds"])
    assert slope < 1.3
    # the provenance reports the same slope
    assert provenance["fit_reml_loglog_slope"]["all_sizes"] == pytest.approx(slope)


def test_saved_provenance_says_how(provenance):
    for key in ("command", "date", "versions", "git_commit", "cores",
                "loadavg_before", "loadavg_after", "settings"):
        assert provenance[key] not in (None, "", []), key
    assert provenance["command"].startswith("python -m multilevel.benchmark")
    for name in ("numpy", "pymc", "nutpie", "statsmodels", "R", "lme4"):
        assert provenance["versions"][name], name
    assert len(provenance["loadavg_before"]) == 3
    assert provenance["settings"]["mcmc"] == benchmark.MCMC


# ------------------------------------------------------------------ a live run


@pytest.mark.slow
def test_quick_cli_run(tmp_path, saved):
    """One tiny size, one short non-centred NumPyro fit: every engine has
    its row, measured or marked as left out by quick mode."""
    out = tmp_path / "bench"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "multilevel.benchmark", "--out", str(out),
         "--quick", "--sizes", "6"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    live = pd.read_csv(out / "results.csv")
    assert list(live.columns) == list(saved.columns)
    assert list(live["engine"]) == list(benchmark.ENGINES)
    assert set(live["n_cafes"]) == {6}
    for row in live.itertuples():
        assert _valid_status(row.status), row
        assert not row.status.startswith("error"), row
        if row.status == "ok":
            assert row.seconds > 0
    left_out = live[live["engine"].isin(
        [e for e in benchmark.ENGINES
         if e in benchmark.QUICK_SKIPS or e.startswith("nutpie")])]
    assert (left_out["status"] == "skipped: quick mode").all()
    measured = set(live.loc[live["status"] == "ok", "engine"])
    assert {"fit_reml", "statsmodels", "numpyro_noncentered"} <= measured
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["settings"]["quick"] is True
    assert prov["command"].endswith("--quick --sizes 6")
    info = prov["mcmc_diagnostics"]["numpyro_noncentered@6"]
    assert info["leapfrog_steps_mean"] >= 1 and info["floor_seconds"] > 0


# ------------------------------------------------------- samplers side by side


def test_run_samplers_refuses_an_unknown_sampler_before_running(tmp_path):
    with pytest.raises(InputError, match="unknown sampler 'stan'"):
        benchmark.run_samplers(tmp_path, ["nutpie", "stan"])
    assert not (tmp_path / "samplers.csv").exists()
    with pytest.raises(InputError, match="n_cafes must be >= 2"):
        benchmark.run_samplers(tmp_path, ["nutpie"], n_cafes=1)


def test_a_failing_fresh_fit_is_recorded_not_hidden(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "_ONE_FIT", "raise SystemExit('no fit')")
    row = benchmark._fresh_fit("nutpie", 20, 1, tmp_path, timeout=60)
    assert row["status"] == "error: exit 1: no fit"
    assert row["total_seconds"] > 0


# ------------------------------------------------------- reading the results


def _results(rows):
    return pd.DataFrame(
        [dict(zip(benchmark.COLUMNS, r, strict=True)) for r in rows]
    )


def test_fit_seconds_pivots_measured_fits_and_adds_nutpie_end_to_end():
    t = benchmark.fit_seconds(_results([
        ("fit_reml", 20, 200, 0.01, 5, "ok"),
        ("fit_reml", 200, 2000, 0.02, 5, "ok"),
        ("nutpie_compile", 20, 200, 30.0, 1, "ok"),
        ("nutpie_sampling", 20, 200, 4.0, 1, "ok"),
        ("nutpie_compile", 200, 2000, math.nan, 0, "skipped: over cap"),
        ("nutpie_sampling", 200, 2000, math.nan, 0, "skipped: over cap"),
    ]))
    assert list(t.index) == [20, 200]
    assert t.loc[200, "fit_reml"] == 0.02
    assert t.loc[20, "nutpie"] == 34.0
    assert math.isnan(t.loc[200, "nutpie"])  # a skipped fit is not a time


def test_fit_seconds_refuses_what_is_not_a_results_table():
    with pytest.raises(InputError, match="lack the columns n_obs, repeats, "
                       "seconds, status"):
        benchmark.fit_seconds(pd.DataFrame({"engine": ["x"], "n_cafes": [2]}))
    with pytest.raises(InputError, match="no measured fit"):
        benchmark.fit_seconds(_results([
            ("fit_reml", 20, 200, math.nan, 0, "skipped: over cap")]))


def test_mcmc_costs_reads_each_fit_and_its_cost_per_step():
    prov = {
        "cores": 2,
        "settings": {"mcmc": {"chains": 4, "draws": 1000, "tune": 1000}},
        "mcmc_diagnostics": {
            "numpyro_noncentered@200": {
                "leapfrog_steps_mean": 10.0, "divergences": 0,
                "r_hat_max": 1.001, "ess_bulk_min": 900.0,
                "r_hat_max_all": 1.004, "ess_bulk_min_all": 700.0,
                "sampler_seconds": 8.0, "gradient_seconds": 1e-4,
                "floor_seconds": 4.0,
            },
            "numpyro_noncentered@20": {
                "leapfrog_steps_mean": 8.0, "divergences": 1,
                "r_hat_max": 1.002, "ess_bulk_min": 800.0,
                "sampler_seconds": None,
            },
            "numpyro_centered@20": {
                "leapfrog_steps_mean": 30.0, "divergences": 0,
                "r_hat_max": 1.0, "ess_bulk_min": 1.0,
            },
        },
    }
    c = benchmark.mcmc_costs(prov, "numpyro_noncentered")
    assert list(c.index) == [20, 200]
    # the worst over every quantity when recorded, else the population's
    assert c.loc[200, "r_hat_max"] == 1.004 and c.loc[20, "r_hat_max"] == 1.002
    assert c.loc[200, "ess_bulk_min"] == 700.0
    assert c.loc[20, "divergences"] == 1
    # 8 s for 4 x 2000 x 10 steps, two chains at a time: 0.2 ms a step
    assert c.loc[200, "seconds_per_step"] == pytest.approx(2e-4)
    assert math.isnan(c.loc[20, "seconds_per_step"])
    assert math.isnan(c.loc[20, "floor_seconds"])
    with pytest.raises(InputError, match="no MCMC fit of 'nutpie'.*numpyro_centered"):
        benchmark.mcmc_costs(prov, "nutpie")
    with pytest.raises(InputError, match="no mcmc_diagnostics"):
        benchmark.mcmc_costs({}, "nutpie")
