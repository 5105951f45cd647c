"""Implicit-feedback pairs and uniform negative sampling for pairwise (BPR) training.

A set of (user, item) index pairs is kept as a sorted array of 64-bit keys, so membership tests
for millions of candidates are one `searchsorted`. Pure numpy, seeded by the caller's Generator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PairSet", "sample_negatives", "sample_distinct_negatives", "sample_triples"]

_SHIFT = np.int64(1 << 31)


class PairSet:
    """A deduplicated, sorted set of (user, item) index pairs."""

    def __init__(self, users: np.ndarray, items: np.ndarray) -> None:
        keys = np.asarray(users, dtype=np.int64) * _SHIFT + np.asarray(items, dtype=np.int64)
        # Keys already sorted and distinct (a saved set's, rebuilt on every model load) are kept:
        # np.unique of them again took ~40 ms per 200,000 keys
        self.keys = keys if np.all(keys[1:] > keys[:-1]) else np.unique(keys)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_keys(cls, keys: np.ndarray) -> PairSet:
        """Rebuild a set from the `keys` of another one."""
        keys = np.asarray(keys, dtype=np.int64)
        return cls(keys // _SHIFT, keys % _SHIFT)

    @classmethod
    def empty(cls) -> PairSet:
        """A set with no pairs."""
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

    @property
    def users(self) -> np.ndarray:
        """User index of each pair."""
        return self.keys // _SHIFT

    @property
    def items(self) -> np.ndarray:
        """Item index of each pair."""
        return self.keys % _SHIFT

    def union(self, users: np.ndarray, items: np.ndarray) -> PairSet:
        """A new set holding these pairs and the given ones."""
        return PairSet(np.concatenate([self.users, users]), np.concatenate([self.items, items]))

    def of_users(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) for every pair of the given users; row is the position in `users`."""
        users = np.asarray(users, dtype=np.int64)
        lo = np.searchsorted(self.keys, users * _SHIFT)
        hi = np.searchsorted(self.keys, (users + 1) * _SHIFT)
        counts = np.where(users >= 0, hi - lo, 0)
        rows = np.repeat(np.arange(len(users)), counts)
        starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
        return rows, self.keys[starts + np.arange(counts.sum())] % _SHIFT

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is each (user, item) pair in the set."""
        keys = np.asarray(users, dtype=np.int64) * _SHIFT + np.asarray(items, dtype=np.int64)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        return (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), bool)


def sample_negatives(
    users: np.ndarray, positives: PairSet, n_items: int, rng: np.random.Generator, max_tries: int = 50
) -> np.ndarray:
    """One item per user drawn uniformly among the items the user has no pair with."""
    items = rng.integers(0, n_items, size=len(users))
    todo = np.flatnonzero(positives.contains(users, items))
    for _ in range(max_tries):
        if len(todo) == 0:
            break
        items[todo] = rng.integers(0, n_items, size=len(todo))
        todo = todo[positives.contains(users[todo], items[todo])]
    return items


def sample_distinct_negatives(
    users: np.ndarray, positives: PairSet, n_items: int, n: int, rng: np.random.Generator, max_tries: int = 100
) -> np.ndarray:
    """(len(users), n) items: per user, n distinct items drawn uniformly among those it has no pair with.

    A candidate that is a positive or repeats an earlier one in its row is drawn again, so each
    row is a uniform sample without replacement (the sampled-metrics protocol: 99 distinct negatives).
    Where the catalogue is too small for that, n shrinks to what the fullest user leaves.
    """
    users = np.asarray(users, dtype=np.int64)
    if len(users) and len(positives):
        # A catalogue too small for n distinct negatives per user: take as many as the fullest user
        # has (else rows would keep positives and repeats, and rank a held-out item against them).
        counts = np.bincount(positives.users, minlength=int(users.max()) + 1)
        n = max(1, min(n, n_items - int(counts[users].max())))
    out = rng.integers(0, n_items, size=(len(users), n))
    rows = np.repeat(np.arange(len(users)), n)
    for _ in range(max_tries):
        flat = out.ravel()
        bad = positives.contains(users[rows], flat)
        keys = rows * np.int64(n_items) + flat
        order = np.argsort(keys, kind="stable")  # stable: the first of equal keys keeps its place
        repeat = np.zeros(len(flat), bool)
        repeat[order[1:]] = keys[order[1:]] == keys[order[:-1]]
        todo = np.flatnonzero(bad | repeat)
        if len(todo) == 0:
            break
        flat[todo] = rng.integers(0, n_items, size=len(todo))
        out = flat.reshape(out.shape)
    return out


def sample_triples(
    users: np.ndarray, items: np.ndarray, positives: PairSet, n_items: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffled (user, positive, negative) index triples, one negative per positive pair."""
    order = rng.permutation(len(users))
    u, i = users[order], items[order]
    return u, i, sample_negatives(u, positives, n_items, rng)
