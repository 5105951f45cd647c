"""One batch through the pure ingest step: one verdict per record, profiles written once, envelopes downstream."""

from __future__ import annotations

import json

import msgspec

from streams.worker.ingest import (
    INTERNAL_ERROR,
    BatchProfiles,
    RawRecord,
    ingest_batch,
    slices_by_bytes,
    split_at_offsets,
)
from streams.worker.profiles import ProfileCache, ProfileConfig, UserProfile
from streams.worker.validation import ValidationLimits

NOW = 1_700_000_000.0


def record(offset, partition=0, **doc):
    base = {"event_id": f"e{offset}", "user_id": "u1", "item_id": "i1", "type": "click", "ts": NOW}
    return RawRecord(json.dumps({**base, **doc}).encode(), "events", partition, offset, NOW + offset)


def run(records, stored=None):
    """`stored`: user -> profile snapshot, as the table holds them (restored afresh on every read)."""
    stored = stored or {}

    def load_profile(user_id):
        return UserProfile.restore(stored[user_id]) if user_id in stored else None

    return ingest_batch(records, load_profile, ValidationLimits(), ProfileConfig(), NOW)


def test_good_and_bad_records_are_split_and_counted():
    records = [
        record(0),
        RawRecord(b"nope", "events", 0, 1),
        record(2, item_id="i2", user_id="u2"),
        record(3, type="like"),
        RawRecord(None, "events", 0, 4),  # a tombstone
    ]
    result = run(records)
    assert [e.event_id for e in result.envelopes()[0].events] == ["e0", "e2"]
    assert [(d.code, d.offset) for d in result.dead_letters] == [
        ("malformed_json", 1),
        ("unknown_type", 3),
        ("malformed_json", 4),
    ]
    assert result.dead_letters[0].raw == "nope" and result.dead_letters[2].raw == ""
    assert result.dead_by_reason == {"malformed_json": 2, "unknown_type": 1}
    assert result.applied_by_type == {"click": 2} and result.applied == 2
    assert sorted(result.profiles) == ["u1", "u2"]


def test_envelopes_are_per_source_partition_in_offset_order_with_their_origin():
    result = run([record(7, partition=1), record(5, partition=1, user_id="u2"), record(3, partition=0)])
    envelopes = result.envelopes()
    assert [(b.partition, [e.offset for e in b.events]) for b in envelopes] == [(0, [3]), (1, [5, 7])]
    event = envelopes[1].events[0]
    assert (event.user_id, event.partition, event.offset, event.kafka_ts) == ("u2", 1, 5, NOW + 5)


def test_item_deltas_carry_each_events_offset_kind_and_rating():
    result = run(
        [
            record(0, type="rating", value=4.0),
            record(1, user_id="u2", type="purchase", value=9.5),
            record(2, item_id="i2", user_id="u3"),
        ]
    )
    deltas = {d.item_id: d for d in result.item_deltas()}
    assert (deltas["i1"].offsets, deltas["i1"].kinds, deltas["i1"].ratings) == (
        [0, 1],
        ["rating", "purchase"],
        [4.0, None],
    )
    assert deltas["i2"].offsets == [2] and deltas["i2"].partition == 0


def test_a_redelivered_batch_changes_no_profile_but_is_passed_on_again():
    first = run([record(0), record(1)])
    stored = {user: p.snapshot() for user, p in first.profiles.items()}
    again = run([record(0), record(1)], stored=stored)
    assert again.redelivered == 2 and not again.applied and not again.profiles and not again.dead_letters
    # downstream may have lost the first sending: the envelopes come again, with the same offsets
    assert [e.offset for e in again.envelopes()[0].events] == [0, 1]
    assert again.item_deltas()[0].offsets == [0, 1]


def test_an_event_sent_again_by_its_producer_is_a_duplicate_and_goes_nowhere():
    result = run([record(0), record(1, event_id="e0")])
    assert result.duplicates == 1 and result.applied == 1
    assert [e.offset for e in result.envelopes()[0].events] == [0]


def test_an_exception_caused_by_one_input_dead_letters_it_and_the_batch_goes_on():
    # u2's stored profile is corrupt: its events fail inside the profile update, nobody else's do
    stored = {"u2": {"user_id": "u2", "counts": "not a dict"}}
    result = run([record(0), record(1, user_id="u2"), record(2)], stored=stored)
    assert [(d.code, d.offset) for d in result.dead_letters] == [(INTERNAL_ERROR, 1)]
    assert result.dead_letters[0].reason.startswith(f"{INTERNAL_ERROR}: AttributeError")
    assert result.profiles["u1"].events == 2 and "u2" not in result.profiles
    assert [e.offset for e in result.envelopes()[0].events] == [0, 2]


def test_undecodable_bytes_are_kept_readable_in_the_dead_letter():
    result = run([RawRecord(b"\xff\xfe{", "events", 3, 42)])
    letter = result.dead_letters[0]
    assert (letter.topic, letter.partition, letter.offset) == ("events", 3, 42)
    assert letter.raw.endswith("{") and letter.reason.startswith("malformed_json: ")


def envelope(offset, events, partition=0):
    return RawRecord(json.dumps(events).encode(), "events", partition, offset, NOW + offset)


def event(event_id, user_id="u1", item_id="i1", **doc):
    return {"event_id": event_id, "user_id": user_id, "item_id": item_id, "type": "click", "ts": NOW, **doc}


def test_an_envelope_gives_each_event_its_own_verdict():
    events = [event("a"), {"event_id": "b"}, event("c", item_id="i2"), event("a"), event("d", user_id="u2")]
    result = run([record(0), envelope(1, events), record(2, event_id="z")])
    # the bad event is dead-lettered alone, with its place in the envelope and its own text
    assert [(d.code, d.offset, d.index) for d in result.dead_letters] == [("missing_field", 1, 1)]
    assert json.loads(result.dead_letters[0].raw) == {"event_id": "b"}
    # the envelope's good events share its offset and are all applied, the repeated id is a duplicate
    assert [(e.event_id, e.offset) for e in result.envelopes()[0].events] == [
        ("e0", 0),
        ("a", 1),
        ("c", 1),
        ("d", 1),
        ("z", 2),
    ]
    assert result.applied == 5 and result.duplicates == 1 and result.redelivered == 0
    assert result.profiles["u1"].events == 4 and result.profiles["u2"].events == 1
    assert [(d.item_id, d.offsets) for d in result.item_deltas()] == [("i1", [0, 1, 1, 2]), ("i2", [1])]


def test_an_envelope_delivered_again_is_redelivered_as_a_whole():
    first = run([envelope(4, [event("a"), event("b")])])
    stored = {"u1": first.profiles["u1"].snapshot()}
    again = run([envelope(4, [event("a"), event("b")]), envelope(5, [event("c"), event("d")])], stored)
    assert again.redelivered == 2 and again.applied == 2 and again.duplicates == 0
    assert again.profiles["u1"].events == 4


def test_a_broken_envelope_is_one_dead_letter():
    too_many = [event(str(i)) for i in range(ValidationLimits().max_envelope_events + 1)]
    records = [
        RawRecord(b"[1, 2", "events", 0, 0),
        RawRecord(b"  []", "events", 0, 1),
        envelope(2, too_many),
        envelope(3, [event("ok"), 7, None, "x"]),
    ]
    result = run(records)
    assert [(d.code, d.offset, d.index) for d in result.dead_letters] == [
        ("malformed_json", 0, None),
        ("bad_envelope", 1, None),
        ("bad_envelope", 2, None),
        ("not_an_object", 3, 1),
        ("not_an_object", 3, 2),
        ("not_an_object", 3, 3),
    ]
    assert result.applied == 1


def test_slices_by_bytes_keep_order_and_every_record():
    records = [RawRecord(b"x" * n, "events", 0, i) for i, n in enumerate([400, 400, 300, 900, 50, 2000, 10])]
    slices = slices_by_bytes(records, 1000)
    assert [[r.offset for r in part] for part in slices] == [[0, 1], [2], [3, 4], [5], [6]]
    assert slices_by_bytes([], 1000) == []


def test_chunks_never_cut_an_envelopes_shared_offset():
    result = run([record(0), envelope(1, [event(str(i)) for i in range(5)]), record(2, event_id="z")])
    events = result.envelopes()[0].events
    chunks = split_at_offsets(events, 2)
    assert [[e.offset for e in chunk] for chunk in chunks] == [[0, 1, 1, 1, 1, 1], [2]]
    assert [e for chunk in chunks for e in chunk] == events


def test_profiles_kept_decoded_between_batches_fold_exactly_as_profiles_read_from_the_table():
    """The ingest agent's cache (the object written, while the table holds its bytes) changes no verdict."""
    users, items = [f"u{n}" for n in range(7)], [f"i{n}" for n in range(5)]
    records = [
        record(offset, partition=offset % 2, user_id=users[offset % 7], item_id=items[offset % 5], ts=NOW - offset)
        for offset in range(60)
    ]
    batches = [records[:20], records[10:35], records[35:], records[35:]]  # overlaps: redelivered records

    def fold(load_profile, write):
        out = []
        for batch in batches:
            result = ingest_batch(batch, load_profile, ValidationLimits(), ProfileConfig(), NOW)
            write(result)
            out.append((result.applied, result.redelivered, result.duplicates))
        return out

    table: dict[bytes, bytes] = {}

    def read_afresh(user_id):
        stored = table.get(user_id.encode())
        return None if stored is None else UserProfile.restore(msgspec.json.decode(stored))

    def write_plain(result):
        table.update({u.encode(): msgspec.json.encode(p.snapshot()) for u, p in result.profiles.items()})

    plain = fold(read_afresh, write_plain)
    expected = dict(table)

    table.clear()
    cache = ProfileCache(capacity=3)  # smaller than the users: some are read from the table again

    def read_cached(user_id):
        key = user_id.encode()
        return cache.load(key, table.get(key), msgspec.json.decode)

    def write_cached(result):
        for user_id, profile in result.profiles.items():
            key, stored = user_id.encode(), msgspec.json.encode(profile.snapshot())
            table[key] = stored
            cache.wrote(key, stored, profile)

    assert fold(read_cached, write_cached) == plain
    assert plain[1][1] == 10 and plain[3] == (0, 25, 0)  # the overlaps were recognised
    assert table == expected


def test_a_batch_worked_through_in_slices_folds_as_the_whole_batch_at_once():
    """Profiles are written once per batch: each slice folds into what the earlier slices left."""
    users = [f"u{n}" for n in range(4)]
    seen = run([record(0, user_id="u0", item_id="i0")]).profiles["u0"]  # u0 was seen before this batch
    table = {"u0": msgspec.json.encode(seen.snapshot())}

    def read_afresh(user_id):
        return UserProfile.restore(msgspec.json.decode(table[user_id])) if user_id in table else None

    records = [record(0, user_id="u0", item_id="i0")]  # redelivered: applied before this batch
    records += [
        envelope(offset, [event(f"e{offset}-{k}", user_id=users[(offset + k) % 4], item_id=f"i{k}") for k in range(3)])
        for offset in range(1, 9)
    ]
    records.append(record(9, user_id="u1", event_id="e1-0"))  # its producer sent it again, slices later
    whole = ingest_batch(records, read_afresh, ValidationLimits(), ProfileConfig(), NOW)

    batch = BatchProfiles(read_afresh)
    counts = []
    for part in slices_by_bytes(records, 600):
        result = ingest_batch(part, batch.load, ValidationLimits(), ProfileConfig(), NOW)
        batch.took(result)
        counts.append((result.applied, result.redelivered, result.duplicates))

    assert len(counts) > 3  # the batch really was cut
    assert tuple(map(sum, zip(*counts))) == (whole.applied, whole.redelivered, whole.duplicates) == (24, 1, 1)
    assert {u: p.snapshot() for u, p in batch.changed.items()} == {u: p.snapshot() for u, p in whole.profiles.items()}
