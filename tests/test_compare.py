"""compare(): joins of Fit tables and agreement measures, on hand-made fits
whose differences are known exactly (the reference is the construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multilevel.compare import compare
from multilevel.data import CAFE_FORMULA
from multilevel.errors import InputError
from multilevel.fit import Fit, varcorr_names

TERMS = ["(Intercept)", "afternoon"]
GROUPS = ["1", "2", "3", "4"]
COLS = ["group", "term", "estimate", "std_error", "lower", "upper"]


def fit_with(engine: str, fixed: list[float], offsets: dict[str, list[float]],
             varcorr: list[float], nobs: int = 40,
             formula: str = CAFE_FORMULA, interval: bool = True) -> Fit:
    fx = pd.DataFrame({"estimate": fixed, "std_error": [0.1, 0.1]},
                      index=pd.Index(TERMS, name="term"))
    fx["lower"] = fx["estimate"] - 0.2 if interval else np.nan
    fx["upper"] = fx["estimate"] + 0.2 if interval else np.nan
    vc = pd.DataFrame({"estimate": varcorr},
                      index=pd.Index(varcorr_names(TERMS, "cafe"), name="name"))
    vc["lower"], vc["upper"] = vc["estimate"] - 0.1, vc["estimate"] + 0.1
    ranef, coef = [], []
    for term, base in zip(TERMS, fixed):
        for g, u in zip(GROUPS, offsets[term]):
            ranef.append((g, term, u, 0.1, u - 0.2, u + 0.2))
            coef.append((g, term, base + u, 0.1, base + u - 0.2, base + u + 0.2))
    return Fit(engine=engine, method="test", formula=formula, fixed=fx,
               varcorr=vc, ranef=pd.DataFrame(ranef, columns=COLS),
               coef=pd.DataFrame(coef, columns=COLS), criterion=None,
               interval="Wald", nobs=nobs, ngroups=len(GROUPS))


OFFSETS_A = {"(Intercept)": [0.5, -0.5, 1.0, -1.0],
             "afternoon": [0.1, -0.1, 0.2, -0.2]}
OFFSETS_B = {"(Intercept)": [0.6, -0.5, 1.0, -1.3],  # largest gap: group 4
             "afternoon": [0.1, -0.1, 0.25, -0.2]}
VC_A = [1.0, -0.7, 0.5, 0.5]
VC_B = [1.2, -0.5, 0.5, 0.5]


@pytest.fixture()
def pair():
    a = fit_with("A", [3.5, -1.0], OFFSETS_A, VC_A)
    b = fit_with("B", [3.6, -1.0], OFFSETS_B, VC_B)
    return a, b


def test_long_tables_hold_every_row_of_every_fit(pair):
    c = compare(*pair)
    assert c.engines == ["A (test)", "B (test)"]
    assert len(c.fixed) == 2 * 2 and len(c.varcorr) == 2 * 4
    assert len(c.ranef) == len(c.coef) == 2 * 2 * len(GROUPS)
    got = c.ranef.set_index(["engine", "group", "term"])["estimate"]
    assert got[("B (test)", "4", "(Intercept)")] == pytest.approx(-1.3)


def test_agreement_is_the_known_largest_difference(pair):
    agreement = compare(*pair).agreement.set_index("table")
    assert agreement.loc["fixed", "max_abs_diff"] == pytest.approx(0.1)
    assert agreement.loc["fixed", "worst"] == "(Intercept)"
    assert agreement.loc["varcorr", "max_abs_diff"] == pytest.approx(0.2)
    assert agreement.loc["ranef", "max_abs_diff"] == pytest.approx(0.3)
    assert agreement.loc["ranef", "worst"] == ("4", "(Intercept)")
    # symmetric relative difference: |1.0 - 1.2| / 1.2 for sd_(Intercept)
    assert agreement.loc["varcorr", "max_rel_diff"] == pytest.approx(
        max(0.2 / 1.2, 0.2 / 0.7)
    )


def test_ranef_correlation_is_pearsons_r(pair):
    r = compare(*pair).ranef_correlation.set_index("term")["r"]
    for term in TERMS:
        expected = np.corrcoef(OFFSETS_A[term], OFFSETS_B[term])[0, 1]
        assert r[term] == pytest.approx(expected)


def test_identical_fits_agree_exactly(pair):
    a, _ = pair
    twin = fit_with("A", [3.5, -1.0], OFFSETS_A, VC_A)
    c = compare(a, twin)
    assert c.engines == ["A (test) #1", "A (test) #2"]  # labels made unique
    assert (c.agreement["max_abs_diff"] == 0).all()
    assert np.allclose(c.ranef_correlation["r"], 1.0)


def test_wide_puts_engines_side_by_side_in_order(pair):
    wide = compare(*pair).wide("fixed")
    assert list(wide.columns) == ["A (test)", "B (test)"]
    assert list(wide.index) == TERMS
    assert wide.loc["(Intercept)"].tolist() == pytest.approx([3.5, 3.6])


def test_side_by_side_formats_estimate_and_interval_with_truth(pair):
    truth = pd.Series([3.5, -1.0], index=TERMS)
    out = compare(*pair).side_by_side("fixed", truth=truth, digits=2)
    assert out.loc["(Intercept)", "B (test)"] == "3.60 [3.40, 3.80]"
    assert out.loc["afternoon", "truth"] == "-1.00"
    vc = compare(*pair).side_by_side("varcorr")
    assert vc.loc["cor_afternoon.(Intercept)|cafe", "A (test)"] == (
        "-0.70 [-0.80, -0.60]"
    )


def test_side_by_side_without_interval_shows_the_estimate_only(pair):
    a, _ = pair
    bare = fit_with("C", [3.4, -0.9], OFFSETS_A, VC_A, interval=False)
    out = compare(a, bare).side_by_side("fixed", digits=1)
    assert out.loc["(Intercept)", "C (test)"] == "3.4"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("fixed", pd.Series([3.5], index=["(Intercept)"])), "no value for"),
        (("ranef", None), "'fixed' or 'varcorr'"),
    ],
)
def test_side_by_side_refuses_bad_requests(pair, args, match):
    with pytest.raises(InputError, match=match):
        compare(*pair).side_by_side(*args)


def test_compare_refuses_what_cannot_be_joined(pair):
    a, b = pair
    with pytest.raises(InputError, match="at least two fits"):
        compare(a)
    with pytest.raises(InputError, match="not a Fit"):
        compare(a, a.fixed)
    other = fit_with("B", [3.6, -1.0], OFFSETS_B, VC_B,
                     formula="wait ~ 1 + (1 | cafe)")
    with pytest.raises(InputError, match="different models"):
        compare(a, other)
    more = fit_with("B", [3.6, -1.0], OFFSETS_B, VC_B, nobs=41)
    with pytest.raises(InputError, match="different numbers of observations"):
        compare(a, more)
    with pytest.raises(InputError, match="unknown table"):
        compare(a, b).wide("nope")
    with pytest.raises(InputError, match="no column"):
        compare(a, b).wide("varcorr", "std_error")


def test_compare_refuses_fits_of_different_terms(pair):
    a, b = pair
    b.varcorr = b.varcorr.rename(index={"sigma": "sigma_other"})
    with pytest.raises(InputError, match="only in"):
        compare(a, b)
