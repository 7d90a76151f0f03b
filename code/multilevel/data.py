"""The cafe scenario of *Statistical Rethinking* (ch. 14), simulated.

A robot visits cafes in the morning and in the afternoon and records how long
it waits. Each cafe ``j`` has its own morning wait ``alpha_cafe[j]`` and its
own afternoon difference ``beta_cafe[j]``, drawn together from a bivariate
normal population::

    (alpha_cafe[j], beta_cafe[j]) ~ MVNormal((alpha, beta), S)
    S = [[sigma_a**2,             rho * sigma_a * sigma_b],
         [rho * sigma_a * sigma_b, sigma_b**2           ]]
    wait[i] ~ Normal(alpha_cafe[cafe[i]] + beta_cafe[cafe[i]] * afternoon[i],
                     sigma)

In equation set 1 (``y = X beta + Z u + epsilon``) the fixed effects are
``(alpha, beta)`` and the random effects ``u`` are the offsets
``a_cafe = alpha_cafe - alpha`` and ``b_cafe = beta_cafe - beta`` (a_j and
b_j in the book).

Every parameter is an explicit argument and the seed is required, so the same
call always gives the same data.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from multilevel import validate
from multilevel.errors import InputError
from multilevel.fit import varcorr_names
from multilevel.formula import check_data

#: The lme4 formula of the cafe model (correlated intercept and slope).
CAFE_FORMULA = "wait ~ 1 + afternoon + (1 + afternoon | cafe)"

#: lme4's names of the two fixed effects and the grouping factor.
CAFE_TERMS = ("(Intercept)", "afternoon")
CAFE_GROUP = "cafe"


@dataclass(frozen=True)
class Truth:
    """The parameters a cafe data set was simulated from.

    ``fixed`` and ``varcorr`` carry lme4's names, so they line up with the
    tables of a :class:`multilevel.fit.Fit` (``fit.fixed["estimate"]`` and
    ``truth.fixed`` share an index).
    """

    alpha: float
    beta: float
    sigma_a: float
    sigma_b: float
    rho: float
    sigma: float
    #: One row per cafe: ``cafe``, ``a_cafe``, ``b_cafe`` (offsets from alpha
    #: and beta, the random effects u), ``alpha_cafe``, ``beta_cafe`` (alpha +
    #: a_cafe, beta + b_cafe: the cafe's own morning wait and afternoon
    #: difference).
    cafes: pd.DataFrame

    @property
    def fixed(self) -> pd.Series:
        """The fixed effects, indexed ``(Intercept)``, ``afternoon``."""
        return pd.Series(
            [self.alpha, self.beta], index=pd.Index(list(CAFE_TERMS), name="term"),
            name="truth",
        )

    @property
    def varcorr(self) -> pd.Series:
        """SDs, correlation and residual SD with lme4's confint names."""
        names = varcorr_names(list(CAFE_TERMS), CAFE_GROUP)
        values = [self.sigma_a, self.rho, self.sigma_b, self.sigma]
        return pd.Series(values, index=pd.Index(names, name="name"), name="truth")

    @property
    def S(self) -> np.ndarray:
        """The 2 x 2 covariance matrix of (a_cafe, b_cafe)."""
        return covariance_matrix(self.sigma_a, self.sigma_b, self.rho)


@dataclass(frozen=True)
class CafeSimulation:
    """Simulated visits (``data``) and the parameters behind them (``truth``)."""

    data: pd.DataFrame
    truth: Truth


def covariance_matrix(sigma_a: float, sigma_b: float, rho: float) -> np.ndarray:
    """S = diag(sigmas) R diag(sigmas) for two terms."""
    sigmas = np.diag([sigma_a, sigma_b])
    R = np.array([[1.0, rho], [rho, 1.0]])
    return sigmas @ R @ sigmas


def _check_visits(visits: object, n_cafes: int) -> np.ndarray:
    if isinstance(visits, (str, bytes)) or not isinstance(
        visits, (Sequence, np.ndarray, pd.Series)
    ):
        raise InputError(
            f"visits must be a sequence of visit counts, one per cafe, got "
            f"{type(visits).__name__}; pass e.g. visits=[10, 4, 7, ...]."
        )
    values = list(visits)
    if len(values) != n_cafes:
        raise InputError(
            f"visits has {len(values)} counts but n_cafes is {n_cafes}; pass one "
            f"count per cafe, or set n_cafes=len(visits)."
        )
    for j, v in enumerate(values):
        validate.whole_number(
            f"visits[{j}]", v, 1,
            fix="every cafe needs at least one visit. Drop the cafe (and lower "
            "n_cafes) instead of giving it 0 visits.",
        )
    return np.asarray(values, dtype=np.int64)


def simulate_cafes(
    n_cafes: int = 20,
    n_visits: int = 10,
    alpha: float = 3.5,
    beta: float = -1.0,
    sigma_a: float = 1.0,
    sigma_b: float = 0.5,
    rho: float = -0.7,
    sigma: float = 0.5,
    *,
    seed: int | np.random.Generator,
    visits: Sequence[int] | None = None,
    no_afternoon: int = 0,
) -> CafeSimulation:
    """Simulate the robot's visits to cafes (McElreath, ch. 14).

    Parameters
    ----------
    n_cafes : number of cafes J (>= 2); they are labelled 0, ..., J - 1.
    n_visits : visits per cafe in the balanced design. Visits alternate
        morning, afternoon, morning, ... as in the book, so an even count
        gives as many afternoons as mornings. Ignored when ``visits`` is given.
    alpha, beta : average morning wait and average afternoon difference (the fixed
        effects).
    sigma_a, sigma_b, rho : SDs of the cafes' intercepts and slopes and their
        correlation (the covariance S).
    sigma : SD of the wait around a cafe's expected wait (within cafes).
    seed : an int or a ``numpy.random.Generator``; required.
    visits : per-cafe visit counts for an unbalanced design (length
        ``n_cafes``); visits still alternate morning, afternoon, ...
    no_afternoon : how many cafes get only morning visits. These are the
        last ``no_afternoon`` cafes (labels J - no_afternoon, ..., J - 1);
        since cafes are exchangeable draws, which ones does not matter.

    Returns
    -------
    CafeSimulation with ``data`` (columns ``cafe`` int64, ``afternoon``
    int64 0/1, ``wait`` float64; rows grouped by cafe in label order) and
    ``truth`` (:class:`Truth`).

    The cafes' effects are drawn first (J standard normal pairs mapped
    through the Cholesky factor of S), then the n waits; so for a seed the
    cafes' effects do not depend on the number or timing of visits.
    """
    if seed is None:
        raise InputError(
            "seed is required so the simulation is reproducible; pass seed=1234 "
            "(an int) or a numpy.random.Generator."
        )
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        rng = np.random.default_rng(validate.seed(seed))
    else:
        raise InputError(
            f"seed must be an int or a numpy.random.Generator, got "
            f"{type(seed).__name__}; pass e.g. seed=1234."
        )
    n_cafes = validate.whole_number("n_cafes", n_cafes, 2)
    alpha = validate.real_number("alpha", alpha, example=1.0)
    beta = validate.real_number("beta", beta, example=1.0)
    sd = dict(positive=True, what="a standard deviation", example=0.5)
    sigma_a = validate.real_number("sigma_a", sigma_a, **sd)
    sigma_b = validate.real_number("sigma_b", sigma_b, **sd)
    sigma = validate.real_number("sigma", sigma, **sd)
    rho = validate.real_number("rho", rho, example=-0.7)
    if not -1 < rho < 1:
        raise InputError(
            f"rho is a correlation and must lie strictly between -1 and 1, got "
            f"{rho!r}; pass e.g. rho=-0.7 (a value of exactly +-1 makes S "
            f"singular)."
        )
    if visits is None:
        n_visits = validate.whole_number("n_visits", n_visits, 1)
        counts = np.full(n_cafes, n_visits, dtype=np.int64)
    else:
        counts = _check_visits(visits, n_cafes)
    no_afternoon = validate.whole_number("no_afternoon", no_afternoon, 0)
    if no_afternoon > n_cafes:
        raise InputError(
            f"no_afternoon is {no_afternoon} but there are only {n_cafes} cafes; "
            f"pass a number between 0 and n_cafes."
        )

    S = covariance_matrix(sigma_a, sigma_b, rho)
    L = np.linalg.cholesky(S)
    offsets = rng.standard_normal((n_cafes, 2)) @ L.T
    a_cafe, b_cafe = offsets[:, 0], offsets[:, 1]
    alpha_cafe, beta_cafe = alpha + a_cafe, beta + b_cafe

    cafe = np.repeat(np.arange(n_cafes, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    visit_number = np.arange(cafe.size) - np.repeat(starts, counts)
    afternoon = (visit_number % 2).astype(np.int64)
    morning_only = cafe >= n_cafes - no_afternoon
    afternoon[morning_only] = 0

    mu = alpha_cafe[cafe] + beta_cafe[cafe] * afternoon
    wait = rng.normal(loc=mu, scale=sigma)

    data = pd.DataFrame({"cafe": cafe, "afternoon": afternoon, "wait": wait})
    cafes = pd.DataFrame(
        {
            "cafe": np.arange(n_cafes, dtype=np.int64),
            "a_cafe": a_cafe,
            "b_cafe": b_cafe,
            "alpha_cafe": alpha_cafe,
            "beta_cafe": beta_cafe,
        }
    )
    truth = Truth(
        alpha=alpha, beta=beta, sigma_a=sigma_a, sigma_b=sigma_b, rho=rho, sigma=sigma,
        cafes=cafes,
    )
    return CafeSimulation(data=data, truth=truth)


def check_cafe_data(data: object) -> pd.DataFrame:
    """``data`` if the cafe model can use it; else an error that says what is
    wrong and how to fix it (not a DataFrame, a missing or misspelt column, a
    non-numeric wait ...)."""
    validate.dataframe(
        data,
        hint="with columns cafe, afternoon and wait; pass e.g. "
        "simulate_cafes(seed=1).data",
    )
    check_data(data, CAFE_FORMULA)
    return data
