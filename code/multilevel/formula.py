"""lme4 formulas with one grouping factor, parsed by the ``formulae`` library.

The package fits one kind of model: a linear mixed model with one grouping
factor whose random part is an intercept and/or numeric slopes, all
correlated (lme4's single bar ``|``), for example the cafe model::

    wait ~ 1 + afternoon + (1 + afternoon | cafe)

:func:`parse_formula` checks a formula against that subset and returns a
:class:`MixedFormula` with lme4's term names. Because the lme4 bridge hands the
formula text to R, the text is also restricted to a safe alphabet: variable
names, ``1``, ``0``, ``+``, ``|``, ``~`` and parentheses. Nothing that R (or
Python) could evaluate as a call gets through.

:func:`check_data` checks a data frame against a formula: columns present,
no missing values, numeric outcome and predictors, at least two groups.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulae import model_description
from formulae.terms.call import Call
from formulae.terms.terms import GroupSpecificTerm, Intercept, Term
from formulae.terms.variable import Variable

from multilevel.errors import InputError

INTERCEPT = "(Intercept)"

#: Words R reserves; a column cannot be referred to by them in a formula.
R_RESERVED = frozenset(
    "if else repeat while function for next break in TRUE FALSE NULL Inf NaN "
    "NA NA_integer_ NA_real_ NA_character_ NA_complex_".split()
)

_TOKEN = re.compile(r"\s*(?:([A-Za-z][A-Za-z0-9_]*)|([01])(?![0-9A-Za-z_.])|([~+|()]))")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

_SUPPORTED = (
    "Supported: 'response ~ fixed terms + (random terms | group)' with one "
    "grouping factor, e.g. 'wait ~ 1 + afternoon + (1 + afternoon | cafe)'."
)


@dataclass(frozen=True)
class MixedFormula:
    """A parsed formula of the supported kind.

    ``fixed_terms`` and ``random_terms`` use lme4's column names, in lme4's
    order: ``(Intercept)`` first, then the variables as written.
    """

    text: str
    response: str
    fixed_terms: tuple[str, ...]
    random_terms: tuple[str, ...]
    group: str

    @property
    def fixed_variables(self) -> tuple[str, ...]:
        """The data columns behind the fixed terms (no intercept)."""
        return tuple(t for t in self.fixed_terms if t != INTERCEPT)

    @property
    def random_variables(self) -> tuple[str, ...]:
        """The data columns behind the random terms (no intercept)."""
        return tuple(t for t in self.random_terms if t != INTERCEPT)

    @property
    def variables(self) -> tuple[str, ...]:
        """Every column the formula needs, response first, group last."""
        seen: list[str] = [self.response]
        for name in self.fixed_variables + self.random_variables:
            if name not in seen:
                seen.append(name)
        if self.group not in seen:
            seen.append(self.group)
        return tuple(seen)

    def __str__(self) -> str:
        return self.text


def _refuse(formula: str, problem: str, fix: str = _SUPPORTED) -> InputError:
    return InputError(f"Formula {formula!r}: {problem} {fix}")


def _tokens(formula: str) -> list[str]:
    """Split the text into allowed tokens, or say which character is not."""
    tokens, pos = [], 0
    stripped = formula.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if match is None:
            rest = stripped[pos:].lstrip()
            raise _refuse(
                formula,
                f"{rest[:12]!r} (at character {len(stripped) - len(rest) + 1}) is "
                "outside the allowed alphabet: variable names (letters, digits, "
                "underscores, starting with a letter), 1, 0, '+', '|', '~' and "
                "parentheses. Functions, transformations, interactions ('*', "
                "':'), '-', '.', numbers other than 0/1 and quotes are refused "
                "(the formula is passed to R and must not run code).",
                "Compute transformed columns in the data frame instead, e.g. "
                "data['log_x'] = np.log(data['x']).",
            )
        tokens.append(match.group(match.lastindex))
        pos = match.end()
    return tokens


def _component_names(term, formula: str, where: str) -> list[str]:
    """Variable names of a formulae Term, refusing calls and interactions."""
    if isinstance(term, Intercept):
        return [INTERCEPT]
    if not isinstance(term, Term):
        raise _refuse(formula, f"the {where} contains {term!r}, which is not a term.")
    for component in term.components:
        if isinstance(component, Call):
            raise _refuse(
                formula,
                f"the {where} calls a function ({component.name}); calls are "
                "refused because the formula is handed to R.",
                "Compute the transformed column in the data frame instead.",
            )
        if not isinstance(component, Variable):
            raise _refuse(formula, f"the {where} contains {component!r}.")
    names = [c.name for c in term.components]
    if len(names) > 1:
        raise _refuse(
            formula,
            f"the {where} has an interaction ({':'.join(names)}); only single "
            "numeric variables are supported.",
            "Multiply the columns in the data frame and use the product.",
        )
    return names


def parse_formula(formula: str | MixedFormula, data=None) -> MixedFormula:
    """Parse and check an lme4 formula with one grouping factor.

    Parameters
    ----------
    formula : text such as ``"wait ~ 1 + afternoon + (1 + afternoon | cafe)"``
        (a :class:`MixedFormula` is returned as is, after the column check).
    data : optional DataFrame; if given, every variable must be a column
        (a misspelt name gets the closest column suggested).

    Raises
    ------
    InputError for anything outside the supported subset: not a formula, no
    random part, ``||``, more than one bar or grouping factor, nested
    (``g/h``) or interacted (``g:h``) groupings, interactions, function calls,
    characters outside the safe alphabet, unknown columns.
    """
    if isinstance(formula, MixedFormula):
        parsed = formula
    else:
        parsed = _parse_text(formula)
    if data is not None:
        _check_columns(data, parsed)
    return parsed


def _parse_text(formula: object) -> MixedFormula:
    if not isinstance(formula, str):
        raise InputError(
            f"A formula must be a string, got {type(formula).__name__} "
            f"({formula!r}). {_SUPPORTED}"
        )
    text = " ".join(formula.split())
    if "~" not in text:
        raise _refuse(text, "is not a formula: it has no '~'.")
    if "||" in text:
        raise _refuse(
            text,
            "uses '||' (uncorrelated random effects); the package fits the "
            "correlated model only.",
            "Write a single bar, e.g. '(1 + afternoon | cafe)'.",
        )
    if text.count("~") > 1:
        raise _refuse(text, "has more than one '~'.")
    lhs, rhs = (side.strip() for side in text.split("~"))
    if not lhs:
        raise _refuse(text, "has no response on the left of '~'.")
    if "|" not in rhs:
        raise _refuse(
            text,
            "is not a mixed model: it has no random part '( ... | group)'.",
            "Add one, e.g. '+ (1 | cafe)'; for a model without random effects "
            "use ordinary least squares instead.",
        )
    try:
        model = model_description(text)
    except Exception as err:  # formulae raises several types; report them all
        raise _refuse(
            text,
            f"could not be parsed ({type(err).__name__}: {err}).",
            "Check the parentheses and write the intercept first inside the "
            "bar, e.g. '(1 + afternoon | cafe)'. " + _SUPPORTED,
        ) from err

    # Structure first, so the messages name the modelling problem.
    factors = []
    for gterm in model.group_terms:
        if not isinstance(gterm, GroupSpecificTerm):  # pragma: no cover
            raise _refuse(text, f"has an unexpected random term {gterm!r}.")
        factor = gterm.factor
        names = (
            [c.name for c in factor.components] if isinstance(factor, Term) else []
        )
        if len(names) != 1 or any(
            isinstance(c, Call) for c in getattr(factor, "components", [])
        ):
            raise _refuse(
                text,
                "has a nested ('g/h') or interacted ('g:h') grouping factor or "
                "a grouping that is not a column name; one grouping factor is "
                "supported.",
                "Make one grouping column in the data frame (e.g. "
                "data['g_h'] = data['g'].astype(str) + '_' + data['h'].astype(str))"
                " and group by it.",
            )
        if names[0] not in factors:
            factors.append(names[0])
    if not factors:  # a '|' the parser did not read as a random term
        raise _refuse(
            text,
            "has a '|' but no random part '( ... | group)' that could be read.",
            "Write the random part in parentheses, e.g. '(1 + afternoon | cafe)'.",
        )
    if len(factors) > 1:
        raise _refuse(
            text,
            f"has {len(factors)} grouping factors ({', '.join(factors)}); crossed "
            "or multiple groupings are not supported, only one.",
        )
    group = factors[0]

    random_terms: list[str] = []
    for gterm in model.group_terms:
        for name in _component_names(gterm.expr, text, "random part"):
            if name not in random_terms:
                random_terms.append(name)
    fixed_terms: list[str] = []
    for term in model.common_terms:
        for name in _component_names(term, text, "fixed part"):
            if name not in fixed_terms:
                fixed_terms.append(name)
    response_term = model.response.term if model.response is not None else None
    response_names = _component_names(response_term, text, "response")

    # Then the alphabet, which also rules out anything formulae accepted that
    # R could evaluate.
    tokens = _tokens(text)
    if tokens.count("|") != 1:
        raise _refuse(
            text,
            f"has {tokens.count('|')} bars; lme4 treats separate bars as "
            "uncorrelated random effects, which is not supported.",
            f"Put all random terms in one bar: '({' + '.join(random_terms)} | "
            f"{group})'.".replace(INTERCEPT, "1"),
        )
    for name in response_names + fixed_terms + random_terms + [group]:
        if name in R_RESERVED:
            raise _refuse(
                text,
                f"uses {name!r}, a reserved word in R, as a variable.",
                "Rename that column.",
            )
    response = response_names[0]
    if response == INTERCEPT:  # pragma: no cover - the scanner refuses it
        raise _refuse(text, "has no response variable.")
    used = [t for t in fixed_terms + random_terms if t != INTERCEPT] + [group]
    if response in used:
        raise _refuse(
            text,
            f"uses the response {response!r} on the right-hand side too.",
        )
    if group in fixed_terms or group in random_terms:
        raise _refuse(
            text,
            f"uses the grouping factor {group!r} as a predictor too.",
        )
    if not random_terms:  # pragma: no cover - formulae refuses '(0 | g)'
        raise _refuse(text, "has an empty random part.")
    # lme4 puts the intercept first whatever the order of writing.
    fixed_terms.sort(key=lambda t: t != INTERCEPT)
    random_terms.sort(key=lambda t: t != INTERCEPT)
    return MixedFormula(
        text=text,
        response=response,
        fixed_terms=tuple(fixed_terms),
        random_terms=tuple(random_terms),
        group=group,
    )


def _closest(name: str, columns: list[str]) -> str:
    matches = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
    if not matches:
        lowered = {c.lower(): c for c in columns}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    if matches:
        return f" Did you mean {matches[0]!r}?"
    return f" The data has columns {columns}."


def _check_columns(data, parsed: MixedFormula) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"data must be a pandas DataFrame, got {type(data).__name__}; pass "
            "e.g. pd.DataFrame({'wait': ..., 'afternoon': ..., 'cafe': ...})."
        )
    columns = [str(c) for c in data.columns]
    for name in parsed.variables:
        if name not in columns:
            raise InputError(
                f"Formula {parsed.text!r} uses column {name!r}, which is not in "
                f"the data.{_closest(name, columns)} Fix the formula or rename "
                "the column."
            )


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(
        series
    )


def check_data(data, formula: str | MixedFormula) -> MixedFormula:
    """Check that ``data`` can be fitted with ``formula``; return the parse.

    Refuses, with what is wrong and how to fix it: a missing or misspelt
    column (closest name suggested), missing values (which column, how many
    rows), infinite values, a non-numeric (or boolean) outcome or predictor,
    fewer than two groups, fewer rows than fixed effects.
    """
    parsed = parse_formula(formula, data)
    n = len(data)
    for name in parsed.variables:
        column = data[name]
        if isinstance(column, pd.DataFrame):
            raise InputError(
                f"The data has {column.shape[1]} columns named {name!r}; give "
                "each column a unique name."
            )
        missing = int(column.isna().sum())
        if missing:
            raise InputError(
                f"Column {name!r} has {missing} missing value(s) (NaN/None) out "
                f"of {n} rows. Nothing is dropped silently: drop or impute those "
                f"rows first, e.g. data = data.dropna(subset=[{name!r}])."
            )
    for name, role in [(parsed.response, "outcome")] + [
        (v, "predictor")
        for v in dict.fromkeys(parsed.fixed_variables + parsed.random_variables)
    ]:
        column = data[name]
        if not _is_numeric(column):
            raise InputError(
                f"The {role} {name!r} has dtype {column.dtype}, not a number. "
                "Convert it to numbers first (e.g. data[{0!r}] = "
                "data[{0!r}].astype(int) for 0/1 indicators); categorical "
                "predictors are not supported.".format(name)
            )
        values = column.to_numpy(dtype=float)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise InputError(
                f"The {role} {name!r} has {bad} infinite value(s); remove or fix "
                "those rows first."
            )
    n_groups = data[parsed.group].nunique()
    if n_groups < 2:
        raise InputError(
            f"The grouping factor {parsed.group!r} has {n_groups} level(s); a "
            "mixed model needs at least two groups (and more than a handful to "
            "estimate the variance between them). Check that the right column "
            "is used as the group."
        )
    p = len(parsed.fixed_terms)
    if n < p:
        raise InputError(
            f"The data has {n} rows but the formula has {p} fixed effects; "
            "at least as many rows as fixed effects are needed. Add data or "
            "drop terms."
        )
    return parsed
