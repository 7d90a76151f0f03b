"""multilevel: the tested code behind the mixed-models book.

One linear mixed model (McElreath's cafes) simulated, written as two
equation sets and fitted by lme4 (through rpy2), by REML computed from the
equations, and by PyMC; every engine returns the same :class:`Fit` shape.

What a user types first is here::

    from multilevel import simulate_cafes, fit_lmer, fit_reml, fit_pymc, compare

Importing the package starts neither R nor PyMC: ``fit_lmer`` starts R when
it is called, and ``fit_pymc`` (with PyMC) is imported when it is first
asked for. ``multilevel.compare`` is the function :func:`compare`; its module
is reached with ``from multilevel.compare import ...``. The modules and
their layers are drawn in README.md next to this file.
"""

from typing import Any

#: The package's version: [project] version of pyproject.toml, which names
#: the wheel the notebooks install (a test keeps the two equal).
__version__ = "0.1.0"

from multilevel.compare import compare
from multilevel.data import simulate_cafes
from multilevel.errors import EngineMissingError, InputError
from multilevel.fit import Fit
from multilevel.lmer import fit_lmer
from multilevel.mixedlm import fit_statsmodels
from multilevel.reml import fit_reml

__all__ = [
    "EngineMissingError",
    "Fit",
    "InputError",
    "compare",
    "fit_lmer",
    "fit_pymc",
    "fit_reml",
    "fit_statsmodels",
    "simulate_cafes",
]


def __getattr__(name: str) -> Any:
    # fit_pymc imports PyMC, which takes seconds: only when it is asked for
    if name == "fit_pymc":
        from multilevel.bayes import fit_pymc

        return fit_pymc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
