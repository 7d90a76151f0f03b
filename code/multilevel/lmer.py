"""lme4's ``lmer`` through rpy2, returned as a :class:`~multilevel.fit.Fit`.

The bridge is built so that nothing the caller passes is ever run as R code:

* the formula goes through :func:`multilevel.formula.parse_formula`, every
  name in it must be a column of ``data``, and the R formula is rebuilt in R
  from those names as symbols (``as.name``), not parsed from text;
* the data go to R as a data frame of vectors (only the columns the model
  uses), never pasted into code;
* the R code that runs is the fixed text of this module.

What the tables hold (lme4's own quantities, unchanged):

* ``fixed``: ``fixef(m)``, ``sqrt(diag(vcov(m)))`` and profile intervals from
  ``confint(m, method = "profile", level = level, oldNames = FALSE)``;
* ``varcorr``: the SDs, correlations and residual SD of ``VarCorr(m)`` with
  the same profile intervals;
* ``ranef``: conditional modes ``ranef(m, condVar = TRUE)`` and their
  conditional SDs from ``attr(, "postVar")``; interval ``estimate +- z * sd``.
  lme4's conditional variance treats the fixed effects as known;
* ``coef``: fixed effect plus offset per group. Its ``std_error`` is NOT
  lme4's ``postVar``: it comes from the joint conditional covariance of the
  fixed effects and the random effects (Henderson's prediction-error
  covariance ``sigma^2 C^-1`` of the mixed-model equations, at lme4's
  estimates of theta and sigma), so it includes the uncertainty of the fixed
  effect and its covariance with the offset. It does not include the
  uncertainty of theta and sigma. ``fit.diagnostics["coef_std_error"]``
  says this on every Fit.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from multilevel import engines, validate
from multilevel.design import group_levels
from multilevel.errors import R_INSTALL_COMMAND, EngineMissingError, InputError
from multilevel.fit import Fit
from multilevel.formula import check_data
from multilevel.tables import (
    COEF_STD_ERROR_NOTE,
    group_coef_table,
    joint_coef_covariance,
    varcorr_table,
    wald_group_table,
)

__all__ = [
    "COEF_STD_ERROR_NOTE",  # from multilevel.tables, for older imports
    "display_lmer",
    "fit_lmer",
    "joint_coef_covariance",  # from multilevel.tables, for older imports
    "r_available",
    "r_versions",
    "require_r",
]

ENGINE = engines.engine("lmer")

RPY2_INSTALL_COMMAND = '.venv/bin/pip install "rpy2<3.6"'

# A plain R/Python identifier: the only column names the bridge accepts.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


# --------------------------------------------------------------------------
# Is R there?


@functools.cache
def _missing_part() -> str | None:
    """Say which of rpy2, R, lme4 is missing (None when all are there)."""
    if importlib.util.find_spec("rpy2") is None:
        return (
            "the Python package rpy2 is not installed; install it with "
            f"`{RPY2_INSTALL_COMMAND}` (and R with `{R_INSTALL_COMMAND}`)"
        )
    # Starting R makes rpy2 prepend R's folders to LD_LIBRARY_PATH in
    # os.environ; a Python started later from this process (a subprocess,
    # a Jupyter kernel) would then load the system's libpython instead of
    # its own. Put the variable back as it was.
    before = os.environ.get("LD_LIBRARY_PATH")
    try:
        with _quiet_console():
            import rpy2.robjects as ro  # noqa: F401  (starts R)
    except Exception as exc:  # R missing or broken: rpy2 cannot start it
        return (
            f"R could not be started by rpy2 ({type(exc).__name__}: {exc}); "
            f"install R and lme4 with `{R_INSTALL_COMMAND}`"
        )
    finally:
        if before is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = before
    with _quiet_console():
        has_lme4 = ro.r(
            'isTRUE(suppressWarnings(requireNamespace("lme4", quietly = TRUE)))'
        )[0]
    if not has_lme4:
        return (
            "R is installed but the R package lme4 is not; install it with "
            f"`{R_INSTALL_COMMAND}`"
        )
    return None


def r_available() -> bool:
    """True when rpy2, R and lme4 are all installed (starts R once)."""
    return _missing_part() is None


def r_versions() -> dict[str, str | None]:
    """R's version string and lme4's version; None for both where R, rpy2
    or lme4 is missing."""
    if not r_available():
        return {"R": None, "lme4": None}
    import rpy2.robjects as ro

    with _quiet_console():
        r = str(ro.r("R.version.string")[0])
        lme4 = str(ro.r('as.character(packageVersion("lme4"))')[0])
    return {"R": r, "lme4": lme4}


def require_r() -> None:
    """Raise :class:`EngineMissingError` naming what is missing and the fix."""
    missing = _missing_part()
    if missing is not None:
        raise EngineMissingError(f"lme4 through rpy2 is unavailable: {missing}.")


@contextlib.contextmanager
def _quiet_console(sink: list[str] | None = None) -> Iterator[list[str]]:
    """Keep R's console output from the user's screen; collect it in ``sink``."""
    from rpy2.rinterface_lib import callbacks

    out = [] if sink is None else sink
    with (
        callbacks.obj_in_module(callbacks, "consolewrite_print", out.append),
        callbacks.obj_in_module(callbacks, "consolewrite_warnerror", out.append),
    ):
        yield out


# --------------------------------------------------------------------------
# The fixed R code. Nothing from the caller is ever pasted into it.

_R_FIT = r"""
function(data, response, fixed_int, fixed_names, rand_int, rand_names,
         group, levels, reml, level, profile) {
  data[[group]] <- factor(as.character(data[[group]]), levels = levels)
  sum_of <- function(intercept, names) {
    terms <- c(list(if (intercept) 1 else 0), lapply(names, as.name))
    Reduce(function(a, b) call("+", a, b), terms)
  }
  bar <- call("(", call("|", sum_of(rand_int, rand_names), as.name(group)))
  rhs <- call("+", sum_of(fixed_int, fixed_names), bar)
  f <- stats::as.formula(call("~", as.name(response), rhs), env = baseenv())
  notes <- character(0)
  keep <- function(kind, restart) function(cond) {
    text <- trimws(conditionMessage(cond))
    if (!startsWith(text, "Computing profile confidence intervals"))
      notes <<- c(notes, paste0(kind, ": ", text))
    invokeRestart(restart)
  }
  m <- withCallingHandlers(
    lme4::lmer(f, data = data, REML = reml),
    warning = keep("warning", "muffleWarning"),
    message = keep("message", "muffleMessage"))
  conv <- m@optinfo$conv$lme4$messages
  if (length(conv)) notes <- c(notes, paste0("lme4: ", conv))
  ci <- NULL
  ci_error <- NULL
  method <- if (profile) "profile" else "Wald"
  ci <- tryCatch(
    withCallingHandlers(
      stats::confint(m, method = method, level = level, oldNames = FALSE),
      warning = keep("confint warning", "muffleWarning"),
      message = keep("confint message", "muffleMessage")),
    error = function(e) {
      ci_error <<- conditionMessage(e)
      NULL
    })
  re <- lme4::ranef(m, condVar = TRUE)[[group]]
  vc <- lme4::VarCorr(m)[[group]]
  list(
    model = m,
    formula = paste(deparse(f, width.cutoff = 500L), collapse = " "),
    notes = notes,
    ci = ci,
    ci_names = if (is.null(ci)) character(0) else rownames(ci),
    ci_error = if (is.null(ci_error)) character(0) else ci_error,
    beta = lme4::fixef(m),
    beta_names = names(lme4::fixef(m)),
    vcov = as.matrix(stats::vcov(m)),
    stddev = attr(vc, "stddev"),
    correlation = as.matrix(attr(vc, "correlation")),
    sigma = stats::sigma(m),
    ranef = as.matrix(re),
    ranef_terms = colnames(re),
    ranef_levels = rownames(re),
    post_var = attr(re, "postVar"),
    singular = lme4::isSingular(m),
    criterion = if (reml) lme4::REMLcrit(m) else stats::deviance(m),
    X = lme4::getME(m, "X"),
    zmat = as.matrix(lme4::getME(m, "mmList")[[1]]),
    codes = as.integer(lme4::getME(m, "flist")[[1]]),
    Tmat = as.matrix(lme4::getME(m, "Tlist")[[1]]),
    nobs = stats::nobs(m))
}
"""

_R_DISPLAY = r"""
function(m, digits) {
  suppressPackageStartupMessages(requireNamespace("arm", quietly = TRUE))
  utils::capture.output(arm::display(m, digits = digits))
}
"""


@functools.cache
def _r_function(code: str) -> Any:
    import rpy2.robjects as ro

    with _quiet_console():
        return ro.r(code)


# --------------------------------------------------------------------------
# Validation


def _parse(data: pd.DataFrame, formula: str) -> Any:
    parsed = check_data(data, formula)
    names = [parsed.response, parsed.group]
    names += [t for t in parsed.fixed_terms if t != "(Intercept)"]
    names += [t for t in parsed.random_terms if t != "(Intercept)"]
    for name in names:
        if name not in data.columns:
            raise InputError(
                f"{name!r} in the formula {formula!r} is not a column of the "
                f"data (columns: {list(data.columns)}); use column names only."
            )
        if not _NAME.match(name):
            raise InputError(
                f"column {name!r} has a name lme4 cannot take as it is; rename "
                "it to letters, digits, '_' and '.' starting with a letter "
                "(e.g. data.rename(columns={...}))."
            )
    return parsed


def _levels(data: pd.DataFrame, parsed: Any) -> tuple[list[str], list[str]]:
    """Group levels in design.py's (R's factor) order, and each row's label."""
    labels, index = group_levels(data[parsed.group])
    return labels, [labels[i] for i in index]


# --------------------------------------------------------------------------
# The fit


def _to_r_frame(data: pd.DataFrame, parsed: Any, rows: list[str]) -> Any:
    import rpy2.robjects as ro

    columns: dict[str, Any] = {}
    numeric = [parsed.response]
    numeric += [t for t in parsed.fixed_terms if t != "(Intercept)"]
    numeric += [t for t in parsed.random_terms if t != "(Intercept)"]
    for name in dict.fromkeys(numeric):
        values = np.asarray(data[name], dtype=float)
        columns[name] = ro.FloatVector(values.tolist())
    columns[parsed.group] = ro.StrVector(rows)
    return ro.DataFrame(columns)


def _as_dict(rlist: Any) -> dict[str, Any]:
    """An R named list as a dict of numpy arrays / lists (rpy2 3.5 API)."""
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri
    from rpy2.robjects.conversion import localconverter

    names = [str(n) for n in rlist.names]
    items = [rlist[i] for i in range(len(names))]
    out = {}
    with localconverter(ro.default_converter + numpy2ri.converter):
        for name, item in zip(names, items, strict=True):
            if name != "model":
                out[name] = ro.conversion.rpy2py(item)
    return out


def fit_lmer(
    data: pd.DataFrame,
    formula: str,
    reml: bool = True,
    level: float = 0.95,
    *,
    profile: bool = True,
) -> Fit:
    """Fit ``formula`` to ``data`` with ``lme4::lmer`` and return a Fit.

    ``profile=False`` skips the (slow) likelihood profile: fixed-effect
    intervals are then Wald intervals, variance-component intervals NaN, and
    ``fit.interval`` is ``"Wald"``. See the module docstring for how each
    table is computed, in particular the ``coef`` standard errors.
    """
    validate.fit_arguments(data, reml=reml, level=level)
    validate.flag("profile", profile)
    parsed = _parse(data, formula)
    require_r()
    import rpy2.robjects as ro
    from rpy2.rinterface_lib.embedded import RRuntimeError

    levels, rows = _levels(data, parsed)
    fixed_names = [t for t in parsed.fixed_terms if t != "(Intercept)"]
    rand_names = [t for t in parsed.random_terms if t != "(Intercept)"]
    console: list[str] = []
    with _quiet_console(console):
        frame = _to_r_frame(data, parsed, rows)
        try:
            result = _r_function(_R_FIT)(
                frame,
                parsed.response,
                "(Intercept)" in parsed.fixed_terms,
                ro.StrVector(fixed_names),
                "(Intercept)" in parsed.random_terms,
                ro.StrVector(rand_names),
                parsed.group,
                ro.StrVector(levels),
                reml,
                float(level),
                profile,
            )
        except RRuntimeError as exc:
            said = "".join(console).strip() or str(exc)
            raise InputError(
                f"lme4 could not fit {parsed.text!r} to these data: {said} "
                "Check the design (e.g. enough observations per group for "
                "the random terms)."
            ) from None
    r = _as_dict(result)
    model = result.rx2("model")
    messages = _dedupe([str(s) for s in r["notes"]])
    noise = "".join(console).strip()
    if noise:
        messages.append(f"R console: {noise}")
    singular = bool(r["singular"][0])
    if singular and not any("singular" in s for s in messages):
        messages.append("lme4: boundary (singular) fit: see help('isSingular')")
    ci = _interval_table(r, messages)

    z = stats.norm.ppf(0.5 + level / 2)
    fixed = _fixed_table(r, ci)
    varcorr = _varcorr_table(r, ci, parsed)
    ranef = _ranef_table(r, z)
    coef = _coef_table(r, ranef, z)
    method = "REML" if reml else "ML"
    return Fit(
        engine=ENGINE.label,
        method=method,
        formula=parsed.text,
        fixed=fixed,
        varcorr=varcorr,
        ranef=ranef,
        coef=coef,
        criterion=float(r["criterion"][0]),
        interval="profile" if profile else "Wald",
        level=float(level),
        nobs=int(r["nobs"][0]),
        ngroups=len(r["ranef_levels"]),
        messages=messages,
        diagnostics={
            "singular": singular,
            "r_formula": str(r["formula"][0]),
            "coef_std_error": COEF_STD_ERROR_NOTE,
            "ranef_std_error": "lme4 condVar (fixed effects treated as known)",
        },
        raw=model,
    )


def _dedupe(notes: list[str]) -> list[str]:
    """Each distinct note once, in order, with a count when repeated.

    A note lme4 both signals and stores (``message: boundary (singular)
    fit`` and ``lme4: boundary ...``) counts as one.
    """
    first: dict[str, str] = {}
    counts: dict[str, int] = {}
    for note in notes:
        text = note.split(": ", 1)[-1]
        if text not in first:
            first[text], counts[text] = note, 1
        elif note == first[text]:
            counts[text] += 1
    return [
        first[t] + (f" (x{counts[t]})" if counts[t] > 1 else "") for t in first
    ]


def _interval_table(r: dict[str, Any], messages: list[str]) -> pd.DataFrame:
    names = [str(s) for s in r["ci_names"]]
    if len(r["ci_error"]):
        messages.append(
            f"confint failed, intervals are NaN: {str(r['ci_error'][0]).strip()}"
        )
    if not names:
        return pd.DataFrame(columns=["lower", "upper"], dtype=float)
    ci = np.asarray(r["ci"], dtype=float).reshape(len(names), 2)
    return pd.DataFrame(ci, index=names, columns=["lower", "upper"])


def _fixed_table(r: dict[str, Any], ci: pd.DataFrame) -> pd.DataFrame:
    terms = [str(s) for s in r["beta_names"]]
    beta = np.asarray(r["beta"], dtype=float)
    se = np.sqrt(np.diag(np.asarray(r["vcov"], dtype=float)))
    table = pd.DataFrame({"estimate": beta, "std_error": se}, index=terms)
    table.index.name = "term"
    ci = ci.reindex(terms)
    table["lower"] = ci["lower"].to_numpy()
    table["upper"] = ci["upper"].to_numpy()
    return table


def _varcorr_table(
    r: dict[str, Any], ci: pd.DataFrame, parsed: Any
) -> pd.DataFrame:
    terms = [str(s) for s in r["ranef_terms"]]
    sd = np.atleast_1d(np.asarray(r["stddev"], dtype=float))
    cor = np.asarray(r["correlation"], dtype=float).reshape(len(terms), len(terms))
    estimates = []
    for j in range(len(terms)):
        estimates.append(sd[j])
        for k in range(j + 1, len(terms)):
            estimates.append(cor[k, j])
    estimates.append(float(r["sigma"][0]))
    return varcorr_table(estimates, terms, parsed.group, ci)


def _ranef_table(r: dict[str, Any], z: float) -> pd.DataFrame:
    terms = [str(s) for s in r["ranef_terms"]]
    groups = [str(s) for s in r["ranef_levels"]]
    k, n_groups = len(terms), len(groups)
    modes = np.asarray(r["ranef"], dtype=float).reshape(n_groups, k)
    post = np.asarray(r["post_var"], dtype=float).reshape(k, k, n_groups, order="F")
    sd = np.sqrt(np.stack([np.diag(post[:, :, j]) for j in range(n_groups)]))
    return wald_group_table(groups, terms, modes, sd, z)


def _coef_table(r: dict[str, Any], ranef: pd.DataFrame, z: float) -> pd.DataFrame:
    fixed_terms = [str(s) for s in r["beta_names"]]
    rand_terms = [str(s) for s in r["ranef_terms"]]
    groups = [str(s) for s in r["ranef_levels"]]
    beta = np.asarray(r["beta"], dtype=float)
    X = np.asarray(r["X"], dtype=float)
    zmat = np.asarray(r["zmat"], dtype=float).reshape(X.shape[0], len(rand_terms))
    codes = np.asarray(r["codes"], dtype=int) - 1
    T = np.asarray(r["Tmat"], dtype=float).reshape(len(rand_terms), len(rand_terms))
    sigma = float(r["sigma"][0])
    covariances = joint_coef_covariance(X, zmat, codes, T, sigma)
    modes = ranef.pivot(index="group", columns="term", values="estimate")
    modes = modes.loc[groups, rand_terms].to_numpy()
    return group_coef_table(
        groups, fixed_terms, rand_terms, beta, modes, covariances, z
    )


def display_lmer(fit: Fit | Any, digits: int = 2) -> str:
    """The text of ``arm::display(m)`` for a lme4 Fit (or a raw merMod)."""
    require_r()
    model = fit.raw if isinstance(fit, Fit) else fit
    if isinstance(fit, Fit) and fit.engine != ENGINE.label:
        raise InputError(
            f"display_lmer needs a lme4 Fit, got one from {fit.engine!r}; "
            "fit with multilevel.lmer.fit_lmer first."
        )
    digits = validate.whole_number("digits", digits, 0)
    with _quiet_console():
        lines = _r_function(_R_DISPLAY)(model, digits)
    return "\n".join(str(s) for s in lines)
