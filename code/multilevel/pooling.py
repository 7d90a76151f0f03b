"""No pooling, complete pooling and partial pooling, side by side.

Three ways to estimate each group's coefficients (Gelman and Hill 2007,
ch. 12):

* **no pooling**: each group's own least-squares line
  (:func:`no_pooling_coef`); a term the group's data
  cannot identify (the slope of a cafe never visited in the afternoon) is
  NaN;
* **complete pooling**: one least-squares line for all rows, groups
  ignored (:func:`complete_pooling`);
* **partial pooling**: a mixed model's group coefficients (the ``coef``
  table of a :class:`~multilevel.fit.Fit` from lme4 or PyMC).

:func:`pooling_table` lines the three up per group and term,
:func:`shrinkage` measures how far partial pooling moves each group away
from its own estimate, and :func:`partial_pooling_intercepts` is the closed
form of partial pooling in the intercept-only model, where the weight on a
group's own mean is ``lambda_n = sigma_a^2 / (sigma_a^2 + sigma^2 / n)``.
:func:`varcorr_draws` and :func:`plot_posterior_vs_point` put a posterior
beside a point estimate of the variance components, the place where lme4
and PyMC part ways when there are few groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from multilevel import validate
from multilevel.data import CAFE_FORMULA, CAFE_GROUP, CAFE_TERMS, check_cafe_data
from multilevel.design import design_matrices, group_levels
from multilevel.errors import InputError
from multilevel.fit import Fit, cor_name, sd_name
from multilevel.formula import parse_formula
from multilevel.reml import fit_reml
from multilevel.style import SERIES_COLORS, TRUTH_COLOR, WIDTH, figure, style_axes

__all__ = [
    "MIN_GROUPS",
    "WELL_INFORMED",
    "Parametrisation",
    "choose_parametrisation",
    "coef_wide",
    "paired_coefficients",
    "complete_pooling",
    "group_counts",
    "no_pooling_coef",
    "partial_pooling_intercepts",
    "plot_posterior_vs_point",
    "pooling_table",
    "pooling_weight",
    "shrinkage",
    "shrinkage_weight",
    "varcorr_draws",
]

NO_POOLING = "no pooling"
COMPLETE_POOLING = "complete pooling"


# ------------------------------------------------------------------ helpers


def coef_wide(obj, what: str = "coefficients") -> pd.DataFrame:
    """Per-group coefficients as a wide table: index group (str), one column
    per term.

    ``obj`` is a Fit (its ``coef`` table), a long table with columns
    ``group``, ``term``, ``estimate``, or already a wide table.
    """
    if isinstance(obj, Fit):
        obj = obj.coef
    if not isinstance(obj, pd.DataFrame):
        raise InputError(
            f"{what} must be a Fit or a DataFrame, got {type(obj).__name__}."
        )
    if {"group", "term", "estimate"} <= set(obj.columns):
        if obj.duplicated(["group", "term"]).any():
            raise InputError(f"{what}: a (group, term) pair appears twice.")
        wide = obj.pivot(index="group", columns="term", values="estimate")
    else:
        wide = obj.copy()
    wide.index = pd.Index([str(g) for g in wide.index], name="group")
    wide.columns.name = "term"
    return wide


def paired_coefficients(
    no_pooling, partial, terms
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both estimates as wide tables (:func:`coef_wide`), checked to hold
    ``terms`` and the same groups, so they can be set against each other."""
    own = coef_wide(no_pooling, "no_pooling")
    pp = coef_wide(partial, "partial")
    for name, wide in (("no_pooling", own), ("partial", pp)):
        missing = [t for t in terms if t not in wide.columns]
        if missing:
            raise InputError(
                f"{name} lacks term(s) {missing}; it has {list(wide.columns)}."
            )
    if set(own.index) != set(pp.index):
        raise InputError(
            "no_pooling and partial describe different groups "
            f"({sorted(set(own.index) ^ set(pp.index))[:5]}...); pass "
            "estimates for the same groups."
        )
    return own, pp


def _design(data, formula):
    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"data must be a pandas DataFrame, got {type(data).__name__}."
        )
    return design_matrices(data, formula, order="blocked")


def no_pooling_coef(data: pd.DataFrame, formula) -> pd.DataFrame:
    """Each group's own least-squares coefficients (no pooling), long form.

    Fits the random terms of ``formula`` by ordinary least squares within
    each group separately. A term that a group's own data cannot identify
    gets NaN, the others their least-squares estimate (as R's ``lm``
    reports ``NA`` for an aliased coefficient): a cafe never visited in the
    afternoon has no slope, but its intercept is its morning mean.
    Columns ``group``, ``term``, ``estimate`` (labels as strings).
    """
    dm = design_matrices(data, formula, order="blocked")
    J, q = dm.n_groups, dm.q
    rows = []
    for j, label in enumerate(dm.groups):
        mask = dm.group_index == j
        T = np.column_stack(
            [dm.Z[mask, k * J + j] for k in range(q)]
        )
        y = dm.y[mask]
        estimate = np.linalg.lstsq(T, y, rcond=None)[0]  # minimum norm
        # term k is identified iff e_k lies in the row space of T
        identified = np.isclose(np.diag(np.linalg.pinv(T) @ T), 1.0)
        estimate[~identified] = np.nan
        for k, term in enumerate(dm.random_terms):
            rows.append((label, term, float(estimate[k])))
    return pd.DataFrame(rows, columns=["group", "term", "estimate"])


def group_counts(data: pd.DataFrame, formula: str) -> pd.DataFrame:
    """Rows per group, and rows where each varying slope is non-zero.

    Index ``group`` (labels as strings, in lme4's order); column ``n`` and
    one column ``n_<term>`` per varying term other than the intercept (for
    the cafes: ``n_afternoon``, the afternoon visits).
    """
    dm = _design(data, formula)
    J = dm.n_groups
    out = pd.DataFrame(
        {"n": np.bincount(dm.group_index, minlength=J)},
        index=pd.Index(list(dm.groups), name="group"),
    )
    Z = dm.Z.toarray() if hasattr(dm.Z, "toarray") else np.asarray(dm.Z)
    for k, term in enumerate(dm.random_terms):
        if term == "(Intercept)":
            continue
        block = Z[:, k * J:(k + 1) * J]
        out[f"n_{term}"] = (block != 0).sum(axis=0).astype(np.int64)
    return out


# ------------------------------------------------------ complete pooling


def complete_pooling(data: pd.DataFrame, formula: str) -> pd.DataFrame:
    """One least-squares line for all rows, ignoring the groups.

    Regresses the response on the fixed terms of ``formula`` (its ``X``).
    Returns a table indexed by ``term`` with ``estimate`` and the classical
    ``std_error`` (residual variance on n - p degrees of freedom), which
    treats every row as independent: too small when groups differ.
    """
    dm = _design(data, formula)
    X, y = np.asarray(dm.X, dtype=float), np.asarray(dm.y, dtype=float)
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise InputError(
            f"the fixed terms {list(dm.fixed_names)} are collinear in these "
            "data (e.g. a predictor that never changes); drop one of them."
        )
    if n <= p:
        raise InputError(
            f"{n} rows cannot estimate {p} coefficients and a residual "
            "variance; pass more data."
        )
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    residual = y - X @ beta
    sigma2 = residual @ residual / (n - p)
    XtX_inv = np.linalg.inv(X.T @ X)
    return pd.DataFrame(
        {"estimate": beta, "std_error": np.sqrt(sigma2 * np.diag(XtX_inv))},
        index=pd.Index(list(dm.fixed_names), name="term"),
    )


# ------------------------------------------------------- side by side


def pooling_table(
    data: pd.DataFrame,
    formula: str,
    partial: Mapping[str, object],
) -> pd.DataFrame:
    """Each group's coefficients under no, complete and partial pooling.

    ``partial`` maps a column label to a Fit (or a table of per-group
    coefficients, see :func:`coef_wide`), e.g. ``{"lme4": fit, "PyMC":
    fit_b}``. Returns a long table indexed by (``group``, ``term``), groups
    in lme4's order, with the counts of :func:`group_counts`, the columns
    ``no pooling`` and ``complete pooling`` and one column per entry of
    ``partial``. Complete pooling gives every group the same line; for a
    varying term that is not a fixed term it is 0.
    """
    if not isinstance(partial, Mapping) or not partial:
        raise InputError(
            "partial must be a non-empty dict label -> Fit, e.g. "
            "{'lme4': fit_lmer(...)}."
        )
    clash = {NO_POOLING, COMPLETE_POOLING} & set(partial)
    if clash:
        raise InputError(f"partial uses reserved label(s) {sorted(clash)}.")
    counts = group_counts(data, formula)
    own = coef_wide(no_pooling_coef(data, formula), NO_POOLING)
    pooled = complete_pooling(data, formula)["estimate"]
    groups = list(counts.index)
    terms = list(own.columns)
    index = pd.MultiIndex.from_product([groups, terms], names=["group", "term"])
    table = counts.reindex(index.get_level_values("group"))
    table.index = index
    table[NO_POOLING] = own.stack().reindex(index).to_numpy()
    table[COMPLETE_POOLING] = [
        float(pooled.get(term, 0.0)) for term in index.get_level_values("term")
    ]
    for label, fit in partial.items():
        wide = coef_wide(fit, f"partial[{label!r}]")
        if set(wide.index) != set(groups) or not set(terms) <= set(wide.columns):
            raise InputError(
                f"partial[{label!r}] does not hold the groups {groups[:3]}... "
                f"and terms {terms} of these data; fit it to the same data "
                "and formula."
            )
        table[label] = wide[terms].stack().reindex(index).to_numpy()
    return table


def shrinkage(
    no_pooling,
    partial,
    terms: Sequence[str] = ("(Intercept)", "afternoon"),
) -> pd.DataFrame:
    """How far partial pooling moves each group from its own estimate.

    One row per group (index ``group``): one column per term with the move
    ``partial - no_pooling``, and ``distance``, the Euclidean length of the
    move over ``terms`` (the length of the group's arrow in
    :func:`multilevel.plots.plot_shrinkage`). A group whose own estimate of
    some term is undefined gets NaN.
    """
    terms = list(terms)
    own, pp = paired_coefficients(no_pooling, partial, terms)
    move = pp.loc[own.index, terms] - own[terms]
    move["distance"] = np.sqrt((move[terms] ** 2).sum(axis=1, skipna=False))
    move.columns.name = None
    return move


# ------------------------------------ partial pooling in closed form


def pooling_weight(n, sigma_a: float, sigma: float) -> np.ndarray:
    """The weight on a group's own mean after ``n`` observations.

    ``lambda_n = sigma_a^2 / (sigma_a^2 + sigma^2 / n)``: the precision of
    the group's mean (n / sigma^2) as a share of it plus the population's
    precision (1 / sigma_a^2).
    """
    sigma_a = validate.real_number(
        "sigma_a", sigma_a, positive=True, what="a standard deviation"
    )
    sigma = validate.real_number(
        "sigma", sigma, positive=True, what="a standard deviation"
    )
    n = np.asarray(n, dtype=float)
    if np.any(~np.isfinite(n)) or np.any(n < 1):
        raise InputError(f"n must hold counts >= 1, got {n!r}.")
    return sigma_a**2 / (sigma_a**2 + sigma**2 / n)


def shrinkage_weight(Z_j, S, sigma: float) -> np.ndarray:
    """The matrix weight on a group's own coefficients.

    ``W_j = (Z_j' Z_j + sigma^2 S^{-1})^{-1} Z_j' Z_j``: the group's data
    (``Z_j' Z_j / sigma^2``) against the population's precision ``S^{-1}``,
    the many-term form of :func:`pooling_weight`. With the group's own
    least-squares coefficients ``own`` and the fixed effects ``beta``, the
    partial-pooling coefficients are ``beta + W_j (own - beta)``: lme4's
    ``coef`` when ``S``, ``sigma`` and ``beta`` are its estimates. ``Z_j``
    holds the group's rows of the varying terms' columns (n_j x q), ``S``
    is q x q (e.g. :attr:`Fit.S <multilevel.fit.Fit.S>`).
    """
    Z_j = np.asarray(Z_j, dtype=float)
    S = np.asarray(S, dtype=float)
    sigma = validate.real_number(
        "sigma", sigma, positive=True, what="a standard deviation"
    )
    if Z_j.ndim != 2 or S.shape != (Z_j.shape[1], Z_j.shape[1]):
        raise InputError(
            f"Z_j must be n_j x q and S q x q for the same q; got Z_j of shape "
            f"{Z_j.shape} and S of shape {S.shape}."
        )
    if not (np.all(np.isfinite(Z_j)) and np.all(np.isfinite(S))):
        raise InputError("Z_j and S must hold finite numbers.")
    if not np.allclose(S, S.T) or np.any(np.linalg.eigvalsh(S) <= 0):
        raise InputError(
            "S must be symmetric and positive definite; a singular fit (an SD "
            "of 0 or a correlation of +-1) has no S^{-1}, so its weight is "
            "not defined."
        )
    ZtZ = Z_j.T @ Z_j
    return np.linalg.solve(ZtZ + sigma**2 * np.linalg.inv(S), ZtZ)


def partial_pooling_intercepts(
    data: pd.DataFrame,
    formula: str,
    mean: float,
    sigma_a: float,
    sigma: float,
) -> pd.DataFrame:
    """Partial pooling of group means in the intercept-only model.

    For ``y ~ 1 + (1 | g)`` with population mean ``mean``, SD of the group
    intercepts ``sigma_a`` and residual SD ``sigma`` (known or estimated),
    the conditional mean of group j's intercept is
    ``mean + lambda_j * (ybar_j - mean)`` with ``lambda_j`` from
    :func:`pooling_weight`. Returns, per group (index ``group``): ``n``,
    ``own`` (ybar_j), ``weight`` (lambda_j) and ``estimate``.
    """
    parsed = parse_formula(formula, data)
    if list(parsed.fixed_terms) != ["(Intercept)"] or list(
        parsed.random_terms
    ) != ["(Intercept)"]:
        raise InputError(
            f"partial_pooling_intercepts needs an intercept-only formula such "
            f"as 'wait ~ 1 + (1 | cafe)', got {parsed.text!r}."
        )
    mean = validate.real_number("mean", mean)
    dm = _design(data, formula)
    n = np.bincount(dm.group_index, minlength=dm.n_groups)
    own = np.bincount(dm.group_index, weights=dm.y, minlength=dm.n_groups) / n
    weight = pooling_weight(n, sigma_a, sigma)
    return pd.DataFrame(
        {
            "n": n.astype(np.int64),
            "own": own,
            "weight": weight,
            "estimate": float(mean) + weight * (own - float(mean)),
        },
        index=pd.Index(list(dm.groups), name="group"),
    )


# ------------------------------------------- posterior beside a point


def varcorr_draws(fit: Fit) -> pd.DataFrame:
    """The posterior draws of a PyMC cafe Fit's variance components.

    One column per row of ``fit.varcorr`` (lme4's names: the SDs across
    cafes, their correlation, ``sigma``), one row per draw (chains
    stacked). Their means are ``fit.varcorr["estimate"]``.
    """
    post = getattr(getattr(fit, "raw", None), "posterior", None)
    if not isinstance(fit, Fit) or post is None:
        raise InputError(
            "varcorr_draws needs a Fit from fit_pymc (its raw InferenceData "
            f"holds the draws), got {type(fit).__name__}"
            + (f" from {fit.engine}" if isinstance(fit, Fit) else "")
            + "."
        )
    def flat(values) -> np.ndarray:
        return np.asarray(values.transpose("chain", "draw"), float).ravel()

    columns = {}
    for term in CAFE_TERMS:
        columns[sd_name(term, CAFE_GROUP)] = flat(
            post["sigma_cafe"].sel(effect=term)
        )
    columns[cor_name(*CAFE_TERMS, CAFE_GROUP)] = flat(post["rho"])
    columns["sigma"] = flat(post["sigma_within"])
    names = [n for n in fit.varcorr.index if n in columns]
    if len(names) != len(columns):
        raise InputError(
            f"fit.varcorr has rows {list(fit.varcorr.index)}, not the cafe "
            "model's; varcorr_draws reads cafe_model fits only."
        )
    return pd.DataFrame({n: columns[n] for n in names})


def plot_posterior_vs_point(
    bayes: Fit,
    point: Fit,
    names: Sequence[str],
    truth: pd.Series | None = None,
    titles: Mapping[str, str] | None = None,
    bins: int = 40,
) -> Figure:
    """Histograms of posterior draws with a point estimate marked.

    One panel per variance-component name (lme4's names, e.g.
    ``cor_afternoon.(Intercept)|cafe``): the draws of ``bayes`` (a PyMC
    Fit) as a density histogram, a solid vertical line at ``point``'s
    estimate (e.g. lme4's), a dotted one at the posterior mean and, with
    ``truth`` (a Series by name, e.g. ``Truth.varcorr``), a dashed one at
    the true value.
    """
    draws = varcorr_draws(bayes)
    if not isinstance(point, Fit):
        raise InputError(f"point must be a Fit, got {type(point).__name__}.")
    names = list(names)
    if not names:
        raise InputError("names is empty: pass the varcorr rows to draw.")
    for name in names:
        if name not in draws.columns or name not in point.varcorr.index:
            raise InputError(
                f"{name!r} is not a varcorr row of both fits; choose from "
                f"{list(draws.columns)}."
            )
    fig = figure(WIDTH, 2.6)
    axes = fig.subplots(1, len(names), squeeze=False).ravel()
    for ax, name in zip(axes, names):
        ax.hist(draws[name], bins=bins, density=True, color=SERIES_COLORS[1],
                alpha=0.6, label=f"{bayes.engine} posterior", gid="posterior")
        ax.axvline(float(point.varcorr.loc[name, "estimate"]),
                   color=SERIES_COLORS[0], linewidth=2.0,
                   label=f"{point.engine} estimate", gid="point")
        ax.axvline(float(draws[name].mean()), color=SERIES_COLORS[1],
                   linestyle=":", linewidth=1.5, label="posterior mean",
                   gid="posterior-mean")
        if truth is not None and name in truth.index:
            ax.axvline(float(truth[name]), color=TRUTH_COLOR, linestyle="--",
                       linewidth=1.0, label="truth", gid="truth")
        ax.set_title((titles or {}).get(name, name))
        ax.set_yticks([])
        style_axes(ax)
    axes[0].legend(fontsize=7, frameon=False, loc="upper right")
    return fig


# ------------------------------------ choosing the parametrisation of PyMC

#: A cafe counts as well informed when its own data carry at least this
#: share of its least-informed coefficient (the smallest eigenvalue of its
#: shrinkage weight W_j); the centred form is chosen when the median cafe is.
WELL_INFORMED = 0.5

#: With fewer cafes the non-centred form is chosen whatever the weights: the
#: REML estimates of the SDs, at which the weights are computed, are then
#: too uncertain to vouch for them (an SD estimated from J groups has a
#: relative standard error of about 1 / sqrt(2 (J - 1)), 35% at 5 cafes),
#: and the posterior reaches down to small SDs, where every cafe is pooled
#: hard and the centred form meets its funnel.
MIN_GROUPS = 10


@dataclass(frozen=True)
class Parametrisation:
    """Which form of the cafe effects to sample, and the evidence for it.

    ``centered`` is the choice; ``reason`` says why in one sentence;
    ``weights`` has one row per cafe (``group``, ``n`` visits, ``weight``:
    the smallest eigenvalue of the cafe's shrinkage weight W_j at the REML
    estimates, NaN when the REML fit is singular); ``summary`` holds the
    minimum, median and maximum weight, the threshold, the number of cafes
    and whether the REML fit was singular.
    """

    centered: bool
    reason: str
    weights: pd.DataFrame = field(repr=False)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def form(self) -> str:
        """``"centred"`` or ``"non-centred"``."""
        return "centred" if self.centered else "non-centred"


def choose_parametrisation(
    data: pd.DataFrame, threshold: float = WELL_INFORMED,
) -> Parametrisation:
    """Choose the centred or non-centred cafe model from how well the data
    inform each cafe.

    Fits the model by REML (:func:`multilevel.reml.fit_reml`, no intervals)
    and computes each cafe's shrinkage weight
    ``W_j = (Z_j'Z_j + sigma^2 S^{-1})^{-1} Z_j'Z_j``
    (:func:`multilevel.pooling.shrinkage_weight`). Its eigenvalues, between
    0 and 1, are the shares of the cafe's coefficients that come from its
    own visits rather than from the population; the smallest is the cafe's
    least-informed direction, where a funnel would form. When the median
    cafe's smallest eigenvalue is at least ``threshold`` the likelihood pins
    the cafe effects whatever the population SDs, and the centred form
    samples well; otherwise the cafe effects follow the SDs (a funnel) and
    the non-centred form is the one NUTS can explore. A singular REML fit
    (an SD at 0 or a correlation at +-1) pools some direction completely,
    and fewer than :data:`MIN_GROUPS` cafes leave the SDs too uncertain for
    the weights at their estimates to speak for the posterior: both
    non-centred.
    """
    check_cafe_data(data)
    threshold = validate.share("threshold", threshold,
                               what="a share of information", example=WELL_INFORMED)
    labels, idx = group_levels(data[CAFE_GROUP])
    n = np.bincount(idx, minlength=len(labels))
    fit = fit_reml(data, CAFE_FORMULA, intervals="none")
    singular = bool(fit.diagnostics.get("singular", False))
    A = data["afternoon"].to_numpy(dtype="float64")
    weights = np.full(len(labels), np.nan)
    if not singular:
        S = fit.S.to_numpy()
        sigma = float(fit.varcorr.loc["sigma", "estimate"])
        # each cafe's afternoon column, from one sort (not a scan per cafe)
        by_cafe = np.split(A[np.argsort(idx, kind="stable")], np.cumsum(n)[:-1])
        for j, a_j in enumerate(by_cafe):
            Z_j = np.column_stack([np.ones(n[j]), a_j])
            # W_j is similar to a symmetric matrix: its eigenvalues are real
            W = shrinkage_weight(Z_j, S, sigma)
            weights[j] = float(np.min(np.linalg.eigvals(W).real))
    table = pd.DataFrame({"group": labels, "n": n, "weight": weights})
    nan = float("nan")
    summary = {
        "n_groups": len(labels), "min_groups": MIN_GROUPS,
        "singular": singular, "threshold": threshold,
        "weight_min": nan if singular else float(np.min(weights)),
        "weight_median": nan if singular else float(np.median(weights)),
        "weight_max": nan if singular else float(np.max(weights)),
    }
    if singular:
        centered = False
        reason = (
            "the REML fit is singular (an SD at 0 or a correlation at +-1), "
            "so some direction of every cafe is pooled completely: "
            "non-centred"
        )
    elif len(labels) < MIN_GROUPS:
        centered = False
        reason = (
            f"only {len(labels)} cafes (fewer than {MIN_GROUPS}): the "
            "population SDs are too uncertain for the cafes' weights at "
            f"their estimates (median {summary['weight_median']:.2f}) to "
            "speak for the posterior: non-centred"
        )
    else:
        med = summary["weight_median"]
        centered = med >= threshold
        reason = (
            f"the median cafe's own visits carry {med:.2f} of its "
            f"least-informed coefficient (from {summary['weight_min']:.2f} "
            f"to {summary['weight_max']:.2f} over {len(labels)} cafes), "
            + (f"at least {threshold:g}: centred" if centered
               else f"below {threshold:g}: non-centred")
        )
    return Parametrisation(
        centered=bool(centered), reason=reason, weights=table, summary=summary
    )
