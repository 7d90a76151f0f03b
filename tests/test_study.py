"""The simulation study: its summary arithmetic, seeds, refusals, the CLI,
and the saved results in results/study checked against sampling theory."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel.data import simulate_cafes
from multilevel.errors import InputError
from multilevel.study import (
    LONG_COLUMNS,
    STATUSES,
    SUMMARY_COLUMNS,
    StudyConfig,
    bias_reading,
    coverage_z,
    lookup,
    main,
    pymc_failures,
    replicate_seeds,
    summarise,
    t_coverage,
)

ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "results" / "study"
FIXED = ["(Intercept)", "afternoon"]


# ------------------------------------------------------------------ summary


def _two_engines():
    """lmer (profile and Wald rows) and pymc, two parameters, known answers:
    every estimate is truth + 0.1 for lmer, truth - 0.3 for pymc."""
    rows = []
    for rep in range(4):
        for engine, interval, shift in (("lmer", "profile", 0.1),
                                        ("lmer", "Wald", 0.1),
                                        ("pymc", "HDI", -0.3)):
            for param, truth in (("(Intercept)", 3.5), ("sigma", 0.5)):
                lo, hi = (truth - 1, truth + 1) if rep < 3 else (truth + 1, truth + 2)
                width = 2.0 if engine == "pymc" else 1.0
                rows.append(dict(
                    replicate=rep, n_cafes=20, engine=engine, interval=interval,
                    parameter=param, estimate=truth + shift, lower=lo,
                    upper=lo + width if rep < 3 else hi, truth=truth,
                    status="ok"))
    return pd.DataFrame(rows)


def test_lookup_reads_one_number_by_method_and_symbol():
    s = summarise(_two_engines())
    # three of four intervals contain the truth (the fourth lies above it)
    assert lookup(s, 20, "lmer profile", "alpha", "coverage") == 0.75
    assert lookup(s, 20, "pymc HDI", "sigma", "coverage") == 0.75
    # median width: 1.0 for lmer's first three, 1.0 for the fourth
    assert lookup(s, 20, "lmer Wald", "alpha", "median_width") == pytest.approx(1.0)
    assert lookup(s, 20, "pymc HDI", "alpha", "median_width") == pytest.approx(2.0)
    # the bias does not depend on the interval kind: the engine alone will do
    assert lookup(s, 20, "lmer", "alpha", "bias") == pytest.approx(0.1)
    assert lookup(s, 20, "pymc", "sigma", "bias") == pytest.approx(-0.3)


@pytest.mark.parametrize("args, fragment", [
    ((20, "lmer profile", "a", "coverage"), "unknown parameter symbol 'a'"),
    ((20, "lmer profile", "alpha", "cover"), "no column 'cover'"),
    ((10, "lmer profile", "alpha", "coverage"), "no summary row for 10 cafes"),
    ((20, "reml profile", "alpha", "coverage"), "methods"),
    # coverage differs between lmer's profile and Wald rows? Not here, but
    # the interval kind must be named for a column that can differ
    ((20, "lmer", "alpha", "n_intervals"), None),
])
def test_lookup_refuses_what_is_not_one_number(args, fragment):
    s = summarise(_two_engines())
    if fragment is None:
        assert lookup(s, *args) == 4  # both kinds agree: one number
        s.loc[(s["engine"] == "lmer") & (s["interval"] == "Wald"),
              "n_intervals"] = 3
        fragment = "name the interval kind"
    with pytest.raises(InputError, match=fragment):
        lookup(s, *args)


def test_coverage_z_is_the_binomial_standard_score():
    # 0.90 observed in 100 intervals against 0.95: sd sqrt(.95 * .05 / 100)
    assert coverage_z(0.90, 100, 0.95) == pytest.approx(-0.05 / 0.0217945, rel=1e-5)
    assert coverage_z(0.95, 7, 0.95) == 0.0
    for bad in ((1.2, 10, 0.95), (0.9, 0, 0.95), (0.9, 10, 1.0), (0.9, 2.5, 0.9)):
        with pytest.raises(InputError):
            coverage_z(*bad)


def test_t_coverage_against_the_t_table():
    # R 4.2: print(2 * pt(qnorm(0.975), c(4, 19)) - 1, digits = 10)
    assert t_coverage(0.95, 4) == pytest.approx(0.8784403402, abs=1e-10)
    assert t_coverage(0.95, 19) == pytest.approx(0.9351665229, abs=1e-10)
    # many degrees of freedom: the normal's own coverage
    assert t_coverage(0.95, 10**7) == pytest.approx(0.95, abs=1e-6)
    with pytest.raises(InputError):
        t_coverage(0.95, 0)


def test_bias_reading_against_two_standard_errors():
    # -0.019 with a Monte Carlo standard error of 0.012 is noise
    assert bias_reading(-0.019, 0.012) == (
        "within two Monte Carlo standard errors of zero")
    assert bias_reading(-0.021, 0.008) == "an underestimate"
    assert bias_reading(0.147, 0.012) == "an overestimate"
    with pytest.raises(InputError):
        bias_reading(float("nan"), 0.01)


_TH = {"r_hat_max_below": 1.01, "ess_bulk_min_at_least": 400,
       "divergences": 0}


def _pymc_rows(with_form=True) -> pd.DataFrame:
    """PyMC fits with known diagnostics (two rows per fit, as the long
    table has one per parameter), and an lme4 row that must be ignored."""
    fits = [
        # n_cafes, replicate, status, r-hat, ESS, divergences, centred
        (5, 0, "diagnostics_failed", 1.02, 900.0, 0, False),  # r-hat
        (5, 1, "diagnostics_failed", 1.005, 399.9, 3, False),  # ESS, div.
        (5, 2, "ok", 1.0099, 400.0, 0, True),  # passes at the thresholds
        (5, 3, "error", np.nan, np.nan, np.nan, np.nan),  # not a fit
        (20, 0, "diagnostics_failed", 1.0, 1000.0, 1, True),  # divergence
        (20, 1, "ok", 1.001, 2000.0, 0, True),
    ]
    rows = []
    for j, i, st, rh, ess, div, c in fits:
        for par in ("(Intercept)", "sigma"):
            rows.append(dict(n_cafes=j, replicate=i, engine="pymc",
                             parameter=par, status=st, r_hat_max=rh,
                             ess_bulk_min=ess, divergences=div, centered=c))
    rows.append(dict(n_cafes=5, replicate=0, engine="lmer", parameter="sigma",
                     status="diagnostics_failed", r_hat_max=9.0,
                     ess_bulk_min=1.0, divergences=9, centered=np.nan))
    long = pd.DataFrame(rows)
    return long if with_form else long.drop(columns="centered")


def test_pymc_failures_counts_each_rule_on_known_fits():
    out = pymc_failures(_pymc_rows(), _TH)
    assert list(out.index) == [5, 20]
    assert out.loc[5, ["fits", "failed", "r_hat", "ess", "divergent"]].tolist() \
        == [3, 2, 1, 1, 1]
    assert out.loc[20, ["fits", "failed", "r_hat", "ess", "divergent"]].tolist() \
        == [2, 1, 0, 0, 1]
    assert out.loc[5, ["centred", "failed_centred", "failed_non_centred"]
                   ].tolist() == [1, 0, 2]
    assert out.loc[20, ["centred", "failed_centred", "failed_non_centred"]
                   ].tolist() == [2, 1, 0]
    # a table that does not record the form: the counts by form are NaN
    old = pymc_failures(_pymc_rows(with_form=False), _TH)
    assert old[["centred", "failed_centred"]].isna().all().all()
    assert (old["failed"] == out["failed"]).all()
    # stricter thresholds count more failures: the rule is applied, not read
    strict = pymc_failures(_pymc_rows(), dict(_TH, r_hat_max_below=1.003))
    assert strict.loc[5, "r_hat"] == 3


def test_pymc_failures_refuses_what_it_cannot_count():
    with pytest.raises(InputError, match="missing columns"):
        pymc_failures(pd.DataFrame({"n_cafes": [5]}), _TH)
    with pytest.raises(InputError, match="pymc_thresholds"):
        pymc_failures(_pymc_rows(), {"r_hat_max_below": 1.01})
    no_pymc = _pymc_rows()[lambda d: d["engine"] == "lmer"]
    with pytest.raises(InputError, match="no PyMC fits"):
        pymc_failures(no_pymc, _TH)


def _hand_table() -> pd.DataFrame:
    """Five replicates of one parameter whose summary is known exactly."""
    rows = [
        # estimate, lower, upper, status
        (1.5, 0.0, 2.0, "ok"),  # error +0.5, covers
        (0.5, 1.1, 3.0, "singular"),  # error -0.5, misses (truth below)
        (2.0, np.nan, np.nan, "profile_failed"),  # error +1.0, no interval
        (1.0, -np.inf, np.inf, "diagnostics_failed"),  # error 0, covers
        (np.nan, np.nan, np.nan, "error"),  # nothing
    ]
    return pd.DataFrame(
        [
            dict(n_cafes=5, engine="x", interval="profile", parameter="sigma",
                 estimate=e, lower=lo, upper=hi, truth=1.0, status=s)
            for e, lo, hi, s in rows
        ]
    )


def test_summarise_on_a_table_with_known_answers():
    s = summarise(_hand_table())
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    assert len(s) == 1
    r = s.iloc[0]
    errors = np.array([0.5, -0.5, 1.0, 0.0])
    assert r["n_replicates"] == 5
    assert r["n_estimates"] == 4
    assert r["bias"] == pytest.approx(0.25)
    assert r["bias_mcse"] == pytest.approx(errors.std(ddof=1) / 2)
    assert r["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    assert r["n_intervals"] == 3
    assert r["coverage"] == pytest.approx(2 / 3)
    assert r["coverage_mcse"] == pytest.approx(math.sqrt(2 / 3 * 1 / 3 / 3))
    for status in STATUSES:
        assert r[f"n_{status}"] == 1
    assert r["median_width"] == pytest.approx(2.0)


def test_summarise_groups_and_orders_parameters():
    a = _hand_table()
    b = a.assign(parameter="(Intercept)", truth=0.0)
    s = summarise(pd.concat([a, b], ignore_index=True))
    assert list(s["parameter"]) == ["(Intercept)", "sigma"]
    assert s["bias"].tolist() == pytest.approx([1.25, 0.25])


def test_summarise_refuses_bad_tables():
    t = _hand_table()
    with pytest.raises(InputError, match="lacks columns"):
        summarise(t.drop(columns="truth"))
    with pytest.raises(InputError, match="unknown status"):
        summarise(t.assign(status="fine"))
    with pytest.raises(InputError, match="disagree on the truth"):
        summarise(t.assign(truth=np.arange(len(t), dtype=float)))


# -------------------------------------------------------------------- seeds


def test_replicate_seeds_are_deterministic_and_distinct():
    a = replicate_seeds(14, 20, 3)
    assert a == replicate_seeds(14, 20, 3)
    # the i-th grandchild of SeedSequence(14) through child 20, as documented
    child = np.random.SeedSequence(14).spawn(21)[20].spawn(4)[3]
    data_ss, sampler_ss = child.spawn(2)
    assert a == (int(data_ss.generate_state(1)[0]),
                 int(sampler_ss.generate_state(1)[0]))
    seeds = {replicate_seeds(14, j, i) for j in (5, 20) for i in range(50)}
    assert len(seeds) == 100
    assert replicate_seeds(15, 20, 3) != a


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(designs=((20, 0),)), "replicates must be >= 1"),
        (dict(designs=((20, 5),), engines=("lmer", "glmm")), "unknown engine"),
        (dict(designs=((1, 5),)), "number of cafes must be >= 2"),
        (dict(designs=()), "no designs"),
        (dict(designs=((20, 5), (20, 3))), "appears twice"),
        (dict(designs=((20, 5),), chains=1), "chains must be >= 2"),
        (dict(designs=((20, 5),), parametrisation="sideways"),
         "unknown parametrisation 'sideways'; choose one of centered, "
         "non-centered, auto"),
        (dict(designs=((20, 5),), target_accept=1.0), "between 0 and 1"),
        (dict(designs=((20, 5),), target_accept=0), "must be > 0"),
    ],
)
def test_config_refuses_bad_input(kwargs, match):
    with pytest.raises(InputError, match=match):
        StudyConfig(seed=1, **kwargs)


def test_cli_refuses_bad_input(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["--replicates", "0", "--seed", "1", "--out", str(out)]) == 2
    assert "replicates must be >= 1" in capsys.readouterr().err
    args = ["--engines", "lmer", "stan", "--seed", "1", "--out", str(out)]
    assert main(args) == 2
    assert "unknown engine 'stan'" in capsys.readouterr().err
    args = ["--non-centered", "--parametrisation", "centered", "--seed", "1",
            "--out", str(out)]
    assert main(args) == 2
    assert "--non-centered contradicts --parametrisation centered" in (
        capsys.readouterr().err
    )
    assert main(["--target-accept", "1.5", "--seed", "1", "--out",
                 str(out)]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert not out.exists()


def test_cli_pymc_settings_default_to_the_books_and_reach_provenance():
    """Without options the study samples as the book's fits do (1000 draws
    after 1000 tuning steps, the book's target acceptance rate) with the
    parametrisation chosen from the data; every setting is an option, and
    the provenance records what was used."""
    from multilevel import bayes
    from multilevel.study.cli import _parser, config_from_args, provenance

    defaults = inspect.signature(bayes.fit_pymc).parameters
    base = ["--seed", "1", "--out", "o"]
    config = config_from_args(_parser().parse_args(base))
    assert config.draws == defaults["draws"].default == 1000
    assert config.tune == defaults["tune"].default == 1000
    assert config.target_accept == bayes.TARGET_ACCEPT
    assert config.parametrisation == "auto"
    given = config_from_args(_parser().parse_args(
        base + ["--draws", "300", "--tune", "200", "--target-accept", "0.95",
                "--parametrisation", "centered"]))
    assert (given.draws, given.tune, given.target_accept,
            given.parametrisation) == (300, 200, 0.95, "centered")
    legacy = config_from_args(_parser().parse_args(base + ["--non-centered"]))
    assert legacy.parametrisation == "non-centered"
    prov = provenance(given, base, 1.0, 2)
    assert prov["config"]["target_accept"] == 0.95
    assert prov["config"]["parametrisation"] == "centered"
    assert prov["config"]["draws"] == 300


# ------------------------------------------------- the shared PyMC model


# ----------------------------------------------------- the saved results


def _saved() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    if not (SAVED / "summary.csv").exists():
        pytest.fail(
            "results/study is missing: run `python -m multilevel.study "
            "--seed 14 --out results/study` (see provenance.json for the "
            "full command)"
        )
    long = pd.read_csv(SAVED / "replicates.csv")
    summary = pd.read_csv(SAVED / "summary.csv")
    prov = json.loads((SAVED / "provenance.json").read_text())
    return long, summary, prov


def _long_columns(prov: dict) -> list[str]:
    """The long table's columns for the study that wrote ``prov``: runs
    from before the parametrisation was a setting (their config has no
    ``parametrisation``; they sampled one form, named in the config) have no
    per-fit ``centered`` column."""
    if "parametrisation" in prov["config"]:
        return list(LONG_COLUMNS)
    assert prov["config"]["centered"] in (True, False)
    return [c for c in LONG_COLUMNS if c != "centered"]


def test_saved_results_have_the_agreed_shape():
    long, summary, prov = _saved()
    assert list(long.columns) == _long_columns(prov)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert set(long["status"]) <= set(STATUSES)
    # the summary is the summary of the long table
    again = summarise(long)
    pd.testing.assert_frame_equal(
        again.reset_index(drop=True), summary, check_dtype=False, rtol=1e-9
    )
    # provenance matches the files
    counts = long["status"].value_counts()
    for status, n in prov["counts"]["status"].items():
        assert counts.get(status, 0) == n
    assert prov["master_seed"] == 14
    for key in ("numpy", "scipy", "pandas", "pymc", "nutpie", "rpy2", "R",
                "lme4"):
        assert prov["versions"][key]
    # at least 200 replicates of every engine at 20 cafes
    at20 = long[long["n_cafes"] == 20]
    for engine, g in at20.groupby("engine"):
        assert g["replicate"].nunique() >= 200, engine


def test_saved_pymc_fits_are_labelled_by_the_recorded_thresholds():
    """A saved PyMC fit is ``diagnostics_failed`` exactly when its r-hat,
    bulk ESS or divergences break the thresholds in the provenance, and
    ``pymc_failures`` counts the same fits."""
    long, _, prov = _saved()
    cfg, th = prov["config"], prov["pymc_thresholds"]
    fits = long[long["engine"] == "pymc"].drop_duplicates(
        ["n_cafes", "replicate"])
    fits = fits[fits["status"] != "error"]
    assert len(fits) > 0
    broken = ((fits["r_hat_max"] >= th["r_hat_max_below"])
              | (fits["ess_bulk_min"] < th["ess_bulk_min_at_least"])
              | (fits["divergences"] > th["divergences"]))
    failed = fits["status"] == "diagnostics_failed"
    assert (broken == failed).all()
    counted = pymc_failures(long, th)
    assert counted["failed"].sum() == failed.sum()
    assert counted["fits"].sum() == len(fits)
    # where the table records the form each fit used, it is the config's
    if "centered" in fits and cfg.get("parametrisation", "auto") != "auto":
        used = fits["centered"].astype(str).str.lower()
        assert (used == str(cfg["parametrisation"] == "centered").lower()).all()


def test_saved_truth_is_the_simulation_truth():
    long, _, prov = _saved()
    truth = simulate_cafes(seed=1).truth
    expected = pd.concat([truth.fixed, truth.varcorr])
    for name, value in expected.items():
        assert (long.loc[long["parameter"] == name, "truth"] == value).all()
    # and the data seeds are the documented ones
    some = long.drop_duplicates(["n_cafes", "replicate"]).head(20)
    for row in some.itertuples():
        seeds = replicate_seeds(prov["master_seed"], row.n_cafes, row.replicate)
        assert (row.data_seed, row.sampler_seed) == seeds


def test_saved_summary_agrees_with_sampling_theory():
    """Independent references from sampling theory, within 3 Monte Carlo SEs.

    Fixed effects are unbiased. In this balanced design the REML estimate of
    a fixed effect is the mean of the J cafes' own estimates and its
    standard error behaves like that of a mean of J numbers, so an interval
    built with the normal quantile z covers with probability
    P(|t_{J-1}| < z), not 0.95 (0.935 for J = 20). lme4's Wald and profile
    intervals of the fixed effects are checked against that, and against
    0.95 from above (they cannot over-cover by more than noise).
    """
    from scipy import stats

    _, summary, _ = _saved()
    assert summary["coverage"].dropna().between(0, 1).all()
    assert np.isfinite(summary["bias"]).all()
    assert (summary["rmse"] >= summary["bias"].abs() - 1e-12).all()
    at20 = summary[(summary["n_cafes"] == 20) & summary["parameter"].isin(FIXED)]
    assert len(at20) == 2 * 4  # lmer profile, lmer Wald, reml Wald, pymc HDI
    for row in at20.itertuples():
        assert abs(row.bias) <= 3 * row.bias_mcse, row
    z = stats.norm.ppf(0.975)
    expected = 2 * stats.t.cdf(z, 20 - 1) - 1
    freq = at20[at20["engine"] == "lmer"]
    assert len(freq) == 4
    for row in freq.itertuples():
        se = math.sqrt(expected * (1 - expected) / row.n_intervals)
        assert abs(row.coverage - expected) <= 3 * se, row
        assert row.coverage <= 0.95 + 3 * math.sqrt(0.95 * 0.05 / row.n_intervals)
    # the residual SD is estimated from ~n observations: close to unbiased
    sigma = summary[
        (summary["parameter"] == "sigma") & (summary["engine"] != "pymc")
        & (summary["n_cafes"] == 20)
    ]
    assert (sigma["bias"].abs() <= 0.02).all()
    # profile intervals of sigma at 20 cafes cover 95% within noise
    prof = sigma[sigma["interval"] == "profile"]
    for row in prof.itertuples():
        assert abs(row.coverage - 0.95) <= 3 * row.coverage_mcse + 1e-9, row


# ---------------------------------------------------------- the CLI, tiny


@pytest.mark.needs_r
@pytest.mark.slow
def test_cli_quick_run_reproduces_the_saved_replicates(tmp_path):
    """The CLI's --quick study (2 replicates at 5 and 20 cafes, PyMC with
    few draws) runs through the spawned workers and writes the saved files'
    shape; the lme4 and REML rows of replicates 0 and 1 equal the saved
    ones, since each replicate's seeds do not depend on the others."""
    long_saved, _, _ = _saved()
    out = tmp_path / "study"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "multilevel.study", "--quick", "--seed", "14",
           "--workers", "2", "--no-progress", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    long = pd.read_csv(out / "replicates.csv")
    summary = pd.read_csv(out / "summary.csv")
    prov = json.loads((out / "provenance.json").read_text())
    assert list(long.columns) == list(LONG_COLUMNS)
    assert prov["config"]["parametrisation"] == "auto"
    assert prov["config"]["target_accept"] == StudyConfig.target_accept
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert sorted(long["n_cafes"].unique()) == [5, 20]
    assert sorted(long["replicate"].unique()) == [0, 1]
    assert set(long["engine"]) == {"lmer", "reml", "pymc"}
    # 2 designs x 2 replicates x (lmer 6 + 2, reml 6, pymc 6) rows
    assert len(long) == 2 * 2 * (8 + 6 + 6)
    has = summary["n_intervals"] > 0
    assert summary.loc[has, "coverage"].between(0, 1).all()
    assert summary.loc[~has, "coverage"].isna().all()
    assert np.isfinite(summary["bias"]).all()
    ok = long[long["status"] != "error"]
    assert ok["estimate"].notna().all()
    assert (long["status"] != "error").all(), long["message"].dropna().unique()
    truth = simulate_cafes(seed=1).truth
    expected = pd.concat([truth.fixed, truth.varcorr])
    assert np.allclose(long["truth"], long["parameter"].map(expected))
    pm = long[long["engine"] == "pymc"]
    assert pm[["r_hat_max", "ess_bulk_min", "divergences"]].notna().all().all()
    assert prov["config"]["draws"] == 100
    assert "--quick" in prov["command"]
    # frequentist rows equal the saved study's rows for the same replicates
    keys = ["n_cafes", "replicate", "engine", "interval", "parameter"]
    cols = keys + ["estimate", "lower", "upper", "data_seed", "status"]
    mine = long.loc[long["engine"] != "pymc", cols]
    saved = long_saved.loc[
        long_saved["engine"].isin(["lmer", "reml"])
        & long_saved["replicate"].isin([0, 1])
        & long_saved["n_cafes"].isin([5, 20]),
        cols,
    ]
    both = mine.merge(saved, on=keys, suffixes=("", "_saved"))
    assert len(both) == len(mine) == len(saved)
    assert (both["data_seed"] == both["data_seed_saved"]).all()
    assert (both["status"] == both["status_saved"]).all()
    for col in ("estimate", "lower", "upper"):
        assert np.allclose(both[col], both[f"{col}_saved"], rtol=1e-6,
                           equal_nan=True), col


# ---- the replicates on another executor (a Dask cluster) -------------------

#: A study without R or MCMC: REML estimates only, two small designs.
_SMALL = StudyConfig(designs=((5, 3), (8, 2)), seed=21, engines=("reml",),
                     reml_intervals="none")
#: Columns that depend on the seeds only (not on where or how fast it ran).
_SEEDED = ["n_cafes", "replicate", "engine", "interval", "parameter",
           "estimate", "lower", "upper", "truth", "status", "data_seed",
           "sampler_seed", "singular"]


@pytest.mark.slow
def test_a_dask_cluster_gives_the_local_run_for_the_same_seed(tmp_path):
    """The replicate loop takes any concurrent.futures-style executor; on a
    LocalCluster, called directly and through ``--scheduler``, it gives
    exactly the rows the local worker processes give."""
    from distributed import Client, LocalCluster

    from multilevel.study.replicates import run_study

    local = run_study(_SMALL, workers=1, progress=False)
    out = tmp_path / "on-dask"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = run_study(_SMALL, workers=2, progress=False,
                           executor=client.get_executor())
        code = main(["--replicates", "3", "--cafes", "5",
                     "--replicates-small", "2", "--cafes-small", "8",
                     "--engines", "reml", "--reml-intervals", "none",
                     "--seed", "21", "--workers", "2", "--no-progress",
                     "--scheduler", cluster.scheduler_address,
                     "--out", str(out)])
    assert code == 0
    from_cli = pd.read_csv(out / "replicates.csv")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["machine"]["scheduler"] == cluster.scheduler_address
    pd.testing.assert_frame_equal(from_cli[_SEEDED], local[_SEEDED],
                                  check_dtype=False)
    assert len(local) == 5 * 6  # 5 replicates x 6 parameters
    assert (local["status"] != "error").all(), local["message"].dropna()
    pd.testing.assert_frame_equal(remote[_SEEDED], local[_SEEDED])
    # and a different seed gives different rows: the check can fail
    other = run_study(dataclasses.replace(_SMALL, seed=22), workers=1,
                      progress=False)
    assert not np.allclose(other["estimate"], local["estimate"])


def test_run_study_refuses_what_is_not_an_executor():
    from multilevel.study.replicates import run_study

    with pytest.raises(InputError, match="concurrent.futures-style executor"):
        run_study(_SMALL, workers=1, progress=False, executor="tcp://x:8786")


# ---- rows an engine does not change, taken from an earlier run ------------

#: A study small enough to run in this process: REML estimates at 5 cafes.
_TINY = StudyConfig(designs=((5, 2),), seed=21, engines=("reml",),
                    reml_intervals="none")


def _save_study(config: StudyConfig, folder: Path) -> pd.DataFrame:
    """Run ``config``'s replicates here and save them as the CLI does."""
    from multilevel.study.cli import provenance
    from multilevel.study.replicates import _long_frame, run_replicate

    rows = [r for j, i in config.tasks() for r in run_replicate(config, j, i)]
    long = _long_frame(rows)
    folder.mkdir(parents=True)
    long.to_csv(folder / "replicates.csv", index=False)
    (folder / "provenance.json").write_text(
        json.dumps(provenance(config, ["--seed", str(config.seed)], 0.0, 1)))
    return long


def test_reused_rows_equal_the_rows_fitted_again(tmp_path):
    """REML's rows taken from an earlier study (``reused_rows``, the CLI's
    ``--reuse-from``) are the rows fitting the replicates again gives, so a
    study that runs only the other engines has the same table: a
    replicate's rows depend only on its seeds."""
    from multilevel.study.replicates import _long_frame, reused_rows, run_replicate

    saved = _save_study(_TINY, tmp_path / "saved")
    others = dataclasses.replace(_TINY, engines=("lmer",))  # nothing is run
    reused, record = reused_rows(others, tmp_path / "saved", ("reml",))
    again = _long_frame(
        [r for j, i in _TINY.tasks() for r in run_replicate(_TINY, j, i)])
    assert len(reused) == len(again) == 2 * 6
    pd.testing.assert_frame_equal(_long_frame(reused.to_dict("records"))[_SEEDED],
                                  again[_SEEDED])
    pd.testing.assert_frame_equal(again[_SEEDED], saved[_SEEDED])
    assert record["engines"] == ["reml"]
    assert record["from"] == str(tmp_path / "saved")
    assert record["their_command"].endswith("--seed 21")
    # a replicate the saved study does not have is not invented
    more = dataclasses.replace(others, designs=((5, 3),))
    with pytest.raises(InputError, match="replicate 2 of the 5-cafe design"):
        reused_rows(more, tmp_path / "saved", ("reml",))


def test_reuse_is_refused_when_the_rows_cannot_be_the_same(tmp_path, capsys):
    saved = tmp_path / "saved"
    _save_study(_TINY, saved)
    out = tmp_path / "o"
    tiny = ["--replicates", "2", "--cafes", "5", "--cafes-small",
            "--reml-intervals", "none", "--workers", "1", "--no-progress"]

    def refused(extra, fragment):
        assert main(tiny + extra + ["--out", str(out)]) == 2
        assert fragment in capsys.readouterr().err
        assert not out.exists()

    reuse = ["--reuse-from", str(saved)]
    refused(["--engines", "lmer", *reuse, "--reuse-engines", "reml",
             "--seed", "22"], "its master seed is 21, this study's 22")
    refused(["--engines", "lmer", *reuse, "--reuse-engines", "reml",
             "--seed", "21", "--visits", "12"], "n_visits=10")
    refused(["--engines", "reml", *reuse, "--reuse-engines", "reml",
             "--seed", "21"], "both run and reused")
    refused(["--engines", "reml", *reuse, "--reuse-engines", "lmer",
             "--seed", "21"], "replicate 0 of the 5-cafe design is not there")
    refused(["--engines", "lmer", *reuse, "--reuse-engines", "reml",
             "--seed", "21", "--replicates", "3"],
            "replicate 2 of the 5-cafe design is not there")
    refused(["--engines", "lmer", "--reuse-engines", "reml", "--seed", "21"],
            "go together")
    refused(["--engines", "lmer", "--reuse-from", str(tmp_path / "nowhere"),
             "--reuse-engines", "reml", "--seed", "21"], "missing")


def test_the_provenance_names_the_code_the_run_started_with(tmp_path, monkeypatch):
    """The workers import the checkout as the run starts: that commit is the
    provenance's ``git``, and a checkout that changed during the run is
    recorded beside it (``git_at_end``), not in its place."""
    from multilevel.study import cli

    states = iter([{"commit": "a" * 40, "code_dirty": False},
                   {"commit": "b" * 40, "code_dirty": True}])
    monkeypatch.setattr(cli._provenance, "git_state", lambda: next(states))
    long, _, _ = _saved()
    part = long[(long["n_cafes"] == 5) & (long["replicate"] < 2)]
    monkeypatch.setattr(cli, "run_study", lambda config, **kwargs: part.copy())
    assert cli.main(["--quick", "--seed", "14", "--no-progress",
                     "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["git"] == {"commit": "a" * 40, "code_dirty": False}
    assert prov["git_at_end"] == {"commit": "b" * 40, "code_dirty": True}
    assert prov["date"] <= prov["date_finished"]
