"""Offline evaluation of the fraud detector: inject attacks into a ratings frame, replay, score against labels.

Replays through the very `FraudDetector` the stream uses, in timestamp order, with `flush` every
`flush_every` events like the worker's batches and a full flush at the end. Pure: it takes frames
and returns dicts; reading files and printing belong to the CLI. It must never let labels reach
the detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from streams.fraud import DetectorConfig, FraudDetector, Verdict
from streams.sources.attacks import AttackSpec, plan_attack, summarize

__all__ = [
    "read_labels",
    "with_synthetic_timestamps",
    "inject_attacks",
    "replay",
    "detection_scores",
    "feature_baseline",
    "best_f1",
    "evaluate",
]

SYNTHETIC_T0 = 1_000_000_000.0


def read_labels(path) -> dict[str, int]:
    """Read `user label [...]` lines (whitespace or tab; 1 = attacker) into {user: label}."""
    labels: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.replace(",", " ").split()
            if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
                labels[parts[0]] = int(parts[1])
    return labels


def with_synthetic_timestamps(ratings: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Fill missing timestamps: rows in a seeded random order, one second apart (file order carries no signal)."""
    if ratings["timestamp"].notna().all():
        return ratings
    out = ratings.copy()
    rank = np.random.default_rng(seed).permutation(len(out))
    missing = out["timestamp"].isna().to_numpy()
    out.loc[missing, "timestamp"] = SYNTHETIC_T0 + rank[missing].astype(float)
    return out


def inject_attacks(
    ratings: pd.DataFrame, specs: Iterable[AttackSpec], seed: int
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Append the events of each attack (seed, seed+1, ...) as rows; return them and {attacker: kind}."""
    pop = summarize(ratings)
    frames, kinds = [], {}
    for k, spec in enumerate(specs):
        plan = plan_attack(spec, pop, seed + k)
        ev = pd.DataFrame(list(plan.events()))
        frames.append(
            pd.DataFrame(
                {
                    "user": ev["user_id"],
                    "item": ev["item_id"],
                    "rating": ev["value"],
                    "timestamp": ev["ts"],
                    "type": ev["type"],
                }
            )
        )
        kinds.update({user: kind for user, _, kind in plan.labels()})
    base = ratings.assign(type="rating")
    return pd.concat([base, *frames], ignore_index=True), kinds


def _events(frame: pd.DataFrame) -> Iterator[tuple]:
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(float)))
    types = frame["type"].to_numpy() if "type" in frame else np.full(len(frame), "rating")
    cols = (
        frame["user"].to_numpy(),
        frame["item"].to_numpy(),
        types,
        frame["timestamp"].to_numpy(float),
        frame["rating"].to_numpy(float),
    )
    for u, i, t, ts, v in zip(*(c[order].tolist() for c in cols)):
        yield u, i, t, ts, (None if v != v else v)


def replay(frame: pd.DataFrame, detector: FraudDetector, flush_every: int = 2000) -> dict[str, Verdict]:
    """Feed every row to the detector in timestamp order, flushing like the worker; return final verdicts."""
    update = detector.update
    for n, (u, i, t, ts, v) in enumerate(_events(frame), 1):
        update(u, i, t, ts, v)
        if n % flush_every == 0:
            detector.flush()
    detector.flush(full=True)
    return detector.verdicts()


def detection_scores(flagged: set[str], users: Iterable[str], attackers: dict[str, str]) -> dict:
    """Precision, recall, F1, FPR over `users`; per attack kind, genuine false positives count against each."""
    users = set(users)
    bad = {u for u in attackers if u in users}
    tp, fp = len(flagged & bad), len(flagged - bad)
    fn, genuine = len(bad - flagged), len(users - bad)

    def prf(tp_: int, fn_: int) -> dict:
        p = tp_ / (tp_ + fp) if tp_ + fp else 0.0
        r = tp_ / (tp_ + fn_) if tp_ + fn_ else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}

    per = {}
    for kind in sorted(set(attackers.values())):
        mine = {u for u in bad if attackers[u] == kind}
        per[kind] = prf(len(flagged & mine), len(mine - flagged))
    return {
        **prf(tp, fn),
        "fpr": round(fp / genuine, 4) if genuine else 0.0,
        "users": len(users),
        "attackers": len(bad),
        "per_attack": per,
    }


def feature_baseline(verdicts: dict[str, Verdict], detector: FraudDetector, feature: str, cutoff: float) -> set[str]:
    """Users whose single directed robust z-score of `feature` reaches `cutoff` (a one-feature detector)."""
    return {u for u, v in verdicts.items() if detector.z_scores(u).get(feature, -np.inf) >= cutoff}


def best_f1(verdicts: dict[str, Verdict], detector: FraudDetector, feature: str, attackers: dict[str, str]) -> float:
    """F1 of the single feature at its best threshold chosen with the labels (an optimistic baseline)."""
    zs = sorted(((detector.z_scores(u).get(feature, -np.inf), u in attackers) for u in verdicts), reverse=True)
    total = sum(bad for _, bad in zs)
    best = tp = 0
    for k, (_, bad) in enumerate(zs, 1):
        tp += bad
        best = max(best, 2 * tp / (k + total)) if total else 0.0
    return round(best, 4)


def evaluate(
    ratings: pd.DataFrame,
    labels: dict[str, int] | None = None,
    inject: Iterable[AttackSpec] = (),
    seed: int = 0,
    config: DetectorConfig | None = None,
    flush_every: int = 2000,
    baselines: Iterable[str] = (),
) -> dict:
    """Inject, replay and score; returns the metrics dict (plus `baselines` when asked)."""
    frame = with_synthetic_timestamps(ratings, seed)
    frame, kinds = inject_attacks(frame, list(inject), seed)
    attackers = {u: "labelled" for u, y in (labels or {}).items() if y == 1}
    attackers.update(kinds)
    config = config or DetectorConfig()
    detector = FraudDetector(config)
    verdicts = replay(frame, detector, flush_every)
    flagged = {u for u, v in verdicts.items() if v.flagged}
    out = detection_scores(flagged, verdicts, attackers)
    cutoff = config.combiner.cutoff
    if baselines:
        out["baselines"] = {
            f: {
                **detection_scores(feature_baseline(verdicts, detector, f, cutoff), verdicts, attackers),
                "best_f1": best_f1(verdicts, detector, f, attackers),
            }
            for f in baselines
        }
    return out
