"""Per-item statistics, exact with any number of workers: the pure core behind the item-keyed `items` table.

Events reach an item's statistics through `ItemDelta`s repartitioned by item, so one worker owns
each item. A delta carries the source offsets of its events; the statistics remember the last
offset applied from each source partition and skip anything at or below it, so a delta sent again
after a crash (or a rebalance) is applied exactly once. It must never read the clock or do I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streams.contract.records import ItemDelta

__all__ = ["ItemStats"]


@dataclass(slots=True)
class ItemStats:
    """Counts and rating moments of one item, with the last source offset applied per partition."""

    item_id: str
    events: int = 0
    clicks: int = 0
    purchases: int = 0
    ratings: int = 0
    rating_sum: float = 0.0
    rating_sq: float = 0.0
    marks: dict[str, int] = field(default_factory=dict)  # "topic/partition" -> last offset applied

    def update(self, delta: ItemDelta) -> int:
        """Fold the delta's events not applied before; return how many were new."""
        source = f"{delta.topic}/{delta.partition}"
        mark = newest = self.marks.get(source, -1)
        new = 0
        for offset, kind, rating in zip(delta.offsets, delta.kinds, delta.ratings):
            if offset <= mark:  # against the mark before this delta: an envelope's events share an offset
                continue
            newest = offset
            new += 1
            self.events += 1
            if kind == "click":
                self.clicks += 1
            elif kind == "purchase":
                self.purchases += 1
            elif rating is not None:
                self.ratings += 1
                self.rating_sum += rating
                self.rating_sq += rating * rating
        if new:
            self.marks[source] = newest
        return new

    @property
    def rating_mean(self) -> float | None:
        """Mean rating, or None without ratings."""
        return self.rating_sum / self.ratings if self.ratings else None

    @property
    def rating_variance(self) -> float | None:
        """Population variance of the ratings, or None without ratings."""
        if not self.ratings:
            return None
        mean = self.rating_sum / self.ratings
        return max(0.0, self.rating_sq / self.ratings - mean * mean)

    def view(self) -> dict:
        """The public JSON view served at GET /items/{item_id}."""
        variance = self.rating_variance
        return {
            "item_id": self.item_id,
            "events": self.events,
            "clicks": self.clicks,
            "purchases": self.purchases,
            "ratings": self.ratings,
            "rating_mean": self.rating_mean,
            "rating_sd": None if variance is None else math.sqrt(variance),
        }
