"""Every validation rule of the event contract, one payload each."""

from __future__ import annotations

import json

import pytest

from streams.worker.validation import REASON_CODES, InvalidEvent, ValidationLimits, parse_event

NOW = 1_700_000_000.0
LIMITS = ValidationLimits()
GOOD = {
    "event_id": "e1",
    "user_id": "u1",
    "item_id": "i1",
    "type": "rating",
    "ts": NOW - 10,
    "value": 4.5,
    "session_id": "s1",
}


def payload(**changes) -> bytes:
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not _DROP}).encode()


_DROP = object()


def reason(raw: bytes | str) -> str:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, LIMITS, NOW)
    assert info.value.code in REASON_CODES
    assert str(info.value).startswith(info.value.code + ": ")
    return info.value.code


def test_a_good_event_parses_into_an_interaction():
    event = parse_event(payload(), LIMITS, NOW)
    assert (event.event_id, event.user_id, event.item_id, event.type) == ("e1", "u1", "i1", "rating")
    assert event.ts == NOW - 10 and event.value == 4.5 and event.session_id == "s1"


def test_optional_fields_may_be_absent_and_unknown_fields_are_ignored():
    event = parse_event(payload(type="click", value=_DROP, session_id=_DROP, extra="x"), LIMITS, NOW)
    assert event.value is None and event.session_id is None


def test_integer_timestamps_and_prices_are_numbers():
    event = parse_event(payload(type="purchase", ts=int(NOW), value=12), LIMITS, NOW)
    assert event.ts == NOW and event.value == 12.0


@pytest.mark.parametrize(
    "raw, code",
    [
        (b'{"event_id": ', "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"x" * (LIMITS.max_event_bytes + 1), "oversized"),
    ],
)
def test_undecodable_payloads(raw, code):
    assert reason(raw) == code


@pytest.mark.parametrize("field", ["event_id", "user_id", "item_id", "type", "ts"])
def test_every_required_field_is_required(field):
    assert reason(payload(**{field: _DROP})) == "missing_field"
    assert reason(payload(**{field: None})) == "missing_field"


@pytest.mark.parametrize(
    "changes",
    [
        {"user_id": 17},
        {"item_id": ["i1"]},
        {"event_id": 1.5},
        {"type": 3},
        {"ts": "yesterday"},
        {"ts": True},
        {"value": "4"},
        {"value": False},
        {"session_id": 9},
    ],
)
def test_mistyped_fields(changes):
    assert reason(payload(**changes)) == "wrong_type"


def test_nan_and_infinity_are_not_json():
    # RFC 8259 has no NaN/Infinity tokens (Python's json.dumps writes them; msgspec refuses them)
    assert reason(b'{"event_id":"e","user_id":"u","item_id":"i","type":"click","ts":NaN}') == "malformed_json"
    assert reason(payload(type="purchase", value=float("inf"))) == "malformed_json"


def test_numbers_beyond_float_range_are_mistyped():
    huge = b'{"event_id":"e","user_id":"u","item_id":"i","type":"purchase","ts":1.7e9,"value":' + b"9" * 400 + b"}"
    assert reason(huge) == "wrong_type"
    assert reason(b'{"event_id":"e","user_id":"u","item_id":"i","type":"click","ts":1e999}') == "wrong_type"


def test_hostile_payloads_are_rejected_not_raised():
    deep = b'{"event_id":"e","user_id":"u","item_id":"i","type":"click","ts":1.7e9,"x":' + b"[" * 5000
    deep += b"]" * 5000 + b"}"
    assert len(deep) < LIMITS.max_event_bytes and reason(deep) == "malformed_json"  # nested too deeply
    assert reason(bytes(range(256))) == "malformed_json"
    assert reason(None) == "malformed_json"  # a tombstone


def test_empty_and_overlong_ids():
    assert reason(payload(user_id="  ")) == "empty_id"
    assert reason(payload(item_id="i" * (LIMITS.max_id_length + 1))) == "id_too_long"


def test_unknown_event_type():
    assert reason(payload(type="like")) == "unknown_type"


@pytest.mark.parametrize("rating", [0.0, 0.49, 5.01, 10, -1])
def test_rating_outside_its_scale(rating):
    assert reason(payload(value=rating)) == "rating_out_of_scale"


def test_rating_needs_a_value():
    assert reason(payload(value=None)) == "missing_field"


@pytest.mark.parametrize("rating", [0.5, 3, 5.0])
def test_ratings_on_the_scale_edges_pass(rating):
    assert parse_event(payload(value=rating), LIMITS, NOW).value == rating


@pytest.mark.parametrize("price", [-0.01, LIMITS.max_value + 1])
def test_absurd_prices(price):
    assert reason(payload(type="purchase", value=price)) == "value_out_of_range"


def test_timestamps_far_in_the_future_or_past():
    assert reason(payload(ts=NOW + LIMITS.max_future_skew_s + 1)) == "ts_in_future"
    assert parse_event(payload(ts=NOW + LIMITS.max_future_skew_s - 1), LIMITS, NOW)
    assert reason(payload(ts=LIMITS.min_event_ts - 1)) == "ts_too_old"
    assert reason(payload(ts=-5)) == "ts_too_old"
