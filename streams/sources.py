"""Event sources for the producer: dataset replays and a built-in simulator, as event dicts.

Pure generators: they yield contract-shaped dicts (docs/topics.md) in time order and never
touch Kafka. Event ids are derived from the source row, so replaying a file twice produces
the same ids (and the worker's per-event idempotency makes the second replay a no-op).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

__all__ = ["movielens_events", "taobao_events", "table_events", "simulated_events", "TAOBAO_TYPES"]

TAOBAO_TYPES = {"pv": "click", "buy": "purchase", "cart": "click", "fav": "click"}


def _rows_to_events(frame: pd.DataFrame, prefix: str) -> Iterator[dict]:
    frame = frame.sort_values("ts", kind="stable")
    for row in frame.itertuples(index=True):
        value = None if row.value is None or (isinstance(row.value, float) and math.isnan(row.value)) else float(row.value)
        yield {"event_id": f"{prefix}-{row.Index}", "user_id": str(row.user_id), "item_id": str(row.item_id),
               "type": row.type, "ts": float(row.ts), "value": value,
               "session_id": None if getattr(row, "session_id", None) is None else str(row.session_id)}


def movielens_events(path: str | Path, implicit_threshold: float | None = None) -> Iterator[dict]:
    """MovieLens `u.data` as rating events; with a threshold, rating ≥ it → purchase, else click."""
    from training.data import read_ratings

    ratings = read_ratings(path)
    frame = pd.DataFrame({"user_id": ratings["user"], "item_id": ratings["item"],
                          "ts": ratings["timestamp"].fillna(0.0), "value": ratings["rating"]})
    if implicit_threshold is None:
        frame["type"] = "rating"
    else:
        frame["type"] = np.where(ratings["rating"] >= implicit_threshold, "purchase", "click")
        frame["value"] = None
    return _rows_to_events(frame, "ml")


def taobao_events(path: str | Path) -> Iterator[dict]:
    """Taobao UserBehavior.csv (user,item,category,behavior,ts): pv/cart/fav → click, buy → purchase."""
    raw = pd.read_csv(path, header=None, names=["user_id", "item_id", "category", "behavior", "ts"],
                      dtype={"user_id": str, "item_id": str, "category": str, "behavior": str})
    frame = raw.assign(type=raw["behavior"].map(TAOBAO_TYPES), value=None)
    unknown = frame["type"].isna()
    if unknown.any():
        raise ValueError(f"{path}: unknown behaviour types {sorted(raw.loc[unknown, 'behavior'].unique())}")
    return _rows_to_events(frame, "tb")


def table_events(path: str | Path, mapping: dict[str, str], default_type: str = "click") -> Iterator[dict]:
    """Any CSV/Parquet file; `mapping` names its columns for user_id, item_id, ts and optionally type, value, session_id."""
    path = Path(path)
    raw = pd.read_parquet(path) if path.suffix in {".parquet", ".pq"} else pd.read_csv(path)
    missing = [c for c in mapping.values() if c not in raw.columns]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing}; it has {list(raw.columns)}")
    frame = pd.DataFrame({field: raw[column] for field, column in mapping.items()})
    for needed in ("user_id", "item_id", "ts"):
        if needed not in frame:
            raise ValueError(f"column mapping needs {needed}=COLUMN")
    if "type" not in frame:
        frame["type"] = default_type
    if "value" not in frame:
        frame["value"] = None
    return _rows_to_events(frame, path.stem)


def simulated_events(n_events: int = 50_000, n_users: int = 2_000, n_items: int = 1_000, dim: int = 8,
                     start_ts: float = 1.7e9, events_per_second: float = 200.0,
                     seed: int = 0) -> Iterator[dict]:
    """A realistic synthetic stream: latent-factor tastes, Zipf popularity, sessions, few purchases.

    Users and items have latent vectors; a user picks items by softmax(taste · item + log popularity),
    browses in sessions of a few clicks, and buys liked items now and then. Active users are
    Zipf-distributed too, so some users are heavy and most are light, as in real logs.
    """
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, dim)) / math.sqrt(dim)
    items = rng.normal(size=(n_items, dim))
    item_pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rng.shuffle(item_pop)
    user_activity = 1.0 / np.arange(1, n_users + 1) ** 0.6
    user_activity /= user_activity.sum()
    log_pop = np.log(item_pop / item_pop.sum())
    ts = start_ts
    produced = 0
    session = 0
    while produced < n_events:
        user = int(rng.choice(n_users, p=user_activity))
        logits = 1.5 * items @ users[user] + log_pop
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        session += 1
        for _ in range(int(rng.integers(1, 8))):
            if produced >= n_events:
                break
            item = int(rng.choice(n_items, p=probs))
            ts += float(rng.exponential(1.0 / events_per_second))
            liked = float(items[item] @ users[user]) > 0.3
            kind = "purchase" if liked and rng.random() < 0.15 else "click"
            value = round(float(rng.lognormal(3.0, 0.8)), 2) if kind == "purchase" else None
            yield {"event_id": f"sim{seed}-{produced}", "user_id": f"u{user}", "item_id": f"i{item}",
                   "type": kind, "ts": ts, "value": value, "session_id": f"s{seed}-{session}"}
            produced += 1
