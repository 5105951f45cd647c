"""Kafka's default partitioner, as a function: which partition a key lands on, and a key for a partition.

The worker's tables are written with the producer's default partitioner (murmur2 of the key), so
a user's state lives on the partition that carries their events; these functions let the stream
code ask the same question without a producer.
"""

from __future__ import annotations

import functools

from kafka.partitioner.default import murmur2

__all__ = ["partition_of", "watermark_key"]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) picks for `key`."""
    return _positive_murmur2(key) % partitions


@functools.lru_cache(maxsize=1 << 17)
def _positive_murmur2(key: bytes) -> int:
    # kafka-python's murmur2 is pure Python (1.4 µs a key, 0.2 cached); the same user and item ids come back all
    # the time (each batch's profile writes and item deltas).
    return murmur2(key) & 0x7FFFFFFF


def watermark_key(partition: int, partitions: int) -> bytes:
    """A key that the default partitioner maps to `partition` (its checkpoint lands beside its users)."""
    n = 0
    while True:
        key = f"\x00watermark-{partition}-{n}".encode()
        if partition_of(key, partitions) == partition:
            return key
        n += 1
