"""The promotion gate: a pure rule that decides promote / hold / reject for a challenger.

Inputs are evaluation reports (plain dicts, as the stream trainer's `round_report` and
`training.bootstrap` write them: `hr@10`, `ndcg@10`, `fgsm: {eps: {hr@10, ndcg@10}}`,
`poisoning: {lift}` (the red-team probe), `exposure: {items: [...]}` (the exposure audit against
the champion, `training.exposure`), `eval_users`). The champion's numbers must come from the same
evaluation set as the challenger's; numbers measured elsewhere (stale tags) are never compared.
It must never import mlflow, read files or look at the clock.

* reject: below an absolute floor, below the popularity list on the same set (the scorer's
  fallback: a model that does not beat it is not worth serving), worse than the champion beyond
  the tolerance, a robustness
  bound exceeded (FGSM NDCG@10 drop, the probe's target lift), or an item's exposure jumped
  beyond the bounds, carried by new or suspicious accounts (the reason names the item);
* hold: the evidence is not enough to decide: too few evaluation users, or a needed measurement
  missing (accuracy, FGSM, the probe, popularity's numbers on the same set, the champion's numbers
  on the same set, the exposure audit).
  A missing measurement never passes;
* promote: everything else; the first version (no champion) is promoted if it passes the floors
  and robustness bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GateConfig", "Decision", "gate_numbers", "exposure_alarms", "decide", "ACTIONS"]

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
    max_exposure_jump: float = 0.05  # an item may gain this share of audited users' top-K lists ...
    max_exposure_ratio: float = 2.0  # ... or grow its share this many times, not both ...
    min_carried_share: float = 0.5  # ... when this share of its new training rows is untrusted ...
    min_exposure_lists: int = 5  # ... and it entered at least this many more audited users' lists
    popularity_floor: bool = True  # reject a challenger below popularity's (hr/ndcg tolerances) on its set

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
            max_exposure_jump=settings.gate_max_exposure_jump,
            max_exposure_ratio=settings.gate_max_exposure_ratio,
            min_carried_share=settings.gate_min_carried_share,
            min_exposure_lists=settings.gate_min_exposure_lists,
            popularity_floor=settings.gate_popularity_floor,
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
    """The numbers the gate reads from a report: accuracy, popularity's on the same set, FGSM drop, probe lift,
    exposure, eval users (NaN: absent)."""
    hr, ndcg = _number(report.get("hr@10")), _number(report.get("ndcg@10"))
    fgsm = (report.get("fgsm") or {}).get(str(fgsm_eps)) or {}
    perturbed = _number(fgsm.get("ndcg@10"))
    drop = 1.0 - perturbed / ndcg if ndcg > 0 and not math.isnan(perturbed) else float("nan")
    poisoning = report.get("poisoning") or {}
    exposure = report.get("exposure") or {}
    popularity = report.get("popularity") or {}
    jumps = [_number(i.get("challenger")) - _number(i.get("champion")) for i in exposure.get("items") or []]
    return {
        "hr@10": hr,
        "ndcg@10": ndcg,
        "popularity_hr@10": _number(popularity.get("hr@10")),
        "popularity_ndcg@10": _number(popularity.get("ndcg@10")),
        "fgsm_ndcg_drop": drop,
        "poisoning_lift": _number(poisoning.get("lift")),
        "exposure_max_jump": max(jumps) if jumps else (0.0 if "items" in exposure else float("nan")),
        "eval_users": _number(report.get("eval_users")),
    }


def exposure_alarms(exposure: Mapping[str, Any] | None, config: GateConfig = GateConfig()) -> list[dict[str, Any]]:
    """The audited items whose exposure jumped beyond both bounds, carried by new or suspicious accounts.

    An item alarms when its share of the audited users' top-K lists rose by more than
    `max_exposure_jump`, to more than `max_exposure_ratio` times the champion's share, by at
    least `min_exposure_lists` lists, and at least `min_carried_share` of the round's training
    rows on it came from untrusted accounts. A genuine trend moves an item too, but its rows come
    from established accounts. The count matters on a small audit: early in a stream the champion
    knows few trusted users, and with 35 audited a rise of 2 lists is 5.7 %, past the jump bound,
    while two models fitted on different rows differ by that much anyway.
    """
    alarms = []
    users = _number((exposure or {}).get("users"))
    for item in (exposure or {}).get("items") or []:
        new, old = _number(item.get("challenger")), _number(item.get("champion"))
        jumped = new - old > config.max_exposure_jump and new > config.max_exposure_ratio * old
        # an audit without its user count (a hand-written report) is not checked for it
        enough = not math.isfinite(users) or round((new - old) * users) >= config.min_exposure_lists
        if jumped and enough and _number(item.get("carried")) >= config.min_carried_share:
            alarms.append(dict(item))
    return alarms


def decide(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    config: GateConfig = GateConfig(),
    champion_exists: bool | None = None,
) -> Decision:
    """Decide on a challenger report against the champion's report on the same set.

    `champion` None with `champion_exists` False (the default when it is None): there is no
    champion yet. A champion that exists but was not measured on the challenger's set holds.
    """
    champion_exists = champion is not None if champion_exists is None else champion_exists
    new = gate_numbers(challenger, config.fgsm_eps)
    # popularity's numbers are the set's, not the challenger's: tagged under their own names
    numbers = {(k if k.startswith("popularity_") else f"challenger_{k}"): v for k, v in new.items()}
    old = None
    if champion is not None:
        old = gate_numbers(champion, config.fgsm_eps)
        numbers.update({f"champion_{k}": old[k] for k in ("hr@10", "ndcg@10", "fgsm_ndcg_drop")})

    hold: list[str] = []
    if math.isnan(new["hr@10"]) or math.isnan(new["ndcg@10"]):
        hold.append("missing_accuracy: the report has no HR@10/NDCG@10")
    if not math.isnan(new["eval_users"]) and new["eval_users"] < config.min_eval_users:
        hold.append(f"too_few_eval_users: {new['eval_users']:.0f} < {config.min_eval_users}")
    if math.isnan(new["fgsm_ndcg_drop"]):
        hold.append(f"missing_robustness: no FGSM NDCG@10 at eps {config.fgsm_eps}")
    if math.isnan(new["poisoning_lift"]):
        hold.append("missing_poisoning_probe: the report has no red-team probe lift")
    if config.popularity_floor and (math.isnan(new["popularity_hr@10"]) or math.isnan(new["popularity_ndcg@10"])):
        hold.append("missing_popularity: the report has no popularity HR@10/NDCG@10 on its set")
    if champion_exists and (old is None or math.isnan(old["hr@10"]) or math.isnan(old["ndcg@10"])):
        hold.append("missing_champion_numbers: the champion was not evaluated on the challenger's set")
    if champion_exists and math.isnan(new["exposure_max_jump"]):
        hold.append("missing_exposure_audit: no exposure audit against the champion")
    if hold:
        return Decision("hold", tuple(hold), numbers)

    reject: list[str] = []
    if new["hr@10"] < config.min_hr_at_10:
        reject.append(f"below_floor: hr@10 {new['hr@10']:.4f} < {config.min_hr_at_10:.4f}")
    if new["ndcg@10"] < config.min_ndcg_at_10:
        reject.append(f"below_floor: ndcg@10 {new['ndcg@10']:.4f} < {config.min_ndcg_at_10:.4f}")
    # The scorer serves the popularity list to whoever a model cannot rank, and to everyone while no
    # version is champion: a version that ranks the same users worse than that list makes serving
    # worse. Early in a stream the first rounds see few trusted rows, and such versions were
    # promoted (HR@10 0.06-0.35 against popularity's 0.24-0.42 on the same split).
    if config.popularity_floor:
        for metric, tolerance in (("hr@10", config.hr_tolerance), ("ndcg@10", config.ndcg_tolerance)):
            bound = new[f"popularity_{metric}"] * (1.0 - tolerance)
            if new[metric] < bound:
                reject.append(
                    f"below_popularity: {metric} {new[metric]:.4f} < popularity's "
                    f"{new[f'popularity_{metric}']:.4f}*(1-{tolerance:g}) = {bound:.4f}"
                )
    if new["fgsm_ndcg_drop"] > config.max_fgsm_drop:
        reject.append(
            f"fgsm_drop: ndcg@10 drops {new['fgsm_ndcg_drop']:.1%} at eps {config.fgsm_eps} "
            f"> {config.max_fgsm_drop:.1%}"
        )
    # The probe measures the round's recipe, not the model: a challenger is rejected when its recipe
    # is more open to poisoning than the champion's by more than the bound. With no champion, the
    # first model is judged on its own (the alternative, serving no model, protects nobody); with a
    # champion whose probe is unknown, the bound is absolute. A champion's negative lift (the probe's
    # attack lowered its targets: noise on a small audit) counts as 0; measured against the negative
    # figure, every later recipe had to lower its targets too, and none was promoted again.
    lift, bound = new["poisoning_lift"], config.max_poisoning_lift
    champion_lift = max(old["poisoning_lift"], 0.0) if old is not None else float("nan")
    if champion_exists and not math.isnan(champion_lift):
        if lift > champion_lift + bound:
            reject.append(f"poisoning_lift: {lift:.4f} > champion's {champion_lift:.4f} + {bound:.4f}")
    elif champion_exists and lift > bound:
        reject.append(f"poisoning_lift: {lift:.4f} > {bound:.4f}")
    for item in exposure_alarms(challenger.get("exposure"), config):
        reject.append(
            f"exposure: item {item['item']} in {_number(item['challenger']):.1%} of audited top-K lists "
            f"(champion {_number(item['champion']):.1%}), {_number(item['carried']):.0%} of its new rows "
            "from new or suspicious accounts"
        )
    compared: list[str] = []
    if old is not None and champion_exists:
        for metric, tolerance in (("hr@10", config.hr_tolerance), ("ndcg@10", config.ndcg_tolerance)):
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
    if not champion_exists:
        return Decision("promote", ("first_champion: passes the floors and robustness bounds",), numbers)
    return Decision(
        "promote",
        (f"not_worse_than_champion: {', '.join(compared)}", "robustness and exposure within bounds"),
        numbers,
    )
