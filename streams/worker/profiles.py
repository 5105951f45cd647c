"""Per-user profile features and their update rule: the pure core behind the profile table.

A profile is updated one event at a time by `UserProfile.apply`, after `seen_before` has said
the event is new: a redelivered Kafka record (same partition, offset at or below the profile's
watermark) or an event its producer sent again (same `event_id` among the recent ones) must change
nothing, and `seen_before` tells the two apart. No Kafka or Faust here: the ingest batch loads
profiles, asks `seen_before`, calls `apply`, and the agent writes them back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.contract.records import EVENT_TYPES

__all__ = ["UserProfile", "ProfileConfig", "ProfileCache"]

_LN2 = math.log(2.0)
_ORDERED_SETS = ("items", "recent_items", "recent_event_ids")  # dicts here, lists in JSON


def _push_recent(recent: dict[str, None], key: str, keep: int) -> None:
    """Make `key` the most recent of `recent` (moved to the end if there), keeping the last `keep`."""
    recent.pop(key, None)
    recent[key] = None
    while len(recent) > keep:
        del recent[next(iter(recent))]


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """Bounds of a profile: how much history it keeps and how fast its rate forgets."""

    recent_items: int = 50
    recent_event_ids: int = 64
    rate_half_life_s: float = 300.0
    max_tracked_items: int = 10_000


@dataclass(slots=True)
class UserProfile:
    """Features of one user, kept current event by event."""

    user_id: str
    counts: dict[str, int] = field(default_factory=lambda: {t: 0 for t in EVENT_TYPES})
    first_seen: float | None = None
    last_seen: float | None = None
    # Insertion-ordered sets (dicts: O(1) membership, JSON as lists), most recent last.
    recent_items: dict[str, None] = field(default_factory=dict)
    rate_ewma: float = 0.0
    # Every item touched, an ordered set like `recent_items` (capped at `max_tracked_items`).
    items: dict[str, None] = field(default_factory=dict)
    items_capped: bool = False
    rating_count: int = 0
    rating_mean: float = 0.0
    rating_m2: float = 0.0
    # Idempotency: last applied offset per source partition, and recent event ids.
    offsets: dict[str, int] = field(default_factory=dict)
    recent_event_ids: dict[str, None] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Events applied to this profile."""
        return sum(self.counts.values())

    @property
    def distinct_items(self) -> int:
        """Distinct items touched (a lower bound once `items_capped`)."""
        return len(self.items)

    @property
    def rating_variance(self) -> float:
        """Population variance of the user's ratings (0 with fewer than two)."""
        return self.rating_m2 / self.rating_count if self.rating_count > 1 else 0.0

    def seen_before(self, event_id: str, partition: int | None = None, offset: int | None = None) -> str | None:
        """ "redelivered" (this record was applied), "resent" (this event id was), or None (new)."""
        if partition is not None and offset is not None:
            last = self.offsets.get(str(partition))
            if last is not None and offset <= last:
                return "redelivered"
        return "resent" if event_id in self.recent_event_ids else None

    def apply(
        self,
        event_id: str,
        item_id: str,
        kind: str,
        ts: float,
        value: float | None,
        config: ProfileConfig,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        """Apply one event that `seen_before` found new (the ingest batch has asked it already).

        Everything that could raise is computed before the first change, so an exception leaves the
        profile as it was (the caller dead-letters that one event).
        """
        rate = self._decayed_rate(ts, config.rate_half_life_s) + _LN2 / config.rate_half_life_s
        first_seen = ts if self.first_seen is None else min(self.first_seen, ts)
        last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
        rating = kind == "rating" and value is not None
        if rating:  # Welford's online mean/variance
            n = self.rating_count + 1
            delta = value - self.rating_mean
            mean = self.rating_mean + delta / n
            m2 = self.rating_m2 + delta * (value - mean)

        if partition is not None and offset is not None:
            self.offsets[str(partition)] = offset
        _push_recent(self.recent_event_ids, event_id, config.recent_event_ids)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.rate_ewma, self.first_seen, self.last_seen = rate, first_seen, last_seen
        _push_recent(self.recent_items, item_id, config.recent_items)
        if item_id not in self.items:
            if len(self.items) < config.max_tracked_items:
                self.items[item_id] = None
            else:
                self.items_capped = True
        if rating:
            self.rating_count, self.rating_mean, self.rating_m2 = n, mean, m2

    def _decayed_rate(self, ts: float, half_life_s: float) -> float:
        # EWMA of events/second: decays by half every half-life of event time, so a steady
        # stream of r events/s converges to r. Out-of-order events decay nothing.
        if self.last_seen is None:
            return self.rate_ewma
        elapsed = max(0.0, ts - self.last_seen)
        return self.rate_ewma * math.exp(-_LN2 * elapsed / half_life_s)

    def snapshot(self) -> dict:
        """Plain JSON-able form, as stored in the profile table."""
        # Shallow on purpose: dataclasses.asdict deep-copies and costs ~1 ms on a large profile.
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in _ORDERED_SETS:
            data[name] = list(data[name])
        return data

    @classmethod
    def restore(cls, data: dict) -> UserProfile:
        """Inverse of `snapshot`."""
        data = dict(data)
        for name in _ORDERED_SETS:
            data[name] = dict.fromkeys(data.get(name, ()))
        return cls(**data)

    def view(self) -> dict:
        """The public JSON view served at GET /profiles/{user_id} (no idempotency bookkeeping)."""
        return {
            "user_id": self.user_id,
            "counts": dict(self.counts),
            "events": self.events,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "recent_items": list(self.recent_items),
            "event_rate_per_s": self.rate_ewma,
            "distinct_items": self.distinct_items,
            "distinct_items_capped": self.items_capped,
            "rating_count": self.rating_count,
            "rating_mean": self.rating_mean if self.rating_count else None,
            "rating_variance": self.rating_variance if self.rating_count else None,
        }


class ProfileCache:
    """The profiles last written, as objects, each beside the very bytes object written for it.

    Decoding and restoring a profile costs about as much as applying an event to it, and a busy
    user's profile is read in nearly every batch. `load` reuses the object only while the table
    still holds *that* bytes object (`is`, not `==`): whatever else changes the table (changelog
    recovery after a restart or a rebalance) stores new bytes, and the profile is decoded afresh.
    The object `load` returns may be changed by the caller, who then writes it (`wrote`); a caller
    that fails in between stops the worker, so no changed but unwritten object is read again.
    Bounded: the profiles written longest ago are dropped first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: dict[bytes, tuple[bytes, UserProfile]] = {}  # key -> (bytes written, profile)

    def load(self, key: bytes, stored: bytes | None, decode: Callable[[bytes], dict]) -> UserProfile | None:
        """The profile the table holds as `stored` (None: no profile)."""
        if stored is None:
            return None
        entry = self._entries.get(key)
        if entry is not None and entry[0] is stored:
            return entry[1]
        return UserProfile.restore(decode(stored))

    def wrote(self, key: bytes, stored: bytes, profile: UserProfile) -> None:
        """`profile` was just written to the table as `stored`."""
        entries = self._entries
        entries.pop(key, None)  # re-inserted last: the dict's order is the order of writes
        entries[key] = (stored, profile)
        if len(entries) > self.capacity:
            del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)
