"""Announcing alias moves on Kafka: a `ModelUpdate` record on `model.updates`, best effort.

The registry calls `announce` after moving `champion`, with the `notify` callable it was given
(an `UpdatePublisher` in production, a list's `append` in tests); scorers also poll the alias, so
a lost announcement only delays a swap. It must never raise into the registry: failures are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streams.contract.records import ModelUpdate, encode

__all__ = ["model_update", "announce", "UpdatePublisher"]

log = logging.getLogger(__name__)


def model_update(model_name: str, version: int, alias: str, action: str, ts: float) -> dict:
    """The announcement of an alias move, as the fields of a `ModelUpdate`."""
    return {"model_name": model_name, "version": version, "alias": alias, "action": action, "ts": ts}


def announce(notify: Callable[[dict], None] | None, update: dict) -> None:
    """Hand an update to `notify` (nothing without one); log, never raise, when it fails."""
    if notify is None:
        return
    try:
        notify(update)
    except Exception as exc:  # noqa: BLE001 - best effort: the scorers also poll the alias
        log.warning("could not announce %s of version %d: %s", update["action"], update["version"], exc)


class UpdatePublisher:
    """A callable that sends one `ModelUpdate` per call to the updates topic (key = model name)."""

    def __init__(
        self, bootstrap: str, topic: str = "model.updates", replication_factor: int = 1, timeout_s: float = 10.0
    ) -> None:
        self.bootstrap, self.topic, self.replication_factor, self.timeout_s = (
            bootstrap,
            topic,
            replication_factor,
            timeout_s,
        )

    def __call__(self, update: dict) -> None:
        """Publish the update; log (never raise) when the broker cannot be reached."""
        try:
            from kafka import KafkaProducer

            from streams.kafka.topics import ensure_topics

            # One partition: every scorer reads every update, in order.
            ensure_topics(self.bootstrap, [self.topic], 1, self.replication_factor)
            producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                linger_ms=0,
                request_timeout_ms=int(self.timeout_s * 1000),
                max_block_ms=int(self.timeout_s * 1000),
            )
            try:
                record = ModelUpdate(**update)
                producer.send(self.topic, key=record.model_name.encode(), value=encode(record))
                producer.flush(timeout=self.timeout_s)
            finally:
                producer.close(timeout=self.timeout_s)
            log.info(
                "announced %s of %s version %s on %s",
                update["action"],
                update["model_name"],
                update["version"],
                self.topic,
            )
        except Exception as exc:  # noqa: BLE001 - best effort by contract
            log.warning("could not publish %s to %s on %s: %s", update, self.topic, self.bootstrap, exc)
