"""The whole measurement of issue 17: train the attacker, measure every attack, play the hardening game.

`run(ratings, ...)` returns (the summary printed by `advrec eval-attack`, the details): the summary
is {"attacks": {kind: {"lift", "recall"}}, "hardened": {"recall_gan", "fpr"}} for every heuristic
push kind and `gan`; the details hold standard errors, per-target figures, the baselines (the
untrained generator `template`: AUSH's sampling, what training starts from; optionally `popular`
and `oracle`, free filler by popularity and by the surrogate, `streams.adversary.oracle`),
heuristic recall before and after hardening, the game's curves and the times.

The hardened detector starts from heuristic attacks of seeds `seed + 1000` (never measured on); it
is measured on fresh generated attacks of the game's own seeds and on the heuristic attacks of
the lift measurement (seeds `seed ...`), which it never trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from streams.adversary.evaluation import HEURISTICS, EvalConfig, eval_attack, heuristic_plans
from streams.adversary.game import GameConfig, play, replay_plan
from streams.adversary.learner import GanConfig, LearnedAttacker
from streams.adversary.matrix import RatingMatrix
from streams.adversary.oracle import SurrogateOracle

__all__ = ["run"]


def run(
    ratings: pd.DataFrame,
    size: float = 0.05,
    filler: float = 0.03,
    seed: int = 1,
    gan: GanConfig | None = None,
    evaluation: EvalConfig | None = None,
    game: GameConfig | None = None,
    on_round: Callable[[dict], None] | None = None,
    on_trained: Callable[[list[dict]], None] | None = None,
    template: bool = True,
    oracle: bool = False,
) -> tuple[dict, dict]:
    """(summary, details): see the module doc; `template=False` leaves the untrained baseline out (cheaper),
    `oracle=True` adds the free-filler baselines `popular` and `oracle` (`streams.adversary.oracle`)."""
    t0 = time.perf_counter()
    data = RatingMatrix.from_frame(ratings)
    gan = replace(gan or GanConfig(), attack_size=size, filler_size=filler, seed=seed)
    attacker = LearnedAttacker(data, gan)
    attacker.train(gan.steps)
    train_seconds = attacker.train_seconds
    if on_trained is not None:
        on_trained(attacker.history)
    baselines = {"template": LearnedAttacker(data, gan, surrogate=attacker.surrogate)} if template else {}
    if oracle:
        baselines["popular"] = SurrogateOracle(data, attacker.surrogate, size, filler, steps=0)
        baselines["oracle"] = SurrogateOracle(data, attacker.surrogate, size, filler)
    cfg = replace(evaluation or EvalConfig(), size=size, filler=filler, seed=seed)
    measured = eval_attack(ratings, attacker, cfg, baselines=baselines)
    replays = measured.pop("replays")
    t_game = time.perf_counter()
    start_examples = [
        replay_plan(ratings, p, seed + 1000) for p in heuristic_plans(ratings, size, filler, seed + 1000).values()
    ]
    targets = [row["target"] for row in measured["per_target"]]
    result = play(ratings, attacker, start_examples, {k: replays[k] for k in HEURISTICS}, targets, game, on_round)
    last = result.curves[-1]
    summary = {
        "attacks": {
            k: {"lift": v["lift"], "recall": v["recall"]} for k, v in measured["attacks"].items() if k not in baselines
        },
        "hardened": {"recall_gan": last["recall_gan"], "fpr": last["fpr"]},
    }
    details = {
        "data": {"users": data.n_users, "items": data.n_items, "ratings": int((data.R > 0).sum())},
        "size": size,
        "filler": filler,
        "seed": seed,
        **measured,
        "heuristic_recall": {
            "before": {k: measured["attacks"][k]["recall"] for k in HEURISTICS},
            "after_hardening": {k: last[f"recall_{k}"] for k in HEURISTICS},
        },
        "game": {"curves": result.curves, "training_attackers": result.detector.training_rows()},
        "generator": {
            "config": {k: v for k, v in gan.__dict__.items() if k != "surrogate"},
            "history": attacker.history,
        },
        "seconds": {
            **measured["seconds"],
            "generator_training": train_seconds,
            "generator_setup": attacker.setup_seconds,
            "game": time.perf_counter() - t_game,
            "total": time.perf_counter() - t0,
        },
    }
    return summary, details
