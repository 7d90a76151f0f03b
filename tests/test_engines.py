"""The engine registry and the one convergence rule."""

from __future__ import annotations

import math

import pytest

from multilevel import engines
from multilevel.errors import InputError
from multilevel.fit import ESS_BULK_MIN, R_HAT_MAX, converged, convergence_problems


def test_each_engine_is_named_once():
    names = [e.name for e in engines.ENGINES]
    labels = [e.label for e in engines.ENGINES]
    timings = [t for e in engines.ENGINES for t in e.timings]
    assert len(set(names)) == len(names)
    assert len(set(labels)) == len(labels)
    assert len(set(timings)) == len(timings)
    assert engines.names() == tuple(names)


def test_the_fitters_are_found_and_label_their_fits():
    import multilevel.mixedlm
    import multilevel.reml

    assert engines.fitter("reml") is multilevel.reml.fit_reml
    assert engines.fitter("statsmodels") is multilevel.mixedlm.fit_statsmodels
    # every engine module labels its fits with the registry's label
    for name in ("reml", "statsmodels", "lmer"):
        module = __import__(engines.engine(name).module, fromlist=["ENGINE"])
        assert module.ENGINE is engines.engine(name)
    assert engines.by_label("numpy").name == "reml"


def test_the_study_and_the_benchmark_use_the_registry():
    from multilevel import benchmark, study

    assert set(study.ENGINES) <= set(engines.names())
    assert benchmark.ENGINES == tuple(
        t for e in engines.ENGINES for t in e.timings
    )


def test_unknown_names_are_refused_with_the_list():
    with pytest.raises(InputError, match="unknown engine 'stan'.*lmer, reml"):
        engines.engine("stan")
    with pytest.raises(InputError, match="no engine labels its fits 'R'"):
        engines.by_label("R")


GOOD = {"r_hat_max": 1.002, "ess_bulk_min": 812.0, "divergences": 0}


def test_converged_accepts_clean_diagnostics():
    assert converged(GOOD)
    assert convergence_problems(GOOD) == []
    # the limits themselves: r-hat must be below, ESS may equal
    assert converged(dict(GOOD, ess_bulk_min=float(ESS_BULK_MIN)))
    assert not converged(dict(GOOD, r_hat_max=R_HAT_MAX))


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"r_hat_max": 1.05}, "r-hat up to 1.050"),
        ({"ess_bulk_min": 399.0}, "bulk ESS down to 399"),
        ({"divergences": 3}, "3 divergent transitions"),
        ({"r_hat_max": math.nan}, "r-hat up to nan"),
        ({"ess_bulk_min": None}, "bulk ESS is None"),
    ],
)
def test_converged_refuses_each_broken_diagnostic(change, fragment):
    d = dict(GOOD, **change)
    assert not converged(d)
    (problem,) = convergence_problems(d)
    assert fragment in problem


def test_the_bayes_module_cites_the_same_thresholds():
    from multilevel import bayes

    assert (bayes.R_HAT_MAX, bayes.ESS_BULK_MIN) == (R_HAT_MAX, ESS_BULK_MIN)
