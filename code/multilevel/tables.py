"""The frequentist tables every likelihood engine builds, written once.

lme4 (through rpy2), REML from the equations and statsmodels' MixedLM
estimate the same quantities in different ways; once they have estimates,
the tables of a :class:`~multilevel.fit.Fit` are built here:

* :func:`wald_fixed_table`: fixed effects with ``estimate -/+ z * std_error``;
* :func:`varcorr_values` / :func:`varcorr_table`: SDs and correlations of
  the random effects from their covariance ``S``, and the residual SD, in
  lme4's order (:func:`multilevel.fit.varcorr_names`);
* :func:`henderson_covariance` / :func:`joint_coef_covariance`: the
  prediction-error covariance of the fixed effects and the group offsets
  from the mixed-model equations (Henderson), and
  :func:`group_coef_table`, the group coefficients ``beta + b_j`` with the
  standard errors it implies;
* :func:`wald_group_table`: a ``ranef``/``coef`` table from estimates and
  standard errors.

Pure NumPy and pandas: no engine is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from multilevel.fit import varcorr_names

__all__ = [
    "COEF_STD_ERROR_NOTE",
    "group_coef_table",
    "henderson_covariance",
    "joint_coef_covariance",
    "varcorr_table",
    "varcorr_values",
    "wald_fixed_table",
    "wald_group_table",
]

COEF_STD_ERROR_NOTE = (
    "coef std_error from the joint conditional covariance of fixed effects "
    "and offsets (sigma^2 C^-1 of the mixed-model equations at the estimated "
    "theta and sigma): includes fixed-effect uncertainty, not that of "
    "theta or sigma"
)


def wald_fixed_table(
    terms: Sequence[str], estimate, std_error, z: float
) -> pd.DataFrame:
    """The ``fixed`` table with Wald intervals ``estimate -/+ z * std_error``."""
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    return pd.DataFrame(
        {
            "estimate": estimate,
            "std_error": std_error,
            "lower": estimate - z * std_error,
            "upper": estimate + z * std_error,
        },
        index=pd.Index(list(terms), name="term"),
    )


def varcorr_values(S: np.ndarray, sigma: float) -> np.ndarray:
    """SDs and correlations of ``S`` in lme4's order, then ``sigma``.

    The lower triangle column by column: for two terms ``sd_1, cor_21,
    sd_2, sigma``. A correlation involving an SD of 0 is NaN (undefined).
    """
    S = np.asarray(S, dtype=float)
    sd = np.sqrt(np.diag(S))
    out = []
    for j in range(S.shape[0]):
        out.append(sd[j])
        for k in range(j + 1, S.shape[0]):
            denom = sd[j] * sd[k]
            out.append(S[k, j] / denom if denom > 0 else np.nan)
    out.append(sigma)
    return np.array(out)


def varcorr_table(
    values, terms: Sequence[str], group: str, intervals: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ``varcorr`` table from :func:`varcorr_values`-ordered ``values``.

    ``intervals`` (columns ``lower``, ``upper``, indexed by lme4's names)
    fills the limits; without it they are NaN.
    """
    names = varcorr_names(list(terms), group)
    table = pd.DataFrame(
        {"estimate": np.asarray(values, dtype=float), "lower": np.nan,
         "upper": np.nan},
        index=pd.Index(names, name="name"),
    )
    if intervals is not None:
        limits = intervals.reindex(names)
        table["lower"] = limits["lower"].to_numpy(dtype=float)
        table["upper"] = limits["upper"].to_numpy(dtype=float)
    return table


def henderson_covariance(
    ZtZ: np.ndarray, ZtX: np.ndarray, XtX: np.ndarray, T: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prediction-error covariances of the mixed-model equations, by group.

    With one grouping factor, ``Z Lambda`` is block diagonal: group ``j`` has
    cross products ``Z_j'Z_j`` (``ZtZ[j]``, q x q) and ``Z_j'X_j``
    (``ZtX[j]``, q x p), and template ``T`` (lme4's ``Tlist``), so
    ``b_j = T u_j``. The mixed-model equations

        C = [[X'X, X'Z Lambda], [Lambda'Z'X, Lambda'Z'Z Lambda + I]]

    give ``Var([beta_hat - beta; u_hat - u]) = sigma^2 C^-1`` (Henderson).
    Eliminating the block-diagonal part per group (Schur complement
    ``S = X'X - sum_j B_j' A_j^-1 B_j`` with ``A_j = T'Z_j'Z_j T + I`` and
    ``B_j = T'Z_j'X_j``) costs O(groups).

    Returns ``(V_beta, V_b, C_beta_b)``: the fixed-effect covariance (p x p,
    equal to lme4's ``vcov``), the offsets' covariance per group
    (groups x q x q) and the fixed-offset cross covariance (groups x p x q),
    all including the uncertainty of the fixed effects.
    """
    k = T.shape[0]
    A = np.einsum("ai,gab,bj->gij", T, ZtZ, T) + np.eye(k)
    B = np.einsum("ai,gab->gib", T, ZtX)
    A_inv = np.linalg.inv(A)
    A_inv_B = A_inv @ B
    S = XtX - np.einsum("gip,giq->pq", B, A_inv_B)
    S_inv = np.linalg.inv(S)
    V_beta = sigma**2 * S_inv
    # Cov(beta_hat, u_hat_j) = -sigma^2 S^-1 B_j' A_j^-1
    C_beta_u = -sigma**2 * np.einsum("pq,giq->gpi", S_inv, A_inv_B)
    V_u = sigma**2 * (A_inv + np.einsum("gip,pq,gjq->gij", A_inv_B, S_inv, A_inv_B))
    V_b = np.einsum("ia,gab,jb->gij", T, V_u, T)
    C_beta_b = np.einsum("gpa,ja->gpj", C_beta_u, T)
    return V_beta, V_b, C_beta_b


def joint_coef_covariance(
    X: np.ndarray,
    zmat: np.ndarray,
    codes: np.ndarray,
    T: np.ndarray,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`henderson_covariance` from the data: ``X`` (n x p), the
    random-effects columns ``zmat`` (n x q) and each row's group code
    ``codes`` (0 ... groups - 1)."""
    n_groups = int(codes.max()) + 1
    k = zmat.shape[1]
    ZtZ = np.zeros((n_groups, k, k))
    ZtX = np.zeros((n_groups, k, X.shape[1]))
    np.add.at(ZtZ, codes, zmat[:, :, None] * zmat[:, None, :])
    np.add.at(ZtX, codes, zmat[:, :, None] * X[:, None, :])
    return henderson_covariance(ZtZ, ZtX, X.T @ X, T, sigma)


def group_coef_table(
    groups: Sequence[str],
    fixed_terms: Sequence[str],
    random_terms: Sequence[str],
    beta: np.ndarray,
    b: np.ndarray,
    covariances: tuple[np.ndarray, np.ndarray, np.ndarray],
    z: float,
) -> pd.DataFrame:
    """The ``coef`` table: ``beta + b_j`` per group with Wald intervals.

    ``b`` holds the offsets (groups x random terms); ``covariances`` is
    ``(V_beta, V_b, C_beta_b)`` of :func:`henderson_covariance`. A term that
    is only fixed (or only random) takes its one part. The variance of a
    coefficient adds Var(beta), Var(b_j) and twice their covariance.
    """
    V_beta, V_b, C_beta_b = covariances
    fixed_terms, random_terms = list(fixed_terms), list(random_terms)
    terms = fixed_terms + [t for t in random_terms if t not in fixed_terms]
    # coef_j = M beta + N b_j
    M = np.array([[float(t == f) for f in fixed_terms] for t in terms])
    N = np.array([[float(t == r) for r in random_terms] for t in terms])
    estimate = np.asarray(b, dtype=float) @ N.T + M @ np.asarray(beta, dtype=float)
    cross = np.einsum("ip,gpk,jk->gij", M, C_beta_b, N)
    cov = (
        M @ V_beta @ M.T
        + np.einsum("ia,gab,jb->gij", N, V_b, N)
        + cross
        + np.transpose(cross, (0, 2, 1))
    )
    std_error = np.sqrt(np.clip(np.einsum("gii->gi", cov), 0, None))
    return wald_group_table(groups, terms, estimate, std_error, z)


def wald_group_table(groups, terms, estimate, std_error, z: float) -> pd.DataFrame:
    """A ``ranef``/``coef`` table from (groups x terms) arrays of estimates and
    standard errors, with intervals estimate -/+ z * std_error."""
    estimate = np.asarray(estimate, dtype=float)
    std_error = np.asarray(std_error, dtype=float)
    return pd.DataFrame(
        {
            "group": np.repeat(np.array(list(groups), dtype=object), len(terms)),
            "term": np.tile(np.array(list(terms), dtype=object), len(groups)),
            "estimate": estimate.ravel(),
            "std_error": std_error.ravel(),
            "lower": (estimate - z * std_error).ravel(),
            "upper": (estimate + z * std_error).ravel(),
        }
    )
