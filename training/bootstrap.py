"""One training round from a history file, for a deployment's first champion (`advrec train --from-file`).

Pure: takes an interaction frame, returns the model and its report (the same report the stream
trainer hands to the registry: accuracy, FGSM, optional poisoning probe, eval_users, and the
champion's numbers on the same split when a champion model is given). It must never touch MLflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.evaluation import Split, evaluate, leave_last_out, poisoning_lift
from training.models import build_model
from training.offline import report_model

__all__ = ["bandwagon_attack", "bootstrap_round"]


def bandwagon_attack(
    train: pd.DataFrame, share: float = 0.05, n_targets: int = 5, filler: int = 30, seed: int = 0
) -> tuple[pd.DataFrame, list[str]]:
    """Add fake users who rate a few unpopular targets plus popular filler items (as benchmarks/quality.py)."""
    rng = np.random.default_rng(seed)
    counts = train["item"].value_counts()
    pool = counts[(counts >= 5) & (counts <= 20)].index
    if len(pool) < n_targets:
        pool = counts.index[len(counts) // 2 :]
    targets = sorted(rng.choice(pool, min(n_targets, len(pool)), replace=False))
    popular = counts.index[:50].to_numpy()
    n_fake = max(1, round(share * train["user"].nunique()))
    ts = float(train["timestamp"].max()) + 1 if train["timestamp"].notna().any() else np.nan
    rows = [
        (f"fake{f}", str(item), 5.0, ts)
        for f in range(n_fake)
        for item in [*targets, *rng.choice(popular, min(filler, len(popular)), replace=False)]
    ]
    fake = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    return pd.concat([train, fake], ignore_index=True), [str(t) for t in targets]


def bootstrap_round(
    frame: pd.DataFrame,
    kind: str = "apr",
    epochs: int | None = None,
    seed: int = 0,
    poison: bool = True,
    champion: Any | None = None,
) -> tuple[Any, dict[str, Any], Split]:
    """Split leave-last-out, train, evaluate (and probe poisoning); compare the champion on the same split."""
    split = leave_last_out(frame, seed=seed)
    model = build_model(kind, seed=seed).fit(split.train, epochs=epochs)
    report: dict[str, Any] = report_model(model, split, seed=seed)
    report["eval_users"] = int(len(split.test))
    if poison:
        poisoned, targets = bandwagon_attack(split.train, seed=seed)
        bad = build_model(kind, seed=seed).fit(poisoned, epochs=epochs)
        report["poisoning"] = poisoning_lift(model, bad, list(split.test["user"]), targets, k=50)
    if champion is not None:
        report["champion"] = dict(evaluate(champion, split))
    return model, report, split
