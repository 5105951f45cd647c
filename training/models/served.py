"""A matrix-factorisation model as the scorer serves it: a user the model's row is stale for is
ranked by the mean of its profile's item vectors.

A champion's trained user rows go stale as soon as it is promoted: its users keep acting, and
most users asking for recommendations between rounds are ones it never trained on (71-77 % of the
test users in `benchmarks/warm_rounds.py`). The scorer therefore ranks a user whose profile holds
items the model knows but did not train that user on (every such user it never trained, too) by
the mean of the vectors of the profile's items it knows: the user "folded in" over its history,
as `implicit`'s `recalculate_user` does for ALS. A user the model trained on everything its
profile holds keeps its trained row: for a model fitted on the users' whole histories the rows
rank better (HR@10 0.637 against 0.607 for BPR, 0.650 against 0.586 for APR, on MovieLens-100K
under `benchmarks/quality.py`'s protocol, measured once), and a user without a profile item the
model knows has only its row, if any. The mean has no
parameter: it was chosen on the simulator's streams against a ridge (ALS-style) solve and a BPR
fit of the user row, and checked on MovieLens-100K.

`profile_rows` is the rule's arithmetic, `stale` its choice; the scorer applies both on its numpy
tables, and `AsServed` wraps a model with its users' histories so that evaluation, the exposure
audit and the probe measure what users get. Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from training.models.base import Recommender
from training.sampling import PairSet
from training.vocab import Vocabulary

__all__ = ["profile_rows", "stale", "AsServed", "as_served"]


def profile_rows(
    item_matrix: np.ndarray, users: np.ndarray, items: np.ndarray, n_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per user 0..n_users-1: the mean of `item_matrix` rows over its (user, item) index pairs, and
    how many pairs it had (a row with none is zero). Pairs are taken as given: pass each once."""
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    order = np.argsort(users, kind="stable")
    counts = np.bincount(users, minlength=n_users)
    sums = np.zeros((n_users, item_matrix.shape[1]), dtype=np.float64)
    held = np.flatnonzero(counts)
    if len(held):  # each user's pairs are one run once sorted: sum the runs (np.add.at is ~10x slower)
        starts = (np.cumsum(counts) - counts)[held]
        sums[held] = np.add.reduceat(item_matrix[items[order]].astype(np.float64), starts, axis=0)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


def stale(profile: np.ndarray, trained: np.ndarray | None) -> bool:
    """Whether a user's trained row is stale: the model never trained the user (`trained` is None)
    or its profile (item indexes the model knows) holds an item not among those it trained it on
    (`trained`, sorted: a binary search per item, a fifth of `np.isin`'s cost at 50 items)."""
    if trained is None:
        return True
    if not len(trained):
        return bool(len(profile))
    at = np.minimum(np.searchsorted(trained, profile), len(trained) - 1)
    return bool((trained[at] != profile).any())


class AsServed(Recommender):
    """`model` as served to the users of `histories` (columns user, item: each user's profile).

    A user whose history holds an item the model knows and did not train it on is scored by its
    profile row (`stale`, here for every user at once); any other user as the model scores it (its
    trained row, or the model's mean user). `seen` is the histories' pairs and what the model
    trained each of those users on, so `recommend(exclude_seen=True)` leaves out what the scorer
    leaves out. A view for evaluation: it is never saved nor trained.
    """

    def __init__(self, model: Any, histories: pd.DataFrame) -> None:
        self.model = model.as_mf()
        self.items: Vocabulary = self.model.items
        pairs = histories[["user", "item"]].astype(str).drop_duplicates()
        # ids looked up once each, not once per pair (the trainer builds several views a round)
        u, user_ids = pd.factorize(pairs["user"])
        item_codes, item_ids = pd.factorize(pairs["item"])
        i = self.items.lookup(item_ids)[item_codes]
        self.users = Vocabulary(user_ids.tolist())
        model_user = self.model.users.lookup(user_ids)
        known = i >= 0
        rows, trained = self.model.seen.of_users(model_user)
        self.seen = PairSet(np.concatenate([u[known], rows]), np.concatenate([i[known], trained]))
        self.item_table = self.model.net.items.detach().float().cpu().numpy()
        self.rows, self.counts = profile_rows(self.item_table, u[known], i[known], len(self.users))
        # stale: a history pair the model did not train (or a user it never trained)
        untrained = ~self.model.seen.contains(np.maximum(model_user[u[known]], 0), i[known])
        untrained |= model_user[u[known]] < 0
        self.stale = np.bincount(u[known], weights=untrained, minlength=len(self.users)) > 0

    def score(self, user_ids: list[str] | np.ndarray) -> np.ndarray:
        """Scores of every item the model knows, one row per user, as the scorer ranks them."""
        index = self.users.lookup(user_ids)
        folded = index >= 0
        folded[folded] = self.stale[index[folded]]
        out = np.empty((len(index), len(self.items)), dtype=np.float32)
        if folded.any():
            # torch's product, as the model's own `score`: numpy's would run on every BLAS thread,
            # outside the trainer's one torch thread (measured: a round's CPU 1.5x its wall time)
            rows = torch.from_numpy(self.rows[index[folded]])
            out[folded] = (rows @ torch.from_numpy(self.item_table).T).numpy()
        if (~folded).any():
            out[~folded] = self.model.score(np.asarray(user_ids, dtype=object)[~folded])
        return out


def as_served(model: Any, histories: pd.DataFrame) -> Any:
    """The model as served to the users of `histories`: `AsServed` for a matrix-factorisation
    model, the model itself for one without user vectors (popularity ranks everyone alike)."""
    return AsServed(model, histories) if hasattr(model, "as_mf") else model
