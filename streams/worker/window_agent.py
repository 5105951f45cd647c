"""The window sink agent: every N events / T seconds, one Parquet file per source partition, announced on `batches`.

A second agent on `events` takes a batch, cuts it into windows (`streams.worker.windowing`), writes
each file durably before the agent body returns (Faust acks the events, and may commit their
offsets, only after that), then sends a `BatchAnnouncement` to topic `batches`. It must never ack or
announce a window before its file is durably written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pyarrow as pa

from streams.contract.records import encode
from streams.contract.windows import WindowStore
from streams.worker import metrics
from streams.worker.windowing import WindowRecord, announcement, cut_windows, window_table

__all__ = ["install"]

log = logging.getLogger(__name__)


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


def install(app, context) -> None:
    """Add the window sink agent and the `batches` topic to the worker's Faust app."""
    settings = context.settings
    store = WindowStore(settings.windows_location)
    batches = app.topic(
        settings.batches_topic,
        key_type=bytes,
        key_serializer="raw",
        value_type=bytes,
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
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
            records = [
                WindowRecord(e.value, e.message.topic, e.message.partition, e.message.offset, e.message.timestamp)
                for e in events
            ]
            for window in cut_windows(records, context.limits, time.time(), _suspect_lookup(context.tables)):
                if not window.rows:
                    continue
                uri = await write_durably(window.path, window_table(window))
                await batches.send(
                    key=f"{window.topic}/{window.partition}".encode(),
                    value=encode(announcement(window, uri, time.time())),
                )
                metrics.WINDOWS_WRITTEN.inc()
                metrics.WINDOW_ROWS.observe(len(window.rows))
