"""The PyMC cafe model (equation set 2) and its fit with the default sampler.

References are independent of the code under test: scipy's densities for the
priors, the truth of the simulation, lme4's estimates, a second
parametrisation of the same model, and the algebra (offsets = coefficients
minus population means, draw by draw).

MCMC tests share one 4 x 1000-draw fit of the book's default cafe data
(``simulate_cafes(seed=14)``, conftest's ``CAFE_SEED``) sampled with
``SEED`` below (the default sampler, NumPyro: JAX keeps the compiled
program in its persistent cache, so a second run only traces the model).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from multilevel.bayes import (
    DEFAULT_PRIORS,
    cafe_model,
    clear_compiled,
    fit_pymc,
    resolve_priors,
    unbake,
)
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import varcorr_names

# PyTensor's C backend (used by pm.logp(...).eval() and PyMC's own NUTS)
# warns that it found no BLAS here; that is about speed, not results.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS:UserWarning"
)

#: The sampler seed of every MCMC test here.
SEED = 2024
TERMS = ["(Intercept)", "afternoon"]


@pytest.fixture(scope="session")
def pymc_fit(cafes):
    """4 chains x 1000 draws after 1000 tuning, the default sampler, centred."""
    return fit_pymc(cafes, seed=SEED)


@pytest.fixture(scope="session")
def pymc_fit_noncentred(cafes):
    """The non-centred form, with twice the tuning and draws: on these
    well-informed cafes it is the less efficient form (NumPyro, 4 x 1000:
    smallest bulk ESS 335, 676 and 499 and largest r-hat 1.028, 1.008 and
    1.005 at seeds 2024-2026), and comparing two posteriors needs both
    converged."""
    return fit_pymc(cafes, centered=False, seed=SEED, draws=2000, tune=2000)


def _logp(model, name, value):
    import pymc as pm

    return float(pm.logp(model[name], np.float64(value)).eval())


def _assert_same_posterior(first, second) -> None:
    """Posterior means of the 46 quantities (population means, SDs, rho,
    sigma_within, the cafes' coefficients) of two fits within 4.5 combined
    Monte Carlo standard errors (false-alarm rate ~ 46 * 7e-6 if both runs
    are right)."""
    import arviz as az

    names = ["a_bar", "b_bar", "sigma_cafe", "rho", "sigma_within",
             "alpha_cafe", "beta_cafe"]
    a, b = first.raw.posterior[names], second.raw.posterior[names]
    a_se, b_se = az.mcse(a), az.mcse(b)
    checked = 0
    for name in names:
        diff = np.abs(a[name].mean(("chain", "draw"))
                      - b[name].mean(("chain", "draw"))).values
        tol = 4.5 * np.hypot(a_se[name].values, b_se[name].values)
        assert np.all(diff < tol), (name, diff, tol)
        checked += diff.size
    assert checked == 46


# ---------------------------------------------------------------- the model


def test_default_priors_are_the_equations():
    assert DEFAULT_PRIORS["a_bar"] == {"mu": 5.0, "sigma": 2.0}  # (13)
    assert DEFAULT_PRIORS["b_bar"] == {"mu": -1.0, "sigma": 0.5}  # (14)
    assert DEFAULT_PRIORS["sigma_cafe"] == {"lam": 1.0}  # (15)
    assert DEFAULT_PRIORS["R"] == {"eta": 2.0}  # (16)
    assert DEFAULT_PRIORS["sigma_within"] == {"lam": 1.0}  # (10)


def test_prior_densities_match_scipy(cafes):
    model = cafe_model(cafes)
    assert _logp(model, "a_bar", 3.1) == pytest.approx(
        stats.norm(5, 2).logpdf(3.1), rel=1e-7
    )
    assert _logp(model, "b_bar", -0.3) == pytest.approx(
        stats.norm(-1, 0.5).logpdf(-0.3), rel=1e-7
    )
    assert _logp(model, "sigma_within", 0.7) == pytest.approx(
        stats.expon(scale=1.0).logpdf(0.7), rel=1e-7
    )


def test_priors_are_overridden_by_name(cafes):
    model = cafe_model(cafes, priors={"a_bar": {"sigma": 1.0},
                                      "sigma_within": {"lam": 2.0}})
    # mu stays the default 5; only the scale changes
    assert _logp(model, "a_bar", 3.1) == pytest.approx(
        stats.norm(5, 1).logpdf(3.1), rel=1e-7
    )
    assert _logp(model, "sigma_within", 0.7) == pytest.approx(
        stats.expon(scale=0.5).logpdf(0.7), rel=1e-7
    )
    # the defaults themselves are untouched
    assert DEFAULT_PRIORS["a_bar"]["sigma"] == 2.0


def test_lkj_prior_and_exponential_scales_are_the_equations(cafes):
    """The joint prior of the Cholesky factor changes with eta and the rates
    exactly as LKJ(eta) and Exponential(lam) densities say."""
    import pymc as pm

    base = cafe_model(cafes)
    wider = cafe_model(cafes, priors={"R": {"eta": 5.0},
                                      "sigma_cafe": {"lam": [2.0, 3.0]}})
    sd = np.array([0.8, 0.4])
    rho = -0.3
    L = np.linalg.cholesky(
        np.diag(sd) @ np.array([[1, rho], [rho, 1]]) @ np.diag(sd)
    )
    packed = L[np.tril_indices(2)]
    lp_base = float(pm.logp(base["chol_cov"], packed).eval())
    lp_wider = float(pm.logp(wider["chol_cov"], packed).eval())
    # LKJ(eta) density of R is proportional to det(R)^(eta - 1); the
    # normalising constants differ too, so compare the difference of two
    # points, where they cancel.
    rho2 = 0.5
    L2 = np.linalg.cholesky(
        np.diag(sd) @ np.array([[1, rho2], [rho2, 1]]) @ np.diag(sd)
    )
    packed2 = L2[np.tril_indices(2)]
    d_base = lp_base - float(pm.logp(base["chol_cov"], packed2).eval())
    d_wider = lp_wider - float(pm.logp(wider["chol_cov"], packed2).eval())
    det = 1 - rho**2
    det2 = 1 - rho2**2
    expected_change = (5.0 - 2.0) * (np.log(det) - np.log(det2))
    assert d_wider - d_base == pytest.approx(expected_change, rel=1e-8)
    # same R, other SDs: only the Exponential(lam) terms -lam * sd differ
    sd3 = np.array([1.3, 0.2])
    L3 = np.linalg.cholesky(
        np.diag(sd3) @ np.array([[1, rho], [rho, 1]]) @ np.diag(sd3)
    )
    packed3 = L3[np.tril_indices(2)]
    e_base = lp_base - float(pm.logp(base["chol_cov"], packed3).eval())
    e_wider = lp_wider - float(pm.logp(wider["chol_cov"], packed3).eval())
    expected = -np.dot(np.array([2.0, 3.0]) - 1.0, sd - sd3)
    assert e_wider - e_base == pytest.approx(expected, rel=1e-8)


def test_named_quantities_dims_and_coords(cafes):
    for centered in (True, False):
        model = cafe_model(cafes, centered=centered)
        names = set(model.named_vars)
        for name in ("a_bar", "b_bar", "chol_cov", "sigma_cafe", "rho",
                     "ab_cafe", "alpha_cafe", "beta_cafe", "sigma_within",
                     "wait"):
            assert name in names, (centered, name)
        assert list(model.coords["cafe"]) == [str(j) for j in range(20)]
        assert list(model.coords["effect"]) == TERMS
        assert model.named_vars_to_dims["ab_cafe"] == ("cafe", "effect")
        assert model.named_vars_to_dims["alpha_cafe"] == ("cafe",)
        free = {v.name for v in model.free_RVs}
        if centered:
            assert "ab_cafe" in free and "z" not in free
        else:
            assert "z" in free and "ab_cafe" not in free


def test_every_quantity_is_stored_once_under_one_name(cafes):
    """The SDs and the correlation are stored as sigma_cafe and rho only,
    so transforms that rebuild the model (freeze_dims_and_data, which PyMC's
    JAX samplers apply) keep every name unique."""
    from pymc.model.transform.optimization import freeze_dims_and_data

    for centered in (True, False):
        model = cafe_model(cafes, centered=centered)
        names = [v.name for v in model.deterministics]
        assert "sigma_cafe" in names and "rho" in names
        assert not any(n.startswith("chol_cov_") for n in names), names
        frozen = freeze_dims_and_data(model)
        frozen_names = [v.name for v in frozen.deterministics]
        assert len(frozen_names) == len(set(frozen_names)), frozen_names
        assert sorted(frozen_names) == sorted(names)


def test_a_model_with_a_duplicated_quantity_is_caught_by_the_name_check(cafes):
    """The check above fails on the model as it was written before: the SDs
    wrapped in a second Deterministic beside PyMC's own chol_cov_stds."""
    import pymc as pm
    from pymc.model.transform.optimization import freeze_dims_and_data

    with pm.Model(coords={"effect": TERMS}) as model:
        _, _, sd = pm.LKJCholeskyCov(
            "chol_cov", n=2, eta=2.0, sd_dist=pm.Exponential.dist(1.0, shape=2),
            compute_corr=True,
        )
        pm.Deterministic("sigma_cafe", sd, dims="effect")
    names = [v.name for v in freeze_dims_and_data(model).deterministics]
    assert len(names) != len(set(names))


def test_cafe_labels_follow_r_factor_order(cafes):
    relabelled = cafes.assign(cafe=cafes["cafe"] + 1)  # 1..20: 10 after 9
    model = cafe_model(relabelled)
    assert list(model.coords["cafe"]) == [str(j) for j in range(1, 21)]


def test_noncentred_coefficients_are_mean_plus_L_z(cafes):
    """ab_cafe = (a_bar, b_bar) + z L^T, checked on a joint prior draw."""
    import pymc as pm

    model = cafe_model(cafes, centered=False)
    ab, packed, a_bar, b_bar, z = pm.draw(
        [model[v] for v in ("ab_cafe", "chol_cov", "a_bar", "b_bar", "z")],
        random_seed=1,
    )
    L = np.zeros((2, 2))
    L[np.tril_indices(2)] = packed
    np.testing.assert_allclose(ab, np.array([a_bar, b_bar]) + z @ L.T,
                               rtol=1e-12)


# --------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "priors, match",
    [
        ({"alpha": {"mu": 0}}, "unknown prior 'alpha'.*a_bar, b_bar, "
                               "sigma_cafe, R, sigma_within"),
        ({"a_bar": {"sigma": 0.0}}, "must be > 0"),
        ({"b_bar": {"sigma": -1}}, "must be > 0"),
        ({"sigma_within": {"lam": 0}}, "must be > 0"),
        ({"R": {"eta": -2}}, "must be > 0"),
        ({"sigma_cafe": {"lam": [1.0, 0.0]}}, "must be > 0"),
        ({"sigma_cafe": {"lam": [1.0, 1.0, 1.0]}}, "one rate or one per"),
        ({"a_bar": {"scale": 1.0}}, "no parameter 'scale'.*mu, sigma"),
        ({"a_bar": 1.0}, "must be a dict of parameters"),
        ({"a_bar": {"mu": float("nan")}}, "finite"),
        ({"a_bar": {"mu": "5"}}, "real number"),
        ([("a_bar", {})], "must be a dict"),
    ],
)
def test_bad_priors_are_refused(priors, match, cafes):
    with pytest.raises(InputError, match=match):
        resolve_priors(priors)
    with pytest.raises(InputError, match=match):
        cafe_model(cafes, priors=priors)


def test_bad_data_is_refused(cafes):
    with pytest.raises(InputError, match="DataFrame"):
        cafe_model(cafes.to_dict())
    with pytest.raises(InputError, match="afternon|afternoon"):
        cafe_model(cafes.rename(columns={"afternoon": "afternon"}))
    with_nan = cafes.copy()
    with_nan.loc[3, "wait"] = np.nan
    with pytest.raises(InputError, match="missing"):
        cafe_model(with_nan)
    with pytest.raises(InputError, match="two groups"):
        cafe_model(cafes[cafes["cafe"] == 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sampler": "stan", "seed": 1},
         "unknown sampler 'stan'.*numpyro, nutpie, pymc"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": 1, "chains": 1}, "chains must be >= 2"),
        ({"seed": 1, "draws": 0}, "draws"),
        ({"seed": 1, "level": 1.2}, "level"),
        ({"seed": 1, "centered": "no"}, "True, False or a choice"),
        ({"seed": 1, "centered": None}, "centered must be True or False"),
        ({"seed": 1, "target_accept": 1.0}, "between 0 and 1"),
        ({"seed": 1, "target_accept": 0.0}, "a probability and must be > 0"),
        ({"seed": 1, "target_accept": "high"}, "target_accept"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match, cafes):
    with pytest.raises(InputError, match=match):
        fit_pymc(cafes, **kwargs)


def test_seed_is_required(cafes):
    with pytest.raises(TypeError, match="seed"):
        fit_pymc(cafes)


# ------------------------------------------------- the likelihood of cells


def _one_afternoon_short(n_cafes=8, seed=3):
    """Cafes of unequal cells, two of them with no afternoon visit."""
    data = simulate_cafes(n_cafes=n_cafes, n_visits=6, seed=seed).data
    drop = (data["cafe"].isin([1, 4])) & (data["afternoon"] == 1)
    return data[~drop].iloc[3:].reset_index(drop=True)


def test_visit_cells_on_hand_made_visits():
    from multilevel.bayes import visit_cells

    cafe = np.array([1, 0, 0, 1, 0, 1])
    afternoon = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    wait = np.array([4.0, 2.0, 5.0, 6.0, 3.0, 2.0])
    cells = visit_cells(cafe, afternoon, wait)
    # cells (0, 0): [5]; (0, 1): [2, 3]; (1, 0): [4, 6, 2]
    np.testing.assert_array_equal(cells.cafe, [0, 0, 1])
    np.testing.assert_array_equal(cells.afternoon, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(cells.n, [1, 2, 3])
    np.testing.assert_allclose(cells.mean, [5.0, 2.5, 4.0])
    assert cells.within_ss == pytest.approx(0.5 + 8.0)
    assert cells.within_df == 6 - 3


@pytest.mark.parametrize("centered", [True, False])
def test_the_likelihood_of_cells_differs_from_the_visits_by_a_constant(centered):
    """log p(visits) - log p(cells) = -(df / 2) log(2 pi) - sum(log n) / 2 at
    every point: the same posterior. Cells of unequal size (some cafes have
    no afternoon visit), points spread over every parameter, sigma_within
    included, so a wrong or missing term of either part shows."""
    from multilevel.bayes import visit_cells
    from multilevel.design import group_levels

    data = _one_afternoon_short()
    visits = cafe_model(data, centered=centered)
    cells_model = cafe_model(data, centered=centered, likelihood="cells")
    _, idx = group_levels(data["cafe"])
    cells = visit_cells(idx, data["afternoon"].to_numpy(float),
                        data["wait"].to_numpy(float))
    assert len(set(cells.n)) > 1 and len(cells.n) == 8 * 2 - 2
    expected = (-cells.within_df / 2 * np.log(2 * np.pi)
                - np.sum(np.log(cells.n)) / 2)
    logp_v, logp_c = visits.compile_logp(), cells_model.compile_logp()
    start = visits.initial_point()
    rng = np.random.default_rng(7)
    diffs = []
    for _ in range(6):
        point = {k: v + rng.normal(0.0, 0.7, np.shape(v)) for k, v in start.items()}
        diffs.append(logp_v(point) - logp_c(point))
    np.testing.assert_allclose(diffs, expected, rtol=0, atol=1e-9)
    assert [v.name for v in cells_model.observed_RVs] == ["wait_mean"]


def test_a_bad_likelihood_is_refused(cafes):
    with pytest.raises(InputError,
                       match="likelihood must be one of 'visits', 'cells', 'marginal'"):
        cafe_model(cafes, likelihood="sums")
    with pytest.raises(InputError, match="likelihood must be 'auto' or one of"):
        fit_pymc(cafes, seed=1, likelihood=None)


def test_auto_integrates_the_coefficients_out_only_for_many_cafes(cafes):
    """The model as written up to MARGINAL_FROM_CAFES cafes, the marginal
    form above; not for the non-centred form or other visit times."""
    from multilevel.bayes import MARGINAL_FROM_CAFES, choose_likelihood

    many = simulate_cafes(n_cafes=MARGINAL_FROM_CAFES + 1, n_visits=2,
                          seed=3).data
    assert choose_likelihood(cafes, True)[0] == "visits"
    assert choose_likelihood(many.iloc[:-2], True)[0] == "visits"  # 1000 left
    form, reason = choose_likelihood(many, True)
    assert form == "marginal" and str(MARGINAL_FROM_CAFES + 1) in reason
    assert choose_likelihood(many, False)[0] == "visits"
    shifted = many.assign(afternoon=many["afternoon"] * 0.5)
    form, reason = choose_likelihood(shifted, True)
    assert form == "visits" and "0 and 1" in reason


@pytest.mark.slow
def test_the_cells_posterior_is_the_visits_posterior(pymc_fit, cafes):
    """The same posterior sampled from the cells' sums: means within 4.5
    combined Monte Carlo standard errors for all 46 quantities."""

    cells = fit_pymc(cafes, seed=SEED + 1, likelihood="cells")
    assert cells.diagnostics["likelihood"] == "cells"
    assert pymc_fit.diagnostics["likelihood"] == "visits"
    assert cells.diagnostics["divergences"] == 0
    assert cells.diagnostics["r_hat_max"] < 1.01
    _assert_same_posterior(pymc_fit, cells)


# ----------------------------------- the cafe effects integrated out


def test_the_marginal_density_and_the_conditional_give_back_the_joint():
    """p(waits, coefficients | theta) = p(waits | theta) p(coefficients |
    waits, theta): at random theta and random coefficients, the visits'
    log posterior minus the marginal model's minus the log density of the
    coefficients given the data (scipy's bivariate normal, per cafe) is the
    constant between the visits and the cells, -(df/2) log(2 pi) -
    sum(log n)/2. Cafes without an afternoon cell included."""
    from multilevel.bayes import cafe_cells, cafe_effects_given

    data = _one_afternoon_short()
    visits, marginal = cafe_model(data), cafe_model(data, likelihood="marginal")
    assert {v.name for v in marginal.free_RVs} == {
        "chol_cov", "a_bar", "b_bar", "sigma_within"}
    _, n, m, cells = cafe_cells(data)
    assert (n[:, 1] == 0).sum() == 2
    constant = (-cells.within_df / 2 * np.log(2 * np.pi)
                - np.sum(np.log(cells.n)) / 2)
    logp_v, logp_m = visits.compile_logp(), marginal.compile_logp()
    import pytensor

    names = ["a_bar", "b_bar", "sigma_within", "sigma_cafe", "rho"]
    at_values = pytensor.function(
        visits.value_vars,
        visits.replace_rvs_by_values([visits[k] for k in names]),
        on_unused_input="ignore")

    def unpack(point):
        return at_values(**{v.name: point[v.name] for v in visits.value_vars})
    start = visits.initial_point()
    rng = np.random.default_rng(11)
    gaps = []
    for _ in range(5):
        point = {k: v + rng.normal(0.0, 0.6, np.shape(v)) for k, v in start.items()}
        a_bar, b_bar, sigma, sd, rho = unpack(point)
        S = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]],
                      [rho * sd[0] * sd[1], sd[1] ** 2]])
        given = cafe_effects_given(n, m, a_bar, b_bar,
                                   (S[0, 0], S[0, 1], S[1, 1]), sigma)
        ab = point["ab_cafe"]
        conditional = sum(
            stats.multivariate_normal(
                [a_bar + given["mean"][0][j], b_bar + given["mean"][1][j]],
                [[given["cov"][0][j], given["cov"][1][j]],
                 [given["cov"][1][j], given["cov"][2][j]]]).logpdf(ab[j])
            for j in range(len(ab)))
        marginal_point = {k: v for k, v in point.items() if k != "ab_cafe"}
        gaps.append(logp_v(point) - logp_m(marginal_point) - conditional)
    np.testing.assert_allclose(gaps, constant, rtol=0, atol=1e-8)


def test_the_marginal_form_refuses_what_it_cannot_write(cafes):
    with pytest.raises(InputError, match="nothing to parametrise; leave centered=True"):
        cafe_model(cafes, centered=False, likelihood="marginal")
    other = cafes.assign(afternoon=cafes["afternoon"] * 0.5)
    with pytest.raises(InputError, match="afternoon to be 0 .* or 1 .*values such as"):
        cafe_model(other, likelihood="marginal")


@pytest.mark.slow
def test_the_marginal_posterior_is_the_visits_posterior(pymc_fit, cafes):
    """NUTS on the six population parameters, then the cafes' coefficients
    drawn given each draw: the joint posterior of the visits' fit, within
    4.5 combined Monte Carlo standard errors for all 46 quantities; the same
    seed gives the same coefficient draws."""
    marginal = fit_pymc(cafes, seed=SEED + 2, likelihood="marginal")
    assert marginal.method.endswith("cafe effects integrated out")
    assert marginal.diagnostics["divergences"] == 0
    assert marginal.diagnostics["r_hat_max"] < 1.01
    _assert_same_posterior(pymc_fit, marginal)
    assert len(marginal.coef) == len(pymc_fit.coef) == 40
    again = fit_pymc(cafes, seed=SEED + 2, likelihood="marginal",
                     draws=100, tune=100)
    twice = fit_pymc(cafes, seed=SEED + 2, likelihood="marginal",
                     draws=100, tune=100)
    np.testing.assert_array_equal(again.raw.posterior["ab_cafe"].values,
                                  twice.raw.posterior["ab_cafe"].values)


# ------------------------------------------------------------- unbaking


def test_unbake_subtracts_draw_by_draw_on_hand_made_draws():
    import arviz as az

    rng = np.random.default_rng(7)
    a_bar = rng.normal(size=(2, 5))
    b_bar = rng.normal(size=(2, 5))
    alpha = rng.normal(size=(2, 5, 3))
    beta = rng.normal(size=(2, 5, 3))
    idata = az.from_dict(
        posterior={"a_bar": a_bar, "b_bar": b_bar, "alpha_cafe": alpha,
                   "beta_cafe": beta},
        coords={"cafe": ["a", "b", "c"]},
        dims={"alpha_cafe": ["cafe"], "beta_cafe": ["cafe"]},
    )
    u = unbake(idata)
    assert u["a_cafe"].dims == ("chain", "draw", "cafe")
    np.testing.assert_array_equal(u["a_cafe"].values, alpha - a_bar[..., None])
    np.testing.assert_array_equal(u["b_cafe"].values, beta - b_bar[..., None])
    tidy = u.to_dataframe()
    assert len(tidy) == 2 * 5 * 3


def test_importing_the_model_freezes_what_the_import_made():
    """A fresh process that imports the model has PyMC's objects out of the
    cycle collector's sight (which saves it about 1.9 s a fit); remove the
    gc.freeze() and this fails."""
    code = ("import gc; before = gc.get_freeze_count(); "
            "import multilevel.bayes; print(before, gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, env=os.environ.copy())
    before, after = map(int, out.stdout.split())
    assert before == 0 and after > 100_000


def test_the_comparison_module_offers_the_same_unbake():
    from multilevel.compare import unbake as from_compare

    assert from_compare is unbake


# ---------------------------------------------------------- MCMC (slow)


@pytest.mark.slow
def test_default_fit_converges(pymc_fit):
    d = pymc_fit.diagnostics
    assert d["r_hat_max"] < 1.01
    assert d["ess_bulk_min"] > 400
    assert d["ess_tail_min"] > 400
    assert d["divergences"] == 0
    assert (d["draws"], d["tune"], d["chains"], d["seed"]) == (1000, 1000, 4, SEED)
    assert pymc_fit.messages == []
    # the form was given, not chosen from the data, and the fit says so
    assert d["parametrisation"] == {
        "form": "centred", "chosen": "given", "reason": "given by the caller"}
    assert d["priors"] == {k: dict(v) for k, v in DEFAULT_PRIORS.items()}


@pytest.mark.slow
def test_diagnostics_and_intervals_are_arviz_over_every_quantity(pymc_fit):
    """The worst r-hat and ESS over all stored quantities (alpha_cafe and
    beta_cafe included, which are not recomputed) and the HDIs of the
    tables are ArviZ's."""
    import arviz as az

    post = pymc_fit.raw.posterior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(post)
        bulk = az.ess(post, method="bulk")
        tail = az.ess(post, method="tail")

    def worst(ds, fn):
        return fn([float(fn(ds[v].values)) for v in ds.data_vars])

    d = pymc_fit.diagnostics
    assert d["r_hat_max"] == pytest.approx(worst(rhat, np.max), rel=1e-12)
    assert d["ess_bulk_min"] == pytest.approx(worst(bulk, np.min), rel=1e-12)
    assert d["ess_tail_min"] == pytest.approx(worst(tail, np.min), rel=1e-12)
    hdi = az.hdi(post["beta_cafe"], hdi_prob=0.95)["beta_cafe"].values
    coef = pymc_fit.coef[pymc_fit.coef["term"] == TERMS[1]]
    np.testing.assert_array_equal(coef[["lower", "upper"]].to_numpy(), hdi)


@pytest.mark.slow
def test_a_fit_records_the_priors_it_sampled(cafes):
    quick = fit_pymc(cafes, priors={"R": {"eta": 10}}, draws=20, tune=20,
                     chains=2, seed=SEED)
    expected = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    expected["R"] = {"eta": 10.0}
    assert quick.diagnostics["priors"] == expected


@pytest.mark.slow
def test_fit_has_the_shared_shape(pymc_fit, cafes):
    f = pymc_fit
    assert (f.engine, f.interval, f.criterion, f.level) == ("PyMC", "HDI", None,
                                                              0.95)
    assert f.method == "NUTS, NumPyro"
    assert f.formula == CAFE_FORMULA
    assert (f.nobs, f.ngroups) == (len(cafes), 20)
    assert list(f.fixed.index) == TERMS
    assert list(f.varcorr.index) == varcorr_names(TERMS, "cafe")
    groups = [str(j) for j in range(20)]
    for table in (f.ranef, f.coef):
        assert list(table["group"]) == [g for g in groups for _ in TERMS]
        assert list(table["term"]) == TERMS * 20
    for table in (f.fixed, f.varcorr, f.ranef, f.coef):
        assert (table["lower"] < table["estimate"]).all()
        assert (table["estimate"] < table["upper"]).all()
    # fixed effects: the posterior of a_bar and b_bar, from the raw draws
    post = f.raw.posterior
    assert f.fixed.loc["(Intercept)", "estimate"] == pytest.approx(
        float(post["a_bar"].mean()), rel=1e-12
    )
    assert f.fixed.loc["afternoon", "std_error"] == pytest.approx(
        float(post["b_bar"].std(ddof=1)), rel=1e-12
    )
    assert f.varcorr.loc["cor_afternoon.(Intercept)|cafe", "estimate"] == (
        pytest.approx(float(post["rho"].mean()), rel=1e-12)
    )


@pytest.mark.slow
def test_posterior_recovers_the_simulation_truth(pymc_fit, cafe_sim):
    """The truth lies inside the 99.9% HDI of a_bar, b_bar and sigma.

    Seeds: data ``simulate_cafes(seed=14)``, sampler ``SEED``. With a 99.9%
    interval a correct sampler fails this about once in a thousand data
    sets per quantity, so a failure points at a bug, not at bad luck.
    """
    import arviz as az

    post = pymc_fit.raw.posterior
    truth = cafe_sim.truth
    for name, true in (("a_bar", truth.alpha), ("b_bar", truth.beta),
                       ("sigma_within", truth.sigma)):
        lo, hi = az.hdi(post[name], hdi_prob=0.999)[name].values
        assert lo < true < hi, (name, lo, true, hi)


@pytest.mark.slow
def test_unbaked_offsets_are_coef_minus_fixed_per_draw(pymc_fit):
    post = pymc_fit.raw.posterior
    u = unbake(pymc_fit)
    np.testing.assert_array_equal(
        u["a_cafe"].values,
        post["alpha_cafe"].values - post["a_bar"].values[..., None],
    )
    np.testing.assert_array_equal(
        u["b_cafe"].values,
        post["beta_cafe"].values - post["b_bar"].values[..., None],
    )
    ranef = pymc_fit.ranef.set_index(["group", "term"])
    for var, term in (("a_cafe", "(Intercept)"), ("b_cafe", "afternoon")):
        means = u[var].mean(("chain", "draw")).to_series()
        sds = u[var].std(("chain", "draw"), ddof=1).to_series()
        got = ranef.xs(term, level="term")
        np.testing.assert_allclose(got["estimate"], means.values, rtol=1e-12)
        np.testing.assert_allclose(got["std_error"], sds.values, rtol=1e-12)
    # the offsets' SD is not the coefficients' SD: the per-draw subtraction
    # carries the correlation between alpha_cafe and a_bar
    coef = pymc_fit.coef.set_index(["group", "term"])
    assert not np.allclose(ranef["std_error"], coef["std_error"], rtol=1e-3)


@pytest.mark.slow
def test_same_seed_gives_identical_draws(pymc_fit, cafes):
    again = fit_pymc(cafes, seed=SEED)
    other = fit_pymc(cafes, seed=SEED + 1)
    a, b, c = (f.raw.posterior for f in (pymc_fit, again, other))
    for name in ("a_bar", "b_bar", "ab_cafe", "chol_cov", "sigma_within"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
        assert not np.array_equal(a[name].values, c[name].values)


@pytest.mark.slow
def test_same_seed_gives_identical_draws_after_a_fresh_compile(cafes):
    """nutpie keeps its compiled models in the process; a fit after they
    are cleared compiles again and draws exactly the same."""
    quick = {"draws": 200, "tune": 200, "seed": SEED, "sampler": "nutpie"}
    first = fit_pymc(cafes, **quick)
    cached = fit_pymc(cafes, **quick)
    assert cached.diagnostics["seconds"]["compile_cached"] is True
    clear_compiled()
    fresh = fit_pymc(cafes, **quick)
    assert fresh.diagnostics["seconds"]["compile_cached"] is False
    for name in ("a_bar", "b_bar", "ab_cafe", "sigma_within"):
        np.testing.assert_array_equal(
            fresh.raw.posterior[name].values, first.raw.posterior[name].values
        )


@pytest.mark.slow
def test_centred_and_noncentred_agree_within_monte_carlo_error(
    pymc_fit, pymc_fit_noncentred
):
    """Same model, two parametrisations: posterior means differ by no more
    than 4.5 combined Monte Carlo standard errors, for each of the 46
    quantities (false-alarm rate ~ 46 * 7e-6 if both runs are right)."""

    nc = pymc_fit_noncentred
    assert nc.diagnostics["r_hat_max"] < 1.01
    assert nc.diagnostics["divergences"] == 0
    _assert_same_posterior(pymc_fit, nc)
    assert "non-centred" in nc.method


@pytest.mark.slow
@pytest.mark.needs_r
def test_fixed_effects_agree_with_lme4(pymc_fit, cafes):
    from multilevel.lmer import fit_lmer

    lmer = fit_lmer(cafes, CAFE_FORMULA, profile=False)
    diff = (pymc_fit.fixed["estimate"] - lmer.fixed["estimate"]).abs()
    assert list(diff.index) == TERMS
    assert (diff < 0.05).all(), diff


@pytest.mark.slow
def test_pymc_default_sampler_gives_the_same_posterior(pymc_fit, cafes):
    """PyMC's own NUTS (short run) agrees with the default sampler on the fixed effects
    to within half a posterior SD (its Monte Carlo error is ~0.1 SD)."""
    quick = fit_pymc(cafes, draws=300, tune=300, chains=2, seed=SEED,
                     sampler="pymc", cores=1)
    assert quick.method == "NUTS, PyMC"
    assert quick.diagnostics["seconds"]["total"] > 0
    diff = (quick.fixed["estimate"] - pymc_fit.fixed["estimate"]).abs()
    assert (diff < 0.5 * pymc_fit.fixed["std_error"]).all(), diff
    assert isinstance(quick.ranef, pd.DataFrame) and len(quick.ranef) == 40


# ------------------------------------------------- compile once per design


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")
def test_shared_wait_model_has_the_fresh_models_density():
    from multilevel.bayes import WAIT_DATA, shared_wait_model

    first = simulate_cafes(n_cafes=5, seed=1).data
    other = simulate_cafes(n_cafes=5, seed=2).data
    model = shared_wait_model(first)
    logp = model.compile_logp()
    point = model.initial_point()
    point = {k: v + 0.1 for k, v in point.items()}
    fresh_first = cafe_model(first).compile_logp()(point)
    assert logp(point) == pytest.approx(fresh_first, rel=1e-12)
    shared = [v for v in model.rvs_to_values.values() if v.name == WAIT_DATA]
    shared[0].set_value(other["wait"].to_numpy())
    fresh_other = cafe_model(other).compile_logp()(point)
    assert fresh_other != pytest.approx(fresh_first)
    assert logp(point) == pytest.approx(fresh_other, rel=1e-12)


def test_a_compiled_model_is_refused_for_other_cafes_or_samplers(cafes):
    from multilevel.bayes import CompiledCafeModel, _structure_key, resolve_priors

    key = _structure_key(cafes, resolve_priors(None), True)
    compiled = CompiledCafeModel(key=key, priors=resolve_priors(None),
                                 centered=True, compiled=None)
    fewer = cafes[cafes["cafe"] < 10]
    with pytest.raises(InputError, match="other cafes, visit times"):
        compiled.with_waits(fewer)
    with pytest.raises(InputError, match="other cafes, visit times"):
        fit_pymc(fewer, seed=1, sampler="nutpie", compiled=compiled)
    with pytest.raises(InputError, match="other cafes, visit times"):
        fit_pymc(cafes, seed=1, centered=False, sampler="nutpie",
                 compiled=compiled)
    for other in ("pymc", "numpyro"):
        with pytest.raises(InputError, match="sampler='nutpie'"):
            fit_pymc(cafes, seed=1, sampler=other, compiled=compiled)
    with pytest.raises(InputError, match="sampler='nutpie'"):
        fit_pymc(cafes, seed=1, compiled=compiled)  # the default is not nutpie
    with pytest.raises(InputError, match="one likelihood term per visit"):
        fit_pymc(cafes, seed=1, sampler="nutpie", compiled=compiled,
                 likelihood="cells")
