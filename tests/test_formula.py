"""Tests of formula parsing and data checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.formula import MixedFormula, check_data, parse_formula


@pytest.fixture(scope="module")
def cafes() -> pd.DataFrame:
    return simulate_cafes(seed=7).data


def test_cafe_formula(cafes):
    f = parse_formula(CAFE_FORMULA, cafes)
    assert isinstance(f, MixedFormula)
    assert f.response == "wait"
    assert f.fixed_terms == ("(Intercept)", "afternoon")
    assert f.random_terms == ("(Intercept)", "afternoon")
    assert f.group == "cafe"
    assert f.text == CAFE_FORMULA
    assert f.variables == ("wait", "afternoon", "cafe")
    assert parse_formula(f) is f


@pytest.mark.parametrize(
    "text, fixed, random",
    [
        # lme4 adds the intercept implicitly, on both sides of the bar
        ("wait ~ afternoon + (afternoon | cafe)",
         ("(Intercept)", "afternoon"), ("(Intercept)", "afternoon")),
        ("wait ~ 0 + afternoon + (0 + afternoon | cafe)",
         ("afternoon",), ("afternoon",)),
        ("wait ~ 1 + (1 | cafe)", ("(Intercept)",), ("(Intercept)",)),
        ("wait ~ afternoon + (1 | cafe)",
         ("(Intercept)", "afternoon"), ("(Intercept)",)),
        ("wait~afternoon+(1+afternoon|cafe)",
         ("(Intercept)", "afternoon"), ("(Intercept)", "afternoon")),
        ("Reaction ~ Days + (Days | Subject)",
         ("(Intercept)", "Days"), ("(Intercept)", "Days")),
        ("y ~ x2 + x1 + (1 + x1 + x2 | g)",
         ("(Intercept)", "x2", "x1"), ("(Intercept)", "x1", "x2")),
    ],
)
def test_supported_forms(text, fixed, random):
    f = parse_formula(text)
    assert f.fixed_terms == fixed
    assert f.random_terms == random


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("y + (1 | g)", "no '~'"),
        ("y ~ x", "not a mixed model"),
        ("~ x + (1 | g)", "no response"),
        ("y ~ x ~ z + (1 | g)", "more than one '~'"),
        ("y ~ x + (x || g)", "'||'"),
        ("y ~ x + (1 | g/h)", "nested"),
        ("y ~ x + (1 | g:h)", "nested"),
        ("y ~ x + (1 | g) + (1 | h)", "2 grouping factors"),
        ("y ~ x + (1 | g) + (0 + x | g)", "2 bars"),
        ("y ~ x + (x:z | g)", "random part has an interaction"),
        ("y ~ x * z + (1 | g)", "fixed part has an interaction"),
        ("y ~ log(x) + (1 | g)", "calls a function"),
        ("y ~ {x + 1} + (1 | g)", "calls a function"),
        ("y ~ x + (1 | g) - 1", "outside the allowed alphabet"),
        ("y ~ x + 2 + (1 | g)", "outside the allowed alphabet"),
        ("y ~ x + 10 + (1 | g)", "outside the allowed alphabet"),
        ("y ~ x.1 + (1 | g)", "outside the allowed alphabet"),
        ("y ~ x + (1 | g", "could not be parsed"),
        ('y ~ x + (1 | g); system("rm -rf /")', "could not be parsed"),
        ("y ~ x + (1 | g) + `system('ls')`", "outside the allowed alphabet"),
        ("y ~ if + (1 | g)", "reserved word in R"),
        ("y ~ y + (1 | g)", "response 'y' on the right-hand side"),
        ("y ~ g + (1 | g)", "grouping factor 'g' as a predictor"),
    ],
)
def test_unsupported_formulas_are_refused(text, fragment):
    with pytest.raises(InputError) as err:
        parse_formula(text)
    assert fragment in str(err.value)


@pytest.mark.parametrize("value", [None, 3, ["y ~ x + (1 | g)"], b"y ~ (1|g)"])
def test_non_strings_are_refused(value):
    with pytest.raises(InputError, match="must be a string"):
        parse_formula(value)


# Python and R both treat these characters as code; none may get through.
_DANGEROUS = list("`'\";:$@!{}[]\\/-*^%=<>,.&?#")


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(["y ~ x", "y ~ x + (1 | g)", "y ~ (1 | g) + x"]),
    injected=st.text(
        alphabet=st.sampled_from(_DANGEROUS + list("abcxyz019 ()|+~")),
        min_size=1,
        max_size=12,
    ).filter(lambda s: any(c in _DANGEROUS for c in s)),
)
def test_no_dangerous_character_survives(prefix, injected):
    """Anything accepted is made only of names, 0, 1, +, |, ~ and parentheses."""
    text = prefix + " + " + injected
    try:
        f = parse_formula(text)
    except InputError:
        return
    raise AssertionError(f"accepted {text!r} as {f}")  # pragma: no cover


@settings(max_examples=100, deadline=None)
@given(
    names=st.lists(
        st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
        min_size=4, max_size=4, unique=True,
    ).filter(lambda ns: not {"if", "in", "for"} & set(ns)),
    intercept=st.booleans(),
    slope=st.booleans(),
)
def test_generated_formulas_round_trip(names, intercept, slope):
    y, x1, x2, g = names
    random = ("1" if intercept else "0") + (f" + {x1}" if slope else "")
    if not intercept and not slope:
        random = "1"
    text = f"{y} ~ 1 + {x1} + {x2} + ({random} | {g})"
    f = parse_formula(text)
    assert f.response == y and f.group == g
    assert f.fixed_terms == ("(Intercept)", x1, x2)
    expected = (["(Intercept)"] if intercept or not slope else []) + (
        [x1] if slope else []
    )
    assert list(f.random_terms) == expected


def test_misspelt_column_suggests_the_closest(cafes):
    with pytest.raises(InputError, match="Did you mean 'afternoon'"):
        parse_formula("wait ~ afternon + (1 | cafe)", cafes)
    with pytest.raises(InputError, match="Did you mean 'wait'"):
        check_data(cafes, "Wait ~ afternoon + (1 | cafe)")
    with pytest.raises(InputError, match="has columns"):
        check_data(cafes, "wait ~ zzz + (1 | cafe)")


def test_check_data_accepts_the_cafes(cafes):
    f = check_data(cafes, CAFE_FORMULA)
    assert f.group == "cafe"


def test_check_data_counts_missing_values(cafes):
    data = cafes.copy()
    data.loc[[3, 8, 20], "wait"] = np.nan
    with pytest.raises(InputError) as err:
        check_data(data, CAFE_FORMULA)
    assert "'wait' has 3 missing value(s)" in str(err.value)
    assert "dropna" in str(err.value)
    data = cafes.copy()
    data["cafe"] = data["cafe"].astype(object)
    data.loc[0, "cafe"] = None
    with pytest.raises(InputError, match="'cafe' has 1 missing"):
        check_data(data, CAFE_FORMULA)


@pytest.mark.parametrize("column, role", [("wait", "outcome"),
                                          ("afternoon", "predictor")])
def test_check_data_refuses_non_numeric(cafes, column, role):
    data = cafes.copy()
    data[column] = data[column].astype(str)
    with pytest.raises(InputError, match=f"The {role} '{column}' has dtype"):
        check_data(data, CAFE_FORMULA)


def test_check_data_refuses_booleans_and_infinities(cafes):
    data = cafes.copy()
    data["afternoon"] = data["afternoon"].astype(bool)
    with pytest.raises(InputError, match="astype\\(int\\)"):
        check_data(data, CAFE_FORMULA)
    data = cafes.copy()
    data.loc[5, "wait"] = np.inf
    with pytest.raises(InputError, match="1 infinite"):
        check_data(data, CAFE_FORMULA)


def test_check_data_refuses_one_group(cafes):
    data = cafes[cafes["cafe"] == 0]
    with pytest.raises(InputError, match="1 level"):
        check_data(data, CAFE_FORMULA)


def test_check_data_refuses_fewer_rows_than_fixed_effects():
    data = pd.DataFrame({"y": [1.0], "x": [0.0], "z": [1.0], "g": [1]})
    with pytest.raises(InputError, match="at least two groups|1 level"):
        check_data(data, "y ~ x + z + (1 | g)")
    data = pd.DataFrame({"y": [1.0, 2.0], "x": [0.0, 1.0], "z": [1.0, 3.0],
                         "g": [1, 2]})
    with pytest.raises(InputError, match="2 rows but the formula has 3 fixed"):
        check_data(data, "y ~ x + z + (1 | g)")


def test_check_data_refuses_non_frames():
    with pytest.raises(InputError, match="pandas DataFrame"):
        check_data({"y": [1.0]}, "y ~ (1 | g)")


@pytest.mark.parametrize("text", ["y ~ x + 0<|", "y ~ x + 1<|", "y ~ x < |"])
def test_a_bar_outside_a_random_term_is_refused(text):
    """formulae reads 'y ~ x + 0<|' as 'y ~ x' (found by hypothesis)."""
    with pytest.raises(InputError, match="no random part"):
        parse_formula(text)
