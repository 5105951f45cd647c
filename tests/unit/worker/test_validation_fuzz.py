"""Property-based fuzzing of the validator: whatever arrives, the verdict is an Interaction or an InvalidEvent."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.contract.records import EVENT_TYPES, Interaction
from streams.worker.validation import REASON_CODES, InvalidEvent, ValidationLimits, parse_event

NOW = 1_700_000_000.0
LIMITS = ValidationLimits()

ids = st.text(min_size=1, max_size=LIMITS.max_id_length).filter(lambda s: s.strip())
good_events = st.fixed_dictionaries(
    {
        "event_id": ids,
        "user_id": ids,
        "item_id": ids,
        "type": st.sampled_from(EVENT_TYPES),
        "ts": st.floats(LIMITS.min_event_ts, NOW + LIMITS.max_future_skew_s),
    },
    optional={"session_id": st.none() | ids},
).flatmap(
    lambda doc: st.builds(
        lambda value: {**doc, "value": value},
        st.floats(LIMITS.rating_min, LIMITS.rating_max)
        if doc["type"] == "rating"
        else st.none() | st.floats(0.0, LIMITS.max_value),
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def verdict(raw) -> Interaction | str:
    """The event, or its reason code; anything else escaping parse_event fails the test."""
    try:
        return parse_event(raw, LIMITS, NOW)
    except InvalidEvent as exc:
        assert exc.code in REASON_CODES
        return exc.code


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_get_a_verdict(raw):
    assert isinstance(verdict(raw), (Interaction, str))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_document_gets_a_verdict(doc):
    assert isinstance(verdict(json.dumps(doc).encode()), (Interaction, str))


@settings(max_examples=300, deadline=None)
@given(good_events)
def test_every_contract_event_parses_to_its_own_fields(doc):
    event = verdict(json.dumps(doc).encode())
    assert isinstance(event, Interaction)
    for name, value in doc.items():
        got = getattr(event, name)
        assert got == value or (isinstance(value, float) and math.isclose(got, value))


@settings(max_examples=300, deadline=None)
@given(good_events, st.sampled_from(["event_id", "user_id", "item_id", "type", "ts"]), json_values)
def test_a_contract_event_with_one_field_replaced_is_valid_or_refused_for_a_reason(doc, field, junk):
    got = verdict(json.dumps({**doc, field: junk}).encode())
    if isinstance(got, str):
        assert got in REASON_CODES and got not in ("oversized", "not_an_object")
    elif field == "ts":  # a number in range is still a timestamp
        assert got.ts == float(junk)


@settings(max_examples=200, deadline=None)
@given(good_events, st.integers(min_value=1, max_value=20_000))
def test_deep_nesting_is_malformed_or_oversized_never_a_crash(doc, depth):
    raw = json.dumps(doc)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    got = verdict(raw.encode())
    assert got in ("malformed_json", "oversized") or isinstance(got, Interaction)
