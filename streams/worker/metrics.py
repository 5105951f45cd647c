"""Prometheus metrics of the stream worker (meanings and labels: docs/metrics.md).

Defined once here, on the default registry, so every module of a process shares them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "CONSUMER_LAG",
    "init_label_values",
    "EVENTS_PROCESSED",
    "EVENTS_DUPLICATE",
    "DEAD_LETTERS",
    "EVENT_LATENCY",
    "BATCH_SECONDS",
    "BATCH_SIZE",
    "ITEM_UPDATES",
    "STAGE_EVENTS",
    "STAGES",
    "WINDOWS_WRITTEN",
    "WINDOW_RETRIES",
    "WINDOW_ROWS",
    "FRAUD_FLAGS",
    "FRAUD_CLEARED",
    "FRAUD_LABELS",
    "FRAUD_SCORE",
    "FRAUD_FLAGGED_USERS",
    "FRAUD_FULL_RESCORE_SECONDS",
]

EVENTS_PROCESSED = Counter(
    "advrec_events_processed_total", "Valid events applied to profiles, by event type.", ["type"]
)
EVENTS_DUPLICATE = Counter(
    "advrec_events_duplicate_total", "Valid events skipped because they were applied before (redelivery or re-send)."
)
DEAD_LETTERS = Counter("advrec_dead_letters_total", "Inputs sent to the dead-letter topic, by reason code.", ["reason"])
EVENT_LATENCY = Histogram(
    "advrec_event_processing_latency_seconds",
    "Time from an event's append to Kafka to the end of its batch's processing.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
BATCH_SECONDS = Histogram(
    "advrec_ingest_batch_seconds",
    "Wall time to process one batch of events.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_SIZE = Histogram(
    "advrec_ingest_batch_events", "Events per processed batch.", buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000)
)
CONSUMER_LAG = Gauge(
    "advrec_consumer_lag",
    "Messages behind on an assigned input partition: high watermark minus committed offset.",
    ["topic", "partition"],
)


def init_label_values() -> None:
    """Create every known label value at 0, so rate() sees the first increase (docs/metrics.md)."""
    from streams.contract.records import EVENT_TYPES
    from streams.worker.validation import REASON_CODES

    for kind in EVENT_TYPES:
        EVENTS_PROCESSED.labels(kind)
    from streams.worker.ingest import INTERNAL_ERROR

    for code in (*REASON_CODES, INTERNAL_ERROR):
        DEAD_LETTERS.labels(code)
    from streams.worker.catalog import CATALOG_REASON_CODES

    for code in CATALOG_REASON_CODES:
        CATALOG_DEAD_LETTERS.labels(code)
    for action in ("written", "deleted"):
        CATALOG_UPDATES.labels(action)


# --- item table ---
STAGE_EVENTS = Counter(
    "advrec_stage_events_total",
    "Valid events taken in by each agent downstream of ingest (each once), by stage: a stage that lags "
    "behind advrec_events_processed_total is behind ingest.",
    ["stage"],
)
STAGES = ("fraud", "items", "windows")  # each created at 0 by its agent: "fraud" and "windows" only where installed
ITEM_UPDATES = Counter("advrec_item_updates_total", "Item-table rows written (one per item per batch of deltas).")

# --- catalog ---
CATALOG_UPDATES = Counter(
    "advrec_catalog_updates_total", "Catalog-table changes from the `catalog` topic, by action.", ["action"]
)
CATALOG_DEAD_LETTERS = Counter(
    "advrec_catalog_dead_letters_total", "Catalog records sent to the dead-letter topic, by reason code.", ["reason"]
)

# --- window sink ---
WINDOWS_WRITTEN = Counter("advrec_windows_written_total", "Closed windows written as training batches.")
WINDOW_RETRIES = Counter(
    "advrec_window_retries_total", "Failed attempts to write or announce a window (retried until they succeed)."
)
WINDOW_ROWS = Histogram(
    "advrec_window_rows",
    "Rows (interactions) per written window.",
    buckets=(100, 1000, 10000, 50000, 100000, 500000, 1000000, 5000000),
)


# Whether this worker's valid events are meant to reach a fraud detector (in it or in `advrec
# detector`): the alert on a detector that takes in nothing needs to know where none is meant to run.
FRAUD_DETECTION_ON = Gauge(
    "advrec_fraud_detection_on",
    "1 where this worker sends its valid events to fraud detection (ADVREC_FRAUD_ENABLED), 0 where detection is off.",
)

# Fraud detector (label values of FRAUD_FLAGS: streams.fraud.suspicion.PRIMARY_REASONS, created at 0 by the agent)
FRAUD_FLAGS = Counter("advrec_fraud_flags_total", "Users newly flagged, by the verdict's primary reason.", ["reason"])
FRAUD_LABELS = Counter("advrec_fraud_labels_total", "Analysts' labels folded in, by label.", ["label"])
FRAUD_CLEARED = Counter("advrec_fraud_cleared_total", "Flagged users whose verdict fell below the threshold again.")
FRAUD_SCORE = Histogram(
    "advrec_fraud_score",
    "Score of every verdict the fraud detector emits.",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)
FRAUD_FLAGGED_USERS = Gauge(
    "advrec_fraud_flagged_users", "Users flagged now (exported by the worker that runs the detector)."
)
FRAUD_FULL_RESCORE_SECONDS = Gauge(
    "advrec_fraud_full_rescore_seconds",
    "Seconds the detector's last full rescore of every user took (its loop waits meanwhile).",
)
