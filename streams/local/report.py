"""Pure computations behind the demo's report: freshness, quantiles, target exposure, flags over time.

No Kafka, MLflow or files: the demo gathers the facts and these functions turn them into numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "freshness_seconds",
    "histogram_quantile",
    "percentiles",
    "attack_round",
    "target_exposure",
    "exposure_verdict",
    "exposure_over_time",
    "flags_over_time",
    "attack_rows_trained",
]


def freshness_seconds(
    arrivals_by_round: Mapping[int, Iterable[float]],
    round_of_version: Mapping[int, int],
    first_served: Mapping[int, float],
) -> np.ndarray:
    """Per event: first time a model trained on its batch (that round or a later, warm-started one) served.

    arrivals_by_round: Kafka arrival times of the events each training round learnt from.
    round_of_version: the round that produced each registered version.
    first_served: when each version first answered a request. Events never served are left out.
    """
    served = sorted((round_of_version[v], t) for v, t in first_served.items() if v in round_of_version)
    out = []
    for round_no, arrivals in arrivals_by_round.items():
        times = [t for r, t in served if r >= round_no]
        if times:
            first = min(times)
            out.extend(first - a for a in arrivals)
    return np.asarray(out, dtype=float)


def percentiles(values: np.ndarray, qs: Iterable[int] = (50, 95)) -> dict[str, float | None]:
    """{"p50": .., "p95": ..} of the values (None when there are none)."""
    return {f"p{q}": (float(np.percentile(values, q)) if len(values) else None) for q in qs}


def histogram_quantile(q: float, samples: Mapping[str, float], name: str) -> float | None:
    """Prometheus-style quantile from a histogram's cumulative `_bucket` samples (None if empty)."""
    buckets = []
    for key, value in samples.items():
        if key.startswith(f"{name}_bucket{{"):
            bound = key.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), value))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            width = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / width if width else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


# ---- the story of a run: target exposure, flags and gate decisions over time --------------------


def attack_round(batch_arrivals_by_round: Mapping[int, Iterable[float]], attack_start: float | None) -> int | None:
    """The first round that trained on a batch holding events that arrived at or after the attack's start.

    batch_arrivals_by_round: per round, the newest Kafka arrival time of each batch it took.
    Rounds are warm-started, so every later round has learnt from the attack period too.
    """
    if attack_start is None:
        return None
    hit = [r for r, arrivals in batch_arrivals_by_round.items() if any(a >= attack_start for a in arrivals)]
    return min(hit) if hit else None


def _shares(lists: Sequence[Sequence[str]], targets: set[str]) -> float | None:
    if not lists:
        return None
    return float(np.mean([any(item in targets for item in items) for items in lists]))


def target_exposure(
    answers: Iterable[Mapping],
    targets: Iterable[str],
    genuine: set[str],
    round_of_version: Mapping[str, Mapping[int, int]],
    first_attack_round: Mapping[str, int | None],
    attack_start: float | None = None,
) -> dict:
    """Shares of served top-10 lists to genuine users that contain a target item.

    answers: served recommendations, each with `pipeline` ("defended" | "undefended"), `user_id`,
    `items` and `model_version` (0 = the popularity fallback: users see it too, and an attack can
    push it from its first event, so it counts as after the attack once served at or after
    `attack_start`, the time the first attack event was sent).
    A list counts as after the attack when the version that served it was trained by the round
    that first took attack-period events, or later (`first_attack_round`, per pipeline), or when it
    was served once the attack could have reached lists at all (the first such list of either
    pipeline): a defended pipeline whose gate kept an older model (or no model: its popularity
    list) still serves after the attack.
    Before the attack, both pipelines' lists are pooled (both learnt from the same clean events).
    `with_target_by_source`: per pipeline, the after-attack lists holding a target by the answer's
    `source` ("profile", "model", "popularity"): which path showed the target.
    """
    targets = {str(t) for t in targets}
    before: list[Sequence[str]] = []
    after: dict[str, list[Sequence[str]]] = {"undefended": [], "defended": []}
    served: list[tuple[Mapping, str, int | None]] = []
    for answer in answers:
        version, pipeline = int(answer.get("model_version") or 0), answer["pipeline"]
        if answer["user_id"] not in genuine or pipeline not in after:
            continue
        round_no = round_of_version.get(pipeline, {}).get(version)
        if round_no is not None or not version:
            served.append((answer, pipeline, round_no))

    def attacked(pipeline: str, round_no: int | None) -> bool:
        onset = first_attack_round.get(pipeline)
        return onset is not None and round_no is not None and round_no >= onset

    onset_times = [float(a.get("served_at") or 0.0) for a, p, r in served if attacked(p, r)]
    t_onset = min(onset_times) if onset_times else None
    by_source: dict[str, dict[str, int]] = {"undefended": {}, "defended": {}}
    for answer, pipeline, round_no in served:
        items = [str(i) for i in answer["items"][:10]]
        start = attack_start if round_no is None else t_onset  # round None: the popularity list
        late = start is not None and float(answer.get("served_at") or 0.0) >= start
        (after[pipeline] if attacked(pipeline, round_no) or late else before).append(items)
        if (attacked(pipeline, round_no) or late) and targets.intersection(items):
            source = str(answer.get("source") or ("model" if round_no is not None else "popularity"))
            by_source[pipeline][source] = by_source[pipeline].get(source, 0) + 1
    counts = {"before_attack": len(before), **{k: len(v) for k, v in after.items()}}
    return {
        "before_attack": _shares(before, targets),
        "undefended": _shares(after["undefended"], targets),
        "defended": _shares(after["defended"], targets),
        "lists": counts,
        "with_target_by_source": by_source,
    }


def exposure_verdict(exposure: Mapping) -> dict:
    """Did the attack bite the undefended shadow, and did the defence hold? (issue 14's bar)."""
    before, undefended, defended = (exposure.get(k) for k in ("before_attack", "undefended", "defended"))
    if None in (before, undefended, defended):
        return {"undefended_lift": None, "defended_lift": None, "attack_bites": None, "defence_holds": None}
    undefended_lift, defended_lift = undefended - before, defended - before
    return {
        "undefended_lift": undefended_lift,
        "defended_lift": defended_lift,
        "attack_bites": bool(undefended > 0 and undefended >= 5 * before),
        "defence_holds": bool(undefended_lift > 0 and defended_lift <= 0.1 * undefended_lift),
    }


def exposure_over_time(
    answers: Iterable[Mapping], targets: Iterable[str], genuine: set[str], t0: float, bin_s: float
) -> dict[str, list[tuple[float, float]]]:
    """Per pipeline: (bin start in seconds since t0, share of that bin's lists holding a target)."""
    targets = {str(t) for t in targets}
    bins: dict[str, dict[int, list[bool]]] = {}
    for answer in answers:
        if not int(answer.get("model_version") or 0) or answer["user_id"] not in genuine:
            continue
        slot = int((answer["served_at"] - t0) // bin_s)
        hit = any(str(i) in targets for i in answer["items"][:10])
        bins.setdefault(answer["pipeline"], {}).setdefault(slot, []).append(hit)
    return {
        pipeline: [(slot * bin_s, float(np.mean(hits))) for slot, hits in sorted(slots.items())]
        for pipeline, slots in bins.items()
    }


def attack_rows_trained(rounds: Iterable[Mapping[str, int]], attackers: set[str], attacker_events: int) -> dict:
    """How much of an attack reached training: attackers' rows trained over all rounds (each round's
    lineage `trained_by_user`) and the share of their events kept out of every training batch."""
    trained = sum(n for by_user in rounds for user, n in by_user.items() if user in attackers)
    kept_out = 1.0 - min(trained, attacker_events) / attacker_events if attacker_events else float("nan")
    return {"attacker_events": attacker_events, "attacker_rows_trained": trained, "kept_out": kept_out}


def flags_over_time(
    flags: Iterable[tuple[float, str, bool]], attackers: set[str], t0: float, t_end: float, step_s: float
) -> list[tuple[float, int, int]]:
    """(seconds since t0, attackers flagged, genuine users flagged) at every step, from (ts, user, flagged) records."""
    ordered = sorted(flags)
    state: dict[str, bool] = {}
    out, k = [], 0
    steps = max(1, int(math.ceil((t_end - t0) / step_s)))
    for n in range(steps + 1):
        now = t0 + n * step_s
        while k < len(ordered) and ordered[k][0] <= now:
            _, user, flagged = ordered[k]
            state[user] = flagged
            k += 1
        flagged_users = {u for u, f in state.items() if f}
        out.append((n * step_s, len(flagged_users & attackers), len(flagged_users - attackers)))
    return out
