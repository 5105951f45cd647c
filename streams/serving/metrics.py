"""Prometheus metrics of the scorer process (meanings, labels and buckets: docs/metrics.md).

A module of its own, so that only the scorer exports them (the worker imports `streams.worker.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "RECOMMENDATIONS",
    "SCORING_LATENCY",
    "REJECTED",
    "MODEL_SWAPS",
    "SERVING_VERSION",
    "FRESHNESS",
    "SOURCES",
    "REJECT_REASONS",
    "init_labels",
]

SOURCES = ("profile", "model", "popularity")
REJECT_REASONS = ("bad_request", "overloaded", "timeout", "no_model")

RECOMMENDATIONS = Counter("advrec_recommendations_total", "Recommendation lists served, by source.", ["source"])
SCORING_LATENCY = Histogram(
    "advrec_scoring_latency_seconds",
    "Time from receiving a request to having its response ready.",
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
REJECTED = Counter("advrec_scorer_requests_rejected_total", "Requests answered with an error, by reason.", ["reason"])
MODEL_SWAPS = Counter("advrec_model_swaps_total", "Times the scorer atomically replaced the model it serves.")
SERVING_VERSION = Gauge("advrec_serving_model_version", "MLflow version of the served model, 0 for popularity only.")
FRESHNESS = Histogram(
    "advrec_freshness_seconds",
    "Time from an event's arrival in Kafka to the first recommendation of a model trained on it.",
    buckets=(10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
)


def init_labels() -> None:
    """Create every known label value at 0, so rate() sees the first increase."""
    for source in SOURCES:
        RECOMMENDATIONS.labels(source)
    for reason in REJECT_REASONS:
        REJECTED.labels(reason)
