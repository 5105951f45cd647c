"""A group-less tail of topics: every record from the beginning, then new ones as they come, forever.

The pattern for state that every process must read while one process writes it (a table's
changelog, `fraud.flags`): no consumer group, so every reader sees every partition, and a reader
never takes partitions from anyone. Topics that do not exist yet are looked for again every
`refresh_s` seconds. Records are handed to `apply(topic, key, value)` in partition order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from streams.kafka.topics import partitions_of

__all__ = ["tail_topics"]


async def tail_topics(
    bootstrap: str,
    topics: list[str],
    apply: Callable[[str, bytes | None, bytes | None], None],
    client_id: str,
    on_batch: Callable[[], None] | None = None,
    refresh_s: float = 5.0,
    from_end: bool = False,
) -> None:
    """Read `topics` group-less with aiokafka until cancelled; `on_batch` runs after each fetch."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest" if from_end else "earliest",
        client_id=client_id,
    )
    await consumer.start()
    try:
        assigned: dict[str, set[int]] = {}
        last_check = 0.0
        while True:
            now = time.monotonic()
            if set(assigned) != set(topics) and now - last_check > refresh_s:
                last_check = now
                found = {t: await partitions_of(consumer, t) for t in topics}
                found = {t: ps for t, ps in found.items() if ps}
                if found != assigned:
                    tps = [TopicPartition(t, p) for t, ps in found.items() for p in sorted(ps)]
                    consumer.assign(tps)
                    new = [tp for tp in tps if tp.partition not in assigned.get(tp.topic, set())]
                    if from_end and new:
                        await consumer.seek_to_end(*new)
                    assigned = found
            if not assigned:
                await asyncio.sleep(min(1.0, refresh_s))
                continue
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, messages in batches.items():
                for message in messages:
                    apply(tp.topic, message.key, message.value)
            if on_batch is not None:
                on_batch()
    finally:
        await consumer.stop()
