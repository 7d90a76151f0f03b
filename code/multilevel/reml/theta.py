"""theta and the template T of the relative covariance factor Lambda.

``Lambda`` is block diagonal with one lower-triangular ``q x q`` template
``T`` per group; theta lists T's lower triangle column by column (lme4's
order: for ``(1 + x | g)`` that is ``T[0,0], T[1,0], T[1,1]``), and the
diagonal entries are bounded below by 0. The random effects' covariance is
``S = sigma^2 T T'``.
"""

from __future__ import annotations

import functools

import numpy as np

from multilevel.errors import InputError
from multilevel.tables import varcorr_values


@functools.cache
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


def varcorr_of(T: np.ndarray, sigma: float) -> np.ndarray:
    """SDs and correlations of ``S = sigma^2 T T'`` in lme4's order, then sigma."""
    return varcorr_values(sigma**2 * (T @ T.T), sigma)
