"""Tests of multilevel.checking against references it does not compute itself:
lme4's resid() and fitted() on the reference cafes, pandas group statistics,
the normal model's moments, and the uniformity of the posterior predictive
p-value when the replicates come from the model that made the data, and
the draws and settings of a real PyMC fit."""

from __future__ import annotations

import functools
import statistics
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from multilevel.checking import (
    READINGS,
    afternoon_difference,
    max_cafe_sd,
    posterior_predictive,
    ppp_reading,
    ppp_value,
    residuals,
    sampler_row,
    spread_ratio,
)
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import ESS_BULK_MIN, R_HAT_MAX, Fit, varcorr_names
from multilevel.reml import fit_reml

REFERENCE = Path(__file__).resolve().parent / "reference"
TERMS = ["(Intercept)", "afternoon"]


@pytest.fixture(scope="module")
def reference_cafes() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "cafes.csv")


@pytest.fixture(scope="module")
def reference_reml(reference_cafes) -> Fit:
    return fit_reml(reference_cafes, CAFE_FORMULA)


def _coef_table(alpha, beta) -> pd.DataFrame:
    rows = []
    for j, (a, b) in enumerate(zip(alpha, beta)):
        for term, value in zip(TERMS, (a, b)):
            rows.append({"group": str(j), "term": term, "estimate": value,
                         "std_error": np.nan, "lower": np.nan,
                         "upper": np.nan})
    return pd.DataFrame(rows)


def _fake_bayes(alpha, beta, sigma, n_cafes) -> Fit:
    """A PyMC-shaped Fit whose posterior holds the given draws.

    ``alpha``, ``beta``: (chain, draw, cafe); ``sigma``: (chain, draw).
    """
    alpha, beta, sigma = (np.asarray(x, float) for x in (alpha, beta, sigma))
    cafes = [str(j) for j in range(n_cafes)]
    dims = ("chain", "draw", "cafe")
    posterior = xr.Dataset(
        {"alpha_cafe": (dims, alpha), "beta_cafe": (dims, beta),
         "sigma_within": (("chain", "draw"), sigma)},
        coords={"cafe": cafes},
    )
    fixed = pd.DataFrame(np.nan, index=pd.Index(TERMS, name="term"),
                         columns=["estimate", "std_error", "lower", "upper"])
    names = varcorr_names(TERMS, "cafe")
    varcorr = pd.DataFrame(np.nan, index=pd.Index(names, name="name"),
                           columns=["estimate", "lower", "upper"])
    coef = _coef_table(alpha.mean((0, 1)), beta.mean((0, 1)))
    return Fit(engine="PyMC", method="NUTS", formula=CAFE_FORMULA,
               fixed=fixed, varcorr=varcorr, ranef=coef, coef=coef,
               criterion=None, interval="HDI",
               raw=types.SimpleNamespace(posterior=posterior))


def _truth_fit(sim, chains=2, draws=250) -> Fit:
    """A 'posterior' that is the simulation's truth in every draw."""
    c = sim.truth.cafes
    shape = (chains, draws, len(c))
    return _fake_bayes(np.broadcast_to(c["alpha_cafe"].to_numpy(), shape),
                       np.broadcast_to(c["beta_cafe"].to_numpy(), shape),
                       np.full((chains, draws), sim.truth.sigma), len(c))


# ---------------------------------------------------------------- residuals


@pytest.mark.needs_r
def test_residuals_equal_lme4s_resid_and_fitted(reference_cafes, r_session):
    from multilevel.lmer import _quiet_console, fit_lmer

    fit = fit_lmer(reference_cafes, CAFE_FORMULA, profile=False)
    with _quiet_console():
        r_resid = np.asarray(r_session.r("stats::resid")(fit.raw), float)
        r_fitted = np.asarray(r_session.r("stats::fitted")(fit.raw), float)
    ours = residuals(fit, reference_cafes)
    np.testing.assert_allclose(ours["residual"], r_resid, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["fitted"], r_fitted, rtol=0, atol=1e-9)
    # the check can fail: the wrong cafes' coefficients do not match
    shuffled = reference_cafes.assign(
        cafe=np.roll(reference_cafes["cafe"].to_numpy(), 10))
    wrong = residuals(fit, shuffled)
    assert np.abs(wrong["residual"] - r_resid).max() > 0.1


def test_residuals_of_our_reml_match_lme4s_saved_modes(reference_cafes,
                                                       reference_reml):
    """Without R: lme4's saved fixed effects and conditional modes for the
    reference cafes give the residuals that fit_reml's Fit gives."""
    import json

    saved = json.loads((REFERENCE / "lme4_cafes.json").read_text())["REML"]
    modes = pd.read_csv(REFERENCE / "lme4_cafes_ranef_REML.csv",
                        dtype={"group": str})
    u = modes.pivot(index="group", columns="term", values="estimate")
    cafe = reference_cafes["cafe"].astype(str)
    a = saved["fixed"]["(Intercept)"] + u.loc[cafe, "(Intercept)"].to_numpy()
    b = saved["fixed"]["afternoon"] + u.loc[cafe, "afternoon"].to_numpy()
    expected = reference_cafes["wait"] - (a + b * reference_cafes["afternoon"])
    ours = residuals(reference_reml, reference_cafes)
    np.testing.assert_allclose(ours["residual"], expected, atol=1e-5)
    np.testing.assert_allclose(ours["fitted"] + ours["residual"],
                               reference_cafes["wait"], atol=1e-12)


def test_residuals_refuse_bad_input(reference_cafes, reference_reml):
    fit = reference_reml
    with pytest.raises(InputError, match="needs a Fit"):
        residuals("fit", reference_cafes)
    with pytest.raises(InputError, match="not in the fit"):
        residuals(fit, reference_cafes.assign(cafe=reference_cafes["cafe"]
                                              + 100))
    with pytest.raises(InputError, match="0 \\(morning\\) or 1"):
        residuals(fit, reference_cafes.assign(afternoon=2))
    with pytest.raises(InputError):
        residuals(fit, reference_cafes.drop(columns="wait"))


# ------------------------------------------------------------ spread ratio


def _residual_frame(fitted, residual) -> pd.DataFrame:
    return pd.DataFrame({"fitted": np.asarray(fitted, float),
                         "residual": np.asarray(residual, float)})


def test_spread_ratio_is_the_sd_of_the_upper_half_over_the_lower():
    # distinct fitted values, an even count: the median split is the sorted
    # split in two, and each half's SD is statistics.stdev's
    rng = np.random.default_rng(3)
    fitted, resid = rng.normal(size=40), rng.normal(size=40)
    order = np.argsort(fitted)
    lower, upper = resid[order[:20]], resid[order[20:]]
    expected = statistics.stdev(upper) / statistics.stdev(lower)
    got = spread_ratio(_residual_frame(fitted, resid))
    assert got == pytest.approx(expected, rel=1e-12)
    # and the reverse ordering gives the reciprocal
    assert spread_ratio(_residual_frame(-fitted, resid)) == pytest.approx(
        1 / expected, rel=1e-12)


def test_spread_ratio_puts_ties_at_the_median_in_the_lower_half():
    fitted = [0.0, 1.0, 1.0, 1.0, 2.0, 3.0]  # median 1: three ties
    resid = [1.0, -2.0, 0.5, 3.0, 4.0, -1.0]
    expected = statistics.stdev([4.0, -1.0]) / statistics.stdev(
        [1.0, -2.0, 0.5, 3.0])
    assert spread_ratio(_residual_frame(fitted, resid)) == pytest.approx(
        expected, rel=1e-12)


def test_spread_ratio_finds_a_spread_that_doubles():
    # residual SD 1 below the median fitted value and 2 above: the ratio
    # is 2 within 4 standard errors of a log ratio of two sample SDs,
    # sqrt(1 / (2 (m - 1)) + 1 / (2 (m - 1))) for halves of m visits
    rng = np.random.default_rng(8)
    m = 2000
    fitted = np.sort(rng.uniform(0, 5, size=2 * m))
    sd = np.where(np.arange(2 * m) < m, 1.0, 2.0)
    resid = rng.normal(size=2 * m) * sd
    ratio = spread_ratio(_residual_frame(fitted, resid))
    assert abs(np.log(ratio) - np.log(2)) < 4 * np.sqrt(1 / (m - 1))
    # a constant spread reads about 1 (the gate is not always 2)
    flat_resid = np.random.default_rng(9).normal(size=2 * m)
    flat = spread_ratio(_residual_frame(fitted, flat_resid))
    assert abs(np.log(flat)) < 4 * np.sqrt(1 / (m - 1))
    # the ratio does not depend on the residuals' unit
    assert spread_ratio(_residual_frame(fitted, 60 * resid)) == pytest.approx(
        ratio, rel=1e-12)


def test_spread_ratio_of_a_fit_reads_its_residuals(reference_cafes,
                                                    reference_reml):
    res = residuals(reference_reml, reference_cafes)
    high = res["fitted"] > res["fitted"].median()
    by_pandas = (res.loc[high, "residual"].std()
                 / res.loc[~high, "residual"].std())
    assert spread_ratio(res) == pytest.approx(by_pandas, rel=1e-12)


def test_spread_ratio_refuses_bad_input():
    good = _residual_frame([1.0, 2.0, 3.0, 4.0], [0.1, -0.2, 0.3, -0.1])
    with pytest.raises(InputError, match="DataFrame"):
        spread_ratio(good.to_numpy())
    with pytest.raises(InputError, match=r"missing \['residual'\]"):
        spread_ratio(good[["fitted"]])
    with pytest.raises(InputError, match="NaN"):
        spread_ratio(good.assign(residual=[0.1, np.nan, 0.3, 0.2]))
    with pytest.raises(InputError, match="all equal"):
        spread_ratio(good.assign(fitted=2.0))
    with pytest.raises(InputError, match="each half needs two"):
        spread_ratio(good.iloc[:3])


# ------------------------------------------------------- posterior predictive


def test_replicates_have_the_models_moments():
    sim = simulate_cafes(seed=3, n_cafes=5, n_visits=4)
    fit = _truth_fit(sim, chains=4, draws=2000)
    rep = posterior_predictive(fit, sim.data, seed=1)
    assert rep.shape == (8000, len(sim.data))
    c = sim.truth.cafes.set_index(sim.truth.cafes["cafe"].astype(str))
    cafe = sim.data["cafe"].astype(str)
    mu = (c.loc[cafe, "alpha_cafe"].to_numpy()
          + c.loc[cafe, "beta_cafe"].to_numpy() * sim.data["afternoon"])
    se = sim.truth.sigma / np.sqrt(rep.shape[0])
    assert np.abs(rep.mean(axis=0) - mu).max() < 4.5 * se
    sd = rep.std(axis=0, ddof=1)
    # SE of an SD is about sigma / sqrt(2 (n - 1))
    assert np.abs(sd - sim.truth.sigma).max() < 4.5 * sim.truth.sigma / np.sqrt(
        2 * (rep.shape[0] - 1))
    # visits are independent given the draw
    cor = np.corrcoef(rep[:, :6], rowvar=False)
    assert np.abs(cor[np.triu_indices(6, 1)]).max() < 4.5 / np.sqrt(8000)


def test_each_row_follows_its_own_draw_chains_stacked_in_order():
    n_cafes = 3
    data = pd.DataFrame({"cafe": [0, 0, 1, 1, 2, 2], "afternoon": [0, 1] * 3,
                         "wait": np.arange(6.0)})
    # draw k of chain c has alpha = 10 c + k, beta = 1, sigma = 0:
    # the replicate is the mean itself
    alpha = np.array([[[10 * c + k] * n_cafes for k in range(3)]
                      for c in range(2)])
    fit = _fake_bayes(alpha, np.ones_like(alpha), np.zeros((2, 3)), n_cafes)
    rep = posterior_predictive(fit, data, seed=0)
    expected = np.array([10 * c + k for c in range(2) for k in range(3)],
                        float)[:, None] + data["afternoon"].to_numpy()
    np.testing.assert_array_equal(rep, expected)
    np.testing.assert_array_equal(
        posterior_predictive(fit, data, seed=0, draws=2), expected[:2])


def test_replicates_are_reproducible_and_seeded():
    sim = simulate_cafes(seed=3, n_cafes=5, n_visits=4)
    fit = _truth_fit(sim)
    a = posterior_predictive(fit, sim.data, seed=7)
    np.testing.assert_array_equal(a, posterior_predictive(fit, sim.data,
                                                          seed=7))
    assert not np.allclose(a, posterior_predictive(fit, sim.data, seed=8))


def test_posterior_predictive_refuses_bad_input(reference_cafes,
                                                reference_reml):
    sim = simulate_cafes(seed=3, n_cafes=5, n_visits=4)
    fit = _truth_fit(sim)
    point = reference_reml
    with pytest.raises(InputError, match="fit_pymc"):
        posterior_predictive(point, reference_cafes, seed=1)
    with pytest.raises(InputError, match="at most 500"):
        posterior_predictive(fit, sim.data, seed=1, draws=501)
    with pytest.raises(InputError, match="not in the fit"):
        posterior_predictive(fit, reference_cafes, seed=1)
    with pytest.raises(InputError):
        posterior_predictive(fit, sim.data, seed=None)


# --------------------------------------------------------------- statistics


def test_statistics_equal_pandas_group_statistics(reference_cafes):
    d = reference_cafes
    assert max_cafe_sd(d["wait"], d)[0] == pytest.approx(
        d.groupby("cafe")["wait"].std().max(), abs=1e-12)
    means = d.groupby("afternoon")["wait"].mean()
    assert afternoon_difference(d["wait"], d)[0] == pytest.approx(
        means[1] - means[0], abs=1e-12)
    # one value per replicated data set
    two = np.vstack([d["wait"], d["wait"] * 2])
    np.testing.assert_allclose(max_cafe_sd(two, d),
                               max_cafe_sd(d["wait"], d)[0] * np.array([1, 2]))


def test_max_cafe_sd_skips_cafes_with_one_visit():
    data = pd.DataFrame({"cafe": [0, 1, 1, 2], "afternoon": [0, 0, 1, 0],
                         "wait": [100.0, 1.0, 3.0, -50.0]})
    assert max_cafe_sd(data["wait"], data)[0] == pytest.approx(np.sqrt(2))


def test_statistics_refuse_bad_input(reference_cafes):
    d = reference_cafes
    with pytest.raises(InputError, match="one value per visit"):
        max_cafe_sd(d["wait"][:-1], d)
    with pytest.raises(InputError, match="NaN"):
        afternoon_difference(d["wait"].where(d.index > 0), d)
    with pytest.raises(InputError, match="both morning and afternoon"):
        afternoon_difference(d["wait"], d.assign(afternoon=0))
    singles = pd.DataFrame({"cafe": [0, 1], "afternoon": [0, 1],
                            "wait": [1.0, 2.0]})
    with pytest.raises(InputError, match="two visits"):
        max_cafe_sd(singles["wait"], singles)


# ------------------------------------------------------------------ p-values


def test_ppp_value_known_answers():
    assert ppp_value(5, np.arange(10)) == 0.5  # 5, 6, 7, 8, 9
    assert ppp_value(10, np.arange(10)) == 0.0
    assert ppp_value(-1, np.arange(10)) == 1.0
    assert ppp_value(np.array([3.0]), [3.0, 3.0]) == 1.0  # ties count


@functools.cache
def _p_values(sigma_scale: float, n_sets: int = 300, n_rep: int = 400):
    """p-values of max_cafe_sd for data sets drawn from one cafe model,
    with replicates from the same model whose sigma is scaled."""
    sim = simulate_cafes(seed=11, n_cafes=10, n_visits=6)
    fit = _truth_fit(sim, chains=2, draws=n_rep // 2)
    if sigma_scale != 1:
        post = fit.raw.posterior
        fit.raw = types.SimpleNamespace(posterior=post.assign(
            sigma_within=post["sigma_within"] * sigma_scale))
    truth_rep = _truth_fit(sim, chains=1, draws=n_sets)
    observed_sets = posterior_predictive(truth_rep, sim.data, seed=101)
    observed = max_cafe_sd(observed_sets, sim.data)
    ps = []
    for k in range(n_sets):
        rep = posterior_predictive(fit, sim.data, seed=1000 + k)
        ps.append(ppp_value(observed[k], max_cafe_sd(rep, sim.data)))
    return np.array(ps)


def test_ppp_value_is_uniform_when_the_model_made_the_data():
    ps = _p_values(1.0)
    assert stats.kstest(ps, "uniform").pvalue > 0.01
    assert abs(ps.mean() - 0.5) < 4 / np.sqrt(12 * len(ps))


def test_ppp_value_detects_a_model_with_too_small_a_sigma():
    # the gate fails on a wrong model: replicates from sigma 0.7 x the truth
    ps = _p_values(0.7)
    assert stats.kstest(ps, "uniform").pvalue < 1e-6
    # small p-values too often: more than 4 binomial SEs above 5%
    assert (ps < 0.05).mean() > 0.05 + 4 * np.sqrt(0.05 * 0.95 / len(ps))


def test_ppp_value_refuses_bad_input():
    with pytest.raises(InputError, match="one number"):
        ppp_value([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="no values"):
        ppp_value(1.0, [])
    with pytest.raises(InputError, match="NaN"):
        ppp_value(1.0, [np.nan, 1.0])


def test_ppp_reading_known_answers():
    assert ppp_reading(0.01) == "above"  # few replicates reach the data
    assert ppp_reading(0.99) == "below"
    assert ppp_reading(0.5) == "inside"
    assert ppp_reading(0.05) == ppp_reading(0.95) == "inside"  # strict
    assert ppp_reading(0) == "above" and ppp_reading(1) == "below"
    assert ppp_reading(0.08, level=0.1) == "above"
    assert ppp_reading(np.float64(0.97)) == "below"


def test_ppp_reading_of_one_minus_p_is_the_other_way():
    flip = {"above": "below", "below": "above", "inside": "inside"}
    for p in (np.arange(200) + 0.5) / 200:  # none on a level's edge
        for level in (0.01, 0.05, 0.2):
            assert ppp_reading(p, level) in READINGS
            assert ppp_reading(1 - p, level) == flip[ppp_reading(p, level)]


def test_ppp_reading_flags_each_tail_at_its_level_when_the_model_is_right():
    # p-values of data drawn from the replicates' own model are uniform, so
    # each tail is read in a share `level` of the data sets, within 4
    # binomial standard errors
    ps = _p_values(1.0)
    readings = np.array([ppp_reading(p) for p in ps])
    se = np.sqrt(0.05 * 0.95 / len(ps))
    for tail in ("above", "below"):
        assert abs((readings == tail).mean() - 0.05) < 4 * se
    # replicates with too small a sigma: the data read "above" far too often
    wrong = np.array([ppp_reading(p) for p in _p_values(0.7)])
    assert (wrong == "above").mean() > 0.05 + 4 * se


def test_ppp_reading_refuses_bad_input():
    for p in (-0.1, 1.2, np.nan, True, "0.5", None):
        with pytest.raises(InputError, match="a number from 0 to 1"):
            ppp_reading(p)
    for level in (0, 0.5, 0.7, -0.1):
        with pytest.raises(InputError, match="level"):
            ppp_reading(0.3, level=level)


@pytest.fixture(scope="module")
def small_pymc():
    """(simulation, fit_pymc's fit): five cafes, two chains of 300 draws."""
    from multilevel.bayes import fit_pymc

    sim = simulate_cafes(seed=5, n_cafes=5, n_visits=4)
    return sim, fit_pymc(sim.data, seed=5, draws=300, tune=300, chains=2)


@pytest.mark.slow
def test_replicates_match_pymcs_own_posterior_predictive(small_pymc):
    """PyMC's sample_posterior_predictive on the same draws is a second
    engine: per visit, the two agree in mean and SD up to Monte Carlo error."""
    import pymc as pm

    from multilevel.bayes import cafe_model

    sim, fit = small_pymc
    ours = posterior_predictive(fit, sim.data, seed=1)
    with cafe_model(sim.data):
        theirs = pm.sample_posterior_predictive(
            fit.raw, random_seed=2, progressbar=False)
    theirs = np.asarray(theirs.posterior_predictive["wait"].transpose(
        "chain", "draw", "obs"), float).reshape(ours.shape)
    n = ours.shape[0]
    sd = theirs.std(axis=0, ddof=1)
    se_mean = np.sqrt(2) * sd / np.sqrt(n)
    assert (np.abs(ours.mean(axis=0) - theirs.mean(axis=0))
            < 4.5 * se_mean).all()
    # SDs: each has SE about sd / sqrt(2 (n - 1)); the difference sqrt(2) x
    assert (np.abs(ours.std(axis=0, ddof=1) - sd)
            < 4.5 * sd / np.sqrt(n - 1)).all()
    # and a statistic's p-value against PyMC's replicates is not extreme
    t_ours = max_cafe_sd(ours, sim.data)
    t_theirs = max_cafe_sd(theirs, sim.data)
    assert stats.ks_2samp(t_ours, t_theirs).pvalue > 0.001


# ------------------------------------------------------------ sampler rows


def _with_diagnostics(**diagnostics) -> Fit:
    sim = simulate_cafes(seed=2, n_cafes=4, n_visits=2)
    fit = _truth_fit(sim, chains=2, draws=5)
    fit.diagnostics = {"target_accept": 0.8, "divergences": 0,
                       "r_hat_max": 1.002, "ess_bulk_min": 812.4,
                       **diagnostics}
    return fit


def test_sampler_row_reads_the_settings_and_applies_the_rule():
    row = sampler_row(_with_diagnostics())
    assert row == {"target_accept": 0.8, "divergences": 0, "r_hat_max": 1.002,
                   "ess_bulk_min": 812, "converged": True}
    assert isinstance(row["ess_bulk_min"], int)
    # the rule at its edges: r-hat below R_HAT_MAX, ESS at least
    # ESS_BULK_MIN, no divergence
    assert sampler_row(_with_diagnostics(
        ess_bulk_min=float(ESS_BULK_MIN)))["converged"]
    for broken in ({"r_hat_max": R_HAT_MAX}, {"divergences": 1},
                   {"ess_bulk_min": ESS_BULK_MIN - 0.5},
                   {"r_hat_max": float("nan")}):
        assert not sampler_row(_with_diagnostics(**broken))["converged"]


def test_sampler_row_refuses_a_fit_without_sampler_diagnostics(
        reference_reml):
    with pytest.raises(InputError, match="from numpy"):
        sampler_row(reference_reml)
    with pytest.raises(InputError, match="got dict"):
        sampler_row({"r_hat_max": 1.0})
    fit = _with_diagnostics()
    del fit.diagnostics["target_accept"]
    with pytest.raises(InputError, match="target_accept"):
        sampler_row(fit)


@pytest.mark.slow
def test_sampler_row_of_a_pymc_fit_agrees_with_its_draws(small_pymc):
    """The settings and counts of a real fit, read from the draws and the
    sampler's defaults rather than from its diagnostics."""
    import arviz as az

    from multilevel.bayes import TARGET_ACCEPT

    _, fit = small_pymc
    row = sampler_row(fit)
    assert row["target_accept"] == TARGET_ACCEPT
    assert row["divergences"] == int(fit.raw.sample_stats["diverging"].sum())
    scalars = fit.raw.posterior[["a_bar", "b_bar", "sigma_within"]]
    assert row["r_hat_max"] >= float(az.rhat(scalars).to_array().max())
    assert row["ess_bulk_min"] <= float(
        az.ess(scalars, method="bulk").to_array().min()) + 0.5
