"""The engines, each named once.

An engine has one ``name`` that the simulation study, the benchmark and the
command lines use (``lmer``, ``reml``, ``pymc``, ``statsmodels``), and a
``label``, the :attr:`multilevel.fit.Fit.engine` of its fits, which is what
tables and legends show (``lme4``, ``numpy``, ``PyMC``, ``statsmodels``).
The benchmark times some engines in more than one way (lme4 with and
without profiles, and inside R; nutpie's compilation and its sampling);
``timings`` names those rows of its results.

The registry names fitters by module and function, so importing it imports
no engine: :func:`fitter` imports the engine's module when it is asked for.
A likelihood engine fits REML by default and ML with ``reml=False``
(``methods`` lists what ``Fit.method`` can be).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from multilevel.errors import InputError

__all__ = [
    "ENGINES",
    "SAMPLERS",
    "DEFAULT_SAMPLER",
    "MARGINAL_FROM_CAFES",
    "Engine",
    "Sampler",
    "by_label",
    "engine",
    "fitter",
    "names",
    "sampler",
    "sampler_names",
]


@dataclass(frozen=True)
class Engine:
    """One engine: how to call it and what it is called where."""

    name: str
    label: str
    module: str
    function: str
    methods: tuple[str, ...]
    timings: tuple[str, ...]
    needs: str = ""

    @property
    def qualified(self) -> str:
        """``module.function`` of the fitter."""
        return f"{self.module}.{self.function}"


#: Every engine, in the order tables list them.
ENGINES: tuple[Engine, ...] = (
    Engine(
        name="lmer", label="lme4", module="multilevel.lmer", function="fit_lmer",
        methods=("REML", "ML"), timings=("lme4", "lme4_profile", "lme4_in_R"),
        needs="R with lme4, through rpy2",
    ),
    Engine(
        name="reml", label="numpy", module="multilevel.reml",
        function="fit_reml", methods=("REML", "ML"), timings=("fit_reml",),
    ),
    Engine(
        name="statsmodels", label="statsmodels", module="multilevel.mixedlm",
        function="fit_statsmodels", methods=("REML", "ML"),
        timings=("statsmodels",),
    ),
    Engine(
        name="pymc", label="PyMC", module="multilevel.bayes", function="fit_pymc",
        methods=("NUTS",),
        timings=(
            "numpyro_noncentered", "numpyro_noncentered_warm",
            "numpyro_centered", "numpyro_centered_warm",
            "numpyro_marginal", "numpyro_marginal_warm",
            "nutpie_compile", "nutpie_sampling", "pymc_default",
        ),
    ),
)

_BY_NAME = {e.name: e for e in ENGINES}
_BY_LABEL = {e.label: e for e in ENGINES}


def names() -> tuple[str, ...]:
    """The engines' names, in registry order."""
    return tuple(_BY_NAME)


def engine(name: str) -> Engine:
    """The engine called ``name``; an unknown name is refused with the list."""
    if name not in _BY_NAME:
        raise InputError(
            f"unknown engine {name!r}; choose one of {', '.join(_BY_NAME)}."
        )
    return _BY_NAME[name]


def by_label(label: str) -> Engine:
    """The engine whose fits carry ``Fit.engine == label``."""
    if label not in _BY_LABEL:
        raise InputError(
            f"no engine labels its fits {label!r}; the labels are "
            f"{', '.join(_BY_LABEL)}."
        )
    return _BY_LABEL[label]


def fitter(name: str) -> Callable:
    """The fitting function of engine ``name``, imported on first use."""
    e = engine(name)
    return getattr(importlib.import_module(e.module), e.function)


# ----------------------------------------------------------------- samplers


@dataclass(frozen=True)
class Sampler:
    """One MCMC sampler the PyMC engine can draw with (``fit_pymc(...,
    sampler=name)``): what compiles the model, and what must be installed."""

    name: str
    label: str
    compiles_with: str
    needs: tuple[str, ...]

    def missing(self) -> tuple[str, ...]:
        """The packages of ``needs`` that cannot be imported here."""
        import importlib.util

        return tuple(p for p in self.needs if importlib.util.find_spec(p) is None)


#: The samplers, the default first.
SAMPLERS: tuple[Sampler, ...] = (
    Sampler(name="numpyro", label="NumPyro", compiles_with="JAX (XLA)",
            needs=("jax", "numpyro")),
    Sampler(name="nutpie", label="nutpie", compiles_with="numba",
            needs=("nutpie", "numba")),
    Sampler(name="pymc", label="PyMC", compiles_with="PyTensor's C backend",
            needs=()),
)

#: The sampler fit_pymc uses unless told otherwise: the fastest end to end
#: in the benchmark's side-by-side runs (benchmarks/samplers.csv).
DEFAULT_SAMPLER = SAMPLERS[0].name

#: ``fit_pymc(likelihood="auto")`` integrates the cafes' coefficients out
#: above this many cafes. The posterior is the same either way; what
#: changes is the cost. With the coefficients sampled, NUTS moves two
#: numbers per cafe and its trajectories lengthen as the cafes multiply
#: (ten visits a cafe, 2 cores, benchmarks/results.csv: the centred form
#: took 8 s at 200 cafes and 79 s at 2,000, with 31 and 63 leapfrog steps
#: per draw; at 10,000 it ran out of 24 GB of memory), while the marginal
#: form moves six numbers whatever their number (9 s at 2,000 cafes, 33 s
#: at 10,000, 7 to 9 steps per draw at every size). Up to here the fit
#: samples the model as the chapters write it.
MARGINAL_FROM_CAFES = 1000

_SAMPLER_BY_NAME = {s.name: s for s in SAMPLERS}


def sampler_names() -> tuple[str, ...]:
    """The samplers' names, the default first."""
    return tuple(_SAMPLER_BY_NAME)


def sampler(name: str) -> Sampler:
    """The sampler called ``name``; an unknown name is refused with the list."""
    if not isinstance(name, str) or name not in _SAMPLER_BY_NAME:
        raise InputError(
            f"unknown sampler {name!r}; choose one of "
            f"{', '.join(_SAMPLER_BY_NAME)}."
        )
    return _SAMPLER_BY_NAME[name]
