"""From data and a formula to a :class:`~multilevel.fit.Fit`: the model's
sufficient statistics, the fit and its tables."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from multilevel import engines, validate
from multilevel.design import design_matrices
from multilevel.errors import InputError
from multilevel.fit import Fit
from multilevel.reml.optimizer import optimize_theta
from multilevel.reml.pls import (
    PLSSolution,
    SufficientStats,
    objective,
    pls_solve,
    profiled_deviance,
    reml_criterion,
    sufficient_stats,
)
from multilevel.reml.profiles import ProfileFailed, profile_varcorr
from multilevel.reml.theta import varcorr_of
from multilevel.tables import (
    group_coef_table,
    henderson_covariance,
    varcorr_table,
    wald_fixed_table,
    wald_group_table,
)

ENGINE = engines.engine("reml")

#: lme4's ``isSingular`` tolerance on the diagonal of the template T.
SINGULAR_TOL = 1e-4


@dataclass
class _Model:
    stats: SufficientStats
    fixed_names: list[str]
    random_names: list[str]
    group: str
    levels: list[str]
    response: str
    formula: str


def _build_model(data: pd.DataFrame, formula: str) -> _Model:
    # design_matrices runs multilevel.formula.check_data first
    dm = design_matrices(data, formula, sparse=True, order="interleaved")
    q = dm.q
    g = np.asarray(dm.group_index, dtype=np.intp)
    n = len(g)
    Z = dm.Z.tocsr()
    rows = np.repeat(np.arange(n), q)
    cols = (g[:, None] * q + np.arange(q)[None, :]).ravel()
    Zraw = np.asarray(Z[rows, cols]).reshape(n, q)
    if n - dm.X.shape[1] <= 0:
        raise InputError(
            f"{n} rows cannot estimate {dm.X.shape[1]} fixed effects and a "
            "residual variance: add data or drop terms."
        )
    return _Model(
        stats=sufficient_stats(np.asarray(dm.X, float), Zraw, dm.y, g, dm.n_groups),
        fixed_names=list(dm.fixed_names),
        random_names=list(dm.random_terms),
        group=dm.formula.group,
        levels=[str(v) for v in dm.groups],
        response=dm.formula.response,
        formula=formula,
    )


def make_criterion(data: pd.DataFrame, formula: str, reml: bool = True):
    """The profiled criterion as a function of theta, for plotting.

    Returns ``(f, stats)`` where ``f(theta)`` is the REML criterion (or the
    ML deviance with ``reml=False``) and ``stats`` the sufficient statistics.
    """
    model = _build_model(data, formula)
    s = model.stats
    fun = reml_criterion if reml else profiled_deviance

    def f(theta) -> float:
        return fun(np.asarray(theta, dtype=float), s)

    return f, s


def _profile_intervals(
    s: SufficientStats, theta, sigma: float, reml: bool, level: float,
    varcorr: pd.DataFrame, messages: list[str],
) -> str:
    """Fill ``varcorr``'s limits with ML profile intervals; the interval kind.

    lme4's ``confint(method = "profile")`` profiles the ML deviance even for
    a REML fit (``profile.merMod`` refits with ML first); this follows it so
    the intervals are comparable. A profile that cannot be computed leaves
    NaN and says why in ``messages``.
    """
    try:
        if reml:
            theta_ml = optimize_theta(s, reml=False)["theta"]
            sigma_ml = math.sqrt(pls_solve(theta_ml, s, True).r2 / s.n)
        else:
            theta_ml, sigma_ml = theta, sigma
        prof = profile_varcorr(s, theta_ml, sigma_ml, reml=False, level=level)
    except ProfileFailed as err:
        messages.append(
            f"varcorr intervals not computed ({err}); they are NaN. "
            "Fixed-effect intervals are Wald (normal quantile)."
        )
        return "Wald"
    varcorr["lower"] = prof["lower"].to_numpy()
    varcorr["upper"] = prof["upper"].to_numpy()
    messages.append(
        "varcorr intervals: likelihood-ratio profile of the ML "
        "deviance (as lme4's confint profiles, also for REML fits); "
        "fixed-effect intervals: Wald with the normal quantile."
    )
    return "profile"


def _group_tables(
    model: _Model, sol: PLSSolution, sigma: float, z: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``ranef`` and ``coef``: the conditional modes ``b_j`` with lme4's
    conditional SDs (``sigma^2 T (L_j L_j')^-1 T'``, beta taken as known),
    and ``beta + b_j`` with the joint covariance of the mixed-model
    equations (Henderson), which adds the uncertainty of beta."""
    s = model.stats
    Linv = np.linalg.inv(sol.L)
    cond_cov = sigma**2 * np.einsum(
        "ik,jlk,jlm,nm->jin", sol.T, Linv, Linv, sol.T
    )
    b_sd = np.sqrt(np.clip(np.diagonal(cond_cov, axis1=1, axis2=2), 0, None))
    ranef = wald_group_table(model.levels, model.random_names, sol.b, b_sd, z)
    covariances = henderson_covariance(s.ZtZ, s.ZtX, s.XtX, sol.T, sigma)
    coef = group_coef_table(
        model.levels, model.fixed_names, model.random_names, sol.beta, sol.b,
        covariances, z,
    )
    return ranef, coef


def fit_reml(
    data: pd.DataFrame,
    formula: str,
    reml: bool = True,
    level: float = 0.95,
    *,
    intervals: str = "profile",
) -> Fit:
    """Fit a linear mixed model by REML (or ML) from the equations.

    Parameters
    ----------
    data : DataFrame with the columns the formula names.
    formula : lme4 syntax with one grouping factor, e.g.
        ``"wait ~ 1 + afternoon + (1 + afternoon | cafe)"``.
    reml : REML (default) or maximum likelihood (``False``).
    level : coverage of the intervals.
    intervals : ``"profile"`` (default) for likelihood-ratio profile
        intervals of the variance components, ``"none"`` to skip them
        (NaN), e.g. when timing the fit alone.

    Returns a :class:`~multilevel.fit.Fit` with engine ``"numpy"``. Fixed
    effects carry Wald intervals with the normal quantile (as lme4's
    ``confint(method = "Wald")``); the variance components carry
    likelihood-ratio profile intervals of the ML deviance, as lme4's
    ``confint`` computes them (see :func:`profile_varcorr`).
    """
    validate.fit_arguments(data, reml=reml, level=level)
    validate.choice("intervals", intervals, ("profile", "none"))
    started = time.perf_counter()
    model = _build_model(data, formula)
    s = model.stats
    opt = optimize_theta(s, reml=reml)
    theta = opt["theta"]
    sol = pls_solve(theta, s, direct_r2=True)
    criterion = objective(sol.log_det_L2, sol.log_det_RX2, sol.r2, s.n, s.p, reml)
    sigma = math.sqrt(sol.r2 / (s.n - s.p if reml else s.n))
    z = stats.norm.ppf(0.5 + level / 2)
    # fixed effects: Var(beta) = sigma^2 (R_X' R_X)^-1
    R_X_inv = np.linalg.inv(sol.R_X)
    cov_beta = sigma**2 * (R_X_inv @ R_X_inv.T)
    fixed = wald_fixed_table(model.fixed_names, sol.beta, np.sqrt(np.diag(cov_beta)), z)
    varcorr = varcorr_table(varcorr_of(sol.T, sigma), model.random_names, model.group)
    singular = bool(np.any(np.diag(sol.T) < SINGULAR_TOL))
    messages: list[str] = []
    if singular:
        messages.append(
            "boundary (singular) fit: a diagonal entry of the relative "
            "covariance factor is at (or near) 0."
        )
    if intervals == "profile":
        interval = _profile_intervals(s, theta, sigma, reml, level, varcorr, messages)
    else:
        interval = "Wald"
        messages.append(
            "varcorr intervals not requested (intervals='none'); they are "
            "NaN. Fixed-effect intervals are Wald (normal quantile)."
        )
    ranef, coef = _group_tables(model, sol, sigma, z)
    return Fit(
        engine=ENGINE.label,
        method="REML" if reml else "ML",
        formula=formula,
        fixed=fixed,
        varcorr=varcorr,
        ranef=ranef,
        coef=coef,
        criterion=float(criterion),
        interval=interval,
        level=float(level),
        nobs=s.n,
        ngroups=s.J,
        messages=messages,
        diagnostics={
            "theta": theta,
            "optimizer": opt["steps"],
            "nfev": opt["nfev"],
            "seconds": time.perf_counter() - started,
            "singular": singular,
        },
        raw=sol,
    )
