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

The code follows these sections, one module each: :mod:`.theta` (theta and
Lambda), :mod:`.pls` (penalised least squares and the objective),
:mod:`.optimizer` (the search over theta), :mod:`.fitting` (the fit and its
tables) and :mod:`.profiles` (profile intervals).
"""

from multilevel.reml.fitting import ENGINE, fit_reml, make_criterion
from multilevel.reml.optimizer import optimize_theta
from multilevel.reml.pls import (
    PLSSolution,
    SufficientStats,
    criterion_and_gradient,
    criterion_sigma,
    objective,
    pls_solve,
    profiled_deviance,
    reml_criterion,
    sufficient_stats,
)
from multilevel.reml.profiles import profile_varcorr, theta_sigma_from_psi
from multilevel.reml.theta import T_to_theta, n_theta, theta_lower_bounds, theta_to_T

__all__ = [
    "ENGINE",
    "PLSSolution",
    "SufficientStats",
    "T_to_theta",
    "criterion_and_gradient",
    "criterion_sigma",
    "fit_reml",
    "make_criterion",
    "n_theta",
    "objective",
    "optimize_theta",
    "pls_solve",
    "profile_varcorr",
    "profiled_deviance",
    "reml_criterion",
    "sufficient_stats",
    "theta_lower_bounds",
    "theta_sigma_from_psi",
    "theta_to_T",
]
