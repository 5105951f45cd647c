"""Item statistics: exact counts and moments, each source offset applied once, JSON round trip."""

from __future__ import annotations

import json
import math

import msgspec

from streams.contract.records import ItemDelta
from streams.worker.items import ItemStats


def delta(offsets, kinds=None, ratings=None, partition=0):
    kinds = kinds or ["rating"] * len(offsets)
    ratings = ratings or [None if k != "rating" else 4.0 for k in kinds]
    return ItemDelta("i1", "events", partition, offsets, kinds, ratings)


def test_counts_and_rating_moments_by_hand():
    stats = ItemStats("i1")
    assert stats.update(delta([1, 2, 3], ["rating", "click", "purchase"], [2.0, None, None])) == 3
    assert stats.update(delta([7], ["rating"], [4.0])) == 1
    assert (stats.events, stats.clicks, stats.purchases, stats.ratings) == (4, 1, 1, 2)
    assert stats.rating_mean == 3.0 and math.isclose(stats.rating_variance, 1.0)
    assert stats.view()["rating_sd"] == 1.0


def test_a_delta_sent_again_is_applied_once_even_with_other_batch_boundaries():
    stats = ItemStats("i1")
    stats.update(delta([10, 12]))
    # after a crash the ingest agent re-reads [10..15] as one batch: only 15 is new
    assert stats.update(delta([10, 12, 15])) == 1
    assert stats.events == 3 and stats.marks == {"events/0": 15}


def test_each_source_partition_has_its_own_mark():
    stats = ItemStats("i1")
    stats.update(delta([100]))
    assert stats.update(delta([5], partition=3)) == 1
    assert stats.marks == {"events/0": 100, "events/3": 5}


def test_stored_json_restores_equal():
    stats = ItemStats("i1")
    stats.update(delta([1, 2], ["rating", "click"], [5.0, None]))
    stored = msgspec.json.encode(stats)  # as the item table holds it
    assert json.loads(stored)["events"] == 2  # plain JSON for the changelog's readers (the scorer)
    back = msgspec.json.decode(stored, type=ItemStats)
    assert back == stats and back.update(delta([2])) == 0


def test_an_item_without_ratings_has_no_mean():
    stats = ItemStats("i1")
    stats.update(delta([1], ["click"], [None]))
    assert stats.rating_mean is None and stats.view()["rating_sd"] is None


def test_events_of_one_envelope_share_an_offset_and_all_count_once():
    stats = ItemStats("i1")
    assert stats.update(delta([4, 4, 4, 6])) == 4  # three events of the envelope at offset 4
    assert stats.update(delta([4, 4, 4, 6, 9, 9])) == 2  # delivered again with a new envelope at 9
    assert stats.events == 6 and stats.marks == {"events/0": 9}
