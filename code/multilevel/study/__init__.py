"""A simulation study: how well do the engines recover the cafe truth?

Many data sets are simulated from known parameters
(:func:`multilevel.data.simulate_cafes`), each is fitted by

* ``lmer``: lme4 through rpy2 (:func:`multilevel.lmer.fit_lmer`), once with
  likelihood-profile intervals (fixed effects and variance components) and
  once with Wald intervals (fixed effects only: lme4 has no Wald interval
  for an SD or a correlation);
* ``reml``: REML from the equations (:func:`multilevel.reml.fit_reml`), Wald
  intervals for the fixed effects, ML-profile intervals for the rest;
* ``pymc``: the Bayesian model of equation set 2
  (:func:`multilevel.bayes.fit_pymc`, nutpie), highest-density intervals;

and every estimate and interval is compared with the truth. The result is a
long table, one row per (replicate, engine, interval kind, parameter), and a
summary of bias, RMSE and interval coverage with Monte Carlo standard
errors.

Seeds. One master seed ``m``. Replicate ``i`` of the design with ``J``
cafes gets the seed sequence ``SeedSequence(m, spawn_key=(J, i))`` (the
``i``-th child of the ``J``-th child of ``SeedSequence(m)``); its two
children give the data seed and the sampler seed. A replicate therefore
does not depend on how many others are run, and any one can be re-run alone
(``--replicate-ids``).

Failures are rows, never gaps: every row has a ``status``:

* ``ok``;
* ``singular``: the fit is on the boundary (an SD of 0 or a correlation of
  +-1), estimates and intervals are kept;
* ``profile_failed``: the estimate exists but the interval could not be
  computed (NaN);
* ``diagnostics_failed``: a PyMC fit with r-hat >= 1.01, bulk ESS < 400 or a
  divergence; estimates and intervals are kept and flagged;
* ``error``: the engine raised; estimate and interval are NaN and
  ``message`` says why.

Parallel work uses a ``spawn`` process pool (each worker starts its own R
through rpy2, which cannot be shared across processes). PyMC's cost is
nutpie's compilation (tens of seconds) rather than sampling (about two
seconds): each worker compiles the model once per design size and
parametrisation with the observed waits as a shared variable and swaps in
each replicate's waits (:func:`pymc_fit_shared`, through
:func:`multilevel.bayes.compile_cafe_model`). By default each replicate's
parametrisation is chosen from its data
(:func:`multilevel.pooling.choose_parametrisation`; ``--parametrisation``),
and the long table's ``centered`` column says which form each PyMC fit
sampled. Rows of an engine a new run does not change can be taken from an
earlier run of the same seed and design (``--reuse-from``,
``--reuse-engines``; :func:`reused_rows`).

Run ``python -m multilevel.study --help`` for the command line.

The code: :mod:`.config` (the study's design, tables and seeds),
:mod:`.replicates` (the replicate loop and its workers), :mod:`.summary`
(bias, RMSE, coverage) and :mod:`.cli` (the command line and provenance).
"""

from multilevel.study.cli import config_from_args, main, provenance
from multilevel.study.config import (
    ENGINES,
    LONG_COLUMNS,
    PARAMETERS,
    STATUSES,
    SUMMARY_COLUMNS,
    StudyConfig,
    replicate_seeds,
)
from multilevel.study.replicates import (
    chunks,
    pymc_fit_shared,
    reused_rows,
    run_replicate,
    run_study,
)
from multilevel.study.summary import (
    bias_reading,
    coverage_z,
    lookup,
    pymc_failures,
    summarise,
    t_coverage,
)

__all__ = [
    "ENGINES",
    "LONG_COLUMNS",
    "PARAMETERS",
    "STATUSES",
    "SUMMARY_COLUMNS",
    "StudyConfig",
    "bias_reading",
    "chunks",
    "config_from_args",
    "coverage_z",
    "lookup",
    "main",
    "provenance",
    "pymc_failures",
    "pymc_fit_shared",
    "reused_rows",
    "replicate_seeds",
    "run_replicate",
    "run_study",
    "summarise",
    "t_coverage",
]
