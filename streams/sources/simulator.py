"""The built-in simulator: a realistic synthetic event stream for the demo and the tests, no data needed.

Pure and seeded: yields contract-shaped event dicts (docs/topics.md) in time order; never touches Kafka.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["simulated_events"]


def simulated_events(
    n_events: int = 50_000,
    n_users: int = 2_000,
    n_items: int = 1_000,
    dim: int = 8,
    start_ts: float = 1.7e9,
    events_per_second: float = 200.0,
    seed: int = 0,
) -> Iterator[dict]:
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
            yield {
                "event_id": f"sim{seed}-{produced}",
                "user_id": f"u{user}",
                "item_id": f"i{item}",
                "type": kind,
                "ts": ts,
                "value": value,
                "session_id": f"s{seed}-{session}",
            }
            produced += 1
