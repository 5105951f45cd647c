"""Typed records for every message advrec puts on Kafka (the topic contract, see docs/topics.md).

Records are data only: no I/O and no logic beyond (de)serialisation.
"""
from __future__ import annotations

from typing import Optional

import faust

__all__ = ["EVENT_TYPES", "Interaction", "DeadLetter", "FraudFlag"]

EVENT_TYPES = ("click", "purchase", "rating")


class Interaction(faust.Record, serializer="json", include_metadata=False):
    """One user event on topic `events` (key = user_id)."""

    event_id: str
    user_id: str
    item_id: str
    type: str
    ts: float
    value: Optional[float] = None
    session_id: Optional[str] = None


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """An input that could not be processed, on topic `events.deadletter`, with why and where from."""

    reason: str
    code: str
    raw: str
    topic: str
    partition: int
    offset: int


class FraudFlag(faust.Record, serializer="json", include_metadata=False):
    """A user crossing the fraud threshold (`flagged`) or falling back below it (cleared), on `fraud.flags` (key = user_id)."""

    user_id: str
    score: float
    reasons: list[str]
    ts: float
    detector_version: str
    flagged: bool
