"""Builders of small seeded populations shared by the detection tests (no files from /work/shared)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_ratings(n_users: int = 300, n_items: int = 400, seed: int = 7, with_ts: bool = True) -> pd.DataFrame:
    """A genuine-looking population: Zipf item popularity, 20–60 ratings per user, user and item biases."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    pop /= pop.sum()
    item_bias = rng.normal(0, 0.6, n_items)
    rows = []
    for u in range(n_users):
        k = int(rng.integers(20, 61))
        items = rng.choice(n_items, size=k, replace=False, p=pop)
        bias = rng.normal(0, 0.4)
        vals = np.clip(np.round(3.6 + bias + item_bias[items] + rng.normal(0, 0.8, k)), 1, 5)
        t0 = 1e9 + rng.uniform(0, 90 * 86400)
        ts = t0 + np.cumsum(rng.exponential(30.0, k))
        rows += [(str(u + 1), str(i + 1), float(v), float(t)) for i, v, t in zip(items, vals, ts)]
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    if not with_ts:
        df["timestamp"] = np.nan
    return df


@pytest.fixture(scope="session")
def ratings() -> pd.DataFrame:
    """300 users × 400 items, seeded."""
    return make_ratings()
