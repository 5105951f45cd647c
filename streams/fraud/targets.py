"""Target detection: items that suspicious accounts push (or nuke, or buy) together.

A target is keyed "item|direction", direction +1 for a top rating or a purchase and -1 for a
bottom rating, and stored as [k, m, z, kind]. Two kinds:
- "lenient" (a campaign): >= `target_min` lenient-suspicious users took the extreme action on the
  item; they are >= `target_share` of the m users who did and of the item's lenient actors (they
  act in concert); the item has >= `consensus_min` other raters whose mean is >= `consensus_gap`
  global SDs from the extreme (the push goes against the consensus), and the z-test of the k
  extreme ratings against the others (variance shrunk toward the global one) reaches `target_z`.
  For purchases, the two-proportion z of the lenient actors' purchase share against the others'.
- "purchase" (click farms): >= `target_min` distinct buyers who are >= `purchase_share` of
  everyone who touched the item, binomial z against the population's conversion rate >= `target_z`.
  It needs no lenient set, which matters where profiles are too short for profile evidence.

Swarms (`swarmed_items`, for the trust gate, not for flags): items whose audience holds far more
newcomer accounts (fewer events than an established one) than the items of the same popularity.
A farm's accounts share nothing but their target, and each of them, filler drawn by popularity,
looks like a light genuine user; their one group trait, found without timestamps, is that they
reach the target as newcomers together (the bipartite lockstep of CopyCatch, with the account's
own event count in place of the clock). The expected newcomer share of an item comes from its
`swarm_neighbours` nearest items on each side in popularity rank (a local linear fit on log
popularity), because light users favour popular items; a binomial z against it reaches `target_z`
with at least `target_min` newcomers.
Pure: reads the item table and the lenient users' extremes, returns a dict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from streams.fraud.config import DetectorConfig
from streams.fraud.state import ItemTable

__all__ = ["campaign_targets", "purchase_targets", "swarmed_items"]


def campaign_targets(
    cfg: DetectorConfig,
    items: ItemTable,
    lenient_extremes: Iterable[list],
    lenient_idx: np.ndarray,
    bounds: tuple[float, float],
) -> dict[str, list]:
    """Items on which lenient-suspicious users act at the extreme together, against the item's consensus."""
    lo, hi = bounds
    k_of: dict[tuple[str, int], int] = {}
    for extremes in lenient_extremes:
        for item, d in extremes:
            k_of[(item, d)] = k_of.get((item, d), 0) + 1
    r_n, r_sum, r_sq = items.view("r_n"), items.view("r_sum"), items.view("r_sq")
    tot = r_n.sum()
    g_var = max(r_sq.sum() / tot - (r_sum.sum() / tot) ** 2, 1e-6) if tot else 1.0
    targets = {}
    for (item, d), k in k_of.items():
        if k < cfg.target_min:
            continue
        slot = items.index[item]
        rated = d < 0 or (hi == hi and items.at_value(slot, hi) > 0 and r_n[slot] > 0)
        if d > 0:
            m = items.at_value(slot, hi) if rated else int(items.arr["buyers"][slot])
        else:
            m = items.at_value(slot, lo)
        m = max(m, k)
        if k < cfg.target_share * m:
            continue
        n_len = int(np.isin(items.raters_of([slot]), lenient_idx).sum())
        if k < cfg.target_share * n_len:
            continue
        if rated:
            ext = hi if d > 0 else lo
            rest_n = r_n[slot] - k
            if rest_n < cfg.consensus_min:
                continue
            rest_mean = (r_sum[slot] - k * ext) / rest_n
            rest_var = max((r_sq[slot] - k * ext * ext) / rest_n - rest_mean**2, 0.0)
            var = ((rest_n - 1) * rest_var + 3 * g_var) / (rest_n - 1 + 3)
            gap = d * (ext - rest_mean)
            if gap < cfg.consensus_gap * math.sqrt(g_var):
                continue
            z = gap / math.sqrt(var * (1 / k + 1 / rest_n))
        else:
            rest_n = items.arr["actors"][slot] - n_len
            if rest_n < cfg.consensus_min:
                continue
            p_l, p_r = k / n_len, (m - k) / rest_n
            pool = (m + 1.0) / (n_len + rest_n + 2.0)
            z = (p_l - p_r) / math.sqrt(pool * (1 - pool) * (1 / n_len + 1 / rest_n))
        if z >= cfg.target_z:
            targets[f"{item}|{d}"] = [int(k), int(m), float(z), "lenient"]
    return targets


def purchase_targets(cfg: DetectorConfig, items: ItemTable, candidates: Iterable[str]) -> dict[str, list]:
    """Items bought by most of those who touch them, far above the population's conversion rate."""
    actors, buyers = items.view("actors"), items.view("buyers")
    total = float(actors.sum())
    p = float(buyers.sum()) / total if total else 0.0
    if not 0.0 < p < 1.0:
        return {}
    targets = {}
    for item in candidates:
        slot = items.index[item]
        m, n = float(buyers[slot]), float(actors[slot])
        z = (m - n * p) / math.sqrt(n * p * (1 - p))
        if m >= cfg.target_min and m >= cfg.purchase_share * n and z >= cfg.target_z:
            targets[f"{item}|1"] = [int(m), int(n), float(z), "purchase"]
    return targets


def swarmed_items(cfg: DetectorConfig, actors: np.ndarray, newcomers: np.ndarray) -> dict[int, float]:
    """Item slot -> z of items whose actors are newcomers far more often than those of items of equal popularity.

    The expected newcomer share at the item's popularity is a local linear fit of the share on log
    actors over its `swarm_neighbours` nearest items on each side in popularity rank (itself left
    out, weighted by actors): a plain window mean would be biased wherever the share trends with
    popularity, most of all at the ends of the ranking. The single most and least popular items have
    neighbours on one side only and would be judged by extrapolation, so they are not judged.
    """
    a, m = np.asarray(actors, float), np.asarray(newcomers, float)
    n = len(a)
    if n < 3:
        return {}
    order = np.argsort(a, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    lo = np.clip(rank - cfg.swarm_neighbours, 0, n)
    hi = np.clip(rank + cfg.swarm_neighbours + 1, 0, n)
    x = np.log(np.maximum(a, 1.0))

    def window(v: np.ndarray) -> np.ndarray:  # the sum of v over each item's window, the item left out
        cum = np.concatenate([[0.0], np.cumsum(v[order])])
        return cum[hi] - cum[lo] - v

    # weighted least squares of share = n_j / a_j on x_j with weights a_j, i.e. of newcomers on a_j, a_j x_j
    s0, s1, s2 = window(a), window(a * x), window(a * x * x)
    t0, t1 = window(m), window(m * x)
    det = s0 * s2 - s1 * s1
    flat = det <= 1e-9 * np.maximum(s0 * s2, 1e-12)  # every neighbour equally popular: no slope to fit
    slope = np.where(flat, 0.0, (s0 * t1 - s1 * t0) / np.where(flat, 1.0, det))
    p = (t0 - slope * s1) / np.maximum(s0, 1.0) + slope * x
    p = np.clip(p, 1e-3, 1.0 - 1e-3)
    z = (m - a * p) / np.sqrt(np.maximum(a * p * (1.0 - p), 1e-12))
    inside = (rank > lo) & (rank < hi - 1)  # neighbours on both sides: the fit interpolates
    hit = inside & (m >= cfg.target_min) & (z >= cfg.target_z)
    return {int(k): float(z[k]) for k in np.flatnonzero(hit)}
