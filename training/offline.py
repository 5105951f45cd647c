"""Offline comparison of the recommenders on one interaction frame: split, train, evaluate.

Shared by `advrec eval-model` and `benchmarks/quality.py` so both report the same numbers.
Pure: takes a DataFrame, returns a dict; it must never print or read files (the callers do), nor
name model classes by kind (`training.models.build_model` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.evaluation import Split, evaluate, evaluate_as_served, leave_last_out, robustness
from training.models import APRRecommender, BPRRecommender, build_model

__all__ = ["report_model", "eval_models"]


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def report_model(model: BPRRecommender, split: Split, seed: int = 0, served: bool = False) -> dict[str, Any]:
    """Accuracy, FGSM robustness, epoch and training times (APR: also of its adversarial epochs), settings.

    `served`: accuracy and robustness of the model as the scorer serves it (`evaluate_as_served`)."""
    out: dict[str, Any] = dict(evaluate_as_served(model, split) if served else evaluate(model, split))
    out["fgsm"] = robustness(model, split, seed=seed, served=served)
    out["epochs"] = len(model.epoch_seconds)
    cfg = model.config
    adversarial_from = int(round(cfg.warmup * out["epochs"])) if isinstance(model, APRRecommender) else None
    # Wall time, and this thread's CPU time (what a shared machine's other processes do not inflate).
    for clock, series in (("", model.epoch_seconds), ("cpu_", model.epoch_cpu_seconds)):
        out[f"epoch_{clock}seconds"] = _mean(series)
        out[f"train_{clock}seconds"] = float(sum(series))
        if adversarial_from is not None:
            out[f"adv_epoch_{clock}seconds"] = _mean(series[adversarial_from:])
    if isinstance(model, APRRecommender):
        out.update(eps=cfg.eps, reg_adv=cfg.reg_adv, eps_mode=cfg.eps_mode, warmup=cfg.warmup)
    out.update(dim=cfg.dim, lr=cfg.lr, reg=cfg.reg)
    return out


def eval_models(
    interactions: pd.DataFrame,
    kinds: tuple[str, ...] = ("bpr", "apr"),
    epochs: int | None = None,
    seed: int = 0,
    **overrides: Any,
) -> dict[str, dict[str, Any]]:
    """Split leave-last-out, train each kind with the same epoch budget and seed, report each."""
    split = leave_last_out(interactions, seed=seed)
    report = {}
    for kind in kinds:
        model = build_model(kind, seed=seed, **overrides).fit(split.train, epochs=epochs)
        report[kind] = report_model(model, split, seed=seed)
    return report
