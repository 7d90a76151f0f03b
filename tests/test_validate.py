"""The one module of argument checks: what it accepts, what it refuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from multilevel import validate
from multilevel.errors import InputError


@pytest.mark.parametrize("value", [3, np.int64(3)])
def test_whole_number_accepts_ints(value):
    assert validate.whole_number("n", value, 1) == 3
    assert type(validate.whole_number("n", value, 1)) is int


@pytest.mark.parametrize(
    "value, fragment",
    [
        (True, "whole number"),
        (np.bool_(True), "whole number"),
        (2.0, "whole number"),
        ("2", "whole number"),
        (0, "n must be >= 1, got 0"),
    ],
)
def test_whole_number_refuses(value, fragment):
    with pytest.raises(InputError, match=fragment):
        validate.whole_number("n", value, 1)


def test_whole_number_says_the_given_fix():
    with pytest.raises(InputError, match="r-hat compares chains"):
        validate.whole_number("chains", 1, 2, fix="r-hat compares chains.")


@pytest.mark.parametrize(
    "value, kwargs, fragment",
    [
        ("1", {}, "real number"),
        (True, {}, "real number"),
        (float("nan"), {}, "finite"),
        (float("inf"), {}, "finite"),
        (0.0, {"positive": True, "what": "an SD"}, "is an SD and must be > 0"),
        (-1, {"positive": True}, "must be > 0"),
    ],
)
def test_real_number_refuses(value, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        validate.real_number("x", value, **kwargs)


def test_real_number_returns_a_float():
    assert validate.real_number("x", np.float32(0.5), positive=True) == 0.5
    assert type(validate.real_number("x", 2)) is float


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, True, "0.95", None])
def test_level_refuses_what_is_not_in_the_open_unit_interval(value):
    with pytest.raises(InputError, match="level must be a number in"):
        validate.interval_level(value)


def test_level_flag_choice_seed_dataframe_accept_good_values():
    assert validate.interval_level(0.9) == 0.9
    assert validate.flag("reml", np.bool_(False)) is False
    assert validate.choice("sampler", "pymc", ("nutpie", "pymc")) == "pymc"
    assert validate.seed(np.int32(7)) == 7
    frame = pd.DataFrame({"a": [1]})
    assert validate.dataframe(frame) is frame


def test_flag_choice_seed_dataframe_refuse_bad_values():
    with pytest.raises(InputError, match="reml must be True or False"):
        validate.flag("reml", 1)
    with pytest.raises(InputError, match="unknown sampler 'stan'; choose one "
                       "of nutpie, pymc"):
        validate.choice("sampler", "stan", ("nutpie", "pymc"))
    for bad in (-1, 1.5, True):
        with pytest.raises(InputError, match="non-negative whole number"):
            validate.seed(bad)
    with pytest.raises(InputError, match="DataFrame, got dict; pass a frame"):
        validate.dataframe({}, hint="pass a frame")


def test_fit_arguments_checks_all_three():
    frame = pd.DataFrame({"a": [1]})
    validate.fit_arguments(frame, reml=True, level=0.95)
    with pytest.raises(InputError, match="DataFrame"):
        validate.fit_arguments([1], reml=True, level=0.95)
    with pytest.raises(InputError, match="level"):
        validate.fit_arguments(frame, reml=True, level=95)
    with pytest.raises(InputError, match="reml"):
        validate.fit_arguments(frame, reml="yes", level=0.95)


def test_share_is_strictly_between_0_and_1():
    assert validate.share("p", 0.25, what="a probability", example=0.9) == 0.25
    for bad, message in ((1.0, "must be between 0 and 1"), (1.5, "between 0 and 1"),
                         (0.0, "must be > 0"), (-0.1, "must be > 0"),
                         ("0.9", "must be a real number"), (True, "real number")):
        with pytest.raises(InputError, match=message):
            validate.share("p", bad, what="a probability", example=0.9)
