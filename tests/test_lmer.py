"""lme4 through rpy2: published values, simulation truth, algebra, safety.

References, none of them this module's own output:

* Bates, Maechler, Bolker & Walker (2015), JSS 67(1), the ``fm1`` fit of
  ``Reaction ~ Days + (Days | Subject)`` to ``sleepstudy``: REML criterion
  1743.6; fixed effects 251.405 (SE 6.825) and 10.467 (SE 1.546); SDs 24.741
  and 5.922, correlation 0.066, residual SD 25.592. Each is checked to half a
  unit of its last published digit.
* The truth of the default cafe simulation (seed 14).
* lme4's own ``coef()``, ``vcov()`` and ``postVar`` for the algebra of the
  coefficient standard errors, and a dense inverse of the mixed-model
  equations built from lme4's ``getME(m, "Z")``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multilevel import lmer
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import R_INSTALL_COMMAND, EngineMissingError, InputError
from multilevel.lmer import fit_lmer, joint_coef_covariance

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


def close_to_published(value: float, published: float, decimals: int) -> bool:
    """``value`` rounds to ``published`` at the published number of decimals."""
    return abs(value - published) <= 0.5 * 10.0**-decimals + 1e-12


@pytest.fixture(scope="module")
def sleep_fit(sleepstudy):
    return fit_lmer(sleepstudy, SLEEP_FORMULA)


@pytest.fixture(scope="module")
def cafe_fit(r_session, cafes):
    return fit_lmer(cafes, CAFE_FORMULA)


@pytest.fixture(scope="module")
def cafe_fit_99(r_session, cafes):
    return fit_lmer(cafes, CAFE_FORMULA, level=0.99)


# --------------------------------------------------------------------------
# Published values (Bates et al. 2015)


@pytest.mark.needs_r
def test_sleepstudy_matches_bates_2015(sleep_fit):
    fit = sleep_fit
    assert fit.engine == "lme4" and fit.method == "REML"
    assert fit.interval == "profile" and fit.level == 0.95
    assert close_to_published(fit.criterion, 1743.6, 1)
    fixed = fit.fixed
    assert close_to_published(fixed.loc["(Intercept)", "estimate"], 251.405, 3)
    assert close_to_published(fixed.loc["(Intercept)", "std_error"], 6.825, 3)
    assert close_to_published(fixed.loc["Days", "estimate"], 10.467, 3)
    assert close_to_published(fixed.loc["Days", "std_error"], 1.546, 3)
    vc = fit.varcorr["estimate"]
    assert close_to_published(vc["sd_(Intercept)|Subject"], 24.741, 3)
    assert close_to_published(vc["sd_Days|Subject"], 5.922, 3)
    assert close_to_published(vc["cor_Days.(Intercept)|Subject"], 0.066, 3)
    assert close_to_published(vc["sigma"], 25.592, 3)
    assert fit.nobs == 180 and fit.ngroups == 18
    assert fit.diagnostics["singular"] is False
    assert fit.messages == []


@pytest.mark.needs_r
def test_sleepstudy_ml_deviance_matches_lme4_documentation(sleepstudy):
    # lme4's ?sleepstudy / JSS: the ML refit of fm1 has deviance 1751.9.
    fit = fit_lmer(sleepstudy, SLEEP_FORMULA, reml=False, profile=False)
    assert fit.method == "ML" and fit.interval == "Wald"
    assert close_to_published(fit.criterion, 1751.9, 1)
    # ML shrinks the variance components below REML's
    reml_sd = 24.741
    assert fit.varcorr.loc["sd_(Intercept)|Subject", "estimate"] < reml_sd
    assert fit.varcorr["lower"].isna().all()


# --------------------------------------------------------------------------
# Profile intervals


@pytest.mark.needs_r
@pytest.mark.parametrize("which", ["sleep_fit", "cafe_fit"])
def test_profile_intervals_contain_the_estimate(which, request):
    fit = request.getfixturevalue(which)
    for table in (fit.fixed, fit.varcorr):
        assert table[["lower", "upper"]].notna().all().all()
        assert (table["lower"] < table["estimate"]).all()
        assert (table["estimate"] < table["upper"]).all()


@pytest.mark.needs_r
def test_wider_level_gives_wider_profile_intervals(cafe_fit, cafe_fit_99):
    for name in ("fixed", "varcorr"):
        narrow = getattr(cafe_fit, name)
        wide = getattr(cafe_fit_99, name)
        assert (wide["lower"] < narrow["lower"]).all()
        assert (wide["upper"] > narrow["upper"]).all()


# --------------------------------------------------------------------------
# The cafe data against the truth of the simulation


@pytest.mark.needs_r
def test_cafe_truth_inside_99_percent_profile_intervals(cafe_fit_99, cafe_sim):
    """At seed 14, each true fixed effect and variance component lies inside
    its 99% profile interval (a statement about this seed, checked here)."""
    fit, truth = cafe_fit_99, cafe_sim.truth
    for table, true in ((fit.fixed, truth.fixed), (fit.varcorr, truth.varcorr)):
        joined = table.join(true, how="inner")
        assert len(joined) == len(true)
        assert (joined["lower"] < joined["truth"]).all(), joined
        assert (joined["truth"] < joined["upper"]).all(), joined


@pytest.mark.needs_r
def test_cafe_offsets_track_the_true_offsets(cafe_fit, cafe_sim):
    """Conditional modes estimate the simulated offsets: most true offsets lie
    inside the 95% conditional intervals, and the modes correlate with them."""
    truth = cafe_sim.truth.cafes.assign(group=lambda d: d["cafe"].astype(str))
    for term, col in (("(Intercept)", "a_cafe"), ("afternoon", "b_cafe")):
        est = cafe_fit.ranef.query("term == @term").merge(truth, on="group")
        assert len(est) == 20
        inside = ((est["lower"] < est[col]) & (est[col] < est["upper"])).mean()
        assert inside >= 0.8, (term, inside)
        assert np.corrcoef(est["estimate"], est[col])[0, 1] > 0.5


# --------------------------------------------------------------------------
# ranef and coef: the algebra


@pytest.mark.needs_r
@pytest.mark.parametrize("which", ["sleep_fit", "cafe_fit"])
def test_coef_is_fixed_plus_ranef_and_equals_lme4_coef(which, request, r_session):
    fit = request.getfixturevalue(which)
    merged = fit.coef.merge(fit.ranef, on=["group", "term"], suffixes=("", "_u"))
    beta = fit.fixed["estimate"].reindex(merged["term"]).to_numpy()
    assert len(merged) == len(fit.coef) == len(fit.ranef)
    assert np.array_equal(merged["estimate"].to_numpy(), beta + merged["estimate_u"])
    # lme4's own coef(m)
    coef_r = r_session.r("function(m) as.matrix(coef(m)[[1]])")(fit.raw)
    rows = list(r_session.r("rownames")(coef_r))
    cols = list(r_session.r("colnames")(coef_r))
    lme4_coef = pd.DataFrame(np.asarray(coef_r), index=rows, columns=cols)
    wide = fit.coef.pivot(index="group", columns="term", values="estimate")
    np.testing.assert_allclose(wide.loc[rows, cols], lme4_coef, rtol=1e-12)


@pytest.mark.needs_r
def test_ranef_groups_in_factor_order_and_intervals_symmetric(sleep_fit):
    groups = list(dict.fromkeys(sleep_fit.ranef["group"]))
    assert groups == [str(g) for g in sorted(int(g) for g in groups)]
    r = sleep_fit.ranef
    z = 1.959963984540054
    np.testing.assert_allclose(r["upper"] - r["estimate"], z * r["std_error"])
    np.testing.assert_allclose(r["estimate"] - r["lower"], z * r["std_error"])


def _dense_prediction_error_covariance(ro, model):
    """sigma^2 C^-1 of the mixed-model equations from lme4's dense X, Z, Lambda."""
    get = ro.r(
        "function(m) list(X = lme4::getME(m, 'X'), Z = as.matrix(lme4::getME(m, "
        "'Z')), L = as.matrix(lme4::getME(m, 'Lambda')), s = sigma(m))"
    )(model)
    X, Z, Lam = (np.asarray(get.rx2(k)) for k in ("X", "Z", "L"))
    sigma = float(get.rx2("s")[0])
    ZL = Z @ Lam
    C = np.block([[X.T @ X, X.T @ ZL], [ZL.T @ X, ZL.T @ ZL + np.eye(Z.shape[1])]])
    T = np.block(
        [
            [np.eye(X.shape[1]), np.zeros((X.shape[1], Z.shape[1]))],
            [np.zeros((Z.shape[1], X.shape[1])), Lam],
        ]
    )
    return sigma**2 * T @ np.linalg.inv(C) @ T.T, X.shape[1]


@pytest.mark.needs_r
@pytest.mark.parametrize("which", ["sleep_fit", "cafe_fit"])
def test_coef_std_error_from_the_joint_covariance(which, request, r_session):
    """The per-group O(groups) algebra equals a dense inverse of the whole
    mixed-model equations; its fixed block equals lme4's vcov(m); leaving out
    the fixed effects' uncertainty gives back lme4's postVar."""
    fit = request.getfixturevalue(which)
    V, p = _dense_prediction_error_covariance(r_session, fit.raw)
    vcov = np.asarray(r_session.r("function(m) as.matrix(vcov(m))")(fit.raw))
    np.testing.assert_allclose(V[:p, :p], vcov, rtol=1e-6)
    np.testing.assert_allclose(
        fit.fixed["std_error"], np.sqrt(np.diag(V[:p, :p])), rtol=1e-6
    )
    # coef: lme4's Z is interleaved by group (term fastest) and both formulas
    # have the same terms fixed and random, so coef_j = beta + b_j
    terms = list(fit.fixed.index)
    k = len(terms)
    groups = list(dict.fromkeys(fit.coef["group"]))
    se = fit.coef.pivot(index="group", columns="term", values="std_error")
    for j, g in enumerate(groups):
        idx = p + j * k + np.arange(k)
        block = V[:p, :p] + V[np.ix_(idx, idx)] + V[:p, idx] + V[idx, :p]
        np.testing.assert_allclose(
            se.loc[g, terms], np.sqrt(np.diag(block)), rtol=1e-6
        )
    # joint algebra without the fixed-effect part reproduces lme4's postVar
    parts = r_session.r(
        "function(m) list(X = lme4::getME(m, 'X'), "
        "z = as.matrix(lme4::getME(m, 'mmList')[[1]]), "
        "g = as.integer(lme4::getME(m, 'flist')[[1]]), "
        "T = lme4::getME(m, 'Tlist')[[1]], s = sigma(m), "
        "pv = attr(lme4::ranef(m, condVar = TRUE)[[1]], 'postVar'))"
    )(fit.raw)
    X = np.asarray(parts.rx2("X"))
    zmat = np.asarray(parts.rx2("z"))
    codes = np.asarray(parts.rx2("g")) - 1
    T = np.asarray(parts.rx2("T"))
    sigma = float(parts.rx2("s")[0])
    post_var = np.asarray(parts.rx2("pv"))
    _, V_b, _ = joint_coef_covariance(X, zmat, codes, T, sigma)
    # the Schur-complement term adds the fixed-effect uncertainty: V_b >= postVar
    sd_joint = np.sqrt(np.einsum("gii->gi", V_b))
    sd_lme4 = np.sqrt(np.einsum("iig->gi", post_var))
    assert (sd_joint >= sd_lme4 - 1e-12).all()
    ranef_sd = fit.ranef.pivot(index="group", columns="term", values="std_error")
    np.testing.assert_allclose(ranef_sd.loc[groups, terms], sd_lme4, rtol=1e-10)
    # and leaving X out (no fixed effects) gives exactly lme4's postVar
    no_X = np.zeros((X.shape[0], 0))
    _, V_b0, _ = joint_coef_covariance(no_X, zmat, codes, T, sigma)
    np.testing.assert_allclose(
        V_b0, np.moveaxis(post_var, 2, 0), rtol=1e-6, atol=1e-12
    )


# --------------------------------------------------------------------------
# Singular fits and messages


@pytest.mark.needs_r
def test_singular_fit_is_flagged_with_a_message(r_session):
    sim = simulate_cafes(seed=14, sigma_b=1e-4)
    fit = fit_lmer(sim.data, CAFE_FORMULA, profile=False)
    assert fit.diagnostics["singular"] is True
    assert any("singular" in m for m in fit.messages)
    # a boundary fit: the correlation is estimated at -1 or +1
    cor = fit.varcorr.loc["cor_afternoon.(Intercept)|cafe", "estimate"]
    assert abs(abs(cor) - 1) < 1e-6


@pytest.mark.needs_r
def test_regular_fit_has_no_singular_flag(cafe_fit):
    assert cafe_fit.diagnostics["singular"] is False
    assert cafe_fit.messages == []


@pytest.mark.needs_r
def test_r_console_output_is_not_printed(sleepstudy, capfd):
    fit_lmer(sleepstudy, SLEEP_FORMULA, profile=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


# --------------------------------------------------------------------------
# Safety: the formula and the data never become R code


R_ATTACKS = [
    "wait ~ system('ls') + (1 | cafe)",
    'wait ~ afternoon + (1 | cafe); system("ls")',
    "wait ~ `system('ls')` + (1 | cafe)",
    "wait ~ afternoon + (1 | cafe)\nsystem('ls')",
    "wait ~ eval(parse(text = 'q()')) + (1 | cafe)",
    "wait ~ aftrnoon + (1 | cafe)",  # a misspelt column
    "wait ~ afternoon + (1 | shop)",  # a missing grouping column
    "system('ls')",
]


@pytest.mark.parametrize("formula", R_ATTACKS)
def test_bad_formulas_are_refused_before_r_is_called(formula, cafes, monkeypatch):
    def no_r(*args, **kwargs):
        raise AssertionError("R was reached with a bad formula")

    monkeypatch.setattr(lmer, "require_r", no_r)
    monkeypatch.setattr(lmer, "_r_function", no_r)
    with pytest.raises(InputError):
        fit_lmer(cafes, formula)


def test_misspelt_column_error_suggests_the_name(cafes, monkeypatch):
    monkeypatch.setattr(lmer, "require_r", lambda: None)
    with pytest.raises(InputError, match="afternoon"):
        fit_lmer(cafes, "wait ~ aftrnoon + (1 | cafe)")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"level": 1.5}, "level"), ({"level": 0}, "level"), ({"reml": "yes"}, "reml")],
)
def test_bad_arguments_are_refused(kwargs, match, cafes):
    with pytest.raises(InputError, match=match):
        fit_lmer(cafes, CAFE_FORMULA, **kwargs)


def test_data_must_be_a_data_frame():
    with pytest.raises(InputError, match="DataFrame"):
        fit_lmer({"wait": [1.0]}, CAFE_FORMULA)


@pytest.mark.needs_r
def test_r_code_in_data_values_is_only_data(cafes, tmp_path):
    """Group labels that look like R code reach R as strings, nothing more."""
    target = tmp_path / "pwned"
    attack = f'x"); file.create("{target}"); ("'
    data = cafes.copy()
    labels = {c: f"{attack}{c}" for c in data["cafe"].unique()}
    data["cafe"] = data["cafe"].map(labels)
    fit = fit_lmer(data, CAFE_FORMULA, profile=False)
    assert not target.exists()
    assert set(fit.ranef["group"]) == set(labels.values())


# --------------------------------------------------------------------------
# Missing R, arm::display


def test_missing_rpy2_names_the_install_commands(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "rpy2" else real(name, *a),
    )
    message = lmer._missing_part.__wrapped__()
    assert "rpy2" in message and R_INSTALL_COMMAND in message
    monkeypatch.setattr(lmer, "_missing_part", lambda: message)
    with pytest.raises(EngineMissingError, match="rpy2"):
        lmer.require_r()


@pytest.mark.needs_r
def test_display_is_arm_display_text(sleep_fit):
    text = lmer.display_lmer(sleep_fit)
    assert "coef.est" in text and "coef.se" in text
    assert "251.41" in text and "6.82" in text  # 2 digits, as arm rounds
    assert "number of obs: 180, groups: Subject, 18" in text


@pytest.mark.needs_r
@pytest.mark.parametrize("relabel", ["mixed_case", "categorical", "float"])
def test_group_order_is_design_order(relabel, cafes, r_session):
    """R's factor gets design.py's level order, whatever R's locale would do."""
    from multilevel.design import design_matrices

    data = cafes.copy()
    if relabel == "mixed_case":  # R's locale collation would interleave cases
        names = {c: ("c" if c % 2 else "C") + f"{c:02d}" for c in data["cafe"]}
        data["cafe"] = data["cafe"].map(names)
    elif relabel == "categorical":  # category order, not sorted order
        order = sorted(data["cafe"].unique(), reverse=True)
        data["cafe"] = pd.Categorical(data["cafe"], categories=order)
    else:
        data["cafe"] = data["cafe"].astype(float) / 2
    fit = fit_lmer(data, CAFE_FORMULA, profile=False)
    design = design_matrices(data, CAFE_FORMULA)
    assert list(dict.fromkeys(fit.ranef["group"])) == list(design.groups)
    Z = np.asarray(r_session.r("function(m) as.matrix(lme4::getME(m, 'Z'))")(fit.raw))
    np.testing.assert_array_equal(Z, np.asarray(design.Z))


@pytest.mark.needs_r
def test_lme4_refusal_becomes_an_input_error_with_lme4s_reason(r_session):
    """One visit per cafe: lme4 refuses (more random effects than data)."""
    data = pd.DataFrame(
        {
            "wait": np.linspace(2.0, 5.0, 12),
            "afternoon": np.tile([0, 1], 6),
            "cafe": np.arange(12),
        }
    )
    with pytest.raises(InputError, match="number of observations"):
        fit_lmer(data, CAFE_FORMULA, profile=False)


@pytest.mark.needs_r
def test_starting_r_leaves_ld_library_path_alone():
    """rpy2 prepends R's folders to LD_LIBRARY_PATH; a Python started later
    would then load the system's libpython. A fresh process checks it."""
    import subprocess
    import sys

    code = (
        "import os; before = os.environ.get('LD_LIBRARY_PATH'); "
        "from multilevel.lmer import r_available; assert r_available(); "
        "print(os.environ.get('LD_LIBRARY_PATH') == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"
