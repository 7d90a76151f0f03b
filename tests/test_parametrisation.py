"""Choosing the centred or non-centred cafe model from the data.

``choose_parametrisation`` reads how well each cafe is informed from its
shrinkage weight at the REML estimates. The rule is checked on simulated
designs whose answer is known from the algebra of the weight (many visits
and widely spread cafes: the likelihood pins every cafe, centred; few
visits, a small slope SD or a singular fit: the population pins them,
non-centred); the weights themselves against a second computation of the
same eigenvalues (scipy's generalised symmetric eigensolver); bad input
against its message. One small MCMC fit checks that ``fit_pymc`` uses and
records the choice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import eigh

from multilevel.bayes import fit_pymc
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.design import group_levels
from multilevel.errors import InputError
from multilevel.pooling import (
    MIN_GROUPS,
    WELL_INFORMED,
    Parametrisation,
    choose_parametrisation,
)
from multilevel.reml import fit_reml

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS:UserWarning"
)

SEEDS = (1, 2, 3)


def _choose(seed: int, **design) -> Parametrisation:
    return choose_parametrisation(simulate_cafes(seed=seed, **design).data)


@pytest.mark.parametrize("seed", SEEDS)
def test_many_visits_and_spread_out_cafes_are_centred(seed):
    choice = _choose(seed, n_visits=40, sigma_a=3.0)
    assert choice.centered, choice.reason
    assert choice.form == "centred"
    assert choice.summary["weight_median"] > 0.8
    assert not choice.summary["singular"]
    assert "centred" in choice.reason and "median" in choice.reason


@pytest.mark.parametrize(
    "design",
    [
        {"n_visits": 4},  # few visits per cafe
        {"sigma_b": 0.05},  # the slopes barely differ between cafes
        {"n_cafes": 5},  # too few cafes to know the SDs
    ],
    ids=["few-visits", "small-sigma-beta", "five-cafes"],
)
@pytest.mark.parametrize("seed", SEEDS)
def test_weakly_informed_cafes_are_non_centred(design, seed):
    choice = _choose(seed, **design)
    assert not choice.centered, choice.reason
    assert choice.form == "non-centred"
    assert "non-centred" in choice.reason


def test_a_singular_reml_fit_is_non_centred_and_says_so():
    # cafes that do not differ: REML puts both SDs' ratio on the boundary
    data = simulate_cafes(seed=1, sigma_a=1e-4, sigma_b=1e-4).data
    assert fit_reml(data, CAFE_FORMULA, intervals="none").diagnostics["singular"]
    choice = choose_parametrisation(data)
    assert not choice.centered
    assert choice.summary["singular"]
    assert "singular" in choice.reason
    assert choice.weights["weight"].isna().all()
    assert np.isnan(choice.summary["weight_median"])


def test_the_weights_are_the_generalised_eigenvalues_of_the_cafes_data():
    """Uneven cafes (2 to 30 visits): the smallest eigenvalue of
    W_j = (Z'Z + sigma^2 S^-1)^-1 Z'Z solves Z'Z v = w (Z'Z + sigma^2 S^-1) v,
    computed here by scipy's symmetric solver from fit_reml's S and sigma;
    more visits give a cafe more weight."""
    visits = list(range(2, 32, 3)) * 2
    data = simulate_cafes(n_cafes=len(visits), visits=visits, seed=5).data
    choice = choose_parametrisation(data)
    fit = fit_reml(data, CAFE_FORMULA, intervals="none")
    S = fit.S.to_numpy()
    sigma = float(fit.varcorr.loc["sigma", "estimate"])
    labels, idx = group_levels(data["cafe"])
    A = data["afternoon"].to_numpy(dtype=float)
    expected = []
    for j in range(len(labels)):
        Z = np.column_stack([np.ones((idx == j).sum()), A[idx == j]])
        ZtZ = Z.T @ Z
        expected.append(eigh(ZtZ, ZtZ + sigma**2 * np.linalg.inv(S),
                             eigvals_only=True)[0])
    weights = choice.weights.set_index("group")
    assert list(weights.index) == list(labels)
    np.testing.assert_allclose(weights["weight"], expected, rtol=1e-9)
    assert (weights["n"].to_numpy() == np.bincount(idx)).all()
    assert ((weights["weight"] > 0) & (weights["weight"] < 1)).all()
    by_visits = weights.groupby("n")["weight"].mean()
    assert by_visits.is_monotonic_increasing
    summary = choice.summary
    assert summary["weight_min"] == pytest.approx(min(expected))
    assert summary["weight_median"] == pytest.approx(np.median(expected))
    assert summary["weight_max"] == pytest.approx(max(expected))
    assert summary["n_groups"] == len(labels)
    # the rows in another order: each cafe keeps its own weight
    shuffled = data.sample(frac=1.0, random_state=np.random.default_rng(2))
    again = choose_parametrisation(shuffled).weights.set_index("group")
    np.testing.assert_allclose(again.loc[weights.index, "weight"],
                               weights["weight"], rtol=1e-6)


def test_the_threshold_decides():
    """The same data are centred or not depending only on the threshold
    around their median weight: the rule compares, it does not guess."""
    data = simulate_cafes(seed=1).data
    median = choose_parametrisation(data).summary["weight_median"]
    assert choose_parametrisation(data, threshold=median * 0.9).centered
    assert not choose_parametrisation(
        data, threshold=min(0.99, median * 1.1)
    ).centered
    assert 0 < WELL_INFORMED < 1
    # ten cafes may go either way; nine are non-centred whatever the weights
    nine = simulate_cafes(seed=3, n_cafes=MIN_GROUPS - 1, n_visits=40,
                          sigma_a=3.0).data
    few = choose_parametrisation(nine)
    assert not few.centered
    assert few.summary["weight_median"] > 0.8
    assert f"fewer than {MIN_GROUPS}" in few.reason


@pytest.mark.parametrize(
    "data, kwargs, match",
    [
        ("cafes.csv", {}, "DataFrame"),
        (pd.DataFrame({"cafe": [1, 2], "wait": [1.0, 2.0]}), {}, "afternoon"),
        (None, {"threshold": 0.0}, "threshold.*> 0"),
        (None, {"threshold": 1.0}, "between 0 and 1"),
        (None, {"threshold": "high"}, "threshold must be a real number"),
        ("one cafe", {}, "1 level.*at least two groups"),
    ],
)
def test_bad_input_is_refused(data, kwargs, match):
    cafes = simulate_cafes(seed=1).data
    if data is None:
        data = cafes
    elif isinstance(data, str) and data == "one cafe":
        data = cafes[cafes["cafe"] == cafes["cafe"].iloc[0]]
    with pytest.raises(InputError, match=match):
        choose_parametrisation(data, **kwargs)


def test_fit_pymc_refuses_an_unknown_parametrisation():
    for word in ("auto", "maybe"):
        with pytest.raises(InputError,
                           match="centered=multilevel.pooling.choose_param"):
            fit_pymc(simulate_cafes(seed=1).data, centered=word, seed=1)
    with pytest.raises(InputError, match="True or False"):
        fit_pymc(simulate_cafes(seed=1).data, centered=1, seed=1)


@pytest.mark.slow
def test_fit_pymc_auto_samples_and_records_the_choice():
    """Few visits per cafe: the choice made from the data samples the non-centred
    model (its standardised ``z`` is in the posterior) and the Fit says
    which form was used and why. A short run: only the choice is checked
    (the sampling itself is tested in test_bayes)."""
    data = simulate_cafes(seed=2, n_visits=4).data
    choice = choose_parametrisation(data)
    fit = fit_pymc(data, centered=choice, seed=3, draws=100, tune=100,
                   chains=2)
    record = fit.diagnostics["parametrisation"]
    assert record["form"] == "non-centred" == choice.form
    assert record["chosen"] == "auto"
    assert record["reason"] == choice.reason
    assert record["weight_median"] == choice.summary["weight_median"]
    assert fit.diagnostics["centered"] is False
    assert "non-centred" in fit.method
    assert "z" in fit.raw.posterior
