"""The one result shape every engine returns.

A :class:`Fit` holds tidy tables with the same index and columns whatever the
engine (lme4 through rpy2, REML from the equations, PyMC, statsmodels), so
comparing engines is a join of tables rather than a translation of objects.

Naming follows lme4, because it is the most widely read output:

* ``fixed``: index ``term`` (``(Intercept)``, ``afternoon``); columns
  ``estimate``, ``std_error``, ``lower``, ``upper``.
* ``varcorr``: index ``name`` with lme4's ``confint(..., oldNames = FALSE)``
  names (``sd_(Intercept)|cafe``, ``cor_afternoon.(Intercept)|cafe``,
  ``sd_afternoon|cafe``, ``sigma``); columns ``estimate``, ``lower``,
  ``upper``.
* ``ranef`` (group offsets, u) and ``coef`` (group coefficients, beta + u):
  long tables with columns ``group``, ``term``, ``estimate``, ``std_error``,
  ``lower``, ``upper``. ``group`` holds the group label as a string (R returns
  factor levels as strings; every engine does the same so joins line up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FIXED_COLUMNS = ("estimate", "std_error", "lower", "upper")
VARCORR_COLUMNS = ("estimate", "lower", "upper")
GROUP_COLUMNS = ("group", "term", "estimate", "std_error", "lower", "upper")

#: What the intervals of a Fit are.
INTERVAL_KINDS = ("profile", "Wald", "HDI", "equal-tailed", "none")

#: When MCMC draws are good enough to summarise (Vehtari et al. 2021): the
#: largest r-hat below R_HAT_MAX, the smallest bulk ESS at least
#: ESS_BULK_MIN, and no divergent transition. See :func:`converged`.
R_HAT_MAX = 1.01
ESS_BULK_MIN = 400


def sd_name(term: str, group: str) -> str:
    """lme4's name of the standard deviation of ``term`` across ``group``."""
    return f"sd_{term}|{group}"


def cor_name(term_a: str, term_b: str, group: str) -> str:
    """lme4's name of the correlation between two terms across ``group``.

    lme4 writes the later term first: ``cor_afternoon.(Intercept)|cafe``.
    """
    return f"cor_{term_b}.{term_a}|{group}"


def varcorr_names(terms: list[str] | tuple[str, ...], group: str) -> list[str]:
    """The row order of ``confint(m, oldNames = FALSE)`` for one grouping factor.

    lme4 lists the lower triangle of the relative covariance column by column:
    for terms (t1, t2) that is sd_t1, cor_t2.t1, sd_t2, then ``sigma``.
    """
    names = []
    for j, tj in enumerate(terms):
        names.append(sd_name(tj, group))
        for tk in terms[j + 1 :]:
            names.append(cor_name(tj, tk, group))
    names.append("sigma")
    return names


@dataclass
class Fit:
    """Estimates of one linear mixed model by one engine, in tidy tables."""

    engine: str
    method: str
    formula: str
    fixed: pd.DataFrame
    varcorr: pd.DataFrame
    ranef: pd.DataFrame
    coef: pd.DataFrame
    criterion: float | None
    interval: str
    level: float = 0.95
    nobs: int | None = None
    ngroups: int | None = None
    messages: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    raw: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_fit_tables(self)

    @property
    def label(self) -> str:
        """A short name for legends and table columns, e.g. ``lme4 (REML)``."""
        return f"{self.engine} ({self.method})"

    @property
    def S(self) -> pd.DataFrame:
        """The estimated covariance matrix of the varying effects.

        Built from ``varcorr``'s standard deviations and correlations:
        ``S[j, k] = rho_jk * sd_j * sd_k`` (``rho_jj = 1``), one row and
        column per varying term (index and columns ``term``). For lme4 and
        REML fits this is ``sigma^2 Lambda Lambda'`` at the estimated theta;
        for a PyMC fit it is built from the posterior means of the SDs and
        the correlation (a plug-in value, not the posterior mean of S).
        """
        return varying_covariance(self.varcorr["estimate"])


def varying_covariance(estimates: pd.Series) -> pd.DataFrame:
    """The covariance matrix of the varying effects from SDs and correlations
    named as lme4 names them (``sd_t|g``, ``cor_t2.t1|g``; see
    :func:`varcorr_names`). One grouping factor only.
    """
    if not isinstance(estimates, pd.Series):
        raise TypeError(
            f"estimates must be a pandas Series indexed by lme4's names, got "
            f"{type(estimates).__name__}."
        )
    sds = [n for n in estimates.index if str(n).startswith("sd_")]
    groups = {str(n).rsplit("|", 1)[-1] for n in sds}
    if len(groups) != 1:
        raise ValueError(
            "S needs the standard deviations of exactly one grouping factor "
            f"(rows named sd_<term>|<group>); varcorr has {list(estimates.index)}."
        )
    group = groups.pop()
    terms = [str(n)[3:].rsplit("|", 1)[0] for n in sds]
    sd = np.array([float(estimates[n]) for n in sds])
    cor = np.eye(len(terms))
    for j, tj in enumerate(terms):
        for k in range(j + 1, len(terms)):
            name = cor_name(tj, terms[k], group)
            if name not in estimates.index:
                raise ValueError(
                    f"varcorr has no row {name!r} for the correlation of "
                    f"{tj} and {terms[k]}; a model with uncorrelated terms "
                    "(||) has no such row: give it a correlation of 0 "
                    "explicitly if that is what you mean."
                )
            cor[j, k] = cor[k, j] = float(estimates[name])
    if not np.all(np.isfinite(sd)) or not np.all(np.isfinite(cor)):
        raise ValueError(f"varcorr holds a non-finite estimate: {estimates.to_dict()}.")
    index = pd.Index(terms, name="term")
    return pd.DataFrame(cor * np.outer(sd, sd), index=index,
                        columns=index.rename("term"))


def check_fit_tables(fit: Fit) -> None:
    """Refuse a Fit whose tables do not have the agreed shape.

    This guards the contract that makes comparison a join; an engine that
    returns something else is a bug in that engine's adapter.
    """
    problems = []
    for name, table, cols in (
        ("fixed", fit.fixed, FIXED_COLUMNS),
        ("varcorr", fit.varcorr, VARCORR_COLUMNS),
        ("ranef", fit.ranef, GROUP_COLUMNS),
        ("coef", fit.coef, GROUP_COLUMNS),
    ):
        if not isinstance(table, pd.DataFrame):
            problems.append(f"{name} is a {type(table).__name__}, not a DataFrame")
            continue
        missing = [c for c in cols if c not in table.columns]
        if missing:
            problems.append(f"{name} lacks columns {missing}")
        elif cols is GROUP_COLUMNS and len(table) and not all(
            isinstance(g, str) for g in table["group"]
        ):
            problems.append(f"{name}.group must hold strings (str(label))")
    if fit.interval not in INTERVAL_KINDS:
        problems.append(f"interval {fit.interval!r} is not one of {INTERVAL_KINDS}")
    if not 0 < fit.level < 1:
        problems.append(f"level {fit.level!r} is not in (0, 1)")
    if problems:
        raise ValueError(
            f"{fit.engine} returned a Fit that breaks the shared shape: "
            + "; ".join(problems)
            + ". Fix the adapter for this engine (see multilevel.fit)."
        )


def convergence_problems(diagnostics: dict[str, Any]) -> list[str]:
    """What breaks the convergence rule in a sampler's ``diagnostics``
    (``r_hat_max``, ``ess_bulk_min``, ``divergences``); empty when none.

    A missing or NaN value breaks the rule: it was not shown to hold.
    """
    problems = []
    divergences = diagnostics.get("divergences")
    if divergences is None or not divergences == 0:
        problems.append(
            f"{divergences} divergent transitions: the posterior may be "
            "biased; try centered=False or more tuning."
        )
    r_hat = diagnostics.get("r_hat_max")
    if r_hat is None or not r_hat < R_HAT_MAX:
        problems.append(
            f"r-hat up to {r_hat:.3f} (>= {R_HAT_MAX}): chains disagree; "
            "sample longer."
            if isinstance(r_hat, float) else f"r-hat is {r_hat!r}, not a number."
        )
    ess = diagnostics.get("ess_bulk_min")
    if ess is None or not ess >= ESS_BULK_MIN:
        problems.append(
            f"bulk ESS down to {ess:.0f} (< {ESS_BULK_MIN}): too few "
            "effective draws for reliable summaries."
            if isinstance(ess, float) else f"bulk ESS is {ess!r}, not a number."
        )
    return problems


def converged(diagnostics: dict[str, Any]) -> bool:
    """The one convergence rule: r-hat < R_HAT_MAX, bulk ESS >= ESS_BULK_MIN
    and no divergence (see :func:`convergence_problems`)."""
    return not convergence_problems(diagnostics)
