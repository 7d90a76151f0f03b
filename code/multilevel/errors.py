"""Errors the package raises, so callers and tests can tell them apart."""


class InputError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


class EngineMissingError(RuntimeError):
    """An external engine (R, lme4, a LaTeX tool) is not installed.

    The message names the command that installs it.
    """


R_INSTALL_COMMAND = (
    "apt-get install -y r-base-core r-cran-lme4 r-cran-arm "
    "r-cran-mertools r-cran-broom.mixed"
)
