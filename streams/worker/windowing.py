"""Windows of validated events: the pure core of the window sink (training batches).

`WindowBuffer` collects the events of the `ValidBatch` envelopes per source partition, in offset
order, and hands out a `Window` when it holds `max_events` events or its first event waited
`max_seconds`. It remembers the last offset written per partition (`marks`), so an envelope sent
again after a crash adds nothing that is already in a window or in the buffer. Each window keeps
the tokens of the envelopes it consumed: the agent acknowledges them only once the window's file
is written and announced. `window_table` and `announcement` describe a window for the file and
for topic `batches`. No I/O and no clock here (callers pass `now`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pyarrow as pa

from streams.contract.records import BatchAnnouncement, ValidBatch, ValidEvent
from streams.contract.windows import WINDOW_SCHEMA, window_path

__all__ = ["Window", "WindowBuffer", "window_table", "announcement"]


@dataclass
class Window:
    """The valid events of one source partition over one offset range, and what to ack once written.

    Kept as the events themselves plus one suspect flag each, not as rows: the file is built
    column by column from them (`window_table`), several times cheaper than from a dict per row.
    """

    topic: str
    partition: int
    events: list[ValidEvent] = field(default_factory=list)
    suspect: list[bool] = field(default_factory=list)  # per event: its user was flagged when it arrived
    tokens: list[Any] = field(default_factory=list)
    opened_at: float = 0.0

    @property
    def first_offset(self) -> int:
        """Offset of its first event."""
        return self.events[0].offset

    @property
    def last_offset(self) -> int:
        """Offset of its last event."""
        return self.events[-1].offset

    @property
    def path(self) -> str:
        """Its file's path relative to the store: the same events always give the same name."""
        return window_path(self.topic, self.partition, self.first_offset, self.last_offset)

    @property
    def rows(self) -> list[dict]:
        """Its rows as dicts of WINDOW_SCHEMA's columns, as the file holds them (for reading, not the hot path)."""
        return [
            {**msgspec.structs.asdict(event), "suspect": suspect}
            for event, suspect in zip(self.events, self.suspect, strict=True)
        ]


class WindowBuffer:
    """Open windows per source partition; full or old ones come out of `due`.

    A window holds at most `max_events` events, except that the events of one source offset (one
    envelope a producer sent) never straddle two windows: the offset marks which events were
    written. A full window is sealed as soon as the next event arrives, and waits in `sealed` for
    `due`.
    """

    def __init__(self, max_events: int, max_seconds: float, marks: Mapping[tuple[str, int], int] | None = None):
        self.max_events, self.max_seconds = max_events, max_seconds
        self.marks: dict[tuple[str, int], int] = dict(marks or {})
        self.open: dict[tuple[str, int], Window] = {}
        self.sealed: list[Window] = []  # full, in the order they filled: written before any open window

    def last_offset(self, source: tuple[str, int]) -> int:
        """The last offset written or buffered for a source partition (-1: none)."""
        window = self.open.get(source)
        if window is not None and window.events:
            return window.last_offset
        return self.marks.get(source, -1)

    def update(
        self, batch: ValidBatch, now: float, token: Any = None, is_suspect: Callable[[str], bool] = lambda user: False
    ) -> int:
        """Add the envelope's events not yet written or buffered; return how many were new."""
        source = (batch.topic, batch.partition)
        last = self.last_offset(source)
        window = self.open.get(source)
        if window is None:
            window = self.open[source] = Window(batch.topic, batch.partition, opened_at=now)
        new = 0
        for event in batch.events:
            if event.offset <= last:  # against the last before this envelope: an envelope's events share an offset
                continue
            if len(window.events) >= self.max_events and event.offset != window.last_offset:
                self.sealed.append(window)
                self.marks[source] = window.last_offset
                window = self.open[source] = Window(batch.topic, batch.partition, opened_at=now)
            new += 1
            window.events.append(event)
            window.suspect.append(bool(is_suspect(event.user_id)))
        if token is not None:  # acknowledged with the window that holds the envelope's last event
            window.tokens.append(token)
        return new

    def due(self, now: float, flush: bool = False) -> list[Window]:
        """Take out the windows that are full, waited `max_seconds`, or all of them with `flush`."""
        out, self.sealed = self.sealed, []
        for source, window in list(self.open.items()):
            full = len(window.events) >= self.max_events
            old = now - window.opened_at >= self.max_seconds
            if full or old or flush:
                del self.open[source]
                if window.events:
                    self.marks[source] = window.last_offset
                out.append(window)  # a window without rows still carries tokens to acknowledge
        return out


_EVENT_COLUMNS = [(name, operator.attrgetter(name)) for name in ValidEvent.__struct_fields__]


def window_table(window: Window) -> pa.Table:
    """The window's rows as an Arrow table of WINDOW_SCHEMA, built column by column."""
    events = window.events
    columns = [pa.array(list(map(get, events)), WINDOW_SCHEMA.field(name).type) for name, get in _EVENT_COLUMNS]
    columns.append(pa.array(window.suspect, pa.bool_()))
    return pa.Table.from_arrays(columns, schema=WINDOW_SCHEMA)


def announcement(window: Window, uri: str, written_at: float) -> BatchAnnouncement:
    """The `batches` record describing a written window (spans and counts of its rows)."""
    events = window.events
    ts = [e.ts for e in events]
    kafka_ts = [e.kafka_ts for e in events]
    return BatchAnnouncement(
        uri=uri,
        path=window.path,
        rows=len(events),
        topic=window.topic,
        partition=window.partition,
        first_offset=window.first_offset,
        last_offset=window.last_offset,
        min_ts=min(ts),
        max_ts=max(ts),
        min_kafka_ts=min(kafka_ts),
        max_kafka_ts=max(kafka_ts),
        suspect_rows=sum(window.suspect),
        written_at=written_at,
    )
