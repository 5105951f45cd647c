"""Event → interaction rule and cleaning (suspect, flagged, trained offsets, duplicates), with literal rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.unit.training.stream.windows import window_rows
from training.models.mf import implicit_pairs
from training.stream.cleaning import clean_events, empty_interactions, events_to_interactions, hold_untrusted
from training.stream.offsets import OffsetRanges


def test_events_to_interactions_ratings_keep_value_clicks_and_purchases_are_implicit_positives():
    events = window_rows(
        ("e1", "u", "a", "rating", 2.0, 0), ("e2", "u", "b", "click", None, 1), ("e3", "u", "c", "purchase", 19.9, 2)
    )
    out = events_to_interactions(events)
    assert list(out.columns) == ["event_id", "user", "item", "rating", "timestamp"]
    assert out["rating"].tolist()[0] == 2.0 and np.isnan(out["rating"].tolist()[1:]).all()  # price is not a rating
    assert out["timestamp"].tolist() == [1_700_000_000.0, 1_700_000_001.0, 1_700_000_002.0]
    # A model that trains only on ratings >= 4 still takes clicks and purchases as positives.
    assert implicit_pairs(out, min_rating=4.0)["item"].tolist() == ["b", "c"]


def test_clean_events_drops_suspect_flagged_trained_and_duplicates():
    events = window_rows(
        ("e1", "ok", "a", "click", None, 10),
        ("e2", "cheat", "a", "click", None, 11),
        ("e3", "late", "a", "click", None, 12, True),
        ("e1", "ok", "a", "click", None, 13),
        ("e4", "ok", "b", "click", None, 5),
        ("e5", "ok", "c", "click", None, 14),
        ("e6", "ok", "d", "click", None, 15),
    )
    trained = OffsetRanges({"events/0": [[0, 9]]})
    kept, counts = clean_events(events, {"cheat"}, trained, known_event_ids=["e6"])
    assert kept["event_id"].tolist() == ["e1", "e5"]
    assert counts == {
        "rows": 7,
        "dropped_suspect": 1,
        "dropped_flagged": 1,
        "dropped_trained": 1,
        "dropped_duplicate": 2,
        "kept": 2,
    }


def test_hold_untrusted_trains_trusted_holds_the_rest_releases_and_drops_later():
    def rows(*pairs):
        return pd.DataFrame(
            {
                "event_id": [f"{u}-{i}" for u, i in pairs],
                "user": [u for u, _ in pairs],
                "item": [i for _, i in pairs],
                "rating": np.nan,
                "timestamp": 1.0,
            }
        )

    first = rows(("old", "a"), ("new", "b"), ("sleeper", "c"), ("new", "d"))
    train, waiting, counts = hold_untrusted(first, empty_interactions(), {"old"}, set(), max_waiting=100)
    assert train["event_id"].tolist() == ["old-a"] and waiting["user"].tolist() == ["new", "sleeper", "new"]
    assert counts == {
        "held": 3,
        "released": 0,
        "dropped_waiting_flagged": 0,
        "dropped_waiting_overflow": 0,
        "waiting": 3,
    }
    # next round: "new" earned trust, the sleeper was flagged late: its waiting row never trains
    train, waiting, counts = hold_untrusted(rows(("new", "e")), waiting, {"old", "new"}, {"sleeper"}, 100)
    assert sorted(train["event_id"]) == ["new-b", "new-d", "new-e"] and waiting.empty
    assert counts["released"] == 2 and counts["dropped_waiting_flagged"] == 1 and counts["held"] == 0
    # a cap on what may wait: the oldest go first
    _, waiting, counts = hold_untrusted(rows(("x", "1"), ("x", "2"), ("x", "3")), empty_interactions(), set(), set(), 2)
    assert waiting["item"].tolist() == ["2", "3"] and counts["dropped_waiting_overflow"] == 1
