"""The exposure audit: which items a challenger shows to trusted users that the champion did not, and who pushed them.

An item's exposure is its share of a fixed sample of trusted users' top-K lists as the scorer
serves them (`training.models.served`: a user whose trained row is stale ranked by its profile's
mean item vector), unseen items only. The audit compares challenger and champion on the same users and, for every
item whose exposure rose, the share of the round's training rows on it that came from untrusted
(new or suspicious) accounts: a poisoning attack lifts an item with fake accounts, a genuine trend
with established ones. The bounds are the gate's (`registry.promotion.exposure_alarms`); this
module only measures. Pure: it reads models and frames, and must never train, log or touch MLflow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from training.models.served import as_served

__all__ = ["audit_sample", "exposure_shares", "untrusted_shares", "exposure_audit", "AUDIT_K", "AUDIT_ITEMS"]

AUDIT_K = 10  # the length of a served list
AUDIT_ITEMS = 50  # the items with the largest rises that the report keeps


def audit_sample(users: Iterable[str], n: int, seed: int = 0) -> list[str]:
    """A fixed sample of at most n users: those of smallest seeded hash, so a user once in stays in.

    The sample only changes where users join or leave the candidates, so rounds audit mostly the
    same people and their exposure figures are comparable over time.
    """
    keyed = sorted((hashlib.blake2b(f"{seed}:{u}".encode(), digest_size=8).digest(), str(u)) for u in set(users))
    return sorted(u for _, u in keyed[:n])


def exposure_shares(model: Any, users: list[str], k: int = AUDIT_K) -> pd.Series:
    """item → share of the users whose top-k unseen items contain it (items never listed are absent)."""
    if not users:
        return pd.Series(dtype=float)
    items, _ = model.recommend(list(users), k=k, exclude_seen=True)
    listed = pd.Series(items.ravel()).dropna().astype(str)
    return (listed.value_counts() / len(users)).rename_axis("item")


def untrusted_shares(rows: pd.DataFrame, untrusted: set[str]) -> pd.DataFrame:
    """Per item of the round's training rows: how many there are and the share from untrusted accounts."""
    frame = pd.DataFrame({"item": rows["item"].astype(str), "bad": rows["user"].astype(str).isin(untrusted)})
    grouped = frame.groupby("item")["bad"]
    return pd.DataFrame({"rows": grouped.size(), "carried": grouped.mean()})


def exposure_audit(
    challenger: Any,
    champion: Any,
    users: list[str],
    rows: pd.DataFrame,
    untrusted: set[str],
    histories: pd.DataFrame,
    k: int = AUDIT_K,
    keep: int = AUDIT_ITEMS,
) -> dict[str, Any]:
    """Exposure of both models over `users`, and the items whose exposure rose most, with who carried them.

    `rows` are the round's training rows (user, item); `untrusted` the accounts that are new or
    suspicious; `histories` (user, item) the users' profiles, over which both models are served.
    Returns {k, users, items: [{item, challenger, champion, carried, rows}, ...]}, items sorted by
    the rise, largest first, only rises (> 0) kept.
    """
    audited = histories[histories["user"].astype(str).isin(set(users))]
    new = exposure_shares(as_served(challenger, audited), users, k)
    old = exposure_shares(as_served(champion, audited), users, k)
    table = pd.DataFrame({"challenger": new, "champion": old}).fillna(0.0)
    table["jump"] = table["challenger"] - table["champion"]
    risen = table[table["jump"] > 0].sort_values(["jump", "challenger"], ascending=False, kind="stable").head(keep)
    carriers = untrusted_shares(rows, untrusted).reindex(risen.index)
    items = [
        {
            "item": str(item),
            "challenger": float(risen.at[item, "challenger"]),
            "champion": float(risen.at[item, "champion"]),
            "carried": float(np.nan_to_num(carriers.at[item, "carried"])),
            "rows": int(np.nan_to_num(carriers.at[item, "rows"])),
        }
        for item in risen.index
    ]
    return {"k": int(k), "users": len(users), "items": items}
