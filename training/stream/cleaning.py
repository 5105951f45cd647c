"""Window rows → the interactions a round may train on: what is dropped, and how events become pairs.

Dropped: rows marked suspect when written, rows of users flagged now, offsets already trained and
repeated event ids; each is counted. A click or purchase is an implicit positive, a rating keeps
its value. Pure pandas: it must never read files or flags itself, nor train anything.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from training.frames import is_in
from training.stream.offsets import OffsetRanges

__all__ = [
    "INTERACTION_COLUMNS",
    "events_to_interactions",
    "clean_events",
    "hold_untrusted",
    "empty_interactions",
    "pair_keys",
]

INTERACTION_COLUMNS = ["event_id", "user", "item", "rating", "timestamp"]


def events_to_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """Window rows → interactions: a rating keeps its value; a click or purchase is an implicit positive (NaN)."""
    return pd.DataFrame(
        {
            "event_id": events["event_id"].astype(str).to_numpy(),
            "user": events["user_id"].astype(str).to_numpy(),
            "item": events["item_id"].astype(str).to_numpy(),
            "rating": np.where(events["type"].to_numpy() == "rating", events["value"].astype(float).to_numpy(), np.nan),
            "timestamp": events["ts"].astype(float).to_numpy(),
        }
    )


def clean_events(
    events: pd.DataFrame, flagged: set[str], trained: OffsetRanges, known_event_ids: Iterable[str] = ()
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop suspect or flagged users' events, offsets already trained, and repeated event ids; count each."""
    counts = {"rows": len(events)}
    suspect = events["suspect"].fillna(False).astype(bool).to_numpy()
    flagged_now = events["user_id"].astype(str).isin(flagged).to_numpy()
    done = np.zeros(len(events), bool)
    for (topic, partition), idx in events.groupby(["topic", "partition"]).indices.items():
        done[idx] = trained.contains(f"{topic}/{partition}", events["offset"].to_numpy()[idx])
    counts["dropped_suspect"] = int(suspect.sum())
    counts["dropped_flagged"] = int((flagged_now & ~suspect).sum())
    counts["dropped_trained"] = int((done & ~suspect & ~flagged_now).sum())
    kept = events[~(suspect | flagged_now | done)]
    unique = kept.drop_duplicates("event_id", keep="first")
    unique = unique[~is_in(unique["event_id"], known_event_ids)]
    counts["dropped_duplicate"] = len(kept) - len(unique)
    counts["kept"] = len(unique)
    return unique.reset_index(drop=True), counts


def hold_untrusted(
    new: pd.DataFrame, waiting: pd.DataFrame, trusted: set[str], flagged: set[str], max_waiting: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The trust gate: (interactions to train now, interactions still waiting, counts).

    Trusted users' interactions train now, this round's and those that waited for their account
    to earn trust; flagged users' waiting interactions are dropped; the rest wait (the oldest
    beyond `max_waiting` are dropped, counted). A flag that comes after an account's first events
    still keeps them out of the model, as long as the account was not trusted yet.
    """
    pool = pd.concat([waiting, new], ignore_index=True)
    is_flagged = pool["user"].isin(flagged).to_numpy()
    is_trusted = pool["user"].isin(trusted).to_numpy() & ~is_flagged
    from_waiting = np.arange(len(pool)) < len(waiting)
    still = pool[~is_trusted & ~is_flagged]
    overflow = max(0, len(still) - max_waiting)
    counts = {
        "held": int((~is_trusted & ~is_flagged & ~from_waiting).sum()),
        "released": int((is_trusted & from_waiting).sum()),
        "dropped_waiting_flagged": int((is_flagged & from_waiting).sum()),
        "dropped_waiting_overflow": overflow,
        "waiting": len(still) - overflow,
    }
    return pool[is_trusted].reset_index(drop=True), still.iloc[overflow:].reset_index(drop=True), counts


def pair_keys(frame: pd.DataFrame) -> pd.Series:
    """One string per row naming its (user, item) pair."""
    return frame["user"].astype(str) + "\x00" + frame["item"].astype(str)


def empty_interactions() -> pd.DataFrame:
    """An interaction frame with no rows and the columns' dtypes."""
    return pd.DataFrame(
        {
            "event_id": pd.Series(dtype=str),
            "user": pd.Series(dtype=str),
            "item": pd.Series(dtype=str),
            "rating": pd.Series(dtype=float),
            "timestamp": pd.Series(dtype=float),
        }
    )
