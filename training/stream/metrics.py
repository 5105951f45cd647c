"""Prometheus metrics of the trainer process (names, labels and buckets: docs/metrics.md).

The adapter between `training.stream.trainer.TrainerMetrics` and prometheus_client, defined once on
the default registry (the registry's champion/challenger series reuse the two model gauges). The
pure loop must never import this module.
"""

from __future__ import annotations

import math

from prometheus_client import Counter, Gauge, Histogram

from training.stream.trainer import RoundResult, TrainerMetrics

__all__ = [
    "ROUNDS",
    "ROUND_SECONDS",
    "SAMPLES",
    "BATCHES_CONSUMED",
    "BATCHES_PENDING",
    "MODEL_HR_AT_10",
    "MODEL_NDCG_AT_10",
    "PrometheusTrainerMetrics",
    "OUTCOMES",
]

OUTCOMES = ("success", "failure")

ROUNDS = Counter("advrec_training_rounds_total", "Training rounds finished, by outcome.", ["outcome"])
ROUND_SECONDS = Histogram(
    "advrec_training_round_seconds",
    "Wall time of a training round, both outcomes.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
SAMPLES = Counter("advrec_training_samples_total", "Interactions trained on, counted when a round succeeds.")
BATCHES_CONSUMED = Counter("advrec_batches_consumed_total", "Window batches taken into a round.")
BATCHES_PENDING = Gauge("advrec_batches_pending", "Written window batches not yet consumed by the trainer.")
MODEL_HR_AT_10 = Gauge("advrec_model_hr_at_10", "HR@10 of a model on the latest round's evaluation set.", ["alias"])
MODEL_NDCG_AT_10 = Gauge(
    "advrec_model_ndcg_at_10", "NDCG@10 of a model on the latest round's evaluation set.", ["alias"]
)


class PrometheusTrainerMetrics(TrainerMetrics):
    """Reports the training loop to the metrics above; `latest` is the model the last round trained."""

    def __init__(self) -> None:
        for outcome in OUTCOMES:
            ROUNDS.labels(outcome)

    def round_done(self, result: RoundResult) -> None:
        """Count the round, its time and samples; export the latest model's accuracy."""
        ROUNDS.labels(result.outcome).inc()
        ROUND_SECONDS.observe(result.seconds)
        if result.outcome == "success":
            SAMPLES.inc(result.samples)
            for gauge, key in ((MODEL_HR_AT_10, "hr@10"), (MODEL_NDCG_AT_10, "ndcg@10")):
                value = result.report.get(key)
                if value is not None and math.isfinite(value):
                    gauge.labels("latest").set(value)

    def batches_consumed(self, n: int) -> None:
        """Count batches taken into a round."""
        BATCHES_CONSUMED.inc(n)

    def pending(self, n: int) -> None:
        """Set the pending-batches gauge."""
        BATCHES_PENDING.set(n)
