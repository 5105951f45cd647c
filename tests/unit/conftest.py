"""Shared fixtures: a small real slice of MovieLens-100K read with the project's reader."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from training.data import read_ratings

ML100K = Path("/work/shared/data/movielens-100k/u.data")


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
    rows = [("a", "1", 5, 1), ("a", "2", 4, 2), ("a", "3", 3, 3),
            ("b", "1", 5, 1), ("b", "4", 2, 5), ("b", "2", 4, 9),
            ("c", "5", 4, 1), ("c", "6", 1, 2), ("c", "1", 5, 3),
            ("d", "2", 3, 4), ("d", "3", 5, 1)]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]).astype(
        {"rating": float, "timestamp": float})
