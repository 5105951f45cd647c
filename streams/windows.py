"""The window sink: cuts the `events` stream into Parquet files (training batches) and announces them.

A second agent on `events` takes every N events or T seconds (whichever first), re-validates each
record, and writes one Parquet file per source partition, named by its offset range
(`{topic}/p{partition}/{first:020d}-{last:020d}.parquet`), so a rewrite after a crash replaces the
same file. The file is written to a temporary name, fsynced and renamed before the agent body
returns; Faust acks the events (and may commit their offsets) only after that. Then a
`BatchAnnouncement` goes to topic `batches`.

`cut_windows` and `window_table` are pure; `WindowStore` is the only file I/O. This module must
never ack or announce a window before its file is durably written, and never reads os.environ.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from streams.records import BatchAnnouncement
from streams.validation import InvalidEvent, ValidationLimits, parse_event

__all__ = ["WINDOW_SCHEMA", "WindowRecord", "Window", "window_path", "cut_windows", "window_table",
           "announcement", "WindowStore", "read_window", "install"]

log = logging.getLogger(__name__)

WINDOW_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("user_id", pa.string()), ("item_id", pa.string()), ("type", pa.string()),
    ("ts", pa.float64()), ("value", pa.float64()), ("session_id", pa.string()),
    ("partition", pa.int32()), ("offset", pa.int64()), ("kafka_ts", pa.float64()), ("suspect", pa.bool_()),
], metadata={"advrec.format": "advrec.window/1"})


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


def window_path(topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """`topic/p{partition}/{first:020d}-{last:020d}.parquet`: the same range always gives the same name."""
    return f"{topic}/p{partition}/{first_offset:020d}-{last_offset:020d}.parquet"


def cut_windows(records: Iterable[WindowRecord], limits: ValidationLimits, now: float,
                is_suspect: Callable[[str], bool] = lambda user: False) -> list[Window]:
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
        window.rows.append({
            "event_id": event.event_id, "user_id": event.user_id, "item_id": event.item_id,
            "type": event.type, "ts": event.ts, "value": event.value, "session_id": event.session_id,
            "partition": record.partition, "offset": record.offset, "kafka_ts": record.kafka_ts,
            "suspect": bool(is_suspect(event.user_id)),
        })
    return sorted(windows.values(), key=lambda w: (w.topic, w.partition))


def window_table(window: Window) -> pa.Table:
    """The window's rows as an Arrow table of WINDOW_SCHEMA."""
    return pa.Table.from_pylist(window.rows, schema=WINDOW_SCHEMA)


def announcement(window: Window, uri: str, written_at: float) -> BatchAnnouncement:
    """The `batches` record describing a written window (spans and counts of its rows)."""
    rows = window.rows
    return BatchAnnouncement(
        uri=uri, path=window.path, rows=len(rows), topic=window.topic, partition=window.partition,
        first_offset=window.first_offset, last_offset=window.last_offset,
        min_ts=min(r["ts"] for r in rows), max_ts=max(r["ts"] for r in rows),
        min_kafka_ts=min(r["kafka_ts"] for r in rows), max_kafka_ts=max(r["kafka_ts"] for r in rows),
        suspect_rows=sum(r["suspect"] for r in rows), written_at=written_at)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WindowStore:
    """Parquet files under a base URI (file://, s3://, …) through pyarrow filesystems."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.base = pafs.FileSystem.from_uri(self.uri)

    def uri_of(self, path: str) -> str:
        """Full URI of a relative path."""
        return f"{self.uri}/{path}"

    def write(self, path: str, table: pa.Table) -> str:
        """Write `table` at `path` atomically (temp name, fsync, rename); return its URI."""
        target = f"{self.base}/{path}"
        if isinstance(self.fs, pafs.LocalFileSystem):
            directory = os.path.dirname(target)
            created = not os.path.isdir(directory)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{target}.tmp-{os.getpid()}"
            try:
                with open(tmp, "wb") as fh:
                    pq.write_table(table, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            _fsync_dir(directory)
            if created:
                _fsync_dir(os.path.dirname(directory))
        else:
            # Object stores publish an object whole when its upload completes: no rename needed.
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(target) as out:
                pq.write_table(table, out)
        return self.uri_of(path)


def read_window(uri: str) -> pa.Table:
    """Read one window file by its full URI."""
    fs, path = pafs.FileSystem.from_uri(uri)
    return pq.read_table(path, filesystem=fs, schema=WINDOW_SCHEMA)


def _suspect_lookup(tables: dict) -> Callable[[str], bool]:
    """is_suspect(user) from the suspicion table (values {"flagged": bool, ...}), or always False."""
    table = tables.get("suspicion")
    if table is None:
        return lambda user: False

    def flagged(user: str) -> bool:
        value = table.get(user.encode())
        if value is None:
            return False
        return bool(value.get("flagged") if isinstance(value, dict) else getattr(value, "flagged", False))
    return flagged


def install(app) -> None:
    """Add the window sink agent and the `batches` topic to the worker's Faust app."""
    from streams import metrics

    context = app.advrec
    settings = context.settings
    store = WindowStore(settings.windows_location)
    batches = app.topic(settings.batches_topic, key_type=bytes, key_serializer="raw",
                        value_type=BatchAnnouncement, partitions=settings.topic_partitions)
    context.topics["batches"] = batches

    @app.task
    async def declare_batches_topic() -> None:
        """Create `batches` at start, so the trainer can subscribe before the first window."""
        await batches.maybe_declare()

    async def write_durably(path: str, table: pa.Table) -> str:
        # Not acking is what keeps a failed window's events uncommitted, so retry rather than raise:
        # take_events acks its buffer even when the agent body raises.
        delay = 0.5
        while True:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, store.write, path, table)
            except (OSError, pa.ArrowException) as exc:
                log.error("window %s not written (%s); retrying in %.1f s", path, exc, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 30.0)

    @app.agent(context.topics["events"], name="windows")
    async def windows(stream):
        """Write every N events / T seconds as one Parquet file per source partition, then announce it."""
        async for events in stream.take_events(settings.window_max_events, within=settings.window_max_seconds):
            records = [WindowRecord(e.value, e.message.topic, e.message.partition, e.message.offset,
                                    e.message.timestamp) for e in events]
            for window in cut_windows(records, context.limits, time.time(), _suspect_lookup(context.tables)):
                if not window.rows:
                    continue
                uri = await write_durably(window.path, window_table(window))
                await batches.send(key=f"{window.topic}/{window.partition}".encode(),
                                   value=announcement(window, uri, time.time()))
                metrics.WINDOWS_WRITTEN.inc()
                metrics.WINDOW_ROWS.observe(len(window.rows))
