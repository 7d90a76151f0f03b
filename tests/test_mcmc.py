"""The vectorised diagnostics against ArviZ's, quantity by quantity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import multilevel.bayes  # noqa: F401  (hushes arviz's import-time warning)
from multilevel import mcmc
from multilevel.errors import InputError

az = pytest.importorskip("arviz")


def _chains(seed: int, chains: int, draws: int, k: int) -> np.ndarray:
    """AR(1) chains from nearly independent to very sticky, plus the cases
    that take another path: chains that disagree, a constant quantity,
    heavy ties, a heavy tail."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-0.5, 0.995, k)
    phi[:5] = 0.0  # independent draws, so that one chain's shift shows
    noise = rng.standard_normal((chains, draws, k))
    x = np.zeros((chains, draws, k))
    x[:, 0] = noise[:, 0]
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    x[0, :, :5] += 3.0  # one chain elsewhere
    x[:, :, 5] = 2.5  # constant
    x[:, :, 6] = np.round(x[:, :, 6])  # many ties
    x[:, :, 7] = np.exp(2 * x[:, :, 7])  # a heavy right tail
    return x


def _arviz(x: np.ndarray, level: float) -> dict[str, np.ndarray]:
    ds = az.convert_to_dataset({"v": x})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "rhat": az.rhat(ds)["v"].values,
            "ess_bulk": az.ess(ds, method="bulk")["v"].values,
            "ess_tail": az.ess(ds, method="tail")["v"].values,
            "hdi": az.hdi(ds, hdi_prob=level)["v"].values,
        }


@pytest.mark.parametrize(
    "seed, chains, draws, k",
    [(1, 4, 1000, 40), (2, 2, 301, 30), (3, 8, 50, 20),
     (4, 4, 200, mcmc.BLOCK + 11)],  # the last spans two blocks
)
def test_diagnostics_equal_arviz(seed, chains, draws, k):
    x = _chains(seed, chains, draws, k)
    ref = _arviz(x, 0.89)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = mcmc.diagnose(x)
        singles = {"rhat": mcmc.rhat(x), "ess_bulk": mcmc.ess_bulk(x),
                   "ess_tail": mcmc.ess_tail(x)}
    for name in ("rhat", "ess_bulk", "ess_tail"):
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-10,
                                   equal_nan=True, err_msg=name)
        np.testing.assert_array_equal(singles[name], ours[name], err_msg=name)
    np.testing.assert_array_equal(mcmc.hdi(x, 0.89), ref["hdi"])
    # the cases are really there: disagreeing chains, a constant
    assert ours["rhat"][:5].min() > 1.1
    assert np.isnan(ours["rhat"][5])
    assert ours["ess_bulk"][5] == chains * (draws // 2) * 2


def test_one_chain_ess_and_a_missing_draw():
    x = _chains(5, 4, 100, 12)
    x[2, 10, 3] = np.nan
    ref = _arviz(x, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = mcmc.diagnose(x)
    for name in ("rhat", "ess_bulk", "ess_tail"):
        assert np.isnan(ours[name][3]) and np.isnan(ref[name][3])
    one = x[:1, :, 8:]
    ref_one = az.ess(az.convert_to_dataset({"v": one}), method="bulk")["v"].values
    np.testing.assert_allclose(mcmc.ess_bulk(one), ref_one, rtol=1e-10)


def test_ties_get_their_average_rank():
    row = np.array([[3.0, 1.0, 3.0, 2.0, 3.0, 1.0, 0.5]])
    np.testing.assert_array_equal(
        mcmc._ranks(row), [[6.0, 2.5, 6.0, 4.0, 6.0, 2.5, 1.0]]
    )


def test_the_checks_fail_on_a_broken_input():
    """Drop the split of the chains and a within-chain trend goes unseen:
    the comparison with ArviZ would then fail, and r-hat is not 1."""
    rng = np.random.default_rng(0)
    trend = np.linspace(-2, 2, 400)[None, :, None] + rng.standard_normal((4, 400, 1))
    assert mcmc.rhat(trend)[0] > 1.2
    assert mcmc._rhat_plain(mcmc._as_draws(trend, 2))[0] < 1.01


@pytest.mark.parametrize(
    "shape, min_chains, match",
    [((4, 3), 1, "at least 1 chain"), ((1, 100), 2, "at least 2 chain"),
     ((4, 100, 2, 2), 1, "stack the quantities")],
)
def test_bad_shapes_are_refused(shape, min_chains, match):
    fn = mcmc.rhat if min_chains == 2 else mcmc.ess_bulk
    with pytest.raises(InputError, match=match):
        fn(np.zeros(shape))


def test_hdi_refuses_a_level_outside_0_1():
    with pytest.raises(InputError, match="0 < prob"):
        mcmc.hdi(np.zeros((2, 10)), 1.0)
