"""Shared unit-test fixtures: small seeded populations and a real slice of MovieLens-100K."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from streams.sources.datasets import read_ratings
from tests.paths import ML100K  # ../shared beside the checkout, as in CI


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


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """Keep unit tests light on a shared machine and bit-reproducible."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ml100k() -> pd.DataFrame:
    """The full MovieLens-100K ratings (read-only: copy before changing)."""
    return read_ratings(ML100K)


@pytest.fixture(scope="session")
def ml_slice(ml100k: pd.DataFrame) -> pd.DataFrame:
    """Ratings of the 300 users with the smallest ids: a small real dataset."""
    return ml100k[ml100k["user"].astype(int) <= 300].reset_index(drop=True)


@pytest.fixture()
def toy() -> pd.DataFrame:
    """A hand-written interaction frame: 4 users, 6 items."""
    rows = [
        ("a", "1", 5, 1),
        ("a", "2", 4, 2),
        ("a", "3", 3, 3),
        ("b", "1", 5, 1),
        ("b", "4", 2, 5),
        ("b", "2", 4, 9),
        ("c", "5", 4, 1),
        ("c", "6", 1, 2),
        ("c", "1", 5, 3),
        ("d", "2", 3, 4),
        ("d", "3", 5, 1),
    ]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype(
        {"rating": float, "timestamp": float}
    )


@pytest.fixture
def group_ratings() -> pd.DataFrame:
    """60 users, 40 items; items 0-19 liked by even users, 20-39 by odd ones (8 each)."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        pool = np.arange(0, 20) if u % 2 == 0 else np.arange(20, 40)
        for k, it in enumerate(rng.choice(pool, size=8, replace=False)):
            rows.append((f"u{u}", f"i{it}", 5.0, float(u * 100 + k)))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.fixture
def group_text() -> tuple[list[str], np.ndarray]:
    """Unit text vectors of items i0..i49 that carry the even/odd group (i40.. are catalog-only)."""
    rng = np.random.default_rng(1)
    ids = [f"i{k}" for k in range(50)]
    v = rng.standard_normal((50, 16)).astype(np.float32) * 0.3
    v[:20, 0] += 1.0
    v[20:40, 1] += 1.0
    v[40:45, 0] += 1.0
    v[45:, 1] += 1.0
    return ids, v / np.linalg.norm(v, axis=1, keepdims=True)
