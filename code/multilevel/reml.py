"""Equation set 1 from the equations: profiled REML and ML in NumPy/SciPy.

This follows Bates, Maechler, Bolker and Walker (2015), "Fitting linear
mixed-effects models using lme4", J. Stat. Softw. 67(1), sections 3.1-3.6.

The model (their eqs. 2-4) is

    Y | U = u ~ N(X beta + Z Lambda u, sigma^2 I),   U ~ N(0, sigma^2 I),

so the random effects are ``b = Lambda u`` with covariance
``Sigma = sigma^2 Lambda Lambda'``. ``Lambda`` (the relative covariance
factor) is block diagonal: one lower-triangular ``q x q`` template ``T`` per
group, whose lower-triangle entries, column by column, are ``theta`` (lme4's
order: for ``(1 + x | g)`` that is ``T[0,0], T[1,0], T[1,1]``), with diagonal
entries bounded below by 0.

For one grouping factor ``Lambda' Z' Z Lambda + I`` is block diagonal with
blocks ``T' Z_j' Z_j T + I``, so its Cholesky factor ``L`` is a stack of
``q x q`` factors ``L_j``. The penalised least squares (PLS) system of
section 3.3 is then solved with a Schur complement for the fixed effects:

    L_j L_j'   = T' Z_j' Z_j T + I
    R_ZX_j     = L_j^-1 T' Z_j' X_j                (q x p per group)
    c_u_j      = L_j^-1 T' Z_j' y_j
    R_X' R_X   = X' X - sum_j R_ZX_j' R_ZX_j       (Schur complement)
    R_X' c_b   = X' y - sum_j R_ZX_j' c_u_j
    R_X beta   = c_b
    L_j' u_j   = c_u_j - R_ZX_j beta
    r^2        = ||y - X beta - Z Lambda u||^2 + ||u||^2

Everything is a sum or a batch over groups, so one evaluation of the
criterion costs O(J q^3 + p^3) after O(n) sufficient statistics: linear in
the number of groups J, and no ``qJ x qJ`` matrix is ever formed.

The profiled deviance (ML, eq. 34) and the profiled REML criterion (eq. 41):

    d(theta)   = log|L|^2 + n [1 + log(2 pi r^2 / n)]
    d_R(theta) = log|L|^2 + log|R_X|^2 + (n-p) [1 + log(2 pi r^2 / (n-p))]

are minimised over ``theta`` with a bounded derivative-free search, then
``beta``, ``sigma^2 = r^2 / n`` (ML) or ``r^2 / (n - p)`` (REML) and the
conditional modes ``b = Lambda u`` follow.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from multilevel import engines, validate
from multilevel.design import design_matrices
from multilevel.errors import InputError
from multilevel.fit import Fit
from multilevel.tables import (
    group_coef_table,
    henderson_covariance,
    varcorr_table,
    varcorr_values,
    wald_fixed_table,
    wald_group_table,
)

__all__ = [
    "SufficientStats",
    "PLSSolution",
    "fit_reml",
    "make_criterion",
    "criterion_sigma",
    "optimize_theta",
    "pls_solve",
    "profile_varcorr",
    "profiled_deviance",
    "reml_criterion",
    "sufficient_stats",
    "theta_lower_bounds",
    "theta_sigma_from_psi",
    "theta_to_T",
    "T_to_theta",
]

ENGINE = engines.engine("reml")


# --------------------------------------------------------------------------
# theta <-> the template T of the relative covariance factor Lambda
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _tril_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of theta's entries: lower triangle, column by column."""
    rows, cols = [], []
    for j in range(q):
        for i in range(j, q):
            rows.append(i)
            cols.append(j)
    return np.array(rows, dtype=int), np.array(cols, dtype=int)


def n_theta(q: int) -> int:
    """Length of theta for a ``q x q`` template."""
    return q * (q + 1) // 2


def theta_to_T(theta: np.ndarray, q: int) -> np.ndarray:
    """The lower-triangular template ``T`` (one diagonal block of Lambda)."""
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (n_theta(q),):
        raise InputError(
            f"theta has {theta.size} entries but a {q} x {q} template needs "
            f"{n_theta(q)} (the lower triangle, column by column)."
        )
    T = np.zeros((q, q))
    rows, cols = _tril_index(q)
    T[rows, cols] = theta
    return T


def T_to_theta(T: np.ndarray) -> np.ndarray:
    """Inverse of :func:`theta_to_T`."""
    rows, cols = _tril_index(T.shape[0])
    return np.asarray(T)[rows, cols].copy()


def theta_lower_bounds(q: int) -> np.ndarray:
    """lme4's lower bounds: 0 for diagonal entries of T, -inf elsewhere."""
    rows, cols = _tril_index(q)
    return np.where(rows == cols, 0.0, -np.inf)


# --------------------------------------------------------------------------
# Sufficient statistics: the only O(n) step
# --------------------------------------------------------------------------


@dataclass
class SufficientStats:
    """Per-group cross products of one grouping factor's model.

    ``Z_j`` is the ``n_j x q`` random-effects model matrix of group ``j``
    (the non-zero columns of ``Z`` for that group), ``X_j`` and ``y_j`` its
    rows of ``X`` and ``y``.
    """

    ZtZ: np.ndarray  # (J, q, q)
    ZtX: np.ndarray  # (J, q, p)
    Zty: np.ndarray  # (J, q)
    XtX: np.ndarray  # (p, p)
    Xty: np.ndarray  # (p,)
    yty: float
    n: int
    # kept for the direct residual at the optimum
    X: np.ndarray = field(repr=False)
    Zraw: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    g: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        # the same cross products with groups on the last axis (fast path)
        self._last = (
            np.ascontiguousarray(np.moveaxis(self.ZtZ, 0, 2)),
            np.ascontiguousarray(np.moveaxis(self.ZtX, 0, 2)),
            np.ascontiguousarray(self.Zty.T),
        )
        # flat layouts for _criterion_terms: rows (c, d) of Z_j'Z_j and
        # (c, k) of Z_j'[X_j y_j], groups on the columns, and the augmented
        # cross product [X y]'[X y]
        J, q, p = self.ZtX.shape
        self._flat_ZtZ = np.ascontiguousarray(self.ZtZ.reshape(J, q * q).T)
        ZtXy = np.concatenate([self.ZtX, self.Zty[:, :, None]], axis=2)
        self._flat_ZtXy = np.ascontiguousarray(ZtXy.reshape(J, q * (p + 1)).T)
        aug = np.empty((p + 1, p + 1))
        aug[:p, :p] = self.XtX
        aug[:p, p] = aug[p, :p] = self.Xty
        aug[p, p] = self.yty
        self._aug = aug
        self._eye_aug = np.eye(p + 1)[None, :, None, :]

    @property
    def J(self) -> int:
        return self.ZtZ.shape[0]

    @property
    def q(self) -> int:
        return self.ZtZ.shape[1]

    @property
    def p(self) -> int:
        return self.XtX.shape[0]


def sufficient_stats(
    X: np.ndarray, Zraw: np.ndarray, y: np.ndarray, g: np.ndarray, J: int
) -> SufficientStats:
    """Cross products per group.

    ``X`` is ``n x p``, ``Zraw`` the ``n x q`` random-effects columns (e.g. a
    column of ones and ``afternoon``), ``g`` the 0-based group index of each
    row (``0 <= g < J``).
    """
    X = np.asarray(X, dtype=float)
    Zraw = np.asarray(Zraw, dtype=float)
    y = np.asarray(y, dtype=float)
    g = np.asarray(g, dtype=np.intp)
    n, p = X.shape
    q = Zraw.shape[1]
    if Zraw.shape[0] != n or y.shape != (n,) or g.shape != (n,):
        raise InputError("X, Zraw, y and g must have the same number of rows.")
    if n and (g.min() < 0 or g.max() >= J):
        raise InputError(f"group indices must lie in 0..{J - 1}.")

    def per_group(values: np.ndarray) -> np.ndarray:
        # values: (n, k) -> (J, k) sums by group
        out = np.zeros((J, values.shape[1]))
        np.add.at(out, g, values)
        return out

    ZtZ = per_group(np.einsum("ni,nj->nij", Zraw, Zraw).reshape(n, q * q))
    ZtX = per_group(np.einsum("ni,nj->nij", Zraw, X).reshape(n, q * p))
    Zty = per_group(Zraw * y[:, None])
    return SufficientStats(
        ZtZ=ZtZ.reshape(J, q, q),
        ZtX=ZtX.reshape(J, q, p),
        Zty=Zty,
        XtX=X.T @ X,
        Xty=X.T @ y,
        yty=float(y @ y),
        n=n,
        X=X,
        Zraw=Zraw,
        y=y,
        g=g,
    )


# --------------------------------------------------------------------------
# The penalised least squares problem (section 3.3)
# --------------------------------------------------------------------------


@dataclass
class PLSSolution:
    """Solution of the PLS problem at one theta."""

    theta: np.ndarray
    T: np.ndarray
    L: np.ndarray  # (J, q, q) lower Cholesky factors of T'Z_j'Z_jT + I
    R_ZX: np.ndarray  # (J, q, p)
    R_X: np.ndarray  # (p, p) upper triangular
    beta: np.ndarray  # (p,)
    u: np.ndarray  # (J, q) spherical random effects
    r2: float  # penalised residual sum of squares
    log_det_L2: float  # log |L|^2
    log_det_RX2: float  # log |R_X|^2

    @property
    def b(self) -> np.ndarray:
        """Conditional modes on the scale of the data, b_j = T u_j."""
        return self.u @ self.T.T


def _chol_stack(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack ``M[:, :, j]`` of q x q matrices.

    Groups are on the last axis so each step is one vector operation over
    all J groups (q is tiny: 2 for the cafe model).
    """
    q = M.shape[0]
    L = np.zeros_like(M)
    for c in range(q):
        d = M[c, c] - np.sum(L[c, :c] ** 2, axis=0)
        if np.any(d <= 0):
            raise np.linalg.LinAlgError("block is not positive definite")
        L[c, c] = np.sqrt(d)
        for r in range(c + 1, q):
            L[r, c] = (M[r, c] - np.sum(L[r, :c] * L[c, :c], axis=0)) / L[c, c]
    return L


def _lower_solve_stack(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_j X_j = B_j`` (forward), L (q, q, J), B (q, k, J)."""
    q = L.shape[0]
    X = np.empty_like(B)
    for r in range(q):
        acc = B[r] - np.einsum("cJ,ckJ->kJ", L[r, :r], X[:r]) if r else B[r]
        X[r] = acc / L[r, r]
    return X


def _upper_solve_stack(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``L_j' X_j = B_j`` (backward), L (q, q, J), B (q, k, J)."""
    q = L.shape[0]
    X = np.empty_like(B)
    for r in range(q - 1, -1, -1):
        acc = B[r]
        if r < q - 1:
            acc = acc - np.einsum("cJ,ckJ->kJ", L[r + 1 :, r], X[r + 1 :])
        X[r] = acc / L[r, r]
    return X


def pls_solve(theta: np.ndarray, s: SufficientStats, direct_r2: bool = False):
    """Solve the PLS system at ``theta`` with the block structure.

    With ``direct_r2=True`` the penalised residual sum of squares is
    recomputed from the data (O(n)) instead of from the cross products.
    """
    q = s.q
    T = theta_to_T(theta, q)
    ZtZ, ZtX, Zty = s._last  # groups on the last axis
    # T' Z_j' Z_j T + I for every group at once
    M = np.tensordot(T.T, np.tensordot(ZtZ, T, axes=([1], [0])), axes=([1], [0]))
    M = np.moveaxis(M, 2, 1) + np.eye(q)[:, :, None]
    L = _chol_stack(M)
    TtZtX = np.tensordot(T.T, ZtX, axes=([1], [0]))  # (q, p, J)
    TtZty = np.tensordot(T.T, Zty, axes=([1], [0]))  # (q, J)
    R_ZX = _lower_solve_stack(L, TtZtX)
    c_u = _lower_solve_stack(L, TtZty[:, None, :])[:, 0, :]  # (q, J)
    schur = s.XtX - np.einsum("kaJ,kbJ->ab", R_ZX, R_ZX)
    try:
        R_X = np.linalg.cholesky(schur).T
    except np.linalg.LinAlgError as err:
        raise InputError(
            "X is rank deficient given the random effects (the Schur "
            "complement X'X - R_ZX'R_ZX is not positive definite): drop a "
            "fixed-effect term that is a combination of the others."
        ) from err
    rhs = s.Xty - np.einsum("kaJ,kJ->a", R_ZX, c_u)
    c_beta = np.linalg.solve(R_X.T, rhs)
    beta = np.linalg.solve(R_X, c_beta)
    # L_j' u_j = c_u_j - R_ZX_j beta
    u = _upper_solve_stack(L, (c_u - np.einsum("kaJ,a->kJ", R_ZX, beta))[:, None])
    u = u[:, 0, :].T  # (J, q)
    if direct_r2:
        b = u @ T.T
        resid = s.y - s.X @ beta - np.einsum("nk,nk->n", s.Zraw, b[s.g])
        r2 = float(resid @ resid + np.sum(u * u))
    else:
        r2 = float(s.yty - np.sum(c_u * c_u) - c_beta @ c_beta)
    log_det_L2 = float(2.0 * sum(np.sum(np.log(L[c, c])) for c in range(q)))
    return PLSSolution(
        theta=np.asarray(theta, dtype=float).copy(),
        T=T,
        L=np.moveaxis(L, 2, 0),
        R_ZX=np.moveaxis(R_ZX, 2, 0),
        R_X=R_X,
        beta=beta,
        u=u,
        r2=r2,
        log_det_L2=log_det_L2,
        log_det_RX2=float(2.0 * np.sum(np.log(np.abs(np.diagonal(R_X))))),
    )
def _criterion_terms(theta, s: SufficientStats) -> tuple[float, float, float]:
    """``(log|L|^2, log|R_X|^2, r^2)`` at theta, without the full solution.

    The same algebra as :func:`pls_solve`, arranged for the optimiser's many
    evaluations (profiling showed the criterion's cost was NumPy call
    overhead, not arithmetic):

    * ``T' Z_j'Z_j T`` for all groups is one product with ``kron(T', T')``
      of the flattened cross products, and ``T' Z_j'[X_j y_j]`` one product
      with ``kron(T', I)``;
    * the q x q Cholesky factors and forward solves run over the q rows with
      every group at once;
    * ``R_X``, ``c_beta`` and ``r^2`` come from one Cholesky factor of the
      augmented Schur complement ``[X y]'[X y] - sum_j [R_ZX_j c_u_j]'[...]``,
      whose last diagonal entry squared is
      ``r^2 = y'y - ||c_u||^2 - ||c_beta||^2``.

    Falls back to :func:`pls_solve` (which raises the informative error)
    when that factor does not exist.
    """
    q, p = s.q, s.p
    T = theta_to_T(theta, q)
    Tt = T.T
    # kron(T', T') and kron(T', I) by broadcasting (np.kron is slower)
    kron_TT = (Tt[:, None, :, None] * Tt[None, :, None, :]).reshape(q * q, q * q)
    kron_TI = (Tt[:, None, :, None] * s._eye_aug).reshape(
        q * (p + 1), q * (p + 1)
    )
    M = (kron_TT @ s._flat_ZtZ).reshape(q, q, -1)
    B = (kron_TI @ s._flat_ZtXy).reshape(q, p + 1, -1)
    L = [[None] * q for _ in range(q)]
    Y = []
    log_det_L2 = 0.0
    for c in range(q):
        d = M[c, c] + 1.0
        for k in range(c):
            d = d - L[c][k] ** 2
        L[c][c] = np.sqrt(d)
        log_det_L2 += 2.0 * float(np.sum(np.log(L[c][c])))
        for r in range(c + 1, q):
            v = M[r, c]
            for k in range(c):
                v = v - L[r][k] * L[c][k]
            L[r][c] = v / L[c][c]
        acc = B[c]
        for k in range(c):
            acc = acc - L[c][k] * Y[k]
        Y.append(acc / L[c][c])
    stacked = np.concatenate(Y, axis=1)  # (p + 1, q J)
    try:
        C = np.linalg.cholesky(s._aug - stacked @ stacked.T)
    except np.linalg.LinAlgError:
        sol = pls_solve(theta, s)
        return sol.log_det_L2, sol.log_det_RX2, sol.r2
    diag = np.diagonal(C)
    log_det_RX2 = float(2.0 * np.sum(np.log(diag[:p])))
    return log_det_L2, log_det_RX2, float(diag[p] ** 2)


def objective(
    log_det_L2: float,
    log_det_RX2: float,
    r2: float,
    n: int,
    p: int,
    reml: bool,
    sigma: float | None = None,
) -> float:
    """-2 log likelihood (ML) or -2 log restricted likelihood (REML).

    From the pieces of the PLS solution at one theta: ``log|L|^2``,
    ``log|R_X|^2`` and the penalised residual sum of squares ``r^2``. With
    ``sigma`` given, at that sigma (beta profiled out for ML, integrated out
    for REML)::

        ML:   log|L|^2 + n log(2 pi sigma^2) + r^2 / sigma^2
        REML: the same with n - p for n, + log|R_X|^2

    With ``sigma=None``, also profiled over sigma (``sigma^2 = r^2 / n`` or
    ``r^2 / (n - p)``): the profiled deviance (Bates et al. 2015, eq. 34)
    or the REML criterion (eq. 41)::

        d(theta)   = log|L|^2 + n [1 + log(2 pi r^2 / n)]
        d_R(theta) = log|L|^2 + log|R_X|^2 + (n-p) [1 + log(2 pi r^2 / (n-p))]
    """
    nr = n - p if reml else n
    if sigma is None:
        dev = log_det_L2 + log_det_RX2 if reml else log_det_L2
        return dev + nr * (1.0 + math.log(2.0 * math.pi * r2 / nr))
    out = log_det_L2 + nr * math.log(2.0 * math.pi * sigma**2)
    out += r2 / sigma**2
    if reml:
        out += log_det_RX2
    return out


def _terms(theta, s: SufficientStats, direct_r2: bool) -> tuple[float, float, float]:
    """``(log|L|^2, log|R_X|^2, r^2)`` at theta (``direct_r2``: r^2 from the
    residuals of the full solution rather than from the cross products)."""
    if direct_r2:
        sol = pls_solve(theta, s, True)
        return sol.log_det_L2, sol.log_det_RX2, sol.r2
    return _criterion_terms(theta, s)


def profiled_deviance(theta, s: SufficientStats, direct_r2: bool = False) -> float:
    """ML deviance profiled over beta and sigma (Bates et al. 2015, eq. 34)."""
    return objective(*_terms(theta, s, direct_r2), s.n, s.p, reml=False)


def reml_criterion(theta, s: SufficientStats, direct_r2: bool = False) -> float:
    """REML criterion profiled over sigma (Bates et al. 2015, eq. 41)."""
    return objective(*_terms(theta, s, direct_r2), s.n, s.p, reml=True)


def criterion_sigma(
    theta, sigma: float, s: SufficientStats, reml: bool = True
) -> float:
    """-2 log (restricted) likelihood at ``theta`` and ``sigma``.

    beta is profiled out (ML) or integrated out (REML); sigma is not. Its
    minimum over sigma is :func:`reml_criterion` or :func:`profiled_deviance`.
    Used for likelihood-ratio profiles of the variance components.
    """
    return objective(*_criterion_terms(theta, s), s.n, s.p, reml, sigma=sigma)


# --------------------------------------------------------------------------
# From data and formula to the sufficient statistics
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Optimisation over theta
# --------------------------------------------------------------------------


def _safe(fun, s):
    def f(theta):
        try:
            val = fun(theta, s)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        return val if np.isfinite(val) else np.inf

    return f


def optimize_theta(s: SufficientStats, reml: bool = True) -> dict:
    """Minimise the profiled criterion over theta within lme4's bounds.

    L-BFGS-B with a central-difference gradient from lme4's start (the
    identity template), restarted once from its end point if it reports no
    convergence, then a short bounded Nelder-Mead search from the best point
    as a derivative-free safeguard (e.g. at a boundary); the best point of
    all wins. (The tolerances ftol = 1e-12 and gtol = 1e-8, and restarting
    only on failure, halve the evaluations of the stricter 1e-15/1e-9 with an
    unconditional restart; on cafe data of 8 to 2000 cafes, singular fits
    included, the minimum moved by at most 4e-9, far inside lme4's own
    tolerance.)
    """
    fun = _safe(reml_criterion if reml else profiled_deviance, s)
    q = s.q
    lower = theta_lower_bounds(q)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    nm_bounds = [(lo, np.inf) for lo in lower]
    theta0 = T_to_theta(np.eye(q))
    evaluations = 0
    best_x, best_f = theta0, fun(theta0)
    steps = []
    x = theta0
    for _ in range(2):
        res = optimize.minimize(
            fun,
            x,
            method="L-BFGS-B",
            jac="3-point",
            bounds=bounds,
            options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 1000},
        )
        evaluations += res.nfev
        steps.append(("L-BFGS-B", float(res.fun), int(res.nfev)))
        if res.fun < best_f:
            best_x, best_f = res.x, res.fun
        x = best_x
        if res.success:
            break
    scale = max(1.0, abs(best_f))
    res = optimize.minimize(
        fun,
        best_x,
        method="Nelder-Mead",
        bounds=nm_bounds,
        options={
            "xatol": 1e-8,
            "fatol": 1e-13 * scale,
            "maxfev": 200 * x.size,
            "initial_simplex": _simplex(best_x, lower),
        },
    )
    evaluations += res.nfev
    steps.append(("Nelder-Mead", float(res.fun), int(res.nfev)))
    if res.fun < best_f:
        best_x, best_f = res.x, res.fun
    best_x = np.where(np.isfinite(lower), np.maximum(best_x, lower), best_x)
    return {"theta": best_x, "fun": best_f, "nfev": evaluations, "steps": steps}


def _simplex(x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """A small simplex around x that stays inside the bounds."""
    k = x.size
    step = np.maximum(0.05 * np.abs(x), 0.01)
    pts = [x.copy()]
    for i in range(k):
        v = x.copy()
        if np.isfinite(lower[i]) and v[i] - lower[i] < step[i]:
            v[i] += step[i]
        else:
            v[i] -= step[i] if i % 2 else -step[i]
        pts.append(v)
    return np.array(pts)


# --------------------------------------------------------------------------
# The fit
# --------------------------------------------------------------------------


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
    except _ProfileFailed as err:
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


def _psi(T: np.ndarray, sigma: float) -> np.ndarray:
    """SDs and correlations of ``S = sigma^2 T T'`` in lme4's order, then sigma."""
    return varcorr_values(sigma**2 * (T @ T.T), sigma)


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
    if s.n - s.p <= 0:
        raise InputError(
            f"{s.n} rows cannot estimate {s.p} fixed effects and a residual "
            "variance: add data or drop terms."
        )
    opt = optimize_theta(s, reml=reml)
    theta = opt["theta"]
    sol = pls_solve(theta, s, direct_r2=True)
    criterion = objective(sol.log_det_L2, sol.log_det_RX2, sol.r2, s.n, s.p, reml)
    nr = s.n - s.p if reml else s.n
    sigma = math.sqrt(sol.r2 / nr)
    z = stats.norm.ppf(0.5 + level / 2)
    messages: list[str] = []

    # fixed effects: Var(beta) = sigma^2 (R_X' R_X)^-1
    R_X_inv = np.linalg.inv(sol.R_X)
    cov_beta = sigma**2 * (R_X_inv @ R_X_inv.T)
    fixed = wald_fixed_table(model.fixed_names, sol.beta, np.sqrt(np.diag(cov_beta)), z)
    varcorr = varcorr_table(_psi(sol.T, sigma), model.random_names, model.group)
    singular = bool(np.any(np.diag(sol.T) < 1e-4))
    if singular:
        messages.append(
            "boundary (singular) fit: a diagonal entry of the relative "
            "covariance factor is at (or near) 0."
        )
    interval = "Wald"
    if intervals == "profile":
        interval = _profile_intervals(s, theta, sigma, reml, level, varcorr, messages)
    else:
        messages.append(
            "varcorr intervals not requested (intervals='none'); they are "
            "NaN. Fixed-effect intervals are Wald (normal quantile)."
        )
    ranef, coef = _group_tables(model, sol, sigma, z)
    fit = Fit(
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
    return fit


# --------------------------------------------------------------------------
# Likelihood-ratio profiles of the variance components
# --------------------------------------------------------------------------


class _ProfileFailed(RuntimeError):
    pass


def _chol_psd(S: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix.

    A zero pivot (a standard deviation of 0) gives a zero column, which is
    a valid lme4 template on the boundary. Raises LinAlgError if S is not
    positive semi-definite (e.g. correlations that do not fit together).
    """
    q = S.shape[0]
    L = np.zeros_like(S)
    scale = max(float(np.max(np.abs(np.diag(S)))), 1e-300)
    for j in range(q):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d < -tol * scale:
            raise np.linalg.LinAlgError("not positive semi-definite")
        if d <= tol * scale:
            rest = S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]
            if np.any(np.abs(rest) > 1e-8 * scale):
                raise np.linalg.LinAlgError("not positive semi-definite")
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = (S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


def _psi_kinds(q: int) -> list[str]:
    """Kinds of the entries of psi (lme4's varcorr order): sd, cor, sigma."""
    kinds = []
    for j in range(q):
        kinds.append("sd")
        kinds.extend("cor" for _ in range(j + 1, q))
    kinds.append("sigma")
    return kinds


def theta_sigma_from_psi(psi: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    """(theta, sigma) from sd's and correlations (lme4's order) and sigma."""
    sd = np.empty(q)
    R = np.eye(q)
    idx = 0
    for j in range(q):
        sd[j] = psi[idx]
        idx += 1
        for k in range(j + 1, q):
            R[j, k] = R[k, j] = psi[idx]
            idx += 1
    sigma = float(psi[idx])
    S = sd[:, None] * R * sd[None, :] / sigma**2
    return T_to_theta(_chol_psd(S)), sigma


def _to_free(psi, kinds):
    return np.array(
        [math.atanh(v) if k == "cor" else math.log(v) for v, k in zip(psi, kinds)]
    )


def _from_free(x, kinds):
    return np.array(
        [math.tanh(v) if k == "cor" else math.exp(v) for v, k in zip(x, kinds)]
    )


def profile_varcorr(
    s: SufficientStats,
    theta_hat: np.ndarray,
    sigma_hat: float,
    reml: bool = True,
    level: float = 0.95,
) -> pd.DataFrame:
    """Likelihood-ratio profile intervals for sd's, correlations and sigma.

    For each parameter psi_k of (sd's, correlations, sigma), the profile
    ``zeta(v) = sign(v - psi_k_hat) sqrt(min_{others} f(psi) - f_min)``
    uses ``f`` = -2 log restricted likelihood (REML) or the deviance (ML)
    with beta profiled out and sigma not (:func:`criterion_sigma`); the
    interval is where ``|zeta| = z_{(1+level)/2}``, as in lme4's
    ``confint(method = "profile")``, but solved by root finding rather than
    by spline interpolation. A limit that is not reached before the
    parameter's boundary is reported as the boundary (0 for an sd, +-1 for a
    correlation).
    """
    q = s.q
    kinds = _psi_kinds(q)
    psi_hat = _psi(theta_to_T(theta_hat, q), sigma_hat)
    sds = psi_hat[[i for i, k in enumerate(kinds) if k != "cor"]]
    cors = psi_hat[[i for i, k in enumerate(kinds) if k == "cor"]]
    if np.any(sds < 1e-6 * sigma_hat) or np.any(np.abs(cors) > 1 - 1e-6):
        raise _ProfileFailed(
            "the fit is on the boundary (an sd of 0 or a correlation of +-1); "
            "profiling from the boundary is not implemented"
        )
    x_hat = _to_free(psi_hat, kinds)

    def f_free(x):
        try:
            theta, sigma = theta_sigma_from_psi(_from_free(x, kinds), q)
            val = criterion_sigma(theta, sigma, s, reml=reml)
        except (np.linalg.LinAlgError, ValueError, OverflowError, InputError):
            return np.inf
        return val if np.isfinite(val) else np.inf

    f_min = f_free(x_hat)
    z = stats.norm.ppf(0.5 + level / 2)
    lower = np.full(len(kinds), np.nan)
    upper = np.full(len(kinds), np.nan)

    for k, kind in enumerate(kinds):
        others = [i for i in range(len(kinds)) if i != k]
        warm = {"x": x_hat[others].copy()}

        def zeta(xk, k=k, others=others, warm=warm):
            def inner(xo):
                x = x_hat.copy()
                x[k] = xk
                x[others] = xo
                return f_free(x)

            res = optimize.minimize(
                inner,
                warm["x"],
                method="L-BFGS-B",
                options={"ftol": 1e-13, "gtol": 1e-8, "maxiter": 500},
            )
            if np.isfinite(res.fun):
                warm["x"] = res.x
            dev = max(res.fun - f_min, 0.0)
            return math.copysign(math.sqrt(dev), xk - x_hat[k])

        for side, target, out in ((-1, -z, lower), (1, z, upper)):
            warm["x"] = x_hat[others].copy()
            limit = 6.0 if kind == "cor" else 12.0  # in the free scale
            # a first step, then a linear extrapolation of zeta to the
            # target, then doubling until the target is bracketed
            h, x_prev = 0.1, x_hat[k]
            found = False
            first = True
            while h <= limit:
                x_new = x_hat[k] + side * h
                zv = zeta(x_new)
                if side * zv >= z:
                    try:
                        root = optimize.brentq(
                            lambda xk: zeta(xk) - target, min(x_prev, x_new),
                            max(x_prev, x_new), xtol=1e-8, rtol=1e-10,
                        )
                    except ValueError as err:  # zeta not monotonic here
                        raise _ProfileFailed(
                            f"the profile of {kind} parameter {k + 1} is not "
                            f"monotonic, so its interval is not defined ({err})"
                        ) from err
                    out[k] = _from_free(np.array([root]), [kind])[0]
                    found = True
                    break
                x_prev = x_new
                if first and side * zv > 0.2:
                    h = min(max(1.15 * h * z / (side * zv), 1.5 * h), limit)
                else:
                    h *= 2.0
                first = False
            if not found:
                if kind == "cor":
                    out[k] = float(side)
                elif side < 0:
                    out[k] = 0.0
                else:
                    out[k] = np.inf
    return pd.DataFrame({"estimate": psi_hat, "lower": lower, "upper": upper})
