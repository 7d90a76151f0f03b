"""Tests of multilevel.pooling against references it does not compute itself:
numpy least squares per cafe, lme4's lmList, statsmodels OLS, lme4 and
fit_reml's conditional modes, and the algebra of partial pooling."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import Fit, varcorr_names, varying_covariance
from multilevel.plots import no_pooling_coef
from multilevel.pooling import (
    coef_wide,
    complete_pooling,
    group_counts,
    partial_pooling_intercepts,
    plot_posterior_vs_point,
    pooling_table,
    pooling_weight,
    shrinkage,
    shrinkage_weight,
    varcorr_draws,
)
from multilevel.reml import fit_reml

TERMS = ["(Intercept)", "afternoon"]
INTERCEPT_ONLY = "wait ~ 1 + (1 | cafe)"
VISITS = [1, 2, 3, 4, 6, 8, 10, 15, 20, 30] * 2


@pytest.fixture(scope="module")
def uneven():
    """Cafes with 1 to 30 visits; the last three never in the afternoon."""
    return simulate_cafes(seed=14, visits=VISITS, no_afternoon=3)


@pytest.fixture(scope="module")
def partial_fit(uneven):
    """Partial pooling by our REML (no R needed)."""
    return fit_reml(uneven.data, CAFE_FORMULA)


# ------------------------------------------------------------- no pooling


def test_no_pooling_is_numpy_lstsq_per_cafe(uneven):
    data = uneven.data
    wide = coef_wide(no_pooling_coef(data, CAFE_FORMULA))
    assert list(wide.columns) == TERMS
    n_full = 0
    for cafe, rows in data.groupby("cafe"):
        X = np.column_stack([np.ones(len(rows)), rows["afternoon"]])
        y = rows["wait"].to_numpy()
        got = wide.loc[str(cafe)].to_numpy(float)
        if np.linalg.matrix_rank(X) == 2:
            n_full += 1
            np.testing.assert_allclose(
                got, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10
            )
        else:  # one visit, or mornings only: the slope is not identified
            assert rows["afternoon"].eq(0).all()
            assert np.isnan(got[1])
            np.testing.assert_allclose(got[0], y.mean(), rtol=1e-12)
    # cafes 0 and 10 have one visit; 17, 18, 19 only mornings
    assert n_full == 20 - 5
    assert wide.loc[["0", "10", "17", "18", "19"], "afternoon"].isna().all()


@pytest.mark.needs_r
def test_no_pooling_matches_lme4_lmList(uneven, r_session):
    ro = r_session
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    from multilevel.lmer import _quiet_console

    data = uneven.data.assign(cafe=uneven.data["cafe"].astype(str))
    with _quiet_console(), localconverter(ro.default_converter
                                          + pandas2ri.converter):
        frame = ro.conversion.py2rpy(data)
        r_coef = ro.r(
            """function(d) {
                 d$cafe <- factor(d$cafe, levels = unique(d$cafe))
                 m <- lme4::lmList(wait ~ afternoon | cafe, data = d,
                                   pool = FALSE)
                 cf <- coef(m)
                 data.frame(cafe = rownames(cf), a = cf[[1]], b = cf[[2]])
               }"""
        )(frame)
        r_coef = ro.conversion.rpy2py(r_coef)
    ours = coef_wide(no_pooling_coef(uneven.data, CAFE_FORMULA))
    r_coef = r_coef.set_index("cafe")
    np.testing.assert_allclose(ours.loc[r_coef.index, "(Intercept)"],
                               r_coef["a"], rtol=1e-10)
    # R's lm reports NA for the slope exactly where ours is NaN
    np.testing.assert_array_equal(
        ours.loc[r_coef.index, "afternoon"].isna(), r_coef["b"].isna()
    )
    ok = r_coef["b"].notna()
    np.testing.assert_allclose(ours.loc[r_coef.index[ok], "afternoon"],
                               r_coef.loc[ok, "b"], rtol=1e-10)


# ------------------------------------------------------- complete pooling


def test_complete_pooling_is_statsmodels_ols(uneven):
    import statsmodels.api as sm

    data = uneven.data
    ols = sm.OLS(data["wait"], sm.add_constant(data[["afternoon"]])).fit()
    got = complete_pooling(data, CAFE_FORMULA)
    assert list(got.index) == TERMS
    np.testing.assert_allclose(got["estimate"], ols.params.to_numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(got["std_error"], ols.bse.to_numpy(),
                               rtol=1e-10)


def test_complete_pooling_refuses_collinear_terms(uneven):
    mornings = uneven.data[uneven.data["afternoon"] == 0]
    with pytest.raises(InputError, match="collinear"):
        complete_pooling(mornings, CAFE_FORMULA)
    with pytest.raises(InputError, match="DataFrame"):
        complete_pooling(mornings.to_numpy(), CAFE_FORMULA)


def test_group_counts_are_pandas_counts(uneven):
    data = uneven.data
    counts = group_counts(data, CAFE_FORMULA)
    by = data.groupby("cafe")
    np.testing.assert_array_equal(counts["n"], by.size().to_numpy())
    np.testing.assert_array_equal(counts["n_afternoon"],
                                  by["afternoon"].sum().to_numpy())
    assert list(counts.index) == [str(j) for j in range(20)]
    assert counts.loc[["17", "18", "19"], "n_afternoon"].eq(0).all()


# ----------------------------------------------------------- side by side


def test_pooling_table_lines_up_the_three(uneven, partial_fit):
    data = uneven.data
    table = pooling_table(data, CAFE_FORMULA, {"REML": partial_fit})
    assert table.index.names == ["group", "term"]
    assert len(table) == 2 * 20
    assert list(table.columns) == ["n", "n_afternoon", "no pooling",
                                   "complete pooling", "REML"]
    ols = complete_pooling(data, CAFE_FORMULA)["estimate"]
    for term in TERMS:
        part = table.xs(term, level="term")
        assert np.allclose(part["complete pooling"], ols[term])
        coef = partial_fit.coef[partial_fit.coef["term"] == term]
        np.testing.assert_allclose(
            part.loc[coef["group"], "REML"], coef["estimate"], rtol=1e-12
        )
    own = coef_wide(no_pooling_coef(data, CAFE_FORMULA))
    np.testing.assert_array_equal(
        table.xs("afternoon", level="term")["no pooling"].to_numpy(),
        own.loc[[str(j) for j in range(20)], "afternoon"].to_numpy(),
    )
    np.testing.assert_array_equal(
        table.xs("(Intercept)", level="term")["n"], VISITS
    )


def test_pooling_table_refuses_bad_partial(uneven, partial_fit):
    with pytest.raises(InputError, match="non-empty dict"):
        pooling_table(uneven.data, CAFE_FORMULA, {})
    with pytest.raises(InputError, match="reserved"):
        pooling_table(uneven.data, CAFE_FORMULA, {"no pooling": partial_fit})
    fewer = partial_fit.coef[partial_fit.coef["group"] != "3"]
    with pytest.raises(InputError, match="same data"):
        pooling_table(uneven.data, CAFE_FORMULA, {"x": fewer})


def test_shrinkage_is_the_arrow(uneven, partial_fit):
    own = no_pooling_coef(uneven.data, CAFE_FORMULA)
    moved = shrinkage(own, partial_fit)
    own_w, pp_w = coef_wide(own), coef_wide(partial_fit)
    for g in moved.index:
        d = pp_w.loc[g, TERMS].to_numpy(float) - own_w.loc[g, TERMS].to_numpy(
            float
        )
        np.testing.assert_allclose(moved.loc[g, TERMS].to_numpy(float), d)
        if np.isfinite(d).all():
            assert moved.loc[g, "distance"] == pytest.approx(np.hypot(*d))
        else:
            assert np.isnan(moved.loc[g, "distance"])
    assert moved["distance"].notna().sum() == 15


def test_shrinkage_refuses_mismatch(partial_fit):
    with pytest.raises(InputError, match="different groups"):
        shrinkage(partial_fit.coef[partial_fit.coef["group"] != "0"],
                  partial_fit)
    with pytest.raises(InputError, match="lacks term"):
        shrinkage(partial_fit, partial_fit, terms=["(Intercept)", "x"])
    with pytest.raises(InputError, match="Fit or a DataFrame"):
        shrinkage([1, 2], partial_fit)


# ------------------------------------------ partial pooling in closed form


def test_pooling_weight_limits():
    assert pooling_weight(1, 1.0, 1.0) == pytest.approx(0.5)
    w = pooling_weight(np.array([1, 2, 10, 1e9]), 0.5, 1.0)
    assert np.all(np.diff(w) > 0) and w[-1] == pytest.approx(1.0)
    # equal to the precision share n/sigma^2 / (n/sigma^2 + 1/sigma_a^2)
    n = np.arange(1, 6)
    np.testing.assert_allclose(pooling_weight(n, 2.0, 3.0),
                               (n / 9) / (n / 9 + 1 / 4))
    with pytest.raises(InputError, match="counts >= 1"):
        pooling_weight([0, 1], 1.0, 1.0)
    with pytest.raises(InputError, match="> 0"):
        pooling_weight(3, 0.0, 1.0)


def _intercept_check(fit, data):
    """The closed form at the fit's own estimates reproduces its coef."""
    vc = fit.varcorr["estimate"]
    closed = partial_pooling_intercepts(
        data, INTERCEPT_ONLY, float(fit.fixed.loc["(Intercept)", "estimate"]),
        float(vc["sd_(Intercept)|cafe"]), float(vc["sigma"]),
    )
    coef = fit.coef.set_index("group")["estimate"]
    np.testing.assert_allclose(closed.loc[coef.index, "estimate"], coef,
                               rtol=1e-6, atol=1e-8)
    return closed


def test_closed_form_equals_fit_reml_unbalanced(uneven):
    data = uneven.data
    closed = _intercept_check(fit_reml(data, INTERCEPT_ONLY), data)
    np.testing.assert_allclose(closed["own"],
                               data.groupby("cafe")["wait"].mean().to_numpy())
    by_n = closed.groupby("n")["weight"].first()
    assert by_n.is_monotonic_increasing  # more visits, more own weight


@pytest.mark.needs_r
def test_closed_form_equals_lme4_unbalanced(uneven):
    from multilevel.lmer import fit_lmer

    data = uneven.data
    _intercept_check(fit_lmer(data, INTERCEPT_ONLY, profile=False), data)


def _between(fit, data):
    """Balanced intercept-only: each cafe's estimate lies between its own
    mean and the population mean, moved by the same fraction for all."""
    mu = float(fit.fixed.loc["(Intercept)", "estimate"])
    own = data.groupby("cafe")["wait"].mean()
    own.index = own.index.astype(str)
    coef = fit.coef.set_index("group")["estimate"].loc[own.index]
    lo, hi = np.minimum(own, mu), np.maximum(own, mu)
    assert ((coef > lo) & (coef < hi)).all()
    fraction = (coef - mu) / (own - mu)
    assert fraction.max() - fraction.min() < 1e-6
    assert 0 < fraction.mean() < 1
    # in the balanced case the intercept is the grand mean
    assert mu == pytest.approx(data["wait"].mean(), rel=1e-8)


def test_balanced_intercept_only_lies_between_fit_reml():
    data = simulate_cafes(seed=3, n_visits=4).data
    _between(fit_reml(data, INTERCEPT_ONLY), data)


@pytest.mark.needs_r
def test_balanced_intercept_only_lies_between_lme4():
    from multilevel.lmer import fit_lmer

    data = simulate_cafes(seed=3, n_visits=4).data
    _between(fit_lmer(data, INTERCEPT_ONLY, profile=False), data)


def test_partial_pooling_intercepts_refuses_slopes(uneven):
    with pytest.raises(InputError, match="intercept-only"):
        partial_pooling_intercepts(uneven.data, CAFE_FORMULA, 3.0, 1.0, 0.5)
    with pytest.raises(InputError, match="mean"):
        partial_pooling_intercepts(uneven.data, INTERCEPT_ONLY, np.nan, 1.0,
                                   0.5)


# --------------------------------------------- posterior beside a point


def _fake_bayes_fit(seed: int = 1) -> tuple[Fit, tuple]:
    """A Fit whose raw holds known draws in the layout of cafe_model."""
    rng = np.random.default_rng(seed)
    chains, draws = 3, 200
    sd = np.abs(rng.normal([1.0, 0.2], 0.1, size=(chains, draws, 2)))
    rho = np.tanh(rng.normal(0.0, 0.5, size=(chains, draws)))
    sigma = np.abs(rng.normal(0.5, 0.05, size=(chains, draws)))
    posterior = xr.Dataset(
        {
            "sigma_cafe": (("chain", "draw", "effect"), sd),
            "rho": (("chain", "draw"), rho),
            "sigma_within": (("chain", "draw"), sigma),
        },
        coords={"effect": TERMS},
    )
    names = varcorr_names(TERMS, "cafe")
    est = [sd[..., 0].mean(), rho.mean(), sd[..., 1].mean(), sigma.mean()]
    empty = pd.DataFrame(columns=["group", "term", "estimate", "std_error",
                                  "lower", "upper"])
    return Fit(
        engine="PyMC", method="fake", formula=CAFE_FORMULA,
        fixed=pd.DataFrame(columns=["estimate", "std_error", "lower",
                                    "upper"]),
        varcorr=pd.DataFrame({"estimate": est, "lower": np.nan,
                              "upper": np.nan}, index=names),
        ranef=empty, coef=empty, criterion=None, interval="HDI",
        raw=types.SimpleNamespace(posterior=posterior),
    ), (sd, rho, sigma)


def test_varcorr_draws_maps_names_to_draws():
    fit, (sd, rho, sigma) = _fake_bayes_fit()
    draws = varcorr_draws(fit)
    assert list(draws.columns) == list(fit.varcorr.index)
    assert len(draws) == sd.shape[0] * sd.shape[1]
    np.testing.assert_array_equal(draws["sd_(Intercept)|cafe"],
                                  sd[..., 0].ravel())
    np.testing.assert_array_equal(draws["sd_afternoon|cafe"],
                                  sd[..., 1].ravel())
    np.testing.assert_array_equal(
        draws["cor_afternoon.(Intercept)|cafe"], rho.ravel()
    )
    np.testing.assert_array_equal(draws["sigma"], sigma.ravel())
    np.testing.assert_allclose(draws.mean(), fit.varcorr["estimate"])


def test_varcorr_draws_refuses_a_point_fit(partial_fit):
    with pytest.raises(InputError, match="fit_pymc"):
        varcorr_draws(partial_fit)


def test_plot_posterior_vs_point_draws_what_it_says(partial_fit):
    bayes, (sd, rho, sigma) = _fake_bayes_fit()
    names = ["cor_afternoon.(Intercept)|cafe", "sd_afternoon|cafe"]
    truth = pd.Series({"sd_afternoon|cafe": 0.5})
    fig = plot_posterior_vs_point(bayes, partial_fit, names, truth=truth)
    assert len(fig.axes) == 2
    for ax, name in zip(fig.axes, names):
        lines = {ln.get_gid(): ln for ln in ax.lines}
        assert lines["point"].get_xdata()[0] == pytest.approx(
            partial_fit.varcorr.loc[name, "estimate"])
        assert lines["posterior-mean"].get_xdata()[0] == pytest.approx(
            varcorr_draws(bayes)[name].mean())
        bars = [p for p in ax.patches if p.get_gid() == "posterior"]
        area = sum(b.get_width() * b.get_height() for b in bars)
        assert area == pytest.approx(1.0)  # a density histogram
    assert "truth" in {ln.get_gid() for ln in fig.axes[1].lines}
    assert "truth" not in {ln.get_gid() for ln in fig.axes[0].lines}
    with pytest.raises(InputError, match="not a varcorr row"):
        plot_posterior_vs_point(bayes, partial_fit, ["nope"])


@pytest.mark.slow
def test_varcorr_draws_of_a_real_pymc_fit():
    from multilevel.bayes import fit_pymc

    sim = simulate_cafes(n_cafes=8, n_visits=6, seed=5)
    fit = fit_pymc(sim.data, draws=200, tune=300, chains=2, seed=5,
                   centered=False)
    draws = varcorr_draws(fit)
    np.testing.assert_allclose(draws.mean(), fit.varcorr["estimate"],
                               rtol=1e-10)
    np.testing.assert_allclose(draws.std(ddof=1), fit.varcorr["std_error"],
                               rtol=1e-10)


# ------------------------------------------------ the matrix weight W_j

REFERENCE = Path(__file__).resolve().parent / "reference"


def _lme4_cafes():
    data = pd.read_csv(REFERENCE / "cafes.csv", dtype={"cafe": int})
    saved = json.loads((REFERENCE / "lme4_cafes.json").read_text())["REML"]
    ranef = pd.read_csv(REFERENCE / "lme4_cafes_ranef_REML.csv",
                        dtype={"group": str})
    return data, saved, ranef


def test_shrinkage_weight_reproduces_lme4s_coef():
    """beta + W_j (own - beta), with lme4's S, sigma and beta, is lme4's
    coef (beta + its conditional modes) for every cafe; own = each cafe's
    least squares by numpy."""
    data, saved, ranef = _lme4_cafes()
    vc = pd.Series(saved["varcorr"])
    S = varying_covariance(vc)
    beta = np.array([saved["fixed"][t] for t in TERMS])
    modes = ranef.pivot(index="group", columns="term", values="estimate")
    gaps = []
    for cafe, rows in data.groupby("cafe"):
        Z_j = np.column_stack([np.ones(len(rows)), rows["afternoon"]])
        own = np.linalg.lstsq(Z_j, rows["wait"].to_numpy(), rcond=None)[0]
        W_j = shrinkage_weight(Z_j, S, vc["sigma"])
        by_weight = beta + W_j @ (own - beta)
        lme4_coef = beta + modes.loc[str(cafe), TERMS].to_numpy()
        gaps.append(np.abs(by_weight - lme4_coef).max())
    assert len(gaps) == 20
    assert max(gaps) < 1e-9


def test_shrinkage_weight_reproduces_fit_reml_with_uneven_visits(uneven):
    """With 1 to 30 visits every cafe has its own W_j; for the cafes with
    an own slope, beta + W_j (own - beta) is fit_reml's coef."""
    data = uneven.data
    fit = fit_reml(data, CAFE_FORMULA, intervals="none")
    beta = fit.fixed["estimate"].to_numpy()
    coef = coef_wide(fit)
    weights = []
    for cafe, rows in data.groupby("cafe"):
        if rows["afternoon"].nunique() < 2:
            continue
        Z_j = np.column_stack([np.ones(len(rows)), rows["afternoon"]])
        own = np.linalg.lstsq(Z_j, rows["wait"].to_numpy(), rcond=None)[0]
        W_j = shrinkage_weight(Z_j, fit.S, fit.varcorr.loc["sigma", "estimate"])
        weights.append(W_j[1, 1])
        np.testing.assert_allclose(beta + W_j @ (own - beta),
                                   coef.loc[str(cafe), TERMS], atol=1e-8)
    assert len(weights) >= 15
    assert max(weights) - min(weights) > 0.2  # the slope weight varies by cafe


def test_shrinkage_weight_with_one_term_is_the_scalar_weight():
    for n in (1, 4, 30):
        W = shrinkage_weight(np.ones((n, 1)), [[1.3**2]], 0.7)
        assert W.shape == (1, 1)
        assert W[0, 0] == pytest.approx(pooling_weight(n, 1.3, 0.7), rel=1e-12)


@pytest.mark.parametrize(
    "Z_j, S, sigma, fragment",
    [
        (np.ones((3, 2)), np.eye(3), 1.0, "same q"),
        (np.ones(3), np.eye(1), 1.0, "same q"),
        (np.ones((3, 2)), [[1.0, 1.0], [1.0, 1.0]], 1.0, "positive definite"),
        (np.ones((3, 2)), [[1.0, 0.5], [0.1, 1.0]], 1.0, "symmetric"),
        (np.ones((3, 2)), [[1.0, np.nan], [np.nan, 1.0]], 1.0, "finite"),
        (np.ones((3, 2)), np.eye(2), 0.0, "sigma"),
    ],
)
def test_shrinkage_weight_refuses_bad_input(Z_j, S, sigma, fragment):
    with pytest.raises(InputError, match=fragment):
        shrinkage_weight(Z_j, S, sigma)
