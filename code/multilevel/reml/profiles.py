"""Likelihood-ratio profile intervals of the variance components."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

from multilevel.errors import InputError
from multilevel.reml.pls import SufficientStats, criterion_sigma
from multilevel.reml.theta import T_to_theta, theta_to_T, varcorr_of


class ProfileFailed(RuntimeError):
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
    psi_hat = varcorr_of(theta_to_T(theta_hat, q), sigma_hat)
    sds = psi_hat[[i for i, k in enumerate(kinds) if k != "cor"]]
    cors = psi_hat[[i for i, k in enumerate(kinds) if k == "cor"]]
    if np.any(sds < 1e-6 * sigma_hat) or np.any(np.abs(cors) > 1 - 1e-6):
        raise ProfileFailed(
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
                            lambda xk, t=target: zeta(xk) - t, min(x_prev, x_new),
                            max(x_prev, x_new), xtol=1e-8, rtol=1e-10,
                        )
                    except ValueError as err:  # zeta not monotonic here
                        raise ProfileFailed(
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
