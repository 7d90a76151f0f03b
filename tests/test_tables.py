"""The shared frequentist tables, against the algebra done the long way."""

from __future__ import annotations

import numpy as np
import pytest

from multilevel.tables import (
    group_coef_table,
    henderson_covariance,
    joint_coef_covariance,
    varcorr_table,
    varcorr_values,
    wald_fixed_table,
)


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(3)
    J, per, q = 4, 5, 2
    codes = np.repeat(np.arange(J), per)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    zmat = X.copy()  # random intercept and slope
    T = np.array([[1.3, 0.0], [-0.4, 0.6]])
    return X, zmat, codes, T, 0.7, J, q


def test_henderson_matches_the_inverse_of_the_whole_system(small_model):
    X, zmat, codes, T, sigma, J, q = small_model
    n, p = X.shape
    # Z Lambda as a dense n x (J q) matrix, groups interleaved
    ZL = np.zeros((n, J * q))
    for i, g in enumerate(codes):
        ZL[i, g * q:(g + 1) * q] = zmat[i] @ T
    C = np.block([[X.T @ X, X.T @ ZL], [ZL.T @ X, ZL.T @ ZL + np.eye(J * q)]])
    V = sigma**2 * np.linalg.inv(C)  # Var of (beta, u), Henderson
    Lam = np.kron(np.eye(J), T)
    V_beta, V_b, C_beta_b = joint_coef_covariance(X, zmat, codes, T, sigma)
    np.testing.assert_allclose(V_beta, V[:p, :p], rtol=1e-10)
    V_b_dense = Lam @ V[p:, p:] @ Lam.T
    C_dense = V[:p, p:] @ Lam.T
    for j in range(J):
        block = slice(j * q, (j + 1) * q)
        np.testing.assert_allclose(V_b[j], V_b_dense[block, block], rtol=1e-10)
        np.testing.assert_allclose(C_beta_b[j], C_dense[:, block], rtol=1e-9)


def test_joint_covariance_is_henderson_of_the_cross_products(small_model):
    X, zmat, codes, T, sigma, J, q = small_model
    ZtZ = np.stack([zmat[codes == j].T @ zmat[codes == j] for j in range(J)])
    ZtX = np.stack([zmat[codes == j].T @ X[codes == j] for j in range(J)])
    a = henderson_covariance(ZtZ, ZtX, X.T @ X, T, sigma)
    b = joint_coef_covariance(X, zmat, codes, T, sigma)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12)


def test_group_coefficients_add_both_parts_and_their_covariance(small_model):
    X, zmat, codes, T, sigma, J, q = small_model
    cov = joint_coef_covariance(X, zmat, codes, T, sigma)
    beta = np.array([2.0, -1.0])
    b = np.arange(J * q, dtype=float).reshape(J, q) / 10
    terms = ["(Intercept)", "x"]
    table = group_coef_table([str(j) for j in range(J)], terms, terms, beta, b,
                             cov, z=2.0)
    V_beta, V_b, C = cov
    for j in range(J):
        rows = table[table["group"] == str(j)]
        np.testing.assert_allclose(rows["estimate"], beta + b[j])
        var = np.diag(V_beta + V_b[j] + C[j] + C[j].T)
        np.testing.assert_allclose(rows["std_error"], np.sqrt(var))
        np.testing.assert_allclose(rows["upper"] - rows["lower"],
                                   4 * np.sqrt(var))


def test_a_term_only_fixed_takes_the_fixed_part_alone(small_model):
    X, zmat, codes, T, sigma, J, q = small_model
    cov = joint_coef_covariance(X, zmat[:, :1], codes, T[:1, :1], sigma)
    table = group_coef_table(
        [str(j) for j in range(J)], ["(Intercept)", "x"], ["(Intercept)"],
        np.array([2.0, -1.0]), np.zeros((J, 1)), cov, z=1.0,
    )
    slope = table[table["term"] == "x"]
    np.testing.assert_allclose(slope["estimate"], -1.0)
    np.testing.assert_allclose(slope["std_error"], np.sqrt(cov[0][1, 1]))


def test_varcorr_values_follow_lme4s_order():
    sd = np.array([2.0, 0.5, 1.5])
    R = np.array([[1.0, -0.3, 0.2], [-0.3, 1.0, 0.6], [0.2, 0.6, 1.0]])
    S = sd[:, None] * R * sd[None, :]
    values = varcorr_values(S, 0.9)
    np.testing.assert_allclose(values, [2.0, -0.3, 0.2, 0.5, 0.6, 1.5, 0.9])
    table = varcorr_table(values, ["a", "b", "c"], "g")
    assert list(table.index) == [
        "sd_a|g", "cor_b.a|g", "cor_c.a|g", "sd_b|g", "cor_c.b|g", "sd_c|g",
        "sigma",
    ]
    assert table["lower"].isna().all()


def test_a_correlation_with_an_sd_of_zero_is_undefined():
    values = varcorr_values(np.diag([1.0, 0.0]), 1.0)
    assert np.isnan(values[1]) and values[2] == 0.0


def test_wald_fixed_table():
    table = wald_fixed_table(["a", "b"], [1.0, 2.0], [0.5, 0.1], z=2.0)
    assert table.index.name == "term"
    np.testing.assert_allclose(table["lower"], [0.0, 1.8])
    np.testing.assert_allclose(table["upper"], [2.0, 2.2])
