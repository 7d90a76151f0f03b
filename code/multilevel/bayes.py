"""Equation set 2: the cafe model in PyMC, sampled with nutpie.

The model of *Statistical Rethinking* ch. 14 (equations 8-16 of the source
post)::

    W_i ~ Normal(mu_i, sigma_within)                          (8)
    mu_i = alpha_cafe[cafe[i]] + beta_cafe[cafe[i]] * A_i     (9)
    sigma_within ~ Exponential(1)                             (10)
    (alpha_cafe, beta_cafe) ~ MVNormal((a_bar, b_bar), S)     (11)
    S = diag(sigma_cafe) R diag(sigma_cafe)                   (12)
    a_bar ~ Normal(5, 2)                                      (13)
    b_bar ~ Normal(-1, 0.5)                                   (14)
    sigma_cafe ~ Exponential(1)  (both SDs)                   (15)
    R ~ LKJCorr(2)                                            (16)

``a_bar`` and ``b_bar`` play the part of lme4's fixed effects; the cafe
coefficients ``alpha_cafe``/``beta_cafe`` have them "baked in", and the
offsets lme4 calls random effects are ``alpha_cafe - a_bar`` and
``beta_cafe - b_bar``, computed draw by draw (:func:`unbake`).

Every table of the returned :class:`~multilevel.fit.Fit` reports the
posterior mean as ``estimate``, the posterior SD as ``std_error`` and the
highest-density interval at ``level`` as ``lower``/``upper``.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import numbers
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multilevel import engines, mcmc, validate
from multilevel.errors import EngineMissingError, InputError
from multilevel.fit import (
    ESS_BULK_MIN,
    R_HAT_MAX,
    Fit,
    convergence_problems,
    varcorr_names,
)

__all__ = [
    "DEFAULT_PRIORS",
    "EFFECTS",
    "ESS_BULK_MIN",  # the convergence rule's thresholds, which the book cites
    "GROUP",
    "R_HAT_MAX",
    "SAMPLERS",
    "TARGET_ACCEPT",
    "LIKELIHOODS",
    "MARGINAL_FROM_CAFES",
    "choose_likelihood",
    "CompiledCafeModel",
    "VisitCells",
    "cafe_cells",
    "cafe_effects_given",
    "cafe_model",
    "clear_compiled",
    "compile_cache_dir",
    "compile_cafe_model",
    "configure_compile_caches",
    "fit_pymc",
    "quiet_sampling",
    "resolve_priors",
    "shared_wait_model",
    "draw_cafe_effects",
    "unbake",
    "visit_cells",
]

# arviz (imported by pymc) warns once a day, at import time, that it is being
# refactored. It is advice about arviz's future API, not about our results;
# ignore exactly that message so it cannot leak into the book or fail tests.
warnings.filterwarnings(
    "ignore",
    message=r"\s*ArviZ is undergoing a major refactor",
    category=FutureWarning,
)

# ------------------------------------------------------- compilation caches

#: The environment variable that names the folder of the compilation caches.
CACHE_ENV = "MULTILEVEL_COMPILE_CACHE"
#: The folder, under the build directory, when CACHE_ENV is not set.
CACHE_SUBDIR = Path("_build") / ".compile-cache"


def compile_cache_dir() -> Path | None:
    """The one folder that holds PyTensor's, numba's and JAX's caches.

    ``$MULTILEVEL_COMPILE_CACHE`` when it is set (the Makefile sets it to
    ``_build/.compile-cache``, so the book, the tests, the study and the
    benchmark share it); otherwise ``_build/.compile-cache`` of the checkout
    this package lives in, when it is run from one; otherwise ``None`` and
    each library keeps its own default.
    """
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).resolve()
    root = Path(__file__).resolve().parents[2]
    if (root / "_quarto.yml").is_file():
        return root / CACHE_SUBDIR
    return None


#: JAX's switch that passes the arrays a traced function closes over (the
#: model's data) to the compiled program as arguments, instead of writing
#: them into it as constants: one compilation then serves every data set of
#: the same shape. Read when JAX is imported.
JAX_CONSTANTS = "JAX_USE_SIMPLIFIED_JAXPR_CONSTANTS"


def configure_compile_caches(folder: Path | None = None) -> dict[str, str]:
    """Point PyTensor, numba and JAX at ``folder`` (default
    :func:`compile_cache_dir`), unless the environment already names their
    caches, and turn on :data:`JAX_CONSTANTS` unless it is set. Returns the
    variables it set.

    It only works before those libraries are imported, as it is here (this
    module calls it before it imports PyMC); in a process that imported
    PyMC, nutpie or JAX first, export the variables before starting it.
    """
    set_now = {}
    if not os.environ.get(JAX_CONSTANTS):
        os.environ[JAX_CONSTANTS] = set_now[JAX_CONSTANTS] = "1"
    folder = compile_cache_dir() if folder is None else Path(folder)
    if folder is None:
        return set_now
    values = {
        "NUMBA_CACHE_DIR": str(folder / "numba"),
        "JAX_COMPILATION_CACHE_DIR": str(folder / "jax"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    for name, value in values.items():
        if not os.environ.get(name):
            os.environ[name] = set_now[name] = value
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags:
        entry = f"base_compiledir={folder / 'pytensor'}"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{entry}" if flags else entry
        set_now["PYTENSOR_FLAGS"] = os.environ["PYTENSOR_FLAGS"]
    return set_now


configure_compile_caches()

import pymc as pm  # noqa: E402 (after the filter)
import xarray as xr  # noqa: E402 (after the filter)

from multilevel.data import (  # noqa: E402 (after the filter)
    CAFE_FORMULA,
    CAFE_GROUP,
    CAFE_TERMS,
    check_cafe_data,
)
from multilevel.design import group_levels  # noqa: E402 (after the filter)

# Importing PyMC (with PyTensor, JAX's interface and ArviZ) leaves about
# 300,000 objects that live as long as the process. Python's cycle
# collector walks all of them at every full collection (0.16 s each) and
# several times more while the interpreter exits: 1.3 s of the 8 s a fresh
# process took to fit 20 cafes, 1.9 s with the collections during the fit.
# Freezing them takes them out of its sight; whatever is made afterwards is
# collected as usual. (Objects made before this import are frozen too: a
# reference cycle among them is freed only by gc.unfreeze().)
gc.freeze()

#: The two effects of each cafe, with lme4's term names.
EFFECTS = CAFE_TERMS
GROUP = CAFE_GROUP

#: Priors of equation set 2 (equations 10 and 13-16), by parameter name.
#: Each entry holds the parameters of a fixed family:
#: ``a_bar``, ``b_bar``: Normal(mu, sigma); ``sigma_cafe``: Exponential(lam)
#: for both SDs (``lam`` a number or one rate per effect); ``R``:
#: LKJCorr(eta); ``sigma_within``: Exponential(lam).
DEFAULT_PRIORS: Mapping[str, Mapping[str, Any]] = {
    "a_bar": {"mu": 5.0, "sigma": 2.0},
    "b_bar": {"mu": -1.0, "sigma": 0.5},
    "sigma_cafe": {"lam": 1.0},
    "R": {"eta": 2.0},
    "sigma_within": {"lam": 1.0},
}

#: Which prior parameters must be > 0 (scales, rates, the LKJ shape).
_POSITIVE = {"sigma", "lam", "eta"}

#: The samplers fit_pymc knows (the registry's, the default first).
SAMPLERS = engines.sampler_names()

#: NUTS's target acceptance rate. At the usual 0.8 the centred cafe model
#: diverged about once in 50,000 draws, always far out in the tail of the
#: correlation (rho near -1), where the transform of the LKJ Cholesky factor
#: curves sharply; the smaller steps of 0.9 follow it (no divergence in
#: 48,000 draws) at about 1.8 times the leapfrog steps per draw.
TARGET_ACCEPT = 0.9
ENGINE = engines.engine("pymc")


# ---------------------------------------------------------------- validation


def _check_data(data: Any) -> pd.DataFrame:
    """Refuse data the cafe model cannot use, with a message that says why."""
    return check_cafe_data(data)


def _prior_number(where: str, value: Any, positive: bool) -> float:
    return validate.real_number(
        f"prior {where}", value, positive=positive,
        what="a scale, rate or shape",
    )


def resolve_priors(
    priors: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """DEFAULT_PRIORS with the entries of ``priors`` overriding them by name.

    ``priors={"a_bar": {"sigma": 1.0}}`` keeps ``mu=5`` and narrows the
    scale. Unknown names, unknown parameters and non-positive scales are
    refused with :class:`InputError`.
    """
    resolved = {name: dict(params) for name, params in DEFAULT_PRIORS.items()}
    if priors is None:
        return resolved
    if not isinstance(priors, Mapping):
        raise InputError(
            f"priors must be a dict of prior name -> parameters, got "
            f"{type(priors).__name__}; e.g. priors={{'a_bar': {{'sigma': 1.0}}}}."
        )
    valid = ", ".join(DEFAULT_PRIORS)
    for name, params in priors.items():
        if name not in DEFAULT_PRIORS:
            raise InputError(
                f"unknown prior {name!r}; the priors of the cafe model are "
                f"{valid}."
            )
        if not isinstance(params, Mapping):
            raise InputError(
                f"prior {name!r} must be a dict of parameters such as "
                f"{dict(DEFAULT_PRIORS[name])}, got {params!r}."
            )
        allowed = list(DEFAULT_PRIORS[name])
        for key, value in params.items():
            if key not in allowed:
                raise InputError(
                    f"prior {name!r} has no parameter {key!r}; its parameters "
                    f"are {', '.join(allowed)}."
                )
            positive = key in _POSITIVE
            if name == "sigma_cafe" and not isinstance(value, numbers.Real):
                rates = list(np.ravel(np.asarray(value, dtype=object)))
                if len(rates) != len(EFFECTS):
                    raise InputError(
                        f"prior sigma_cafe lam takes one rate or one per effect "
                        f"({len(EFFECTS)}), got {value!r}."
                    )
                value = [
                    _prior_number(f"sigma_cafe {key}[{k}]", r, positive)
                    for k, r in enumerate(rates)
                ]
            else:
                value = _prior_number(f"{name} {key}", value, positive)
            resolved[name][key] = value
    return resolved


# --------------------------------------------------------------------- model


#: The ways :func:`cafe_model` can write the likelihood (8)-(9): one term per
#: visit; one per cell (cafe x visit time) from the cell's sums; or one per
#: cafe with the cafe's coefficients integrated out (``"marginal"``).
LIKELIHOODS = ("visits", "cells", "marginal")

#: ``fit_pymc(likelihood="auto")`` integrates the cafes' coefficients out
#: above this many cafes (the registry's value, where the benchmark reads it).
MARGINAL_FROM_CAFES = engines.MARGINAL_FROM_CAFES


@dataclass(frozen=True)
class VisitCells:
    """The visits grouped into cells: one cafe at one visit time.

    Within a cell every visit has the same mean ``mu``, so (8) depends on
    the cell's waits only through their number ``n``, their mean and their
    squared deviations from that mean, pooled over cells as ``within_ss``
    with ``within_df = visits - cells`` degrees of freedom:

        sum_i log N(W_i | mu, s) = log N(mean | mu, s / sqrt(n))
                                   - (n - 1) log s - ss / (2 s^2) + const.

    ``cafe`` is each cell's cafe index (the order of ``group_levels``).
    """

    cafe: np.ndarray
    afternoon: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    within_ss: float
    within_df: int


def visit_cells(cafe_idx: np.ndarray, afternoon: np.ndarray,
                wait: np.ndarray) -> VisitCells:
    """Group visits (cafe index, visit time, wait) into :class:`VisitCells`.

    Cells are the distinct (cafe, afternoon) pairs, in that order. The
    squared deviations are taken from each cell's own mean, so no large sums
    cancel."""
    frame = pd.DataFrame({"cafe": cafe_idx, "afternoon": afternoon,
                          "wait": wait})
    grouped = frame.groupby(["cafe", "afternoon"], sort=True)["wait"]
    n = grouped.size()
    mean = grouped.mean()
    deviation = wait - grouped.transform("mean").to_numpy()
    keys = n.index
    return VisitCells(
        cafe=keys.get_level_values("cafe").to_numpy(dtype=np.int64),
        afternoon=keys.get_level_values("afternoon").to_numpy(dtype="float64"),
        n=n.to_numpy(dtype="float64"),
        mean=mean.to_numpy(dtype="float64"),
        within_ss=float(np.sum(deviation**2)),
        within_df=int(len(wait) - len(n)),
    )


def cafe_cells(data: pd.DataFrame) -> tuple[list, np.ndarray, np.ndarray, VisitCells]:
    """Each cafe's morning and afternoon cells as (cafes, 2) arrays: the
    labels, the numbers of visits ``n`` (0 for a cell with no visit) and the
    mean waits ``m`` (0 there), and the :class:`VisitCells`. Needs the visit
    time to be 0 (morning) or 1 (afternoon)."""
    data = _check_data(data)
    labels, cafe_idx = group_levels(data[GROUP])
    A = data["afternoon"].to_numpy(dtype="float64")
    if not np.isin(A, (0.0, 1.0)).all():
        raise InputError(
            "likelihood='marginal' needs afternoon to be 0 (morning) or 1 "
            f"(afternoon); got values such as {sorted(set(A) - {0.0, 1.0})[:3]}. "
            "Use likelihood='visits' for other visit times."
        )
    cells = visit_cells(cafe_idx, A, data["wait"].to_numpy(dtype="float64"))
    n = np.zeros((len(labels), 2))
    m = np.zeros((len(labels), 2))
    col = cells.afternoon.astype(np.int64)
    n[cells.cafe, col] = cells.n
    m[cells.cafe, col] = cells.mean
    return labels, n, m, cells


def cafe_effects_given(n: np.ndarray, m: np.ndarray, a_bar: Any, b_bar: Any,
                       s: tuple[Any, Any, Any], sigma_within: Any,
                       xp: Any = np) -> dict[str, Any]:
    """The cafes' coefficients given the population parameters and the data.

    ``n`` and ``m`` are :func:`cafe_cells`' counts and mean waits, ``s`` the
    entries (S00, S01, S11) of S. Each cafe's cell means are normal with
    mean Z (a_bar, b_bar) and covariance V = Z S Z' + sigma^2 diag(1/n),
    Z = [[1, 0], [1, 1]] (a cell without visits drops out: its weight
    w = n / sigma^2 is 0). With P = S^-1 + Z' W Z and g = Z' W r (r the
    cell means minus their population means), the offsets of the cafe from
    (a_bar, b_bar) are N(P^-1 g, P^-1) given the data, and the log density
    of its cell means is -(k log(2 pi) + log det V + r' V^-1 r) / 2, with
    log det V = sum log(sigma^2 / n) + log det S + log det P and
    r' V^-1 r = sum w r^2 - g' P^-1 g. Returns ``logp`` (per cafe),
    ``mean`` and ``cov`` (each a pair or triple of per-cafe arrays). ``xp``
    is the array module: NumPy, or PyTensor's tensor module inside a model.
    """
    s00, s01, s11 = s
    s2 = sigma_within**2
    det_s = s00 * s11 - s01**2
    w0, w1 = n[:, 0] / s2, n[:, 1] / s2
    r0 = xp.where(n[:, 0] > 0, m[:, 0] - a_bar, 0.0)
    r1 = xp.where(n[:, 1] > 0, m[:, 1] - a_bar - b_bar, 0.0)
    p00 = s11 / det_s + w0 + w1
    p01 = -s01 / det_s + w1
    p11 = s00 / det_s + w1
    det_p = p00 * p11 - p01**2
    g0, g1 = w0 * r0 + w1 * r1, w1 * r1
    quad = w0 * r0**2 + w1 * r1**2 - (p11 * g0**2 - 2 * p01 * g0 * g1
                                       + p00 * g1**2) / det_p
    present = (n > 0).sum(axis=1)
    log_n = np.log(np.where(n > 0, n, 1.0)).sum(axis=1)
    logdet_v = present * xp.log(s2) - log_n + xp.log(det_s) + xp.log(det_p)
    logp = -0.5 * (present * np.log(2 * np.pi) + logdet_v + quad)
    c00, c01, c11 = p11 / det_p, -p01 / det_p, p00 / det_p
    mean = (c00 * g0 + c01 * g1, c01 * g0 + c11 * g1)
    return {"logp": logp, "mean": mean, "cov": (c00, c01, c11)}


def draw_cafe_effects(data: pd.DataFrame, posterior: Any, seed: int) -> Any:
    """Draw the cafes' coefficients ``ab_cafe`` (chain, draw, cafe, effect)
    from their normal distribution given the data and each posterior draw of
    a_bar, b_bar, sigma_cafe, rho and sigma_within (:func:`cafe_effects_given`):
    with those draws, draws of the joint posterior. The same seed gives the
    same draws."""
    labels, n, m, _ = cafe_cells(data)
    rng = np.random.default_rng([seed, 0xCAFE])
    chains = []
    for c in range(posterior.sizes["chain"]):
        one = posterior.isel(chain=c)

        def get(name, one=one):
            return one[name].values[:, None]  # (draw, 1): against cafes

        sd = one["sigma_cafe"].values
        sd0, sd1 = sd[:, :1], sd[:, 1:]
        rho = get("rho")
        a_bar, b_bar = get("a_bar"), get("b_bar")
        given = cafe_effects_given(
            n, m, a_bar, b_bar, (sd0**2, rho * sd0 * sd1, sd1**2),
            get("sigma_within"))
        c00, c01, c11 = given["cov"]
        l00 = np.sqrt(c00)
        l10 = c01 / l00
        l11 = np.sqrt(c11 - l10**2)
        z = rng.standard_normal((2, *c00.shape))
        alpha = a_bar + given["mean"][0] + l00 * z[0]
        beta = b_bar + given["mean"][1] + l10 * z[0] + l11 * z[1]
        chains.append(np.stack([alpha, beta], axis=-1))
    return xr.DataArray(
        np.stack(chains), dims=("chain", "draw", GROUP, "effect"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values,
                GROUP: labels, "effect": list(EFFECTS)},
        name="ab_cafe")


def _within_cells(cells: VisitCells, sigma_within: Any) -> None:
    """The potential ``wait_within``: the spread of the waits around their
    cell's mean, -(visits - cells) log sigma - SS / (2 sigma^2)."""
    pm.Potential(
        "wait_within",
        -cells.within_df * pm.math.log(sigma_within)
        - cells.within_ss / (2 * sigma_within**2),
    )


def cafe_model(
    data: pd.DataFrame,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    centered: bool = True,
    likelihood: str = "visits",
) -> pm.Model:
    """Build equation set 2 (equations 8-16) for cafe data as a PyMC model.

    Named quantities (the same in both parametrisations): ``a_bar``,
    ``b_bar``, ``chol_cov`` (packed Cholesky factor of S), ``sigma_cafe``
    (dims ``effect``), ``rho``, ``ab_cafe`` (dims ``cafe``, ``effect``),
    ``alpha_cafe`` and ``beta_cafe`` (dims ``cafe``), ``sigma_within`` and
    the observed ``wait``. Coordinates: ``cafe`` holds the group labels as
    strings, ``effect`` is ``["(Intercept)", "afternoon"]``.

    ``centered=False`` draws ``z ~ Normal(0, 1)`` per cafe and effect and
    sets ``ab_cafe = (a_bar, b_bar) + L z`` (L the Cholesky factor of S):
    the same model, a geometry that is easier for NUTS when there are few
    visits per cafe.

    ``likelihood="visits"`` writes (8) once per visit (the observed
    ``wait``, dims ``obs``). ``likelihood="cells"`` writes the same
    likelihood from each cell's sums (:class:`VisitCells`): the observed
    ``wait_mean`` (dims ``cell``), each cell's mean wait with SD
    ``sigma_within / sqrt(n)``, and the potential ``wait_within`` for the
    spread of the waits around their cell's mean. The log posterior differs
    from the visits' form by a constant, so the posterior is the same; each
    gradient touches 2 numbers per cafe instead of one per visit.

    ``likelihood="marginal"`` integrates the cafes' coefficients out (as
    REML does): the potential ``wait_cafes`` is the density of each cafe's
    cell means given the population parameters alone
    (:func:`cafe_effects_given`), beside ``wait_within``. The model then
    has only a_bar, b_bar, the Cholesky factor of S and sigma_within, six
    numbers whatever the number of cafes; :func:`fit_pymc` draws the cafes'
    coefficients afterwards (:func:`draw_cafe_effects`). It needs visit
    times 0 and 1, and has no cafe effects to parametrise
    (``centered=True``).
    """
    data = _check_data(data)
    validate.flag("centered", centered)
    if likelihood not in LIKELIHOODS:
        raise InputError(
            f"likelihood must be one of {', '.join(map(repr, LIKELIHOODS))}, "
            f"got {likelihood!r}: 'visits' writes one term per visit, "
            "'cells' the same likelihood from each cafe's morning and "
            "afternoon sums, 'marginal' integrates the cafes' coefficients "
            "out."
        )
    p = resolve_priors(priors)
    # group labels as strings in R's factor order (as lme4 and design.py)
    labels, cafe_idx = group_levels(data[GROUP])
    A = data["afternoon"].to_numpy(dtype="float64")
    W = data["wait"].to_numpy(dtype="float64")
    coords = {GROUP: labels, "effect": list(EFFECTS)}
    if likelihood == "visits":
        coords["obs"] = np.arange(len(W))
    elif likelihood == "cells":
        cells = visit_cells(cafe_idx, A, W)
        coords["cell"] = np.arange(len(cells.n))
    else:
        if not centered:
            raise InputError(
                "likelihood='marginal' integrates the cafe effects out, so "
                "there is nothing to parametrise; leave centered=True.")
        _, n_cells, m_cells, cells = cafe_cells(data)
    lam_cafe = np.broadcast_to(
        np.asarray(p["sigma_cafe"]["lam"], dtype="float64"), (len(EFFECTS),)
    )
    with pm.Model(coords=coords) as model:
        # (12), (15), (16): S = diag(sigma_cafe) R diag(sigma_cafe)
        # store_in_trace=False: the SDs and R are stored once, under our
        # names, not also as PyMC's chol_cov_stds and chol_cov_corr.
        chol, R, sigma_cafe = pm.LKJCholeskyCov(
            "chol_cov",
            n=len(EFFECTS),
            eta=p["R"]["eta"],
            sd_dist=pm.Exponential.dist(lam=lam_cafe, shape=len(EFFECTS)),
            compute_corr=True,
            store_in_trace=False,
        )
        pm.Deterministic("sigma_cafe", sigma_cafe, dims="effect")
        pm.Deterministic("rho", R[1, 0])
        # (13), (14)
        a_bar = pm.Normal("a_bar", **p["a_bar"])
        b_bar = pm.Normal("b_bar", **p["b_bar"])
        if likelihood == "marginal":
            # (10); the cafes' coefficients (11) integrated out of (8)-(9)
            sigma_within = pm.Exponential("sigma_within", **p["sigma_within"])
            S = chol @ chol.T
            given = cafe_effects_given(n_cells, m_cells, a_bar, b_bar,
                                       (S[0, 0], S[0, 1], S[1, 1]),
                                       sigma_within, xp=pm.math)
            pm.Potential("wait_cafes", given["logp"].sum())
            _within_cells(cells, sigma_within)
            return model
        mean = pm.math.stack([a_bar, b_bar])
        # (11)
        if centered:
            ab_cafe = pm.MvNormal(
                "ab_cafe", mu=mean, chol=chol, dims=(GROUP, "effect")
            )
        else:
            z = pm.Normal("z", 0.0, 1.0, dims=(GROUP, "effect"))
            ab_cafe = pm.Deterministic(
                "ab_cafe", mean + pm.math.dot(z, chol.T), dims=(GROUP, "effect")
            )
        alpha_cafe = pm.Deterministic("alpha_cafe", ab_cafe[:, 0], dims=GROUP)
        beta_cafe = pm.Deterministic("beta_cafe", ab_cafe[:, 1], dims=GROUP)
        # (10)
        sigma_within = pm.Exponential("sigma_within", **p["sigma_within"])
        # (8), (9)
        if likelihood == "visits":
            mu = alpha_cafe[cafe_idx] + beta_cafe[cafe_idx] * A
            pm.Normal("wait", mu=mu, sigma=sigma_within, observed=W, dims="obs")
        else:
            mu = alpha_cafe[cells.cafe] + beta_cafe[cells.cafe] * cells.afternoon
            pm.Normal("wait_mean", mu=mu, sigma=sigma_within / np.sqrt(cells.n),
                      observed=cells.mean, dims="cell")
            _within_cells(cells, sigma_within)
    return model


# ------------------------------------------------------------------ sampling


@contextlib.contextmanager
def quiet_sampling() -> Iterator[None]:
    """Hush chatter that is not about our results while compiling/sampling.

    PyTensor warns that it found no BLAS for its C backend (nutpie compiles
    with numba and does not use it; for PyMC's NUTS the cafe model's 2 x 2
    algebra does not need it); PyMC logs which sampler it picked; NumPyro
    imports tqdm's notebook progress bar, which in a Jupyter kernel without
    ipywidgets warns that it cannot draw one (no progress bar is drawn unless
    ``progressbar=True``). Everything else (divergences, convergence) still
    comes through and is also on the Fit.
    """
    pm_log = logging.getLogger("pymc")
    old = pm_log.level
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="PyTensor could not link to a BLAS",
            category=UserWarning,
        )
        warnings.filterwarnings("ignore", message="IProgress not found")
        pm_log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            pm_log.setLevel(old)


#: nutpie's compiled models, keyed by (data, priors, centred): compiling
#: takes seconds, sampling a compiled model again costs nothing extra, and
#: the draws depend only on the compiled model and the seed.
_COMPILED: dict[str, Any] = {}
_COMPILED_MAX = 4


def _model_key(data: pd.DataFrame, priors: dict, centered: bool,
               likelihood: str = "visits") -> str:
    cols = data[[GROUP, "afternoon", "wait"]]
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(cols, index=False).to_numpy().tobytes()
    )
    digest.update(repr((sorted(priors.items()), bool(centered))).encode())
    digest.update(likelihood.encode())
    digest.update(repr([str(d) for d in cols.dtypes]).encode())
    return digest.hexdigest()


def clear_compiled() -> None:
    """Forget the compiled nutpie models (the next fit compiles afresh)."""
    _COMPILED.clear()
    _BY_STRUCTURE.clear()


# ------------------------------------------------- compile once per design

#: The shared variable that holds the observed waits of a compiled model.
WAIT_DATA = "wait_data"

#: Compiled models for new waits at the same cafes, keyed by structure.
_BY_STRUCTURE: dict[str, CompiledCafeModel] = {}


def _structure_key(data: pd.DataFrame, priors: dict, centered: bool) -> str:
    """What a compiled model depends on besides the waits: the cafes, the
    visit times, the priors and the parametrisation."""
    cols = data[[GROUP, "afternoon"]]
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(cols, index=False).to_numpy().tobytes()
    )
    digest.update(repr((sorted(priors.items()), bool(centered))).encode())
    digest.update(repr([str(d) for d in cols.dtypes]).encode())
    return digest.hexdigest()


def shared_wait_model(
    data: pd.DataFrame,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    centered: bool = True,
) -> pm.Model:
    """:func:`cafe_model` whose observed waits are the shared ``wait_data``.

    The model is ``cafe_model(data, priors, centered)`` itself; only the
    value of its observed variable (a constant holding the waits) is
    replaced by a shared variable, so a compilation of it serves other waits
    at the same cafes and visit times.
    """
    import pytensor

    model = cafe_model(data, priors=priors, centered=centered)
    if len(model.observed_RVs) != 1:
        raise RuntimeError(
            f"expected one observed variable in the cafe model, found "
            f"{len(model.observed_RVs)}; multilevel.bayes.cafe_model has changed."
        )
    wait = model.observed_RVs[0]
    model.rvs_to_values[wait] = pytensor.shared(
        np.asarray(data["wait"], dtype="float64"), name=WAIT_DATA
    )
    return model


@dataclass(frozen=True)
class CompiledCafeModel:
    """nutpie's compilation of the cafe model for one set of cafes, visit
    times, priors and parametrisation; :func:`fit_pymc` samples it for any
    waits observed at those cafes and times (``compiled=``)."""

    key: str
    priors: dict
    centered: bool
    compiled: Any = field(repr=False)
    seconds: float = 0.0

    def with_waits(self, data: pd.DataFrame) -> Any:
        """The compiled model with ``data``'s waits as the observations."""
        if _structure_key(data, self.priors, self.centered) != self.key:
            raise InputError(
                "this compiled model is for other cafes, visit times, priors "
                "or parametrisation than these data; compile it for them with "
                "compile_cafe_model(data, priors, centered)."
            )
        return self.compiled.with_data(
            **{WAIT_DATA: data["wait"].to_numpy(dtype="float64")}
        )


def compile_cafe_model(
    data: pd.DataFrame,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    centered: bool = True,
) -> CompiledCafeModel:
    """Compile the cafe model once for these cafes and visit times.

    Compiling takes seconds to tens of seconds; the result is kept in this
    process, so a second call for the same cafes, visit times, priors and
    parametrisation (whatever the waits) returns it at once. Pass it to
    :func:`fit_pymc` as ``compiled=`` to fit new waits without compiling.
    """
    import nutpie

    _check_data(data)
    validate.flag("centered", centered)
    resolved = resolve_priors(priors)
    key = _structure_key(data, resolved, centered)
    if key not in _BY_STRUCTURE:
        if len(_BY_STRUCTURE) >= _COMPILED_MAX:
            _BY_STRUCTURE.pop(next(iter(_BY_STRUCTURE)))
        t0 = time.perf_counter()
        with quiet_sampling():
            compiled = nutpie.compile_pymc_model(
                shared_wait_model(data, priors, centered)
            )
        _BY_STRUCTURE[key] = CompiledCafeModel(
            key=key, priors=resolved, centered=bool(centered),
            compiled=compiled, seconds=time.perf_counter() - t0,
        )
    return _BY_STRUCTURE[key]


def _sample_nutpie(
    model, key, draws, tune, chains, seed, progressbar, prepared=None,
    target_accept=TARGET_ACCEPT,
):
    import nutpie

    t0 = time.perf_counter()
    if prepared is not None:  # compiled by compile_cafe_model
        cached, compiled = True, prepared
    else:
        cached = key in _COMPILED
        if not cached:
            if len(_COMPILED) >= _COMPILED_MAX:
                _COMPILED.pop(next(iter(_COMPILED)))
            _COMPILED[key] = nutpie.compile_pymc_model(model)
        compiled = _COMPILED[key]
    t1 = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        progress_bar=progressbar,
        save_warmup=False,
        target_accept=target_accept,
    )
    t2 = time.perf_counter()
    seconds = {"compile": t1 - t0, "sampling": t2 - t1, "total": t2 - t0}
    seconds["compile_cached"] = cached
    return idata, seconds


def _sample_pymc(
    model, draws, tune, chains, seed, progressbar, cores, target_accept,
):
    """PyMC's own NUTS, its chains in ``cores`` processes."""
    import sys

    kwargs: dict[str, Any] = {}
    if "jax" in sys.modules:
        # PyMC forks its chain processes; a fork of a process that runs
        # JAX's threads can deadlock (JAX warns), so start them afresh.
        kwargs["mp_ctx"] = "forkserver"
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            progressbar=progressbar,
            compute_convergence_checks=False,
            target_accept=target_accept,
            **kwargs,
        )
    # pm.sample compiles inside and reports the time of its draws alone.
    return idata, _reported_seconds(idata, time.perf_counter() - t0)


def _reported_seconds(idata: Any, total: float) -> dict[str, Any]:
    """The seconds of a sampler that compiles inside its own call: only the
    total, and the sampling time it records in the posterior's attributes."""
    sampling = idata.posterior.attrs.get("sampling_time")
    return {
        "compile": None,
        "sampling": None if sampling is None else float(sampling),
        "total": total,
        "compile_cached": False,
    }


#: How many times a chain's jittered start is drawn again when its log
#: density is not finite (PyMC's own number).
JITTER_RETRIES = 10
#: NumPyro's per-step statistics, under the names ArviZ and PyMC give them.
_NUMPYRO_STATS = {
    "num_steps": "n_steps",
    "potential_energy": "lp",
    "energy": "energy",
    "adapt_state.step_size": "step_size",
    "accept_prob": "acceptance_rate",
    "diverging": "diverging",
}


def _jittered_starts(model, values, logp, chains: int, seed: int) -> list:
    """One start per chain in the sampler's (unconstrained) space: the
    model's initial point plus U(-1, 1) jitter, as PyMC starts its chains;
    a chain whose start has a non-finite log density draws again, up to
    :data:`JITTER_RETRIES` times. Returns one (chains, ...) array per value
    variable, in the order of ``values``."""
    import jax
    from pymc.initial_point import make_initial_point_fn

    point = make_initial_point_fn(model=model, jitter_rvs=set())(seed)
    centre = [np.asarray(point[v.name], dtype="float64") for v in values]
    rng = np.random.default_rng(seed)
    starts = [np.stack([c + rng.uniform(-1, 1, c.shape) for _ in range(chains)])
              for c in centre]
    finite = jax.jit(jax.vmap(lambda *x: jax.numpy.isfinite(logp(x))))
    for _ in range(JITTER_RETRIES):
        bad = ~np.asarray(finite(*starts))
        if not bad.any():
            return starts
        for s, c in zip(starts, centre, strict=True):
            s[bad] = c + rng.uniform(-1, 1, (int(bad.sum()), *c.shape))
    raise InputError(
        f"{int(bad.sum())} of {chains} chains found no start with a finite log "
        f"density in {JITTER_RETRIES + 1} jittered tries around the model's "
        "initial point; check the data (waits must be finite numbers) and the "
        "priors (scales must be positive)."
    )


def _sample_numpyro(model, draws, tune, chains, seed, progressbar,
                    target_accept):
    """NumPyro's NUTS on the model's JAX translation, one chain per device.

    The steps of ``pm.sample(nuts_sampler="numpyro")``, each done once: the
    model is translated to JAX once, for its log density and the quantities
    the posterior reports together (XLA drops what each use does not need);
    the chains start at the model's initial point with PyMC's U(-1, 1)
    jitter, checked by the compiled log density rather than op by op; and
    the draws are moved to NumPy once. JAX's compiled programs are kept in
    its persistent cache (``JAX_COMPILATION_CACHE_DIR``), so a fit of a
    model compiled before, in any process, only traces it. With
    ``JAX_USE_SIMPLIFIED_JAXPR_CONSTANTS=1`` in the environment before JAX
    is imported (:func:`configure_compile_caches` sets it), the data reach
    the programs as arguments instead of constants written into them: one
    compilation serves every data set of the same shape, and XLA does not
    spend its time folding the data into the program.
    """
    import arviz as az
    import jax
    import numpyro
    from arviz.data.base import make_attrs
    from numpyro.infer import MCMC, NUTS
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )
    from pymc.sampling.jax import get_jaxified_graph
    from pymc.util import get_default_varnames

    t0 = time.perf_counter()
    values = model.value_vars
    kept = list(get_default_varnames(model.unobserved_value_vars,
                                     include_transformed=False))
    graph = get_jaxified_graph(inputs=values, outputs=[model.logp(), *kept])

    def logp(x):
        return graph(*x)[0]

    starts = _jittered_starts(model, values, logp, chains, seed)
    kernel = NUTS(potential_fn=lambda x: -logp(x), target_accept_prob=target_accept,
                  adapt_step_size=True, adapt_mass_matrix=True, dense_mass=False)
    mcmc = MCMC(kernel, num_warmup=tune, num_samples=draws, num_chains=chains,
                postprocess_fn=None, chain_method="parallel",
                progress_bar=progressbar)
    keys = jax.random.split(jax.random.PRNGKey(seed), chains)
    t1 = time.perf_counter()
    mcmc.run(keys, init_params=starts, extra_fields=tuple(_NUMPYRO_STATS))
    raw = mcmc.get_samples(group_by_chain=True)
    stats = {_NUMPYRO_STATS[k]: np.asarray(v) for k, v in
             mcmc.get_extra_fields(group_by_chain=True).items()}
    sampling = time.perf_counter() - t1
    stats["tree_depth"] = np.log2(stats["n_steps"]).astype(int) + 1
    report = jax.jit(jax.vmap(jax.vmap(lambda *x: graph(*x)[1:])))
    posterior = {v.name: np.asarray(r) for v, r in
                 zip(kept, report(*raw), strict=True)}
    coords, dims = coords_and_dims_for_inferencedata(model)
    attrs = {"sampling_time": sampling, "tuning_steps": tune}
    idata = az.from_dict(
        posterior=posterior,
        sample_stats=stats,
        observed_data=find_observations(model),
        constant_data=find_constants(model),
        coords=coords,
        dims=dims,
        attrs=make_attrs(attrs, library=numpyro),
        posterior_attrs=make_attrs(attrs, library=numpyro),
    )
    # the sampler's own time: tracing and compiling its loop, then drawing
    return idata, _reported_seconds(idata, time.perf_counter() - t0)


def _prepare_jax(chains: int) -> None:
    """Before JAX is first imported: as many CPU devices as chains (at least
    four, the default number), so NumPyro runs the chains in parallel. JAX
    fixes its devices when it is imported: a later fit with more chains than
    devices runs them one after another (NumPyro warns)."""
    import sys

    if "jax" in sys.modules:
        return
    devices = max(chains, 4)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={devices}".strip()
        )


def _summary(draws: Any, level: float) -> pd.DataFrame:
    """Mean, SD and HDI of a DataArray over (chain, draw), one row per cell."""
    mean = draws.mean(("chain", "draw"))
    sd = draws.std(("chain", "draw"), ddof=1)
    interval = mcmc.hdi(_stacked(draws), level)
    return pd.DataFrame(
        {
            "estimate": np.ravel(mean.values),
            "std_error": np.ravel(sd.values),
            "lower": interval[:, 0],
            "upper": interval[:, 1],
        }
    )


def _stacked(draws: Any) -> np.ndarray:
    """A DataArray's draws as (chain, draw, quantity), cells in C order."""
    values = draws.transpose("chain", "draw", ...).values
    return values.reshape(values.shape[0], values.shape[1], -1)


def _group_table(per_term: Mapping[str, Any], level: float) -> pd.DataFrame:
    """Long table (group, term, ...) from one (chain, draw, cafe) array per term."""
    parts = []
    for term, draws in per_term.items():
        table = _summary(draws, level)
        table.insert(0, "term", term)
        table.insert(0, "group", [str(g) for g in draws[GROUP].values])
        parts.append(table)
    out = pd.concat(parts, ignore_index=True)
    order = {g: k for k, g in enumerate(parts[0]["group"])}
    out["_g"] = out["group"].map(order)
    out["_t"] = out["term"].map({t: k for k, t in enumerate(per_term)})
    return (
        out.sort_values(["_g", "_t"]).drop(columns=["_g", "_t"])
        .reset_index(drop=True)
    )


#: Posterior variables that are columns of another (``ab_cafe``): their
#: diagnostics are that variable's, so they are not computed twice.
COPIES = ("alpha_cafe", "beta_cafe")


def _diagnostics(idata: Any) -> dict[str, Any]:
    """Worst r-hat and ESS over every posterior quantity, and divergences."""
    post = idata.posterior
    names = [v for v in post.data_vars if v not in COPIES or "ab_cafe" not in post]
    draws = np.concatenate([_stacked(post[v]) for v in names], axis=2)
    with warnings.catch_warnings():
        # r-hat of a constant quantity is NaN; numpy says so with a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        found = mcmc.diagnose(draws)
    # A quantity constant over every draw (such as the unit diagonal of a
    # stored correlation matrix) has no r-hat or ESS; skip exactly those.
    # Any other NaN is kept and makes the check fail.
    flat = draws.reshape(-1, draws.shape[2])
    varying = flat.max(axis=0) > flat.min(axis=0)
    return {
        "r_hat_max": float(np.max(found["rhat"][varying])),
        "ess_bulk_min": float(np.min(found["ess_bulk"][varying])),
        "ess_tail_min": float(np.min(found["ess_tail"][varying])),
        "divergences": int(idata.sample_stats["diverging"].sum()),
    }


def unbake(idata: Any) -> Any:
    """Per-draw offsets of each cafe from the population means.

    ``idata`` is the InferenceData of :func:`multilevel.bayes.fit_pymc` (or
    a Fit holding it in ``raw``), whose posterior has ``a_bar``, ``b_bar``,
    ``alpha_cafe`` and ``beta_cafe``. Returns an ``xarray.Dataset`` with
    ``a_cafe = alpha_cafe - a_bar`` and ``b_cafe = beta_cafe - b_bar``, both
    with dims (chain, draw, cafe): the subtraction is made in every draw, so
    the offsets keep their full posterior (SDs, intervals, correlations), not
    only their means. ``.to_dataframe()`` gives a tidy table.
    """
    if isinstance(idata, Fit):
        idata = idata.raw
    post = getattr(idata, "posterior", None)
    needed = ("a_bar", "b_bar", "alpha_cafe", "beta_cafe")
    if post is None or any(v not in post for v in needed):
        raise InputError(
            "unbake needs the InferenceData of fit_pymc (or its Fit), whose "
            f"posterior holds {', '.join(needed)}; got {type(idata).__name__}."
        )
    return xr.Dataset(
        {
            "a_cafe": post["alpha_cafe"] - post["a_bar"],
            "b_cafe": post["beta_cafe"] - post["b_bar"],
        }
    )


def _parametrisation_record(centered: bool, choice: Any) -> dict[str, Any]:
    """What the Fit records about its parametrisation."""
    record: dict[str, Any] = {
        "form": "centred" if centered else "non-centred",
        "chosen": "given" if choice is None else "auto",
        "reason": "given by the caller" if choice is None else choice.reason,
    }
    if choice is not None:
        record.update(choice.summary)
    return record


def choose_likelihood(data: pd.DataFrame, centered: bool) -> tuple[str, str]:
    """The likelihood ``fit_pymc(likelihood="auto")`` writes, and why.

    ``"marginal"`` when the data have more than :data:`MARGINAL_FROM_CAFES`
    cafes, visit times 0 and 1 and the centred form (the marginal form has
    no cafe effects to parametrise); otherwise ``"visits"``, the model as
    the chapters write it.
    """
    data = _check_data(data)
    n_cafes = data[GROUP].nunique()
    if n_cafes <= MARGINAL_FROM_CAFES:
        return "visits", (f"{n_cafes} cafes, at most {MARGINAL_FROM_CAFES}: "
                          "the coefficients sampled with the rest")
    if not centered:
        return "visits", ("the non-centred form was asked for, which "
                          "samples the cafes' coefficients")
    if not data["afternoon"].isin((0, 1)).all():
        return "visits", ("visit times other than 0 and 1: the marginal "
                          "form needs morning and afternoon cells")
    return "marginal", (f"{n_cafes} cafes, more than {MARGINAL_FROM_CAFES}: "
                        "the coefficients integrated out, then drawn")


def fit_pymc(
    data: pd.DataFrame,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
    centered: Any = True,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    *,
    seed: int,
    sampler: str = engines.DEFAULT_SAMPLER,
    level: float = 0.95,
    progressbar: bool = False,
    cores: int | None = None,
    compiled: CompiledCafeModel | None = None,
    target_accept: float = TARGET_ACCEPT,
    likelihood: str = "auto",
) -> Fit:
    """Sample the cafe model and summarise it in the shared :class:`Fit` shape.

    ``sampler="numpyro"`` (default) compiles the model with JAX and samples
    with NumPyro, its chains in parallel; ``sampler="nutpie"`` compiles it
    with numba and samples with nutpie (and can reuse a compilation for new
    waits, see ``compiled``); ``sampler="pymc"`` uses PyMC's own NUTS
    (``cores`` chains in parallel, default PyMC's choice). All three run
    NUTS with ``target_accept`` (default :data:`TARGET_ACCEPT`) and give the
    same Fit. The seed is required; the same seed gives the same draws. A
    quick run for tests is just smaller ``draws`` and ``tune``.

    Tables: ``fixed`` (a_bar -> ``(Intercept)``, b_bar -> ``afternoon``),
    ``varcorr`` (lme4's names), ``ranef`` (offsets alpha_cafe - a_bar and
    beta_cafe - b_bar, summarised over draws), ``coef`` (alpha_cafe,
    beta_cafe); estimate = posterior mean, std_error = posterior SD,
    lower/upper = HDI at ``level``. ``diagnostics`` holds r_hat_max,
    ess_bulk_min, ess_tail_min, divergences, seconds (compile, sampling,
    total), seed, draws, tune, chains and ``priors`` (every prior's
    parameters, the defaults with ``priors`` applied, as
    :func:`resolve_priors` gives them); ``raw`` the InferenceData.

    ``compiled`` (from :func:`compile_cafe_model`, with
    ``sampler="nutpie"``) is a model
    already compiled for these cafes and visit times; the fit then only
    swaps in the waits and samples.

    ``centered=True`` samples the cafe effects themselves, ``False`` the
    standardised ``z`` (see :func:`cafe_model`); a choice made from the data,
    ``centered=multilevel.pooling.choose_parametrisation(data)`` (centred
    when the median cafe is well informed by its own visits, non-centred
    when the cafes are weakly informed, few, or the REML fit is singular),
    samples the form it chose. ``diagnostics["parametrisation"]`` records
    the form, who chose it (``"auto"`` or ``"given"``), why, and the summary
    of the cafes' shrinkage weights behind a choice from the data.

    ``likelihood="cells"`` samples the same posterior from each cafe's
    morning and afternoon sums (see :func:`cafe_model`): each gradient costs
    2 numbers per cafe instead of one per visit, which matters for thousands
    of cafes. ``likelihood="marginal"`` samples only the population
    parameters, with the cafes' coefficients integrated out, and then draws
    the coefficients from their distribution given the data and each draw
    (:func:`draw_cafe_effects`, with ``seed``): the same joint posterior,
    and the number of parameters NUTS moves does not grow with the cafes.
    ``likelihood="auto"`` (default) is ``"visits"`` up to
    :data:`MARGINAL_FROM_CAFES` cafes and ``"marginal"`` above, as
    :func:`choose_likelihood` says. ``diagnostics["likelihood"]`` records
    the form, ``diagnostics["likelihood_reason"]`` why.
    """
    chosen = engines.sampler(sampler)
    choice = None
    if all(hasattr(centered, a) for a in ("centered", "reason", "summary")):
        # a choice made from the data (multilevel.pooling.choose_parametrisation)
        choice = centered
        centered = validate.flag("the choice's centered", choice.centered)
    elif isinstance(centered, str):
        raise InputError(
            f"centered must be True, False or a choice made from the data, "
            f"got {centered!r}; to let the data choose, pass "
            "centered=multilevel.pooling.choose_parametrisation(data)."
        )
    else:
        centered = validate.flag("centered", centered)
    target_accept = validate.share("target_accept", target_accept,
                                   what="a probability", example=TARGET_ACCEPT)
    missing = chosen.missing()
    if missing:
        raise EngineMissingError(
            f"sampler={sampler!r} needs {', '.join(missing)}, which cannot be "
            "imported here; install the versions in requirements.lock "
            f"(pip install {' '.join(missing)}) or pick another sampler."
        )
    seed = validate.seed(seed, why="so the draws can be reproduced")
    draws = validate.whole_number("draws", draws, 1)
    tune = validate.whole_number("tune", tune, 0)
    chains = validate.whole_number(
        "chains", chains, 2, fix="r-hat compares chains; pass chains=4."
    )
    level = validate.interval_level(level)
    if compiled is not None and sampler != "nutpie":
        raise InputError(
            f"compiled= holds a nutpie compilation; sampler={sampler!r} "
            "compiles its own. Pass sampler='nutpie' or leave compiled out."
        )
    if likelihood not in (*LIKELIHOODS, "auto"):
        raise InputError(
            f"likelihood must be 'auto' or one of "
            f"{', '.join(map(repr, LIKELIHOODS))}, got {likelihood!r}: 'auto' "
            f"(the default) integrates the cafes' coefficients out above "
            f"{MARGINAL_FROM_CAFES} cafes; see cafe_model for the three forms."
        )
    if likelihood == "auto":
        likelihood, likelihood_reason = (
            ("visits", "compiled= holds a model of the visits")
            if compiled is not None else choose_likelihood(data, centered)
        )
    else:
        likelihood_reason = "given by the caller"
    if compiled is not None and likelihood != "visits":
        raise InputError(
            "compiled= holds a model with one likelihood term per visit; "
            f"likelihood={likelihood!r} builds another. Leave compiled out or "
            "pass likelihood='visits'."
        )
    model = cafe_model(data, priors=priors, centered=centered,
                       likelihood=likelihood)
    with quiet_sampling():
        if sampler == "nutpie":
            key = _model_key(data, resolve_priors(priors), centered, likelihood)
            prepared = None
            if compiled is not None:
                if compiled.key != _structure_key(
                    data, resolve_priors(priors), centered
                ):
                    raise InputError(
                        "compiled= was compiled for other cafes, visit times, "
                        "priors or parametrisation; call compile_cafe_model "
                        "with these data, priors and centered."
                    )
                prepared = compiled.with_waits(data)
            idata, seconds = _sample_nutpie(
                model, key, draws, tune, chains, seed, progressbar, prepared,
                target_accept,
            )
        else:
            if sampler == "numpyro":
                _prepare_jax(chains)
                idata, seconds = _sample_numpyro(
                    model, draws, tune, chains, seed, progressbar,
                    target_accept,
                )
            else:
                idata, seconds = _sample_pymc(
                    model, draws, tune, chains, seed, progressbar, cores,
                    target_accept,
                )
        method = f"NUTS, {chosen.label}"
    if not centered:
        method += ", non-centred"
    if likelihood == "marginal":
        method += ", cafe effects integrated out"
        ab_cafe = draw_cafe_effects(data, idata.posterior, seed)
        idata.posterior["ab_cafe"] = ab_cafe
        idata.posterior["alpha_cafe"] = ab_cafe.sel(effect=EFFECTS[0], drop=True)
        idata.posterior["beta_cafe"] = ab_cafe.sel(effect=EFFECTS[1], drop=True)

    post = idata.posterior
    fixed = _summary(post["a_bar"], level)
    fixed = pd.concat([fixed, _summary(post["b_bar"], level)], ignore_index=True)
    fixed.index = pd.Index(list(EFFECTS), name="term")

    names = varcorr_names(list(EFFECTS), GROUP)
    vc_draws = [
        post["sigma_cafe"].sel(effect=EFFECTS[0]),
        post["rho"],
        post["sigma_cafe"].sel(effect=EFFECTS[1]),
        post["sigma_within"],
    ]
    varcorr = pd.concat(
        [_summary(d.rename("v"), level) for d in vc_draws], ignore_index=True
    )
    varcorr.index = pd.Index(names, name="name")
    varcorr = varcorr[["estimate", "lower", "upper", "std_error"]]

    offsets = unbake(idata)
    ranef = _group_table(
        {EFFECTS[0]: offsets["a_cafe"], EFFECTS[1]: offsets["b_cafe"]}, level
    )
    coef = _group_table(
        {EFFECTS[0]: post["alpha_cafe"], EFFECTS[1]: post["beta_cafe"]}, level
    )

    diagnostics = _diagnostics(idata)
    diagnostics.update(
        seconds=seconds, seed=seed, draws=draws, tune=tune, chains=chains,
        sampler=sampler, centered=bool(centered),
        target_accept=target_accept, priors=resolve_priors(priors),
        likelihood=likelihood, likelihood_reason=likelihood_reason,
        parametrisation=_parametrisation_record(centered, choice),
    )
    messages = convergence_problems(diagnostics)
    return Fit(
        engine=ENGINE.label,
        method=method,
        formula=CAFE_FORMULA,
        fixed=fixed,
        varcorr=varcorr,
        ranef=ranef,
        coef=coef,
        criterion=None,
        interval="HDI",
        level=float(level),
        nobs=len(data),
        ngroups=int(post.sizes[GROUP]),
        messages=messages,
        diagnostics=diagnostics,
        raw=idata,
    )
