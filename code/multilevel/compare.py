"""Compare fits of one model by several engines, term by term.

Every engine returns the same :class:`~multilevel.fit.Fit` tables, so a
comparison is a join. :func:`compare` stacks the tables of several fits in
**long** (tidy) form: one row per engine and term (``fixed``), per engine and
variance component (``varcorr``), per engine, group and term (``ranef``,
``coef``), with an ``engine`` column holding each fit's label. Long tables
stay valid whatever the number of engines and plot directly;
:meth:`Comparison.wide` pivots one column to one column per engine when a
side-by-side view is wanted.

:func:`unbake` (from :mod:`multilevel.bayes`, and offered here too) turns
PyMC's cafe coefficients, which have the population means "baked in", into
the offsets lme4 reports as random effects, draw by draw: ``a_cafe =
alpha_cafe - a_bar``, ``b_cafe = beta_cafe - b_bar``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import InputError
from multilevel.fit import Fit


def __getattr__(name: str) -> Any:
    # unbake is PyMC's: importing it here at the top would start PyMC for
    # every comparison, so it is fetched from multilevel.bayes when asked for.
    if name == "unbake":
        from multilevel.bayes import unbake

        return unbake
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The tables compared, and the columns that identify a row in each.
KEYS = {
    "fixed": ["term"],
    "varcorr": ["name"],
    "ranef": ["group", "term"],
    "coef": ["group", "term"],
}
#: The value columns compared (where a table has them).
VALUES = ("estimate", "std_error", "lower", "upper")


def _normal_formula(text: str) -> str:
    return " ".join(str(text).split())


def _labels(fits: tuple[Fit, ...]) -> list[str]:
    """Each fit's label, numbered where two fits share one."""
    raw = [f.label for f in fits]
    out = []
    for k, label in enumerate(raw):
        if raw.count(label) > 1:
            label = f"{label} #{raw[: k + 1].count(label)}"
        out.append(label)
    return out


def _check_fits(fits: tuple[Any, ...]) -> None:
    if len(fits) < 2:
        raise InputError(
            f"compare needs at least two fits, got {len(fits)}; pass e.g. "
            f"compare(fit_lmer(...), fit_pymc(...))."
        )
    for k, f in enumerate(fits):
        if not isinstance(f, Fit):
            raise InputError(
                f"argument {k + 1} of compare is a {type(f).__name__}, not a "
                f"Fit; pass what fit_lmer, fit_reml or fit_pymc return."
            )
    formulas = {_normal_formula(f.formula) for f in fits}
    if len(formulas) > 1:
        listing = "; ".join(f"{f.label}: {f.formula}" for f in fits)
        raise InputError(
            f"the fits are of different models ({listing}); compare fits of "
            f"the same formula on the same data."
        )
    for attr, what in (("nobs", "observations"), ("ngroups", "groups")):
        sizes = {getattr(f, attr) for f in fits}
        if len(sizes) > 1:
            listing = "; ".join(f"{f.label}: {getattr(f, attr)}" for f in fits)
            raise InputError(
                f"the fits saw different numbers of {what} ({listing}); "
                f"compare fits of the same data."
            )


def _stack(fits: tuple[Fit, ...], labels: list[str], table: str) -> pd.DataFrame:
    keys = KEYS[table]
    parts = []
    for f, label in zip(fits, labels):
        t = getattr(f, table)
        if table in ("fixed", "varcorr"):
            t = t.reset_index()
            t = t.rename(columns={t.columns[0]: keys[0]})
        t = t[keys + [c for c in VALUES if c in t.columns]].copy()
        t.insert(0, "engine", label)
        parts.append(t)
    out = pd.concat(parts, ignore_index=True)
    dup = out.duplicated(["engine"] + keys)
    if dup.any():
        first = out.loc[dup].iloc[0]
        raise InputError(
            f"{first['engine']} has more than one {table} row for "
            f"{tuple(first[keys])}; a Fit table must have one row per key."
        )
    return out


def _pair_stats(
    long: pd.DataFrame, keys: list[str], a: str, b: str, table: str
) -> dict[str, Any]:
    left = long[long["engine"] == a].set_index(keys)["estimate"]
    right = long[long["engine"] == b].set_index(keys)["estimate"]
    if set(left.index) != set(right.index):
        only_a = sorted(map(str, set(left.index) - set(right.index)))
        only_b = sorted(map(str, set(right.index) - set(left.index)))
        raise InputError(
            f"{table} rows differ between {a} and {b}: only in {a}: {only_a}; "
            f"only in {b}: {only_b}. The fits do not describe the same model."
        )
    right = right.reindex(left.index)
    diff = (left - right).abs()
    scale = np.maximum(left.abs(), right.abs())
    rel = (diff / scale).where(scale > 0, 0.0)
    return {
        "table": table,
        "engine_a": a,
        "engine_b": b,
        "n": len(diff),
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(rel.max()),
        "worst": diff.idxmax() if len(diff) else None,
    }


@dataclass
class Comparison:
    """Joined tables of several fits and how closely the engines agree.

    ``fixed``, ``varcorr``, ``ranef``, ``coef``: long tables with an
    ``engine`` column (each fit's label), the key columns of the table
    (``term``; ``name``; ``group``, ``term``) and the value columns the fits
    have (``estimate``, ``std_error``, ``lower``, ``upper``).

    ``agreement``: one row per table and pair of engines with ``n`` (rows
    compared), ``max_abs_diff`` = max |a - b| of the estimates,
    ``max_rel_diff`` = max |a - b| / max(|a|, |b|) (symmetric, 0 where both
    are 0; large for estimates near zero, such as small offsets), and
    ``worst`` (the key of the largest absolute difference).

    ``ranef_correlation``: Pearson correlation of the offset estimates
    across groups, per pair of engines and term.
    """

    engines: list[str]
    fixed: pd.DataFrame
    varcorr: pd.DataFrame
    ranef: pd.DataFrame
    coef: pd.DataFrame
    agreement: pd.DataFrame
    ranef_correlation: pd.DataFrame
    fits: tuple[Fit, ...] = field(repr=False, default=())

    def wide(self, table: str, column: str = "estimate") -> pd.DataFrame:
        """One column per engine (in the order given) for ``column``."""
        if table not in KEYS:
            raise InputError(
                f"unknown table {table!r}; choose one of {', '.join(KEYS)}."
            )
        long = getattr(self, table)
        if column not in long.columns:
            raise InputError(
                f"{table} has no column {column!r}; it has "
                f"{', '.join(c for c in long.columns if c in VALUES)}."
            )
        keys = KEYS[table]
        out = long.pivot(index=keys, columns="engine", values=column)
        out = out.reindex(columns=self.engines)
        first = long[long["engine"] == self.engines[0]].set_index(keys).index
        out = out.reindex(first.append(out.index.difference(first)))
        out.columns.name = None
        return out

    def side_by_side(
        self, table: str, truth: pd.Series | None = None, digits: int = 2
    ) -> pd.DataFrame:
        """Estimates with intervals, one text column per engine, for display.

        Each cell reads ``estimate [lower, upper]`` rounded to ``digits``
        (``estimate`` alone where a fit has no interval for the row). With
        ``truth`` (a Series indexed like the table's key, e.g.
        ``sim.truth.fixed`` or ``sim.truth.varcorr``) a ``truth`` column is
        added; every row of the table must have a true value.
        """
        if table not in ("fixed", "varcorr"):
            raise InputError(
                f"side_by_side shows 'fixed' or 'varcorr', not {table!r}; use "
                "wide() for the per-group tables."
            )
        if not isinstance(digits, int) or digits < 0:
            raise InputError(f"digits must be a non-negative int, got {digits!r}.")
        est = self.wide(table, "estimate")
        lo = self.wide(table, "lower")
        hi = self.wide(table, "upper")

        def cell(e: float, a: float, b: float) -> str:
            if np.isnan(e):
                return ""
            if np.isnan(a) or np.isnan(b):
                return f"{e:.{digits}f}"
            return f"{e:.{digits}f} [{a:.{digits}f}, {b:.{digits}f}]"

        out = pd.DataFrame(
            {
                engine: [
                    cell(*v)
                    for v in zip(est[engine], lo[engine], hi[engine])
                ]
                for engine in self.engines
            },
            index=est.index,
        )
        if truth is not None:
            truth = pd.Series(truth)
            missing = [k for k in out.index if k not in truth.index]
            if missing:
                raise InputError(
                    f"truth has no value for {missing}; pass a Series indexed "
                    f"by {list(out.index)} (e.g. sim.truth.{table})."
                )
            out["truth"] = [f"{truth[k]:.{digits}f}" for k in out.index]
        return out


def compare(*fits: Fit) -> Comparison:
    """Join the tables of two or more fits and measure their agreement.

    Refuses fits of different formulas or of data with different numbers of
    observations or groups (:class:`InputError`).
    """
    _check_fits(fits)
    labels = _labels(fits)
    tables = {name: _stack(fits, labels, name) for name in KEYS}
    rows = []
    cors = []
    for a, b in itertools.combinations(labels, 2):
        for name, keys in KEYS.items():
            rows.append(_pair_stats(tables[name], keys, a, b, name))
        ranef = tables["ranef"]
        for term in pd.unique(ranef["term"]):
            sub = ranef[ranef["term"] == term]
            x = sub[sub["engine"] == a].set_index("group")["estimate"]
            y = sub[sub["engine"] == b].set_index("group")["estimate"]
            y = y.reindex(x.index)
            if len(x) > 1 and x.std() > 0 and y.std() > 0:
                r = float(np.corrcoef(x, y)[0, 1])
            else:  # undefined for fewer than two groups or a constant column
                r = float("nan")
            cors.append(
                {"engine_a": a, "engine_b": b, "term": term, "n": len(x), "r": r}
            )
    return Comparison(
        engines=labels,
        agreement=pd.DataFrame(rows),
        ranef_correlation=pd.DataFrame(cors),
        fits=tuple(fits),
        **tables,
    )
