"""Every sampler of ``fit_pymc`` draws from the same posterior.

nutpie (numba), PyMC's own NUTS (PyTensor's C backend) and NumPyro (JAX) run
the same NUTS on the same PyTensor graph of the cafe model; they differ in
how the graph is compiled and how the chains are run. On a small data set
each must converge (r-hat, ESS, no divergences), return a Fit of the same
shape, and agree with a longer nutpie reference within Monte Carlo error.
The data are the book's cafes (conftest's ``cafes``, 20 cafes).
"""

from __future__ import annotations

import numpy as np
import pytest

from multilevel import engines
from multilevel.bayes import SAMPLERS, fit_pymc
from multilevel.data import simulate_cafes
from multilevel.errors import EngineMissingError, InputError

pytestmark = pytest.mark.filterwarnings(
    "ignore:PyTensor could not link to a BLAS:UserWarning"
)

SEED = 7
#: Quantities compared between samplers (26 numbers at 20 cafes).
NAMES = ("a_bar", "b_bar", "sigma_cafe", "rho", "sigma_within", "alpha_cafe")


@pytest.fixture(scope="module")
def small():
    return simulate_cafes(n_cafes=5, n_visits=20, seed=3).data


@pytest.fixture(scope="module")
def reference(cafes):
    return fit_pymc(cafes, draws=2000, tune=1000, chains=4, seed=SEED,
                    sampler="nutpie")


def test_the_registry_lists_the_samplers_default_first():
    assert SAMPLERS == engines.sampler_names()
    assert SAMPLERS[0] == engines.DEFAULT_SAMPLER == "numpyro"
    assert set(SAMPLERS) == {"nutpie", "pymc", "numpyro"}
    assert engines.sampler("numpyro").needs == ("jax", "numpyro")


def test_an_unknown_sampler_is_refused_with_the_list(small):
    with pytest.raises(InputError, match="unknown sampler 'blackjax'; choose "
                                         "one of numpyro, nutpie, pymc"):
        engines.sampler("blackjax")
    with pytest.raises(InputError, match="unknown sampler 'blackjax'"):
        fit_pymc(small, seed=1, sampler="blackjax")
    with pytest.raises(InputError, match="unknown sampler 3"):
        fit_pymc(small, seed=1, sampler=3)


def test_a_sampler_whose_packages_are_missing_says_what_to_install(
    small, monkeypatch
):
    absent = engines.Sampler(name="numpyro", label="NumPyro",
                             compiles_with="JAX", needs=("no_such_package_xyz",))
    assert absent.missing() == ("no_such_package_xyz",)
    assert engines.sampler("pymc").missing() == ()
    monkeypatch.setitem(engines._SAMPLER_BY_NAME, "numpyro", absent)
    with pytest.raises(EngineMissingError,
                       match="needs no_such_package_xyz.*pip install"):
        fit_pymc(small, seed=1, sampler="numpyro")


def _cores(sampler: str) -> int:
    """Two cores, except for PyMC's own sampler: once JAX is imported in the
    process (the default sampler's tests), PyMC starts its chain processes by
    forkserver, each importing PyMC again (tens of seconds on two cores).
    Each chain draws from its own seed whichever the number of cores."""
    return 1 if sampler == "pymc" else 2


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_converges_to_the_same_posterior(sampler, cafes, reference):
    import arviz as az

    # PyMC's own NUTS runs its chains one after another here (``_cores``),
    # at about 40 times the cost of a step of the compiled samplers: it
    # draws half as long, and its Monte Carlo errors widen the tolerance
    draws = 500 if sampler == "pymc" else 1000
    fit = fit_pymc(cafes, draws=draws, tune=draws, chains=4, seed=SEED,
                   sampler=sampler, cores=_cores(sampler))
    d = fit.diagnostics
    assert fit.method == f"NUTS, {engines.sampler(sampler).label}"
    assert d["sampler"] == sampler and d["seed"] == SEED
    assert d["divergences"] == 0
    assert d["r_hat_max"] < 1.01
    assert d["ess_bulk_min"] > 400
    assert fit.messages == []
    # the same shape as the reference: tables, indexes, columns, diagnostics
    for name in ("fixed", "varcorr", "ranef", "coef"):
        got, ref = getattr(fit, name), getattr(reference, name)
        assert list(got.columns) == list(ref.columns), name
        assert list(got.index) == list(ref.index), name
        if "group" in got:
            assert list(got["group"]) == list(ref["group"]), name
    assert set(d) == set(reference.diagnostics)
    assert (fit.nobs, fit.ngroups) == (reference.nobs, reference.ngroups)
    # the same posterior: means within 4.5 combined Monte Carlo SEs
    # (false-alarm rate about 26 x 7e-6 when both are right)
    post, ref_post = fit.raw.posterior, reference.raw.posterior
    mcse, ref_mcse = az.mcse(post[list(NAMES)]), az.mcse(ref_post[list(NAMES)])
    checked = 0
    for name in NAMES:
        diff = np.abs(post[name].mean(("chain", "draw"))
                      - ref_post[name].mean(("chain", "draw"))).values
        tol = 4.5 * np.hypot(mcse[name].values, ref_mcse[name].values)
        assert np.all(diff < tol), (sampler, name, diff, tol)
        checked += diff.size
    assert checked == 26


@pytest.mark.slow
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_repeats_its_draws_for_a_seed(sampler, cafes):
    # short chains: the draws must repeat exactly, whatever their quality
    one = fit_pymc(cafes, draws=50, tune=50, chains=4, seed=SEED,
                   sampler=sampler, cores=_cores(sampler))
    two = fit_pymc(cafes, draws=50, tune=50, chains=4, seed=SEED,
                   sampler=sampler, cores=_cores(sampler))
    np.testing.assert_array_equal(one.raw.posterior["a_bar"].values,
                                  two.raw.posterior["a_bar"].values)


# ---- the NumPyro driver's starting points ---------------------------------


@pytest.fixture(scope="module")
def starts_setup(small):
    import jax.numpy as jnp  # noqa: F401  (jax with 64-bit floats, as PyMC sets it)
    from pymc.initial_point import make_initial_point_fn
    from pymc.sampling.jax import get_jaxified_graph

    from multilevel.bayes import cafe_model

    model = cafe_model(small)
    values = model.value_vars
    graph = get_jaxified_graph(inputs=values, outputs=[model.logp()])
    point = make_initial_point_fn(model=model, jitter_rvs=set())(0)
    centre = [np.asarray(point[v.name]) for v in values]
    return model, values, (lambda x: graph(*x)[0]), centre


def test_numpyro_starts_are_the_initial_point_jittered_per_chain(starts_setup):
    from multilevel.bayes import _jittered_starts

    model, values, logp, centre = starts_setup
    one = _jittered_starts(model, values, logp, chains=4, seed=5)
    assert [s.shape for s in one] == [(4, *c.shape) for c in centre]
    for s, c in zip(one, centre, strict=True):
        offsets = s - c
        assert np.all(np.abs(offsets) <= 1) and np.all(offsets != 0)
        assert len({o.tobytes() for o in offsets}) == 4  # each chain its own
    again = _jittered_starts(model, values, logp, chains=4, seed=5)
    other = _jittered_starts(model, values, logp, chains=4, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(one, again, strict=True))
    assert not np.array_equal(one[0], other[0])


def test_numpyro_starts_draw_again_where_the_density_is_not_finite(starts_setup):
    import jax.numpy as jnp

    from multilevel.bayes import JITTER_RETRIES, _jittered_starts

    model, values, logp, centre = starts_setup
    # a density that is -inf on half of the first coordinate's jitter: every
    # chain that lands there must draw again, and none may start there
    first = float(np.ravel(centre[0])[0])

    def half(x):
        return jnp.where(jnp.ravel(x[0])[0] > first, -jnp.inf, logp(x))

    plain = _jittered_starts(model, values, logp, chains=8, seed=3)
    assert np.any(plain[0].reshape(8, -1)[:, 0] > first)  # some would start there
    starts = _jittered_starts(model, values, half, chains=8, seed=3)
    assert np.all(starts[0].reshape(8, -1)[:, 0] <= first)
    with pytest.raises(InputError, match=f"8 of 8 chains found no start with a "
                                         f"finite log density in {JITTER_RETRIES + 1}"):
        _jittered_starts(model, values, lambda x: -jnp.inf * logp(x) ** 0,
                         chains=8, seed=3)
