"""Bias, RMSE and interval coverage of the study's estimates, with their
Monte Carlo standard errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

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
