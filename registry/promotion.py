"""The promotion gate: a pure rule that decides promote / hold / reject for a challenger.

Inputs are evaluation reports (plain dicts, as `training.offline.report_model` writes them:
`hr@10`, `ndcg@10`, `fgsm: {eps: {hr@10, ndcg@10}}`, optional `poisoning: {lift}` and
`eval_users`). It must never import mlflow, read files or look at the clock.

* reject: below an absolute floor, worse than the champion beyond the tolerance, or a robustness
  bound is exceeded (FGSM NDCG@10 drop, poisoning lift);
* hold: the evidence is not enough to decide (too few evaluation users, a needed number missing);
* promote: everything else; the first version (no champion) is promoted if it passes the floors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GateConfig", "Decision", "gate_numbers", "decide", "ACTIONS"]

ACTIONS = ("promote", "hold", "reject")


@dataclass(frozen=True)
class GateConfig:
    """Bounds of the gate; tolerances are relative (0.02 = may be 2% below the champion)."""

    hr_tolerance: float = 0.02
    ndcg_tolerance: float = 0.02
    min_hr_at_10: float = 0.05
    min_ndcg_at_10: float = 0.02
    fgsm_eps: str = "0.25"
    max_fgsm_drop: float = 0.30
    max_poisoning_lift: float = 0.05
    min_eval_users: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> GateConfig:
        """The gate bounds of the one Settings object (`ADVREC_GATE_*`)."""
        return cls(
            hr_tolerance=settings.gate_hr_tolerance,
            ndcg_tolerance=settings.gate_ndcg_tolerance,
            min_hr_at_10=settings.gate_min_hr_at_10,
            min_ndcg_at_10=settings.gate_min_ndcg_at_10,
            fgsm_eps=settings.gate_fgsm_eps,
            max_fgsm_drop=settings.gate_max_fgsm_drop,
            max_poisoning_lift=settings.gate_max_poisoning_lift,
            min_eval_users=settings.gate_min_eval_users,
        )


@dataclass(frozen=True)
class Decision:
    """What the gate decided, why (one line per reason), and the numbers it looked at."""

    action: str
    reasons: tuple[str, ...]
    numbers: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        """Whether the challenger becomes champion."""
        return self.action == "promote"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def gate_numbers(report: Mapping[str, Any], fgsm_eps: str = "0.25") -> dict[str, float]:
    """The numbers the gate uses from a report: accuracy, FGSM drop, poisoning lift, eval users (NaN if absent)."""
    hr, ndcg = _number(report.get("hr@10")), _number(report.get("ndcg@10"))
    fgsm = (report.get("fgsm") or {}).get(str(fgsm_eps)) or {}
    perturbed = _number(fgsm.get("ndcg@10"))
    drop = 1.0 - perturbed / ndcg if ndcg > 0 and not math.isnan(perturbed) else float("nan")
    poisoning = report.get("poisoning") or {}
    return {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "fgsm_ndcg_drop": drop,
        "poisoning_lift": _number(poisoning.get("lift")),
        "eval_users": _number(report.get("eval_users")),
    }


def decide(
    challenger: Mapping[str, Any], champion: Mapping[str, Any] | None, config: GateConfig = GateConfig()
) -> Decision:
    """Decide on a challenger report against the champion's report on the same set (None: no champion)."""
    new = gate_numbers(challenger, config.fgsm_eps)
    numbers = {f"challenger_{k}": v for k, v in new.items()}
    old = None
    if champion is not None:
        old = gate_numbers(champion, config.fgsm_eps)
        numbers.update({"champion_hr@10": old["hr@10"], "champion_ndcg@10": old["ndcg@10"]})

    hold: list[str] = []
    if math.isnan(new["hr@10"]) or math.isnan(new["ndcg@10"]):
        hold.append("missing_accuracy: the report has no HR@10/NDCG@10")
    if not math.isnan(new["eval_users"]) and new["eval_users"] < config.min_eval_users:
        hold.append(f"too_few_eval_users: {new['eval_users']:.0f} < {config.min_eval_users}")
    if math.isnan(new["fgsm_ndcg_drop"]):
        hold.append(f"missing_robustness: no FGSM NDCG@10 at eps {config.fgsm_eps}")
    if hold:
        return Decision("hold", tuple(hold), numbers)

    reject: list[str] = []
    if new["hr@10"] < config.min_hr_at_10:
        reject.append(f"below_floor: hr@10 {new['hr@10']:.4f} < {config.min_hr_at_10:.4f}")
    if new["ndcg@10"] < config.min_ndcg_at_10:
        reject.append(f"below_floor: ndcg@10 {new['ndcg@10']:.4f} < {config.min_ndcg_at_10:.4f}")
    if new["fgsm_ndcg_drop"] > config.max_fgsm_drop:
        reject.append(
            f"fgsm_drop: ndcg@10 drops {new['fgsm_ndcg_drop']:.1%} at eps {config.fgsm_eps} "
            f"> {config.max_fgsm_drop:.1%}"
        )
    if not math.isnan(new["poisoning_lift"]) and new["poisoning_lift"] > config.max_poisoning_lift:
        reject.append(f"poisoning_lift: {new['poisoning_lift']:.4f} > {config.max_poisoning_lift:.4f}")
    compared: list[str] = []
    if old is not None:
        for metric, tolerance in (("hr@10", config.hr_tolerance), ("ndcg@10", config.ndcg_tolerance)):
            if math.isnan(old[metric]):
                continue
            bound = old[metric] * (1.0 - tolerance)
            if new[metric] < bound:
                reject.append(
                    f"worse_than_champion: {metric} {new[metric]:.4f} < {old[metric]:.4f}"
                    f"*(1-{tolerance:g}) = {bound:.4f}"
                )
            else:
                compared.append(f"{metric} {new[metric]:.4f} >= {bound:.4f}")
    if reject:
        return Decision("reject", tuple(reject), numbers)
    if old is None:
        return Decision("promote", ("first_champion: passes the floors and robustness bounds",), numbers)
    return Decision(
        "promote",
        (f"not_worse_than_champion: {', '.join(compared) or 'no champion numbers'}", "robustness within bounds"),
        numbers,
    )
