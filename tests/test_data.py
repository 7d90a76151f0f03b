"""Tests of the cafe simulation: shape properties, determinism, and the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multilevel.data import CAFE_FORMULA, CafeSimulation, Truth, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import varcorr_names


def test_formula_is_the_books():
    assert CAFE_FORMULA == "wait ~ 1 + afternoon + (1 + afternoon | cafe)"


def test_default_is_balanced_and_alternates_like_the_book():
    sim = simulate_cafes(seed=1)
    assert isinstance(sim, CafeSimulation)
    data = sim.data
    assert list(data.columns) == ["cafe", "afternoon", "wait"]
    assert len(data) == 200
    assert data["cafe"].value_counts().eq(10).all()
    assert list(data["cafe"].unique()) == list(range(20))
    # morning, afternoon, morning, ... within every cafe
    assert (data["afternoon"].to_numpy() == np.tile([0, 1], 100)).all()


def test_truth_tables_carry_lme4_names():
    truth = simulate_cafes(seed=1).truth
    assert isinstance(truth, Truth)
    assert list(truth.fixed.index) == ["(Intercept)", "afternoon"]
    assert list(truth.fixed) == [3.5, -1.0]
    assert list(truth.varcorr.index) == varcorr_names(
        ["(Intercept)", "afternoon"], "cafe"
    )
    assert truth.varcorr["cor_afternoon.(Intercept)|cafe"] == -0.7
    assert truth.varcorr["sd_(Intercept)|cafe"] == 1.0
    assert truth.varcorr["sd_afternoon|cafe"] == 0.5
    assert truth.varcorr["sigma"] == 0.5
    np.testing.assert_allclose(truth.S, [[1.0, -0.35], [-0.35, 0.25]])
    cafes = truth.cafes
    assert list(cafes.columns) == [
        "cafe", "a_cafe", "b_cafe", "alpha_cafe", "beta_cafe"
    ]
    np.testing.assert_allclose(cafes["alpha_cafe"], 3.5 + cafes["a_cafe"])
    np.testing.assert_allclose(cafes["beta_cafe"], -1.0 + cafes["b_cafe"])


def test_same_seed_same_data_and_generator_accepted():
    one = simulate_cafes(seed=42)
    two = simulate_cafes(seed=42)
    pd.testing.assert_frame_equal(one.data, two.data)
    pd.testing.assert_frame_equal(one.truth.cafes, two.truth.cafes)
    three = simulate_cafes(seed=np.random.default_rng(42))
    pd.testing.assert_frame_equal(one.data, three.data)
    other = simulate_cafes(seed=43)
    assert not np.allclose(one.data["wait"], other.data["wait"])


def test_cafe_effects_do_not_depend_on_the_visits():
    balanced = simulate_cafes(seed=5)
    unbalanced = simulate_cafes(seed=5, visits=[1, 2, 3, 4, 5] * 4, no_afternoon=3)
    pd.testing.assert_frame_equal(balanced.truth.cafes, unbalanced.truth.cafes)


@st.composite
def designs(draw):
    n_cafes = draw(st.integers(2, 12))
    use_visits = draw(st.booleans())
    visits = (
        draw(st.lists(st.integers(1, 9), min_size=n_cafes, max_size=n_cafes))
        if use_visits
        else None
    )
    return dict(
        n_cafes=n_cafes,
        n_visits=draw(st.integers(1, 9)),
        visits=visits,
        no_afternoon=draw(st.integers(0, n_cafes)),
        rho=draw(st.floats(-0.99, 0.99)),
        sigma_a=draw(st.floats(0.01, 5)),
        sigma_b=draw(st.floats(0.01, 5)),
        sigma=draw(st.floats(0.01, 5)),
        alpha=draw(st.floats(-10, 10)),
        beta=draw(st.floats(-10, 10)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@settings(max_examples=60, deadline=None)
@given(designs())
def test_simulation_properties(kw):
    sim = simulate_cafes(**kw)
    data, cafes = sim.data, sim.truth.cafes
    n_cafes = kw["n_cafes"]
    counts = kw["visits"] or [kw["n_visits"]] * n_cafes
    # shapes, columns, dtypes
    assert list(data.columns) == ["cafe", "afternoon", "wait"]
    assert data["cafe"].dtype == np.int64
    assert data["afternoon"].dtype == np.int64
    assert data["wait"].dtype == np.float64
    assert len(data) == sum(counts)
    assert np.isfinite(data["wait"]).all()
    assert set(data["afternoon"]) <= {0, 1}
    assert len(cafes) == n_cafes
    assert list(cafes["cafe"]) == list(range(n_cafes))
    # each cafe's rows: contiguous, in label order, with the requested count
    assert (np.diff(data["cafe"].to_numpy()) >= 0).all()
    observed = data.groupby("cafe").size().reindex(range(n_cafes), fill_value=0)
    assert list(observed) == list(counts)
    morning_only = set(range(n_cafes - kw["no_afternoon"], n_cafes))
    for j, rows in data.groupby("cafe"):
        pattern = np.arange(len(rows)) % 2
        if j in morning_only:
            assert (rows["afternoon"] == 0).all()
        else:
            assert (rows["afternoon"].to_numpy() == pattern).all()


def test_statistics_match_the_truth():
    """With many cafes the sample moments sit within their sampling error.

    For n iid bivariate normal draws with covariance S, the sample covariance
    s_jk has variance (S_jj S_kk + S_jk^2) / (n - 1) (Wishart), and the
    sample SD of n iid N(0, sigma^2) residuals has SE about sigma/sqrt(2n).
    We allow 4.5 standard errors.
    """
    n = 20_000
    sim = simulate_cafes(n_cafes=n, n_visits=2, seed=2024)
    truth, cafes, data = sim.truth, sim.truth.cafes, sim.data
    S = truth.S
    offsets = cafes[["a_cafe", "b_cafe"]].to_numpy()
    S_hat = np.cov(offsets, rowvar=False)
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / (n - 1))
    assert (np.abs(S_hat - S) < 4.5 * se).all(), (S_hat, S, se)
    # the means of the cafes' intercepts and slopes are a and b
    means = cafes[["alpha_cafe", "beta_cafe"]].mean().to_numpy()
    se_mean = np.sqrt(np.diag(S) / n)
    assert (np.abs(means - [truth.alpha, truth.beta]) < 4.5 * se_mean).all()
    # the tolerance is tight enough to catch a wrong correlation
    assert 4.5 * se[0, 1] < 0.05 * truth.sigma_a * truth.sigma_b
    # residuals of the waits around each cafe's line
    mu = (
        cafes["alpha_cafe"].to_numpy()[data["cafe"]]
        + cafes["beta_cafe"].to_numpy()[data["cafe"]] * data["afternoon"]
    )
    resid = data["wait"].to_numpy() - mu
    m = resid.size
    assert abs(resid.mean()) < 4.5 * truth.sigma / np.sqrt(m)
    assert abs(resid.std(ddof=1) - truth.sigma) < 4.5 * truth.sigma / np.sqrt(2 * m)


def test_morning_wait_and_afternoon_difference_follow_the_population():
    """Independent of truth.cafes: moments of the observed cafe means.

    With 2 visits per cafe (one morning, one afternoon), the morning wait has
    variance sigma_a^2 + sigma^2 and the afternoon minus morning difference
    has variance sigma_b^2 + 2 sigma^2 around a and b.
    """
    n = 20_000
    sim = simulate_cafes(n_cafes=n, n_visits=2, seed=99)
    wide = sim.data.pivot(index="cafe", columns="afternoon", values="wait")
    morning, diff = wide[0], wide[1] - wide[0]
    t = sim.truth
    var_m = t.sigma_a**2 + t.sigma**2
    var_d = t.sigma_b**2 + 2 * t.sigma**2
    assert abs(morning.mean() - t.alpha) < 4.5 * np.sqrt(var_m / n)
    assert abs(diff.mean() - t.beta) < 4.5 * np.sqrt(var_d / n)
    # cov(morning, diff) = rho sigma_a sigma_b - sigma^2
    cov = np.cov(morning, diff)[0, 1]
    expected = t.rho * t.sigma_a * t.sigma_b - t.sigma**2
    se = np.sqrt((var_m * var_d + expected**2) / (n - 1))
    assert abs(cov - expected) < 4.5 * se


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(rho=1.0), "rho"),
        (dict(rho=-1.5), "between -1 and 1"),
        (dict(rho=float("nan")), "finite"),
        (dict(sigma_a=0.0), "sigma_a"),
        (dict(sigma_b=-0.5), "sigma_b"),
        (dict(sigma=0), "sigma is a standard deviation and must be > 0"),
        (dict(n_cafes=1), "n_cafes must be >= 2"),
        (dict(n_cafes=2.5), "whole number"),
        (dict(n_cafes=True), "whole number"),
        (dict(n_visits=0), "n_visits"),
        (dict(n_visits=3.0), "whole number"),
        (dict(visits=[10] * 19), "visits has 19 counts but n_cafes is 20"),
        (dict(visits=[10] * 19 + [0]), "at least one visit"),
        (dict(visits=[10] * 19 + [2.5]), "visits[19]"),
        (dict(visits="10"), "sequence"),
        (dict(no_afternoon=21), "no_afternoon"),
        (dict(no_afternoon=-1), "no_afternoon"),
        (dict(alpha="3.5"), "real number"),
    ],
)
def test_bad_input_is_refused_with_a_fix(kwargs, fragment):
    with pytest.raises(InputError) as err:
        simulate_cafes(seed=1, **kwargs)
    message = str(err.value)
    assert fragment in message
    assert any(word in message for word in ("pass", "set", "Drop", "must"))


def test_seed_is_required():
    with pytest.raises(TypeError):
        simulate_cafes()  # keyword-only and without a default
    with pytest.raises(InputError, match="seed is required"):
        simulate_cafes(seed=None)
    with pytest.raises(InputError, match="seed must be"):
        simulate_cafes(seed="1")
