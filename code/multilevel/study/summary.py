"""Bias, RMSE and interval coverage of the study's estimates, with their
Monte Carlo standard errors, and the look-ups that read them back.

:func:`summarise` makes the summary; :func:`lookup` reads one number of it
by design, method and the parameter's symbol; :func:`coverage_z` says how
many standard errors a coverage lies from what was expected, and
:func:`t_coverage` is what a normal-quantile interval is expected to cover
when its estimate is t-distributed; :func:`bias_reading` puts a bias into
words against its Monte Carlo standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from multilevel.errors import InputError
from multilevel.study.config import PARAMETERS, STATUSES, SUMMARY_COLUMNS


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


def lookup(
    summary: pd.DataFrame, n_cafes: int, method: str, symbol: str, column: str
) -> float:
    """One number of a :func:`summarise` table.

    ``method`` is ``"<engine> <interval>"`` (``"lmer profile"``, ``"pymc
    HDI"``) or an engine alone (``"lmer"``) for a column that does not
    depend on the interval kind (``bias``, ``rmse``: the rows of one
    engine must then agree); ``symbol`` is the book's name of the
    parameter (a value of :data:`PARAMETERS`: ``alpha``, ``sigma_beta``,
    ``rho`` ...). Exactly one value must match.
    """
    if not isinstance(summary, pd.DataFrame):
        raise InputError(
            f"summary must be the DataFrame summarise returns, got "
            f"{type(summary).__name__}."
        )
    if column not in summary.columns:
        raise InputError(
            f"the summary has no column {column!r}; it has {list(summary.columns)}."
        )
    by_symbol = {v: k for k, v in PARAMETERS.items()}
    if symbol not in by_symbol:
        raise InputError(
            f"unknown parameter symbol {symbol!r}; the symbols are "
            f"{list(by_symbol)}."
        )
    engine, _, interval = str(method).partition(" ")
    rows = summary[
        (summary["n_cafes"] == n_cafes)
        & (summary["engine"] == engine)
        & (summary["parameter"] == by_symbol[symbol])
    ]
    if interval:
        rows = rows[rows["interval"] == interval]
    values = rows[column].dropna().unique() if not interval else rows[column]
    if len(rows) == 0:
        methods = sorted(set(summary["engine"] + " " + summary["interval"]))
        raise InputError(
            f"no summary row for {n_cafes} cafes, method {method!r}, parameter "
            f"{symbol!r}; designs are {sorted(set(summary['n_cafes']))} and "
            f"methods {methods}."
        )
    if len(values) != 1:
        raise InputError(
            f"{column} of {method!r} for {symbol!r} at {n_cafes} cafes is not one "
            f"number ({list(values)}); name the interval kind as well, e.g. "
            f"'{engine} {rows['interval'].iloc[0]}'."
        )
    return float(np.asarray(values)[0])


def coverage_z(coverage: float, n_intervals: int, expected: float) -> float:
    """How many standard errors an observed coverage lies from ``expected``:
    ``(coverage - expected) / sqrt(expected (1 - expected) / n_intervals)``,
    the binomial standard error under the expected coverage."""
    if not 0 < expected < 1:
        raise InputError(f"expected must be a coverage in (0, 1), got {expected!r}.")
    if not (isinstance(n_intervals, (int, np.integer, float)) and n_intervals >= 1
            and float(n_intervals).is_integer()):
        raise InputError(f"n_intervals must be a count >= 1, got {n_intervals!r}.")
    if not 0 <= coverage <= 1:
        raise InputError(f"coverage must lie in [0, 1], got {coverage!r}.")
    return (coverage - expected) / math.sqrt(expected * (1 - expected) / n_intervals)


def t_coverage(level: float, df: int) -> float:
    """The coverage of ``estimate +- z * se`` (z the normal quantile of
    ``level``) when ``(estimate - truth) / se`` follows a t distribution
    with ``df`` degrees of freedom: ``2 T_df(z) - 1``, below ``level``."""
    if not 0 < level < 1:
        raise InputError(f"level must lie in (0, 1), got {level!r}.")
    if not df >= 1:
        raise InputError(f"df must be >= 1, got {df!r}.")
    z = stats.norm.ppf(0.5 + level / 2)
    return float(2 * stats.t.cdf(z, df) - 1)


def bias_reading(bias: float, se: float) -> str:
    """A bias in words: within noise when ``|bias| <= 2 se``, else its sign."""
    if not (math.isfinite(bias) and math.isfinite(se) and se >= 0):
        raise InputError(
            f"bias and its standard error must be finite (se >= 0), got "
            f"{bias!r} and {se!r}."
        )
    if abs(bias) <= 2 * se:
        return "within two Monte Carlo standard errors of zero"
    return "an underestimate" if bias < 0 else "an overestimate"


def pymc_failures(long: pd.DataFrame, thresholds: dict) -> pd.DataFrame:
    """How many PyMC fits of each design failed the diagnostics, and why.

    One row per number of cafes (index ``n_cafes``): ``fits`` (PyMC fits
    that returned, i.e. not ``error``), ``failed`` (labelled
    ``diagnostics_failed``), and how many broke each rule of ``thresholds``
    (the provenance's ``pymc_thresholds``): ``r_hat`` (largest r-hat at or
    above ``r_hat_max_below``), ``ess`` (smallest bulk ESS below
    ``ess_bulk_min_at_least``), ``divergent`` (more divergences than
    ``divergences``); a fit can break several. ``centred`` counts the fits
    that sampled the centred form, and ``failed_centred`` /
    ``failed_non_centred`` the failures by form (all NaN when the table does
    not record the form).
    """
    need = {"n_cafes", "replicate", "engine", "status", "r_hat_max",
            "ess_bulk_min", "divergences"}
    if not isinstance(long, pd.DataFrame) or need - set(long.columns):
        missing = sorted(need - set(getattr(long, "columns", [])))
        raise InputError(
            f"pymc_failures needs the study's long table; missing columns "
            f"{missing}."
        )
    keys = ("r_hat_max_below", "ess_bulk_min_at_least", "divergences")
    if not isinstance(thresholds, dict) or set(keys) - set(thresholds):
        raise InputError(
            f"thresholds must be the provenance's pymc_thresholds with "
            f"{', '.join(keys)}; got {thresholds!r}."
        )
    fits = long[(long["engine"] == "pymc") & (long["status"] != "error")]
    fits = fits.drop_duplicates(["n_cafes", "replicate"])
    if fits.empty:
        raise InputError("the table has no PyMC fits to count.")
    failed = fits["status"] == "diagnostics_failed"
    if "centered" in fits and fits["centered"].notna().all():
        centred = fits["centered"].astype(str).str.lower() == "true"
    else:
        centred = pd.Series(np.nan, index=fits.index)
    parts = pd.DataFrame({
        "n_cafes": fits["n_cafes"],
        "fits": 1,
        "failed": failed.astype(int),
        "r_hat": (fits["r_hat_max"] >= thresholds["r_hat_max_below"]).astype(int),
        "ess": (fits["ess_bulk_min"]
                < thresholds["ess_bulk_min_at_least"]).astype(int),
        "divergent": (fits["divergences"]
                      > thresholds["divergences"]).astype(int),
        "centred": centred.astype(float),
        "failed_centred": (failed & centred.eq(True)).astype(float)
        .where(centred.notna()),
        "failed_non_centred": (failed & centred.eq(False)).astype(float)
        .where(centred.notna()),
    })
    out = parts.groupby("n_cafes").sum(min_count=1)
    ints = ["fits", "failed", "r_hat", "ess", "divergent"]
    out[ints] = out[ints].astype(int)
    return out
