"""Kafka adapter of the producer: sends event dicts to the `events` topic, keyed by user_id.

One event per message is the contract's default. With `envelope=N` it sends envelopes instead: a
message whose value is a JSON array of up to N events, all of users whose key hashes to the
partition the envelope is sent to (as Kafka's default partitioner would place each alone), so a
user's events still all land on one partition, in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from streams.kafka.partitioner import partition_of

__all__ = ["produce_events", "send_raw"]


def _producer(bootstrap: str) -> _CheckedProducer:
    from kafka import KafkaProducer

    # acks=all so "sent" means "in the log"; linger + large batches for replay throughput.
    return _CheckedProducer(
        KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024, client_id="advrec-producer"
        )
    )


class _CheckedProducer:
    """A KafkaProducer whose `flush` raises if any message sent before it was not delivered.

    kafka-python's own `flush` only waits: a send that failed for good (after its retries and
    delivery timeout) would be lost without a word, and the caller would count it as sent.
    """

    def __init__(self, producer) -> None:
        self.producer = producer
        self.failures: list[Exception] = []

    def send(self, topic: str, **kwargs):
        return self.producer.send(topic, **kwargs).add_errback(self.failures.append)

    def partitions_for(self, topic: str):
        return self.producer.partitions_for(topic)

    def flush(self) -> None:
        self.producer.flush()
        if self.failures:
            first, n = self.failures[0], len(self.failures)
            self.failures = []
            raise RuntimeError(f"{n} messages not delivered to Kafka; the first failed with {first!r}")

    def close(self) -> None:
        self.producer.close()


def produce_events(
    bootstrap: str,
    topic: str,
    events: Iterable[dict],
    rate: float = 0.0,
    limit: int | None = None,
    progress: bool = False,
    envelope: int = 1,
) -> int:
    """Send events (key = user_id, JSON value) at `rate` events/s (0 = as fast as possible); return the count.

    `envelope` > 1: send JSON arrays of up to that many events per message (see the module's doc).
    """
    producer = _producer(bootstrap)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=limit, unit="ev", desc=f"→ {topic}", mininterval=0.5)
    pack = _Envelopes(producer, topic, envelope) if envelope > 1 else None
    sent = 0
    started = time.monotonic()
    try:
        for event in events:
            if limit is not None and sent >= limit:
                break
            key = str(event["user_id"]).encode()
            if pack is None:
                producer.send(topic, key=key, value=json.dumps(event).encode())
            else:
                pack.add(key, event)
            sent += 1
            if bar is not None and sent % 1000 == 0:
                bar.update(1000)
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0.002:
                    time.sleep(ahead)
        if pack is not None:
            pack.flush()
        producer.flush()
    finally:
        if bar is not None:
            bar.update(sent % 1000)
            bar.close()
        producer.close()
    return sent


class _Envelopes:
    """Events gathered per partition (of their user's key) and sent as JSON arrays of `size`."""

    def __init__(self, producer, topic: str, size: int) -> None:
        self.producer, self.topic, self.size = producer, topic, size
        self.partitions = sorted(producer.partitions_for(topic))
        self.open: dict[int, list[dict]] = {}

    def add(self, key: bytes, event: dict) -> None:
        partition = self.partitions[partition_of(key, len(self.partitions))]
        events = self.open.setdefault(partition, [])
        events.append(event)
        if len(events) >= self.size:
            self._send(partition)

    def flush(self) -> None:
        for partition in list(self.open):
            self._send(partition)

    def _send(self, partition: int) -> None:
        events = self.open.pop(partition)
        if events:
            key = str(events[0]["user_id"]).encode()
            self.producer.send(self.topic, key=key, value=json.dumps(events).encode(), partition=partition)


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
