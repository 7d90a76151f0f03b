"""The design matrices of equation set 1: ``y = X beta + Z u + epsilon``.

For a model with one grouping factor of J levels and q random terms (the cafe
model has q = 2: intercept and afternoon), X is n x p and Z is n x (q J).
Two column orders of Z are in use:

* ``"blocked"`` (the source post's): all J intercept columns, then all J
  slope columns. Column ``k * J + j`` is term k of group j, and
  ``u = (a_cafe[0..J-1], b_cafe[0..J-1])``; Cov(u) = S kron I_J.
* ``"interleaved"`` (lme4's ``getME(m, "Z")``): group by group, each group's
  q terms together. Column ``j * q + k`` is term k of group j, and
  ``u = (a_cafe[0], b_cafe[0], a_cafe[1], ...)``; Cov(u) = I_J kron S, which is
  block diagonal: the structure lme4's sparse algorithms exploit.

``perm`` converts blocked to interleaved: ``Z_interleaved = Z_blocked[:, perm]``
and ``u_interleaved = u_blocked[perm]``. Its inverse, ``inverse_perm``,
converts back: ``Z_blocked = Z_interleaved[:, inverse_perm]``.

Groups are in R's factor-level order (what lme4 uses): numbers sorted
numerically; strings sorted (Python's code-point order, which agrees with R
for labels made of digits and letters of one case; R's collation of mixed
case and punctuation depends on its locale); a pandas Categorical keeps its
category order, with unused categories dropped (as lme4 does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from multilevel import validate
from multilevel.errors import InputError
from multilevel.formula import INTERCEPT, MixedFormula, check_data

ORDERS = ("interleaved", "blocked")


@dataclass(frozen=True)
class DesignMatrices:
    """y, X and Z of a one-grouping-factor linear mixed model.

    ``X`` is a dense array (as lme4's ``getME(m, "X")``); ``Z`` is dense or,
    with ``sparse=True``, a ``scipy.sparse.csc_matrix``.
    """

    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray | sp.csc_matrix
    fixed_names: list[str]
    random_terms: list[str]
    z_names: list[str]
    groups: list[str]
    group_index: np.ndarray
    order: str
    perm: np.ndarray
    formula: MixedFormula

    @property
    def n_groups(self) -> int:
        """J, the number of groups."""
        return len(self.groups)

    @property
    def q(self) -> int:
        """The number of random terms per group."""
        return len(self.random_terms)

    @property
    def inverse_perm(self) -> np.ndarray:
        """Converts interleaved to blocked: ``Z_blocked = Z_inter[:, inv]``."""
        return np.argsort(self.perm)


def blocked_to_interleaved(n_terms: int, n_groups: int) -> np.ndarray:
    """``perm`` with ``Z_blocked[:, perm] == Z_interleaved``.

    Interleaved column ``j * q + k`` (group j, term k) is blocked column
    ``k * J + j``.
    """
    j, k = np.divmod(np.arange(n_terms * n_groups), n_terms)
    return k * n_groups + j


def u_covariance(S: np.ndarray, n_groups: int, order: str = "interleaved"):
    """Cov(u) for J groups: I_J kron S (interleaved) or S kron I_J (blocked)."""
    _check_order(order)
    S = np.asarray(S, dtype=float)
    eye = np.eye(n_groups)
    return np.kron(eye, S) if order == "interleaved" else np.kron(S, eye)


def _check_order(order: object) -> None:
    if order not in ORDERS:
        raise InputError(
            f"order must be 'interleaved' (lme4's: per group, intercept then "
            f"slope) or 'blocked' (all intercepts, then all slopes), got "
            f"{order!r}."
        )


def _label(value) -> str:
    """A group label as R prints the factor level."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.15g}"
    return str(value)


def group_levels(column: pd.Series) -> tuple[list, np.ndarray]:
    """Levels in R's factor order and each row's level index."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        used = set(column.cat.codes[column.cat.codes >= 0])
        levels = [c for i, c in enumerate(column.cat.categories) if i in used]
    else:
        values = column.to_numpy()
        kinds = {type(v) for v in values}
        numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(
            column
        )
        if not numeric and not all(issubclass(t, str) for t in kinds):
            raise InputError(
                f"The grouping column {column.name!r} mixes types "
                f"({sorted(t.__name__ for t in kinds)}); convert it to one type, "
                f"e.g. data[{column.name!r}] = data[{column.name!r}].astype(str)."
            )
        levels = sorted(set(values.tolist()))
    lookup = {level: i for i, level in enumerate(levels)}
    index = np.fromiter(
        (lookup[v] for v in column.tolist()), dtype=np.int64, count=len(column)
    )
    labels = [_label(level) for level in levels]
    if len(set(labels)) != len(labels):
        raise InputError(
            f"The grouping column {column.name!r} has distinct values that print "
            f"the same ({labels}); convert it to unique strings first."
        )
    return labels, index


def design_matrices(
    data: pd.DataFrame,
    formula: str | MixedFormula,
    sparse: bool = False,
    order: str = "interleaved",
) -> DesignMatrices:
    """Build y, X and Z for ``formula`` on ``data``.

    Parameters
    ----------
    data : DataFrame with the response, the numeric predictors and the group.
    formula : lme4 formula with one grouping factor (see
        :func:`multilevel.formula.parse_formula`).
    sparse : return Z as ``scipy.sparse.csc_matrix`` (X stays dense).
    order : ``"interleaved"`` (lme4's, the default) or ``"blocked"``.

    The data are checked first (:func:`multilevel.formula.check_data`), so a
    missing column, NaN, a non-numeric predictor or a single group is an
    :class:`~multilevel.errors.InputError`.
    """
    _check_order(order)
    validate.flag("sparse", sparse)
    parsed = check_data(data, formula)
    n = len(data)
    y = data[parsed.response].to_numpy(dtype=float)

    def columns(terms) -> np.ndarray:
        out = np.empty((n, len(terms)))
        for k, term in enumerate(terms):
            out[:, k] = 1.0 if term == INTERCEPT else data[term].to_numpy(float)
        return out

    X = columns(parsed.fixed_terms)
    T = columns(parsed.random_terms)  # n x q values of the random terms
    groups, index = group_levels(data[parsed.group])
    J, q = len(groups), len(parsed.random_terms)

    perm = blocked_to_interleaved(q, J)
    rows = np.repeat(np.arange(n), q)
    terms = np.tile(np.arange(q), n)
    if order == "interleaved":
        cols = np.repeat(index, q) * q + terms
        z_names = [f"{t}|{g}" for g in groups for t in parsed.random_terms]
    else:
        cols = terms * J + np.repeat(index, q)
        z_names = [f"{t}|{g}" for t in parsed.random_terms for g in groups]
    Z = sp.csc_matrix((T.ravel(), (rows, cols)), shape=(n, q * J))
    Z.eliminate_zeros()  # slopes of 0 (mornings) are structural zeros
    if not sparse:
        Z = Z.toarray()
    return DesignMatrices(
        y=y,
        X=X,
        Z=Z,
        fixed_names=list(parsed.fixed_terms),
        random_terms=list(parsed.random_terms),
        z_names=z_names,
        groups=groups,
        group_index=index,
        order=order,
        perm=perm,
        formula=parsed,
    )
