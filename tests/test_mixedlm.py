"""statsmodels' MixedLM against lme4, Bates et al. (2015) and the cafe truth.

Tolerances (fixed effects 1e-3 relative, SDs 1e-2 relative)
are far looser than the gaps measured on this machine, which are listed at
each test so a regression shows up as a number, not only as a failure:

* sleepstudy (REML): fixed estimates 4e-15, SEs 2.1e-6, SDs 3.0e-6,
  correlation 2.4e-5, sigma 3.6e-7 relative; criterion 8e-10 absolute.
* default cafes (REML): fixed estimates 4e-14, SEs 9.1e-5, SDs 1.1e-4,
  correlation 3.4e-5, sigma 9.0e-6 relative; criterion 3.4e-7 absolute.
"""

from __future__ import annotations

import numpy as np
import pytest

from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.mixedlm import fit_statsmodels

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


def rel_gap(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.max(np.abs(a - b) / np.abs(b))


@pytest.fixture(scope="module")
def sm_cafes(cafes):
    return fit_statsmodels(cafes, CAFE_FORMULA)


@pytest.fixture(scope="module")
def lme4_pair(r_session, sleepstudy, cafes):
    """(lme4, statsmodels) fits of sleepstudy and cafes, REML and ML."""
    from multilevel.lmer import fit_lmer

    out = {}
    for name, data, formula in (
        ("sleepstudy", sleepstudy, SLEEP_FORMULA),
        ("cafes", cafes, CAFE_FORMULA),
    ):
        for reml in (True, False):
            out[name, reml] = (
                fit_lmer(data, formula, reml=reml, profile=False),
                fit_statsmodels(data, formula, reml=reml),
            )
    return out


# --------------------------------------------------------------------------
# Agreement with lme4


@pytest.mark.needs_r
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", ["sleepstudy", "cafes"])
def test_statsmodels_agrees_with_lme4(name, reml, lme4_pair):
    lme4, sm = lme4_pair[name, reml]
    assert sm.engine == "statsmodels" and sm.method == lme4.method
    assert list(sm.fixed.index) == list(lme4.fixed.index)
    assert list(sm.varcorr.index) == list(lme4.varcorr.index)
    assert rel_gap(sm.fixed["estimate"], lme4.fixed["estimate"]) < 1e-3
    assert rel_gap(sm.fixed["std_error"], lme4.fixed["std_error"]) < 1e-3
    assert rel_gap(sm.varcorr["estimate"], lme4.varcorr["estimate"]) < 1e-2
    # statsmodels' -2 llf carries lme4's constants, REML and ML alike
    assert abs(sm.criterion - lme4.criterion) < 1e-4
    # offsets and their conditional SDs (both condition on the fixed effects)
    both = sm.ranef.merge(lme4.ranef, on=["group", "term"], suffixes=("", "_r"))
    assert len(both) == len(lme4.ranef) == len(sm.ranef)
    scale = both.groupby("term")["estimate_r"].transform(lambda x: x.abs().max())
    assert (np.abs(both["estimate"] - both["estimate_r"]) / scale).max() < 1e-3
    assert rel_gap(both["std_error"], both["std_error_r"]) < 1e-3
    both = sm.coef.merge(lme4.coef, on=["group", "term"], suffixes=("", "_r"))
    assert rel_gap(both["std_error"], both["std_error_r"]) < 1e-3


@pytest.mark.needs_r
def test_statsmodels_reproduces_bates_2015(lme4_pair):
    _, sm = lme4_pair["sleepstudy", True]
    published = {
        "sd_(Intercept)|Subject": 24.741,
        "cor_Days.(Intercept)|Subject": 0.066,
        "sd_Days|Subject": 5.922,
        "sigma": 25.592,
    }
    for key, value in published.items():
        assert abs(sm.varcorr.loc[key, "estimate"] - value) <= 5e-4, key
    assert abs(sm.fixed.loc["(Intercept)", "estimate"] - 251.405) <= 5e-4
    assert abs(sm.fixed.loc["Days", "estimate"] - 10.467) <= 5e-4
    assert abs(sm.fixed.loc["(Intercept)", "std_error"] - 6.825) <= 5e-4
    assert abs(sm.fixed.loc["Days", "std_error"] - 1.546) <= 5e-4
    assert abs(sm.criterion - 1743.6) <= 0.05


@pytest.mark.needs_r
def test_unbalanced_std_errors_differ_as_documented(r_session):
    """Unbalanced cafes: estimates still agree, statsmodels' bse_fe does not
    (joint Hessian), but its theta-conditional SE is lme4's."""
    from multilevel.lmer import fit_lmer

    visits = np.random.default_rng(3).integers(2, 15, 20)
    data = simulate_cafes(seed=14, visits=visits, no_afternoon=3).data
    lme4 = fit_lmer(data, CAFE_FORMULA, profile=False)
    sm = fit_statsmodels(data, CAFE_FORMULA)
    assert rel_gap(sm.fixed["estimate"], lme4.fixed["estimate"]) < 1e-4
    assert rel_gap(sm.varcorr["estimate"], lme4.varcorr["estimate"]) < 1e-3
    given = sm.diagnostics["fixed_std_error_given_theta"]
    assert rel_gap(list(given.values()), lme4.fixed["std_error"]) < 1e-3
    # measured 2.2% for afternoon: not the same quantity
    assert rel_gap(sm.fixed["std_error"], lme4.fixed["std_error"]) > 5e-3


# --------------------------------------------------------------------------
# Without R: the truth, the algebra, the parameterisation


def test_truth_inside_99_percent_wald_intervals(cafes, cafe_sim):
    """At seed 14, the true fixed effects lie in the 99% Wald intervals."""
    fit = fit_statsmodels(cafes, CAFE_FORMULA, level=0.99)
    joined = fit.fixed.join(cafe_sim.truth.fixed, how="inner")
    assert len(joined) == 2
    assert (joined["lower"] < joined["truth"]).all()
    assert (joined["truth"] < joined["upper"]).all()


def test_varcorr_is_the_scaled_cov_re(sm_cafes):
    """statsmodels' cov_re is on the data scale (cov_re_unscaled * scale)."""
    r = sm_cafes.raw
    cov_re = np.asarray(r.cov_re)
    np.testing.assert_allclose(cov_re, np.asarray(r.cov_re_unscaled) * r.scale)
    vc = sm_cafes.varcorr["estimate"]
    sd = np.sqrt(np.diag(cov_re))
    np.testing.assert_allclose(
        vc[["sd_(Intercept)|cafe", "sd_afternoon|cafe"]], sd, rtol=1e-12
    )
    cor = cov_re[1, 0] / (sd[0] * sd[1])
    assert vc["cor_afternoon.(Intercept)|cafe"] == pytest.approx(cor, rel=1e-12)
    assert vc["sigma"] == pytest.approx(np.sqrt(r.scale), rel=1e-12)
    assert sm_cafes.varcorr[["lower", "upper"]].isna().all().all()
    assert sm_cafes.interval == "Wald"


def test_coef_is_fixed_plus_ranef(sm_cafes):
    merged = sm_cafes.coef.merge(
        sm_cafes.ranef, on=["group", "term"], suffixes=("", "_u")
    )
    beta = sm_cafes.fixed["estimate"].reindex(merged["term"]).to_numpy()
    assert len(merged) == len(sm_cafes.coef) == 40
    assert np.array_equal(merged["estimate"].to_numpy(), beta + merged["estimate_u"])
    # the coefficient's SE includes the fixed effect's: larger than the offset's
    assert (merged["std_error"] > merged["std_error_u"]).all()


def test_wald_intervals_are_estimate_plus_minus_z_se(sm_cafes):
    z = 1.959963984540054
    for table in (sm_cafes.fixed, sm_cafes.ranef, sm_cafes.coef):
        np.testing.assert_allclose(
            table["upper"] - table["estimate"], z * table["std_error"]
        )
        np.testing.assert_allclose(
            table["estimate"] - table["lower"], z * table["std_error"]
        )


def test_groups_are_design_order_labels(cafes, sm_cafes):
    from multilevel.design import design_matrices

    groups = list(design_matrices(cafes, CAFE_FORMULA).groups)
    assert list(dict.fromkeys(sm_cafes.ranef["group"])) == groups
    # and each cafe's offset is its own: the cafe with the longest mean
    # morning wait has the largest intercept offset
    morning = cafes.query("afternoon == 0").groupby("cafe")["wait"].mean()
    intercepts = sm_cafes.ranef.query("term == '(Intercept)'").set_index("group")
    assert intercepts["estimate"].idxmax() == str(morning.idxmax())


def test_singular_fit_is_flagged(cafes):
    sim = simulate_cafes(seed=14, sigma_b=1e-4)
    fit = fit_statsmodels(sim.data, CAFE_FORMULA)
    assert fit.diagnostics["singular"] is True
    assert any("singular" in m for m in fit.messages)


def test_regular_fit_is_clean(sm_cafes):
    assert sm_cafes.diagnostics["singular"] is False
    assert sm_cafes.diagnostics["converged"] is True
    assert sm_cafes.messages == []


@pytest.mark.parametrize(
    "formula",
    [
        "wait ~ system('ls') + (1 | cafe)",
        "wait ~ aftrnoon + (1 | cafe)",
        "wait ~ afternoon",
    ],
)
def test_bad_formulas_are_refused(formula, cafes):
    with pytest.raises(InputError):
        fit_statsmodels(cafes, formula)


@pytest.mark.parametrize("kwargs", [{"level": 2}, {"reml": 1}])
def test_bad_arguments_are_refused(kwargs, cafes):
    with pytest.raises(InputError):
        fit_statsmodels(cafes, CAFE_FORMULA, **kwargs)
