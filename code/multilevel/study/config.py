"""What a study is: its engines, tables, statuses, design and seeds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from multilevel import engines, validate
from multilevel.errors import InputError

#: The registry's engines the study runs (their registry names).
ENGINES = tuple(engines.engine(name).name for name in ("lmer", "reml", "pymc"))

#: PyMC's parametrisations: always centred, always non-centred, or chosen
#: per replicate from the data (:func:`multilevel.pooling.choose_parametrisation`).
PARAMETRISATIONS = ("centered", "non-centered", "auto")

#: NUTS's target acceptance rate in the study (the book's, from bayes.py;
#: repeated here so the config does not import PyMC).
TARGET_ACCEPT = 0.9

#: Row statuses, from best to worst.
STATUSES = ("ok", "singular", "diagnostics_failed", "profile_failed", "error")

#: Columns of the per-replicate long table, in order.
LONG_COLUMNS = (
    "replicate", "n_cafes", "engine", "interval", "parameter", "estimate",
    "lower", "upper", "truth", "status", "seconds", "data_seed",
    "sampler_seed", "singular", "r_hat_max", "ess_bulk_min", "divergences",
    "centered", "message",
)

#: Columns of the summary table, in order.
SUMMARY_COLUMNS = (
    "n_cafes", "engine", "interval", "parameter", "truth", "n_replicates",
    "n_ok", "n_singular", "n_diagnostics_failed", "n_profile_failed",
    "n_error", "n_estimates", "bias", "bias_mcse", "rmse", "n_intervals",
    "coverage", "coverage_mcse", "median_width",
)

#: Row order of the parameters (lme4's names) and their symbols in the book.
PARAMETERS = {
    "(Intercept)": "alpha",
    "afternoon": "beta",
    "sd_(Intercept)|cafe": "sigma_alpha",
    "cor_afternoon.(Intercept)|cafe": "rho",
    "sd_afternoon|cafe": "sigma_beta",
    "sigma": "sigma",
}


@dataclass(frozen=True)
class StudyConfig:
    """Everything that determines a study's numbers."""

    designs: tuple[tuple[int, int], ...]  # (n_cafes, replicates)
    seed: int
    engines: tuple[str, ...] = ENGINES
    n_visits: int = 10
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    parametrisation: str = "auto"
    target_accept: float = TARGET_ACCEPT
    level: float = 0.95
    reml_intervals: str = "profile"
    replicate_ids: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate.whole_number("seed", self.seed, 0)
        if not self.designs:
            raise InputError("no designs: give at least one number of cafes.")
        for n_cafes, reps in self.designs:
            validate.whole_number("number of cafes", n_cafes, 2)
            validate.whole_number("replicates", reps, 1)
        if len({j for j, _ in self.designs}) != len(self.designs):
            raise InputError(
                f"a number of cafes appears twice in {self.designs}; list "
                "each design once."
            )
        if not self.engines:
            raise InputError(f"no engines: choose from {', '.join(ENGINES)}.")
        for engine in self.engines:
            validate.choice("engine", engine, ENGINES)
        validate.whole_number("n_visits", self.n_visits, 2)
        validate.whole_number("draws", self.draws, 1)
        validate.whole_number("tune", self.tune, 0)
        validate.whole_number("chains", self.chains, 2)
        validate.choice("parametrisation", self.parametrisation, PARAMETRISATIONS)
        validate.share("target_accept", self.target_accept,
                       what="a probability", example=TARGET_ACCEPT)
        validate.choice("reml_intervals", self.reml_intervals, ("profile", "none"))
        validate.interval_level(self.level)
        if self.replicate_ids is not None:
            for i in self.replicate_ids:
                validate.whole_number("replicate id", i, 0)

    def tasks(self) -> list[tuple[int, int]]:
        """(n_cafes, replicate) pairs, grouped by design."""
        out = []
        for n_cafes, reps in self.designs:
            ids = range(reps) if self.replicate_ids is None else self.replicate_ids
            out += [(n_cafes, i) for i in ids]
        return out


def replicate_seeds(master: int, n_cafes: int, replicate: int) -> tuple[int, int]:
    """(data seed, sampler seed) of one replicate, from the master seed.

    ``SeedSequence(master, spawn_key=(n_cafes, replicate))`` is the
    ``replicate``-th child of the ``n_cafes``-th child of
    ``SeedSequence(master)``; its two children give the seeds.
    """
    validate.whole_number("master seed", master, 0)
    validate.whole_number("n_cafes", n_cafes, 0)
    validate.whole_number("replicate", replicate, 0)
    ss = np.random.SeedSequence(master, spawn_key=(n_cafes, replicate))
    data_ss, sampler_ss = ss.spawn(2)
    return int(data_ss.generate_state(1)[0]), int(sampler_ss.generate_state(1)[0])
