"""Turn raw per-user features into robust z-scores against the population, one suspicion score, reasons.

Pure: population statistics come in as a plain dict (median and scale per feature) fitted by
`fit_population`; nothing here may look at labels, so the rule stays unsupervised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureSpec", "FEATURES", "CombinerConfig", "fit_population", "robust_z", "own_evidence", "combine"]


@dataclass(frozen=True)
class FeatureSpec:
    """How one feature enters the score: family, which direction is suspicious, transform, scale floor."""

    name: str
    family: str  # "profile" | "behaviour"
    direction: int  # +1: high is suspicious, -1: low is suspicious
    log: bool
    floor: float
    reason: str


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("rdma", "profile", +1, True, 0.05, "rdma_high"),
    FeatureSpec("wdma", "profile", +1, True, 0.05, "wdma_high"),
    FeatureSpec("pop_low", "profile", +1, False, 0.05, "unpopular_items"),
    FeatureSpec("degsim", "profile", -1, False, 0.01, "degsim_low"),
    FeatureSpec("burst", "behaviour", +1, True, 0.25, "burst"),
    FeatureSpec("regularity", "behaviour", +1, False, 0.25, "regular_timing"),
    FeatureSpec("new_intensity", "behaviour", +1, True, 0.25, "new_account_burst"),
    FeatureSpec("concentration", "behaviour", +1, False, 0.05, "item_concentration"),
    FeatureSpec("purchase_ratio", "behaviour", +1, False, 0.05, "click_purchase_pattern"),
)


@dataclass(frozen=True)
class CombinerConfig:
    """Cut-offs in robust-sigma units (conventional outlier levels, not fitted to labels)."""

    cutoff: float = 3.5  # Iglewicz–Hoaglin modified-z outlier level: score 0.5 here
    lenient: float = 2.0  # a user counts as "suspicious-ish" for the co-target test above this
    group_z: float = 5.0  # binomial z of an item's suspicious co-pushers that marks it a target
    group_bonus: float = 2.0  # evidence added to a suspicious-ish user pushing a marked target
    degsim_high_z: float = 5.0  # near-duplicate profiles (co-ordinated accounts)
    reason_z: float = 3.0  # a feature is named as a reason above this
    profile_k: int = 4  # profile evidence = mean of its k strongest directed z-scores (4 = all of them)
    behaviour_k: int = 2  # behaviour evidence likewise (bots and farms light up a couple of timing features)
    prior_ratings: float = 10.0  # credibility weight: a profile's z-scores count n / (n + prior_ratings)
    slope: float = 2.0  # logistic slope of the score around the cutoff


def _value(spec: FeatureSpec, x: float) -> float:
    return math.log(x + 1e-12) if spec.log else x


def fit_population(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Median and robust scale (1.4826·MAD, floored) of every feature over the users in `rows`."""
    out: dict[str, list[float]] = {}
    for spec in FEATURES:
        vals = np.array([_value(spec, r[spec.name]) for r in rows if spec.name in r], dtype=float)
        if len(vals) == 0:
            continue
        med = float(np.median(vals))
        mad = 1.4826 * float(np.median(np.abs(vals - med)))
        out[spec.name] = [med, max(mad, spec.floor)]
    return out


def robust_z(
    features: dict[str, float],
    population: dict[str, list[float]],
    n_ratings: int = 0,
    cfg: CombinerConfig | None = None,
) -> dict[str, float]:
    """Directed robust z-scores (positive = suspicious); profile ones shrunk by n / (n + n0) for short profiles."""
    shrink = n_ratings / (n_ratings + cfg.prior_ratings) if cfg is not None and cfg.prior_ratings else 1.0
    z = {}
    for spec in FEATURES:
        if spec.name in features and spec.name in population:
            med, scale = population[spec.name]
            zz = spec.direction * (_value(spec, features[spec.name]) - med) / scale
            z[spec.name] = zz * shrink if spec.family == "profile" else zz
    return z


def _family(z: dict[str, float], family: str, k: int) -> float:
    vals = sorted((max(v, 0.0) for name, v in z.items() if _FAMILY[name] == family), reverse=True)
    return sum(vals[:k]) / k if vals else 0.0


_FAMILY = {s.name: s.family for s in FEATURES}
_REASON = {s.name: s.reason for s in FEATURES}


def own_evidence(z: dict[str, float], cfg: CombinerConfig) -> float:
    """A user's own evidence: the stronger of its profile and behaviour families."""
    return max(_family(z, "profile", cfg.profile_k), _family(z, "behaviour", cfg.behaviour_k))


def combine(z: dict[str, float], group: dict[str, float], cfg: CombinerConfig) -> tuple[float, float, list[str]]:
    """(score in [0, 1], evidence, reasons) from directed z-scores and group z-scores."""
    own = own_evidence(z, cfg)
    reasons = [_REASON[n] for n, v in z.items() if v >= cfg.reason_z]
    evidence = own
    if own >= cfg.lenient:
        for name, gz in group.items():
            if gz >= cfg.group_z:
                evidence = own + cfg.group_bonus
                reasons.append(name)
                break
    if group.get("degsim_high", 0.0) >= cfg.degsim_high_z:
        evidence = max(evidence, cfg.cutoff + (own >= cfg.lenient) * cfg.group_bonus)
        reasons.append("degsim_high")
    score = 1.0 / (1.0 + math.exp(-cfg.slope * (evidence - cfg.cutoff)))
    return score, evidence, sorted(set(reasons))
