"""The shared Fit shape refuses tables that break it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel.fit import (
    GROUP_COLUMNS,
    Fit,
    cor_name,
    varcorr_names,
    varying_covariance,
)


def _tables():
    fixed = pd.DataFrame({"estimate": [1.0], "std_error": [0.1], "lower": [0.8],
                          "upper": [1.2]}, index=pd.Index(["(Intercept)"], name="term"))
    varcorr = pd.DataFrame({"estimate": [0.5], "lower": [0.3], "upper": [0.9]},
                           index=pd.Index(["sigma"], name="name"))
    group = pd.DataFrame([["a", "(Intercept)", 0.1, 0.05, 0.0, 0.2]],
                         columns=list(GROUP_COLUMNS))
    return dict(fixed=fixed, varcorr=varcorr, ranef=group, coef=group.copy())


def _fit(**change):
    tables = _tables() | change
    return Fit(engine="test", method="REML", formula="y ~ 1 + (1 | g)",
               criterion=1.0, interval="Wald", **tables)


def test_a_fit_of_the_shared_shape_is_accepted():
    assert _fit().label == "test (REML)"


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"fixed": _tables()["fixed"].drop(columns="std_error")},
         "fixed lacks columns ['std_error']"),
        ({"varcorr": [0.5]}, "varcorr is a list, not a DataFrame"),
        ({"coef": _tables()["coef"].drop(columns="group")},
         "coef lacks columns ['group']"),
        ({"ranef": _tables()["ranef"].assign(group=[1])},
         "ranef.group must hold strings"),
    ],
)
def test_a_table_that_breaks_the_shape_is_refused(change, fragment):
    with pytest.raises(ValueError, match="breaks the shared shape") as err:
        _fit(**change)
    assert fragment in str(err.value)


def test_an_unknown_interval_kind_or_level_is_refused():
    with pytest.raises(ValueError, match="interval 'bootstrap'"):
        Fit(engine="test", method="REML", formula="f", criterion=None,
            interval="bootstrap", **_tables())
    with pytest.raises(ValueError, match="level 1.5"):
        Fit(engine="test", method="REML", formula="f", criterion=None,
            interval="Wald", level=1.5, **_tables())


# ------------------------------------------ S, the varying effects' covariance

REFERENCE = Path(__file__).resolve().parent / "reference"


@pytest.mark.parametrize("name, terms", [
    ("cafes", ["(Intercept)", "afternoon"]),
    ("sleepstudy", ["(Intercept)", "Days"]),
])
def test_S_is_sigma_squared_lambda_lambda_t_at_lme4s_theta(name, terms):
    """lme4 reports the same estimate twice: as SDs and a correlation, and
    as theta (Lambda's lower triangle, relative to sigma). S from the first
    equals sigma^2 Lambda Lambda' from the second."""
    saved = json.loads((REFERENCE / f"lme4_{name}.json").read_text())["REML"]
    vc = saved["varcorr"]
    group = "cafe" if name == "cafes" else "Subject"
    names = varcorr_names(terms, group)
    varcorr = pd.DataFrame({"estimate": [vc[n] for n in names], "lower": np.nan,
                            "upper": np.nan}, index=pd.Index(names, name="name"))
    S = _fit(varcorr=varcorr).S
    t1, t2, t3 = saved["theta"]
    Lam = np.array([[t1, 0.0], [t2, t3]])
    np.testing.assert_allclose(S.to_numpy(), vc["sigma"] ** 2 * Lam @ Lam.T,
                               rtol=1e-9)
    assert list(S.index) == terms and list(S.columns) == terms


def test_S_with_three_terms_puts_each_correlation_in_its_place():
    sd = np.array([2.0, 0.5, 1.5])
    R = np.array([[1.0, -0.3, 0.2], [-0.3, 1.0, 0.6], [0.2, 0.6, 1.0]])
    terms = ["(Intercept)", "x", "z"]
    names = varcorr_names(terms, "g")
    value = {"sd_(Intercept)|g": 2.0, "sd_x|g": 0.5, "sd_z|g": 1.5,
             cor_name("(Intercept)", "x", "g"): -0.3,
             cor_name("(Intercept)", "z", "g"): 0.2,
             cor_name("x", "z", "g"): 0.6, "sigma": 1.0}
    S = varying_covariance(pd.Series({n: value[n] for n in names}))
    np.testing.assert_allclose(S.to_numpy(), R * np.outer(sd, sd))


@pytest.mark.parametrize("rows, fragment", [
    ({"sigma": 1.0}, "exactly one grouping factor"),
    ({"sd_(Intercept)|g": 1.0, "sd_(Intercept)|h": 1.0, "sigma": 1.0},
     "exactly one grouping factor"),
    ({"sd_(Intercept)|g": 1.0, "sd_x|g": 1.0, "sigma": 1.0},
     "no row 'cor_x.(Intercept)|g'"),
    ({"sd_(Intercept)|g": np.nan, "sigma": 1.0}, "non-finite"),
])
def test_S_refuses_a_varcorr_it_cannot_read(rows, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(
            ")", r"\)").replace("|", r"\|").replace(".", r"\.")):
        varying_covariance(pd.Series(rows))
