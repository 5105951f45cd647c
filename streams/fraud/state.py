"""Per-user streaming state of the fraud detector: profile, timing and click/purchase counters.

Plain attributes that round-trip through JSON-able dicts (`to_dict` / `from_dict`) so that it can
live in a changelog-backed table; it must never hold derived caches (signatures, z-scores).
"""

from __future__ import annotations

import math

__all__ = ["UserState"]

_FIELDS = (
    "ratings",
    "acts",
    "bought",
    "n",
    "first",
    "last",
    "gap_n",
    "gap_mean",
    "gap_m2",
    "decayed",
    "decayed_ts",
    "peak",
    "first_hour",
    "clicks",
    "purchases",
    "click_items",
    "due",
    "scored_n",
    "own",
    "features",
    "score",
    "reasons",
    "emitted",
)


class UserState:
    """One account as the detector sees it; `observe` folds in one event's timing in O(1)."""

    __slots__ = _FIELDS

    def __init__(self, ts: float = 0.0):
        self.ratings: dict[str, float] = {}
        self.acts: dict[str, int] = {}  # item -> time bucket of the user's latest rating/purchase of it
        self.bought: dict[str, int] = {}  # item -> purchases
        self.n = 0
        self.first = ts
        self.last = ts
        self.gap_n = 0
        self.gap_mean = 0.0
        self.gap_m2 = 0.0
        self.decayed = 0.0  # exponentially decayed event count (half-life = detector's)
        self.decayed_ts = ts
        self.peak = 0.0
        self.first_hour = 0
        self.clicks = 0
        self.purchases = 0
        self.click_items: dict[str, int] = {}
        self.due = 5
        self.scored_n = 0  # event count at the last rescore
        self.own = 0.0
        self.features: dict[str, float] = {}
        self.score = 0.0
        self.reasons: list[str] = []
        self.emitted = 0.0

    def observe(self, ts: float, half_life: float) -> None:
        """Fold one event's arrival time into the counters (gap Welford, decayed rate, first hour)."""
        if self.n:
            gap = max(ts - self.last, 0.0)
            self.gap_n += 1
            delta = gap - self.gap_mean
            self.gap_mean += delta / self.gap_n
            self.gap_m2 += delta * (gap - self.gap_mean)
            self.decayed *= 0.5 ** (max(ts - self.decayed_ts, 0.0) / half_life)
        else:
            self.first = ts
        self.decayed += 1.0
        self.decayed_ts = max(ts, self.decayed_ts)
        if self.decayed > self.peak:
            self.peak = self.decayed
        if ts - self.first <= 3600.0:
            self.first_hour += 1
        self.last = max(ts, self.last)
        self.n += 1

    def behaviour(self) -> dict[str, float]:
        """Timing and click/purchase features: burst, regularity, new-account intensity, concentration."""
        regular = 0.0
        if self.gap_n >= 8 and self.gap_mean >= 1.0:
            cv = (self.gap_m2 / self.gap_n) ** 0.5 / self.gap_mean
            regular = -math.log(cv + 0.01)
        implicit = self.clicks + self.purchases
        conc = max(self.click_items.values()) / implicit if implicit else 0.0
        return {
            "burst": self.peak,
            "regularity": regular,
            "new_intensity": float(self.first_hour),
            "concentration": conc,
            "purchase_ratio": self.purchases / (self.clicks + 1.0),
        }

    def to_dict(self) -> dict:
        """A JSON-able copy of the state."""
        return {f: getattr(self, f) for f in _FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> UserState:
        """Rebuild a state from `to_dict` output."""
        st = cls()
        for f in _FIELDS:
            v = d[f]
            setattr(st, f, dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
        return st
