"""statsmodels' MixedLM as a :class:`~multilevel.fit.Fit`: a second engine.

The model is given to ``statsmodels.regression.mixed_linear_model.MixedLM``
as arrays (``endog``, ``exog``, ``exog_re``, ``groups``) built from the
same parse and design as every other engine (``multilevel.formula``,
``multilevel.design``), which is what ``smf.mixedlm(..., re_formula=...,
groups=...)`` builds from a formula, without a second formula parser.

Where statsmodels' parameterisation differs from lme4's:

* statsmodels writes ``cov(y) = scale * I + Z cov_re Z'`` and optimises the
  *profile* parameterisation ``cov_re1 = cov_re / scale``; the result's
  ``cov_re`` is already multiplied back by ``scale`` (it is
  ``cov_re_unscaled * scale``), so SDs are ``sqrt(diag(cov_re))``, the
  correlation ``cov_re[1, 0] / (sd_0 sd_1)``, and the residual SD
  ``sqrt(scale)``. lme4 instead reports ``sigma`` and the relative factor
  ``Lambda`` with ``cov_re = sigma^2 T T'``; the same ``T`` is recovered here
  as a square root of ``cov_re / scale``.
* fixed-effect ``std_error`` is statsmodels' ``bse_fe``: from the inverse of
  the observed Hessian of all parameters jointly, so on unbalanced data it
  carries cross terms with the covariance parameters. lme4's is
  ``sigma^2 (X'V^-1 X)^-1`` at the estimated theta. The two coincide for
  balanced designs (sleepstudy, the default cafes: within 1e-4 relative)
  and differ on unbalanced ones (2.2% measured on unbalanced cafes);
  ``fit.diagnostics["fixed_std_error_given_theta"]`` holds lme4's version
  computed from statsmodels' estimates.
* intervals are Wald (``estimate +- z * std_error``) for the fixed effects,
  offsets and coefficients. statsmodels gives no interval for SDs or the
  correlation (its ``bse_re`` are standard errors of the variance
  parameters, which its docs warn are not usable for intervals), so the
  ``varcorr`` intervals are NaN, and ``fit.diagnostics["varcorr_interval"]``
  says so.
* ``criterion`` is ``-2 * llf``. statsmodels' REML log-likelihood includes
  the ``log det(X'X)`` and ``2 pi`` constants lme4's REML criterion has, so
  the two agree (measured: within 4e-7 on the cafe data and sleepstudy).
* offsets: ``random_effects`` (conditional means) and ``random_effects_cov``
  (conditional covariance given the data, fixed effects treated as known:
  the quantity lme4's ``condVar`` gives). Coefficient standard errors use
  the joint covariance of fixed effects and offsets, as in
  :mod:`multilevel.lmer`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from multilevel import engines, validate
from multilevel.design import design_matrices
from multilevel.fit import Fit
from multilevel.tables import (
    COEF_STD_ERROR_NOTE,
    group_coef_table,
    joint_coef_covariance,
    varcorr_table,
    varcorr_values,
    wald_fixed_table,
    wald_group_table,
)

__all__ = ["fit_statsmodels"]

ENGINE = engines.engine("statsmodels")

#: lme4's ``isSingular`` tolerance on the diagonal of the relative factor.
SINGULAR_TOL = 1e-4

VARCORR_NOTE = (
    "statsmodels gives no intervals for SDs or correlations; varcorr "
    "lower/upper are NaN"
)


def _relative_factor(cov_re: np.ndarray, scale: float) -> np.ndarray:
    """A lower-triangular T with T T' = cov_re / scale (lme4's template)."""
    rel = cov_re / scale
    try:
        return np.linalg.cholesky(rel)
    except np.linalg.LinAlgError:  # singular: any square root will do
        w, v = np.linalg.eigh(rel)
        root = v * np.sqrt(np.clip(w, 0, None))
        q, r = np.linalg.qr(root.T)  # root = r' q', so root root' = r' r
        return r.T


def fit_statsmodels(
    data: pd.DataFrame,
    formula: str,
    reml: bool = True,
    level: float = 0.95,
) -> Fit:
    """Fit ``formula`` with statsmodels' MixedLM; return a Fit (Wald)."""
    from statsmodels.regression.mixed_linear_model import MixedLM

    validate.fit_arguments(data, reml=reml, level=level)
    design = design_matrices(data, formula, sparse=True)
    parsed = design.formula
    rand_terms = list(parsed.random_terms)
    fixed_terms = list(design.fixed_names)
    zmat = np.column_stack(
        [
            np.ones(len(data)) if t == "(Intercept)" else data[t].to_numpy(float)
            for t in rand_terms
        ]
    )
    codes = np.asarray(design.group_index)
    messages: list[str] = []
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLM(
            pd.Series(design.y, name=parsed.response),
            pd.DataFrame(design.X, columns=fixed_terms),
            groups=codes,
            exog_re=pd.DataFrame(zmat, columns=rand_terms),
        )
        result = model.fit(reml=reml)
        cov_re = np.asarray(result.cov_re, dtype=float)
        re_means = result.random_effects
        re_covs = result.random_effects_cov
    seconds = time.perf_counter() - start
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in messages:
            messages.append(text)

    z = stats.norm.ppf(0.5 + level / 2)
    beta = np.asarray(result.fe_params, dtype=float)
    se = np.asarray(result.bse_fe, dtype=float)
    fixed = wald_fixed_table(fixed_terms, beta, se, z)

    scale = float(result.scale)
    varcorr = varcorr_table(
        varcorr_values(cov_re, np.sqrt(scale)), rand_terms, parsed.group
    )

    groups = list(design.groups)
    # statsmodels sorts its group labels; ours are the codes 0..J-1
    modes = np.stack([np.asarray(re_means[j], dtype=float) for j in range(len(groups))])
    post = np.stack([np.asarray(re_covs[j], dtype=float) for j in range(len(groups))])
    post_sd = np.sqrt(np.einsum("gii->gi", post))
    ranef = wald_group_table(groups, rand_terms, modes, post_sd, z)

    T = _relative_factor(cov_re, scale)
    covariances = joint_coef_covariance(
        np.asarray(design.X, dtype=float), zmat, codes, T, np.sqrt(scale)
    )
    coef = group_coef_table(
        groups, fixed_terms, rand_terms, beta, modes, covariances, z
    )

    singular = bool(np.any(np.abs(np.diag(T)) < SINGULAR_TOL))
    if singular:
        messages.append(
            "singular fit: a diagonal element of the relative covariance "
            f"factor is below {SINGULAR_TOL} (lme4's isSingular rule)"
        )
    return Fit(
        engine=ENGINE.label,
        method="REML" if reml else "ML",
        formula=parsed.text,
        fixed=fixed,
        varcorr=varcorr,
        ranef=ranef,
        coef=coef,
        criterion=float(-2 * result.llf),
        interval="Wald",
        level=float(level),
        nobs=int(len(design.y)),
        ngroups=len(groups),
        messages=messages,
        diagnostics={
            "singular": singular,
            "converged": bool(result.converged),
            "seconds": seconds,
            "coef_std_error": COEF_STD_ERROR_NOTE,
            "ranef_std_error": "random_effects_cov (fixed effects treated as known)",
            "varcorr_interval": VARCORR_NOTE,
            "fixed_std_error_given_theta": dict(
                zip(fixed_terms, np.sqrt(np.diag(covariances[0])).tolist(), strict=True)
            ),
        },
        raw=result,
    )

