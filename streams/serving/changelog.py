"""The scorer's read-only view of the worker's tables: a group-less tail of their changelog topics.

Seen items per user come from the `profiles` changelog and the popularity ranking from the
`item-popularity` changelog. Read without a consumer group (every scorer reads everything), so the
scorer never writes the worker's tables.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from streams.kafka.topics import partitions_of
from streams.serving.core import Popularity

__all__ = ["ChangelogView"]


class ChangelogView:
    """A read-only, group-less tail of the worker's profile and popularity changelog topics."""

    def __init__(self, bootstrap: str, profiles_topic: str, popularity_topic: str) -> None:
        self.bootstrap, self.profiles_topic, self.popularity_topic = bootstrap, profiles_topic, popularity_topic
        self.items: dict[str, frozenset[str]] = {}
        self.counts: dict[str, float] = {}
        self.records = 0
        self._popularity_dirty = False

    def seen(self, user_id: str) -> frozenset[str] | None:
        """Items in the user's profile, or None for a user without one."""
        return self.items.get(user_id)

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one changelog record into the view (a None value deletes the key)."""
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        try:
            data = json.loads(value) if value is not None else None
        except ValueError:
            return
        self.records += 1
        if topic == self.profiles_topic:
            if isinstance(data, dict):
                self.items[name] = frozenset(str(i) for i in data.get("items") or ())
            else:
                self.items.pop(name, None)
        else:
            if isinstance(data, (int, float)):
                self.counts[name] = float(data)
            else:
                self.counts.pop(name, None)
            self._popularity_dirty = True

    def popularity(self) -> Popularity | None:
        """The popularity ranking if it changed since the last call, else None."""
        if not self._popularity_dirty:
            return None
        self._popularity_dirty = False
        return Popularity.from_counts(self.counts)

    async def run(self, on_popularity: Callable[[Popularity], None], refresh_s: float = 5.0) -> None:
        """Tail both topics from the beginning, forever; re-checks for topics that do not exist yet."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="advrec-scorer-changelogs",
        )
        await consumer.start()
        try:
            assigned: set[str] = set()
            last_check = last_popularity = 0.0
            while True:
                now = time.monotonic()
                if assigned != {self.profiles_topic, self.popularity_topic} and now - last_check > refresh_s:
                    last_check = now
                    partitions = {
                        t: await partitions_of(consumer, t) for t in (self.profiles_topic, self.popularity_topic)
                    }
                    wanted = {t for t, ps in partitions.items() if ps}
                    if wanted != assigned:
                        consumer.assign([TopicPartition(t, p) for t in wanted for p in partitions[t]])
                        assigned = wanted
                if not assigned:
                    await asyncio.sleep(1.0)
                    continue
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    for message in messages:
                        self.apply(tp.topic, message.key, message.value)
                if now - last_popularity > refresh_s:
                    last_popularity = now
                    ranking = self.popularity()
                    if ranking is not None:
                        on_popularity(ranking)
        finally:
            await consumer.stop()
