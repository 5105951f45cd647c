"""Prometheus metrics of the registry side of the trainer (meanings and labels: docs/metrics.md).

Created on first use by `registry_metrics()`, so that only the process that decides promotions
(the trainer) exports them: the champion's version is a global fact, exported by one process.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from registry.promotion import Decision, gate_numbers
from training.stream.metrics import MODEL_HR_AT_10, MODEL_NDCG_AT_10

__all__ = ["RegistryMetrics", "registry_metrics", "ALIASES", "DECISIONS"]

DECISIONS = ("promote", "hold", "reject")
ALIASES = ("champion", "challenger")


@dataclass
class RegistryMetrics:
    """The trainer's promotion metrics, with the champion's age computed at scrape time."""

    promotions: Counter
    champion_version: Gauge
    champion_age: Gauge
    hr_at_10: Gauge
    ndcg_at_10: Gauge
    champion_since: float | None = None

    def set_champion(self, version: int | None, since: float | None) -> None:
        """Record the current champion (None: there is none) and when its alias was moved."""
        self.champion_version.set(version or 0)
        self.champion_since = since if version else None

    def set_accuracy(self, alias: str, hr: float | None, ndcg: float | None) -> None:
        """Set an alias's HR@10 / NDCG@10; None removes the alias's series."""
        for gauge, value in ((self.hr_at_10, hr), (self.ndcg_at_10, ndcg)):
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(alias)
            else:
                gauge.labels(alias).set(value)

    def record_round(
        self, decision: Decision, numbers: Mapping[str, float], champion_report: Mapping[str, Any] | None
    ) -> None:
        """Count a round's decision and set the accuracy of the alias(es) it leaves in place."""
        self.promotions.labels(decision.action).inc()
        if decision.promoted:
            self.set_accuracy("champion", numbers["hr@10"], numbers["ndcg@10"])
            self.set_accuracy("challenger", None, None)
            return
        self.set_accuracy("challenger", numbers["hr@10"], numbers["ndcg@10"])
        if champion_report:
            old = gate_numbers(champion_report)
            self.set_accuracy("champion", old["hr@10"], old["ndcg@10"])

    def age(self, now: Callable[[], float] = time.time) -> float:
        """Seconds since the champion alias last moved; 0 without a champion."""
        return max(0.0, now() - self.champion_since) if self.champion_since else 0.0


_METRICS: RegistryMetrics | None = None


def registry_metrics() -> RegistryMetrics:
    """The process's registry metrics, created (every label value at 0) on the first call."""
    global _METRICS
    if _METRICS is None:
        promotions = Counter("advrec_promotions_total", "Promotion decisions, one per successful round.", ["decision"])
        for decision in DECISIONS:
            promotions.labels(decision)
        metrics = RegistryMetrics(
            promotions=promotions,
            champion_version=Gauge("advrec_champion_version", "MLflow version of the current champion, 0 if none."),
            champion_age=Gauge("advrec_champion_age_seconds", "Seconds since the champion alias was last moved."),
            # Defined once, in training/stream/metrics.py: the trainer exports alias="latest" on the same gauges.
            hr_at_10=MODEL_HR_AT_10,
            ndcg_at_10=MODEL_NDCG_AT_10,
        )
        metrics.champion_age.set_function(metrics.age)
        _METRICS = metrics
    return _METRICS
