"""A simulation study: how well do the engines recover the cafe truth?

Many data sets are simulated from known parameters
(:func:`multilevel.data.simulate_cafes`), each is fitted by

* ``lmer``: lme4 through rpy2 (:func:`multilevel.lmer.fit_lmer`), once with
  likelihood-profile intervals (fixed effects and variance components) and
  once with Wald intervals (fixed effects only: lme4 has no Wald interval
  for an SD or a correlation);
* ``reml``: REML from the equations (:func:`multilevel.reml.fit_reml`), Wald
  intervals for the fixed effects, ML-profile intervals for the rest;
* ``pymc``: the Bayesian model of equation set 2
  (:func:`multilevel.bayes.fit_pymc`, nutpie), highest-density intervals;

and every estimate and interval is compared with the truth. The result is a
long table, one row per (replicate, engine, interval kind, parameter), and a
summary of bias, RMSE and interval coverage with Monte Carlo standard
errors.

Seeds. One master seed ``m``. Replicate ``i`` of the design with ``J``
cafes gets the seed sequence ``SeedSequence(m, spawn_key=(J, i))`` (the
``i``-th child of the ``J``-th child of ``SeedSequence(m)``); its two
children give the data seed and the sampler seed. A replicate therefore
does not depend on how many others are run, and any one can be re-run alone
(``--replicate-ids``).

Failures are rows, never gaps: every row has a ``status``:

* ``ok``;
* ``singular``: the fit is on the boundary (an SD of 0 or a correlation of
  +-1), estimates and intervals are kept;
* ``profile_failed``: the estimate exists but the interval could not be
  computed (NaN);
* ``diagnostics_failed``: a PyMC fit with r-hat >= 1.01, bulk ESS < 400 or a
  divergence; estimates and intervals are kept and flagged;
* ``error``: the engine raised; estimate and interval are NaN and
  ``message`` says why.

Parallel work uses a ``spawn`` process pool (each worker starts its own R
through rpy2, which cannot be shared across processes). PyMC's cost is
nutpie's compilation (tens of seconds) rather than sampling (about two
seconds): each worker compiles the model once per design size with the
observed waits as a shared variable and swaps in each replicate's waits
(:func:`pymc_fit_shared`).

Run ``python -m multilevel.study --help`` for the command line.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multilevel import engines, validate
from multilevel import provenance as _provenance
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import ESS_BULK_MIN, R_HAT_MAX, converged
from multilevel.lmer import r_available

__all__ = [
    "ENGINES",
    "LONG_COLUMNS",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "StudyConfig",
    "main",
    "replicate_seeds",
    "run_replicate",
    "run_study",
    "summarise",
]

#: The registry's engines the study runs (their registry names).
ENGINES = tuple(engines.engine(name).name for name in ("lmer", "reml", "pymc"))

#: Row statuses, from best to worst.
STATUSES = ("ok", "singular", "diagnostics_failed", "profile_failed", "error")

#: Columns of the per-replicate long table, in order.
LONG_COLUMNS = (
    "replicate", "n_cafes", "engine", "interval", "parameter", "estimate",
    "lower", "upper", "truth", "status", "seconds", "data_seed",
    "sampler_seed", "singular", "r_hat_max", "ess_bulk_min", "divergences",
    "message",
)

#: Columns of the summary table, in order.
SUMMARY_COLUMNS = (
    "n_cafes", "engine", "interval", "parameter", "truth", "n_replicates",
    "n_ok", "n_singular", "n_diagnostics_failed", "n_profile_failed",
    "n_error", "n_estimates", "bias", "bias_mcse", "rmse", "n_intervals",
    "coverage", "coverage_mcse", "median_width",
)

#: Row order of the parameters (lme4's names) and their symbols in the book.
PARAMETERS = {
    "(Intercept)": "a",
    "afternoon": "b",
    "sd_(Intercept)|cafe": "sigma_a",
    "cor_afternoon.(Intercept)|cafe": "rho",
    "sd_afternoon|cafe": "sigma_b",
    "sigma": "sigma",
}


# ------------------------------------------------------------------ config


@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a study's numbers."""

    designs: tuple[tuple[int, int], ...]  # (n_cafes, replicates)
    seed: int
    engines: tuple[str, ...] = ENGINES
    n_visits: int = 10
    draws: int = 500
    tune: int = 500
    chains: int = 4
    centered: bool = True
    level: float = 0.95
    reml_intervals: str = "profile"
    replicate_ids: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate.whole_number("seed", self.seed, 0)
        if not self.designs:
            raise InputError("no designs: give at least one number of cafes.")
        for n_cafes, reps in self.designs:
            validate.whole_number("number of cafes", n_cafes, 2)
            validate.whole_number("replicates", reps, 1)
        if len({j for j, _ in self.designs}) != len(self.designs):
            raise InputError(
                f"a number of cafes appears twice in {self.designs}; list "
                "each design once."
            )
        if not self.engines:
            raise InputError(f"no engines: choose from {', '.join(ENGINES)}.")
        for engine in self.engines:
            validate.choice("engine", engine, ENGINES)
        validate.whole_number("n_visits", self.n_visits, 2)
        validate.whole_number("draws", self.draws, 1)
        validate.whole_number("tune", self.tune, 0)
        validate.whole_number("chains", self.chains, 2)
        validate.choice("reml_intervals", self.reml_intervals, ("profile", "none"))
        validate.interval_level(self.level)
        if self.replicate_ids is not None:
            for i in self.replicate_ids:
                validate.whole_number("replicate id", i, 0)

    def tasks(self) -> list[tuple[int, int]]:
        """(n_cafes, replicate) pairs, grouped by design."""
        out = []
        for n_cafes, reps in self.designs:
            ids = range(reps) if self.replicate_ids is None else self.replicate_ids
            out += [(n_cafes, i) for i in ids]
        return out


def replicate_seeds(master: int, n_cafes: int, replicate: int) -> tuple[int, int]:
    """(data seed, sampler seed) of one replicate, from the master seed.

    ``SeedSequence(master, spawn_key=(n_cafes, replicate))`` is the
    ``replicate``-th child of the ``n_cafes``-th child of
    ``SeedSequence(master)``; its two children give the seeds.
    """
    validate.whole_number("master seed", master, 0)
    validate.whole_number("n_cafes", n_cafes, 0)
    validate.whole_number("replicate", replicate, 0)
    ss = np.random.SeedSequence(master, spawn_key=(n_cafes, replicate))
    data_ss, sampler_ss = ss.spawn(2)
    return int(data_ss.generate_state(1)[0]), int(sampler_ss.generate_state(1)[0])


# ------------------------------------------------------------- PyMC, shared


_SHARED: dict[str, Any] = {}
WAIT_DATA = "wait_data"


def _structure_key(data: pd.DataFrame, centered: bool) -> str:
    cols = data[["cafe", "afternoon"]]
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(cols, index=False).to_numpy().tobytes()
    )
    digest.update(repr(bool(centered)).encode())
    return digest.hexdigest()


def _compile_shared(data: pd.DataFrame, centered: bool) -> Any:
    """nutpie model of ``cafe_model(data)`` with the waits as a shared input.

    The model is :func:`multilevel.bayes.cafe_model` itself; only the value
    of its observed variable (a constant holding the waits) is replaced by a
    shared variable named ``wait_data``, so ``compiled.with_data(wait_data=w)``
    is the same model for other waits at the same cafes and visit times
    (``tests/test_study.py`` checks the log density against a fresh model).
    """
    import nutpie

    from multilevel.bayes import quiet_sampling

    with quiet_sampling():
        return nutpie.compile_pymc_model(shared_wait_model(data, centered))


def shared_wait_model(data: pd.DataFrame, centered: bool = True) -> Any:
    """``cafe_model(data)`` whose observed waits are the shared ``wait_data``."""
    import pytensor

    from multilevel.bayes import cafe_model

    model = cafe_model(data, centered=centered)
    if len(model.observed_RVs) != 1:
        raise RuntimeError(
            f"expected one observed variable in the cafe model, found "
            f"{len(model.observed_RVs)}; multilevel.bayes.cafe_model has changed."
        )
    wait = model.observed_RVs[0]
    shared = pytensor.shared(
        np.asarray(data["wait"], dtype="float64"), name=WAIT_DATA
    )
    model.rvs_to_values[wait] = shared
    return model


def pymc_fit_shared(
    data: pd.DataFrame,
    *,
    seed: int,
    draws: int,
    tune: int,
    chains: int,
    centered: bool = True,
    level: float = 0.95,
) -> Any:
    """:func:`~multilevel.bayes.fit_pymc` with one compilation per design.

    The compiled model for these cafes and visit times (compiled on first
    use in this process) gets ``data``'s waits through ``with_data`` and is
    handed to ``fit_pymc`` through its compiled-model cache, so validation,
    sampling, summaries and diagnostics are ``fit_pymc``'s own.
    """
    from multilevel import bayes

    key = _structure_key(data, centered)
    if key not in _SHARED:
        _SHARED[key] = _compile_shared(data, centered)
    compiled = _SHARED[key].with_data(
        **{WAIT_DATA: data["wait"].to_numpy(dtype="float64")}
    )
    cache_key = bayes._model_key(data, bayes.resolve_priors(None), centered)
    bayes._COMPILED[cache_key] = compiled
    t0 = time.perf_counter()
    try:
        fit = bayes.fit_pymc(
            data, centered=centered, draws=draws, tune=tune, chains=chains,
            seed=seed, level=level,
        )
    finally:
        bayes._COMPILED.pop(cache_key, None)
    fit.diagnostics["total_seconds"] = time.perf_counter() - t0
    return fit


# ------------------------------------------------------------ one replicate


def _rows_from(
    table: pd.DataFrame, interval_of: dict[str, str] | str, base: dict[str, Any],
    truth: pd.Series, status: str, message: str,
) -> list[dict[str, Any]]:
    rows = []
    for name in table.index:
        kind = interval_of if isinstance(interval_of, str) else interval_of[name]
        row = dict(base)
        row.update(
            interval=kind,
            parameter=name,
            estimate=float(table.loc[name, "estimate"]),
            lower=float(table.loc[name, "lower"]),
            upper=float(table.loc[name, "upper"]),
            truth=float(truth[name]),
            status=status,
            message=message,
        )
        if kind != "none" and (np.isnan(row["lower"]) or np.isnan(row["upper"])):
            row["status"] = "profile_failed"
        rows.append(row)
    return rows


def _error_rows(
    names_kinds: list[tuple[str, str]], base: dict[str, Any], truth: pd.Series,
    exc: BaseException,
) -> list[dict[str, Any]]:
    message = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
    rows = []
    for name, kind in names_kinds:
        row = dict(base)
        row.update(
            interval=kind, parameter=name, estimate=np.nan, lower=np.nan,
            upper=np.nan, truth=float(truth[name]), status="error",
            message=message,
        )
        rows.append(row)
    return rows


def _fit_status(fit: Any) -> tuple[str, str]:
    singular = bool(fit.diagnostics.get("singular", False))
    notes = [m for m in fit.messages if "varcorr intervals: likelihood" not in m]
    return ("singular" if singular else "ok"), "; ".join(notes)[:500]


def run_replicate(
    config: StudyConfig, n_cafes: int, replicate: int
) -> list[dict[str, Any]]:
    """Simulate replicate ``replicate`` of the ``n_cafes`` design; fit; rows."""
    data_seed, sampler_seed = replicate_seeds(config.seed, n_cafes, replicate)
    sim = simulate_cafes(n_cafes=n_cafes, n_visits=config.n_visits, seed=data_seed)
    truth = pd.concat([sim.truth.fixed, sim.truth.varcorr])
    fixed_names = list(sim.truth.fixed.index)
    vc_names = list(sim.truth.varcorr.index)
    common = dict(
        replicate=replicate, n_cafes=n_cafes, data_seed=data_seed,
        sampler_seed=sampler_seed, r_hat_max=np.nan, ess_bulk_min=np.nan,
        divergences=np.nan,
    )
    rows: list[dict[str, Any]] = []
    level = config.level

    if "lmer" in config.engines:
        fit_lmer = engines.fitter("lmer")
        for profile in (True, False):
            kind = "profile" if profile else "Wald"
            names = fixed_names + (vc_names if profile else [])
            base = dict(common, engine="lmer", singular=False)
            t0 = time.perf_counter()
            try:
                fit = fit_lmer(sim.data, CAFE_FORMULA, level=level, profile=profile)
            except Exception as exc:  # recorded as rows, never dropped
                base["seconds"] = time.perf_counter() - t0
                rows += _error_rows([(n, kind) for n in names], base, truth, exc)
                continue
            base["seconds"] = time.perf_counter() - t0
            status, message = _fit_status(fit)
            base["singular"] = status == "singular"
            table = fit.fixed if not profile else pd.concat(
                [fit.fixed[["estimate", "lower", "upper"]],
                 fit.varcorr[["estimate", "lower", "upper"]]]
            )
            rows += _rows_from(table, kind, base, truth, status, message)

    if "reml" in config.engines:
        fit_reml = engines.fitter("reml")
        vc_kind = "profile" if config.reml_intervals == "profile" else "none"
        kinds = {n: "Wald" for n in fixed_names} | {n: vc_kind for n in vc_names}
        base = dict(common, engine="reml", singular=False)
        t0 = time.perf_counter()
        failed = ""
        try:
            try:
                fit = fit_reml(
                    sim.data, CAFE_FORMULA, level=level,
                    intervals=config.reml_intervals,
                )
            except Exception as exc:
                if config.reml_intervals == "none":
                    raise
                # the profile failed: keep the estimates, flag the intervals
                failed = f"profile failed ({type(exc).__name__}: {exc})"
                fit = fit_reml(sim.data, CAFE_FORMULA, level=level,
                               intervals="none")
        except Exception as exc:
            base["seconds"] = time.perf_counter() - t0
            rows += _error_rows(list(kinds.items()), base, truth, exc)
        else:
            base["seconds"] = time.perf_counter() - t0
            status, message = _fit_status(fit)
            if config.reml_intervals == "none":
                message = ""
            message = "; ".join(m for m in (failed, message) if m)[:500]
            base["singular"] = status == "singular"
            table = pd.concat(
                [fit.fixed[["estimate", "lower", "upper"]],
                 fit.varcorr[["estimate", "lower", "upper"]]]
            )
            rows += _rows_from(table, kinds, base, truth, status, message)

    if "pymc" in config.engines:
        names = [(n, "HDI") for n in fixed_names + vc_names]
        base = dict(common, engine="pymc", singular=False)
        compiled_before = len(_SHARED)
        t0 = time.perf_counter()
        try:
            fit = pymc_fit_shared(
                sim.data, seed=sampler_seed, draws=config.draws,
                tune=config.tune, chains=config.chains,
                centered=config.centered, level=level,
            )
        except Exception as exc:
            base["seconds"] = time.perf_counter() - t0
            rows += _error_rows(names, base, truth, exc)
        else:
            d = fit.diagnostics
            elapsed = time.perf_counter() - t0
            compile_note = ""
            if len(_SHARED) > compiled_before:
                # the one-off compilation of this worker and design is not
                # part of the fit's time
                compile_s = elapsed - float(fit.diagnostics["total_seconds"])
                compile_note = f"compiled once here in {compile_s:.0f} s; "
                elapsed = float(fit.diagnostics["total_seconds"])
            base.update(
                seconds=elapsed,
                r_hat_max=d["r_hat_max"], ess_bulk_min=d["ess_bulk_min"],
                divergences=d["divergences"],
            )
            status = "ok" if converged(d) else "diagnostics_failed"
            table = pd.concat(
                [fit.fixed[["estimate", "lower", "upper"]],
                 fit.varcorr[["estimate", "lower", "upper"]]]
            )
            message = compile_note + "; ".join(fit.messages)
            rows += _rows_from(table, "HDI", base, truth, status, message[:500])
    return rows


# ------------------------------------------------------------------ workers


_PROGRESS: Any = None


def _init_worker(progress: Any = None) -> None:
    """Start R (through rpy2) in this worker process, once."""
    global _PROGRESS
    _PROGRESS = progress
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    r_available()


def _worker(
    config: StudyConfig, n_cafes: int, replicates: list[int]
) -> list[dict]:
    rows: list[dict] = []
    for i in replicates:
        try:
            rows += run_replicate(config, n_cafes, i)
        except Exception as exc:  # outside any engine: keep it as rows
            rows += _crash_rows(config, n_cafes, i, exc)
        if _PROGRESS is not None:
            _PROGRESS.put(1)
    return rows


def chunks(
    config: StudyConfig, workers: int
) -> list[tuple[int, list[int]]]:
    """Split the replicates into per-design chunks for the workers.

    A worker compiles the PyMC model once per design it meets, so a design
    is split only as far as needed to keep the workers equally busy: into
    pieces of at most ``ceil(total / (2 workers))`` replicates.
    """
    tasks = config.tasks()
    size = max(1, math.ceil(len(tasks) / (2 * workers)))
    out = []
    for n_cafes, _ in config.designs:
        ids = [i for j, i in tasks if j == n_cafes]
        k = max(1, math.ceil(len(ids) / size))
        out += [(n_cafes, list(part)) for part in np.array_split(ids, k)]
    # largest first, so no worker is left with a big chunk at the end
    out.sort(key=lambda c: -len(c[1]))
    return [(j, [int(i) for i in ids]) for j, ids in out if len(ids)]


def run_study(
    config: StudyConfig, workers: int = 2, progress: bool = True,
    checkpoint: Path | None = None,
) -> pd.DataFrame:
    """Run every replicate of ``config`` in ``workers`` spawned processes.

    Returns the long table (:data:`LONG_COLUMNS`), sorted by design,
    replicate, engine, interval kind and parameter. A replicate whose worker
    dies is recorded as ``error`` rows too. With ``checkpoint``, the rows
    finished so far are written there after every chunk.
    """
    from tqdm.auto import tqdm

    validate.whole_number("workers", workers, 1)
    ctx = multiprocessing.get_context("spawn")
    rows: list[dict[str, Any]] = []
    parts = chunks(config, workers)
    with ctx.Manager() as manager:
        queue = manager.Queue()
        bar = tqdm(
            total=len(config.tasks()), disable=not progress,
            desc="replicates", unit="rep",
        )
        with cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker,
            initargs=(queue,),
        ) as pool:
            futures = {
                pool.submit(_worker, config, j, ids): (j, ids) for j, ids in parts
            }
            pending = set(futures)
            while pending:
                done, pending = cf.wait(
                    pending, timeout=1.0, return_when=cf.FIRST_COMPLETED
                )
                while not queue.empty():
                    bar.update(queue.get())
                for fut in done:
                    n_cafes, ids = futures[fut]
                    try:
                        rows += fut.result()
                    except Exception as exc:  # a crashed worker
                        for i in ids:
                            rows += _crash_rows(config, n_cafes, i, exc)
                    if checkpoint is not None:
                        _long_frame(rows).to_csv(checkpoint, index=False)
            while not queue.empty():
                bar.update(queue.get())
        bar.close()
    return _long_frame(rows)


def _crash_rows(config, n_cafes, replicate, exc) -> list[dict[str, Any]]:
    data_seed, sampler_seed = replicate_seeds(config.seed, n_cafes, replicate)
    sim = simulate_cafes(n_cafes=n_cafes, n_visits=config.n_visits, seed=data_seed)
    truth = pd.concat([sim.truth.fixed, sim.truth.varcorr])
    fixed = list(sim.truth.fixed.index)
    vc = list(sim.truth.varcorr.index)
    kinds = {
        "lmer": [(n, "profile") for n in fixed + vc] + [(n, "Wald") for n in fixed],
        "reml": [(n, "Wald") for n in fixed]
        + [(n, "profile" if config.reml_intervals == "profile" else "none")
           for n in vc],
        "pymc": [(n, "HDI") for n in fixed + vc],
    }
    rows = []
    for engine in config.engines:
        base = dict(
            replicate=replicate, n_cafes=n_cafes, engine=engine, seconds=np.nan,
            data_seed=data_seed, sampler_seed=sampler_seed, singular=False,
            r_hat_max=np.nan, ess_bulk_min=np.nan, divergences=np.nan,
        )
        rows += _error_rows(kinds[engine], base, truth, exc)
    return rows


def _long_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    order = {p: k for k, p in enumerate(PARAMETERS)}
    df["_p"] = df["parameter"].map(order)
    df = df.sort_values(["n_cafes", "replicate", "engine", "interval", "_p"])
    return df.drop(columns="_p").reset_index(drop=True)


# ------------------------------------------------------------------ summary


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE and coverage per (design, engine, interval kind, parameter).

    * ``bias`` = mean(estimate - truth) over rows with a finite estimate
      (every status but ``error``), ``bias_mcse`` = sd(estimate - truth) /
      sqrt(n_estimates);
    * ``rmse`` = sqrt(mean((estimate - truth)^2)) over the same rows;
    * ``coverage`` = share of rows with a non-NaN interval for which
      ``lower <= truth <= upper`` (an infinite limit counts as a limit),
      ``coverage_mcse`` = sqrt(p (1 - p) / n_intervals);
    * ``n_<status>`` counts rows by status; ``n_ok`` counts ``ok`` only.

    Singular fits and PyMC fits that failed diagnostics are included (and
    counted); leaving them out would select the easy data sets.
    """
    missing = [c for c in ("n_cafes", "engine", "interval", "parameter",
                           "estimate", "lower", "upper", "truth", "status")
               if c not in long.columns]
    if missing:
        raise InputError(
            f"the long table lacks columns {missing}; pass the output of "
            "run_study (or results/study/replicates.csv)."
        )
    unknown = sorted(set(long["status"]) - set(STATUSES))
    if unknown:
        raise InputError(f"unknown status {unknown}; statuses are {STATUSES}.")
    keys = ["n_cafes", "engine", "interval", "parameter"]
    out = []
    for key, g in long.groupby(keys, sort=False):
        truths = g["truth"].unique()
        if len(truths) != 1:
            raise InputError(
                f"rows of {dict(zip(keys, key))} disagree on the truth "
                f"({truths}); one design must have one truth."
            )
        err = (g["estimate"] - g["truth"]).to_numpy(dtype=float)
        err = err[np.isfinite(err)]
        n_est = len(err)
        has = g["lower"].notna() & g["upper"].notna()
        lo = g.loc[has, "lower"].to_numpy(dtype=float)
        hi = g.loc[has, "upper"].to_numpy(dtype=float)
        tr = g.loc[has, "truth"].to_numpy(dtype=float)
        n_int = int(has.sum())
        covered = (lo <= tr) & (tr <= hi)
        p = float(covered.mean()) if n_int else np.nan
        counts = g["status"].value_counts()
        row = dict(zip(keys, key))
        row.update(
            truth=float(truths[0]),
            n_replicates=len(g),
            **{f"n_{s}": int(counts.get(s, 0)) for s in STATUSES},
            n_estimates=n_est,
            bias=float(err.mean()) if n_est else np.nan,
            bias_mcse=(
                float(err.std(ddof=1) / math.sqrt(n_est)) if n_est > 1 else np.nan
            ),
            rmse=float(math.sqrt(np.mean(err**2))) if n_est else np.nan,
            n_intervals=n_int,
            coverage=p,
            coverage_mcse=math.sqrt(p * (1 - p) / n_int) if n_int else np.nan,
            median_width=float(np.median(hi - lo)) if n_int else np.nan,
        )
        out.append(row)
    summary = pd.DataFrame(out)
    summary = summary[list(SUMMARY_COLUMNS)]
    order = {p: k for k, p in enumerate(PARAMETERS)}
    summary["_p"] = summary["parameter"].map(order)
    summary = summary.sort_values(["n_cafes", "engine", "interval", "_p"])
    return summary.drop(columns="_p").reset_index(drop=True)


# --------------------------------------------------------------- provenance


def provenance(
    config: StudyConfig, argv: Sequence[str], wall_seconds: float, workers: int,
) -> dict[str, Any]:
    """What produced a study's files: command, seeds, versions, machine."""
    prov = _provenance.record("multilevel.study", argv)
    prov.update(
        master_seed=config.seed,
        seed_scheme=(
            "replicate i of the design with J cafes: "
            "SeedSequence(master_seed, spawn_key=(J, i)).spawn(2) -> "
            "(data seed, sampler seed), each generate_state(1)[0]"
        ),
        config={k: v for k, v in asdict(config).items() if k != "extra"},
        pymc_thresholds={
            "r_hat_max_below": R_HAT_MAX, "ess_bulk_min_at_least": ESS_BULK_MIN,
            "divergences": 0,
        },
        wall_seconds=round(wall_seconds, 1),
    )
    prov["machine"]["workers"] = workers
    return prov


# --------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m multilevel.study",
        description=(
            "Simulation study of the cafe model: bias, RMSE and interval "
            "coverage of lme4, REML-from-the-equations and PyMC."
        ),
    )
    p.add_argument("--replicates", type=int, default=200,
                   help="replicates of the main design (default 200)")
    p.add_argument("--cafes", type=int, default=20,
                   help="cafes in the main design (default 20)")
    p.add_argument("--replicates-small", type=int, default=50,
                   help="replicates of each other design (default 50)")
    p.add_argument("--cafes-small", type=int, nargs="*", default=[5, 10, 50],
                   help="cafes in the other designs (default 5 10 50)")
    p.add_argument("--visits", type=int, default=10,
                   help="visits per cafe (default 10)")
    p.add_argument("--engines", nargs="+", default=list(ENGINES),
                   help=f"engines to run (default: {' '.join(ENGINES)})")
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--tune", type=int, default=500)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--reml-intervals", choices=["profile", "none"],
                   default="profile",
                   help=("profile intervals of fit_reml's variance components "
                         "(default), or none (estimates only; faster)"))
    p.add_argument("--non-centered", action="store_true",
                   help="sample PyMC's non-centred parametrisation")
    p.add_argument("--replicate-ids", type=int, nargs="+", default=None,
                   help="run only these replicate numbers of every design")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, required=True, help="master seed")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quick", action="store_true",
                   help=("a tiny study for tests: 2 replicates at 20 cafes and "
                         "at 5, PyMC with 2 chains x 100 draws after 100 tuning"))
    p.add_argument("--no-progress", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The StudyConfig a command line asks for (``--quick`` overrides counts)."""
    if args.quick:
        args.replicates, args.replicates_small = 2, 2
        args.cafes_small = [5]
        args.draws, args.tune, args.chains = 100, 100, 2
    designs = [(args.cafes, args.replicates)]
    designs += [(j, args.replicates_small) for j in args.cafes_small]
    designs.sort()
    ids = None if args.replicate_ids is None else tuple(args.replicate_ids)
    return StudyConfig(
        designs=tuple(designs), seed=args.seed, engines=tuple(args.engines),
        n_visits=args.visits, draws=args.draws, tune=args.tune,
        chains=args.chains, centered=not args.non_centered,
        reml_intervals=args.reml_intervals,
        replicate_ids=ids,
    )


def main(argv: Iterable[str] | None = None) -> int:
    """Run the study from the command line; write the three output files."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
        validate.whole_number("workers", args.workers, 1)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    long = run_study(
        config, workers=args.workers, progress=not args.no_progress,
        checkpoint=out / "replicates.partial.csv",
    )
    wall = time.perf_counter() - t0
    summary = summarise(long)
    long.to_csv(out / "replicates.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    prov = provenance(config, argv, wall, args.workers)
    prov["counts"] = {
        "rows": len(long),
        "status": {s: int((long["status"] == s).sum()) for s in STATUSES},
    }
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    (out / "replicates.partial.csv").unlink(missing_ok=True)
    print(
        f"wrote {len(long)} rows for {len(config.tasks())} replicates to "
        f"{out} in {wall:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
