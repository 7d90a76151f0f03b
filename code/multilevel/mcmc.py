"""Convergence diagnostics and intervals of many posterior quantities at once.

The rank-normalised split r-hat, the bulk and tail effective sample sizes
(Vehtari, Gelman, Simpson, Carpenter and Buerkner 2021, "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of
MCMC", *Bayesian Analysis* 16, 667-718) and the highest-density interval,
computed as ArviZ computes them (``az.rhat``, ``az.ess(method="bulk")``,
``az.ess(method="tail")``, ``az.hdi``), to rounding.

ArviZ evaluates them one quantity at a time in a Python loop, about 1 ms a
quantity and a diagnostic; a fit of 10,000 cafes stores 20,000 cafe
coefficients, and its diagnostics then took longer than its sampling. Here
every function takes an array of shape (chain, draw, quantity) and works on
all quantities at once: the sorting, ranking and Fourier transforms run
along an axis, and the only Python loops (Geyer's truncation of the
autocorrelations) run over lags, not quantities. :func:`diagnose` gives all
three diagnostics and shares the ranks they have in common.
"""

from __future__ import annotations

import numpy as np
from scipy import fft, special

from multilevel.errors import InputError

__all__ = ["MIN_DRAWS", "diagnose", "ess_bulk", "ess_tail", "hdi", "rhat"]

#: Draws per chain below which r-hat and ESS are not defined (as in ArviZ).
MIN_DRAWS = 4
#: Quantities computed together: enough to leave no Python loop over
#: quantities, few enough that the temporaries stay in the CPU's caches.
BLOCK = 256


def _as_draws(draws: object, min_chains: int) -> np.ndarray:
    """The draws as a float array (quantity, chain, draw), checked."""
    ary = np.asarray(draws, dtype=float)
    if ary.ndim == 2:
        ary = ary[:, :, None]
    if ary.ndim != 3:
        raise InputError(
            "draws must have shape (chain, draw) or (chain, draw, quantity), "
            f"got shape {ary.shape}; stack the quantities on the last axis."
        )
    chains, n_draws, _ = ary.shape
    if chains < min_chains or n_draws < MIN_DRAWS:
        raise InputError(
            f"draws of shape {ary.shape} have {chains} chain(s) of {n_draws} "
            f"draws; these diagnostics need at least {min_chains} chain(s) of "
            f"{MIN_DRAWS} draws. Sample more chains or draws."
        )
    # every computation below runs along the last axes, contiguous in memory
    return np.ascontiguousarray(np.moveaxis(ary, 2, 0))


def _split(ary: np.ndarray) -> np.ndarray:
    """Each chain's first and last halves as separate chains."""
    half = ary.shape[2] // 2
    return np.concatenate([ary[:, :, :half], ary[:, :, -half:]], axis=1)


def _ranks(flat: np.ndarray) -> np.ndarray:
    """Ranks 1..n along the last axis, ties given their average rank.

    Ties are rare in continuous draws, but the two draws either side of an
    even count's median are equally far from it, so the folded draws have
    them in almost every row: they are found in the sorted rows and only
    the tied positions are averaged.
    """
    k, n = flat.shape
    order = np.argsort(flat, axis=1)
    ordered = np.take_along_axis(flat, order, axis=1)
    rank = np.empty_like(flat)
    positions = np.broadcast_to(np.arange(1.0, n + 1.0), flat.shape)
    np.put_along_axis(rank, order, positions, axis=1)
    tie = ordered[:, 1:] == ordered[:, :-1]  # position p equals p + 1
    if not tie.any():
        return rank
    # each tied position, row by row in sorted order, and the run it is in
    tied = np.zeros(flat.shape, dtype=bool)
    tied[:, 1:] |= tie
    tied[:, :-1] |= tie
    rows, cols = np.nonzero(tied)
    joined = np.zeros(rows.size, dtype=bool)  # the same run as the one before
    joined[1:] = (rows[1:] == rows[:-1]) & tie[rows[:-1], np.minimum(cols[:-1], n - 2)]
    joined[1:] &= cols[1:] == cols[:-1] + 1
    run = np.cumsum(~joined) - 1
    starts = np.flatnonzero(~joined)
    first = cols[starts]
    last = np.append(cols[starts[1:] - 1], cols[-1])
    rank[rows, order[rows, cols]] = (first[run] + last[run]) / 2.0 + 1.0
    return rank


def _z_scale(ary: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of each quantity over all its draws."""
    rank = _ranks(ary.reshape(ary.shape[0], -1))
    size = rank.shape[1]
    return special.ndtri((rank - 3 / 8) / (size - 3 / 4 + 1)).reshape(ary.shape)


def _rhat_plain(ary: np.ndarray) -> np.ndarray:
    """Gelman and Rubin's r-hat of each quantity, chains as given."""
    n = ary.shape[2]
    between = n * np.var(ary.mean(axis=2), axis=1, ddof=1)
    within = np.var(ary, axis=2, ddof=1).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _rhat(split: np.ndarray, bulk_z: np.ndarray) -> np.ndarray:
    """The larger of the bulk's and the tail's r-hat, from the split draws
    and the normal scores of their ranks."""
    k = split.shape[0]
    median = np.median(split.reshape(k, -1), axis=1)
    folded = np.abs(split - median[:, None, None])
    return np.maximum(_rhat_plain(bulk_z), _rhat_plain(_z_scale(folded)))


def _autocov(ary: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag, along the draw axis."""
    n = ary.shape[2]
    m = fft.next_fast_len(2 * n)
    centred = ary - ary.mean(axis=2, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=2)
    spectrum *= np.conjugate(spectrum)
    return np.fft.irfft(spectrum, n=m, axis=2)[:, :, :n] / n


def _ess(ary: np.ndarray) -> np.ndarray:
    """Effective sample size of each quantity, chains as given, with Geyer's
    initial positive and initial monotone sequences."""
    k, chains, n = ary.shape
    acov = _autocov(ary)
    mean_var = acov[:, :, 0].mean(axis=1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus = var_plus + np.var(ary.mean(axis=2), axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # rho[:, t] = 1 - (W - mean autocovariance at lag t) / var_plus
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]
    # the loops below walk over lags, so keep lags on the first axis
    rho = np.ascontiguousarray(rho.T)
    kept = np.zeros((n, k))
    kept[0] = 1.0
    kept[1] = rho[1]
    even = np.ones(k)
    odd = rho[1].copy()
    last = np.ones(k, dtype=int)  # the lag at which each sequence stopped
    running = np.ones(k, dtype=bool)
    for t in range(1, n - 3, 2):
        running &= (even + odd) > 0.0
        if not running.any():
            break
        pair_even, pair_odd = rho[t + 1], rho[t + 2]
        even = np.where(running, pair_even, even)
        odd = np.where(running, pair_odd, odd)
        keep = running & (pair_even + pair_odd >= 0)
        kept[t + 1] = np.where(keep, pair_even, kept[t + 1])
        kept[t + 2] = np.where(keep, pair_odd, kept[t + 2])
        last[running] = t + 2
    max_t = last - 2
    cols = np.arange(k)
    positive = even > 0
    kept[max_t[positive] + 1, cols[positive]] = even[positive]
    for t in range(1, int(max_t.max(initial=0)) - 1, 2):
        earlier = kept[t - 1] + kept[t]
        lower = (t <= max_t - 2) & (kept[t + 1] + kept[t + 2] > earlier)
        kept[t + 1] = np.where(lower, earlier / 2.0, kept[t + 1])
        kept[t + 2] = np.where(lower, earlier / 2.0, kept[t + 2])

    total = chains * n
    sums = np.concatenate([np.zeros((1, k)), np.cumsum(kept, axis=0)], axis=0)
    tau = -1.0 + 2.0 * sums[max_t + 1, cols] + kept[max_t + 1, cols]
    tau = np.maximum(tau, 1.0 / np.log10(total))
    ess = total / tau
    ess[np.isnan(kept).any(axis=0)] = np.nan
    flat = ary.reshape(k, -1)
    constant = (flat.max(axis=1) - flat.min(axis=1)) < np.finfo(float).resolution
    ess[constant] = total
    return ess


def _ess_tail(ary: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    """The smaller ESS of the indicators of lying at or below each quantile."""
    k = ary.shape[0]
    out = None
    for prob in probs:
        cut = np.quantile(ary.reshape(k, -1), prob, axis=1)
        ess = _ess(_split((ary <= cut[:, None, None]).astype(float)))
        out = ess if out is None else np.minimum(out, ess)
    return out


def _by_block(ary: np.ndarray, fn) -> dict[str, np.ndarray]:
    """``fn`` of each block of quantities, joined; NaN for every quantity
    with a NaN draw, as ArviZ gives."""
    parts = [fn(ary[i:i + BLOCK]) for i in range(0, ary.shape[0], BLOCK)]
    missing = np.isnan(ary).any(axis=(1, 2))
    out = {}
    for name in parts[0]:
        out[name] = np.concatenate([part[name] for part in parts])
        out[name][missing] = np.nan
    return out


def _all_three(ary: np.ndarray) -> dict[str, np.ndarray]:
    split = _split(ary)
    bulk_z = _z_scale(split)
    return {
        "rhat": _rhat(split, bulk_z),
        "ess_bulk": _ess(bulk_z),
        "ess_tail": _ess_tail(ary, (0.05, 0.95)),
    }


def rhat(draws: object) -> np.ndarray:
    """Rank-normalised split r-hat of each quantity: the larger of the bulk's
    (ranks of the draws) and the tail's (ranks of the distance from the
    median). ``draws`` is (chain, draw[, quantity]), at least 2 chains. A
    quantity with a NaN, or constant over all draws, gets NaN."""
    def one_block(a: np.ndarray) -> dict[str, np.ndarray]:
        split = _split(a)
        return {"v": _rhat(split, _z_scale(split))}

    return _by_block(_as_draws(draws, min_chains=2), one_block)["v"]


def ess_bulk(draws: object) -> np.ndarray:
    """Bulk effective sample size of each quantity: the ESS of the normal
    scores of its ranks, chains split in halves. ``draws`` is
    (chain, draw[, quantity]). A quantity with a NaN gets NaN."""
    ary = _as_draws(draws, min_chains=1)
    return _by_block(ary, lambda a: {"v": _ess(_z_scale(_split(a)))})["v"]


def ess_tail(draws: object, probs: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size of each quantity: the smaller ESS of the
    indicators of lying at or below its 5 % and its 95 % quantiles, chains
    split in halves. A quantity with a NaN gets NaN."""
    ary = _as_draws(draws, min_chains=1)
    return _by_block(ary, lambda a: {"v": _ess_tail(a, probs)})["v"]


def diagnose(draws: object) -> dict[str, np.ndarray]:
    """``rhat``, ``ess_bulk`` and ``ess_tail`` of each quantity of
    ``draws`` (chain, draw[, quantity]), at least 2 chains, as the three
    functions give them; the bulk's ranks are computed once for both."""
    return _by_block(_as_draws(draws, min_chains=2), _all_three)


def hdi(draws: object, prob: float) -> np.ndarray:
    """The narrowest interval holding ``prob`` of each quantity's draws
    (pooled over chains), shape (quantity, 2): lower and upper."""
    ary = np.asarray(draws, dtype=float)
    if ary.ndim == 2:
        ary = ary[:, :, None]
    if ary.ndim != 3 or not 0 < prob < 1:
        raise InputError(
            "hdi needs draws of shape (chain, draw[, quantity]) and 0 < prob "
            f"< 1; got shape {ary.shape} and prob {prob!r}."
        )
    k = ary.shape[2]
    ordered = np.sort(np.moveaxis(ary, 2, 0).reshape(k, -1), axis=1)
    size = ordered.shape[1]
    inside = int(np.floor(prob * size))
    if inside >= size:
        raise InputError(
            f"{size} draws are too few for an interval holding {prob} of "
            "them; sample more draws."
        )
    widths = ordered[:, inside:] - ordered[:, : size - inside]
    start = np.argmin(widths, axis=1)
    rows = np.arange(k)
    return np.stack([ordered[rows, start], ordered[rows, start + inside]], axis=1)
