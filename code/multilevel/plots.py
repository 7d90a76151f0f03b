"""The figures the chapters need, each returned as a matplotlib Figure.

Nothing is shown (no ``plt.show``) and no global style is changed: every
function builds its own Figure with :class:`matplotlib.figure.Figure`, so it
works under any backend and does not leak figures. Colours are the Okabe-Ito
palette (distinguishable with the common colour-vision deficiencies) and
markers differ by series too, so the figures also read in grey. Default
sizes fit a PDF text width (about 6.5 inches) at readable font sizes.

Inputs are :class:`multilevel.fit.Fit` objects or DataFrames of the same
shape as a Fit's tables (see :mod:`multilevel.fit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch
from matplotlib.transforms import blended_transform_factory

from multilevel.design import DesignMatrices
from multilevel.errors import InputError
from multilevel.fit import Fit

# no_pooling_coef and the style's names are also offered here, where the
# chapters find them next to the figures that use them
from multilevel.pooling import no_pooling_coef as no_pooling_coef
from multilevel.pooling import paired_coefficients
from multilevel.style import OKABE_ITO as OKABE_ITO
from multilevel.style import SERIES_COLORS as SERIES_COLORS
from multilevel.style import SERIES_MARKERS as SERIES_MARKERS
from multilevel.style import TRUTH_COLOR as TRUTH_COLOR
from multilevel.style import WIDTH as WIDTH
from multilevel.style import figure, style_axes


def _need_frame(obj, name: str, columns: Sequence[str]) -> pd.DataFrame:
    if not isinstance(obj, pd.DataFrame):
        raise InputError(
            f"{name} must be a pandas DataFrame (or a Fit), got "
            f"{type(obj).__name__}."
        )
    missing = [c for c in columns if c not in obj.columns]
    if missing:
        raise InputError(
            f"{name} lacks column(s) {missing}; it has {list(obj.columns)}. "
            "Pass a table of the shape documented in multilevel.fit."
        )
    return obj


# ----------------------------------------------------------------- the data


def cafe_order(data: pd.DataFrame, group: str = "cafe", x: str = "afternoon",
               y: str = "wait") -> list:
    """Groups ordered by increasing mean ``y`` where ``x == 0`` (morning).

    Groups without a morning visit come last (in label order).
    """
    morning = data[data[x] == 0].groupby(group)[y].mean()
    morning = morning.reindex(sorted(data[group].unique()))
    return list(morning.sort_values(kind="stable", na_position="last").index)


def plot_cafes(data: pd.DataFrame, truth=None, *, group: str = "cafe",
               x: str = "afternoon", y: str = "wait") -> Figure:
    """Each cafe's morning and afternoon waits, cafes by morning mean.

    Cafes run along the x axis in order of increasing average morning wait
    (as in the source post). For each cafe the morning waits sit to the left
    and the afternoon waits to the right, and a line joins the two means, so
    its slope shows the afternoon difference. With ``truth`` (a
    :class:`multilevel.data.Truth`) each cafe's true morning wait
    (alpha_cafe) and afternoon wait (alpha_cafe + beta_cafe) are marked.
    """
    data = _need_frame(data, "data", [group, x, y])
    if len(data) == 0:
        raise InputError("data has no rows; pass the visits to plot.")
    if not data[x].isin([0, 1]).all():
        raise InputError(
            f"Column {x!r} must hold 0 (morning) and 1 (afternoon) only; found "
            f"{sorted(set(data[x]) - {0, 1})[:5]}."
        )
    if data[y].isna().any():
        raise InputError(f"Column {y!r} has missing values; drop them first.")
    order = cafe_order(data, group, x, y)
    position = {g: i for i, g in enumerate(order)}
    pos = data[group].map(position).to_numpy(dtype=float)
    afternoon = data[x].to_numpy() == 1

    fig = figure(WIDTH, 3.2)
    ax = fig.add_subplot()
    offset = 0.18
    ax.scatter(pos[~afternoon] - offset, data[y].to_numpy()[~afternoon], s=12,
               marker="o", color=SERIES_COLORS[0], alpha=0.8, label="morning",
               zorder=3, gid="morning")
    ax.scatter(pos[afternoon] + offset, data[y].to_numpy()[afternoon], s=12,
               marker="s", color=SERIES_COLORS[1], alpha=0.8, label="afternoon",
               zorder=3, gid="afternoon")
    means = data.groupby([group, x])[y].mean()
    for g in order:
        m0, m1 = means.get((g, 0), np.nan), means.get((g, 1), np.nan)
        if np.isfinite(m0) and np.isfinite(m1):
            i = position[g]
            ax.plot([i - offset, i + offset], [m0, m1], color="#555555",
                    linewidth=1.0, zorder=2)
    if truth is not None:
        cafes = getattr(truth, "cafes", None)
        cafes = _need_frame(cafes, "truth.cafes", ["cafe", "alpha_cafe",
                                                   "beta_cafe"])
        cafes = cafes.set_index("cafe")
        known = [g for g in order if g in cafes.index]
        if len(known) != len(order):
            raise InputError(
                "truth does not describe every cafe in data; pass the truth of "
                "the simulation that made the data."
            )
        i = np.array([position[g] for g in known], dtype=float)
        alpha = cafes.loc[known, "alpha_cafe"].to_numpy()
        beta = cafes.loc[known, "beta_cafe"].to_numpy()
        ax.scatter(i - offset, alpha, marker="_", s=90, color=TRUTH_COLOR,
                   linewidths=1.5, label="true mean", zorder=4, gid="truth")
        ax.scatter(i + offset, alpha + beta, marker="_", s=90,
                   color=TRUTH_COLOR, linewidths=1.5, zorder=4, gid="truth")
    ax.set_xticks(range(len(order)), [str(g) for g in order])
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel(f"{group} (ordered by mean morning {y})")
    ax.set_ylabel(y)
    ax.legend(fontsize=8, ncols=3, loc="upper left", frameon=False)
    style_axes(ax)
    return fig


# ------------------------------------------------------------------------ Z


def plot_z(Z, *, n_terms: int | None = None, order: str | None = None,
           terms: Sequence[str] | None = None, group: str | None = None,
           max_rows: int | None = None) -> Figure:
    """Heat map of Z (rows: observations, columns: random effects).

    ``Z`` is a :class:`multilevel.design.DesignMatrices` (which knows its
    layout) or an array / sparse matrix with ``n_terms`` and ``order``
    (``"blocked"`` or ``"interleaved"``). Blocked layouts get one labelled
    block per term; interleaved layouts get a separator per group. Only the
    first ``max_rows`` rows are drawn if given.
    """
    if isinstance(Z, DesignMatrices):
        dm = Z
        matrix = dm.Z
        n_terms = dm.q if n_terms is None else n_terms
        order = dm.order if order is None else order
        terms = dm.random_terms if terms is None else terms
        group = dm.formula.group if group is None else group
    else:
        matrix = Z
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.size == 0:
        raise InputError(f"Z must be a non-empty 2-d matrix, got shape {matrix.shape}.")
    if order not in ("blocked", "interleaved"):
        raise InputError(
            "plot_z needs order='blocked' or 'interleaved' for a bare matrix "
            "(or pass the DesignMatrices from design_matrices)."
        )
    if not isinstance(n_terms, int) or n_terms < 1 or matrix.shape[1] % n_terms:
        raise InputError(
            f"n_terms must be a positive int dividing Z's {matrix.shape[1]} "
            f"columns, got {n_terms!r}."
        )
    terms = list(terms) if terms is not None else [f"term {k + 1}" for k in
                                                   range(n_terms)]
    if len(terms) != n_terms:
        raise InputError(f"terms has {len(terms)} names for {n_terms} terms.")
    if max_rows is not None:
        matrix = matrix[:max_rows]
    n, cols = matrix.shape
    J = cols // n_terms

    fig = figure(WIDTH, 4.0)
    ax = fig.add_subplot()
    vmax = np.abs(matrix).max() or 1.0
    image = ax.imshow(matrix, aspect="auto", interpolation="nearest",
                      cmap="cividis", vmin=min(0.0, matrix.min()), vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8, label="value")
    top = blended_transform_factory(ax.transData, ax.transAxes)
    suffix = f" | {group}" if group else ""
    if order == "blocked":
        for k in range(1, n_terms):
            ax.axvline(k * J - 0.5, color="white", linewidth=1.5, gid="separator")
        for k, term in enumerate(terms):
            ax.text(k * J + (J - 1) / 2, 1.02, f"{term}{suffix}", transform=top,
                    ha="center", va="bottom", fontsize=9, gid="block-label")
    else:
        for j in range(1, J):
            ax.axvline(j * n_terms - 0.5, color="white", linewidth=0.6,
                       gid="separator")
        ax.text((cols - 1) / 2, 1.02,
                f"per {group or 'group'}: " + ", ".join(terms), transform=top,
                ha="center", va="bottom", fontsize=9, gid="block-label")
    ax.set_xlabel(f"column of Z ({order} layout)")
    ax.set_ylabel("observation")
    style_axes(ax)
    ax.grid(False)
    return fig


# ------------------------------------------------------------- estimates


def _labelled(fits, what: str) -> list[tuple[str, object]]:
    """Normalise a Fit, a list of Fits or a mapping label -> Fit/DataFrame."""
    if isinstance(fits, (Fit, pd.DataFrame)):
        fits = [fits]
    if isinstance(fits, Mapping):
        items = list(fits.items())
    elif isinstance(fits, Sequence) and not isinstance(fits, str):
        items = []
        for i, fit in enumerate(fits):
            if isinstance(fit, Fit):
                items.append((fit.label, fit))
            elif isinstance(fit, pd.DataFrame):
                items.append((f"fit {i + 1}", fit))
            else:
                raise InputError(
                    f"{what}: item {i} is a {type(fit).__name__}; pass Fit "
                    "objects, DataFrames, or a dict label -> Fit."
                )
    else:
        raise InputError(
            f"{what} takes a Fit, a list of Fits, or a dict label -> Fit/DataFrame;"
            f" got {type(fits).__name__}."
        )
    if not items:
        raise InputError(f"{what} got no fits to plot.")
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise InputError(
            f"{what}: two fits share the label(s) "
            f"{sorted({x for x in labels if labels.count(x) > 1})}; pass a dict "
            "label -> Fit to name them apart."
        )
    return items


def _table(obj, attr: str, columns: Sequence[str], what: str) -> pd.DataFrame:
    table = getattr(obj, attr) if isinstance(obj, Fit) else obj
    return _need_frame(table, f"{what} table", columns)


def _interval_panels(fits, attr: str, truth_values: pd.Series | None,
                     what: str, titles: Mapping[str, str] | None = None,
                     ncols: int | None = None) -> Figure:
    items = _labelled(fits, what)
    tables = [(label, _table(fit, attr, ("estimate", "lower", "upper"), what))
              for label, fit in items]
    names: list[str] = []
    for _, table in tables:
        names += [n for n in table.index if n not in names]
    if not names:
        raise InputError(f"{what}: the tables are empty.")
    ncols = ncols or len(names)
    nrows = int(np.ceil(len(names) / ncols))
    fig = figure(WIDTH, 0.5 + nrows * (0.45 * len(tables) + 0.9))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(names):]:
        ax.remove()
    for ax, name in zip(axes, names):
        for i, (label, table) in enumerate(tables):
            if name not in table.index:
                continue
            row = table.loc[name]
            est, lo, hi = (float(row[c]) for c in ("estimate", "lower", "upper"))
            yy = len(tables) - 1 - i
            color = SERIES_COLORS[i % len(SERIES_COLORS)]
            xerr = None
            if np.isfinite(lo) and np.isfinite(hi):
                xerr = [[est - lo], [hi - est]]
            ax.errorbar([est], [yy], xerr=xerr, fmt=SERIES_MARKERS[i % 6],
                        color=color, capsize=3, markersize=5, label=label,
                        gid=f"estimate:{label}")
        if truth_values is not None and name in truth_values.index:
            ax.axvline(float(truth_values[name]), color=TRUTH_COLOR,
                       linestyle="--", linewidth=1.0, label="truth", gid="truth")
        ax.set_yticks(range(len(tables)), [label for label, _ in tables][::-1])
        ax.set_ylim(-0.6, len(tables) - 0.4)
        ax.set_title((titles or {}).get(name, name))
        style_axes(ax)
    for ax in axes[1:len(names)]:
        if ax.get_subplotspec().colspan.start != 0:
            ax.tick_params(labelleft=False)
    truth_lines = [ln for ax in axes[:len(names)] for ln in ax.lines
                   if ln.get_gid() == "truth"]
    if truth_lines:
        axes[0].legend(handles=truth_lines[:1], fontsize=8, frameon=False,
                       loc="best")
    return fig


def _truth_series(truth, attr: str) -> pd.Series | None:
    if truth is None:
        return None
    if isinstance(truth, pd.Series):
        return truth
    values = getattr(truth, attr, None)
    if not isinstance(values, pd.Series):
        raise InputError(
            f"truth must be a multilevel.data.Truth or a Series indexed like "
            f"the Fit's {attr} table, got {type(truth).__name__}."
        )
    return values


def plot_fixed(fits, truth=None) -> Figure:
    """Fixed-effect estimates with their intervals, one row per engine.

    One panel per term (``(Intercept)``, ``afternoon``); with ``truth`` (a
    Truth or a Series indexed by term) a dashed line marks the true value.
    """
    return _interval_panels(fits, "fixed", _truth_series(truth, "fixed"),
                            "plot_fixed")


#: Readable panel titles for the variance components.
def _varcorr_title(name: str) -> str:
    if name == "sigma":
        return "sigma (within groups)"
    if name.startswith("sd_"):
        term, group = name[3:].rsplit("|", 1)
        return f"SD of {term} across {group}"
    if name.startswith("cor_"):
        pair, group = name[4:].rsplit("|", 1)
        return f"correlation ({pair.replace('.', ', ', 1)})"
    return name


def plot_varcorr(fits, truth=None) -> Figure:
    """SDs, correlation and residual SD per engine, with intervals.

    One panel per row of the Fits' ``varcorr`` tables (lme4's names); with
    ``truth`` a dashed line marks the true value.
    """
    items = _labelled(fits, "plot_varcorr")
    names = []
    for _, fit in items:
        table = _table(fit, "varcorr", ("estimate",), "plot_varcorr")
        names += [n for n in table.index if n not in names]
    titles = {n: _varcorr_title(n) for n in names}
    return _interval_panels(dict(items), "varcorr",
                            _truth_series(truth, "varcorr"), "plot_varcorr",
                            titles=titles, ncols=2 if len(names) > 2 else None)


# ------------------------------------------------------ engine vs engine


def _long(obj, attr: str, what: str) -> pd.DataFrame:
    table = _table(obj, attr, ("group", "term", "estimate"), what)
    table = table.assign(group=table["group"].astype(str))
    if table.duplicated(["group", "term"]).any():
        raise InputError(f"{what}: a (group, term) pair appears twice.")
    return table


def plot_varying(fit_a, fit_b, kind: str = "ranef", intervals: bool = True,
                 *, label_a: str | None = None,
                 label_b: str | None = None) -> Figure:
    """One engine's varying effects against another's, per term.

    ``kind`` is ``"ranef"`` (offsets u) or ``"coef"`` (beta + u). Either
    input may be a long DataFrame (``group``, ``term``, ``estimate``, and
    optionally ``lower``, ``upper``), e.g. the true offsets of a simulation.
    Points on the dashed identity line are groups where the two agree;
    horizontal bars are the intervals of ``fit_a``, vertical ones those of
    ``fit_b`` (where the table has them). Axis labels are the Fits' labels
    unless ``label_a``/``label_b`` are given.
    """
    if kind not in ("ranef", "coef"):
        raise InputError(f"kind must be 'ranef' or 'coef', got {kind!r}.")
    if label_a is None:
        label_a = fit_a.label if isinstance(fit_a, Fit) else "first"
    if label_b is None:
        label_b = fit_b.label if isinstance(fit_b, Fit) else "second"
    keep = ["group", "term", "estimate", "lower", "upper"]
    a = _long(fit_a, kind, "plot_varying (first fit)")
    b = _long(fit_b, kind, "plot_varying (second fit)")
    a = a[[c for c in keep if c in a.columns]]
    b = b[[c for c in keep if c in b.columns]]
    a = a.rename(columns={c: f"{c}_a" for c in keep[2:] if c in a.columns})
    b = b.rename(columns={c: f"{c}_b" for c in keep[2:] if c in b.columns})
    joined = a.merge(b, on=["group", "term"], how="outer", indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched):
        raise InputError(
            f"plot_varying: {len(unmatched)} (group, term) rows are in only one "
            f"fit, e.g. {tuple(unmatched.iloc[0][['group', 'term']])}; fit both "
            "engines to the same data and formula."
        )
    terms = list(dict.fromkeys(a["term"]))
    fig = figure(WIDTH, WIDTH / len(terms) + 0.3)
    axes = fig.subplots(1, len(terms), squeeze=False).ravel()
    for ax, term in zip(axes, terms):
        rows = joined[joined["term"] == term]
        x, y = rows["estimate_a"].to_numpy(float), rows["estimate_b"].to_numpy(float)
        bars = {
            side: intervals and f"lower_{side}" in rows and f"upper_{side}" in rows
            for side in ("a", "b")
        }
        xerr = yerr = None
        if bars["a"]:
            xerr = np.abs([x - rows["lower_a"], rows["upper_a"] - x])
        if bars["b"]:
            yerr = np.abs([y - rows["lower_b"], rows["upper_b"] - y])
        if xerr is not None or yerr is not None:
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="#BBBBBB",
                        elinewidth=0.8, zorder=1, gid="intervals")
        ax.scatter(x, y, s=18, color=SERIES_COLORS[0], zorder=3, gid="groups")
        values = [x, y] + [
            rows[f"{end}_{side}"].to_numpy(float)
            for side in ("a", "b") if bars[side] for end in ("lower", "upper")
        ]
        values = np.concatenate(values)
        values = values[np.isfinite(values)]
        lo, hi = values.min(), values.max()
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], linestyle="--",
                color=TRUTH_COLOR, linewidth=1.0, zorder=2, gid="identity")
        ax.set_xlim(lo - 2 * pad, hi + 2 * pad)
        ax.set_ylim(lo - 2 * pad, hi + 2 * pad)
        ax.set_aspect("equal")
        ax.set_title(term)
        ax.set_xlabel(label_a)
        ax.set_ylabel(label_b)
        style_axes(ax)
    return fig


# --------------------------------------------------------------- shrinkage


def plot_shrinkage(no_pooling, partial, population,
                   terms: Sequence[str] = ("(Intercept)", "afternoon")) -> Figure:
    """Arrows from each group's no-pooling to its partial-pooling estimate.

    ``no_pooling`` and ``partial`` hold per-group coefficients: a Fit (its
    ``coef`` table), a long table (``group``, ``term``, ``estimate``) or a wide
    one (index group, one column per term). ``population`` is the population
    mean: a Fit (its fixed effects), a Truth, or a Series indexed by term.
    Groups whose no-pooling estimate is undefined (e.g. a cafe never visited
    in the afternoon) are drawn as partial-pooling points only.
    """
    if len(terms) != 2:
        raise InputError(f"plot_shrinkage draws two terms, got {list(terms)}.")
    t0, t1 = terms
    np_wide, pp_wide = paired_coefficients(no_pooling, partial, list(terms))
    if isinstance(population, Fit):
        mean = population.fixed["estimate"]
    elif isinstance(population, pd.Series):
        mean = population
    else:
        mean = _truth_series(population, "fixed")
    if any(t not in mean.index for t in terms):
        raise InputError(f"population must give {list(terms)}; has {list(mean.index)}.")

    groups = list(pp_wide.index)
    start = np_wide.loc[groups, [t0, t1]].to_numpy(float)
    end = pp_wide.loc[groups, [t0, t1]].to_numpy(float)
    defined = np.isfinite(start).all(axis=1)

    fig = figure(WIDTH * 0.75, WIDTH * 0.6)
    ax = fig.add_subplot()
    ax.scatter(start[defined, 0], start[defined, 1], s=24, facecolors="none",
               edgecolors=SERIES_COLORS[1], marker="o", label="no pooling",
               zorder=3, gid="no-pooling")
    ax.scatter(end[:, 0], end[:, 1], s=24, color=SERIES_COLORS[0], marker="o",
               label="partial pooling", zorder=4, gid="partial-pooling")
    for (x0, y0), (x1, y1) in zip(start[defined], end[defined]):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>",
                                     mutation_scale=8, color="#777777",
                                     linewidth=0.8, zorder=2, gid="shrink"))
    ax.scatter([mean[t0]], [mean[t1]], marker="*", s=140, color=TRUTH_COLOR,
               label="population mean", zorder=5, gid="population")
    ax.set_xlabel(t0)
    ax.set_ylabel(t1)
    ax.legend(fontsize=8, frameon=False)
    style_axes(ax)
    ax.autoscale_view()
    return fig


# ------------------------------------------------------------ diagnostics

#: Scalar quantities of the cafe model shown in a rank plot, with titles.
RANK_QUANTITIES = {
    "a_bar": "a_bar (alpha)",
    "b_bar": "b_bar (beta)",
    "sigma_cafe[(Intercept)]": "sigma_a",
    "sigma_cafe[afternoon]": "sigma_b",
    "rho": "rho",
    "sigma_within": "sigma (within)",
}


def _posterior(obj):
    idata = obj.raw if isinstance(obj, Fit) else obj
    post = getattr(idata, "posterior", None)
    if post is None:
        raise InputError(
            "plot_rank needs a PyMC Fit (fit_pymc) or its InferenceData; got "
            f"{type(idata).__name__}."
        )
    return post


def _rank_draws(post, key: str) -> np.ndarray:
    """Draws of one scalar as (chain, draw); ``name[coord]`` picks an element."""
    name, _, coord = key.partition("[")
    if name not in post:
        raise InputError(f"plot_rank: the posterior has no variable {name!r}.")
    values = post[name]
    if coord:
        dim = [d for d in values.dims if d not in ("chain", "draw")][0]
        values = values.sel({dim: coord.rstrip("]")})
    return np.asarray(values.transpose("chain", "draw"), dtype=float)


def plot_rank(fit, quantities: Mapping[str, str] | None = None,
              bins: int = 20) -> Figure:
    """Rank plots (Vehtari et al. 2021): one histogram of ranks per chain.

    All draws of a quantity are ranked together; if the chains sample the
    same distribution, each chain's ranks are uniform and its histogram is
    flat. The dashed line is the expected count per bin under uniformity.
    """
    quantities = dict(quantities or RANK_QUANTITIES)
    post = _posterior(fit)
    ncols = 3
    nrows = -(-len(quantities) // ncols)
    fig = figure(WIDTH, 1.7 * nrows + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(quantities):]:
        ax.set_visible(False)
    for ax, (key, title) in zip(axes, quantities.items()):
        draws = _rank_draws(post, key)
        n_chains, n_draws = draws.shape
        ranks = draws.ravel().argsort(kind="stable").argsort().reshape(draws.shape)
        edges = np.linspace(0, draws.size, bins + 1)
        for c in range(n_chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.stairs(counts, edges, color=SERIES_COLORS[c % len(SERIES_COLORS)],
                      linewidth=1.0, label=f"chain {c}", gid=f"chain-{c}")
        ax.axhline(n_draws / bins, color=TRUTH_COLOR, linestyle="--",
                   linewidth=0.8, gid="uniform")
        ax.set_title(title)
        ax.set_yticks([])
        ax.set_xlabel("rank")
        style_axes(ax)
    axes[0].legend(fontsize=7, frameon=False)
    return fig


# -------------------------------------------------- the two equation sets

def plot_pointing() -> Figure:
    """Equation 7 (lme4's form) and equation 9 (PyMC's) pointing at each other.

    Two boxes with the two ways of writing the expected wait of cafe j,
    joined by arrows both ways, and the identities that make them one.
    """
    fig = figure(WIDTH, 2.4)
    ax = fig.add_subplot()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4)
    ax.axis("off")
    boxes = {
        "lme4": (2.2, r"$(\alpha + a_{\mathrm{cafe}[i]})"
                 r" + (\beta + b_{\mathrm{cafe}[i]})\,A_i$",
                 "equation set 1 (lme4)", SERIES_COLORS[0]),
        "pymc": (7.8, r"$\alpha_{\mathrm{cafe}[i]}"
                 r" + \beta_{\mathrm{cafe}[i]}\,A_i$",
                 "equation set 2 (PyMC)", SERIES_COLORS[1]),
    }
    for key, (x, formula, title, color) in boxes.items():
        ax.text(x, 2.3, formula, ha="center", va="center", fontsize=11,
                gid=f"box-{key}",
                bbox={"boxstyle": "round,pad=0.6", "facecolor": "white",
                      "edgecolor": color, "linewidth": 1.5})
        ax.text(x, 3.5, title, ha="center", va="center", fontsize=9,
                color=color)
    for start, end, y in ((4.3, 5.7, 2.6), (5.7, 4.3, 2.0)):
        ax.add_patch(FancyArrowPatch((start, y), (end, y), arrowstyle="-|>",
                                     mutation_scale=14, linewidth=1.3,
                                     color=TRUTH_COLOR, gid="arrow"))
    ax.text(5.0, 0.6, r"$\alpha_{\mathrm{cafe}} = \alpha + a_{\mathrm{cafe}},"
            r"\qquad \beta_{\mathrm{cafe}} = \beta + b_{\mathrm{cafe}}$",
            ha="center", va="center", fontsize=10, gid="identity")
    return fig
