"""The scorer's read-only view of the worker's tables: a group-less tail of their changelog topics.

Seen items per user come from the `profiles` changelog. The popularity ranking (the fallback for
users no model knows, and for everyone while there is no champion) counts accounts, never events:
each item's share of the **trusted** accounts whose profile holds it (the trust gate's verdicts
come from `fraud.flags`, the records the trainer's quarantine folds), capped by its share of every
account. An item ranks high only if it is popular in both: one pushed by flagged or new accounts is
held back by the trusted share, one pushed by accounts the detector missed (farm accounts pass
`min_events` while many genuine users have not, so among trusted accounts a missed farm weighs
more) by the share of every account. While no account is trusted yet (the stream's first events),
or where no verdicts are read (no detector; the demo's undefended shadow), it counts every account.

Counted over events, as it was, a click farm's target entered the top 10 of the demo's stream
(`benchmarks/popularity.py`: rank 5-10 of ~1,000 items, in 37.8 % of genuine users' lists after
the attack); by every account 1.8 %; by accounts past `min_events` with the farm missed 29.0 %,
capped by every account's share 1.1 %; with the detector's trust, streamed, 0.0 %. The gate's popularity
baseline counts distinct users too (`training.evaluation.popularity_baseline`). Read without a
consumer group (every scorer reads everything), so the scorer never writes the worker's tables.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping

from streams.fraud.trust import trusted_after
from streams.kafka.tail import tail_topics
from streams.serving.core import Popularity

__all__ = ["ChangelogView", "popularity_scores"]


def popularity_scores(
    trusted: Mapping[str, int], every: Mapping[str, int], n_trusted: int, n_every: int
) -> dict[str, float]:
    """The popularity fallback's score per item: its share of the `n_trusted` trusted accounts,
    capped by its share of all `n_every` accounts (items no trusted account holds are left out);
    with no trusted account holding anything, every account's count."""
    held = {item: n for item, n in trusted.items() if n > 0}
    if not held:
        return {item: float(n) for item, n in every.items() if n > 0}
    return {item: min(n / n_trusted, every[item] / n_every) for item, n in held.items()}


class ChangelogView:
    """A read-only, group-less tail of the worker's profile changelog and the trust gate's verdicts."""

    def __init__(self, bootstrap: str, profiles_topic: str, flags_topic: str | None = None) -> None:
        self.bootstrap, self.profiles_topic, self.flags_topic = bootstrap, profiles_topic, flags_topic
        self.items: dict[str, frozenset[str]] = {}
        self.users: Counter[str] = Counter()  # item -> accounts whose profile holds it, every account
        self.trusted: set[str] = set()  # users the trust gate trusts now (never a flagged one)
        self.trusted_users: Counter[str] = Counter()  # item -> trusted users whose profile holds it
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
            old = self.items.get(name, frozenset())
            if isinstance(data, dict):
                new = self.items[name] = frozenset(str(i) for i in data.get("items") or ())
            else:
                new = frozenset()
                self.items.pop(name, None)
            if new != old:
                self._count(self.users, new - old, 1)
                self._count(self.users, old - new, -1)
                if name in self.trusted:
                    self._count(self.trusted_users, new - old, 1)
                    self._count(self.trusted_users, old - new, -1)
        elif topic == self.flags_topic:
            self._trust(str(data.get("user_id") or name) if isinstance(data, dict) else name, data)

    def _trust(self, user: str, flag: object) -> None:
        """Fold one `fraud.flags` record as the trainer's quarantine does (`trusted_after`)."""
        was = user in self.trusted
        now = trusted_after(was, flag)
        if now == was:
            return
        if now:
            self.trusted.add(user)
        else:
            self.trusted.discard(user)
        self._count(self.trusted_users, self.items.get(user, frozenset()), 1 if now else -1)

    def _count(self, counter: Counter[str], items: frozenset[str], step: int) -> None:
        if not items:
            return
        for item in items:
            counter[item] += step
        self._popularity_dirty = True

    def popularity(self) -> Popularity | None:
        """The popularity ranking if it changed since the last call, else None: per item, the lower
        of its share of trusted accounts and its share of every account (items no trusted account
        holds are left out); with no one trusted yet, every account per item."""
        if not self._popularity_dirty:
            return None
        self._popularity_dirty = False
        n_trusted = sum(1 for user in self.trusted if user in self.items)  # trusted, with a profile
        return Popularity.from_counts(popularity_scores(self.trusted_users, self.users, n_trusted, len(self.items)))

    async def run(self, on_popularity: Callable[[Popularity], None], refresh_s: float = 5.0) -> None:
        """Tail the topics from the beginning, forever; hand over the popularity ranking when it changed."""
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
            [self.profiles_topic, *([self.flags_topic] if self.flags_topic else [])],
            self.apply,
            "advrec-scorer-changelogs",
            on_batch=maybe_rank,
            refresh_s=refresh_s,
        )
