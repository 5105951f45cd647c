"""Validation of raw `events` payloads: bytes in, an `Interaction` or an `InvalidEvent` out.

Pure: no Kafka, no clock (the caller passes `now`). Every rejection carries a short, stable
`code` (a Prometheus label) and a human `detail`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from streams.contract.records import EVENT_TYPES, Interaction

__all__ = ["InvalidEvent", "ValidationLimits", "REASON_CODES", "parse_event"]

REASON_CODES = (
    "oversized",
    "malformed_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "empty_id",
    "id_too_long",
    "unknown_type",
    "rating_out_of_scale",
    "value_out_of_range",
    "ts_in_future",
    "ts_too_old",
)
_REQUIRED = ("event_id", "user_id", "item_id", "type", "ts")
_ID_FIELDS = ("event_id", "user_id", "item_id")


class InvalidEvent(ValueError):
    """Raised for an input that breaks the event contract; `code` is one of REASON_CODES."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """The bounds an event must respect; built from Settings by the composition root."""

    max_event_bytes: int = 16_384
    max_future_skew_s: float = 3_600.0
    min_event_ts: float = 631_152_000.0
    rating_min: float = 0.5
    rating_max: float = 5.0
    max_value: float = 1_000_000.0
    max_id_length: int = 128

    @classmethod
    def from_settings(cls, settings) -> ValidationLimits:
        """Take the validation bounds out of a Settings object."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def _number(doc: dict, name: str) -> float | None:
    value = doc.get(name)
    if value is None:
        return None
    # bool is an int in Python, but `true` is not a number in the contract.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent("wrong_type", f"{name!r} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidEvent("wrong_type", f"{name!r} must be finite, got {value}")
    return value


def parse_event(raw: bytes | str, limits: ValidationLimits, now: float) -> Interaction:
    """Decode and check one payload against the contract; raise InvalidEvent with the reason."""
    if len(raw) > limits.max_event_bytes:
        raise InvalidEvent("oversized", f"{len(raw)} bytes > limit {limits.max_event_bytes}")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent("malformed_json", str(exc)) from None
    if not isinstance(doc, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(doc).__name__}")
    for name in _REQUIRED:
        if doc.get(name) is None:
            raise InvalidEvent("missing_field", f"{name!r} is required")
    for name in (*_ID_FIELDS, "type"):
        if not isinstance(doc[name], str):
            raise InvalidEvent("wrong_type", f"{name!r} must be a string, got {type(doc[name]).__name__}")
    session_id = doc.get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidEvent("wrong_type", f"'session_id' must be a string or null, got {type(session_id).__name__}")
    for name in _ID_FIELDS:
        if not doc[name].strip():
            raise InvalidEvent("empty_id", f"{name!r} is empty")
        if len(doc[name]) > limits.max_id_length:
            raise InvalidEvent("id_too_long", f"{name!r} longer than {limits.max_id_length}")
    kind = doc["type"]
    if kind not in EVENT_TYPES:
        raise InvalidEvent("unknown_type", f"{kind!r} is not one of {', '.join(EVENT_TYPES)}")
    ts = _number(doc, "ts")
    value = _number(doc, "value")
    if ts > now + limits.max_future_skew_s:
        raise InvalidEvent("ts_in_future", f"ts {ts:.0f} is {ts - now:.0f} s ahead of now")
    if ts < limits.min_event_ts:
        raise InvalidEvent("ts_too_old", f"ts {ts:.0f} is before {limits.min_event_ts:.0f}")
    if kind == "rating":
        if value is None:
            raise InvalidEvent("missing_field", "'value' is required for a rating")
        if not limits.rating_min <= value <= limits.rating_max:
            raise InvalidEvent(
                "rating_out_of_scale", f"rating {value} outside [{limits.rating_min}, {limits.rating_max}]"
            )
    elif value is not None and not 0.0 <= value <= limits.max_value:
        raise InvalidEvent("value_out_of_range", f"value {value} outside [0, {limits.max_value}]")
    return Interaction(
        event_id=doc["event_id"],
        user_id=doc["user_id"],
        item_id=doc["item_id"],
        type=kind,
        ts=ts,
        value=value,
        session_id=session_id,
    )
