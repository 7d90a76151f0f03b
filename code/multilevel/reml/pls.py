"""Penalised least squares (Bates et al. 2015, section 3.3) and the objective.

Per-group cross products (the only O(n) step), the PLS solution at one
theta by blocks, and the profiled criteria built on one objective with the
ML/REML branch (:func:`objective`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from multilevel.errors import InputError
from multilevel.reml.theta import _tril_index, theta_to_T


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


def criterion_and_gradient(
    theta, s: SufficientStats, reml: bool = True
) -> tuple[float, np.ndarray]:
    """The profiled criterion at theta and its exact gradient in theta.

    With ``A_j = Z_j'Z_j``, ``B_j = Z_j'X_j``, ``M_j = T'A_j T + I`` and the
    PLS solution ``(beta, u_j)`` at theta, the pieces of the criterion
    differentiate, as functions of the template ``T``, to

    * ``log|L|^2 = sum_j log|M_j|``:  ``2 sum_j A_j T M_j^-1``;
    * ``log|R_X|^2`` (REML only), with ``W_j = B_j - A_j T M_j^-1 T' B_j``
      (that is ``Z_j' V_j^-1 X_j`` for ``V_j = I + Z_j T T' Z_j'``) and
      ``C = (R_X' R_X)^-1``:  ``-2 sum_j W_j C W_j' T``;
    * ``r^2``, by the envelope theorem (beta and u are its minimisers), with
      the residual cross products ``e_j = Z_j'(y_j - X_j beta - Z_j T u_j)``:
      ``-2 sum_j e_j u_j'``, entering the criterion as ``(n_r / r^2) dr^2``
      (``n_r = n - p`` for REML, ``n`` for ML).

    theta's entries are entries of T, so the gradient is the lower triangle
    of the sum, column by column. One evaluation costs a few batched q x q
    operations over the groups: the optimiser needs one per step instead of
    the ``2 len(theta) + 1`` of a central-difference gradient.
    """
    q, p = s.q, s.p
    rows, cols = _tril_index(q)
    T = np.zeros((q, q))
    T[rows, cols] = theta
    eye = np.eye(q)
    A, B, c = s._last  # groups on the last axis: (q, q, J), (q, p, J), (q, J)
    AT = np.einsum("abJ,bc->acJ", A, T)
    M = np.einsum("ba,bcJ->acJ", T, AT) + eye[:, :, None]
    L = _chol_stack(M)  # M is positive definite for every theta
    Linv = _lower_solve_stack(L, np.broadcast_to(eye[:, :, None], M.shape))
    Minv = np.einsum("kaJ,kbJ->abJ", Linv, Linv)
    TtB = np.einsum("ba,bpJ->apJ", T, B)
    Ttc = np.einsum("ba,bJ->aJ", T, c)
    MinvTtB = np.einsum("abJ,bpJ->apJ", Minv, TtB)
    schur = s.XtX - np.einsum("kaJ,kbJ->ab", TtB, MinvTtB)
    rhs = s.Xty - np.einsum("kaJ,kJ->a", MinvTtB, Ttc)
    try:
        R = np.linalg.cholesky(schur)
    except np.linalg.LinAlgError:
        pls_solve(theta, s)  # raises the informative error
        raise
    beta = np.linalg.solve(schur, rhs)
    h = Ttc - np.einsum("apJ,p->aJ", TtB, beta)  # T'(c_j - B_j beta) = M_j u_j
    u = np.einsum("abJ,bJ->aJ", Minv, h)
    # ||y - X beta||^2 from the cross products, so an evaluation is O(J)
    rss = s.yty - 2.0 * beta @ s.Xty + beta @ s.XtX @ beta
    r2 = float(rss - np.sum(h * u))
    log_det_L2 = float(2.0 * sum(np.sum(np.log(L[k, k])) for k in range(q)))
    log_det_RX2 = float(2.0 * np.sum(np.log(np.diagonal(R))))
    nr = s.n - p if reml else s.n
    value = objective(log_det_L2, log_det_RX2, r2, s.n, p, reml)
    G = 2.0 * np.einsum("acJ,cbJ->ab", AT, Minv)
    if reml:
        W = B - np.einsum("acJ,cpJ->apJ", AT, MinvTtB)  # (q, p, J)
        WC = np.einsum("apJ,pr->arJ", W, np.linalg.inv(schur))
        G -= 2.0 * np.einsum("arJ,brJ->ab", WC, W) @ T
    e = c - np.einsum("apJ,p->aJ", B, beta) - np.einsum("acJ,cJ->aJ", AT, u)
    G -= (2.0 * nr / r2) * (e @ u.T)
    return value, G[rows, cols]
