"""The scorer's read-only view of the worker's tables: a group-less tail of their changelog topics.

Seen items per user come from the `profiles` changelog and the popularity ranking from the
`item-popularity` changelog. Read without a consumer group (every scorer reads everything), so the
scorer never writes the worker's tables.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from streams.kafka.tail import tail_topics
from streams.serving.core import Popularity

__all__ = ["ChangelogView"]


class ChangelogView:
    """A read-only, group-less tail of the worker's profile and item changelog topics."""

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
            if isinstance(data, dict) and isinstance(data.get("events"), (int, float)):
                self.counts[name] = float(data["events"])  # the `items` table: ItemStats
            elif isinstance(data, (int, float)):
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
        """Tail both topics from the beginning, forever; hand over the popularity ranking when it changed."""
        last = 0.0

        def maybe_rank() -> None:
            nonlocal last
            now = time.monotonic()
            if now - last > refresh_s:
                last = now
                ranking = self.popularity()
                if ranking is not None:
                    on_popularity(ranking)

        await tail_topics(
            self.bootstrap,
            [self.profiles_topic, self.popularity_topic],
            self.apply,
            "advrec-scorer-changelogs",
            on_batch=maybe_rank,
            refresh_s=refresh_s,
        )
