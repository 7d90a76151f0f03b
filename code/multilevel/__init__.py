"""multilevel: the tested code behind the mixed-models book.

One linear mixed model (McElreath's cafes) simulated, written as two
equation sets and fitted by lme4 (through rpy2), by REML computed from the
equations, and by PyMC; every engine returns the same :class:`Fit` shape.
"""

from multilevel.errors import EngineMissingError, InputError
from multilevel.fit import Fit

__all__ = ["EngineMissingError", "Fit", "InputError"]
