"""Typed records for every message advrec puts on Kafka (the topic contract, see docs/topics.md).

Records are frozen msgspec Structs: plain typed data, encoded as one JSON object per message
(`encode`) and decoded with type checks (`decode`). No I/O, no Faust: the pure rooms use them too.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

__all__ = [
    "EVENT_TYPES",
    "Interaction",
    "ValidEvent",
    "ValidBatch",
    "ItemDelta",
    "ItemDeltas",
    "DeadLetter",
    "BatchAnnouncement",
    "ModelUpdate",
    "RecommendationRequest",
    "Recommendation",
    "FraudFlag",
    "FRAUD_LABELS",
    "FraudLabel",
    "CatalogEntry",
    "encode",
    "decode",
    "shape_violation",
]

R = TypeVar("R")
_encoder = msgspec.json.Encoder()


def encode(record: msgspec.Struct) -> bytes:
    """The record as the JSON object that goes on the wire."""
    return _encoder.encode(record)


def decode(data: bytes | str, record_type: type[R]) -> R:
    """A record of `record_type` from its JSON (msgspec.ValidationError if it does not fit)."""
    return msgspec.json.decode(data, type=record_type)


_FIELD = re.compile(r"`\$\.(\w+)`")
_MISSING = re.compile(r"missing required field `(\w+)`")


def shape_violation(exc: msgspec.ValidationError) -> tuple[str, str]:
    """Which rule of a record's shape a payload broke, and the field: `missing_field`, `not_an_object`
    (the field is then "") or `wrong_type` (a JSON type that does not fit, or a number out of range)."""
    message = str(exc)
    missing = _MISSING.search(message)
    if missing:
        return "missing_field", missing.group(1)
    if message.startswith("Expected `object`"):
        return "not_an_object", ""
    field = _FIELD.search(message)
    return "wrong_type", field.group(1) if field else "?"


EVENT_TYPES = ("click", "purchase", "rating")


class Interaction(msgspec.Struct, frozen=True):
    """One user event on topic `events` (key = user_id)."""

    event_id: str
    user_id: str
    item_id: str
    type: str
    ts: float
    value: float | None = None
    session_id: str | None = None


class ValidEvent(msgspec.Struct, frozen=True, array_like=True):
    """An event that passed validation, with where it came from: the unit of the worker's envelopes.

    Encoded as a JSON array (not an object) to keep envelopes small.
    """

    event_id: str
    user_id: str
    item_id: str
    type: str
    ts: float
    value: float | None
    session_id: str | None
    partition: int  # source partition and offset on `events`
    offset: int
    kafka_ts: float  # arrival: the Kafka record's timestamp, epoch seconds


class ValidBatch(msgspec.Struct, frozen=True):
    """The validated events of one ingest batch from one source partition, in offset order.

    On `events.valid` (partition = the source partition, read by the window sink) and on
    `fraud.events` (one partition, read by the one fraud detector). Sent once per batch, so the
    agents downstream of ingest pay Faust's per-message cost per batch, not per event.
    """

    topic: str
    partition: int
    events: list[ValidEvent]


class ItemDelta(msgspec.Struct, frozen=True):
    """One ingest batch's events of one item from one source partition, on `items.deltas` (key = item_id).

    Carries the source offsets so that the item table applies each event exactly once, whatever
    a crash made the ingest agent send again.
    """

    item_id: str
    topic: str
    partition: int
    offsets: list[int]
    kinds: list[str]
    ratings: list[float | None]


class ItemDeltas(msgspec.Struct, frozen=True):
    """The item deltas of one ingest batch that belong to one `items.deltas` partition (one message)."""

    deltas: list[ItemDelta]


class DeadLetter(msgspec.Struct, frozen=True):
    """An input that could not be processed, on topic `events.deadletter`, with why and where from."""

    reason: str
    code: str
    raw: str
    topic: str
    partition: int
    offset: int
    index: int | None = None  # position in its envelope (a JSON array of events); None: a single event


class BatchAnnouncement(msgspec.Struct, frozen=True):
    """A closed window written as a Parquet file, on topic `batches` (key = "topic/partition")."""

    uri: str  # full URI of the file (file:///…, s3://…)
    path: str  # path relative to the window store: topic/p{partition}/{first}-{last}.parquet
    rows: int  # valid events in the file
    topic: str  # source topic and partition of every row
    partition: int
    first_offset: int  # source offset range the window covers (invalid records included)
    last_offset: int
    min_ts: float  # event-time span of the rows
    max_ts: float
    min_kafka_ts: float  # arrival span: Kafka record timestamps, epoch seconds
    max_kafka_ts: float
    suspect_rows: int  # rows of users flagged in the suspicion table when written
    written_at: float


# --- registry and scorer ---
class ModelUpdate(msgspec.Struct, frozen=True):
    """A move of a registered model's alias (promotion or rollback), on topic `model.updates`."""

    model_name: str
    version: int
    alias: str
    action: str
    ts: float


class RecommendationRequest(msgspec.Struct, frozen=True):
    """A request for a user's top-k items, on topic `rec.requests` (key = user_id)."""

    request_id: str
    user_id: str
    k: int = 10
    exclude_seen: bool = True


class Recommendation(msgspec.Struct, frozen=True):
    """The answer to a request, on topic `recommendations` (key = user_id); version 0 = popularity."""

    request_id: str
    user_id: str
    items: list[str]
    scores: list[float]
    model_version: int
    served_at: float
    source: str = "model"  # "profile" (the model over the user's profile), "model" (its trained row), "popularity"


class FraudFlag(msgspec.Struct, frozen=True):
    """A user crossing the fraud threshold (`flagged`) or falling back below it (cleared), or whose
    trust changed (`trusted`: the account may train now, or no longer).

    On `fraud.flags`, key = user_id.
    """

    user_id: str
    score: float
    reasons: list[str]
    ts: float
    detector_version: str
    flagged: bool
    # the trust gate's verdict: may this account's events train now? (None: a record of an older worker)
    trusted: bool | None = None


FRAUD_LABELS = ("fraud", "genuine")


class FraudLabel(msgspec.Struct, frozen=True):
    """An analyst's verdict on a user, on topic `fraud.labels` (key = user_id); the latest per user wins."""

    user_id: str
    label: str  # "fraud" | "genuine"
    analyst: str
    ts: float  # when the analyst decided (epoch s)

    def __post_init__(self) -> None:
        if self.label not in FRAUD_LABELS:
            raise ValueError(f"label must be one of {FRAUD_LABELS}, got {self.label!r}")


# --- catalog ---
class CatalogEntry(msgspec.Struct, frozen=True):
    """An item's description on the compacted topic `catalog` (key = item_id; the latest per item wins).

    The text the hybrid models embed: an item known only from its entry (no interaction yet) is
    scored from this text. `year` is optional structured metadata (release year, launch year).
    """

    item_id: str
    title: str = ""
    description: str = ""
    categories: list[str] = []
    year: int | None = None
