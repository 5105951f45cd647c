"""A rating table as the attacker and the evaluator see it: a dense user x item matrix and item statistics.

Fake profiles are dense rows on the same item index (0 = not rated); `profile_rows` turns them into
the (item, type, value) lists that `streams.sources.attacks.schedule_profiles` times and ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RatingMatrix", "profile_rows", "push_pool"]


@dataclass(frozen=True)
class RatingMatrix:
    """A `read_ratings` frame indexed: users and items sorted, ratings dense (the last of a pair wins)."""

    frame: pd.DataFrame
    users: np.ndarray  # str
    items: np.ndarray  # str (the index of every profile matrix here)
    R: np.ndarray  # float32 (n_users, n_items), 0 = not rated
    grid: np.ndarray  # the rating values used, ascending
    counts: np.ndarray  # raters per item
    means: np.ndarray  # item mean rating (the global mean where unrated)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> RatingMatrix:
        """Index a frame with columns user, item, rating[, timestamp]; rows without a rating count as the top one."""
        rated = frame.assign(
            rating=frame["rating"].fillna(frame["rating"].max() if frame["rating"].notna().any() else 1)
        )
        if "timestamp" in rated:
            rated = rated.sort_values("timestamp", kind="stable")
        users, ui = np.unique(rated["user"].astype(str).to_numpy(), return_inverse=True)
        items, ii = np.unique(rated["item"].astype(str).to_numpy(), return_inverse=True)
        R = np.zeros((len(users), len(items)), np.float32)
        R[ui, ii] = rated["rating"].to_numpy(np.float32)
        mask = R > 0
        counts = mask.sum(0).astype(float)
        global_mean = float(R[mask].mean())
        means = np.where(counts > 0, R.sum(0) / np.maximum(counts, 1), global_mean)
        return cls(frame, users, items, R, np.unique(R[mask]), counts, means)

    @property
    def n_users(self) -> int:
        return self.R.shape[0]

    @property
    def n_items(self) -> int:
        return self.R.shape[1]

    @property
    def top(self) -> float:
        return float(self.grid[-1])

    def index(self, items) -> np.ndarray:
        """Column indices of item ids (KeyError for an unknown one)."""
        where = {str(i): k for k, i in enumerate(self.items)}
        return np.array([where[str(i)] for i in items], int)


def push_pool(data: RatingMatrix) -> np.ndarray:
    """Items a push attack may target: >= 5 ratings and a mean at or below the median (the heuristics' rule)."""
    ok = data.counts >= 5
    ok &= data.means <= np.median(data.means[ok])
    return np.flatnonzero(ok)


def profile_rows(data: RatingMatrix, profiles: np.ndarray) -> list[list[tuple[str, str, float | None]]]:
    """Per fake: its (item, "rating", value) events, from a dense profile matrix (0 = absent)."""
    out = []
    for row in profiles:
        idx = np.flatnonzero(row)
        out.append([(str(data.items[i]), "rating", float(row[i])) for i in idx])
    return out
