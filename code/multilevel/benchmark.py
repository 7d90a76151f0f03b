"""How fit time grows with the number of cafes, for every engine.

Run it as a module::

    python -m multilevel.benchmark --out benchmarks
    python -m multilevel.benchmark --out /tmp/b --quick     # a smoke run

For each size (number of cafes J, 10 visits each, ``simulate_cafes`` with one
seed) it times, in one process and one run, so every ratio compares like
with like:

========================  ====================================================
engine                    what is timed
========================  ====================================================
``lme4``                  ``fit_lmer(..., profile=False)``: R's ``lmer`` plus
                          the rpy2 transfer and the tables (Wald intervals)
``lme4_profile``          ``fit_lmer(...)`` with profile intervals (the
                          default)
``lme4_in_R``             ``lmer()`` alone, timed inside R (``system.time``)
                          on data already in R
``fit_reml``              ``fit_reml(..., intervals="none")`` (NumPy, this
                          package)
``statsmodels``           ``fit_statsmodels(...)`` (statsmodels' MixedLM)
``numpyro_noncentered``   ``fit_pymc`` of the non-centred form end to end in
                          this process (the default sampler, NumPyro): the
                          first fit of this shape, so JAX traces and compiles
                          its program
``numpyro_noncentered_``  the same fit again: JAX finds the compiled program
``warm``                  in its cache and only traces it; run when the first
                          fit took at most ``WARM_MAX_SECONDS``
``numpyro_centered``      the same for the centred form
``numpyro_centered_warm`` its second fit, as for the non-centred form
``numpyro_marginal``      ``fit_pymc(..., likelihood="marginal")``: the
                          cafes' coefficients integrated out, then drawn;
                          what ``fit_pymc`` fits by default above
                          ``MARGINAL_FROM_CAFES`` cafes
``numpyro_marginal_warm`` its second fit
``nutpie_compile``        ``nutpie.compile_pymc_model(cafe_model(data, ...))``
                          of the data's form
``nutpie_sampling``       ``nutpie.sample``: 4 chains x 1000 draws after 1000
                          tune
``pymc_default``          ``pm.sample`` (PyMC's own NUTS, same draws) of the
                          data's form, compile included, only up to
                          ``--default-sampler-max-cafes``
========================  ====================================================

At each size the data choose the form,
``multilevel.pooling.choose_parametrisation(data)``, recorded in the
provenance (``data_form``). NumPyro fits that form as a reader would
(``fit_pymc(data, centered=choice)``), whatever the cap, up to
``multilevel.engines.MARGINAL_FROM_CAFES`` cafes; above, ``fit_pymc``
integrates the coefficients out by default, and the marginal fit, which
runs at every size whatever the cap, is the reader's. The
other form runs only up to ``--other-form-max-cafes`` (default
``OTHER_FORM_MAX_CAFES``, 200) and within the cap; above that size its row
says ``skipped: not the data's form, above other_form_max_cafes``. The
wrong form can need tens of minutes where a smaller size predicts a few
(its leapfrog steps per draw grow with the number of cafes), so no
prediction from smaller sizes is trusted to stop it.

Each engine is warmed up once (untimed) on a small data set, so one-time
costs (starting R, loading lme4, numba's first JIT) are not charged to the
first size; the cold first nutpie compile is recorded in the provenance.
The benchmark points the compilation caches (JAX's, numba's, PyTensor's) at
a new empty folder before it imports PyMC, so nothing compiled by an earlier
run is reused. For each NumPyro fit the provenance records its diagnostics,
the mean number of leapfrog steps per draw, the measured cost of one
gradient of the log posterior (JAX, compiled, median over repeated calls)
and the floor they imply: gradient seconds x leapfrog steps of all chains
(tuning iterations counted at the kept draws' mean) / parallel chains (the
smaller of chains and cores), the time of the arithmetic alone.
A fit that takes under 1 s is repeated 5 times, under 10 s 3 times, and the
median is kept. Before a fit (except NumPyro's of the data's form), its
time is predicted from the engine's previous size by linear growth in J
(optimistic for anything superlinear); if the prediction exceeds ``--cap``
seconds the fit is not run and the row says ``skipped: over cap``.
Nothing is dropped silently: every engine has a row at every size.

``--samplers`` times instead the samplers of ``fit_pymc`` side by side on
one size (20 cafes by default), each end to end in a fresh process (start
Python, import, build, compile, sample, summarise) as a reader runs it:
first with empty compilation caches (``cold``), then twice reusing them
(``warm``). It writes ``samplers.csv`` (sampler, run, seconds end to end
and of sampling alone, divergences, worst r-hat, least bulk ESS, ESS per
second, the load average around the run) and ``samplers.json``
(provenance and each sampler's ratios to nutpie).

Outputs in ``--out``: ``results.csv`` (engine, n_cafes, n_obs, seconds,
repeats, status; written after every row) and ``provenance.json`` (command,
versions, R and lme4, git commit, date, cores, load average before and after,
settings, per-row details such as MCMC diagnostics, and log-log slopes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multilevel import engines, provenance
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.lmer import fit_lmer, r_available
from multilevel.mixedlm import fit_statsmodels
from multilevel.pooling import choose_parametrisation
from multilevel.reml import fit_reml

__all__ = [
    "COLUMNS",
    "ENGINES",
    "GROUPS",
    "OTHER_FORM_MAX_CAFES",
    "OTHER_FORM_STATUS",
    "SIZES",
    "GRADIENT_LOOP",
    "QUICK_SIZES",
    "STATUSES",
    "SAMPLER_COLUMNS",
    "WARM_MAX_SECONDS",
    "gradient_seconds",
    "sampling_floor",
    "fit_seconds",
    "loglog_slope",
    "mcmc_costs",
    "main",
    "numpyro_fits",
    "plan",
    "run_grid",
    "run_benchmark",
    "run_samplers",
    "sampler_summary",
]

#: Columns of results.csv, in order.
COLUMNS = ("engine", "n_cafes", "n_obs", "seconds", "repeats", "status")

#: What is timed (the ``engine`` column of results.csv), in the order it
#: runs at each size: each engine's ``timings`` in the registry.
ENGINES = tuple(t for e in engines.ENGINES for t in e.timings)

#: The statuses a row can have (besides ``error: <message>``).
STATUSES = (
    "ok",
    "skipped: over cap",
    "skipped: quick mode",
    "skipped: R not available",
    "skipped: numpyro_noncentered not run at this size",
    "skipped: numpyro_centered not run at this size",
    "skipped: not the data's form, above other_form_max_cafes",
)
#: The status of the form the data do not choose, at a size above
#: ``other_form_max_cafes``.
OTHER_FORM_STATUS = STATUSES[-1]

#: Numbers of cafes. At 10,000 cafes (ten visits a cafe) only the marginal
#: NumPyro fit runs among the Bayesian ones: the centred fit, predicted
#: over the cap from 2,000 cafes, was once still sampling after 45 min on 2
#: cores (with the cells' likelihood it ran out of 24 GB).
SIZES = (20, 200, 2000, 10000)
QUICK_SIZES = (10, 20)
N_VISITS = 10
SEED = 14
CAP_SECONDS = 300.0
#: A second (warm) NumPyro fit is timed when the first took at most this.
WARM_MAX_SECONDS = 120.0
#: PyMC's default sampler needs about a minute at 20 cafes on a shared
#: 2-core machine; by linear growth 200 cafes would need about 10 min, over
#: the cap, so it runs only up to this size.
DEFAULT_SAMPLER_MAX_CAFES = 20
#: The NumPyro fit of the form the data do not choose runs only up to this
#: many cafes. It shows what the choice saves where that is cheap to see;
#: past it, the wrong form can take tens of minutes (with ten visits a cafe,
#: the non-centred form at 2,000 cafes was still sampling after 15 min, where
#: linear growth from 200 cafes predicted 4 min), which no prediction from
#: smaller sizes foresees, since its leapfrog steps per draw grow with J.
OTHER_FORM_MAX_CAFES = 200
MCMC = {"chains": 4, "draws": 1000, "tune": 1000}
QUICK_MCMC = {"chains": 4, "draws": 100, "tune": 100}
#: What quick mode leaves out besides second fits and the NumPyro fit of
#: the form the data do not choose: profiles, the marginal NumPyro fit,
#: nutpie, PyMC's own sampler.
QUICK_SKIPS = ("lme4_profile", "numpyro_marginal", "nutpie", "pymc_default")



# --------------------------------------------------------------------------
# timing


def _repeats_for(first: float) -> int:
    """How many runs in all, given the first run's seconds."""
    if first < 1.0:
        return 5
    if first < 10.0:
        return 3
    return 1


def _measure(
    run: Callable[[], dict[str, float]], quick: bool
) -> tuple[dict[str, float], int]:
    """Median seconds per part of ``run`` (which returns seconds per part).

    The first run decides the number of repeats from its total time.
    """
    first = run()
    repeats = 1 if quick else _repeats_for(sum(first.values()))
    runs = [first] + [run() for _ in range(repeats - 1)]
    return {k: float(np.median([r[k] for r in runs])) for k in first}, repeats


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def loglog_slope(n_cafes: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(seconds) on log(n_cafes).

    1 means time proportional to the number of groups, 2 quadratic.
    """
    x = np.log(np.asarray(n_cafes, dtype=float))
    y = np.log(np.asarray(seconds, dtype=float))
    if x.size < 2 or np.ptp(x) == 0:
        raise InputError("a slope needs times at two or more different sizes.")
    return float(np.polyfit(x, y, 1)[0])


# --------------------------------------------------------------------------
# engines: each returns a function of the data that runs one fit and
# returns seconds per part (and may fill ``details``)


def _lme4_in_r_timer() -> Callable[[pd.DataFrame], float]:
    """Time ``lmer`` inside R: data sent to R first, outside the clock."""
    import rpy2.robjects as ro
    from rpy2.robjects import default_converter, numpy2ri
    from rpy2.robjects.conversion import localconverter

    timer = ro.r(
        """
        function(cafe, afternoon, wait) {
          suppressMessages(library(lme4))
          d <- data.frame(cafe = factor(cafe), afternoon = afternoon,
                          wait = wait)
          t <- system.time(
            m <- lmer(wait ~ 1 + afternoon + (1 + afternoon | cafe), data = d,
                      REML = TRUE))
          unname(t[["elapsed"]])
        }
        """
    )

    def run(data: pd.DataFrame) -> float:
        with localconverter(default_converter + numpy2ri.converter):
            out = timer(
                data["cafe"].to_numpy(np.int64).astype(str),
                data["afternoon"].to_numpy(float),
                data["wait"].to_numpy(float),
            )
        # R's clock has 1 ms resolution; a 0 would break the log scale
        return max(float(np.asarray(out)[0]), 1e-3)

    return run


def _mcmc_summary(idata: Any) -> dict[str, Any]:
    """Worst r-hat, least bulk ESS, divergences (scalar parameters) and the
    mean number of leapfrog steps per draw."""
    import arviz as az  # after multilevel.bayes, which hushes its import warning

    post = idata.posterior[["a_bar", "b_bar", "sigma_cafe", "rho", "sigma_within"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(post)
        ess = az.ess(post, method="bulk")
    stats = idata.sample_stats
    depth = "depth" if "depth" in stats else "tree_depth"  # nutpie, PyMC
    return {
        "r_hat_max": float(max(float(rhat[v].max()) for v in rhat.data_vars)),
        "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
        "divergences": int(stats["diverging"].sum()),
        # the cost of a draw: leapfrog steps, each one gradient evaluation
        "leapfrog_steps_mean": (
            float(stats["n_steps"].mean()) if "n_steps" in stats else math.nan
        ),
        "tree_depth_max": int(stats[depth].max()) if depth in stats else None,
    }


def _fresh_compile_caches(folder: Path) -> dict[str, Any]:
    """Point every compilation cache at ``folder``, before PyMC is imported.

    Returns what was done, for the provenance: in a process that imported
    PyMC or JAX already the caches are fixed and nothing changes.
    """
    if "multilevel.bayes" in sys.modules or "jax" in sys.modules:
        return {"compile_cache": "as the process had set it (PyMC was "
                "imported before the benchmark started)"}
    for name in _CACHE_VARS:
        os.environ.pop(name, None)
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",")
             if f and "compiledir" not in f]
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    os.environ["MULTILEVEL_COMPILE_CACHE"] = str(folder)
    return {"compile_cache": "a new empty folder for this run"}


#: Gradient evaluations in each timed call of :func:`gradient_seconds`.
GRADIENT_LOOP = 200


def gradient_seconds(model: Any, min_seconds: float = 0.5,
                     per_call: int = GRADIENT_LOOP) -> float:
    """Seconds of one evaluation of the log posterior and its gradient.

    The model's JAX translation, as NumPyro runs it (``jax.value_and_grad``
    of PyMC's jaxified log density), evaluated ``per_call`` times in one
    compiled loop, each evaluation at a point moved by the gradient before
    (so none can be skipped), as the sampler's compiled loop runs them: a
    call from Python costs about 0.2 ms of dispatch, more than the gradient
    of a small model, so timing single calls would measure the dispatch.
    The median over calls repeated for at least ``min_seconds`` (and at
    least 5), after a first call that compiles, divided by ``per_call``.
    """
    import jax
    from pymc.sampling.jax import get_jaxified_logp

    value_and_grad = jax.value_and_grad(get_jaxified_logp(model))

    def step(_, carry):
        x, total = carry
        value, grad = value_and_grad(x)
        return [xi - 1e-9 * gi for xi, gi in zip(x, grad, strict=True)], total + value

    loop = jax.jit(lambda x: jax.lax.fori_loop(0, per_call, step, (x, 0.0)))
    point = model.initial_point()
    x = [jax.numpy.asarray(point[v.name]) for v in model.value_vars]
    jax.block_until_ready(loop(x))  # compiles
    times: list[float] = []
    while sum(times) < min_seconds or len(times) < 5:
        t0 = time.perf_counter()
        jax.block_until_ready(loop(x))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / per_call


def sampling_floor(
    gradient: float, steps_per_draw: float, chains: int, draws: int,
    tune: int, cores: int,
) -> float:
    """Seconds NUTS needs for its arithmetic alone.

    One gradient per leapfrog step: ``gradient`` seconds x the steps of all
    chains (``steps_per_draw`` for each of the ``draws + tune`` iterations)
    / the chains that run at once (at most one per core).
    """
    for name, value in (("gradient", gradient),
                        ("steps_per_draw", steps_per_draw)):
        if not (isinstance(value, (int, float)) and value > 0
                and math.isfinite(value)):
            raise InputError(f"{name} must be a positive number, got {value!r}.")
    for name, value in (("chains", chains), ("draws", draws), ("cores", cores)):
        if not (isinstance(value, int) and value >= 1):
            raise InputError(f"{name} must be a whole number >= 1, got {value!r}.")
    if not (isinstance(tune, int) and tune >= 0):
        raise InputError(f"tune must be a whole number >= 0, got {tune!r}.")
    parallel = min(chains, cores)
    return gradient * steps_per_draw * chains * (draws + tune) / parallel


# --------------------------------------------------------------------------
# which fit runs at which size


#: The rows timed together, in the order they run at each size: a group's
#: runner returns the seconds of each of its rows.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lme4", ("lme4",)),
    ("lme4_profile", ("lme4_profile",)),
    ("lme4_in_R", ("lme4_in_R",)),
    ("fit_reml", ("fit_reml",)),
    ("statsmodels", ("statsmodels",)),
    ("numpyro_noncentered", ("numpyro_noncentered",)),
    ("numpyro_noncentered_warm", ("numpyro_noncentered_warm",)),
    ("numpyro_centered", ("numpyro_centered",)),
    ("numpyro_centered_warm", ("numpyro_centered_warm",)),
    ("numpyro_marginal", ("numpyro_marginal",)),
    ("numpyro_marginal_warm", ("numpyro_marginal_warm",)),
    ("nutpie", ("nutpie_compile", "nutpie_sampling")),
    ("pymc_default", ("pymc_default",)),
)


def _numpyro_form(group: str) -> bool | None:
    """True for a centred NumPyro group, False for a non-centred one, None
    for any other engine."""
    if group.startswith("numpyro_noncentered"):
        return False
    if group.startswith("numpyro_centered"):
        return True
    return None


def plan(
    group: str,
    n_cafes: int,
    data_centered: bool,
    last: dict[str, tuple[int, float]],
    *,
    quick: bool = False,
    cap: float = CAP_SECONDS,
    other_form_max_cafes: int = OTHER_FORM_MAX_CAFES,
    default_sampler_max_cafes: int = DEFAULT_SAMPLER_MAX_CAFES,
) -> tuple[str | None, float | None]:
    """Whether ``group`` runs at ``n_cafes`` cafes: ``(None, None)`` if it
    runs, else its skip status and, for a skip over the cap, the predicted
    seconds.

    ``data_centered`` is the form the data choose at this size
    (:func:`multilevel.pooling.choose_parametrisation`); ``last`` maps each
    row already measured to its latest ``(n_cafes, seconds)``. The
    marginal NumPyro fit runs at every size, whatever the cap, and so does
    the NumPyro fit of the data's form up to
    :data:`~multilevel.engines.MARGINAL_FROM_CAFES` cafes (where it is what
    ``fit_pymc`` fits by default); the other form only up to
    ``other_form_max_cafes``; these beyond, and every other engine, only
    where linear growth from its previous size predicts at most ``cap``; a
    second (warm) fit only after a first of at most :data:`WARM_MAX_SECONDS`.
    Quick mode runs the data's form once and leaves out profiles, second
    fits, the other form, the marginal form, nutpie and PyMC's default
    sampler.
    """
    form = _numpyro_form(group)
    first = group.removesuffix("_warm")
    if quick and (group in QUICK_SKIPS or group.endswith("_warm")
                  or (form is not None and form != data_centered)):
        return "skipped: quick mode", None
    if group.endswith("_warm"):
        if first not in last or last[first][0] != n_cafes:
            return f"skipped: {first} not run at this size", None
        if last[first][1] > WARM_MAX_SECONDS:
            return "skipped: over cap", last[first][1]
        return None, None
    if group == "numpyro_marginal":
        return None, None  # the default above MARGINAL_FROM_CAFES: every size
    if (form is not None and form == data_centered
            and n_cafes <= engines.MARGINAL_FROM_CAFES):
        return None, None  # the data's form, while it is fit_pymc's default
    if (form is not None and form != data_centered
            and n_cafes > other_form_max_cafes):
        return OTHER_FORM_STATUS, None
    timed = dict(GROUPS)[group]
    predicted = 0.0
    for e in timed:
        if e in last:
            J0, s0 = last[e]
            # compile time does not grow with J; everything else linearly
            predicted += s0 if e == "nutpie_compile" else s0 * n_cafes / J0
    if group == "pymc_default" and n_cafes > default_sampler_max_cafes:
        return "skipped: over cap", predicted
    if predicted > cap:
        return "skipped: over cap", predicted
    return None, None


def run_grid(
    sizes: Sequence[int],
    runners: dict[str, Callable[[pd.DataFrame, Any], dict[str, float]]],
    *,
    simulate: Callable[[int], pd.DataFrame],
    choose: Callable[[pd.DataFrame], Any],
    add: Callable[[dict[str, Any]], None],
    quick: bool = False,
    cap: float = CAP_SECONDS,
    other_form_max_cafes: int = OTHER_FORM_MAX_CAFES,
    default_sampler_max_cafes: int = DEFAULT_SAMPLER_MAX_CAFES,
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Run every group of :data:`GROUPS` at every size, as :func:`plan` says.

    ``simulate(J)`` gives the data of ``J`` cafes; ``choose(data)`` the
    data's form (anything with ``centered``, ``reason`` and ``summary``, as
    :func:`multilevel.pooling.choose_parametrisation` returns), which each
    runner, ``runners[group](data, choice)``, is given; ``add(row)``
    receives each row of results.csv (a group missing from ``runners`` is
    ``skipped: R not available``; a runner that raises gives an ``error:``
    row). Returns the predicted seconds of each fit skipped over the cap
    (keyed ``group@J``) and, keyed by ``J`` as text, the data's form, why,
    and the seconds the choice took (``choose_seconds``, a REML fit and each
    cafe's shrinkage weight, timed once and outside every runner).
    """
    last: dict[str, tuple[int, float]] = {}
    predictions: dict[str, float] = {}
    forms: dict[str, dict[str, Any]] = {}
    for J in sizes:
        data = simulate(J)
        n = len(data)
        t0 = time.perf_counter()
        choice = choose(data)
        choose_seconds = time.perf_counter() - t0
        centered = bool(choice.centered)
        engine = "numpyro_centered" if centered else "numpyro_noncentered"
        forms[str(J)] = {
            "form": "centred" if centered else "non-centred",
            "engine": engine,
            # what fit_pymc(data, centered=choice) fits at this size
            "default_engine": (engine if J <= engines.MARGINAL_FROM_CAFES
                               else "numpyro_marginal"),
            "choose_seconds": choose_seconds,
            "reason": choice.reason, **choice.summary,
        }

        def row(engine: str, seconds: float, reps: int, status: str,
                J: int = J, n: int = n) -> dict[str, Any]:
            return {"engine": engine, "n_cafes": J, "n_obs": n,
                    "seconds": seconds, "repeats": reps, "status": status}

        for group, timed in GROUPS:
            if group not in runners:
                status, guess = "skipped: R not available", None
            else:
                status, guess = plan(
                    group, J, centered, last, quick=quick, cap=cap,
                    other_form_max_cafes=other_form_max_cafes,
                    default_sampler_max_cafes=default_sampler_max_cafes,
                )
            if guess is not None:
                predictions[f"{group}@{J}"] = guess
            if status is not None:
                for e in timed:
                    add(row(e, math.nan, 0, status))
                continue
            try:
                seconds, reps = _measure(
                    lambda g=group, d=data, c=choice: runners[g](d, c),
                    quick or group.startswith("numpyro"),
                )
            except Exception as exc:  # recorded, not hidden
                msg = " ".join(str(exc).split())[:120]
                for e in timed:
                    add(row(e, math.nan, 0,
                            f"error: {type(exc).__name__}: {msg}"))
                continue
            for e in timed:
                add(row(e, seconds[e], reps, "ok"))
                last[e] = (J, seconds[e])
    return predictions, forms


# --------------------------------------------------------------------------
# the run


def _provenance_base(argv: Sequence[str]) -> dict[str, Any]:
    prov = provenance.record("multilevel.benchmark", argv)
    # The same values under the flat names that files written before the
    # shared record used, which the performance chapter still reads.
    prov.update(
        python=prov["machine"]["python"],
        platform=prov["machine"]["platform"],
        git_commit=prov["git"]["commit"],
        git_code_dirty=prov["git"]["code_dirty"],
        cores=prov["machine"]["cores"],
        threads_env=prov["machine"]["threads_env"],
        loadavg_before=list(os.getloadavg()),
    )
    return prov


def run_benchmark(
    out: Path,
    sizes: Sequence[int] = SIZES,
    *,
    quick: bool = False,
    cap: float = CAP_SECONDS,
    seed: int = SEED,
    default_sampler_max_cafes: int = DEFAULT_SAMPLER_MAX_CAFES,
    other_form_max_cafes: int = OTHER_FORM_MAX_CAFES,
    argv: Sequence[str] = (),
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> pd.DataFrame:
    """Time every engine at every size; write results.csv and provenance.json.

    Returns the results table.
    """
    sizes = sorted({int(s) for s in sizes})
    if not sizes or sizes[0] < 2:
        raise InputError(f"sizes must be numbers of cafes >= 2, got {sizes!r}.")
    if not cap > 0:
        raise InputError(f"cap must be a positive number of seconds, got {cap!r}.")
    if not (isinstance(other_form_max_cafes, int) and other_form_max_cafes >= 0):
        raise InputError(
            "other_form_max_cafes must be a whole number of cafes >= 0 (0: "
            f"never the other form), got {other_form_max_cafes!r}."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mcmc = QUICK_MCMC if quick else MCMC

    prov = _provenance_base(argv)
    prov["settings"] = {
        "sizes": sizes, "n_visits": N_VISITS, "seed": seed, "quick": quick,
        "cap_seconds": cap, "mcmc": mcmc,
        "default_sampler_max_cafes": 0 if quick else default_sampler_max_cafes,
        "repeats_rule": "5 runs if the first takes < 1 s, 3 if < 10 s, else 1;"
        " median kept" if not quick else "1 run (quick mode)",
        "skip_rule": "skip when previous size's seconds x (J / J_previous) > cap"
        " (not for the marginal NumPyro fit, nor for the data's form up to "
        f"{engines.MARGINAL_FROM_CAFES} cafes)",
        "warm_rule": "a second NumPyro fit when the first took at most "
        f"{WARM_MAX_SECONDS:.0f} s",
        "other_form_max_cafes": other_form_max_cafes,
        "form_rule": "at each size the data choose the form "
        "(multilevel.pooling.choose_parametrisation; recorded in data_form): "
        "NumPyro fits that form whatever the cap up to "
        f"{engines.MARGINAL_FROM_CAFES} cafes (above, within the cap), the "
        f"other form only up to {other_form_max_cafes} cafes and within the "
        "cap, and the marginal form (the cafes' coefficients integrated out, "
        "fit_pymc's default above that size) at every size; nutpie and "
        "PyMC's own sampler fit the data's form",
        "marginal_from_cafes": engines.MARGINAL_FROM_CAFES,
    }
    r_ok = r_available()

    # ---- engines -------------------------------------------------------
    runners: dict[str, Callable[[pd.DataFrame, Any], dict[str, float]]] = {}
    if r_ok:
        in_r = _lme4_in_r_timer()
        runners["lme4"] = lambda d, c: {
            "lme4": _timed(lambda: fit_lmer(d, CAFE_FORMULA, profile=False))
        }
        runners["lme4_profile"] = lambda d, c: {
            "lme4_profile": _timed(lambda: fit_lmer(d, CAFE_FORMULA))
        }
        runners["lme4_in_R"] = lambda d, c: {"lme4_in_R": in_r(d)}
    runners["fit_reml"] = lambda d, c: {
        "fit_reml": _timed(lambda: fit_reml(d, CAFE_FORMULA, intervals="none"))
    }
    runners["statsmodels"] = lambda d, c: {
        "statsmodels": _timed(lambda: fit_statsmodels(d, CAFE_FORMULA))
    }

    cache_dir = tempfile.TemporaryDirectory(prefix="benchmark-caches-")
    # quick mode (a smoke test) keeps the caches the process was given
    prov["compile_caches"] = (
        {"compile_cache": "the shared one (quick mode)"} if quick
        else _fresh_compile_caches(Path(cache_dir.name))
    )
    import nutpie
    import pymc as pm

    from multilevel.bayes import cafe_model, fit_pymc, quiet_sampling

    details: dict[str, dict[str, Any]] = {}
    cores = os.cpu_count() or 1

    def numpyro_runner(centered: bool, warm: bool, likelihood: str = "visits"):
        form = ("marginal" if likelihood == "marginal"
                else "centered" if centered else "noncentered")
        name = f"numpyro_{form}" + ("_warm" if warm else "")

        def run(d: pd.DataFrame, choice: Any) -> dict[str, float]:
            # the data's form is fitted as a reader would, from the choice
            data_form = (likelihood == "visits"
                         and bool(choice.centered) == centered)
            t0 = time.perf_counter()
            fit = fit_pymc(d, centered=choice if data_form else centered,
                           seed=seed, likelihood=likelihood, **mcmc)
            total = time.perf_counter() - t0
            J = d["cafe"].nunique()
            info = _mcmc_summary(fit.raw)
            info["form"] = fit.diagnostics["parametrisation"]["form"]
            info["likelihood"] = fit.diagnostics["likelihood"]
            info["data_form"] = data_form
            # fit_pymc's own diagnostics cover every quantity, per cafe too
            info.update(
                r_hat_max_all=fit.diagnostics["r_hat_max"],
                ess_bulk_min_all=fit.diagnostics["ess_bulk_min"],
                sampler_seconds=fit.diagnostics["seconds"]["sampling"],
            )
            if not warm:
                with quiet_sampling():
                    grad = gradient_seconds(cafe_model(
                        d, centered=centered, likelihood=likelihood))
                info["gradient_seconds"] = grad
                info["floor_seconds"] = sampling_floor(
                    grad, info["leapfrog_steps_mean"], mcmc["chains"],
                    mcmc["draws"], mcmc["tune"], cores,
                )
            details[f"{name}@{J}"] = info
            del fit
            return {name: total}

        return run

    for centered in (False, True):
        for warm in (False, True):
            runner = numpyro_runner(centered, warm)
            form = "centered" if centered else "noncentered"
            runners[f"numpyro_{form}" + ("_warm" if warm else "")] = runner
    for warm in (False, True):
        runners["numpyro_marginal" + ("_warm" if warm else "")] = (
            numpyro_runner(True, warm, likelihood="marginal"))

    def nutpie_run(d: pd.DataFrame, choice: Any) -> dict[str, float]:
        model = cafe_model(d, centered=bool(choice.centered))
        with quiet_sampling():
            t0 = time.perf_counter()
            compiled = nutpie.compile_pymc_model(model)
            t1 = time.perf_counter()
            idata = nutpie.sample(
                compiled, seed=seed, progress_bar=False, save_warmup=False,
                **mcmc,
            )
            t2 = time.perf_counter()
        info = _mcmc_summary(idata)
        info["form"] = "centred" if choice.centered else "non-centred"
        details[f"nutpie@{d['cafe'].nunique()}"] = info
        return {"nutpie_compile": t1 - t0, "nutpie_sampling": t2 - t1}

    def pymc_run(d: pd.DataFrame, choice: Any) -> dict[str, float]:
        model = cafe_model(d, centered=bool(choice.centered))
        with quiet_sampling(), model:
            t0 = time.perf_counter()
            idata = pm.sample(
                random_seed=seed, progressbar=False,
                compute_convergence_checks=False, **mcmc,
            )
            t1 = time.perf_counter()
        info = _mcmc_summary(idata)
        info["form"] = "centred" if choice.centered else "non-centred"
        details[f"pymc_default@{d['cafe'].nunique()}"] = info
        return {"pymc_default": t1 - t0}

    runners["nutpie"] = nutpie_run
    runners["pymc_default"] = pymc_run

    # ---- warm-up (untimed in the results) ------------------------------
    warm = simulate_cafes(n_cafes=5, n_visits=N_VISITS, seed=seed).data
    warm_choice = choose_parametrisation(warm)  # non-centred: 5 cafes
    warm_seconds = {}
    # quick mode skips nutpie's warm-up (a compile costs tens of seconds)
    warm_up = ("lme4", "lme4_in_R", "fit_reml", "statsmodels")
    warm_up += () if quick else ("numpyro_noncentered", "nutpie")
    for name in warm_up:
        if name in runners:
            t = _timed(lambda name=name: runners[name](warm, warm_choice))
            warm_seconds[name] = t
            log(f"warm-up {name}: {t:.2f} s")
    prov["warmup_seconds_5_cafes"] = warm_seconds
    prov["warmup_note"] = (
        "each engine fitted once on 5 cafes before timing; the nutpie warm-up "
        "includes numba's first JIT in this process (a cold start), the "
        "NumPyro one JAX's first compilation"
        + (" (quick mode: no NumPyro or nutpie warm-up)" if quick else "")
    )

    # ---- the grid --------------------------------------------------------
    rows: list[dict[str, Any]] = []

    def write() -> None:
        pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(
            out / "results.csv", index=False
        )

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        shown = "" if math.isnan(row["seconds"]) else f"{row['seconds']:.3f} s "
        log(f"{row['n_cafes']:>6} cafes  {row['engine']:<16} {shown}"
            f"{row['status']}")
        write()

    predictions, forms = run_grid(
        sizes, runners,
        simulate=lambda J: simulate_cafes(
            n_cafes=J, n_visits=N_VISITS, seed=seed).data,
        choose=choose_parametrisation, add=add, quick=quick, cap=cap,
        other_form_max_cafes=other_form_max_cafes,
        default_sampler_max_cafes=default_sampler_max_cafes,
    )
    prov["data_form"] = forms
    results = pd.DataFrame(rows, columns=list(COLUMNS))
    write()

    # ---- summaries ---------------------------------------------------------
    slopes = {}
    for engine, part in results[results["status"] == "ok"].groupby("engine"):
        if part["n_cafes"].nunique() >= 2:
            slope = loglog_slope(part["n_cafes"], part["seconds"])
            slopes[engine] = {"all_sizes": slope}
            big = part[part["n_cafes"] >= 1000]
            if big["n_cafes"].nunique() >= 2:
                slopes[engine]["n_cafes_ge_1000"] = loglog_slope(
                    big["n_cafes"], big["seconds"]
                )
    prov["loglog_slopes"] = slopes
    prov["fit_reml_loglog_slope"] = slopes.get("fit_reml")
    prov["predicted_seconds_of_skipped"] = predictions
    prov["mcmc_diagnostics"] = details
    prov["loadavg_after"] = list(os.getloadavg())
    prov["date_finished"] = datetime.datetime.now(datetime.UTC).isoformat(
        timespec="seconds"
    )
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    cache_dir.cleanup()
    return results


# --------------------------------------------------------------------------
# the samplers side by side, each in a fresh process

#: Columns of samplers.csv, in order.
SAMPLER_COLUMNS = (
    "sampler", "n_cafes", "run", "total_seconds", "sampling_seconds",
    "divergences", "r_hat_max", "ess_bulk_min", "ess_per_second",
    "ess_per_sampling_second", "load_before", "load_after", "status",
)
#: Runs per sampler: empty caches first, then reusing them.
SAMPLER_RUNS = ("cold", "warm", "warm")

#: What the fresh process runs: what a reader types, then the diagnostics.
_ONE_FIT = """
import json, sys
from multilevel import fit_pymc, simulate_cafes
sampler, n_cafes, seed, data_seed = sys.argv[1], *map(int, sys.argv[2:5])
data = simulate_cafes(n_cafes=n_cafes, seed=data_seed).data
fit = fit_pymc(data, seed=seed, sampler=sampler, cores=2)
d = fit.diagnostics
print(json.dumps({k: d[k] for k in
      ("divergences", "r_hat_max", "ess_bulk_min", "seconds")}))
"""

#: Variables that name compilation caches: cleared in the fresh process, so
#: each run uses exactly the folder it is given.
_CACHE_VARS = ("NUMBA_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")


def _fresh_fit(
    sampler: str, n_cafes: int, seed: int, cache: Path, timeout: float
) -> dict[str, Any]:
    """One fit in a new Python process whose caches live in ``cache``."""
    env = {k: v for k, v in os.environ.items() if k not in _CACHE_VARS}
    env["MULTILEVEL_COMPILE_CACHE"] = str(cache)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f and "compiledir" not in f]
    env["PYTENSOR_FLAGS"] = ",".join(flags)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _ONE_FIT, sampler, str(n_cafes), str(seed),
         str(SEED)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    total = time.perf_counter() - t0
    row: dict[str, Any] = {
        "total_seconds": total, "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        row["status"] = f"error: exit {proc.returncode}: {last[:120]}"
        return row
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    sampling = got["seconds"].get("sampling")
    ess = float(got["ess_bulk_min"])
    row.update(
        sampling_seconds=math.nan if sampling is None else float(sampling),
        divergences=int(got["divergences"]),
        r_hat_max=float(got["r_hat_max"]),
        ess_bulk_min=ess,
        ess_per_second=ess / total,
        ess_per_sampling_second=(
            math.nan if sampling is None else ess / float(sampling)
        ),
        status="ok",
    )
    return row


def _versions(packages: Sequence[str]) -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def run_samplers(
    out: Path,
    samplers: Sequence[str] | None = None,
    n_cafes: int = 20,
    *,
    seed: int = 2024,
    timeout: float = 900.0,
    argv: Sequence[str] = (),
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> pd.DataFrame:
    """Time each sampler cold and warm in fresh processes; write
    samplers.csv and samplers.json to ``out``. Returns the table."""
    samplers = engines.sampler_names() if samplers is None else samplers
    for name in samplers:
        engines.sampler(name)  # an unknown name is refused before any run
    if n_cafes < 2:
        raise InputError(f"n_cafes must be >= 2, got {n_cafes!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prov = _provenance_base(argv)
    prov["sampler_versions"] = _versions(
        ("nutpie", "numba", "pymc", "pytensor", "jax", "jaxlib", "numpyro")
    )
    prov["settings"] = {
        "n_cafes": n_cafes, "n_visits": N_VISITS, "data_seed": SEED,
        "sampler_seed": seed, "mcmc": MCMC, "runs": list(SAMPLER_RUNS),
        "what_is_timed": "a fresh Python process: import multilevel, "
        "simulate_cafes, fit_pymc(data, seed, sampler) with its summaries; "
        "cold = empty compilation caches, warm = the caches of the runs "
        "before",
    }
    rows: list[dict[str, Any]] = []

    def write() -> None:
        pd.DataFrame(rows, columns=list(SAMPLER_COLUMNS)).to_csv(
            out / "samplers.csv", index=False
        )

    with tempfile.TemporaryDirectory(prefix="sampler-caches-") as tmp:
        for name in samplers:
            cache = Path(tmp) / name
            for run in SAMPLER_RUNS:
                row = {"sampler": name, "n_cafes": n_cafes, "run": run}
                row.update(_fresh_fit(name, n_cafes, seed, cache, timeout))
                rows.append(row)
                log(f"{name:<8} {run:<5} {row['total_seconds']:6.1f} s  "
                    f"load {row['load_before']:.2f}  {row['status']}")
                write()
    table = pd.DataFrame(rows, columns=list(SAMPLER_COLUMNS))
    ok = table[table["status"] == "ok"]
    best = ok.groupby(["sampler", "run"])["total_seconds"].min()
    ratios = {}
    default = engines.DEFAULT_SAMPLER
    for (name, run), seconds in best.items():
        if (default, run) in best.index:
            ratios[f"{name}/{run}"] = seconds / best[(default, run)]
    prov["default_sampler"] = default
    prov["total_seconds_ratio_to_default"] = ratios
    prov["loadavg_after"] = list(os.getloadavg())
    prov["date_finished"] = datetime.datetime.now(datetime.UTC).isoformat(
        timespec="seconds"
    )
    (out / "samplers.json").write_text(json.dumps(prov, indent=2) + "\n")
    write()
    return table


def sampler_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per sampler from the runs of :func:`run_samplers`.

    ``table`` is ``samplers.csv``: one row per run (``cold`` with empty
    compilation caches, then ``warm`` ones). Returns, indexed by sampler and
    fastest first (warm): ``cold_seconds`` (the cold run, end to end),
    ``warm_seconds`` (the fastest warm run), ``sampling_seconds`` (that
    run's sampler time, NaN where the sampler does not report one),
    ``divergences`` (the most in any run), ``r_hat_max`` (the worst),
    ``ess_bulk_min`` (the smallest), and ``cold_ratio`` / ``warm_ratio``:
    the seconds over the fastest sampler's. A run that failed, or a sampler
    without both a cold and a warm run, is refused with what to re-run:
    a summary that silently left one out would rank what was not measured.
    """
    needed = {"sampler", "run", "total_seconds", "sampling_seconds",
              "divergences", "r_hat_max", "ess_bulk_min", "status"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise InputError(
            f"the sampler table lacks the columns {', '.join(missing)}; it "
            "must be samplers.csv as written by `python -m multilevel.benchmark "
            "--samplers`."
        )
    failed = table[table["status"] != "ok"]
    if len(failed):
        runs = ", ".join(f"{s} {r} ({st})" for s, r, st in
                         failed[["sampler", "run", "status"]].itertuples(
                             index=False))
        raise InputError(
            f"these sampler runs failed: {runs}; fix them and re-run "
            "`python -m multilevel.benchmark --out benchmarks --samplers`."
        )
    rows = {}
    for name, runs in table.groupby("sampler", sort=False):
        cold, warm = runs[runs["run"] == "cold"], runs[runs["run"] == "warm"]
        if cold.empty or warm.empty:
            raise InputError(
                f"sampler {name!r} needs a cold and a warm run, got "
                f"{sorted(set(runs['run']))}; re-run the benchmark with "
                "--samplers."
            )
        best = warm.loc[warm["total_seconds"].idxmin()]
        rows[name] = {
            "cold_seconds": float(cold["total_seconds"].iloc[0]),
            "warm_seconds": float(best["total_seconds"]),
            "sampling_seconds": float(best["sampling_seconds"]),
            "divergences": int(runs["divergences"].max()),
            "r_hat_max": float(runs["r_hat_max"].max()),
            "ess_bulk_min": float(runs["ess_bulk_min"].min()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "sampler"
    out = out.sort_values("warm_seconds")
    out["cold_ratio"] = out["cold_seconds"] / out["cold_seconds"].min()
    out["warm_ratio"] = out["warm_seconds"] / out["warm_seconds"].min()
    return out


# --------------------------------------------------------------------------
# reading the saved results (the performance appendix)


def fit_seconds(results: pd.DataFrame) -> pd.DataFrame:
    """Seconds of every measured fit, one row per number of cafes and one
    column per engine of ``results.csv``, plus ``nutpie`` (its compile and
    its sampling, end to end). Sizes an engine did not run are NaN."""
    missing = sorted(set(COLUMNS) - set(results.columns))
    if missing:
        raise InputError(
            f"the results lack the columns {', '.join(missing)}; they must be "
            "results.csv as written by `python -m multilevel.benchmark`."
        )
    ok = results[results["status"] == "ok"]
    if ok.empty:
        raise InputError("the results hold no measured fit (no status 'ok').")
    table = ok.pivot(index="n_cafes", columns="engine", values="seconds")
    table = table.reindex(sorted(set(results["n_cafes"])))
    if {"nutpie_compile", "nutpie_sampling"} <= set(table.columns):
        table["nutpie"] = table["nutpie_compile"] + table["nutpie_sampling"]
    return table


def mcmc_costs(provenance: dict, engine: str) -> pd.DataFrame:
    """What each MCMC fit of ``engine`` cost, by number of cafes.

    Read from the provenance the benchmark wrote (``mcmc_diagnostics``,
    keyed ``engine@n_cafes``): leapfrog steps per draw, divergences, worst
    r-hat and least bulk ESS (over every quantity where the fit recorded
    them, else over the population parameters), the sampler's seconds, the
    seconds of one gradient and the floor (``floor_seconds``, see
    :func:`sampling_floor`) where measured; ``seconds_per_step`` is the
    sampler's seconds over its leapfrog steps, as :func:`sampling_floor`
    counts them, as if every step were a gradient.
    """
    details = provenance.get("mcmc_diagnostics")
    if not isinstance(details, dict):
        raise InputError(
            "the provenance has no mcmc_diagnostics: it must be the "
            "provenance.json of `python -m multilevel.benchmark`."
        )
    rows = {}
    for key, info in details.items():
        name, _, size = key.rpartition("@")
        if name == engine:
            rows[int(size)] = info
    if not rows:
        found = sorted({k.rpartition("@")[0] for k in details})
        raise InputError(
            f"no MCMC fit of {engine!r} in the provenance; it has "
            f"{', '.join(found) or 'none'}."
        )
    mcmc = provenance["settings"]["mcmc"]
    cores = int(provenance["cores"])
    out = []
    for size, info in sorted(rows.items()):
        steps = float(info["leapfrog_steps_mean"])
        parallel = min(mcmc["chains"], cores)
        total_steps = steps * mcmc["chains"] * (mcmc["draws"] + mcmc["tune"])
        sampler = info.get("sampler_seconds", math.nan)
        sampler = math.nan if sampler is None else float(sampler)
        out.append({
            "n_cafes": size,
            "leapfrog_steps_mean": steps,
            "divergences": int(info["divergences"]),
            "r_hat_max": float(info.get("r_hat_max_all", info["r_hat_max"])),
            "ess_bulk_min": float(
                info.get("ess_bulk_min_all", info["ess_bulk_min"])
            ),
            "sampler_seconds": sampler,
            "gradient_seconds": float(info.get("gradient_seconds", math.nan)),
            "floor_seconds": float(info.get("floor_seconds", math.nan)),
            "seconds_per_step": sampler * parallel / total_steps,
        })
    return pd.DataFrame(out).set_index("n_cafes")


_FORM_ENGINES = {"centred": "numpyro_centered",
                 "non-centred": "numpyro_noncentered"}
MARGINAL_ENGINE = "numpyro_marginal"


def numpyro_fits(results: pd.DataFrame, provenance: dict) -> pd.DataFrame:
    """The NumPyro fits by number of cafes: the form the data chose beside
    the other one.

    ``results`` and ``provenance`` are results.csv and provenance.json of
    the benchmark. One row per size, indexed by ``n_cafes``: ``form`` (the
    data's choice, ``centred`` or ``non-centred``) and ``other_form``; for
    each (the other's columns prefixed ``other_``): ``first_seconds`` and
    ``second_seconds`` end to end, the ``status`` of the first fit, and of
    the first fit ``leapfrog_steps_mean``, ``gradient_seconds``,
    ``floor_seconds``, ``divergences`` and ``r_hat_max`` (from
    :func:`mcmc_costs`). The same columns prefixed ``marginal_`` describe
    the marginal fit (NaN in results from before it was timed). A fit that
    was not run is NaN, its status says why.
    """
    forms = provenance.get("data_form")
    if not isinstance(forms, dict) or not forms:
        raise InputError(
            "the provenance lacks data_form (the form the data chose at each "
            "size), so it predates the benchmark that fits the data's form; "
            "re-run `python -m multilevel.benchmark --out benchmarks`."
        )
    missing = sorted(set(_FORM_ENGINES.values()) - set(results["engine"]))
    if missing:
        raise InputError(
            f"the results have no rows for {', '.join(missing)}; they must be "
            "results.csv as written with this provenance."
        )
    seconds = fit_seconds(results)
    status = results.set_index(["engine", "n_cafes"])["status"]
    costs = {}
    for engine in (*_FORM_ENGINES.values(), MARGINAL_ENGINE):
        try:
            costs[engine] = mcmc_costs(provenance, engine)
        except InputError:  # a form never fitted: every size NaN
            costs[engine] = pd.DataFrame(
                columns=["leapfrog_steps_mean", "gradient_seconds",
                         "floor_seconds", "divergences", "r_hat_max"])
    rows = {}
    for J in seconds.index:
        record = forms.get(str(J))
        if record is None:
            raise InputError(
                f"the provenance's data_form has no entry for {J} cafes; "
                "results and provenance must come from the same run."
            )
        form = record["form"]
        if form not in _FORM_ENGINES:
            raise InputError(
                f"data_form at {J} cafes is {form!r}, not one of "
                f"{', '.join(_FORM_ENGINES)}."
            )
        other = next(f for f in _FORM_ENGINES if f != form)
        row: dict[str, Any] = {"form": form, "other_form": other}
        for prefix, engine in (("", _FORM_ENGINES[form]),
                               ("other_", _FORM_ENGINES[other]),
                               ("marginal_", MARGINAL_ENGINE)):
            row[prefix + "status"] = status.get((engine, J), "not in results")
            for col, name in (("first_seconds", engine),
                              ("second_seconds", engine + "_warm")):
                row[prefix + col] = (float(seconds.loc[J, name])
                                     if name in seconds else math.nan)
            c = costs[engine]
            for col in ("leapfrog_steps_mean", "gradient_seconds",
                        "floor_seconds", "divergences", "r_hat_max"):
                row[prefix + col] = (float(c.loc[J, col]) if J in c.index
                                     else math.nan)
        rows[J] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "n_cafes"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m multilevel.benchmark",
        description="Time lme4, fit_reml, statsmodels and PyMC (nutpie and "
        "the default sampler) on the cafe model as the number of cafes grows.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=None,
        help=f"numbers of cafes (default {' '.join(map(str, SIZES))}; "
        f"quick: {' '.join(map(str, QUICK_SIZES))})",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="tiny sizes, one run each, short chains, no default sampler",
    )
    parser.add_argument("--cap", type=float, default=CAP_SECONDS,
                        help="seconds above which a fit is skipped (predicted)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--default-sampler-max-cafes", type=int, default=DEFAULT_SAMPLER_MAX_CAFES,
        help="largest size at which PyMC's default sampler runs",
    )
    parser.add_argument(
        "--other-form-max-cafes", type=int, default=OTHER_FORM_MAX_CAFES,
        help="largest size at which NumPyro also fits the form the data do "
        "not choose (default %(default)s)",
    )
    parser.add_argument(
        "--samplers", nargs="*", default=None, metavar="SAMPLER",
        help="time these samplers of fit_pymc (all when none is named) cold "
        "and warm in fresh processes, at the first of --sizes (default 20 "
        "cafes), instead of the engines",
    )
    args = parser.parse_args(argv)
    if args.samplers is not None:
        try:
            table = run_samplers(
                args.out, args.samplers or None,
                n_cafes=(args.sizes or [20])[0], argv=argv,
            )
        except InputError as exc:
            parser.error(str(exc))
        print(table.to_string(index=False))
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    try:
        results = run_benchmark(
            args.out, sizes, quick=args.quick, cap=args.cap, seed=args.seed,
            default_sampler_max_cafes=args.default_sampler_max_cafes,
            other_form_max_cafes=args.other_form_max_cafes, argv=argv,
        )
    except InputError as exc:
        parser.error(str(exc))
    print(results.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
