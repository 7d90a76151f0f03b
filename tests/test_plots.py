"""Tests of the figures: what is drawn, not only that a Figure comes back."""

from __future__ import annotations

import matplotlib.colors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.design import design_matrices
from multilevel.errors import InputError
from multilevel.fit import Fit, varcorr_names
from multilevel.plots import (
    OKABE_ITO,
    SERIES_COLORS,
    cafe_order,
    no_pooling_coef,
    plot_cafes,
    plot_fixed,
    plot_pointing,
    plot_rank,
    plot_shrinkage,
    plot_varcorr,
    plot_varying,
    plot_z,
)

TERMS = ["(Intercept)", "afternoon"]


def make_fit(engine: str, truth, shift: float, seed: int, n_cafes: int) -> Fit:
    """A hand-made Fit near the truth (values are for drawing, not inference)."""
    rng = np.random.default_rng(seed)
    fixed = pd.DataFrame(
        {
            "estimate": truth.fixed.to_numpy() + shift,
            "std_error": [0.2, 0.1],
        },
        index=pd.Index(TERMS, name="term"),
    )
    fixed["lower"] = fixed["estimate"] - 2 * fixed["std_error"]
    fixed["upper"] = fixed["estimate"] + 2 * fixed["std_error"]
    names = varcorr_names(TERMS, "cafe")
    est = truth.varcorr.to_numpy() * (1 + shift)
    varcorr = pd.DataFrame(
        {"estimate": est, "lower": est - 0.1, "upper": est + 0.1},
        index=pd.Index(names, name="name"),
    )
    rows, coef_rows = [], []
    for _, cafe in truth.cafes.iterrows():
        for term, col, base in (("(Intercept)", "a_cafe", truth.alpha),
                                ("afternoon", "b_cafe", truth.beta)):
            u = cafe[col] + rng.normal(0, 0.05)
            rows.append((str(int(cafe["cafe"])), term, u, 0.1, u - 0.2, u + 0.2))
            c = u + base
            coef_rows.append(
                (str(int(cafe["cafe"])), term, c, 0.1, c - 0.2, c + 0.2)
            )
    cols = ["group", "term", "estimate", "std_error", "lower", "upper"]
    return Fit(
        engine=engine, method="test", formula=CAFE_FORMULA, fixed=fixed,
        varcorr=varcorr, ranef=pd.DataFrame(rows, columns=cols),
        coef=pd.DataFrame(coef_rows, columns=cols), criterion=None,
        interval="Wald", nobs=10 * n_cafes, ngroups=n_cafes,
    )


@pytest.fixture(scope="module")
def sim():
    return simulate_cafes(seed=21)


@pytest.fixture(scope="module")
def fits(sim):
    return [
        make_fit("A", sim.truth, 0.05, 1, 20),
        make_fit("B", sim.truth, -0.03, 2, 20),
    ]


def _gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


# ---------------------------------------------------------------- plot_cafes


def test_plot_cafes_orders_by_morning_mean(sim):
    fig = plot_cafes(sim.data)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(labels, key=int) == [str(j) for j in range(20)]
    # independent recomputation of each cafe's mean morning wait
    morning = {
        str(j): np.mean([w for c, a, w in sim.data.itertuples(index=False)
                         if c == j and a == 0])
        for j in range(20)
    }
    means = [morning[label] for label in labels]
    assert all(np.diff(means) > 0)
    assert labels == [str(c) for c in cafe_order(sim.data)]
    # every visit is drawn once, mornings and afternoons apart
    (m,) = _gid(ax.collections, "morning")
    (a,) = _gid(ax.collections, "afternoon")
    assert len(m.get_offsets()) == (sim.data["afternoon"] == 0).sum()
    assert len(a.get_offsets()) == (sim.data["afternoon"] == 1).sum()
    # the morning points of the first tick belong to the lowest-mean cafe
    first = m.get_offsets()[np.isclose(m.get_offsets()[:, 0], -0.18)][:, 1]
    assert np.isclose(first.mean(), min(morning.values()))


def test_plot_cafes_marks_the_truth(sim):
    fig = plot_cafes(sim.data, sim.truth)
    ax = fig.axes[0]
    marks = _gid(ax.collections, "truth")
    assert len(marks) == 2
    ys = np.concatenate([mk.get_offsets()[:, 1] for mk in marks])
    cafes = sim.truth.cafes
    expected = np.concatenate([cafes["alpha_cafe"],
                               cafes["alpha_cafe"] + cafes["beta_cafe"]])
    np.testing.assert_allclose(np.sort(ys), np.sort(expected))


def test_plot_cafes_unbalanced_and_morning_only():
    sim = simulate_cafes(n_cafes=6, visits=[1, 2, 3, 4, 5, 6], no_afternoon=2,
                         seed=3)
    ax = plot_cafes(sim.data, sim.truth).axes[0]
    assert len(ax.get_xticklabels()) == 6
    (a,) = _gid(ax.collections, "afternoon")
    assert len(a.get_offsets()) == (sim.data["afternoon"] == 1).sum()


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.drop(columns="wait"), "lacks column"),
        (lambda d: d.assign(afternoon=d["afternoon"] * 2), "0 (morning)"),
        (lambda d: d.iloc[:0], "no rows"),
        (lambda d: d.to_dict(), "DataFrame"),
    ],
)
def test_plot_cafes_refuses_bad_data(sim, mutate, fragment):
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(
            ")", r"\)")):
        plot_cafes(mutate(sim.data))


# -------------------------------------------------------------------- plot_z


@pytest.mark.parametrize("order", ["blocked", "interleaved"])
def test_plot_z_draws_z_with_block_labels(sim, order):
    dm = design_matrices(sim.data, CAFE_FORMULA, order=order, sparse=True)
    fig = plot_z(dm)
    ax = fig.axes[0]
    (image,) = ax.images
    np.testing.assert_array_equal(image.get_array(), dm.Z.toarray())
    separators = _gid(ax.lines, "separator")
    labels = [t.get_text() for t in _gid(ax.texts, "block-label")]
    if order == "blocked":
        assert len(separators) == 1  # between the two term blocks
        assert [ln.get_xdata()[0] for ln in separators] == [19.5]
        assert labels == ["(Intercept) | cafe", "afternoon | cafe"]
    else:
        assert len(separators) == 19  # between the 20 cafes
        assert labels == ["per cafe: (Intercept), afternoon"]


def test_plot_z_bare_matrix(sim):
    Z = design_matrices(sim.data, CAFE_FORMULA, order="blocked").Z
    fig = plot_z(Z, n_terms=2, order="blocked", max_rows=12)
    assert fig.axes[0].images[0].get_array().shape == (12, 40)
    with pytest.raises(InputError, match="order"):
        plot_z(Z, n_terms=2)
    with pytest.raises(InputError, match="dividing"):
        plot_z(Z, n_terms=3, order="blocked")
    with pytest.raises(InputError, match="2-d"):
        plot_z(np.zeros(5), n_terms=1, order="blocked")


# ---------------------------------------------------------------- plot_fixed


def _errorbars(ax):
    """(label, estimate, lower, upper) of each horizontal error bar."""
    out = []
    for container in ax.containers:
        data_line, _, bars = container.lines
        est = data_line.get_xdata()[0]
        (segment,) = bars[0].get_segments()
        out.append((container.get_label(), est, segment[0][0], segment[1][0]))
    return out


def test_plot_fixed_one_panel_per_term(sim, fits):
    fig = plot_fixed(fits, truth=sim.truth)
    assert len(fig.axes) == 2
    for ax, term in zip(fig.axes, TERMS):
        assert ax.get_title() == term
        bars = _errorbars(ax)
        assert [b[0] for b in bars] == [f.label for f in fits]
        for (_, est, lo, hi), fit in zip(bars, fits):
            row = fit.fixed.loc[term]
            np.testing.assert_allclose([est, lo, hi],
                                       row[["estimate", "lower", "upper"]])
        (truth_line,) = _gid(ax.lines, "truth")
        assert truth_line.get_xdata()[0] == sim.truth.fixed[term]
        if term == TERMS[0]:
            legend = [t.get_text() for t in ax.get_legend().get_texts()]
            assert legend == ["truth"]
        # colours come from the colour-blind-safe palette
        for container in ax.containers:
            colour = matplotlib.colors.to_hex(container.lines[0].get_color())
            assert colour.upper() in [c.upper() for c in OKABE_ITO]


def test_plot_fixed_accepts_a_dict_of_tables(sim, fits):
    fig = plot_fixed({"one": fits[0].fixed, "two": fits[1]})
    assert [b[0] for b in _errorbars(fig.axes[0])] == ["one", "two"]
    assert not _gid(fig.axes[0].lines, "truth")


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ([1, 2], "item 0 is a int"),
        ([], "no fits"),
        ("lme4", "takes a Fit"),
        ({"x": pd.DataFrame({"estimate": [1.0]})}, "lacks column"),
    ],
)
def test_plot_fixed_refuses_bad_input(bad, fragment):
    with pytest.raises(InputError, match=fragment):
        plot_fixed(bad)


def test_plot_fixed_refuses_duplicate_labels(fits):
    with pytest.raises(InputError, match="share the label"):
        plot_fixed([fits[0], fits[0]])


# -------------------------------------------------------------- plot_varcorr


def test_plot_varcorr_panels_and_truth(sim, fits):
    fig = plot_varcorr(fits, truth=sim.truth)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "SD of (Intercept) across cafe",
        "correlation (afternoon, (Intercept))",
        "SD of afternoon across cafe",
        "sigma (within groups)",
    ]
    for ax, name in zip(fig.axes, sim.truth.varcorr.index):
        (line,) = _gid(ax.lines, "truth")
        assert line.get_xdata()[0] == sim.truth.varcorr[name]
        ests = [b[1] for b in _errorbars(ax)]
        np.testing.assert_allclose(
            ests, [f.varcorr.loc[name, "estimate"] for f in fits]
        )


# -------------------------------------------------------------- plot_varying


@pytest.mark.parametrize("kind", ["ranef", "coef"])
def test_plot_varying_scatter_and_identity(fits, kind):
    fig = plot_varying(fits[0], fits[1], kind=kind)
    assert len(fig.axes) == 2
    for ax, term in zip(fig.axes, TERMS):
        assert ax.get_title() == term
        (points,) = _gid(ax.collections, "groups")
        xy = points.get_offsets()
        assert len(xy) == 20  # one per cafe
        a = getattr(fits[0], kind).query("term == @term")
        b = getattr(fits[1], kind).query("term == @term")
        np.testing.assert_allclose(np.sort(xy[:, 0]), np.sort(a["estimate"]))
        np.testing.assert_allclose(np.sort(xy[:, 1]), np.sort(b["estimate"]))
        (identity,) = _gid(ax.lines, "identity")
        x, y = identity.get_xdata(), identity.get_ydata()
        np.testing.assert_allclose(x, y)  # slope 1 through the origin
        everything = np.concatenate([a["lower"], a["upper"], b["lower"],
                                     b["upper"]])
        assert x.min() <= everything.min() and x.max() >= everything.max()
        assert ax.get_xlabel() == fits[0].label
        assert ax.get_ylabel() == fits[1].label


def test_plot_varying_against_a_table_without_intervals(sim, fits):
    """The true offsets (no intervals) against a Fit: vertical bars only."""
    true_u = sim.truth.cafes.melt(
        id_vars="cafe", value_vars=["a_cafe", "b_cafe"], var_name="term",
        value_name="estimate",
    )
    true_u = true_u.assign(
        group=true_u["cafe"].astype(str),
        term=true_u["term"].map({"a_cafe": "(Intercept)", "b_cafe": "afternoon"}),
    )
    fig = plot_varying(true_u, fits[0], label_a="true offset")
    for ax, term in zip(fig.axes, TERMS):
        assert ax.get_xlabel() == "true offset"
        (points,) = _gid(ax.collections, "groups")
        truth = true_u.loc[true_u["term"] == term, "estimate"]
        np.testing.assert_allclose(np.sort(points.get_offsets()[:, 0]),
                                   np.sort(truth))
        (container,) = ax.containers
        assert container.has_yerr and not container.has_xerr
        ranef = fits[0].ranef
        lower = ranef.loc[ranef["term"] == term, "lower"]
        (identity,) = _gid(ax.lines, "identity")
        assert identity.get_xdata().min() <= min(lower.min(), truth.min())


def test_plot_varying_refuses_mismatch(fits):
    other = fits[1].ranef[fits[1].ranef["group"] != "3"]
    with pytest.raises(InputError, match="only one fit"):
        plot_varying(fits[0], other)
    with pytest.raises(InputError, match="kind"):
        plot_varying(fits[0], fits[1], kind="fixed")
    with pytest.raises(InputError, match="DataFrame"):
        plot_varying(fits[0], [1, 2])


# ------------------------------------------------------------ plot_shrinkage


def test_no_pooling_coef_is_each_cafes_own_line():
    sim = simulate_cafes(n_cafes=5, no_afternoon=1, seed=9)
    table = no_pooling_coef(sim.data, CAFE_FORMULA)
    wide = table.pivot(index="group", columns="term", values="estimate")
    for j in range(4):
        rows = sim.data[sim.data["cafe"] == j]
        m0 = rows.loc[rows["afternoon"] == 0, "wait"].mean()
        m1 = rows.loc[rows["afternoon"] == 1, "wait"].mean()
        np.testing.assert_allclose(wide.loc[str(j), "(Intercept)"], m0)
        np.testing.assert_allclose(wide.loc[str(j), "afternoon"], m1 - m0)
    # never visited in the afternoon: no slope, intercept = morning mean
    assert np.isnan(wide.loc["4", "afternoon"])
    np.testing.assert_allclose(wide.loc["4", "(Intercept)"],
                               sim.data.loc[sim.data["cafe"] == 4, "wait"].mean())


def test_plot_shrinkage_arrows(fits):
    sim = simulate_cafes(n_cafes=20, no_afternoon=2, seed=21)
    no_pool = no_pooling_coef(sim.data, CAFE_FORMULA)
    fig = plot_shrinkage(no_pool, fits[0], fits[0])
    ax = fig.axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 18  # cafes 18 and 19 have no no-pooling slope
    wide = no_pool.pivot(index="group", columns="term", values="estimate")
    starts = {tuple(np.round(a._posA_posB[0], 9)) for a in arrows}
    expected = {
        tuple(np.round(wide.loc[str(j), TERMS].to_numpy(float), 9))
        for j in range(18)
    }
    assert starts == expected
    ends = {tuple(np.round(a._posA_posB[1], 9)) for a in arrows}
    coef = fits[0].coef.pivot(index="group", columns="term", values="estimate")
    assert ends <= {tuple(np.round(r, 9)) for r in coef[TERMS].to_numpy()}
    (partial,) = _gid(ax.collections, "partial-pooling")
    assert len(partial.get_offsets()) == 20
    (star,) = _gid(ax.collections, "population")
    np.testing.assert_allclose(star.get_offsets()[0],
                               fits[0].fixed["estimate"])
    assert SERIES_COLORS[0] in OKABE_ITO


def test_plot_shrinkage_refuses_bad_input(fits):
    with pytest.raises(InputError, match="different groups"):
        plot_shrinkage(fits[0].coef[fits[0].coef["group"] != "0"], fits[0],
                       fits[0])
    with pytest.raises(InputError, match="two terms"):
        plot_shrinkage(fits[0], fits[0], fits[0], terms=["(Intercept)"])
    with pytest.raises(InputError, match="Fit or a DataFrame"):
        plot_shrinkage(None, fits[0], fits[0])


# ------------------------------------------------------------- rank plots


def _posterior_of(chains: np.ndarray):
    """A stand-in InferenceData: ``.posterior`` with the cafe model's names."""
    from types import SimpleNamespace

    import xarray as xr

    n_chains, n_draws = chains.shape
    dims = ("chain", "draw")
    data = {name: (dims, chains + k) for k, name in
            enumerate(["a_bar", "b_bar", "rho", "sigma_within"])}
    data["sigma_cafe"] = (dims + ("effect",), np.stack([chains, chains], -1))
    post = xr.Dataset(data, coords={"effect": ["(Intercept)", "afternoon"]})
    return SimpleNamespace(posterior=post)


def _chain_counts(fig, panel: int = 0) -> list[np.ndarray]:
    ax = fig.axes[panel]
    stairs = [p for p in ax.patches if (p.get_gid() or "").startswith("chain-")]
    return [np.asarray(p.get_data().values) for p in stairs]


def test_rank_plot_counts_every_draw_once_per_chain():
    rng = np.random.default_rng(1)
    fig = plot_rank(_posterior_of(rng.normal(size=(4, 500))))
    counts = _chain_counts(fig)
    assert len(counts) == 4
    assert all(c.sum() == 500 for c in counts)
    # well-mixed chains: every bin within 6 binomial SDs of n / bins
    expected, sd = 500 / 20, np.sqrt(500 * (1 / 20) * (19 / 20))
    assert all(np.all(np.abs(c - expected) < 6 * sd) for c in counts)


def test_rank_plot_shows_a_chain_stuck_elsewhere():
    rng = np.random.default_rng(2)
    chains = rng.normal(size=(4, 500))
    chains[3] += 6.0  # one chain sampling another place
    counts = _chain_counts(plot_rank(_posterior_of(chains)))
    # its ranks pile up in the top bins, the others' in the bottom ones
    assert counts[3][-5:].sum() > 0.95 * 500
    assert counts[0][-5:].sum() < 0.1 * 500


def test_rank_plot_refuses_a_fit_without_a_posterior():
    with pytest.raises(InputError, match="fit_pymc"):
        plot_rank(pd.DataFrame({"x": [1.0]}))


def test_pointing_figure_has_both_forms_and_arrows_both_ways():
    fig = plot_pointing()
    ax = fig.axes[0]
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert r"a_{\mathrm{cafe}[i]}" in texts["box-lme4"]
    assert r"\alpha_{\mathrm{cafe}[i]}" in texts["box-pymc"]
    arrows = [p for p in ax.patches if p.get_gid() == "arrow"]
    assert len(arrows) == 2
    (a_start, a_end), (b_start, b_end) = (a._posA_posB for a in arrows)
    # one arrow each way: each starts where the other ends (in x)
    assert a_start[0] == b_end[0] and b_start[0] == a_end[0]
    assert a_start[0] != a_end[0]
