"""One batch of raw `events` records → dead letters, profile writes, and the envelopes for everything downstream.

Each record gets exactly one verdict, here: valid (applied to its user's profile, or recognised as
a redelivered record already applied), a duplicate its producer sent again, or dead-lettered with a
reason. An exception raised while handling one record is that record's fault: it is dead-lettered
as `internal_error` (with the exception's type) and the batch goes on. The valid events go on, in
source-offset order, to the window sink and the fraud detector (`ValidBatch` envelopes) and to the
item table (`ItemDelta` per item); redelivered records go along too, since a crash may have lost
their first sending, and each consumer skips offsets it has already applied.

A record may also be an envelope: a JSON array of events. Each event in it gets its own verdict
(a bad one is dead-lettered with its `index`, the others go on); only an envelope that is not a
JSON array of 1..max events is dead-lettered whole. The events of one envelope share its offset:
they are always handled in one batch, so every consumer that skips "offsets at or below the last
applied" treats them alike, all new or all redelivered.

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
from streams.worker.validation import InvalidEvent, ValidationLimits, is_envelope, parse_event, split_envelope

__all__ = [
    "RawRecord",
    "BatchResult",
    "BatchProfiles",
    "ingest_batch",
    "slices_by_bytes",
    "split_at_offsets",
    "INTERNAL_ERROR",
    "RAW_LIMIT",
]

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
class BatchResult:
    """What one batch changes and sends, and the counts to report."""

    profiles: dict[str, UserProfile] = field(default_factory=dict)
    valid: dict[tuple[str, int], list[ValidEvent]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    applied_by_type: Tally = field(default_factory=Tally)
    dead_by_reason: Tally = field(default_factory=Tally)
    duplicates: int = 0  # events their producer sent again (same event_id): counted, not used
    redelivered: int = 0  # records Kafka delivered again after a restart: applied before, passed on again
    # (user, partition, offset) applied in this batch: an envelope's later events for the same user
    # share the offset of the first and are new, not redelivered
    applied_records: set[tuple[str, int, int]] = field(default_factory=set)

    def envelopes(self) -> list[ValidBatch]:
        """The valid events, one envelope per source partition, in offset order."""
        return [ValidBatch(topic, partition, events) for (topic, partition), events in sorted(self.valid.items())]

    def item_deltas(self) -> list[ItemDelta]:
        """One delta per (item, source partition), offsets ascending (grouped here, once per batch,
        rather than event by event)."""
        deltas = []
        for (topic, partition), events in self.valid.items():
            by_item: dict[str, tuple[list, list, list]] = {}
            for e in events:
                lists = by_item.get(e.item_id)
                if lists is None:
                    lists = by_item[e.item_id] = ([], [], [])
                lists[0].append(e.offset)
                lists[1].append(e.type)
                lists[2].append(e.value if e.type == "rating" else None)
            deltas += [ItemDelta(item, topic, partition, *lists) for item, lists in by_item.items()]
        return deltas

    @property
    def applied(self) -> int:
        """Events applied to profiles for the first time in this batch."""
        return sum(self.applied_by_type.values())

    @property
    def inputs(self) -> int:
        """Every input given a verdict: applied, dead-lettered, duplicate or redelivered."""
        return self.applied + sum(self.dead_by_reason.values()) + self.duplicates + self.redelivered


class BatchProfiles:
    """The profiles a batch has changed so far, across the slices it is worked through in.

    A batch's changed profiles are written once, when its last slice is done: until then a later
    slice must fold into the profile as the earlier slices left it, not as the table still holds it.
    """

    def __init__(self, load_stored: Callable[[str], UserProfile | None]) -> None:
        self.changed: dict[str, UserProfile] = {}
        self._load_stored = load_stored

    def load(self, user_id: str) -> UserProfile | None:
        """The user's profile as this batch left it so far (else as stored; None: never seen)."""
        profile = self.changed.get(user_id)
        return profile if profile is not None else self._load_stored(user_id)

    def took(self, result: BatchResult) -> None:
        """One slice is done: its changed profiles join the batch's."""
        self.changed.update(result.profiles)


def slices_by_bytes(records: list[RawRecord], max_bytes: int) -> list[list[RawRecord]]:
    """The batch cut into consecutive slices of at most `max_bytes` of values (at least one record each)."""
    slices, current, size = [], [], 0
    for record in records:
        n = len(record.value or b"")
        if current and size + n > max_bytes:
            slices.append(current)
            current, size = [], 0
        current.append(record)
        size += n
    if current:
        slices.append(current)
    return slices


def split_at_offsets(events: list[ValidEvent], max_events: int) -> list[list[ValidEvent]]:
    """Consecutive chunks of about `max_events`, never cutting between events that share an offset.

    An envelope's events share its offset, and every consumer skips an offset at or below the last
    one it applied before the chunk: a chunk boundary inside one offset would lose the rest of it.
    """
    chunks, start = [], 0
    while start < len(events):
        end = min(start + max_events, len(events))
        while end < len(events) and events[end].offset == events[end - 1].offset:
            end += 1
        chunks.append(events[start:end])
        start = end
    return chunks


def dead_letter(
    record: RawRecord, code: str, reason: str, value: bytes | str | None = None, index: int | None = None
) -> DeadLetter:
    """The dead letter of a bad input: why, and where it came from (its raw text, cut to RAW_LIMIT).

    `value` and `index`: the one event of an envelope that is bad, and its position in it.
    """
    value = record.value if index is None else value
    raw = value.decode("utf-8", errors="replace") if isinstance(value, bytes | bytearray) else str(value or "")
    return DeadLetter(
        reason=reason,
        code=code,
        raw=raw[:RAW_LIMIT],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        index=index,
    )


def ingest_batch(
    records: list[RawRecord],
    load_profile: Callable[[str], UserProfile | None],
    limits: ValidationLimits,
    config: ProfileConfig,
    now: float,
) -> BatchResult:
    """Give every record its verdict and fold the valid ones into profiles; never raises for one bad record.

    `load_profile(user_id)`: the user's stored profile (None if none), an object this batch may
    change; an exception it raises is that event's fault (a corrupt profile dead-letters its events).
    """
    result = BatchResult()
    loaded: dict[str, UserProfile] = {}  # every profile read this batch; `result.profiles` holds the changed ones
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        if not is_envelope(record.value):
            _verdict(record, record.value, None, load_profile, loaded, limits, config, now, result)
            continue
        try:
            parts = split_envelope(record.value, limits)
        except InvalidEvent as error:
            _dead(result, record, error.code, str(error))
            continue
        for index, part in enumerate(parts):
            _verdict(record, part, index, load_profile, loaded, limits, config, now, result)
    return result


def _dead(result: BatchResult, record: RawRecord, code: str, reason: str, value=None, index=None) -> None:
    result.dead_letters.append(dead_letter(record, code, reason, value, index))
    result.dead_by_reason[code] += 1


def _verdict(record, value, index, load_profile, loaded, limits, config, now, result) -> None:
    """One event's verdict; an exception is the event's own fault and dead-letters it alone."""
    try:
        _ingest_one(record, value, load_profile, loaded, limits, config, now, result)
    except InvalidEvent as error:
        _dead(result, record, error.code, str(error), value, index)
    except Exception as exc:  # noqa: BLE001 - one input's fault must not take the batch down
        _dead(result, record, INTERNAL_ERROR, f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}"[:500], value, index)


def _ingest_one(
    record: RawRecord,
    value: bytes | str | None,
    load_profile: Callable[[str], UserProfile | None],
    loaded: dict[str, UserProfile],
    limits: ValidationLimits,
    config: ProfileConfig,
    now: float,
    result: BatchResult,
) -> None:
    event = parse_event(value, limits, now)
    profile = loaded.get(event.user_id)
    if profile is None:
        profile = load_profile(event.user_id) or UserProfile(event.user_id)
        loaded[event.user_id] = profile
    here = (event.user_id, record.partition, record.offset)
    sibling = here in result.applied_records  # an earlier event of the same envelope was applied
    if sibling:
        seen = profile.seen_before(event.event_id)  # only its event id can repeat
    else:
        seen = profile.seen_before(event.event_id, record.partition, record.offset)
    if seen == "resent":
        result.duplicates += 1
        return
    if seen == "redelivered":
        result.redelivered += 1
    else:
        partition, offset = (None, None) if sibling else (record.partition, record.offset)
        profile.apply(  # raises before changing anything, if at all
            event.event_id, event.item_id, event.type, event.ts, event.value, config, partition, offset
        )
        result.profiles[event.user_id] = profile
        result.applied_records.add(here)
        result.applied_by_type[event.type] += 1
    valid = result.valid.get((record.topic, record.partition))
    if valid is None:
        valid = result.valid[(record.topic, record.partition)] = []
    valid.append(
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
