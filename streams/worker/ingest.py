"""One batch of raw `events` records → dead letters, profile writes, and the envelopes for everything downstream.

Each record gets exactly one verdict, here: valid (applied to its user's profile, or recognised as
a redelivered record already applied), a duplicate its producer sent again, or dead-lettered with a
reason. An exception raised while handling one record is that record's fault: it is dead-lettered
as `internal_error` (with the exception's type) and the batch goes on. The valid events go on, in
source-offset order, to the window sink and the fraud detector (`ValidBatch` envelopes) and to the
item table (`ItemDelta` per item); redelivered records go along too, since a crash may have lost
their first sending, and each consumer skips offsets it has already applied.

Pure: takes a profile lookup and returns what to write and send. Each user's profile is written
once per batch, however many events it saw.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.contract.records import DeadLetter, ItemDelta, ValidBatch, ValidEvent
from streams.worker.profiles import ProfileConfig, UserProfile
from streams.worker.validation import InvalidEvent, ValidationLimits, parse_event

__all__ = ["RawRecord", "BatchResult", "ingest_batch", "INTERNAL_ERROR", "RAW_LIMIT"]

INTERNAL_ERROR = "internal_error"
RAW_LIMIT = 4096  # characters of a bad input kept in its dead letter


class RawRecord(NamedTuple):
    """A Kafka record as the worker got it: undecoded value, where it came from, its timestamp (s)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    kafka_ts: float = 0.0


@dataclass
class _Item:
    offsets: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    ratings: list[float | None] = field(default_factory=list)


@dataclass
class BatchResult:
    """What one batch changes and sends, and the counts to report."""

    profiles: dict[str, UserProfile] = field(default_factory=dict)
    valid: dict[tuple[str, int], list[ValidEvent]] = field(default_factory=dict)
    items: dict[tuple[str, str, int], _Item] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_by_type: Tally = field(default_factory=Tally)
    dead_by_reason: Tally = field(default_factory=Tally)
    duplicates: int = 0  # events their producer sent again (same event_id): counted, not used
    redelivered: int = 0  # records Kafka delivered again after a restart: applied before, passed on again

    def envelopes(self) -> list[ValidBatch]:
        """The valid events, one envelope per source partition, in offset order."""
        return [ValidBatch(topic, partition, events) for (topic, partition), events in sorted(self.valid.items())]

    def item_deltas(self) -> list[ItemDelta]:
        """One delta per (item, source partition), offsets ascending."""
        return [
            ItemDelta(item_id, topic, partition, d.offsets, d.kinds, d.ratings)
            for (item_id, topic, partition), d in self.items.items()
        ]

    @property
    def applied(self) -> int:
        """Events applied to profiles for the first time in this batch."""
        return sum(self.applied_by_type.values())


def dead_letter(record: RawRecord, code: str, reason: str) -> DeadLetter:
    """The dead letter of a bad input: why, and where it came from (its raw text, cut to RAW_LIMIT)."""
    value = record.value
    raw = value.decode("utf-8", errors="replace") if isinstance(value, bytes | bytearray) else str(value or "")
    return DeadLetter(
        reason=reason,
        code=code,
        raw=raw[:RAW_LIMIT],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


def ingest_batch(
    records: list[RawRecord],
    load_profile: Callable[[str], dict | None],
    limits: ValidationLimits,
    config: ProfileConfig,
    now: float,
) -> BatchResult:
    """Give every record its verdict and fold the valid ones into profiles; never raises for one bad record."""
    result = BatchResult()
    loaded: dict[str, UserProfile] = {}  # every profile read this batch; `result.profiles` holds the changed ones
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        try:
            _ingest_one(record, load_profile, loaded, limits, config, now, result)
        except InvalidEvent as error:
            result.dead_letters.append(dead_letter(record, error.code, str(error)))
            result.dead_by_reason[error.code] += 1
        except Exception as exc:  # noqa: BLE001 - one input's fault must not take the batch down
            detail = f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"[:500]
            result.dead_letters.append(dead_letter(record, INTERNAL_ERROR, detail))
            result.dead_by_reason[INTERNAL_ERROR] += 1
    return result


def _ingest_one(
    record: RawRecord,
    load_profile: Callable[[str], dict | None],
    loaded: dict[str, UserProfile],
    limits: ValidationLimits,
    config: ProfileConfig,
    now: float,
    result: BatchResult,
) -> None:
    event = parse_event(record.value, limits, now)
    profile = loaded.get(event.user_id)
    if profile is None:
        stored = load_profile(event.user_id)
        profile = UserProfile.restore(stored) if stored else UserProfile(event.user_id)
        loaded[event.user_id] = profile
    seen = profile.seen_before(event.event_id, record.partition, record.offset)
    if seen == "resent":
        result.duplicates += 1
        return
    if seen == "redelivered":
        result.redelivered += 1
    else:
        profile.update(  # raises before changing anything, if at all
            event.event_id, event.item_id, event.type, event.ts, event.value, config, record.partition, record.offset
        )
        result.profiles[event.user_id] = profile
        result.applied_by_type[event.type] += 1
    source = (record.topic, record.partition)
    result.valid.setdefault(source, []).append(
        ValidEvent(
            event.event_id,
            event.user_id,
            event.item_id,
            event.type,
            event.ts,
            event.value,
            event.session_id,
            record.partition,
            record.offset,
            record.kafka_ts,
        )
    )
    item = result.items.get((event.item_id, *source))
    if item is None:
        item = result.items[(event.item_id, *source)] = _Item()
    item.offsets.append(record.offset)
    item.kinds.append(event.type)
    item.ratings.append(event.value if event.type == "rating" else None)
