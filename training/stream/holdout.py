"""How a round judges its models: which pairs it holds out, and the numbers it computes on them.

Only trusted users (established, never flagged nor suspect: `streams.fraud.trust`) whose newest
pair is new this round and not yet trained are tested (a seeded sample of at most `eval_users`),
so a test pair is never trained before it is evaluated, and an attacker not yet flagged cannot
make a poisoned model look better by holding out its target. The challenger and the champion are
measured on the same split. Pure: it must never train, save or report anywhere; it only reads models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.evaluation import Split, evaluate_as_served, leave_last_out, popularity_baseline, robustness
from training.frames import is_in
from training.stream.cleaning import pair_keys

__all__ = ["holdout_split", "measure", "round_report"]


def holdout_split(
    model: Any,
    accumulated: pd.DataFrame,
    new: pd.DataFrame,
    negatives: int,
    eval_users: int,
    seed: int,
    round_no: int,
    trusted: set[str] | None = None,
) -> Split:
    """Leave-last-out on everything kept; test only trusted users whose newest pair is new and untrained."""
    split = leave_last_out(accumulated, n_negatives=negatives, seed=seed * 7919 + round_no)
    test = split.test
    fresh = is_in(pair_keys(test), pair_keys(new))
    u, i = model.users.lookup(test["user"]), model.items.lookup(test["item"])
    known = (u >= 0) & (i >= 0)
    trained = np.zeros(len(test), bool)
    trained[known] = model.seen.contains(u[known], i[known])
    allowed = test["user"].isin(trusted).to_numpy() if trusted is not None else np.ones(len(test), bool)
    keep = np.flatnonzero(fresh & ~trained & allowed)
    if len(keep) > eval_users:
        keep = np.sort(np.random.default_rng([seed, round_no]).choice(keep, eval_users, replace=False))
    return Split(split.train, test.iloc[keep].reset_index(drop=True), split.negatives[keep])


def measure(model: Any, split: Split, fgsm_eps: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Accuracy as served and FGSM robustness of a model on a split (the numbers the gate compares)."""
    report: dict[str, Any] = evaluate_as_served(model, split)
    report["fgsm"] = robustness(model, split, eps=tuple(fgsm_eps), seed=seed, served=True)
    return report


def round_report(model: Any, split: Split, fgsm_eps: tuple[float, ...], seed: int) -> dict[str, Any]:
    """Accuracy, FGSM robustness, popularity's HR@10/NDCG@10 on the same split, and the test-user count."""
    report = measure(model, split, fgsm_eps, seed)
    report["popularity"] = popularity_baseline(split)
    report["test_users"] = len(split.test)
    return report
