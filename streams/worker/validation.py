"""Validation of raw `events` payloads: bytes in, an `Interaction` or an `InvalidEvent` out.

Decoding is msgspec's typed decoder straight into the contract record (about 1 µs an event, against
7 µs for `json.loads` and per-field checks); the rules msgspec cannot express follow. Pure: no
Kafka, no clock (the caller passes `now`). Every rejection carries a short, stable `code` (a
Prometheus label) and a human `detail`. It must never raise anything but `InvalidEvent` for a
bad payload, however hostile (deep nesting, huge numbers, binary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from streams.contract.records import EVENT_TYPES, Interaction

__all__ = ["InvalidEvent", "ValidationLimits", "REASON_CODES", "parse_event", "is_envelope", "split_envelope"]

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
    "bad_envelope",
)
_ID_FIELDS = ("event_id", "user_id", "item_id")
_OPTIONAL = ("value", "session_id")
_DECODER = msgspec.json.Decoder(Interaction)
_ENVELOPE_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_FIELD = re.compile(r"`\$\.(\w+)`")
_MISSING = re.compile(r"missing required field `(\w+)`")


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
    max_envelope_bytes: int = 1_048_576
    max_envelope_events: int = 1_000

    @classmethod
    def from_settings(cls, settings) -> ValidationLimits:
        """Take the validation bounds out of a Settings object."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


def _decode(raw: bytes | str) -> Interaction:
    """msgspec's verdict on the payload's shape, as an `InvalidEvent` with our reason codes."""
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        message = str(exc)
        missing = _MISSING.search(message)
        if missing:
            raise InvalidEvent("missing_field", f"{missing.group(1)!r} is required") from None
        if message.startswith("Expected `object`"):
            raise InvalidEvent("not_an_object", f"expected a JSON object: {message}") from None
        field = _FIELD.search(message)
        name = field.group(1) if field else "?"
        if "got `null`" in message and name not in _OPTIONAL:
            raise InvalidEvent("missing_field", f"{name!r} is required") from None
        # wrong JSON type, or a number out of float range (a 400-digit integer, 1e999)
        raise InvalidEvent("wrong_type", message) from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("malformed_json", str(exc)) from None
    except RecursionError:
        raise InvalidEvent("malformed_json", "nested too deeply") from None


def is_envelope(raw: bytes | str | None) -> bool:
    """True if the payload is a JSON array: an envelope of events rather than one event."""
    if not raw:
        return False
    head = raw.lstrip()[:1]
    return head in (b"[", "[")


def split_envelope(raw: bytes | str, limits: ValidationLimits) -> list[bytes]:
    """The raw JSON text of each event in an envelope, to be validated one by one.

    Raises InvalidEvent for the envelope as a whole (too large, not a JSON array, empty, too many
    events); what is wrong inside one event is that event's problem, found by `parse_event`.
    """
    if len(raw) > limits.max_envelope_bytes:
        raise InvalidEvent("oversized", f"envelope of {len(raw)} bytes > limit {limits.max_envelope_bytes}")
    try:
        parts = _ENVELOPE_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidEvent("malformed_json", f"envelope: {exc}") from None
    except RecursionError:
        raise InvalidEvent("malformed_json", "envelope nested too deeply") from None
    if not parts:
        raise InvalidEvent("bad_envelope", "an envelope holds no events")
    if len(parts) > limits.max_envelope_events:
        raise InvalidEvent("bad_envelope", f"{len(parts)} events > limit {limits.max_envelope_events} per envelope")
    return [bytes(part) for part in parts]


def parse_event(raw: bytes | str, limits: ValidationLimits, now: float) -> Interaction:
    """Decode and check one payload against the contract; raise InvalidEvent with the reason."""
    if raw is None:
        raise InvalidEvent("malformed_json", "no value (a tombstone)")
    if len(raw) > limits.max_event_bytes:
        raise InvalidEvent("oversized", f"{len(raw)} bytes > limit {limits.max_event_bytes}")
    event = _decode(raw)
    for name in _ID_FIELDS:
        value = getattr(event, name)
        if not value.strip():
            raise InvalidEvent("empty_id", f"{name!r} is empty")
        if len(value) > limits.max_id_length:
            raise InvalidEvent("id_too_long", f"{name!r} longer than {limits.max_id_length}")
    if event.type not in EVENT_TYPES:
        raise InvalidEvent("unknown_type", f"{event.type[:40]!r} is not one of {', '.join(EVENT_TYPES)}")
    ts, value = event.ts, event.value
    if ts > now + limits.max_future_skew_s:
        raise InvalidEvent("ts_in_future", f"ts {ts:.0f} is {ts - now:.0f} s ahead of now")
    if ts < limits.min_event_ts:
        raise InvalidEvent("ts_too_old", f"ts {ts:.0f} is before {limits.min_event_ts:.0f}")
    if event.type == "rating":
        if value is None:
            raise InvalidEvent("missing_field", "'value' is required for a rating")
        if not limits.rating_min <= value <= limits.rating_max:
            raise InvalidEvent(
                "rating_out_of_scale", f"rating {value} outside [{limits.rating_min}, {limits.rating_max}]"
            )
    elif value is not None and not 0.0 <= value <= limits.max_value:
        raise InvalidEvent("value_out_of_range", f"value {value} outside [0, {limits.max_value}]")
    return event
