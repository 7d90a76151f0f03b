"""Tests of X and Z: against lme4, against formulae, and the algebra."""

from __future__ import annotations

import formulae
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from multilevel.data import CAFE_FORMULA, simulate_cafes
from multilevel.design import (
    DesignMatrices,
    blocked_to_interleaved,
    design_matrices,
    u_covariance,
)
from multilevel.errors import InputError

# --------------------------------------------------------------------- basics


def test_cafe_shapes_and_names():
    data = simulate_cafes(seed=3).data
    dm = design_matrices(data, CAFE_FORMULA)
    assert isinstance(dm, DesignMatrices)
    assert dm.X.shape == (200, 2) and dm.Z.shape == (200, 40)
    assert dm.fixed_names == ["(Intercept)", "afternoon"]
    assert dm.random_terms == ["(Intercept)", "afternoon"]
    assert dm.groups == [str(j) for j in range(20)]
    assert dm.z_names[:4] == [
        "(Intercept)|0", "afternoon|0", "(Intercept)|1", "afternoon|1"
    ]
    np.testing.assert_array_equal(dm.y, data["wait"].to_numpy())
    blocked = design_matrices(data, CAFE_FORMULA, order="blocked")
    assert blocked.z_names[:2] == ["(Intercept)|0", "(Intercept)|1"]
    assert blocked.z_names[20] == "afternoon|0"


def test_blocked_is_the_source_posts_z():
    """The post builds Z[i, cafe] = 1, Z[i, 20 + cafe] = afternoon."""
    data = simulate_cafes(seed=3).data
    Z = np.zeros((200, 40))
    for i, (cafe, afternoon) in enumerate(zip(data["cafe"], data["afternoon"])):
        Z[i, cafe] = 1
        Z[i, 20 + cafe] = afternoon
    dm = design_matrices(data, CAFE_FORMULA, order="blocked")
    np.testing.assert_array_equal(dm.Z, Z)


def test_blocked_equals_formulae_group_matrix():
    """formulae (an independent implementation) lays Z out blocked."""
    sim = simulate_cafes(n_cafes=12, seed=8, visits=[3, 5, 2, 8] * 3)
    data = sim.data.copy()
    data["cafe"] = data["cafe"].map(dict(enumerate([10, 2, 33, 1, 4, 5, 6, 7, 8,
                                                    9, 11, 12])))
    dm = design_matrices(data, CAFE_FORMULA, order="blocked")
    reference = formulae.design_matrices(CAFE_FORMULA, data)
    np.testing.assert_array_equal(dm.Z, np.asarray(reference.group))
    np.testing.assert_array_equal(dm.X, np.asarray(reference.common))
    assert dm.groups == [str(g) for g in sorted(data["cafe"].unique())]


def test_sparse_equals_dense():
    data = simulate_cafes(seed=4, visits=list(range(1, 21)), no_afternoon=4).data
    for order in ("interleaved", "blocked"):
        dense = design_matrices(data, CAFE_FORMULA, order=order)
        sparse = design_matrices(data, CAFE_FORMULA, sparse=True, order=order)
        assert isinstance(sparse.Z, sp.csc_matrix)
        assert isinstance(sparse.X, np.ndarray)
        np.testing.assert_array_equal(sparse.Z.toarray(), dense.Z)
        # no stored zeros: mornings have a structural zero in the slope block
        assert sparse.Z.nnz == np.count_nonzero(dense.Z)


def test_group_order_follows_r():
    data = pd.DataFrame(
        {"y": np.arange(6.0), "g": [10, 2, 10, 2, 1, 1]}
    )
    assert design_matrices(data, "y ~ (1 | g)").groups == ["1", "2", "10"]
    data["g"] = pd.Categorical(["b", "a", "b", "a", "c", "c"],
                               categories=["c", "b", "a", "z"])
    dm = design_matrices(data, "y ~ (1 | g)")
    assert dm.groups == ["c", "b", "a"]  # category order, unused dropped
    np.testing.assert_array_equal(dm.group_index, [1, 2, 1, 2, 0, 0])
    data["g"] = ["b", "a", "b", "a", "c", "c"]
    assert design_matrices(data, "y ~ (1 | g)").groups == ["a", "b", "c"]


@pytest.mark.parametrize("bad", [dict(order="lme4"), dict(sparse="yes")])
def test_bad_options_are_refused(bad):
    data = simulate_cafes(seed=3).data
    with pytest.raises(InputError):
        design_matrices(data, CAFE_FORMULA, **bad)


def test_bad_data_is_refused_through_check_data():
    data = simulate_cafes(seed=3).data
    with pytest.raises(InputError, match="Did you mean 'cafe'"):
        design_matrices(data, "wait ~ afternoon + (1 | caffe)")
    data.loc[0, "afternoon"] = np.nan
    with pytest.raises(InputError, match="missing"):
        design_matrices(data, CAFE_FORMULA)
    mixed = pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": ["a", 1, "a"]})
    with pytest.raises(InputError, match="mixes types"):
        design_matrices(mixed, "y ~ (1 | g)")


# ------------------------------------------------------------ the algebra


@st.composite
def random_designs(draw):
    J = draw(st.integers(2, 7))
    q_slopes = draw(st.integers(0, 2))
    intercept = draw(st.booleans()) or q_slopes == 0
    n = draw(st.integers(max(J, 3), 40))  # at least p = 3 rows
    group_ids = draw(
        st.lists(st.integers(-50, 50), min_size=J, max_size=J, unique=True)
    )
    # every group appears at least once, the rest anywhere
    index = list(range(J)) + draw(
        st.lists(st.integers(0, J - 1), min_size=n - J, max_size=n - J)
    )
    index = draw(st.permutations(index))
    values = st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3))
    data = {"y": draw(st.lists(values, min_size=n, max_size=n)),
            "g": [group_ids[i] for i in index]}
    slopes = [f"x{k}" for k in range(q_slopes)]
    for name in slopes:
        data[name] = draw(st.lists(values, min_size=n, max_size=n))
    random = " + ".join((["1"] if intercept else ["0"]) + slopes)
    formula = f"y ~ 1 + {' + '.join(slopes) or '1'} + ({random} | g)"
    S_root = np.array(
        draw(st.lists(values, min_size=len(slopes) + intercept,
                      max_size=len(slopes) + intercept))
    )
    return pd.DataFrame(data), formula, S_root


@settings(max_examples=60, deadline=None)
@given(random_designs(), st.integers(0, 2**31 - 1))
def test_layouts_agree(design, seed):
    data, formula, S_root = design
    inter = design_matrices(data, formula)
    block = design_matrices(data, formula, order="blocked", sparse=True)
    J, q = inter.n_groups, inter.q
    assert inter.Z.shape == (len(data), q * J)
    assert inter.groups == [str(g) for g in sorted(data["g"].unique())]
    perm = inter.perm
    np.testing.assert_array_equal(perm, blocked_to_interleaved(q, J))
    np.testing.assert_array_equal(block.Z.toarray()[:, perm], inter.Z)
    np.testing.assert_array_equal(inter.Z[:, inter.inverse_perm], block.Z.toarray())
    assert [block.z_names[i] for i in perm] == inter.z_names

    # each row: within each term's block, at most one nonzero, at its group,
    # holding that term's value
    Zb = block.Z.toarray()
    for k, term in enumerate(inter.random_terms):
        blk = Zb[:, k * J:(k + 1) * J]
        value = 1.0 if term == "(Intercept)" else data[term].to_numpy()
        expected = np.zeros_like(blk)
        expected[np.arange(len(data)), inter.group_index] = value
        np.testing.assert_array_equal(blk, expected)
        assert ((blk != 0).sum(axis=1) <= 1).all()

    # Z u is the same whichever layout, once u is permuted the same way
    rng = np.random.default_rng(seed)
    u_blocked = rng.normal(size=q * J)
    np.testing.assert_allclose(inter.Z @ u_blocked[perm], block.Z @ u_blocked)

    # Cov(Z u): interleaved with I_J kron S equals blocked with S kron I_J
    L = np.tril(np.outer(S_root, S_root) + np.eye(q))
    S = L @ L.T
    V_inter = inter.Z @ u_covariance(S, J, "interleaved") @ inter.Z.T
    V_block = Zb @ u_covariance(S, J, "blocked") @ Zb.T
    np.testing.assert_allclose(V_inter, V_block, atol=1e-9)
    # and the permutation maps one covariance of u onto the other
    np.testing.assert_allclose(
        u_covariance(S, J, "blocked")[np.ix_(perm, perm)],
        u_covariance(S, J, "interleaved"),
    )


def test_u_covariance_is_block_diagonal_when_interleaved():
    S = np.array([[1.0, -0.35], [-0.35, 0.25]])
    V = u_covariance(S, 3)
    np.testing.assert_array_equal(V[2:4, 2:4], S)
    assert np.count_nonzero(V[:2, 2:]) == 0
    with pytest.raises(InputError):
        u_covariance(S, 3, "wide")


# --------------------------------------------------------------- lme4 itself


def _lme4_matrices(data: pd.DataFrame, formula: str):
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    with localconverter(ro.default_converter + pandas2ri.converter):
        ro.globalenv["design_test_data"] = ro.conversion.py2rpy(data)
    ro.r(
        "suppressMessages(library(lme4));"
        f"design_test_m <- lmer({formula}, design_test_data)"
    )
    X = np.asarray(ro.r('as.matrix(getME(design_test_m, "X"))'))
    Z = np.asarray(ro.r('as.matrix(getME(design_test_m, "Z"))'))
    x_names = list(ro.r('colnames(getME(design_test_m, "X"))'))
    z_cols = list(ro.r('colnames(getME(design_test_m, "Z"))'))
    levels = list(ro.r("levels(getME(design_test_m, 'flist')[[1]])"))
    ro.r("rm(design_test_m, design_test_data)")
    return X, Z, x_names, z_cols, levels


def _compare_with_lme4(data, formula):
    X, Z, x_names, z_cols, levels = _lme4_matrices(data, formula)
    dm = design_matrices(data, formula)
    assert dm.fixed_names == x_names
    assert dm.groups == levels
    # lme4 names Z's columns by group level only
    assert [name.split("|")[1] for name in dm.z_names] == z_cols
    np.testing.assert_array_equal(dm.X, X)
    np.testing.assert_array_equal(dm.Z, Z)
    blocked = design_matrices(data, formula, order="blocked", sparse=True)
    np.testing.assert_array_equal(blocked.Z[:, blocked.perm].toarray(), Z)


@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(n_cafes=15, visits=[2, 9, 4, 5, 1] * 3, no_afternoon=2)],
    ids=["balanced", "unbalanced"],
)
@pytest.mark.needs_r
def test_equals_lme4_on_cafes(kwargs):
    data = simulate_cafes(seed=11, **kwargs).data
    _compare_with_lme4(data, CAFE_FORMULA)


def _sleepstudy() -> pd.DataFrame:
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    with localconverter(ro.default_converter + pandas2ri.converter):
        return ro.conversion.rpy2py(ro.r("lme4::sleepstudy"))


@pytest.mark.needs_r
def test_equals_lme4_on_sleepstudy():
    data = _sleepstudy()
    assert len(data) == 180
    assert isinstance(data["Subject"].dtype, pd.CategoricalDtype)
    _compare_with_lme4(data, "Reaction ~ Days + (Days | Subject)")
    _compare_with_lme4(data, "Reaction ~ Days + (0 + Days | Subject)")


@pytest.mark.needs_r
def test_equals_lme4_with_integer_groups_in_numeric_order():
    """Groups 2 and 10: R's factor of integers sorts 2 before 10."""
    data = _sleepstudy()
    relabel = {s: int(s) % 97 * 7 for s in data["Subject"].cat.categories}
    data["Subject"] = data["Subject"].astype(str).map(relabel).astype("int64")
    data = data.sample(frac=1.0, random_state=1).reset_index(drop=True)
    dm = design_matrices(data, "Reaction ~ Days + (Days | Subject)")
    assert dm.groups == [str(v) for v in sorted(relabel.values())]
    _compare_with_lme4(data, "Reaction ~ Days + (Days | Subject)")

