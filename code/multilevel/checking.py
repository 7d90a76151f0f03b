"""Checking a fitted cafe model against its data.

Small tools, each short enough to read:

* :func:`residuals`: each visit's fitted wait and residual from a Fit's
  group coefficients, ``fitted_i = alpha_j + beta_j A_i`` for the cafe j of
  visit i and ``residual_i = W_i - fitted_i``. For a lme4 fit these are
  lme4's ``fitted(m)`` and ``resid(m)`` (the conditional modes plugged in);
  for a PyMC fit, the posterior means of alpha_j and beta_j plugged in.
* :func:`posterior_predictive`: replicated waits, one data set per posterior
  draw, ``W_rep = alpha_j + beta_j A_i + sigma * e`` with standard normal
  ``e``: the model's own answer to "what data would I expect?".
* :func:`spread_ratio`: the residuals' SD above the median fitted value
  over their SD below it, a number for the funnel a residual plot shows.
* :func:`max_cafe_sd`, :func:`afternoon_difference` (test statistics) and
  :func:`ppp_value`, the share of replicated data sets whose statistic is at
  least the observed one (the posterior predictive p-value), and
  :func:`ppp_reading`, which way a p-value near 0 or 1 points.
* :func:`sampler_row`: one row of a table of sampler runs, the settings and
  the convergence diagnostics a Fit from fit_pymc carries.

Nothing here imports PyMC: a PyMC Fit's draws are read from its ``raw``
InferenceData (``posterior`` with ``alpha_cafe``, ``beta_cafe`` and
``sigma_within``, dims chain, draw, cafe).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

from multilevel import validate
from multilevel.data import CAFE_FORMULA, CAFE_GROUP, CAFE_TERMS, check_cafe_data
from multilevel.design import group_levels
from multilevel.errors import InputError
from multilevel.fit import Fit, converged

__all__ = [
    "afternoon_difference",
    "max_cafe_sd",
    "posterior_predictive",
    "ppp_reading",
    "ppp_value",
    "residuals",
    "sampler_row",
    "spread_ratio",
]

_NEEDED = ("alpha_cafe", "beta_cafe", "sigma_within")


def _cafe_data(data: Any) -> pd.DataFrame:
    check_cafe_data(data)
    afternoon = data["afternoon"].to_numpy(dtype=float)
    if not np.isin(afternoon, (0.0, 1.0)).all():
        raise InputError(
            "the column afternoon must hold 0 (morning) or 1 (afternoon), got "
            f"values {sorted(set(afternoon) - {0.0, 1.0})[:5]}; recode it."
        )
    return data


def residuals(fit: Fit, data: pd.DataFrame) -> pd.DataFrame:
    """Fitted waits and residuals of ``data`` under ``fit``'s group coefficients.

    ``fit`` is a cafe-model Fit of any engine (its ``coef`` table holds
    ``(Intercept)`` and ``afternoon`` for every cafe of ``data``). Returns a
    frame with the index of ``data`` and columns ``cafe``, ``afternoon``,
    ``wait``, ``fitted`` and ``residual``.
    """
    if not isinstance(fit, Fit):
        raise InputError(
            f"residuals needs a Fit (from fit_lmer, fit_reml or fit_pymc), got "
            f"{type(fit).__name__}."
        )
    data = _cafe_data(data)
    wide = fit.coef.pivot(index="group", columns="term", values="estimate")
    missing_terms = [t for t in CAFE_TERMS if t not in wide.columns]
    if missing_terms:
        raise InputError(
            f"the fit's coef table has no {missing_terms} for the groups; "
            f"residuals reads the cafe model {CAFE_FORMULA!r}."
        )
    cafe = data[CAFE_GROUP].astype(str)
    unknown = sorted(set(cafe) - set(wide.index))
    if unknown:
        raise InputError(
            f"cafes {unknown[:5]} of the data are not in the fit (it has "
            f"{len(wide)} cafes); pass the data the model was fitted to."
        )
    coef = wide.loc[cafe, list(CAFE_TERMS)].to_numpy(dtype=float)
    afternoon = data["afternoon"].to_numpy(dtype=float)
    fitted = coef[:, 0] + coef[:, 1] * afternoon
    wait = data["wait"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "cafe": cafe.to_numpy(),
            "afternoon": data["afternoon"].to_numpy(),
            "wait": wait,
            "fitted": fitted,
            "residual": wait - fitted,
        },
        index=data.index,
    )


def _posterior(fit: Fit) -> Any:
    post = getattr(getattr(fit, "raw", None), "posterior", None)
    if not isinstance(fit, Fit) or post is None or any(
        v not in post for v in _NEEDED
    ):
        raise InputError(
            "posterior_predictive needs a Fit from fit_pymc, whose raw "
            f"InferenceData has the posterior draws of {', '.join(_NEEDED)}; "
            f"got {type(fit).__name__}"
            + (f" from {fit.engine}" if isinstance(fit, Fit) else "")
            + "."
        )
    return post


def posterior_predictive(
    fit: Fit, data: pd.DataFrame, *, seed: int, draws: int | None = None
) -> np.ndarray:
    """Replicated waits of ``data``'s visits, one row per posterior draw.

    For draw s (chains stacked, in order), row s is
    ``alpha_cafe[s, j_i] + beta_cafe[s, j_i] * A_i + sigma_within[s] * e_si``
    with independent standard normal ``e``: the visits of ``data`` (the same
    cafes and visit times) drawn again from the model. ``draws`` keeps the
    first that many draws (default all). Returns an array of shape
    (draws, len(data)).
    """
    post = _posterior(fit)
    data = _cafe_data(data)
    seed = validate.seed(seed, why="so the replicated data can be reproduced")
    stacked = {
        v: np.asarray(post[v].transpose("chain", "draw", ...), dtype=float)
        for v in _NEEDED
    }
    n_draws = stacked["sigma_within"].size
    if draws is not None:
        draws = validate.whole_number("draws", draws, 1)
        if draws > n_draws:
            raise InputError(
                f"draws={draws} but the fit has {n_draws} posterior draws; "
                f"ask for at most {n_draws}."
            )
        n_draws = draws
    labels = [str(g) for g in post[CAFE_GROUP].values]
    cafe = data[CAFE_GROUP].astype(str)
    unknown = sorted(set(cafe) - set(labels))
    if unknown:
        raise InputError(
            f"cafes {unknown[:5]} of the data are not in the fit (it has "
            f"{len(labels)} cafes); pass the data the model was fitted to."
        )
    position = {g: k for k, g in enumerate(labels)}
    j = np.array([position[g] for g in cafe])
    alpha = stacked["alpha_cafe"].reshape(-1, len(labels))[:n_draws]
    beta = stacked["beta_cafe"].reshape(-1, len(labels))[:n_draws]
    sigma = stacked["sigma_within"].reshape(-1)[:n_draws]
    afternoon = data["afternoon"].to_numpy(dtype=float)
    mean = alpha[:, j] + beta[:, j] * afternoon
    noise = np.random.default_rng(seed).standard_normal(mean.shape)
    return mean + sigma[:, None] * noise


def _waits(waits: Any, n: int) -> np.ndarray:
    """Waits as a 2-D array (data sets x visits); one data set may be 1-D."""
    y = np.asarray(waits, dtype=float)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[1] != n:
        raise InputError(
            f"waits must have one value per visit ({n}), as a vector or one "
            f"row per data set; got shape {np.shape(waits)}."
        )
    if not np.isfinite(y).all():
        raise InputError("waits hold NaN or infinite values; check the draws.")
    return y


def max_cafe_sd(waits: Any, data: pd.DataFrame) -> np.ndarray:
    """The largest standard deviation of one cafe's waits, per data set.

    ``waits`` has one value per visit of ``data`` (1-D: the observed waits)
    or one row per replicated data set. Each cafe's waits, mornings and
    afternoons together, get a sample SD (ddof 1); the statistic is the
    largest over the cafes with at least two visits. It asks whether one
    cafe is more erratic than a common sigma allows. Returns one value per
    data set.
    """
    data = _cafe_data(data)
    y = _waits(waits, len(data))
    labels, index = group_levels(data[CAFE_GROUP])
    sizes = np.bincount(index, minlength=len(labels))
    if (sizes >= 2).sum() == 0:
        raise InputError(
            "max_cafe_sd needs at least one cafe with two visits or more."
        )
    sds = np.full((y.shape[0], len(labels)), np.nan)
    for k in np.flatnonzero(sizes >= 2):
        sds[:, k] = y[:, index == k].std(axis=1, ddof=1)
    return np.nanmax(sds, axis=1)


def afternoon_difference(waits: Any, data: pd.DataFrame) -> np.ndarray:
    """Mean afternoon wait minus mean morning wait, over all visits, per
    data set (``waits`` as in :func:`max_cafe_sd`)."""
    data = _cafe_data(data)
    y = _waits(waits, len(data))
    afternoon = data["afternoon"].to_numpy(dtype=float) == 1
    if afternoon.all() or not afternoon.any():
        raise InputError(
            "afternoon_difference needs both morning and afternoon visits."
        )
    return y[:, afternoon].mean(axis=1) - y[:, ~afternoon].mean(axis=1)


def ppp_value(observed: Any, replicated: Any) -> float:
    """The posterior predictive p-value: the share of replicated statistics
    at least as large as the observed one.

    ``observed`` is one number, ``replicated`` one number per replicated
    data set. Values near 0 say the observed data are more extreme, in the
    statistic's upper direction, than the model produces; values near 1, in
    the lower direction; 1 - p is the share below. Under a model that is
    right (and with replicates from the distribution that generated the
    data) p is uniform on (0, 1).
    """
    obs = np.asarray(observed, dtype=float)
    if obs.size != 1:
        raise InputError(
            f"observed must be one number (the statistic of the data), got "
            f"shape {obs.shape}."
        )
    rep = np.asarray(replicated, dtype=float).ravel()
    if rep.size == 0:
        raise InputError("replicated holds no values; pass one per data set.")
    if not np.isfinite(obs).all() or not np.isfinite(rep).all():
        raise InputError(
            "observed or replicated holds NaN or infinite values; a "
            "statistic could not be computed for some data set."
        )
    return float(np.mean(rep >= obs.item()))


def spread_ratio(res: pd.DataFrame) -> float:
    """The residuals' SD where the fitted value is above its median, over
    their SD where it is not.

    ``res`` has columns ``fitted`` and ``residual`` (the frame of
    :func:`residuals`). The visits split at the median fitted value: those
    with ``fitted > median`` against the rest (ties at the median, common
    when visits of one cafe share a fitted value, fall in the lower half);
    each half gets a sample SD (ddof 1). Near 1 when the spread does not
    change with the fitted value, as the model says; well above 1 is the
    funnel of a spread that grows with the wait.
    """
    res = validate.dataframe(res, hint="pass the frame residuals() returns")
    missing = [c for c in ("fitted", "residual") if c not in res.columns]
    if missing:
        raise InputError(
            f"spread_ratio needs the columns fitted and residual, missing "
            f"{missing}; pass the frame residuals() returns."
        )
    fitted = res["fitted"].to_numpy(dtype=float)
    resid = res["residual"].to_numpy(dtype=float)
    if not (np.isfinite(fitted).all() and np.isfinite(resid).all()):
        raise InputError(
            "fitted or residual holds NaN or infinite values; drop those "
            "visits first."
        )
    high = fitted > np.median(fitted)
    if min(high.sum(), (~high).sum()) < 2:
        raise InputError(
            f"spread_ratio splits the visits at the median fitted value, "
            f"which left {int(high.sum())} above it and {int((~high).sum())} "
            "at or below: each half needs two visits or more (fitted values "
            "that are all equal cannot show a change of spread)."
        )
    return float(resid[high].std(ddof=1) / resid[~high].std(ddof=1))


#: what :func:`ppp_reading` returns
READINGS = ("above", "below", "inside")


def ppp_reading(p: Any, level: float = 0.05) -> str:
    """Which way a posterior predictive p-value points.

    ``"above"`` when ``p < level`` (few replicates reach the observed
    statistic: the data are more extreme upwards than the model produces),
    ``"below"`` when ``p > 1 - level`` (almost all replicates exceed it:
    more extreme downwards), else ``"inside"``. A p-value of a check is
    read as a measure of surprise, not a test at a level (it is not
    uniform when the model is fitted to the same data); ``level`` says
    where surprise starts, 0.05 by default.
    """
    if (isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real)
            or not 0 <= p <= 1):
        raise InputError(
            f"p must be a p-value, a number from 0 to 1, got {p!r}; pass "
            "ppp_value()'s result."
        )
    level = validate.share("level", level, what="a tail probability",
                           example=0.05)
    if not level < 0.5:
        raise InputError(
            f"level is the probability of each tail, so below 0.5, got "
            f"{level!r}; pass e.g. level=0.05."
        )
    if p < level:
        return "above"
    if p > 1 - level:
        return "below"
    return "inside"


def sampler_row(fit: Fit) -> dict[str, Any]:
    """A PyMC fit's sampler settings and convergence diagnostics, as one
    row of a table comparing runs.

    ``target_accept``, ``divergences``, ``r_hat_max`` (the largest r-hat),
    ``ess_bulk_min`` (the smallest bulk ESS, rounded to a whole number) and
    ``converged``, the book's rule (:func:`multilevel.fit.converged`) on
    them. Put rows of several fits in one frame with
    ``pd.DataFrame([sampler_row(f) for f in fits], index=names)``.
    """
    needed = ("target_accept", "divergences", "r_hat_max", "ess_bulk_min")
    diagnostics = getattr(fit, "diagnostics", None)
    if not isinstance(fit, Fit) or any(k not in diagnostics for k in needed):
        raise InputError(
            "sampler_row needs a Fit from fit_pymc, whose diagnostics hold "
            f"{', '.join(needed)}; got {type(fit).__name__}"
            + (f" from {fit.engine}" if isinstance(fit, Fit) else "")
            + "."
        )
    d = diagnostics
    ess = float(d["ess_bulk_min"])
    return {
        "target_accept": float(d["target_accept"]),
        "divergences": int(d["divergences"]),
        "r_hat_max": float(d["r_hat_max"]),
        "ess_bulk_min": round(ess) if np.isfinite(ess) else ess,
        "converged": converged(d),
    }
