"""Shilling-detection features of one user's rating profile, from the literature, as pure functions.

Each takes the user's ratings and the current per-item statistics and returns one number; the
detector calls them when it rescores a user, so they must never mutate their inputs or keep state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["ItemView", "rdma", "wdma", "wda", "length_var", "mean_var", "fmtd", "pop_low", "profile_features"]

# item -> (ratings count NR_i, mean rating r̄_i); counts include this user's own rating.
ItemView = Mapping[str, tuple[float, float]]


def rdma(ratings: Mapping[str, float], items: ItemView) -> float:
    """Rating Deviation from Mean Agreement: mean over the profile of |r_ui − r̄_i| / NR_i."""
    if not ratings:
        return 0.0
    return sum(abs(r - items[i][1]) / items[i][0] for i, r in ratings.items()) / len(ratings)


def wdma(ratings: Mapping[str, float], items: ItemView) -> float:
    """Weighted Degree of Mean Agreement: mean over the profile of |r_ui − r̄_i| / NR_i²."""
    if not ratings:
        return 0.0
    return sum(abs(r - items[i][1]) / items[i][0] ** 2 for i, r in ratings.items()) / len(ratings)


def wda(ratings: Mapping[str, float], items: ItemView) -> float:
    """Weighted Deviation from mean Agreement: Σ over the profile of |r_ui − r̄_i| / NR_i (not averaged)."""
    return sum(abs(r - items[i][1]) / items[i][0] for i, r in ratings.items())


def length_var(n_u: float, mean_len: float, sum_sq_dev: float) -> float:
    """Length Variance: |N_u − N̄| / Σ_v (N_v − N̄)²."""
    return abs(n_u - mean_len) / sum_sq_dev if sum_sq_dev > 0 else 0.0


def _split(ratings: Mapping[str, float], push: bool) -> tuple[list[str], list[str]]:
    extreme = max(ratings.values()) if push else min(ratings.values())
    target = [i for i, r in ratings.items() if r == extreme]
    filler = [i for i, r in ratings.items() if r != extreme]
    return target, filler


def mean_var(ratings: Mapping[str, float], items: ItemView, push: bool = True) -> float:
    """MeanVar: Σ_{j∈filler} (r_uj − r̄_j)² / |filler|, the target being the items at the user's extreme."""
    if not ratings:
        return 0.0
    _, filler = _split(ratings, push)
    if not filler:
        return 0.0
    return sum((ratings[j] - items[j][1]) ** 2 for j in filler) / len(filler)


def fmtd(ratings: Mapping[str, float], push: bool = True) -> float:
    """Filler Mean Target Difference: |mean rating of target items − mean rating of the other items|."""
    if not ratings:
        return 0.0
    target, filler = _split(ratings, push)
    if not filler:
        return 0.0
    return abs(sum(ratings[i] for i in target) / len(target) - sum(ratings[j] for j in filler) / len(filler))


def pop_low(item_counts: Sequence[float]) -> float:
    """Profile unpopularity: −mean over the profile of ln NR_i (random filler picks rarely-rated items)."""
    if not item_counts:
        return 0.0
    return -sum(math.log(n) for n in item_counts) / len(item_counts)


def profile_features(
    ratings: Mapping[str, float], items: ItemView, mean_len: float, sum_sq_dev: float
) -> dict[str, float]:
    """All rating-profile features in one pass over the profile (the detector's hot path)."""
    n = len(ratings)
    if n == 0:
        return {}
    hi = max(ratings.values())
    rd = wd = lp = 0.0
    t_sum = t_n = f_sum = f_sq = 0.0
    for i, r in ratings.items():
        cnt, mean = items[i]
        d = abs(r - mean) / cnt
        rd += d
        wd += d / cnt
        lp += math.log(cnt)
        if r == hi:
            t_sum += r
            t_n += 1
        else:
            f_sum += r
            f_sq += (r - mean) ** 2
    f_n = n - t_n
    return {
        "rdma": rd / n,
        "wdma": wd / n,
        "wda": rd,
        "length_var": length_var(n, mean_len, sum_sq_dev),
        "mean_var": f_sq / f_n if f_n else 0.0,
        "fmtd": abs(t_sum / t_n - f_sum / f_n) if f_n else 0.0,
        "pop_low": -lp / n,
    }
