"""One batch of raw `events` records → dead letters, profile updates, item-popularity updates.

Pure: takes the current profile and popularity lookups as mappings and returns what to write.
Each user's profile and each item's count is written once per batch, whatever the number of
events it saw; that is what keeps the worker fast (see benchmarks/ingest.py).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.contract.records import DeadLetter, Interaction
from streams.worker.profiles import ProfileConfig, UserProfile
from streams.worker.validation import InvalidEvent, ValidationLimits, parse_event

__all__ = ["RawRecord", "BatchResult", "ingest_batch"]


class RawRecord(NamedTuple):
    """A Kafka record as the worker got it: undecoded value and where it came from."""

    value: bytes
    topic: str
    partition: int
    offset: int


@dataclass
class BatchResult:
    """What one batch changes: rows to write and counts to report."""

    profiles: dict[str, UserProfile] = field(default_factory=dict)
    popularity: dict[str, int] = field(default_factory=dict)
    applied: list[Interaction] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_by_type: Tally = field(default_factory=Tally)
    dead_by_reason: Tally = field(default_factory=Tally)
    duplicates: int = 0


def _dead_letter(record: RawRecord, error: InvalidEvent) -> DeadLetter:
    raw = record.value.decode("utf-8", errors="replace") if isinstance(record.value, bytes) else str(record.value)
    return DeadLetter(
        reason=str(error),
        code=error.code,
        raw=raw[:4096],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


def ingest_batch(
    records: list[RawRecord],
    load_profile: Callable[[str], dict | None],
    load_popularity: Mapping[str, int] | Callable[[str], int],
    limits: ValidationLimits,
    config: ProfileConfig,
    now: float,
) -> BatchResult:
    """Validate every record, dead-letter the bad ones, and fold the good ones into profiles."""
    result = BatchResult()
    profiles, popularity = result.profiles, result.popularity
    loaded: dict[str, UserProfile] = {}  # every profile read this batch; `profiles` holds the changed ones
    get_popularity = load_popularity if callable(load_popularity) else (lambda k: load_popularity.get(k, 0))
    for record in records:
        try:
            event = parse_event(record.value, limits, now)
        except InvalidEvent as error:
            result.dead_letters.append(_dead_letter(record, error))
            result.dead_by_reason[error.code] += 1
            continue
        profile = loaded.get(event.user_id)
        if profile is None:
            stored = load_profile(event.user_id)
            profile = UserProfile.restore(stored) if stored else UserProfile(event.user_id)
            loaded[event.user_id] = profile
        if profile.is_duplicate(event.event_id, record.partition, record.offset):
            result.duplicates += 1
            continue
        count = popularity.get(event.item_id)
        if count is None:
            count = get_popularity(event.item_id) or 0
        popularity[event.item_id] = count = count + 1
        profile.update(
            event.event_id,
            event.item_id,
            event.type,
            event.ts,
            event.value,
            count,
            config,
            record.partition,
            record.offset,
        )
        profiles[event.user_id] = profile
        result.applied.append(event)
        result.applied_by_type[event.type] += 1
    return result
