"""Event → interaction rule and cleaning (suspect, flagged, trained offsets, duplicates), with literal rows."""

from __future__ import annotations

import numpy as np

from tests.unit.training.stream.windows import window_rows
from training.models.mf import implicit_pairs
from training.stream.cleaning import clean_events, events_to_interactions
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
