"""One batch through the pure ingest step: dead letters, one profile write per user, idempotency."""

from __future__ import annotations

import json

from streams.worker.ingest import RawRecord, ingest_batch
from streams.worker.profiles import ProfileConfig
from streams.worker.validation import ValidationLimits

NOW = 1_700_000_000.0


def record(offset, partition=0, **doc):
    base = {"event_id": f"e{offset}", "user_id": "u1", "item_id": "i1", "type": "click", "ts": NOW}
    return RawRecord(json.dumps({**base, **doc}).encode(), "events", partition, offset)


def run(records, stored=None, popularity=None):
    stored = stored or {}
    return ingest_batch(records, stored.get, popularity or {}, ValidationLimits(), ProfileConfig(), NOW)


def test_good_and_bad_records_are_split_and_counted():
    records = [
        record(0),
        RawRecord(b"nope", "events", 0, 1),
        record(2, item_id="i2", user_id="u2"),
        record(3, type="like"),
    ]
    result = run(records)
    assert [e.event_id for e in result.applied] == ["e0", "e2"]
    assert [(d.code, d.offset, d.raw) for d in result.dead_letters] == [
        ("malformed_json", 1, "nope"),
        ("unknown_type", 3, records[3].value.decode()),
    ]
    assert result.dead_by_reason == {"malformed_json": 1, "unknown_type": 1}
    assert result.applied_by_type == {"click": 2}
    assert sorted(result.profiles) == ["u1", "u2"]


def test_popularity_counts_within_and_across_batches():
    result = run([record(0), record(1, user_id="u2"), record(2, item_id="i9")], popularity={"i1": 5})
    assert result.popularity == {"i1": 7, "i9": 1}
    # u2 saw i1 when its count was 7
    assert result.profiles["u2"].popularity_mean == 7


def test_a_replayed_batch_is_a_no_op():
    first = run([record(0), record(1)])
    stored = {user: p.snapshot() for user, p in first.profiles.items()}
    again = run([record(0), record(1)], stored=stored, popularity=first.popularity)
    assert again.duplicates == 2 and not again.applied and not again.profiles and not again.popularity


def test_undecodable_bytes_are_kept_readable_in_the_dead_letter():
    result = run([RawRecord(b"\xff\xfe{", "events", 3, 42)])
    letter = result.dead_letters[0]
    assert (letter.topic, letter.partition, letter.offset) == ("events", 3, 42)
    assert letter.raw.endswith("{") and letter.reason.startswith("malformed_json: ")
