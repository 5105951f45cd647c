"""`eval_attack`: each attack's lift on an undefended BPR model and the unsupervised detector's recall on it.

Protocol (all attacks of the same size: `size` x genuine users fakes, `filler` x items filler, the
target at the top rating):
- targets: for each of `n_targets` attack seeds (seed, seed + 1, ...) the heuristics' own pick for
  that seed (`streams.sources.attacks`: >= 5 ratings, a below-median mean); every kind, the
  learned one included, pushes that same target;
- lift: HR@50 of the target on a fresh BPR (`streams.adversary.lift`, the project's defaults)
  trained on genuine + attack data minus the same on genuine data only, over the genuine users who
  have not rated the target, with the same `bpr_seeds` for every condition (so a seed's clean and
  poisoned models share initialisation and their genuine triples: common random numbers);
  averaged over targets x seeds, with its standard error;
- recall: the stream's unsupervised `FraudDetector` at its usual cut-off, end of replay (batches
  of 500, final full rescore), attackers spread over the data's time span, all ids opaque.
The learned attacker is trained on the data it attacks (as an attacker would be) with its own seed;
it never sees the evaluation's BPR models nor the detector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from streams.adversary.game import Replayed, replay_plan
from streams.adversary.learner import LearnedAttacker
from streams.adversary.lift import fit_stacked, target_hit_rate
from streams.adversary.matrix import RatingMatrix
from streams.adversary.oracle import SurrogateOracle
from streams.sources.attacks import AttackPlan, AttackSpec, plan_attack, summarize
from training.models.mf import MFConfig

__all__ = ["HEURISTICS", "EvalConfig", "heuristic_plans", "plan_pairs", "lifts", "eval_attack"]

HEURISTICS = ("random", "average", "bandwagon", "segment")  # the push kinds of the rating generator


@dataclass(frozen=True)
class EvalConfig:
    size: float = 0.05
    filler: float = 0.03
    seed: int = 1
    n_targets: int = 4
    bpr_seeds: tuple[int, ...] = (0, 1)
    k: int = 50
    bpr: MFConfig = MFConfig()


def heuristic_plans(ratings: pd.DataFrame, size: float, filler: float, seed: int) -> dict[str, AttackPlan]:
    """One plan per heuristic push kind for `seed` (they share the target the seed picks)."""
    pop = summarize(ratings)
    return {kind: plan_attack(AttackSpec(kind, size, filler), pop, seed) for kind in HEURISTICS}


def plan_pairs(data: RatingMatrix, plan: AttackPlan) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index pairs of a plan's events, its accounts numbered after the genuine users."""
    col = {str(i): k for k, i in enumerate(data.items)}
    row = {u: data.n_users + k for k, u in enumerate(plan.users)}
    pairs = {(row[e["user_id"]], col[e["item_id"]]) for e in plan.events() if e["item_id"] in col}
    u, i = (np.array(x, int) for x in zip(*pairs)) if pairs else (np.empty(0, int), np.empty(0, int))
    return u, i


def lifts(
    data: RatingMatrix, attacks: dict[str, dict[int, AttackPlan]], config: EvalConfig
) -> dict[str, dict[int, list[float]]]:
    """{kind: {target index: [lift per BPR seed]}}: one stacked fit of clean + every (kind, target) x seed.

    A seed's models share their genuine triples (`lift.fit_stacked`'s common random numbers)."""
    conds: list[tuple[str, int | None]] = [("clean", None)]
    extras = [(np.empty(0, int), np.empty(0, int))]
    n_extra = 0
    for kind, by_target in attacks.items():
        for t, plan in by_target.items():
            extras.append(plan_pairs(data, plan))
            n_extra = max(n_extra, len(plan.users))
            conds.append((kind, t))
    seeds = list(config.bpr_seeds)
    # Identical pair sets (random and average attacks share filler items and BPR ignores values) give
    # identical models: each distinct one is trained once.
    keys = [hash(np.unique(u.astype(np.int64) * data.n_items + i).tobytes()) for u, i in extras]
    distinct = list(dict.fromkeys(keys))
    first = [extras[keys.index(k)] for k in distinct]
    fitted = fit_stacked(
        np.nonzero(data.R),
        [p for p in first for _ in seeds],
        [s for _ in first for s in seeds],
        data.n_users + n_extra,
        data.n_items,
        config.bpr,
    )
    models = [fitted[distinct.index(k) * len(seeds) + j] for k in keys for j in range(len(seeds))]
    seen = [np.flatnonzero(data.R[u]) for u in range(data.n_users)]
    hr: dict[tuple[str, int | None, int], float] = {}
    targets = sorted({t for by_target in attacks.values() for t in by_target})
    for c, (kind, t) in enumerate(conds):
        for j, s in enumerate(seeds):
            P, Q = models[c * len(seeds) + j]
            for tt in targets if kind == "clean" else [t]:
                users = np.flatnonzero(data.R[:, tt] == 0)
                hr[(kind, tt, s)] = target_hit_rate(P[: data.n_users], Q, users, seen, tt, config.k)
    return {
        kind: {t: [hr[(kind, t, s)] - hr[("clean", t, s)] for s in seeds] for t in by_target}
        for kind, by_target in attacks.items()
    }


def _summary(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def eval_attack(
    ratings: pd.DataFrame,
    attacker: LearnedAttacker,
    config: EvalConfig | None = None,
    baselines: dict[str, LearnedAttacker | SurrogateOracle] | None = None,
) -> dict:
    """Lift and unsupervised recall per kind: heuristics, `gan` (the trained `attacker`) and `baselines`.

    Returns {"attacks": {kind: {"lift", "lift_se", "recall", "fpr"}}, "per_target": [...],
    "replays": {kind: [Replayed]} (for the hardening game's heuristic measurements), "seconds"}.
    """
    cfg = config or EvalConfig()
    t0 = time.perf_counter()
    data = attacker.data
    learned = {"gan": attacker, **(baselines or {})}
    plans: dict[str, dict[int, AttackPlan]] = {}
    replays: dict[str, list[Replayed]] = {}
    per_target = []
    n_fake = max(1, int(round(cfg.size * data.n_users)))
    for j in range(cfg.n_targets):
        s = cfg.seed + j
        by_kind = heuristic_plans(ratings, cfg.size, cfg.filler, s)
        target = by_kind[HEURISTICS[0]].targets[0]
        t = int(data.index([target])[0])
        by_kind.update({name: a.plan([target], s, n_fake) for name, a in learned.items()})
        recall = {}
        for kind, plan in by_kind.items():
            plans.setdefault(kind, {})[t] = plan
            r = replay_plan(ratings, plan, s)
            replays.setdefault(kind, []).append(r)
            recall[kind] = {"recall": r.recall(), "fpr": r.fpr()}
        per_target.append({"seed": s, "target": target, "target_ratings": int(data.counts[t]), "detector": recall})
    t_detect = time.perf_counter() - t0
    lift = lifts(data, plans, cfg)
    for row in per_target:
        t = int(data.index([row["target"]])[0])
        row["lift"] = {kind: lift[kind][t] for kind in lift}
    attacks = {}
    for kind in plans:
        mean, se = _summary([v for per_seed in lift[kind].values() for v in per_seed])
        attacks[kind] = {
            "lift": mean,
            "lift_se": se,
            "recall": float(np.mean([r.recall() for r in replays[kind]])),
            "fpr": float(np.mean([r.fpr() for r in replays[kind]])),
        }
    return {
        "attacks": attacks,
        "per_target": per_target,
        "replays": replays,
        "seconds": {"detector": t_detect, "lift": time.perf_counter() - t0 - t_detect},
        "config": {**replace(cfg, bpr=None).__dict__, "bpr": cfg.bpr.__dict__, "n_fake": n_fake},
    }
