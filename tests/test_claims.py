"""The logic that picks a chapter's words from its numbers.

Where the direction of a sentence could change with the seed ("narrows" or
"widens", "an underestimate" or "within noise"), the chapter computes the
word with a small function defined in one of its cells. These tests take
those functions out of the chapters' ``.qmd`` files (only the function
definitions, not the cells around them, so nothing is fitted) and feed them
constructed inputs whose right answer is known, including the numbers that
once sat next to a sentence that contradicted them.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from multilevel.study import bias_reading, lookup

BOOK = Path(__file__).resolve().parent.parent / "book"
CHUNK = re.compile(r"^```\{python\}\s*\n(.*?)^```\s*$", re.S | re.M)


def chapter_function(chapter: str, name: str, **namespace):
    """The function ``name`` as a chapter's python chunks define it.

    Exactly one chunk of ``book/<chapter>.qmd`` must define it; the
    definition runs alone, with ``pd``, ``np`` and ``namespace`` as globals.
    """
    source = (BOOK / f"{chapter}.qmd").read_text(encoding="utf-8")
    found = []
    for chunk in CHUNK.findall(source):
        code = "\n".join(
            line for line in chunk.splitlines() if not line.startswith("#|")
        )
        if code.lstrip().startswith("%"):  # %%R cells and line magics
            continue
        for node in ast.parse(code).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                found.append(node)
    assert len(found) == 1, (
        f"book/{chapter}.qmd should define {name}() once, found {len(found)}"
    )
    module = ast.Module(body=found, type_ignores=[])
    scope = {"pd": pd, "np": np, **namespace}
    exec(compile(module, f"book/{chapter}.qmd:{name}", "exec"), scope)
    return scope[name]


# --- PyMC chapter: the LKJ exercise's interval and mean ---------------------


@pytest.fixture(scope="module")
def trend():
    return chapter_function("fit-pymc", "trend")


def test_trend_reads_the_widths_the_exercise_once_misread(trend):
    # eta = 1, 2, 10 gave widths 0.49, 0.54, 0.60 next to "the interval
    # narrows": the words must follow the numbers.
    assert trend([0.49, 0.54, 0.60], "narrows", "widens") == "widens"


def test_trend_falls_rises_or_says_neither(trend):
    assert trend([0.60, 0.54, 0.49], "narrows", "widens") == "narrows"
    assert trend([0.5, 0.6, 0.55], "narrows", "widens") == (
        "does not change monotonically"
    )
    # a tie is not a monotone change either way
    assert trend([0.5, 0.5, 0.6], "narrows", "widens") == (
        "does not change monotonically"
    )


def test_trend_of_absolute_means_is_towards_zero(trend):
    means = pd.Series([-0.74, -0.71, -0.60])  # eta 1, 2, 10
    assert trend(means.abs(), "moves towards zero", "moves away from zero") == (
        "moves towards zero"
    )


# --- lmer chapter: what ML changes -------------------------------------------


@pytest.fixture(scope="module")
def moved():
    return chapter_function("fit-lmer", "moved")


@pytest.fixture(scope="module")
def both():
    return chapter_function("fit-lmer", "both")


REML = pd.Series({"sd_a": 1.1541, "rho": -0.7731, "sd_b": 0.6554,
                  "sigma": 0.473511})


def test_moved_keeps_sigma_apart_when_only_the_cafe_sds_shrink(moved, both):
    # the published numbers: sigma 0.4735 under both criteria
    ml = pd.Series({"sd_a": 1.1238, "rho": -0.7749, "sd_b": 0.6353,
                    "sigma": 0.473512})
    m = moved(REML, ml)
    assert m["stayed"] == ["sigma"]
    assert set(m["fell"]) == {"sd_a", "rho", "sd_b"}
    assert m["rose"] == []
    assert both(["sd_a", "sd_b"], m) == "both fell"
    assert both(["sigma"], m) == "both stayed within rounding"


def test_moved_and_both_report_mixed_directions(moved, both):
    ml = REML + pd.Series({"sd_a": -0.03, "rho": 0.0, "sd_b": 0.02,
                           "sigma": 0.0})
    m = moved(REML, ml)
    assert m["rose"] == ["sd_b"] and m["fell"] == ["sd_a"]
    assert both(["sd_a", "sd_b"], m) == "moved in different directions"


# --- simulation study: a bias against its Monte Carlo error ------------------


def reading_with(bias_value: float, se: float):
    """The chapter's reading() on a one-row summary holding the bias."""
    summary = pd.DataFrame({"n_cafes": [20], "engine": ["lmer"],
                            "interval": ["profile"],
                            "parameter": ["sd_(Intercept)|cafe"],
                            "bias": [bias_value], "bias_mcse": [se]})

    def get(n_cafes, method, symbol, column):
        return lookup(summary, n_cafes, method, symbol, column)

    def bias(n_cafes, engine, symbol):
        return get(n_cafes, engine, symbol, "bias")

    reading = chapter_function("simulation-study", "reading", get=get,
                               bias=bias, bias_reading=bias_reading)
    return reading(20, "lmer", "sigma_alpha")


def test_a_bias_within_two_standard_errors_is_not_called_an_underestimate():
    # -0.019 with a Monte Carlo standard error of 0.012
    assert reading_with(-0.019, 0.012) == (
        "within two Monte Carlo standard errors of zero"
    )


def test_a_bias_beyond_two_standard_errors_gets_its_sign():
    assert reading_with(-0.021, 0.008) == "an underestimate"
    assert reading_with(0.147, 0.012) == "an overestimate"


# --- cafes chapter: the correlation of no-pooling estimates ------------------


def test_noisy_correlation_formula_matches_a_simulation():
    """The formula of Exercise 1.3 against no-pooling estimates of many
    simulated cafes (an independent check of the algebra)."""
    noisy_correlation = chapter_function("cafes", "noisy_correlation")
    from multilevel.data import simulate_cafes

    n_cafes = 4000
    sim = simulate_cafes(n_cafes=n_cafes, n_visits=10, seed=2024)
    m = sim.data.pivot_table(index="cafe", columns="afternoon",
                             values="wait", aggfunc="mean")
    observed = np.corrcoef(m[0], m[1] - m[0])[0, 1]
    t = sim.truth
    expected = noisy_correlation(t.rho, t.sigma_a, t.sigma_b, t.sigma, 5, 5)
    # sampling SD of a correlation near r from n pairs: (1 - r^2)/sqrt(n)
    tolerance = 4 * (1 - expected**2) / np.sqrt(n_cafes)
    assert abs(observed - expected) < tolerance
    # and the point of the exercise: weaker than rho for the book's cafes,
    # negative when rho is zero
    assert abs(expected) < abs(t.rho)
    assert noisy_correlation(0.0, t.sigma_a, t.sigma_b, t.sigma, 2, 2) < 0


def test_noisy_correlation_is_not_the_true_correlation_plus_a_constant():
    noisy_correlation = chapter_function("cafes", "noisy_correlation")
    # with no noise the formula returns rho itself
    assert noisy_correlation(-0.7, 1.0, 0.5, 1e-9, 5, 5) == pytest.approx(-0.7)
    # with noise only, the correlation of pure noise -1/sqrt(1 + n_m/n_a)
    assert noisy_correlation(0.0, 1e-9, 1e-9, 0.5, 5, 5) == pytest.approx(
        -1 / np.sqrt(2)
    )


# --- the built book: the printed words agree with the printed numbers --------
#
# These read the site `make book` built (BOOK_BUILD, default _build/) and
# fail, as tests/test_book.py does, when there is none. Each finds a
# sentence by its fixed words and checks its direction word against the
# numbers printed in the same sentence.


REPO = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("BOOK_BUILD") or REPO / "_build").resolve()
NUM = r"[-−+]?\d+\.\d+"


def page_text(chapter: str) -> str:
    page = BUILD / "html" / "book" / f"{chapter}.html"
    if not page.is_file():
        pytest.fail(f"no built page {page}; run make book first", pytrace=False)
    from bookcheck.site import main_text

    return re.sub(r"\s+", " ", main_text(page))


def number(text: str) -> float:
    return float(text.replace("−", "-"))


@pytest.mark.book
def test_built_lkj_exercise_says_what_its_widths_do():
    text = page_text("fit-pymc")
    m = re.search(rf"The interval (narrows|widens|does not change "
                  rf"monotonically): its width goes ((?:{NUM}, )+{NUM})", text)
    assert m, "the LKJ exercise's sentence about the interval is missing"
    widths = [number(w) for w in m.group(2).split(", ")]
    steps = np.diff(widths)
    expected = ("narrows" if (steps < 0).all() else "widens"
                if (steps > 0).all() else "does not change monotonically")
    assert m.group(1) == expected, (m.group(0), widths)


@pytest.mark.book
def test_built_simulation_study_calls_noise_noise():
    text = page_text("simulation-study")
    found = re.findall(
        rf"({NUM}) \(standard error ({NUM})\)[^.;]*?, (an underestimate|"
        rf"an overestimate|within two Monte Carlo standard errors of zero)",
        text)
    assert found, "no bias sentence with a reading found"
    for bias, se, word in found:
        b, s = number(bias), number(se)
        expected = ("within two Monte Carlo standard errors of zero"
                    if abs(b) <= 2 * s else
                    "an underestimate" if b < 0 else "an overestimate")
        assert word == expected, (bias, se, word)


@pytest.mark.book
def test_built_cafes_exercise_compares_strengths_correctly():
    text = page_text("cafes")
    m = re.search(rf"the expected correlation is ({NUM}), (weaker|stronger) "
                  rf"than the population’?'?s \S+ = ({NUM})", text)
    assert m, "Exercise 1.3's comparison sentence is missing"
    expected, word, rho = number(m.group(1)), m.group(2), number(m.group(3))
    assert word == ("weaker" if abs(expected) < abs(rho) else "stronger")
