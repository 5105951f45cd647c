"""One training round from a history file, for a deployment's first champion (`advrec train --from-file`).

Pure: takes an interaction frame, returns the model and its report (the same report the stream
trainer hands to the registry: accuracy, FGSM, optional poisoning probe, eval_users, and, when a
champion model is given, the champion's numbers on the same split and the exposure audit of the
two; every test user of a file is taken as trusted). The poisoning probe's attack is a
`ProbeAttack`: by default a bandwagon attack made by the project's one attack generator
(`streams.sources.attacks`); the learned attacker (`streams.adversary.red_team.gan_probe`) is passed
in by the composition root (`training.main`), since `training` sits below `streams.adversary`. This
module must never generate attack profiles itself, nor touch MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from streams.sources.attacks import AttackPlan, parse_inject, plan_attack, summarize
from training.evaluation import (
    Split,
    evaluate_as_served,
    leave_last_out,
    poisoning_lift,
    popularity_baseline,
    robustness,
)
from training.exposure import audit_sample, exposure_audit
from training.models import build_model
from training.offline import report_model

__all__ = ["ProbeAttack", "bandwagon_probe", "probe_targets", "attack_rows", "bootstrap_round"]

# The red-team probe's attack: `attack(frame, share=, n_targets=, seed=)` -> (the frame plus fake users
# who push the targets, the targets). Implementations: `bandwagon_probe` here, `gan_probe` in
# streams.adversary.red_team (the learned attacker).
ProbeAttack = Callable[..., tuple[pd.DataFrame, list[str]]]


def probe_targets(train: pd.DataFrame, n_targets: int, rng: np.random.Generator) -> list[str]:
    """Unpopular items to push: 5 to 20 interactions (else the less popular half), seeded."""
    counts = train["item"].astype(str).value_counts()
    pool = counts[(counts >= 5) & (counts <= 20)].index
    if len(pool) < n_targets:
        pool = counts.index[len(counts) // 2 :]
    return sorted(str(t) for t in rng.choice(pool, min(n_targets, len(pool)), replace=False))


def bandwagon_probe(
    train: pd.DataFrame, share: float = 0.05, n_targets: int = 5, filler: int = 30, seed: int = 0
) -> tuple[pd.DataFrame, list[str]]:
    """The frame plus fake users (`share` of its users) who push `n_targets` unpopular items, and the targets.

    Each fake profile is a `bandwagon` attack of `streams.sources.attacks`: the targets and the 3
    most popular items at the top rating, plus random filler rated like the population, `filler`
    items besides the targets in all.
    """
    targets = probe_targets(train, n_targets, np.random.default_rng(seed))
    population = summarize(train)
    n_selected = min(3, filler)
    n_filler = max(0, min(filler - n_selected, len(population.items) - len(targets) - n_selected))
    spec = parse_inject(
        f"bandwagon:{share}:{n_filler / max(len(population.items), 1)}",
        targets=tuple(targets),
        targets_per_attacker=len(targets),  # every fake user pushes every target
        n_selected=n_selected,
    )
    plan = plan_attack(spec, population, seed=seed)
    return pd.concat([train, attack_rows(plan)], ignore_index=True), targets


def attack_rows(plan: AttackPlan) -> pd.DataFrame:
    """A plan's events as interaction rows (user, item, rating, timestamp), to append to a training frame."""
    return pd.DataFrame(
        [(e["user_id"], e["item_id"], e["value"], e["ts"]) for e in plan.events()],
        columns=["user", "item", "rating", "timestamp"],
    )


def bootstrap_round(
    frame: pd.DataFrame,
    kind: str = "apr",
    epochs: int | None = None,
    seed: int = 0,
    poison: bool = True,
    champion: Any | None = None,
    champion_version: int | None = None,
    audit_users: int = 500,
    probe_attack: ProbeAttack = bandwagon_probe,
) -> tuple[Any, dict[str, Any], Split]:
    """Split leave-last-out, train, evaluate (and probe poisoning with `probe_attack`); compare the champion."""
    split = leave_last_out(frame, seed=seed)
    model = build_model(kind, seed=seed).fit(split.train, epochs=epochs)
    # the gate compares models as served: accuracy, robustness and the probe's lift
    report: dict[str, Any] = report_model(model, split, seed=seed, served=True)
    report["eval_users"] = int(len(split.test))
    report["popularity"] = popularity_baseline(split)
    if poison:
        poisoned, targets = probe_attack(split.train, share=0.05, n_targets=5, seed=seed)
        bad = build_model(kind, seed=seed).fit(poisoned, epochs=epochs)
        report["poisoning"] = poisoning_lift(model, bad, list(split.test["user"]), targets, k=50, histories=split.train)
    if champion is not None:
        report["champion"] = {
            **evaluate_as_served(champion, split),
            "fgsm": robustness(champion, split, seed=seed, served=True),
            "version": champion_version,
        }
        known = set(champion.users.ids)
        users = audit_sample([u for u in split.test["user"] if u in known], audit_users, seed)
        newcomers = set(split.train["user"].astype(str)) - known
        report["exposure"] = exposure_audit(model, champion, users, split.train, newcomers, split.train)
    return model, report, split
