"""The replicate loop: simulate, fit every engine, one row per estimate;
and the spawned worker processes that run the replicates."""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multilevel import engines, validate
from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.errors import InputError
from multilevel.fit import converged
from multilevel.lmer import r_available
from multilevel.pooling import choose_parametrisation
from multilevel.study.config import (
    ENGINES,
    LONG_COLUMNS,
    PARAMETERS,
    PARAMETRISATIONS,
    StudyConfig,
    replicate_seeds,
)

#: The designs whose PyMC model this process has compiled.
_COMPILED_HERE: set[str] = set()


def pymc_fit_shared(
    data: pd.DataFrame,
    *,
    seed: int,
    draws: int,
    tune: int,
    chains: int,
    parametrisation: str = "centered",
    target_accept: float | None = None,
    level: float = 0.95,
) -> Any:
    """:func:`~multilevel.bayes.fit_pymc` with one compilation per design.

    The model for these cafes and visit times is compiled on first use in
    this process (:func:`multilevel.bayes.compile_cafe_model`) and sampled
    for each replicate's waits, so validation, sampling, summaries and
    diagnostics are ``fit_pymc``'s own. ``diagnostics["total_seconds"]`` is
    the fit's time; ``diagnostics["compile_seconds"]`` the compilation's
    when this call compiled (else None). ``parametrisation`` is
    ``"centered"``, ``"non-centered"`` or ``"auto"`` (chosen for these data
    by :func:`multilevel.pooling.choose_parametrisation`).
    """
    from multilevel import bayes

    validate.choice("parametrisation", parametrisation, PARAMETRISATIONS)
    if parametrisation == "auto":
        centered: Any = choose_parametrisation(data)
        form = centered.centered
    else:
        centered = form = parametrisation == "centered"
    if target_accept is None:
        target_accept = bayes.TARGET_ACCEPT
    compiled = bayes.compile_cafe_model(data, centered=form)
    fresh = compiled.key not in _COMPILED_HERE
    _COMPILED_HERE.add(compiled.key)
    t0 = time.perf_counter()
    fit = bayes.fit_pymc(
        data, centered=centered, draws=draws, tune=tune, chains=chains,
        seed=seed, level=level, sampler="nutpie", compiled=compiled,
        target_accept=target_accept,
    )
    fit.diagnostics["total_seconds"] = time.perf_counter() - t0
    fit.diagnostics["compile_seconds"] = compiled.seconds if fresh else None
    return fit


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
        divergences=np.nan, centered=np.nan,
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
        t0 = time.perf_counter()
        try:
            fit = pymc_fit_shared(
                sim.data, seed=sampler_seed, draws=config.draws,
                tune=config.tune, chains=config.chains,
                parametrisation=config.parametrisation,
                target_accept=config.target_accept, level=level,
            )
        except Exception as exc:
            base["seconds"] = time.perf_counter() - t0
            rows += _error_rows(names, base, truth, exc)
        else:
            d = fit.diagnostics
            elapsed = time.perf_counter() - t0
            compile_note = ""
            if d["compile_seconds"] is not None:
                # the one-off compilation of this worker and design is not
                # part of the fit's time
                compile_s = elapsed - float(d["total_seconds"])
                compile_note = f"compiled once here in {compile_s:.0f} s; "
                elapsed = float(d["total_seconds"])
            base.update(
                seconds=elapsed,
                r_hat_max=d["r_hat_max"], ess_bulk_min=d["ess_bulk_min"],
                divergences=d["divergences"], centered=d["centered"],
            )
            status = "ok" if converged(d) else "diagnostics_failed"
            table = pd.concat(
                [fit.fixed[["estimate", "lower", "upper"]],
                 fit.varcorr[["estimate", "lower", "upper"]]]
            )
            message = compile_note + "; ".join(fit.messages)
            rows += _rows_from(table, "HDI", base, truth, status, message[:500])
    return rows


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


def _worker_anywhere(
    config: StudyConfig, n_cafes: int, replicates: list[int]
) -> list[dict]:
    """:func:`_worker` in a process this module did not start (a worker of
    another executor, e.g. a Dask cluster's): set it up first."""
    _init_worker(None)
    return _worker(config, n_cafes, replicates)


def run_study(
    config: StudyConfig, workers: int = 2, progress: bool = True,
    checkpoint: Path | None = None, executor: cf.Executor | None = None,
) -> pd.DataFrame:
    """Run every replicate of ``config`` in ``workers`` spawned processes,
    or on ``executor``.

    Returns the long table (:data:`LONG_COLUMNS`), sorted by design,
    replicate, engine, interval kind and parameter. A replicate whose worker
    dies is recorded as ``error`` rows too. With ``checkpoint``, the rows
    finished so far are written there after every chunk.

    ``executor`` is any ``concurrent.futures``-style executor to run the
    chunks on instead of local processes, such as a Dask cluster's
    ``Client.get_executor()`` (``--scheduler`` on the command line);
    ``workers`` then says how many workers it has, which sets how finely the
    replicates are split. The rows depend only on the seeds, so they are the
    same wherever the replicates ran. The progress bar then advances by
    chunk, as each chunk's results come back.
    """
    from tqdm.auto import tqdm

    validate.whole_number("workers", workers, 1)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InputError(
            f"executor must be a concurrent.futures-style executor with a "
            f"submit method (e.g. dask's Client.get_executor()), got "
            f"{type(executor).__name__}."
        )
    rows: list[dict[str, Any]] = []
    parts = chunks(config, workers)
    bar = tqdm(
        total=len(config.tasks()), disable=not progress,
        desc="replicates", unit="rep",
    )

    def collect(futures: dict, queue: Any = None) -> None:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(
                pending, timeout=1.0, return_when=cf.FIRST_COMPLETED
            )
            while queue is not None and not queue.empty():
                bar.update(queue.get())
            for fut in done:
                n_cafes, ids = futures[fut]
                try:
                    rows.extend(fut.result())
                except Exception as exc:  # a crashed worker
                    for i in ids:
                        rows.extend(_crash_rows(config, n_cafes, i, exc))
                if queue is None:
                    bar.update(len(ids))
                if checkpoint is not None:
                    _long_frame(rows).to_csv(checkpoint, index=False)
        while queue is not None and not queue.empty():
            bar.update(queue.get())

    if executor is not None:
        collect({executor.submit(_worker_anywhere, config, j, ids): (j, ids)
                 for j, ids in parts})
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            with cf.ProcessPoolExecutor(
                max_workers=workers, mp_context=ctx, initializer=_init_worker,
                initargs=(queue,),
            ) as pool:
                collect({pool.submit(_worker, config, j, ids): (j, ids)
                         for j, ids in parts}, queue)
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
            centered=np.nan,
        )
        rows += _error_rows(kinds[engine], base, truth, exc)
    return rows


def _long_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(LONG_COLUMNS))
    order = {p: k for k, p in enumerate(PARAMETERS)}
    df["_p"] = df["parameter"].map(order)
    df = df.sort_values(["n_cafes", "replicate", "engine", "interval", "_p"])
    return df.drop(columns="_p").reset_index(drop=True)


def reused_rows(
    config: StudyConfig, folder: Path, engines_: tuple[str, ...],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows of ``engines_`` for ``config``'s replicates from the study
    saved in ``folder``, and what the provenance should say about them.

    A replicate's rows depend only on its seeds, the number of visits, the
    level and the engine's own settings, so an engine that a new study does
    not change (lme4's rows when only PyMC's settings move) can be taken
    from an earlier run of the same design instead of being fitted again.
    Refused, with the reason, when the saved study used another master seed,
    number of visits, level or REML intervals, lacks any of the replicates,
    or its seeds are not the documented ones.
    """
    import json

    folder = Path(folder)
    files = [folder / "replicates.csv", folder / "provenance.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(
            f"cannot reuse rows from {folder}: {', '.join(missing)} missing; "
            "give the folder a study wrote (its --out)."
        )
    for engine in engines_:
        validate.choice("engine to reuse", engine, ENGINES)
        if engine in config.engines:
            raise InputError(
                f"engine {engine!r} is both run and reused; drop it from "
                "--engines or from --reuse-engines."
            )
    prov = json.loads(files[1].read_text())
    old = prov.get("config", {})
    for key in ("n_visits", "level", "reml_intervals"):
        if old.get(key) != getattr(config, key):
            raise InputError(
                f"cannot reuse rows from {folder}: it was run with {key}="
                f"{old.get(key)!r}, this study has {getattr(config, key)!r}."
            )
    if prov.get("master_seed") != config.seed:
        raise InputError(
            f"cannot reuse rows from {folder}: its master seed is "
            f"{prov.get('master_seed')!r}, this study's {config.seed}."
        )
    previous = pd.read_csv(files[0])
    if "centered" not in previous:
        previous["centered"] = np.nan
    rows = []
    for n_cafes, replicate in config.tasks():
        for engine in engines_:
            part = previous[(previous["n_cafes"] == n_cafes)
                            & (previous["replicate"] == replicate)
                            & (previous["engine"] == engine)]
            if part.empty:
                raise InputError(
                    f"cannot reuse {engine} rows from {folder}: replicate "
                    f"{replicate} of the {n_cafes}-cafe design is not there."
                )
            seeds = replicate_seeds(config.seed, n_cafes, replicate)
            if not (part["data_seed"] == seeds[0]).all():
                raise InputError(
                    f"cannot reuse {engine} rows from {folder}: replicate "
                    f"{replicate} of {n_cafes} cafes has another data seed."
                )
            rows.append(part)
    record = {
        "from": str(folder),
        "engines": list(engines_),
        "their_command": prov.get("command"),
        "their_git": prov.get("git"),
        "their_date": prov.get("date"),
    }
    return pd.concat(rows, ignore_index=True)[list(LONG_COLUMNS)], record
