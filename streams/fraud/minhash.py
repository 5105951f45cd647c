"""A small numpy MinHash and banded LSH index, so that nearest-neighbour similarity stays streaming.

Signatures are derived from item sets and never stored in snapshots (they are recomputed);
this module must never see ratings, labels or I/O.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

__all__ = ["MinHasher", "LSHIndex", "jaccard"]

_PRIME = (1 << 31) - 1


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity |a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class MinHasher:
    """MinHash signatures of string sets with `num_perm` universal hash functions, seeded."""

    def __init__(self, num_perm: int = 128, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self._a = rng.integers(1, _PRIME, size=num_perm, dtype=np.int64)
        self._b = rng.integers(0, _PRIME, size=num_perm, dtype=np.int64)
        self._rows: dict[str, int] = {}
        self._table = np.zeros((0, num_perm), dtype=np.int64)

    def _row(self, item: str) -> int:
        row = self._rows.get(item)
        if row is None:
            x = int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest(), "little") % _PRIME
            if len(self._rows) == len(self._table):
                grown = np.zeros((max(64, 2 * len(self._table)), self.num_perm), dtype=np.int64)
                grown[: len(self._table)] = self._table
                self._table = grown
            row = len(self._rows)
            self._table[row] = (self._a * x + self._b) % _PRIME
            self._rows[item] = row
        return row

    def signature(self, items) -> np.ndarray:
        """The MinHash signature (num_perm int64) of an iterable of item ids."""
        rows = [self._row(i) for i in items]
        if not rows:
            return np.full(self.num_perm, _PRIME, dtype=np.int64)
        return self._table[rows].min(axis=0)


class LSHIndex:
    """Banded LSH over MinHash signatures: `update` a key's signature, `query` its likely neighbours."""

    def __init__(self, num_perm: int = 128, rows_per_band: int = 2):
        self.rows = rows_per_band
        self.bands = num_perm // rows_per_band
        self._buckets: list[dict[int, set[int]]] = [dict() for _ in range(self.bands)]
        self._keys: dict[int, np.ndarray] = {}
        self.signatures: dict[int, np.ndarray] = {}

    def _band_keys(self, sig: np.ndarray) -> np.ndarray:
        parts = sig[: self.bands * self.rows].reshape(self.bands, self.rows)
        keys = parts[:, 0].copy()
        for r in range(1, self.rows):
            keys = keys * _PRIME + parts[:, r]
        return keys

    def update(self, key: int, sig: np.ndarray) -> None:
        """Insert or replace the signature of `key`."""
        old = self._keys.get(key)
        new = self._band_keys(sig)
        changed = range(self.bands) if old is None else np.flatnonzero(old != new).tolist()
        new_l = new.tolist()
        for b in changed:
            if old is not None:
                self._buckets[b][int(old[b])].discard(key)
            self._buckets[b].setdefault(new_l[b], set()).add(key)
        self._keys[key] = new
        self.signatures[key] = sig

    def query(self, key: int, max_candidates: int = 64) -> list[int]:
        """Keys sharing at least one band with `key`, most shared bands first (ties by key)."""
        mine = self._keys.get(key)
        if mine is None:
            return []
        hits: Counter[int] = Counter()
        for b, k in enumerate(mine.tolist()):
            hits.update(self._buckets[b].get(k, ()))
        hits.pop(key, None)
        ranked = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))
        return [k for k, _ in ranked[:max_candidates]]

    def similarity(self, key: int, others: list[int]) -> np.ndarray:
        """Estimated Jaccard of `key` with each of `others` (share of equal MinHash values)."""
        if not others:
            return np.zeros(0)
        mine = self.signatures[key]
        return (np.stack([self.signatures[o] for o in others]) == mine).mean(axis=1)
