"""Popularity: every user gets the items with the most interactions; the baseline and the scorer's fallback.

One class for both uses: `fit` counts the distinct users per item of an interaction frame (the
offline baseline, which excludes what each user saw), `from_counts` ranks a live {item: count}
table (the scorer's answer for unknown users). Pure: it must never import Kafka, Faust or MLflow,
nor read anything but the frame or mapping it is given.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from training.models.base import Recommender
from training.models.mf import implicit_pairs
from training.sampling import PairSet
from training.vocab import Vocabulary

__all__ = ["PopularityRecommender", "SAVE_FORMAT"]

SAVE_FORMAT = "advrec.pop/2"  # /1: the same, with the id lists as lists
READ_FORMATS = ("advrec.pop/1", SAVE_FORMAT)


class PopularityRecommender(Recommender):
    """Items ranked by a count, most first (ties keep the given order); the same ranking for every user."""

    kind: ClassVar[str] = "popularity"
    save_format: ClassVar[str] = SAVE_FORMAT
    read_formats: ClassVar[tuple[str, ...]] = READ_FORMATS

    def __init__(self, items: Iterable[str] = (), counts: Iterable[float] = ()) -> None:
        self.rounds = 0
        self.config = None  # nothing to tune
        self._rank(items, counts)

    def _rank(self, items: Iterable[str], counts: Iterable[float]) -> None:
        """Hold these counts, most first; no user has seen anything yet."""
        items = np.asarray([str(i) for i in items], dtype=object)
        counts = np.asarray(list(counts), dtype=np.float64)
        order = np.argsort(-counts, kind="stable")
        self.ranked, self.counts = items[order], counts[order]
        self.items = Vocabulary(self.ranked.tolist())  # a list of distinct ids takes Vocabulary's fast path
        self.users = Vocabulary()
        self.seen = PairSet.empty()

    @classmethod
    def from_counts(cls, counts: Mapping[str, float]) -> PopularityRecommender:
        """From an {item: count} mapping."""
        return cls(counts.keys(), counts.values())

    def __len__(self) -> int:
        return len(self.ranked)

    def fit(self, interactions: pd.DataFrame, epochs: int | None = None) -> PopularityRecommender:
        """Count the users of each item; remember who saw what (`epochs` is accepted and ignored)."""
        pairs = implicit_pairs(interactions).drop_duplicates()
        counts = pairs["item"].value_counts()
        self._rank(counts.index, counts.to_numpy())
        self.users = Vocabulary(interactions["user"].astype(str))
        self.seen = PairSet(self.users.lookup(pairs["user"]), self.items.lookup(pairs["item"]))
        return self

    def score(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """The item counts, the same row for every user."""
        return np.tile(self.counts.astype(np.float32), (len(user_ids), 1))

    def top(self, k: int, exclude: Collection[str] = ()) -> tuple[list[str], list[float]]:
        """The k most popular items not in `exclude`, and their counts."""
        items, scores = [], []
        for item, count in zip(self.ranked[: k + len(exclude)], self.counts[: k + len(exclude)]):
            if item not in exclude:
                items.append(item)
                scores.append(float(count))
                if len(items) == k:
                    break
        return items, scores

    def state(self) -> dict[str, Any]:
        """Ranked items, their counts, users and seen pairs (tensors and plain values)."""
        return {
            "users": self.users.to_list(),
            "items": self.items.to_list(),
            "counts": torch.from_numpy(self.counts.copy()),
            "seen": torch.from_numpy(self.seen.keys.copy()),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str = "") -> PopularityRecommender:
        """Rebuild the ranking `state` describes (`device` is accepted and ignored)."""
        model = cls(state["items"], state["counts"].numpy())
        model.users = Vocabulary(state["users"])
        model.seen = PairSet.from_keys(state["seen"].numpy())
        return model
