"""Cutting the `events` stream into windows: the pure core of the window sink.

`cut_windows` groups a batch of raw records by source partition and keeps the valid events as rows;
`window_table` turns a window into an Arrow table of the window contract; `announcement` describes a
written file for topic `batches`. No I/O here: files are written by `streams.contract.windows` and the
agent lives in `streams.worker.window_agent`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

from streams.contract.records import BatchAnnouncement
from streams.contract.windows import WINDOW_SCHEMA, window_path
from streams.worker.validation import InvalidEvent, ValidationLimits, parse_event

__all__ = ["WindowRecord", "Window", "cut_windows", "window_table", "announcement"]


class WindowRecord(NamedTuple):
    """A Kafka record as the sink got it: undecoded value, where it came from, its Kafka timestamp (s)."""

    value: bytes
    topic: str
    partition: int
    offset: int
    kafka_ts: float


@dataclass
class Window:
    """The valid events of one source partition over one offset range."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    rows: list[dict] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Its file's path relative to the store."""
        return window_path(self.topic, self.partition, self.first_offset, self.last_offset)


def cut_windows(
    records: Iterable[WindowRecord],
    limits: ValidationLimits,
    now: float,
    is_suspect: Callable[[str], bool] = lambda user: False,
) -> list[Window]:
    """Group records by source partition; keep the valid ones as rows (invalid ones are skipped)."""
    windows: dict[tuple[str, int], Window] = {}
    for record in records:
        key = (record.topic, record.partition)
        window = windows.get(key)
        if window is None:
            window = windows[key] = Window(record.topic, record.partition, record.offset, record.offset)
        window.first_offset = min(window.first_offset, record.offset)
        window.last_offset = max(window.last_offset, record.offset)
        try:
            event = parse_event(record.value, limits, now)
        except InvalidEvent:
            continue  # the ingest agent dead-letters it
        window.rows.append(
            {
                "event_id": event.event_id,
                "user_id": event.user_id,
                "item_id": event.item_id,
                "type": event.type,
                "ts": event.ts,
                "value": event.value,
                "session_id": event.session_id,
                "partition": record.partition,
                "offset": record.offset,
                "kafka_ts": record.kafka_ts,
                "suspect": bool(is_suspect(event.user_id)),
            }
        )
    return sorted(windows.values(), key=lambda w: (w.topic, w.partition))


def window_table(window: Window) -> pa.Table:
    """The window's rows as an Arrow table of WINDOW_SCHEMA."""
    return pa.Table.from_pylist(window.rows, schema=WINDOW_SCHEMA)


def announcement(window: Window, uri: str, written_at: float) -> BatchAnnouncement:
    """The `batches` record describing a written window (spans and counts of its rows)."""
    rows = window.rows
    return BatchAnnouncement(
        uri=uri,
        path=window.path,
        rows=len(rows),
        topic=window.topic,
        partition=window.partition,
        first_offset=window.first_offset,
        last_offset=window.last_offset,
        min_ts=min(r["ts"] for r in rows),
        max_ts=max(r["ts"] for r in rows),
        min_kafka_ts=min(r["kafka_ts"] for r in rows),
        max_kafka_ts=max(r["kafka_ts"] for r in rows),
        suspect_rows=sum(r["suspect"] for r in rows),
        written_at=written_at,
    )
