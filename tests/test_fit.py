"""The shared Fit shape refuses tables that break it."""

from __future__ import annotations

import pandas as pd
import pytest

from multilevel.fit import GROUP_COLUMNS, Fit


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
