"""Shared fixtures: the default cafe data, lme4's sleepstudy, R availability.

R starts at most once per test session (the ``r_session`` fixture), and only
when a test that needs it runs. ``needs_r`` is the one way a test says it
needs R: such tests are skipped only where R, rpy2 or lme4 is missing, with
the reason and the install command; lme4's answers saved in
``tests/reference/`` check the same agreement without R.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

# CI runs the property tests on a fixed set of examples, so a pass or a failure
# repeats; local runs (the default profile) keep exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: The seed the book's chapters use (``SEED = 14`` in book/*.qmd).
CAFE_SEED = 14


def _r_missing_reason() -> str | None:
    from multilevel.lmer import r_available, require_r

    if r_available():
        return None
    try:
        require_r()
    except Exception as exc:  # EngineMissingError, with the install command
        return str(exc)
    return "R is not available"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a ``needs_r`` test only when R, rpy2 or lme4 is absent."""
    if item.get_closest_marker("needs_r") is not None:
        reason = _r_missing_reason()
        if reason is not None:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def r_session():
    """Start R once for the session.

    Only tests marked ``needs_r`` may use it: they are skipped (above) where
    R is absent, so reaching here without R means a test lacks the marker.
    """
    reason = _r_missing_reason()
    if reason is not None:
        pytest.fail(f"a test that uses R is not marked needs_r ({reason})")
    import rpy2.robjects as ro

    return ro


@pytest.fixture(scope="session")
def saved_benchmark():
    """Read a table the benchmark saved in benchmarks/; fail if it is missing.

    ``saved_benchmark(name, flags)``: ``flags`` are the benchmark's options
    that write ``name``, for the message that says how to make it.
    """
    saved = Path(__file__).resolve().parents[1] / "benchmarks"

    def read(name: str, flags: str = "") -> pd.DataFrame:
        path = saved / name
        if not path.exists():
            command = f"python -m multilevel.benchmark --out benchmarks {flags}"
            pytest.fail(f"{path} is missing: run `{command.strip()}` and "
                        "commit the results.")
        return pd.read_csv(path)

    return read


@pytest.fixture(scope="session")
def cafe_sim():
    """The book's default cafe simulation (seed 14, all defaults)."""
    from multilevel.data import simulate_cafes

    return simulate_cafes(seed=CAFE_SEED)


@pytest.fixture(scope="session")
def cafes(cafe_sim) -> pd.DataFrame:
    """The data of the default cafe simulation (a copy per session)."""
    return cafe_sim.data.copy()


@pytest.fixture(scope="session")
def sleepstudy(r_session) -> pd.DataFrame:
    """lme4's ``sleepstudy`` as R holds it.

    ``Reaction`` and ``Days`` are doubles; ``Subject`` holds the factor's
    labels as ints (308, ..., 372), whose numeric order is R's level order.
    """
    ro = r_session
    from multilevel.lmer import _quiet_console

    with _quiet_console():
        frame = ro.r("lme4::sleepstudy")
        subject = ro.r("function(d) as.character(d$Subject)")(frame)
        levels = ro.r("function(d) levels(d$Subject)")(frame)
    data = pd.DataFrame(
        {
            "Reaction": np.asarray(frame.rx2("Reaction"), dtype=float),
            "Days": np.asarray(frame.rx2("Days"), dtype=float),
            "Subject": np.asarray([int(s) for s in subject]),
        }
    )
    assert [int(s) for s in levels] == sorted(set(data["Subject"]))
    return data
