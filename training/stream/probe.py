"""The red-team probe of a round's recipe: the same round trained again with a seeded attack injected.

The probe copies the round's new rows, adds an attack, trains the round's starting model on that
copy exactly as the round trained its challenger, and measures how far the attack lifted its
targets among trusted users (HR@50, poisoned minus clean). The attack is a `ProbeAttack`: by
default a bandwagon attack made by the project's one attack generator
(`training.bootstrap.bandwagon_probe` over `streams.sources.attacks`); with
`ADVREC_PROBE_ATTACK=gan` the composition root passes the learned attacker
(`streams.adversary.red_team.gan_probe`, a generator trained on the round's new rows). It costs a
second round's training (plus, for `gan`, the generator's), so the trainer runs it every few rounds
and carries the latest result (`due`). Pure: the caller passes the training step and the attack;
it must never log, save or touch MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from training.bootstrap import ProbeAttack, bandwagon_probe
from training.evaluation import poisoning_lift

__all__ = ["due", "red_team_probe", "PROBE_K"]

PROBE_K = 50


def due(round_no: int, last: dict[str, Any], every: int) -> bool:
    """Whether round `round_no` runs the probe: no result yet, or the latest is `every` rounds old."""
    return every > 0 and (not last or round_no - int(last.get("round", -(10**9))) >= every)


def red_team_probe(
    train: Callable[[pd.DataFrame], Any],
    clean: Any,
    new: pd.DataFrame,
    users: list[str],
    share: float,
    n_targets: int,
    seed: int,
    round_no: int,
    attack: ProbeAttack = bandwagon_probe,
    kind: str = "bandwagon",
    histories: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Train `train(new + attack)` and measure the attack's target lift over `clean` among `users`.

    `attack` writes the poisoned copy; `kind` names it in the result, beside the seconds it took;
    `histories` (the users' profiles): both models serve the users by them, as the scorer does."""
    started = time.perf_counter()
    poisoned, targets = attack(new, share=share, n_targets=n_targets, seed=seed * 7919 + round_no)
    attack_seconds = time.perf_counter() - started
    bad = train(poisoned)
    lift = poisoning_lift(clean, bad, users, targets, k=PROBE_K, histories=histories)
    return {
        **lift,
        "attack": kind,
        "attack_seconds": attack_seconds,
        "targets": targets,
        "share": share,
        "users": len(users),
        "round": round_no,
        "seconds": time.perf_counter() - started,
    }
