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
  (one q x q block per cafe) says it should;
* the rule of which fit runs where (:func:`benchmark.plan`) and the grid
  that follows it (:func:`benchmark.run_grid`, with stand-in runners): the
  form the data choose at every size, whatever the cap, the other form
  never started above ``other_form_max_cafes``, the data's form recorded;
* the readers of the saved results, on small synthetic tables.
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

from multilevel import benchmark, engines
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


def _needs_data_form(provenance: dict) -> None:
    """Fail with what to do when the saved run predates the data's form."""
    if "data_form" not in provenance or (
            "other_form_max_cafes" not in provenance["settings"]):
        pytest.fail("benchmarks/provenance.json has no data_form or "
                    "other_form_max_cafes: it predates the benchmark that "
                    "fits the data's form; re-run `python -m "
                    "multilevel.benchmark --out benchmarks` and commit it.")


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


# ------------------------------------------------- which fit runs at which size


def test_groups_time_every_row_of_the_registry_once_in_order():
    rows = [e for _, timed in benchmark.GROUPS for e in timed]
    assert rows == list(benchmark.ENGINES)


def test_plan_runs_the_default_fit_whatever_the_cap():
    """The data's form while fit_pymc fits it by default, the marginal form
    at every size; the data's form above MARGINAL_FROM_CAFES is held to the
    cap like the rest."""
    # a previous size predicts 100 x 10 s, far over the cap
    last = {"numpyro_centered": (20, 100.0), "numpyro_noncentered": (20, 100.0),
            "numpyro_marginal": (20, 100.0)}
    top = engines.MARGINAL_FROM_CAFES
    for centered, engine in ((True, "numpyro_centered"),
                             (False, "numpyro_noncentered")):
        assert benchmark.plan(engine, top, centered, last, cap=300) == (
            None, None)
        status, guess = benchmark.plan(engine, 2000, centered, last, cap=300)
        assert status == "skipped: over cap"
        assert guess == pytest.approx(100.0 * 2000 / 20)
    for J in (20, top, 10 * top):
        assert benchmark.plan("numpyro_marginal", J, True, last, cap=300) == (
            None, None)


def test_plan_never_starts_the_other_form_above_its_largest_size():
    # even when linear growth from 200 cafes predicts a second
    last = {"numpyro_noncentered": (200, 0.1)}
    status, guess = benchmark.plan("numpyro_noncentered", 2000, True, last,
                                   cap=300, other_form_max_cafes=200)
    assert status == benchmark.OTHER_FORM_STATUS and guess is None
    assert benchmark.plan("numpyro_noncentered", 200, True, last,
                          other_form_max_cafes=200) == (None, None)
    # up to that size, the other form is still held to the cap
    status, guess = benchmark.plan(
        "numpyro_centered", 200, False, {"numpyro_centered": (20, 40.0)},
        cap=300, other_form_max_cafes=200)
    assert status == "skipped: over cap" and guess == pytest.approx(400.0)
    # 0: the other form never runs
    assert benchmark.plan("numpyro_centered", 20, False, {},
                          other_form_max_cafes=0)[0] == (
        benchmark.OTHER_FORM_STATUS)


def test_plan_second_fits_quick_mode_and_other_engines():
    last = {"numpyro_centered": (200, 150.0), "numpyro_noncentered": (20, 9.0)}
    # a second fit follows a first at this size of at most WARM_MAX_SECONDS
    assert benchmark.plan("numpyro_centered_warm", 200, True, last) == (
        "skipped: over cap", 150.0)
    assert benchmark.plan("numpyro_noncentered_warm", 20, True, last) == (
        None, None)
    assert benchmark.plan("numpyro_noncentered_warm", 200, True, last)[0] == (
        "skipped: numpyro_noncentered not run at this size")
    # quick mode: the data's form once, nothing else of the Bayesian fits
    assert benchmark.plan("numpyro_centered", 20, True, {}, quick=True) == (
        None, None)
    for group in ("numpyro_noncentered", "numpyro_centered_warm", "nutpie",
                  "pymc_default", "lme4_profile", "numpyro_marginal",
                  "numpyro_marginal_warm"):
        assert benchmark.plan(group, 20, True, {}, quick=True)[0] == (
            "skipped: quick mode"), group
    # the other engines: linear growth against the cap; nutpie's compile
    # does not grow
    assert benchmark.plan("fit_reml", 2000, True, {"fit_reml": (200, 0.1)}) == (
        None, None)
    status, guess = benchmark.plan(
        "nutpie", 2000, True,
        {"nutpie_compile": (200, 20.0), "nutpie_sampling": (200, 30.0)}, cap=300)
    assert status == "skipped: over cap" and guess == pytest.approx(320.0)
    assert benchmark.plan("pymc_default", 200, True, {},
                          default_sampler_max_cafes=20)[0] == "skipped: over cap"


class _Choice:
    """A stand-in for choose_parametrisation's answer."""

    def __init__(self, centered):
        self.centered = centered
        self.reason = "centred" if centered else "non-centred"
        self.summary = {"weight_median": 0.6 if centered else 0.3}


def test_run_grid_follows_the_data_form_and_records_it():
    """Stand-in runners: every engine has a row at every size, the data's
    form runs at every size up to MARGINAL_FROM_CAFES however slow and the
    marginal form at every size, the other form is never started above
    other_form_max_cafes, and the data's choice is recorded."""
    calls = []

    def runner(group, seconds):
        def run(data, choice):
            calls.append((group, len(data) // 10, choice.centered))
            return {e: seconds for e in dict(benchmark.GROUPS)[group]}
        return run

    # the NumPyro fits take 500 s, over the cap: only the data's form runs on
    runners = {g: runner(g, 500.0 if g.startswith("numpyro") else 0.01)
               for g, _ in benchmark.GROUPS if not g.startswith("lme4")}
    runners["fit_reml"] = lambda d, c: (_ for _ in ()).throw(
        RuntimeError("no fit"))
    rows = []
    sizes = [8, 20, 200, 1000, 2000]
    assert engines.MARGINAL_FROM_CAFES == 1000
    predictions, forms = benchmark.run_grid(
        sizes, runners,
        simulate=lambda J: pd.DataFrame({"cafe": np.repeat(np.arange(J), 10)}),
        # fewer than ten cafes: non-centred, as choose_parametrisation does
        choose=lambda d: _Choice(d["cafe"].nunique() >= 10),
        add=rows.append, cap=300, other_form_max_cafes=200,
    )
    table = pd.DataFrame(rows)
    assert list(table.columns) == list(benchmark.COLUMNS)
    assert len(table) == len(benchmark.ENGINES) * len(sizes)
    assert set(zip(table["engine"], table["n_cafes"], strict=True)) == {
        (e, J) for e in benchmark.ENGINES for J in sizes}
    status = table.set_index(["engine", "n_cafes"])["status"]
    # the data's form up to MARGINAL_FROM_CAFES, whatever the cap; above,
    # held to the cap; the marginal form at every size
    assert status[("numpyro_noncentered", 8)] == "ok"
    for J in (20, 200, 1000):
        assert status[("numpyro_centered", J)] == "ok"
    assert ("numpyro_centered", 1000, True) in calls
    assert status[("numpyro_centered", 2000)] == "skipped: over cap"
    assert predictions["numpyro_centered@2000"] == pytest.approx(1000.0)
    for J in sizes:
        assert status[("numpyro_marginal", J)] == "ok"
    # the other form: run at 8 cafes (no earlier size predicts it); over
    # the cap at 20 and 200 (linear growth from 8 cafes' 500 s); not
    # started at 2000, above other_form_max_cafes
    assert status[("numpyro_centered", 8)] == "ok"
    assert status[("numpyro_noncentered", 20)] == "skipped: over cap"
    assert status[("numpyro_noncentered", 200)] == "skipped: over cap"
    assert status[("numpyro_noncentered", 2000)] == benchmark.OTHER_FORM_STATUS
    started = {(g, J) for g, J, _ in calls}
    assert {J for g, J in started if g == "numpyro_noncentered"} == {8}
    assert predictions["numpyro_noncentered@200"] == pytest.approx(12500.0)
    assert "numpyro_noncentered@2000" not in predictions
    # second fits: over WARM_MAX_SECONDS, not run
    assert status[("numpyro_centered_warm", 20)] == "skipped: over cap"
    # every runner is given the data's choice
    assert all(c == (J >= 10) for _, J, c in calls)
    # the data's form, recorded by size
    assert forms["8"]["form"] == "non-centred"
    assert forms["8"]["engine"] == "numpyro_noncentered"
    assert forms["2000"].pop("choose_seconds") >= 0
    assert forms["2000"] == {"form": "centred", "engine": "numpyro_centered",
                             "default_engine": "numpyro_marginal",
                             "reason": "centred", "weight_median": 0.6}
    assert forms["1000"]["default_engine"] == "numpyro_centered"
    # no R: its rows say so; a failing runner is an error row, not a gap
    assert status[("lme4_in_R", 20)] == "skipped: R not available"
    assert status[("fit_reml", 20)] == "error: RuntimeError: no fit"


def test_run_benchmark_refuses_a_bad_other_form_size(tmp_path):
    with pytest.raises(InputError, match="other_form_max_cafes must be"):
        benchmark.run_benchmark(tmp_path, [20], other_form_max_cafes=-1)


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


def test_saved_run_fits_the_default_at_every_size(saved, provenance):
    """A Bayesian fit at every size, converged: what fit_pymc fits by
    default (NumPyro's of the form the data chose up to MARGINAL_FROM_CAFES
    cafes, the marginal form above), the marginal form at every size, and
    both joint forms at the smallest size."""
    _needs_data_form(provenance)
    ok = saved[saved["status"] == "ok"]
    forms = provenance["data_form"]
    assert set(forms) == {str(j) for j in benchmark.SIZES}
    top = provenance["settings"]["marginal_from_cafes"]
    for J in benchmark.SIZES:
        engine = forms[str(J)]["default_engine"]
        assert engine == (forms[str(J)]["engine"] if J <= top
                          else "numpyro_marginal")
        for name in {engine, "numpyro_marginal"}:
            assert ((ok["engine"] == name) & (ok["n_cafes"] == J)).any(), J
            info = provenance["mcmc_diagnostics"][f"{name}@{J}"]
            assert info["r_hat_max_all"] <= 1.01 and info["divergences"] == 0
        if J <= top:
            info = provenance["mcmc_diagnostics"][f"{engine}@{J}"]
            assert info["data_form"] is True
            assert info["form"] == forms[str(J)]["form"]
        assert provenance["mcmc_diagnostics"][
            f"numpyro_marginal@{J}"]["likelihood"] == "marginal"
    for engine in ("numpyro_noncentered", "numpyro_centered", "nutpie_compile",
                   "nutpie_sampling"):
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


def test_saved_skips_follow_the_rules(saved, provenance):
    """A size is skipped only after a measured smaller size, and only when
    linear growth from it predicts more than the cap (nothing dropped); the
    other form only above other_form_max_cafes."""
    _needs_data_form(provenance)
    cap = provenance["settings"]["cap_seconds"]
    largest_other = provenance["settings"]["other_form_max_cafes"]
    predicted = provenance["predicted_seconds_of_skipped"]
    group = {"nutpie_compile": "nutpie", "nutpie_sampling": "nutpie"}
    for row in saved[saved["status"] == benchmark.OTHER_FORM_STATUS].itertuples():
        assert row.n_cafes > largest_other, row
        assert row.engine != provenance["data_form"][str(row.n_cafes)]["engine"]
    for row in saved[saved["status"] == "skipped: over cap"].itertuples():
        name = group.get(row.engine, row.engine)
        key = f"{name}@{row.n_cafes}"
        assert key in predicted, key
        assert name != provenance["data_form"][str(row.n_cafes)][
            "default_engine"], "the default fit runs at every size"
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
    """One tiny size, one short NumPyro fit of the data's form (non-centred
    for six cafes): every engine has its row, measured or marked as left out
    by quick mode, and the data's form is recorded."""
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
         if e in benchmark.QUICK_SKIPS or e.startswith("nutpie")
         or e.endswith("_warm") or e == "numpyro_centered"])]
    assert len(left_out) == 9
    assert (left_out["status"] == "skipped: quick mode").all()
    measured = set(live.loc[live["status"] == "ok", "engine"])
    assert {"fit_reml", "statsmodels", "numpyro_noncentered"} <= measured
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["settings"]["quick"] is True
    assert prov["command"].endswith("--quick --sizes 6")
    # fewer than ten cafes: the data choose the non-centred form
    assert prov["data_form"]["6"]["form"] == "non-centred"
    info = prov["mcmc_diagnostics"]["numpyro_noncentered@6"]
    assert info["data_form"] is True and info["form"] == "non-centred"
    assert info["leapfrog_steps_mean"] >= 1 and info["floor_seconds"] > 0
    fits = benchmark.numpyro_fits(live, prov)
    assert fits.loc[6, "form"] == "non-centred"
    assert fits.loc[6, "first_seconds"] == live.set_index("engine").loc[
        "numpyro_noncentered", "seconds"]


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


def _numpyro_case():
    """A run of two sizes: centred chosen at both, the non-centred form
    (the other) run at 20 cafes only, above other_form_max_cafes at 200."""
    results = _results([
        ("numpyro_noncentered", 20, 200, 14.8, 1, "ok"),
        ("numpyro_noncentered_warm", 20, 200, 8.9, 1, "ok"),
        ("numpyro_centered", 20, 200, 12.9, 1, "ok"),
        ("numpyro_centered_warm", 20, 200, 7.5, 1, "ok"),
        ("numpyro_noncentered", 200, 2000, math.nan, 0,
         benchmark.OTHER_FORM_STATUS),
        ("numpyro_noncentered_warm", 200, 2000, math.nan, 0,
         "skipped: numpyro_noncentered not run at this size"),
        ("numpyro_centered", 200, 2000, 20.2, 1, "ok"),
        ("numpyro_centered_warm", 200, 2000, 18.3, 1, "ok"),
    ])
    fit = {"divergences": 0, "r_hat_max": 1.001, "ess_bulk_min": 900.0,
           "sampler_seconds": 5.0}
    prov = {
        "cores": 2,
        "settings": {"mcmc": {"chains": 4, "draws": 1000, "tune": 1000}},
        "data_form": {
            "20": {"form": "centred", "engine": "numpyro_centered"},
            "200": {"form": "centred", "engine": "numpyro_centered"},
        },
        "mcmc_diagnostics": {
            "numpyro_noncentered@20": fit | {
                "leapfrog_steps_mean": 15.0, "gradient_seconds": 1e-5,
                "floor_seconds": 1.2},
            "numpyro_noncentered_warm@20": fit | {"leapfrog_steps_mean": 15.0},
            "numpyro_centered@20": fit | {
                "leapfrog_steps_mean": 7.0, "gradient_seconds": 1e-5,
                "floor_seconds": 0.56},
            "numpyro_centered@200": fit | {
                "leapfrog_steps_mean": 7.5, "gradient_seconds": 4e-5,
                "floor_seconds": 2.4, "divergences": 2},
        },
    }
    return results, prov


def test_numpyro_fits_sets_the_data_form_beside_the_other():
    results, prov = _numpyro_case()
    fits = benchmark.numpyro_fits(results, prov)
    assert list(fits.index) == [20, 200]
    assert (fits["form"] == "centred").all()
    assert (fits["other_form"] == "non-centred").all()
    assert fits.loc[200, "first_seconds"] == 20.2
    assert fits.loc[200, "second_seconds"] == 18.3
    assert fits.loc[200, "floor_seconds"] == 2.4
    assert fits.loc[200, "divergences"] == 2
    assert fits.loc[20, "leapfrog_steps_mean"] == 7.0
    assert fits.loc[20, "other_leapfrog_steps_mean"] == 15.0
    assert fits.loc[20, "other_first_seconds"] == 14.8
    assert fits.loc[20, "other_status"] == "ok"
    # the other form above its largest size: no seconds, and why
    assert math.isnan(fits.loc[200, "other_first_seconds"])
    assert math.isnan(fits.loc[200, "other_floor_seconds"])
    assert fits.loc[200, "other_status"] == benchmark.OTHER_FORM_STATUS


def test_numpyro_fits_follows_a_choice_that_changes_with_size():
    results, prov = _numpyro_case()
    prov["data_form"]["20"] = {"form": "non-centred",
                               "engine": "numpyro_noncentered"}
    fits = benchmark.numpyro_fits(results, prov)
    assert fits.loc[20, "form"] == "non-centred"
    assert fits.loc[20, "first_seconds"] == 14.8
    assert fits.loc[20, "other_first_seconds"] == 12.9
    assert fits.loc[200, "form"] == "centred"


def test_numpyro_fits_refuses_results_without_the_data_form():
    results, prov = _numpyro_case()
    old = {k: v for k, v in prov.items() if k != "data_form"}
    with pytest.raises(InputError, match="lacks data_form"):
        benchmark.numpyro_fits(results, old)
    with pytest.raises(InputError, match="no rows for numpyro_centered"):
        benchmark.numpyro_fits(
            results[results["engine"] != "numpyro_centered"], prov)
    prov["data_form"].pop("200")
    with pytest.raises(InputError, match="no entry for 200 cafes"):
        benchmark.numpyro_fits(results, prov)
    prov["data_form"]["200"] = {"form": "centered"}
    with pytest.raises(InputError, match="'centered', not one of"):
        benchmark.numpyro_fits(results, prov)
