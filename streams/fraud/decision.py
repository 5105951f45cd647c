"""The decision rule: robust population fits, the margin of each kind of evidence, score and reasons.

Each kind of evidence has a margin where 1.0 is its cut-off (`DetectorConfig`). A user is flagged
when two of selection / similarity / consensus are strong, when it is lenient-suspicious and took
the extreme action on a campaign target, or when it bought a purchase target:
E = max(second-largest strict margin, min(1, lenient margin) if linked to a campaign target,
buyer share / `purchase_share` if it bought a purchase target), score = E⁴ / (1 + E⁴), so the
score is 0.5 exactly at the decision boundary. Pure functions of numbers.
"""

from __future__ import annotations

import numpy as np

from streams.fraud.config import DetectorConfig

__all__ = ["KINDS", "robust_fit", "margins", "is_lenient", "decide"]

KINDS = ("selection", "similarity", "consensus")
_NAMES = {"selection": "uniform_item_choice", "similarity": "unlike_all_neighbours"}


def robust_fit(values: np.ndarray, floor: float, lower_tail: bool = False) -> tuple[float, float]:
    """(median, scale): scale = 1.4826 MAD, floored; with `lower_tail`, at least (median - q10) / 1.2816.

    The lower-tail scale guards a low-side feature against populations whose normal users spread
    further down than the MAD suggests (skewed or multi-modal, e.g. FilmTrust's DegSim).
    """
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return 0.0, floor
    med = float(np.median(values))
    scale = max(1.4826 * float(np.median(np.abs(values - med))), floor)
    if lower_tail:
        scale = max(scale, (med - float(np.quantile(values, 0.10))) / 1.2816)
    return med, scale


def margins(ev: dict[str, float], cfg: DetectorConfig) -> dict[str, float]:
    """Margin of each kind of own evidence (1.0 = exactly at its strict cut-off) and the lenient margin."""
    if not ev:
        return {}
    return {
        "selection": min(ev["lam"] / cfg.lam_strict, ev["t"] / cfg.t_strict),
        "similarity": ev["sim_z"] / cfg.sim_strict,
        "consensus": abs(ev.get("cons_z", 0.0)) / cfg.cons_strict,
        "lenient": max(min(ev["lam"] / cfg.lam_lenient, ev["t"] / cfg.t_lenient), ev["sim_z"] / cfg.sim_lenient),
    }


def is_lenient(m: dict[str, float]) -> bool:
    """Lenient-suspicious: the lenient margin reaches 1, or any one strict kind does."""
    return bool(m) and (m["lenient"] >= 1.0 or max(m[k] for k in KINDS) >= 1.0)


def decide(
    m: dict[str, float],
    cons_z: float,
    campaigns: list[str],
    purchases: list[tuple[str, float]],
    cfg: DetectorConfig,
) -> tuple[float, list[str]]:
    """(score, reasons) from the margins, the campaign targets ("item|±1") the user acted on at the extreme
    as a lenient user, and the purchase targets it bought with their buyer share."""
    strict = sorted((m.get(k, 0.0) for k in KINDS), reverse=True)
    via_campaign = min(1.0, m.get("lenient", 0.0)) if campaigns else 0.0
    via_purchase = max((share / cfg.purchase_share for _, share in purchases), default=0.0)
    e = max(strict[1], via_campaign, via_purchase, 0.0)
    score = e**4 / (1.0 + e**4)
    names = {**_NAMES, "consensus": "too_average" if cons_z > 0 else "ignores_consensus"}
    reasons = [names[k] for k in KINDS if m.get(k, 0.0) >= 1.0]
    reasons += [
        ("pushes_target:" if key.endswith("|1") else "nukes_target:") + key.rsplit("|", 1)[0] for key in campaigns
    ]
    reasons += [f"buys_target:{item}" for item, _ in purchases]
    return score, reasons
