"""A matrix-factorisation model as the scorer serves it: each user is the mean of its profile's item vectors.

A champion's trained user rows go stale as soon as it is promoted: its users keep acting, and
most users asking for recommendations between rounds are ones it never trained on (71-77 % of the
test users in `benchmarks/warm_rounds.py`). The scorer therefore ranks every user whose profile
holds an item the model knows by the mean of those items' vectors (the user "folded in" over its
history, as `implicit`'s `recalculate_user` does for ALS); the trained row is kept for users whose
profile holds none. The mean has no parameter to tune: it was chosen on the simulator's streams
against a ridge (ALS-style) solve and a BPR fit of the user row, and checked on MovieLens-100K.

`profile_rows` is the rule, used by the scorer on its numpy tables; `AsServed` wraps a model with
the histories of its users so that evaluation and the exposure audit measure what users get.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.models.base import Recommender
from training.sampling import PairSet
from training.vocab import Vocabulary

__all__ = ["profile_rows", "AsServed", "as_served"]


def profile_rows(
    item_matrix: np.ndarray, users: np.ndarray, items: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per user 0..n_users-1: the mean of `item_matrix` rows over its (user, item) index pairs, and
    how many pairs it had (a row with none is zero). Pairs are taken as given: pass each once."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    sums = np.zeros((n_users, item_matrix.shape[1]), dtype=np.float64)
    np.add.at(sums, users, item_matrix[items])
    counts = np.bincount(users, minlength=n_users)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


class AsServed(Recommender):
    """`model` as served to the users of `histories` (columns user, item: each user's profile).

    A user with a history item the model knows is scored by its profile row; any other user as
    the model scores it (its trained row, or the model's mean user). `seen` is the histories'
    pairs and what the model trained each of those users on, so `recommend(exclude_seen=True)`
    leaves out what the scorer leaves out. A view for evaluation: it is never saved nor trained.
    """

    def __init__(self, model: Any, histories: pd.DataFrame) -> None:
        self.model = model.as_mf()
        self.items: Vocabulary = self.model.items
        pairs = histories[["user", "item"]].astype(str).drop_duplicates()
        self.users = Vocabulary(pairs["user"])
        u, i = self.users.lookup(pairs["user"]), self.items.lookup(pairs["item"])
        known = i >= 0
        rows, trained = self.model.seen.of_users(self.model.users.lookup(self.users.ids))
        self.seen = PairSet(np.concatenate([u[known], rows]), np.concatenate([i[known], trained]))
        self.item_table = self.model.net.items.detach().float().cpu().numpy()
        self.rows, self.counts = profile_rows(self.item_table, u[known], i[known], len(self.users))

    def score(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Scores of every item the model knows, one row per user, as the scorer ranks them."""
        index = self.users.lookup(user_ids)
        folded = index >= 0
        folded[folded] = self.counts[index[folded]] > 0
        out = np.empty((len(index), len(self.items)), dtype=np.float32)
        if folded.any():
            out[folded] = self.rows[index[folded]] @ self.item_table.T
        if (~folded).any():
            out[~folded] = self.model.score(np.asarray(user_ids, dtype=object)[~folded])
        return out


def as_served(model: Any, histories: pd.DataFrame) -> Any:
    """The model as served to the users of `histories`: `AsServed` for a matrix-factorisation
    model, the model itself for one without user vectors (popularity ranks everyone alike)."""
    return AsServed(model, histories) if hasattr(model, "as_mf") else model
