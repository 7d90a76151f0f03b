"""The argument checks every public function uses, written once.

Each check returns the value in its plain Python type (``int``, ``float``,
``bool``) or raises :class:`~multilevel.errors.InputError` with a message
that names the argument, says what is wrong and how to fix it. Nothing is
coerced silently: ``True`` is not a count, ``"5"`` is not a number, and
``2.0`` is not a whole number.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from multilevel.errors import InputError

__all__ = [
    "choice",
    "dataframe",
    "fit_arguments",
    "flag",
    "interval_level",
    "real_number",
    "seed",
    "whole_number",
]


def whole_number(name: str, value: Any, minimum: int, *, fix: str = "") -> int:
    """``value`` as an ``int`` >= ``minimum`` (a bool is not a whole number).

    ``fix`` replaces the default advice of the ``>= minimum`` message.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InputError(
            f"{name} must be a whole number >= {minimum}, got {value!r} "
            f"({type(value).__name__}); pass an int such as "
            f"{name}={max(minimum, 2)}."
        )
    if value < minimum:
        raise InputError(
            f"{name} must be >= {minimum}, got {value!r}; "
            + (fix or f"pass a larger {name}.")
        )
    return int(value)


def real_number(
    name: str, value: Any, *, positive: bool = False, what: str = "a scale",
    example: float | None = None,
) -> float:
    """``value`` as a finite ``float``; with ``positive``, also > 0.

    ``what`` says in the message why it must be positive (``"a standard
    deviation"``); ``example`` is a value to suggest.
    """
    suggestion = f"pass e.g. {name}={example}" if example is not None else (
        "pass a real number"
    )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(
            f"{name} must be a real number, got {value!r} "
            f"({type(value).__name__}); {suggestion}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}; {suggestion}.")
    if positive and value <= 0:
        raise InputError(
            f"{name} is {what} and must be > 0, got {value!r}; pass a positive "
            + (f"value such as {name}={example}." if example is not None
               else "number.")
        )
    return value


def share(name: str, value: Any, *, what: str, example: float) -> float:
    """``value`` as a float strictly between 0 and 1 (a probability, a share);
    ``what`` names it in the message (``"a probability"``)."""
    value = real_number(name, value, positive=True, what=what, example=example)
    if not value < 1:
        raise InputError(
            f"{name} is {what}, so it must be between 0 and 1, got {value!r}; "
            f"pass e.g. {name}={example}."
        )
    return value


def interval_level(value: Any) -> float:
    """The coverage of an interval: a number strictly between 0 and 1."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not 0 < value < 1
    ):
        raise InputError(
            f"level must be a number in (0, 1), got {value!r}; pass e.g. "
            "level=0.95."
        )
    return float(value)


def flag(name: str, value: Any) -> bool:
    """``value`` as a ``bool``: only True or False (numpy's included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(
            f"unknown {name} {value!r}; choose one of {', '.join(choices)}."
        )
    return value


def seed(value: Any, *, why: str = "so the results can be reproduced") -> int:
    """A seed: a non-negative whole number."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < 0
    ):
        raise InputError(
            f"seed must be a non-negative whole number, got {value!r}; pass "
            f"e.g. seed=2024 {why}."
        )
    return int(value)


def dataframe(data: Any, *, hint: str = "") -> pd.DataFrame:
    """``data`` if it is a pandas DataFrame; ``hint`` says what to pass."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"data must be a pandas DataFrame, got {type(data).__name__}"
            + (f"; {hint}" if hint else "")
            + "."
        )
    return data


def fit_arguments(data: Any, *, reml: Any, level: Any) -> None:
    """The arguments every likelihood fitter shares: a DataFrame, a bool
    ``reml`` and a ``level`` in (0, 1)."""
    dataframe(data)
    interval_level(level)
    flag("reml", reml)
