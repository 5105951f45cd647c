"""Per-user evidence against shilling and click farms, as pure numpy functions (no state, no I/O).

Item selection (after DegreeSAD, Li et al. 2016, and the filler-popularity features of
Mobasher et al. 2007): a genuine user picks items roughly in proportion to their popularity;
filler items of the standard attack models are drawn uniformly from the catalogue. Per item,
ell_i = -log(N * p_i) is the log-likelihood ratio "uniform vs popularity" of choosing item i. For a
profile, `selection_null` gives the mean of ell expected under popularity sampling without
replacement (successive-sampling inclusion probabilities, so heavy users who have exhausted
the popular items are not penalised) and its spread, and `selection_evidence` turns the user's
mean into lam (the share of the profile that looks uniformly chosen, 0 = popularity-like,
1 = uniform) and T (the significance of the shift in null standard errors).

Neighbour similarity (DegSim, Chirita et al. 2005, in item-set space): mean Jaccard similarity to
the k most similar users; random filler makes a profile unlike every genuine one.

Consensus agreement (after MeanVar, Mobasher et al. 2007): the correlation between a user's
ratings and the leave-one-out item means, Fisher-transformed. Random filler is unrelated to the
consensus (low side); average filler set to the (rounded) item mean agrees with it far more than
any real taste does (high side). Two-sided, robust z against the population.

None of it reads timestamps or rating granularity. It must never import faust, kafka or mlflow.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SelectionNull", "item_llr", "selection_null", "selection_evidence", "degsim", "consensus_corr"]

PSEUDO = 0.5  # pseudo-count added to every item (so unseen / single-rater items are finite)


def item_llr(counts: np.ndarray) -> np.ndarray:
    """Per item: log-likelihood ratio (uniform vs popularity) of a user choosing it, counts excluding that user."""
    n = len(counts)
    loo = np.maximum(counts - 1.0, 0.0)
    total = counts.sum() + PSEUDO * n
    return -np.log(n * (loo + PSEUDO) / total)


class SelectionNull:
    """Population-level null of the item-selection statistic: E0(n), SD0(n) on a grid of profile sizes, E1."""

    def __init__(self, grid: np.ndarray, e0: np.ndarray, sd0: np.ndarray, e1: float):
        self.grid, self.e0, self.sd0, self.e1 = grid, e0, sd0, e1

    def at(self, n: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(E0, SD0 of the profile mean) for profile sizes n, interpolated in log n."""
        x = np.log(np.maximum(np.asarray(n, float), 1.0))
        return np.interp(x, np.log(self.grid), self.e0), np.interp(x, np.log(self.grid), self.sd0)

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"grid": self.grid.tolist(), "e0": self.e0.tolist(), "sd0": self.sd0.tolist(), "e1": self.e1}

    @classmethod
    def from_dict(cls, d: dict) -> SelectionNull:
        """Inverse of `to_dict`."""
        return cls(
            np.asarray(d["grid"], float), np.asarray(d["e0"], float), np.asarray(d["sd0"], float), float(d["e1"])
        )


def _inclusion(p: np.ndarray, size: float) -> np.ndarray:
    """Inclusion probabilities of successive sampling ∝ p of `size` items (Poisson approximation)."""
    if size >= len(p):  # every item is drawn (and the search below would never end)
        return np.ones_like(p)
    lo, hi = 0.0, 1.0
    while (1.0 - np.exp(-hi * p)).sum() < size:
        hi *= 4.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if (1.0 - np.exp(-mid * p)).sum() < size:
            lo = mid
        else:
            hi = mid
    return 1.0 - np.exp(-0.5 * (lo + hi) * p)


def selection_null(counts: np.ndarray, max_size: float, points: int = 24) -> SelectionNull:
    """The null of the profile-mean item LLR under popularity sampling without replacement, for sizes 1..max_size."""
    counts = np.asarray(counts, float)
    n_items = len(counts)
    ell = item_llr(counts)
    p = (counts + PSEUDO) / (counts.sum() + PSEUDO * n_items)
    mu = float((p * ell).sum())
    sd = float(np.sqrt((p * (ell - mu) ** 2).sum()))
    # A profile holds at most every item: a fresh stream may have seen only one or two.
    top = max(1.0, min(float(max_size), n_items - 1.0))
    grid = np.unique(np.round(np.geomspace(1.0, top, points)))
    e0, sd0 = np.empty(len(grid)), np.empty(len(grid))
    p_max = float(p.max())
    for k, g in enumerate(grid):
        if g * p_max < 0.02:  # no item is close to exhausted: sampling with replacement is exact enough
            e0[k], sd0[k] = mu, sd / np.sqrt(g)
            continue
        pi = _inclusion(p, g)
        m = float((pi * ell).sum() / g)
        e0[k] = m
        sd0[k] = float(np.sqrt((pi * (1.0 - pi) * (ell - m) ** 2).sum()) / g)
    return SelectionNull(grid, e0, np.maximum(sd0, 1e-9), float(ell.mean()))


def selection_evidence(mean_llr: np.ndarray, n: np.ndarray, null: SelectionNull) -> tuple[np.ndarray, np.ndarray]:
    """(lam, T) per user: share of the profile that looks uniformly chosen, and its significance in null SEs."""
    e0, sd0 = null.at(n)
    lam = (mean_llr - e0) / np.maximum(null.e1 - e0, 1e-9)
    return lam, (mean_llr - e0) / sd0


def degsim(overlaps: np.ndarray, size: float, sizes: np.ndarray, k: int) -> float:
    """Mean Jaccard similarity of one user (profile `size`) to its k most similar users (self excluded by caller)."""
    if len(overlaps) == 0:
        return 0.0
    jac = overlaps / np.maximum(size + sizes - overlaps, 1.0)
    if len(jac) > k:
        jac = _top(jac, k)
    return float(jac.sum() / k)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The k largest values, in ascending order.

    A partition of a sample bounds the k-th largest from below; only the values at or above the
    bound can be among the k largest, and they are few: partitioning them instead of every value
    is several times faster on long profiles (DegSim runs per rescored user).
    """
    sample = 8 * k
    if len(values) > 4 * sample:
        bound = np.partition(values[:sample], sample - k)[sample - k]
        values = values[values >= bound]
    return np.sort(np.partition(values, len(values) - k)[-k:])


def consensus_corr(
    values: np.ndarray, item_sum: np.ndarray, item_n: np.ndarray, g_mean: float, prior: float = 3.0
) -> float:
    """Fisher-z of the correlation between a user's ratings and the leave-one-out item means (NaN if undefined).

    Genuine tastes agree with the consensus only partly; random filler not at all (low side), and
    average filler set to the (rounded) item mean almost perfectly (high side: MeanVar's tell).
    """
    if len(values) < 3:
        return float("nan")
    loo = (item_sum - values + prior * g_mean) / (item_n - 1.0 + prior)
    x = values - values.mean()
    y = loo - loo.mean()
    sxx, syy = float(x @ x), float(y @ y)
    if sxx <= 1e-12 or syy <= 1e-12:
        return float("nan")
    r = float(x @ y) / math.sqrt(sxx * syy)
    return math.atanh(min(max(r, -0.999), 0.999))
