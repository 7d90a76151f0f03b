"""fit_reml and statsmodels' MixedLM against lme4's saved answers, without R.

``tests/reference/`` holds sleepstudy, Dyestuff and the book's cafes (seed
14) as CSV, and what lme4 1.1 reported for them, REML and ML: fixed effects,
standard errors, Wald intervals, SDs, correlations, the criterion,
conditional modes with their condVar SDs, and (REML) the likelihood-ratio
profile intervals. ``tests/reference/make_reference.R`` wrote them; the
live-R tests (marked ``needs_r``) check the same agreement against lme4
running here.

Tolerances: lme4's optimiser stops within about 1e-4 relative of the
optimum (``REL_TOL``); fit_reml's criterion may be lower than lme4's, never
higher by more than rounding (``CRIT_TOL``). Conditional modes agree to 1e-3
of each term's largest mode. Profile intervals agree to 1e-3 relative (an
SD or sigma) or 5e-3 absolute (a correlation, where lme4 interpolates a
spline through a coarse profile). MixedLM: 1e-3 relative for fixed effects,
1e-2 for SDs, as measured in tests/test_mixedlm.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel.data import simulate_cafes
from multilevel.mixedlm import fit_statsmodels
from multilevel.reml import fit_reml

REFERENCE = Path(__file__).resolve().parent / "reference"
REL_TOL = 1e-4
CRIT_TOL = 1e-6

CASES = {
    "sleepstudy": ("Reaction ~ 1 + Days + (1 + Days | Subject)", {"Subject": int}),
    "dyestuff": ("Yield ~ 1 + (1 | Batch)", {"Batch": str}),
    "cafes": ("wait ~ 1 + afternoon + (1 + afternoon | cafe)", {"cafe": int}),
}


def reference_data(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv", dtype=CASES[name][1])


def lme4_answer(name: str, method: str) -> tuple[dict, pd.DataFrame]:
    saved = json.loads((REFERENCE / f"lme4_{name}.json").read_text())
    ranef = pd.read_csv(REFERENCE / f"lme4_{name}_ranef_{method}.csv",
                        dtype={"group": str})
    return saved[method], ranef


def disagreements(fit, lme4: dict, ranef: pd.DataFrame) -> list[str]:
    """Where ``fit`` (fit_reml's) and lme4's saved answer part, beyond the
    tolerances of the module docstring; empty when they agree."""
    out = []

    def close(what, a, b, rel=REL_TOL, abs_=0.0):
        if not np.isclose(a, b, rtol=rel, atol=abs_):
            out.append(f"{what}: {a!r} here, {b!r} from lme4")

    if fit.criterion > lme4["criterion"] + CRIT_TOL:
        out.append(f"criterion {fit.criterion} is above lme4's {lme4['criterion']}")
    if fit.criterion < lme4["criterion"] - 1e-4:
        out.append(f"criterion {fit.criterion} is far below lme4's "
                   f"{lme4['criterion']}: not the same model")
    for term, value in lme4["fixed"].items():
        close(f"fixed {term}", fit.fixed.loc[term, "estimate"], value)
        close(f"std_error {term}", fit.fixed.loc[term, "std_error"],
              lme4["std_error"][term])
        for side, limit in zip(("lower", "upper"), lme4["wald"][term]):
            close(f"Wald {side} {term}", fit.fixed.loc[term, side], limit)
    for name, value in lme4["varcorr"].items():
        close(f"varcorr {name}", fit.varcorr.loc[name, "estimate"], value)
    both = fit.ranef.merge(ranef, on=["group", "term"], suffixes=("", "_lme4"))
    if len(both) != len(ranef) or len(both) != len(fit.ranef):
        out.append(f"ranef rows: {len(fit.ranef)} here, {len(ranef)} from lme4")
    scale = both.groupby("term")["estimate_lme4"].transform(lambda v: v.abs().max())
    far = (both["estimate"] - both["estimate_lme4"]).abs() > 1e-3 * scale
    out += [f"ranef {r.group} {r.term}: {r.estimate} here, {r.estimate_lme4} "
            "from lme4" for r in both[far].itertuples()]
    for r in both.itertuples():
        close(f"ranef SD {r.group} {r.term}", r.std_error, r.std_error_lme4, 1e-3)
    for name, limits in lme4.get("profile", {}).items():
        for side, limit in zip(("lower", "upper"), limits):
            if name.startswith("cor_"):
                close(f"profile {side} {name}", fit.varcorr.loc[name, side], limit,
                      rel=0.0, abs_=5e-3)
            else:
                close(f"profile {side} {name}", fit.varcorr.loc[name, side], limit,
                      rel=1e-3)
    return out


@pytest.fixture(scope="module")
def reml_fits():
    fits = {}

    def get(name: str, method: str):
        if (name, method) not in fits:
            formula = CASES[name][0]
            reml = method == "REML"
            fits[name, method] = fit_reml(
                reference_data(name), formula, reml=reml,
                intervals="profile" if reml else "none",
            )
        return fits[name, method]

    return get


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("name", list(CASES))
def test_fit_reml_agrees_with_lme4s_saved_answer(reml_fits, name, method):
    fit = reml_fits(name, method)
    lme4, ranef = lme4_answer(name, method)
    assert fit.method == lme4["method"] and fit.nobs == lme4["nobs"]
    assert disagreements(fit, lme4, ranef) == []
    np.testing.assert_allclose(
        fit.diagnostics["theta"], np.atleast_1d(lme4["theta"]), rtol=1e-3,
        atol=1e-4,
    )
    if method == "REML":
        assert fit.interval == "profile"


def test_the_comparison_fails_when_lme4s_answer_is_moved(reml_fits):
    fit = reml_fits("sleepstudy", "REML")
    lme4, ranef = lme4_answer("sleepstudy", "REML")
    moved = json.loads(json.dumps(lme4))
    moved["fixed"]["Days"] *= 1.01
    moved["criterion"] -= 0.01
    moved["profile"]["cor_Days.(Intercept)|Subject"][0] += 0.02
    ranef = ranef.assign(std_error=ranef["std_error"] * 1.01)
    problems = disagreements(fit, moved, ranef)
    assert any(p.startswith("fixed Days") for p in problems)
    assert any(p.startswith("criterion") for p in problems)
    assert any(p.startswith("profile lower cor_") for p in problems)
    assert sum(p.startswith("ranef SD") for p in problems) == len(ranef)


@pytest.mark.parametrize("name", list(CASES))
def test_statsmodels_agrees_with_lme4s_saved_answer(name):
    lme4, _ = lme4_answer(name, "REML")
    fit = fit_statsmodels(reference_data(name), CASES[name][0])
    for term, value in lme4["fixed"].items():
        assert fit.fixed.loc[term, "estimate"] == pytest.approx(value, rel=1e-3)
    for vc, value in lme4["varcorr"].items():
        if vc.startswith("cor_"):
            assert fit.varcorr.loc[vc, "estimate"] == pytest.approx(value, abs=1e-2)
        else:
            assert fit.varcorr.loc[vc, "estimate"] == pytest.approx(value, rel=1e-2)


def test_the_saved_data_are_the_books_and_lme4s():
    cafes = reference_data("cafes")
    pd.testing.assert_frame_equal(cafes, simulate_cafes(seed=14).data,
                                  check_dtype=False)
    sleep = reference_data("sleepstudy")
    assert sleep.shape == (180, 3) and sleep["Subject"].nunique() == 18
    dye = reference_data("dyestuff")
    assert dye.shape == (30, 2) and sorted(dye["Batch"].unique()) == list("ABCDEF")
    # published values (Bates et al. 2015; lme4's ?Dyestuff)
    sleep_reml, _ = lme4_answer("sleepstudy", "REML")
    assert sleep_reml["criterion"] == pytest.approx(1743.6, abs=0.05)
    dye_reml, _ = lme4_answer("dyestuff", "REML")
    assert dye_reml["criterion"] == pytest.approx(319.65, abs=0.01)
