"""Kafka adapter of the producer: sends event dicts to the `events` topic, keyed by user_id."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

__all__ = ["produce_events", "send_raw"]


def _producer(bootstrap: str):
    from kafka import KafkaProducer

    # acks=all so "sent" means "in the log"; linger + large batches for replay throughput.
    return KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024, client_id="advrec-producer"
    )


def produce_events(
    bootstrap: str,
    topic: str,
    events: Iterable[dict],
    rate: float = 0.0,
    limit: int | None = None,
    progress: bool = False,
) -> int:
    """Send events (key = user_id, JSON value) at `rate` events/s (0 = as fast as possible); return the count."""
    producer = _producer(bootstrap)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=limit, unit="ev", desc=f"→ {topic}", mininterval=0.5)
    sent = 0
    started = time.monotonic()
    try:
        for event in events:
            if limit is not None and sent >= limit:
                break
            producer.send(topic, key=str(event["user_id"]).encode(), value=json.dumps(event).encode())
            sent += 1
            if bar is not None and sent % 1000 == 0:
                bar.update(1000)
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.002:
                    time.sleep(ahead)
        producer.flush()
    finally:
        if bar is not None:
            bar.update(sent % 1000)
            bar.close()
        producer.close()
    return sent


def send_raw(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Send raw (key, value) byte records as they are: for tests and hand-made bad input."""
    producer = _producer(bootstrap)
    count = 0
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count
